//! The console in a real browser: Chromium driven through chromedriver's W3C WebDriver API,
//! spoken with the test's own HTTP client (a handful of endpoints; no WebDriver crate).
//!
//! CI sets `AKGUARD_BROWSER_TESTS=1`, and then a missing Chromium or chromedriver fails the
//! test. Without it the test runs where both are installed and says that it skipped
//! otherwise.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, emulator};
use crate::helpers::{OPERATOR_TOKEN, VIEWER_TOKEN};
use crate::remediation::{daemon_with, report};
use crate::rotation::{FAST, kms_sink};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const PATIENCE: Duration = Duration::from_secs(30);

fn on_path(program: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// One chromedriver and one browser session, both ended on drop.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn start(chromium: &str, chromedriver: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1600"]}}}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"));
        Self {
            driver,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never appeared; the page:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.call(reqwest::Method::DELETE, "/cookie", None).await;
        self.go(&format!("{base}/")).await;
        let field = self.wait_for("input[name=token]").await;
        self.type_into(&field, token).await;
        let button = self.wait_for("form[action='/sign-in'] button").await;
        self.click(&button).await;
        self.wait_for("table#incidents").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn console_in_a_browser_follows_a_leak_live_and_confirms_its_cutover() {
    let required = std::env::var_os("AKGUARD_BROWSER_TESTS").is_some();
    let (chromium, chromedriver) = match (on_path("chromium"), on_path("chromedriver")) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        _ if required => panic!(
            "AKGUARD_BROWSER_TESTS is set but chromium or chromedriver is not installed \
             (apt-get install chromium chromium-driver)"
        ),
        _ => {
            eprintln!("skipped: chromium and chromedriver are not installed");
            return;
        }
    };
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, kms_sink(), FAST).await;
    let browser = Browser::start(&chromium, &chromedriver).await;
    let base = app.base.clone();

    browser.sign_in(&base, OPERATOR_TOKEN).await;
    // A mark on this document: it survives only if the page is never reloaded.
    browser.script("window.akguardTestMark = 1;").await;
    let id = report(&app, LEAKED_KEY, 25).await;
    browser.wait_for(&format!("tr[data-incident='{id}']")).await;
    assert_eq!(
        browser.script("return window.akguardTestMark === 1;").await,
        json!(true),
        "the incident appeared by a reload, not live"
    );
    // The live refresh may replace the link under the click: click until the page opens.
    let incident_url = format!("{base}/incidents/{id}");
    let deadline = Instant::now() + PATIENCE;
    while browser.call(reqwest::Method::GET, "/url", None).await != json!(incident_url) {
        assert!(
            Instant::now() < deadline,
            "the incident's link did not open it"
        );
        let link = browser
            .wait_for(&format!("tr[data-incident='{id}'] a"))
            .await;
        browser.click(&link).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Contained and waiting for the workload to move to the new key, shown live.
    browser.wait_for("#state.state-awaiting_cutover").await;
    browser.wait_for("#containment").await;

    // A forged submission without the CSRF token is refused.
    // A live update may replace the link between finding and clicking it: click again.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let action = browser.wait_for("a[data-action='confirm-cutover']").await;
        browser.click(&action).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !browser.find_all("form#confirm").await.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the confirmation never opened");
    }
    browser
        .script(
            "document.querySelector('#confirm input[name=csrf]').remove(); \
             document.getElementById('confirm').submit();",
        )
        .await;
    browser.wait_for("p.result").await;
    assert!(
        browser.source().await.contains("CSRF"),
        "the forged form was not refused"
    );

    // Confirmed for real (the worker may hold the incident a moment: 409, try again).
    let deadline = Instant::now() + PATIENCE;
    loop {
        browser
            .go(&format!("{incident_url}/actions/confirm-cutover"))
            .await;
        let button = browser.wait_for("form#confirm button").await;
        browser.click(&button).await;
        browser.wait_for("p.result").await;
        if browser.source().await.contains("confirm-cutover: ") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", browser.source().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.go(&incident_url).await;
    browser.wait_for("#state.state-resolved").await;
    let shot = browser.screenshot().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console-incident.png"), &shot).unwrap();

    // A viewer sees the same page without any action.
    browser.sign_in(&base, VIEWER_TOKEN).await;
    browser.go(&incident_url).await;
    browser.wait_for("#state.state-resolved").await;
    assert!(
        browser.find_all("[data-action]").await.is_empty(),
        "a viewer sees action buttons"
    );
}

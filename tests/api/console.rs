//! The console over plain HTTP: headers, the session cookie, CSRF, roles, acting through
//! the API's code path. (The browser test is in `console_browser.rs`.)

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

use crate::cloud_support::{LEAKED_KEY, emulator};
use crate::helpers::{OPERATOR_TOKEN, TestDaemon, VIEWER_TOKEN};
use crate::remediation::{daemon_with, report};
use crate::rotation::kms_sink;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn assert_secure_headers(headers: &HeaderMap, what: &str) {
    let csp = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
}

/// Signs in; returns the cookie header to send.
async fn sign_in(app: &TestDaemon, token: &str) -> String {
    let resp = client()
        .post(app.url("/sign-in"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(app: &TestDaemon, path: &str, cookie: &str) -> (StatusCode, String) {
    let resp = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_secure_headers(resp.headers(), path);
    (resp.status(), resp.text().await.unwrap())
}

/// The session's CSRF token, read from the sign-out form every page carries.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..at + 64].to_owned()
}

async fn post_form(
    app: &TestDaemon,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = client()
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_secure_headers(resp.headers(), path);
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn console_sign_in_gives_a_strict_session_cookie_and_every_answer_secure_headers() {
    let app = TestDaemon::spawn().await;
    let resp = client().get(app.url("/")).send().await.unwrap();
    assert_secure_headers(resp.headers(), "/ signed out");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("action=\"/sign-in\""));

    let bad = client()
        .post(app.url("/sign-in"))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get(SET_COOKIE).is_none());

    let resp = client()
        .post(app.url("/sign-in"))
        .form(&[("token", OPERATOR_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_secure_headers(resp.headers(), "/sign-in");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(flag), "{set:?} lacks {flag}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP without secure_cookies: {set}"
    );
    assert!(!set.contains(OPERATOR_TOKEN), "the cookie is not the token");
    let cookie = set.split(';').next().unwrap().to_owned();

    let (status, html) = page(&app, "/", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("alice"), "signed in as the token's name");
    assert!(
        html.contains("data-events-after=\""),
        "the page carries the stream cursor"
    );
    let (status, html) = page(&app, "/status", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("<td>{}</td>", crate::helpers::backend_name()))
            && html.contains("id=\"chain\""),
        "{html}"
    );
    let replicas = html
        .split_once("<table id=\"replicas\">")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(
        replicas.contains("<tbody><tr><td><code>") && html.contains("<table id=\"jobs\">"),
        "the status page lists this replica and the singleton jobs: {html}"
    );
    for asset in ["/console/console.css", "/console/console.js"] {
        let resp = client().get(app.url(asset)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        assert_secure_headers(resp.headers(), asset);
    }
    // The event stream takes the session, as a browser's EventSource sends it.
    let resp = client()
        .get(app.url("/v1/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(resp);

    // Japanese, remembered in a cookie.
    let resp = client()
        .get(app.url("/lang?to=ja&back=/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/status");
    let lang = resp.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, html) = page(&app, "/status", &format!("{cookie}; {lang}")).await;
    assert!(
        html.contains("lang=\"ja\"") && html.contains("ステータス"),
        "{html}"
    );
    let resp = client()
        .get(app.url("/lang?to=ja&back=//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/", "no open redirect");

    // Signing out ends the session server-side: the old cookie no longer works.
    let (_, html) = page(&app, "/", &cookie).await;
    let (status, _) = post_form(&app, "/sign-out", &cookie, &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "sign-out without the CSRF token"
    );
    let resp = client()
        .post(app.url("/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = page(&app, "/", &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn console_actions_need_the_csrf_token_a_confirmation_and_an_operator_and_are_audited() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, kms_sink(), crate::rotation::FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    let path = format!("/incidents/{id}");
    let action = format!("/incidents/{id}/actions/confirm-cutover");

    // A viewer sees no action buttons and cannot act, even with its own CSRF token.
    let viewer = sign_in(&app, VIEWER_TOKEN).await;
    let (status, html) = page(&app, &path, &viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("awaiting_cutover"));
    assert!(!html.contains("data-action="), "a viewer sees no actions");
    let csrf = csrf_of(&html);
    let (status, _) = post_form(
        &app,
        &action,
        &viewer,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let operator = sign_in(&app, OPERATOR_TOKEN).await;
    let (_, html) = page(&app, &path, &operator).await;
    assert!(html.contains("data-action=\"confirm-cutover\""), "{html}");
    assert!(html.contains("data-action=\"cancel\""));
    assert!(
        !html.contains("data-action=\"reenable\""),
        "only what the state allows"
    );
    let csrf = csrf_of(&html);
    let (status, confirm) = page(&app, &action, &operator).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("name=\"confirm\" value=\"yes\""));
    let (_, cancel) = page(&app, &format!("/incidents/{id}/actions/cancel"), &operator).await;
    assert!(
        cancel.contains("name=\"reason\" required"),
        "cancel asks for a reason"
    );

    // A forged form (no CSRF token, or another session's) is refused, as is a signed-out one.
    let (status, _) = post_form(&app, &action, &operator, &[("confirm", "yes")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let viewer_csrf = csrf_of(&page(&app, "/", &viewer).await.1);
    let (status, _) = post_form(
        &app,
        &action,
        &operator,
        &[("csrf", &viewer_csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post_form(
        &app,
        &action,
        "akguard_session=forged",
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_form(&app, &action, &operator, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not confirmed");
    let state = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(
        state["state"], "awaiting_cutover",
        "nothing refused has acted"
    );

    let confirm = [("csrf", csrf.as_str()), ("confirm", "yes")];
    let (mut status, mut html) = post_form(&app, &action, &operator, &confirm).await;
    // The worker may be reading last-used data right now; it answers 409 "try again".
    for _ in 0..50 {
        if status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        (status, html) = post_form(&app, &action, &operator, &confirm).await;
    }
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("confirm-cutover: "),
        "the result shows the new state: {html}"
    );
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    let row = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "operator.confirm_cutover")
        .unwrap_or_else(|| panic!("no confirm-cutover row: {audit}"));
    assert_eq!(row["actor"], "operator:alice");
    assert_eq!(row["detail"]["note"]["via"], "console", "{row}");
    app.wait_for_incident(id, "resolved", |i: &Value| i["state"] == "resolved")
        .await;
    let (_, html) = page(&app, &path, &operator).await;
    assert!(html.contains("state-resolved"));
    assert!(!html.contains("data-action=\"confirm-cutover\""));
}

#[tokio::test]
async fn a_console_session_is_honoured_by_every_replica_and_signing_out_on_one_ends_it_on_all() {
    let first = TestDaemon::spawn().await;
    let second = first.spawn_another().await;
    let cookie = sign_in(&first, OPERATOR_TOKEN).await;

    // Behind a load balancer the next request may reach the other replica.
    let (status, html) = page(&second, "/", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let csrf = csrf_of(&html);
    let (_, on_first) = page(&first, "/", &cookie).await;
    assert_eq!(csrf_of(&on_first), csrf, "one session, one CSRF token");
    let resp = client()
        .get(second.url("/v1/events"))
        .header("cookie", &cookie)
        .timeout(std::time::Duration::from_millis(500))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the event stream takes the session"
    );
    drop(resp);

    let (status, _) = post_form(&second, "/sign-out", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    for app in [&first, &second] {
        let (status, _) = page(app, "/", &cookie).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out everywhere");
    }
}

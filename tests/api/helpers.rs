//! Spawns the real `akguard` binary on port 0 with a fresh database, and talks to it: a
//! SQLite file, or, when `AKGUARD_TEST_DATABASE_URL` names a PostgreSQL server, a database of
//! its own created there (and dropped with the daemon).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENERIC_SECRET: &str = "generic-hmac-secret-5f1c9a7e";
pub const EVENTBRIDGE_KEY: &str = "eventbridge-api-key-0b7d3e21";
pub const CLOUDMONITOR_PASSWORD: &str = "cloudmonitor-basic-pw-8c2a61";
pub const DAEMON_AK_SECRET: &str = "daemon-ak-secret-3e9f0c1d7b";
pub const DAEMON_STS_TOKEN: &str = "daemon-sts-token-a61b2c3d4e";
pub const VIEWER_TOKEN: &str = "viewer-token-91d2e3f4a5b6";
pub const OPERATOR_TOKEN: &str = "operator-token-7a8b9c0d1e2f";

/// The source secrets, as the environment variables that carry them: akguard refuses a
/// secret written in its configuration file.
pub const SOURCE_SECRETS: &[(&str, &str)] = &[
    ("AKGUARD__INTAKE__SOURCES__GENERIC__SECRET", GENERIC_SECRET),
    (
        "AKGUARD__INTAKE__SOURCES__EVENTBRIDGE__SECRET",
        EVENTBRIDGE_KEY,
    ),
    (
        "AKGUARD__INTAKE__SOURCES__CLOUDMONITOR__SECRET",
        CLOUDMONITOR_PASSWORD,
    ),
];

/// Every secret the test daemon is configured with.
pub const SECRETS: &[&str] = &[
    GENERIC_SECRET,
    EVENTBRIDGE_KEY,
    CLOUDMONITOR_PASSWORD,
    DAEMON_AK_SECRET,
    DAEMON_STS_TOKEN,
    VIEWER_TOKEN,
    OPERATOR_TOKEN,
];

/// Put in a daemon's environment by tests that read or tamper with the SQLite file itself:
/// the daemon runs on SQLite even when the suite runs on PostgreSQL.
pub const SQLITE_FILE: (&str, &str) = ("AKGUARD_TEST_BACKEND", "sqlite");

/// The backend a daemon of this run uses unless its test asks for `SQLITE_FILE`.
pub fn backend_name() -> &'static str {
    match std::env::var("AKGUARD_TEST_DATABASE_URL") {
        Ok(_) => "postgres",
        Err(_) => "sqlite",
    }
}

pub struct TestDaemon {
    child: Option<Child>,
    pub base: String,
    pub dir: Arc<tempfile::TempDir>,
    /// The PostgreSQL database this daemon (and any other on its data) uses, once created.
    postgres: Option<Arc<PostgresDatabase>>,
    pub client: reqwest::Client,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    extra_config: String,
    env: Vec<(String, String)>,
    process: ProcessSetup,
}

/// What the daemon process inherits that a test may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSetup {
    /// The open-file limit, soft and hard.
    pub nofile: Option<u64>,
    pub umask: Option<libc::mode_t>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_akguard")
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn write_config(dir: &Path, database_url: &str, extra: &str) -> PathBuf {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"viewer-bot\"\nsha256 = \"{}\"\nrole = \"viewer\"\n\n\
             [[token]]\nname = \"alice\"\nsha256 = \"{}\"\nrole = \"operator\"\n",
            sha256_hex(VIEWER_TOKEN),
            sha256_hex(OPERATOR_TOKEN)
        ),
    )
    .unwrap();
    let config = dir.join("akguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[database]
url = "{database_url}"

[log]
format = "json"
level = "debug,sqlx=warn"

[api]
tokens_file = "{tokens}"

[intake.security_center]
enabled = false

[remediation]
workers = 0

[intake.sources.generic]
auth = "hmac"

[intake.sources.eventbridge]
auth = "api_key"
header = "X-EventBridge-Token"

[intake.sources.cloudmonitor]
auth = "basic"
username = "cms"
{extra}
"#,
            tokens = tokens.display(),
        ),
    )
    .unwrap();
    config
}

impl TestDaemon {
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// `extra` is appended to the config file (more sources, smaller limits).
    pub async fn spawn_with(extra: &str) -> Self {
        Self::spawn_with_env(extra, &[]).await
    }

    /// Also sets environment variables, which override the config file.
    pub async fn spawn_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let mut daemon = Self::unstarted(extra, env);
        daemon.start().await;
        daemon
    }

    /// Starts on a copy of an existing database file (e.g. one an earlier release made).
    pub async fn spawn_on_copy_of(db: &Path) -> Self {
        Self::spawn_on_copy_with(db, "", &[]).await
    }

    /// `spawn_on_copy_of` with configuration and environment as `spawn_with_env` takes them.
    /// A copied file is a SQLite database, whatever the suite's backend.
    pub async fn spawn_on_copy_with(db: &Path, extra: &str, env: &[(&str, &str)]) -> Self {
        let env = [env, &[SQLITE_FILE]].concat();
        let mut daemon = Self::unstarted(extra, &env);
        std::fs::copy(db, daemon.dir.path().join("akguard.db")).unwrap();
        daemon.start().await;
        daemon
    }

    fn unstarted(extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self {
            child: None,
            base: String::new(),
            dir,
            postgres: None,
            client: reqwest::Client::new(),
            log: Arc::default(),
            readers: Vec::new(),
            extra_config: extra.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            process: ProcessSetup::default(),
        }
    }

    /// Starts the daemon with process limits or a umask set.
    pub async fn spawn_with_process(env: &[(&str, &str)], process: ProcessSetup) -> Self {
        let mut daemon = Self::unstarted("", env);
        daemon.process = process;
        daemon.start().await;
        daemon
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("akguard.toml")
    }

    /// The database URL the daemon's config names.
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("akguard.db").display()),
        }
    }

    async fn start(&mut self) {
        let on_sqlite = self
            .env
            .iter()
            .any(|(k, v)| (k.as_str(), v.as_str()) == SQLITE_FILE);
        if self.postgres.is_none()
            && !on_sqlite
            && let Ok(admin) = std::env::var("AKGUARD_TEST_DATABASE_URL")
        {
            self.postgres = Some(Arc::new(PostgresDatabase::create(&admin).await));
        }
        let config = write_config(self.dir.path(), &self.database_url(), &self.extra_config);
        let mut command = Command::new(binary());
        set_up_child(&mut command, self.process);
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tDaemonOwnKey01")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DAEMON_AK_SECRET)
            .env("ALIBABA_CLOUD_SECURITY_TOKEN", DAEMON_STS_TOKEN)
            .envs(SOURCE_SECRETS.iter().copied())
            .env_remove("RUST_LOG")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the akguard binary starts");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = self.log.clone();
            let tx = tx.clone();
            self.readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["message"] == "listening"
                    {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    } else if let Some((_, addr)) = line.split_once(": listening addr=") {
                        // The text format, for tests of what it prints.
                        let _ = tx.send(addr.trim().to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            }));
        }
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("akguard did not start listening:\n{}", self.log()));
        self.base = format!("http://{addr}");
        self.child = Some(child);
    }

    /// SIGTERM, then wait for the process to exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let child = self.child.as_ref().expect("daemon is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_exit().await
    }

    /// SIGKILL, as a crashed host would: nothing is released or flushed.
    pub async fn kill(&mut self) -> ExitStatus {
        let child = self.child.as_ref().expect("daemon is running");
        let status = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_exit().await
    }

    pub async fn restart(&mut self) {
        self.start().await;
    }

    /// Adds `more` to the configuration the next (re)start writes.
    pub fn append_config(&mut self, more: &str) {
        self.extra_config.push_str(more);
    }

    /// Waits for the process to end and returns its status.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon is running");
        let readers = std::mem::take(&mut self.readers);
        tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            // The pipes close with the process; after this the log holds every line.
            for reader in readers {
                reader.join().unwrap();
            }
            status
        })
        .await
        .unwrap()
    }

    /// Sets (or with `None` removes) an environment variable for the next start.
    pub fn set_env(&mut self, name: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != name);
        if let Some(value) = value {
            self.env.push((name.to_owned(), value.to_owned()));
        }
    }

    /// A second daemon process on the same database and configuration.
    pub async fn spawn_another(&self) -> TestDaemon {
        let mut other = TestDaemon {
            child: None,
            base: String::new(),
            dir: self.dir.clone(),
            postgres: self.postgres.clone(),
            client: reqwest::Client::new(),
            log: Arc::default(),
            readers: Vec::new(),
            extra_config: self.extra_config.clone(),
            env: self.env.clone(),
            process: self.process,
        };
        other.start().await;
        other
    }

    /// Polls the incident until `done` holds for it (bounded), and returns it.
    pub async fn wait_for_incident(
        &self,
        id: i64,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let incident = self.get_ok(&format!("/v1/incidents/{id}")).await;
            if done(&incident) {
                return incident;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "incident {id} never became {what}: {incident:#}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the daemon has logged a line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.log().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon never logged `{needle}`:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the daemon printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts `body` to a webhook signed for the `generic` HMAC source at `timestamp`.
    pub async fn post_generic_at(&self, body: &str, timestamp: i64) -> Response {
        let signature = hmac_signature(GENERIC_SECRET, timestamp, body.as_bytes());
        let resp = self
            .client
            .post(self.url("/v1/notifications/generic"))
            .header("content-type", "application/json")
            .header("x-akguard-timestamp", timestamp.to_string())
            .header("x-akguard-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Response::read(resp).await
    }

    /// Posts all bodies at once, each on its own task; responses come back in order.
    pub async fn post_generic_all(&self, bodies: Vec<String>) -> Vec<Response> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (client, url) = (self.client.clone(), self.url("/v1/notifications/generic"));
                tokio::spawn(async move {
                    let ts = now();
                    let resp = client
                        .post(url)
                        .header("content-type", "application/json")
                        .header("x-akguard-timestamp", ts.to_string())
                        .header(
                            "x-akguard-signature",
                            hmac_signature(GENERIC_SECRET, ts, body.as_bytes()),
                        )
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    Response::read(resp).await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }

    pub async fn post_generic(&self, body: &str) -> Response {
        self.post_generic_at(body, now()).await
    }

    pub async fn post_eventbridge(&self, body: &str) -> Response {
        let resp = self
            .client
            .post(self.url("/v1/notifications/eventbridge"))
            .header("content-type", "application/json;charset=utf-8")
            .header("x-eventbridge-token", EVENTBRIDGE_KEY)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Response::read(resp).await
    }

    pub async fn post_cloudmonitor(&self, body: &str) -> Response {
        let resp = self
            .client
            .post(self.url("/v1/notifications/cloudmonitor"))
            .header("content-type", "application/json")
            .basic_auth("cms", Some(CLOUDMONITOR_PASSWORD))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Response::read(resp).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        Response::read(req.send().await.unwrap()).await
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let resp = self.get(path, Some(VIEWER_TOKEN)).await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "GET {path}: {}\n{}",
            resp.body,
            self.log()
        );
        resp.body
    }

    /// The ids of every incident, newest first (one page is enough for tests).
    pub async fn incident_ids(&self) -> Vec<i64> {
        self.get_ok("/v1/incidents?limit=200").await["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A database created for one test on the PostgreSQL server `AKGUARD_TEST_DATABASE_URL`
/// names; dropped when the last daemon using it is.
pub struct PostgresDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PostgresDatabase {
    async fn create(admin: &str) -> Self {
        use sqlx::{Connection as _, Executor as _};
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "AKGUARD_TEST_DATABASE_URL is set but PostgreSQL is not reachable at {admin} \
                 ({e}); start it or unset the variable to test on SQLite"
                )
            });
        let name = format!("akguard_t_{:016x}", rand_u64());
        conn.execute(&*format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let _ = conn.close().await;
        let mut url = <sqlx::any::AnyConnectOptions as std::str::FromStr>::from_str(admin)
            .unwrap()
            .database_url;
        url.set_path(&name);
        Self {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own
        // with its own runtime can.
        let dropped = std::thread::spawn(move || {
            use sqlx::{Connection as _, Executor as _};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                conn.execute(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

/// A response, read whole.
pub struct Response {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, body, text }
    }

    pub fn incident_id(&self) -> i64 {
        assert_eq!(self.status, StatusCode::ACCEPTED, "{}", self.text);
        self.body["incident_id"].as_i64().expect("an incident id")
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

fn set_up_child(command: &mut Command, process: ProcessSetup) {
    use std::os::unix::process::CommandExt as _;
    if process.nofile.is_none() && process.umask.is_none() {
        return;
    }
    // SAFETY: setrlimit and umask are async-signal-safe and touch only the child.
    unsafe {
        command.pre_exec(move || {
            if let Some(nofile) = process.nofile {
                let limit = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(mask) = process.umask {
                libc::umask(mask);
            }
            Ok(())
        });
    }
}

/// Raises this test process's open-file soft limit to at least `wanted` (up to the hard
/// limit), so one test can hold thousands of sockets.
pub fn raise_own_nofile(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a valid, owned struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= wanted,
        "this test needs {wanted} open files; the hard limit is {}",
        limit.rlim_max
    );
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn hmac_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/api/fixtures")
            .join(name),
    )
    .unwrap()
}

/// A generic notification for `key` with its own event id.
pub fn generic(key: &str, event_id: &str) -> String {
    serde_json::json!({"access_key_id": key, "event_id": event_id}).to_string()
}

/// Runs the binary with `args` and the test config; returns (status, stdout, stderr).
pub fn run_cli(args: &[&str], config: &Path) -> (ExitStatus, String, String) {
    run_cli_with_env(args, config, &[])
}

/// `run_cli` with more environment variables, which override the config file.
pub fn run_cli_with_env(
    args: &[&str],
    config: &Path,
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tDaemonOwnKey01")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DAEMON_AK_SECRET)
        .env("ALIBABA_CLOUD_SECURITY_TOKEN", DAEMON_STS_TOKEN)
        .envs(SOURCE_SECRETS.iter().copied())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

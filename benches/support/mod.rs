//! What both benchmarks share: the `akguard serve` process, its base config, the HTTP client
//! and signed generic notifications, environment tunables and percentiles.
//!
//! Included by each bench with `#[path = "support/mod.rs"] mod support;`, so every item here
//! must be used by both, or it is dead code in the other.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use akguard::intake::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};

pub const SECRET: &str = "bench-hmac-secret-0123456789";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a positive count from the environment, or the default when unset.
pub fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => match value.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must be a positive integer, got `{value}`"),
        },
    }
}

/// A fresh directory under target/, so databases sit on a real disk (not a tmpfs).
pub fn target_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory under target/")
}

/// The config both daemons start from: a free port, the database at `database_url`, a JSON
/// log that carries the "listening" line, and the HMAC-authenticated generic source.
pub fn base_config(database_url: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
[database]
url = "{database_url}"
[log]
format = "json"
level = "warn,akguard::app=info"
[intake.sources.generic]
auth = "hmac"
"#
    )
}

/// A SQLite database URL for a file in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("akguard.db").display())
}

/// A client keeping up to `pool` idle connections to the daemon.
pub fn http_client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build the HTTP client")
}

/// Posts a generic notification signed with `SECRET`: the answer's status and whole body.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<(reqwest::StatusCode, String)> {
    // Signed at send time, so a long run never drifts outside the daemon's HMAC window.
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, &timestamp)
        .header(SIGNATURE_HEADER, sign_webhook(SECRET, &timestamp, &body))
        .body(body)
        .send()
        .await?;
    let status = response.status();
    // Reading the whole body lets the connection go back to the pool.
    let text = response.text().await?;
    Ok((status, text))
}

/// Nearest-rank percentile of sorted values.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// A running `akguard serve` whose stderr is drained by a thread into `log`.
pub struct Daemon {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Writes `config` into `dir`, starts the daemon and waits until it listens. It inherits
    /// neither `RUST_LOG`, `AKGUARD__*` nor the variables for which `hidden` holds; the
    /// generic source's secret and `secrets` are passed as variables.
    /// `secrets` are more `(variable, value)` pairs for secrets beyond the generic source's.
    pub fn start(
        dir: &Path,
        config: &str,
        secrets: &[(&str, &str)],
        hidden: impl Fn(&str) -> bool,
    ) -> Self {
        let path = dir.join("akguard.toml");
        std::fs::write(&path, config).expect("write the daemon config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_akguard"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The caller's log filter or setting overrides would hide or reshape the "listening" line.
        command.env_remove("RUST_LOG");
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AKGUARD__") || hidden(k)) {
            command.env_remove(key);
        }
        // Secrets come from the environment: akguard refuses them in its configuration file.
        command.env("AKGUARD__INTAKE__SOURCES__GENERIC__SECRET", SECRET);
        command.envs(secrets.iter().copied());
        let mut child = command.spawn().expect("start the akguard binary");

        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let drain = thread::spawn({
            let log = Arc::clone(&log);
            move || drain_stderr(stderr, &log, &addr_tx)
        });
        let mut daemon = Self {
            child,
            addr: String::new(),
            log,
            drain: Some(drain),
        };
        // A daemon that exits early closes stderr, which ends the wait before the timeout.
        match addr_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => daemon.addr = addr,
            Err(_) => panic!(
                "the daemon did not log \"listening\" within {STARTUP_TIMEOUT:?}; stderr so far:\n{}",
                daemon.log.lock().unwrap()
            ),
        }
        daemon
    }

    /// The last `lines` lines of its stderr so far.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends SIGTERM and waits, bounded by `timeout`, for the graceful shutdown; shows the
    /// last `log_lines` of stderr if it does not come.
    pub fn stop(mut self, timeout: Duration, log_lines: usize) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to the daemon"
        );
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within {timeout:?} of SIGTERM; stderr:\n{}",
                self.log_tail(log_lines)
            );
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        status
    }
}

impl Drop for Daemon {
    /// A panic mid-run must not leave the daemon running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Keeps reading until EOF so the pipe never fills; reports the address once it is logged.
fn drain_stderr(stderr: ChildStderr, log: &Mutex<String>, addr_tx: &mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(addr) = listening_addr(&line) {
            let _ = addr_tx.send(addr);
        }
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

fn listening_addr(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["message"] != "listening" {
        return None;
    }
    event["addr"].as_str().map(str::to_owned)
}

/// Whether the daemon runs with on-call notifications and metrics (`on`) or without (`off`,
/// the baseline), so each benchmark can print both; `metrics` and `notifications` turn on
/// one of the two, to tell their costs apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    Off,
    Metrics,
    Notifications,
    On,
}

impl Observe {
    /// The modes `AKGUARD_BENCH_OBSERVE` asks for, as a comma-separated list of `off`,
    /// `metrics`, `notifications` and `on`; unset: `off,on`.
    pub fn from_env() -> Vec<Self> {
        let raw = std::env::var("AKGUARD_BENCH_OBSERVE").unwrap_or_else(|_| "off,on".into());
        raw.split(',')
            .map(|mode| match mode.trim() {
                "off" => Self::Off,
                "metrics" => Self::Metrics,
                "notifications" => Self::Notifications,
                "on" => Self::On,
                other => panic!(
                    "AKGUARD_BENCH_OBSERVE lists `off`, `metrics`, `notifications` or `on`, got `{other}`"
                ),
            })
            .collect()
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Off => "notifications and metrics off",
            Self::Metrics => "metrics on, notifications off",
            Self::Notifications => "notifications on, metrics off",
            Self::On => "notifications and metrics on",
        }
    }

    fn metrics(self) -> bool {
        matches!(self, Self::Metrics | Self::On)
    }

    fn notifications(self) -> bool {
        matches!(self, Self::Notifications | Self::On)
    }
}

/// A local Slack stand-in that every incident's notifications reach, and a
/// scraper that reads `/metrics` every second as Prometheus would (more often, to be harsh).
pub struct Observer {
    mode: Observe,
    receiver_url: String,
    delivered: Arc<std::sync::atomic::AtomicUsize>,
    scrapes: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the observer saw by the end of a run.
pub struct Observed {
    pub delivered: usize,
    pub scrapes: usize,
}

impl Observer {
    /// Starts the receiver (with notifications on); call inside the runtime.
    pub async fn start(mode: Observe) -> Self {
        let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut observer = Self {
            mode,
            receiver_url: String::new(),
            delivered: delivered.clone(),
            scrapes: Arc::default(),
            tasks: Vec::new(),
        };
        if !mode.notifications() {
            return observer;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Slack stand-in");
        let addr = listener.local_addr().expect("a bound address");
        // Notices, not messages: a digest of `opened` notices carries one `Incident` field
        // per incident, as a single notice carries its own.
        let app = axum::Router::new().fallback(move |body: String| {
            let notices = body.matches("*Incident*").count().max(1);
            delivered.fetch_add(notices, std::sync::atomic::Ordering::Relaxed);
            async { "ok" }
        });
        observer.receiver_url = format!("http://{addr}/services/bench");
        observer.tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Slack stand-in serves");
        }));
        observer
    }

    /// The daemon's configuration lines for this mode.
    pub fn config(&self) -> String {
        let mut config = format!("[metrics]\nenabled = {}\n", self.mode.metrics());
        if self.mode.notifications() {
            config.push_str(&format!(
                "[[notify.channels]]\nname = \"bench\"\nkind = \"slack\"\nurl = \"{}\"\n",
                self.receiver_url
            ));
        }
        config
    }

    /// Starts scraping the daemon at `addr` (with metrics on); call inside the runtime.
    pub fn scrape(&mut self, addr: &str) {
        if !self.mode.metrics() {
            return;
        }
        let (url, scrapes) = (format!("http://{addr}/metrics"), self.scrapes.clone());
        let client = http_client(1);
        self.tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let Ok(response) = client.get(&url).send().await else {
                    continue;
                };
                // Only a whole answer with the database's gauges counts.
                let text = response.text().await.unwrap_or_default();
                if text.contains("akguard_incidents{") {
                    scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }

    /// Stops the receiver and the scraper.
    pub fn finish(self) -> Observed {
        for task in &self.tasks {
            task.abort();
        }
        Observed {
            delivered: self.delivered.load(std::sync::atomic::Ordering::Relaxed),
            scrapes: self.scrapes.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

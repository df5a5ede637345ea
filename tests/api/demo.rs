//! `akguard demo`, run as a newcomer runs it, and README.md's quick start followed literally.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::binary;

/// The steps of a rotated key's incident, in the order the demo narrates them.
const STEPS: &[&str] = &[
    "intake ",
    "triage ",
    "revoke ",
    "mfa ",
    "audit ",
    "billing ",
    "rotate ",
    "cutover ",
    "disable_old_key ",
    "delete_key ",
];

/// A process whose stdout is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
        // Its own process group, so an interrupt reaches whatever the command started, as a
        // Ctrl-C in a terminal does.
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = command.spawn().expect("the command starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads until a line contains `needle`; returns that line.
    fn until(&mut self, needle: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {patience:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGINT to the whole group, as Ctrl-C sends it.
    fn interrupt(&self) {
        let group = format!("-{}", self.child.id());
        let status = Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; returns the status and the whole output.
    fn finish(mut self, patience: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + patience;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "did not exit within {patience:?}; output:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread may not have passed on the last lines yet: read until the pipe
        // closes, as it does once the process is gone.
        loop {
            match self.lines.recv_timeout(patience) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "the output did not end within {patience:?} of the exit:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        (status, self.seen.join("\n"))
    }
}

/// The scratch directory the demo announces.
fn scratch_dir(output: &str) -> PathBuf {
    let at = output
        .find("database in ")
        .expect("the demo names its database")
        + 12;
    let rest = &output[at..];
    PathBuf::from(&rest[..rest.find(',').unwrap()])
}

/// Each step appears, in order, and the summary reports what the scenario holds.
fn assert_narrated(output: &str) {
    let mut from = 0;
    for step in STEPS {
        let at = output[from..]
            .find(&format!("  {step}"))
            .unwrap_or_else(|| panic!("step {step:?} is missing or out of order:\n{output}"));
        from += at + step.len();
    }
    for expected in [
        "CONTAINED after",
        "incident              1 resolved",
        "MFA now required      alice, bob",
        "45.134.26.19 (8 calls)",
        "Instance i-t4nfm1x0a2b3c4d5e6f7",
        "ecs +",
        "(the leaked key is disabled and deleted)",
        "audit chain           verified",
        "key LTAI5tBkD00rSvcBackup3Zq of svc-backup created by the attacker",
    ] {
        assert!(output.contains(expected), "{expected:?} missing:\n{output}");
    }
}

#[test]
fn the_demo_resolves_its_incident_and_exits_zero() {
    let mut command = Command::new(binary());
    command.args(["demo", "--exit"]);
    // The demo configures itself: settings meant for a real deployment cannot redirect it.
    command
        .env("AKGUARD__ALIBABA__ENDPOINT", "http://127.0.0.1:9")
        .env("AKGUARD__DATABASE__URL", "sqlite:///nonexistent/dir/x.db")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tSomeoneElsesKey001");
    let (status, output) = Running::spawn(command).finish(Duration::from_secs(120));
    assert!(status.success(), "{status}:\n{output}");
    assert_narrated(&output);
    assert!(
        !output.contains("TOKEN="),
        "--exit prints no token:\n{output}"
    );
    assert!(
        !scratch_dir(&output).exists(),
        "the scratch directory is removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_keeps_serving_its_status_api_until_interrupted() {
    let mut demo = Running::spawn({
        let mut command = Command::new(binary());
        command.arg("demo");
        command
    });
    let token_line =
        tokio::task::block_in_place(|| demo.until("export TOKEN=", Duration::from_secs(120)));
    let token = token_line.split('=').nth(1).unwrap().trim().to_owned();
    let url_line =
        tokio::task::block_in_place(|| demo.until("/v1/incidents/1", Duration::from_secs(5)));
    let url = url_line.rsplit(' ').next().unwrap().to_owned();
    let console_line = tokio::task::block_in_place(|| {
        demo.until("The console in a browser:", Duration::from_secs(5))
    });
    let console_url = console_line.rsplit(' ').next().unwrap().trim().to_owned();
    let sign_in_line =
        tokio::task::block_in_place(|| demo.until("operator token:", Duration::from_secs(5)));
    let sign_in_token = sign_in_line.rsplit(' ').next().unwrap().trim().to_owned();
    tokio::task::block_in_place(|| demo.until("Press Ctrl-C", Duration::from_secs(5)));

    // The printed console address and token sign a browser in and show the incident.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = console_url.split("/incidents/").next().unwrap();
    let signed_in = browser
        .post(format!("{base}/sign-in"))
        .form(&[("token", sign_in_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = browser
        .get(&console_url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.text().await.unwrap().contains("state-resolved"));

    let client = reqwest::Client::new();
    let incident: serde_json::Value = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(incident["state"], "resolved", "{incident}");
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);

    demo.interrupt();
    let (status, output) = tokio::task::block_in_place(|| demo.finish(Duration::from_secs(30)));
    assert!(status.success(), "{status}:\n{output}");
    assert!(!scratch_dir(&output).exists(), "removed on Ctrl-C");
}

#[test]
fn a_demo_stopped_before_resolution_exits_non_zero() {
    let mut demo = Running::spawn({
        let mut command = Command::new(binary());
        command.args(["demo", "--exit"]);
        command
    });
    // The rotation waits seconds for the workload's cutover; this interrupt comes long before.
    demo.until("  intake ", Duration::from_secs(60));
    demo.interrupt();
    let (status, output) = demo.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("interrupted before the incident came to rest"),
        "{output}"
    );
    assert!(!output.contains("Summary"), "{output}");
    assert!(
        !scratch_dir(&output).exists(),
        "removed after an interrupt too"
    );
}

/// The commands in README.md's first `sh` block, one per line.
fn quick_start(readme: &str) -> Vec<String> {
    let start = readme.find("```sh\n").expect("README.md has a sh block") + 6;
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("the block is closed")];
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The target directory this test binary was built into.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/debug/deps/api-<hash>
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn git(args: &[&str], dir: &Path) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// Builds a release binary from a fresh clone, so it is left out of a plain `cargo test`;
/// `.ci/run` runs it (`cargo test -- --ignored`).
#[test]
#[ignore = "builds a release binary from a clone; run by .ci/run"]
fn the_readme_quick_start_works_from_a_clean_clone() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let commands = quick_start(&readme);
    assert_eq!(
        commands.first().map(String::as_str),
        Some("cargo run --release -- demo"),
        "README.md's first command runs the demo"
    );
    let scratch = tempfile::tempdir().unwrap();
    let clone = scratch.path().join("akguard");
    git(
        &[
            "clone",
            "--quiet",
            repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
        repo,
    );
    // A target directory of its own, so this build never waits on the one running the tests.
    let target = target_dir().join("quick-start");
    for command in &commands {
        // bash runs a lone command in its own place (exec), so the interrupt below reaches the
        // program as a terminal's Ctrl-C does, not a waiting shell that would die of it.
        let mut shell = Command::new("bash");
        shell
            .args(["-c", command])
            .current_dir(&clone)
            .env("CARGO_TARGET_DIR", &target);
        let mut running = Running::spawn(shell);
        if command.ends_with(" demo") {
            // The demo serves until Ctrl-C, as the README says.
            running.until("Press Ctrl-C", Duration::from_secs(1200));
            running.interrupt();
        }
        let (status, output) = running.finish(Duration::from_secs(1200));
        assert!(status.success(), "`{command}` failed ({status}):\n{output}");
        if command.ends_with(" demo") {
            assert_narrated(&output);
        }
    }
}

#[test]
fn the_quick_start_block_is_read_line_by_line() {
    let readme = "# x\n\nText.\n\n```sh\ncargo run --release -- demo\n\n# a comment\n```\n\n```sh\ncargo test\n```\n";
    assert_eq!(quick_start(readme), ["cargo run --release -- demo"]);
}

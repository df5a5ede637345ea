//! `akguard incidents ...` and `akguard completions` against a running daemon, as a person at
//! a terminal would use them.

use std::process::{Command, ExitStatus};

use serde_json::Value;

use crate::cloud_support::emulator;
use crate::helpers::{OPERATOR_TOKEN, SECRETS, TestDaemon, VIEWER_TOKEN, binary};
use crate::remediation::{daemon_with, report};

const UNUSED_KEY: &str = "LTAI5tLegacyBackup2x8QwP";
const STS_KEY: &str = "STS.NUgYrLnoC37mZZCNnAbez2Vgr";

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `akguard ARGS` with AKGUARD_URL pointing at `app` and `token` in AKGUARD_TOKEN. It
/// runs off the test's runtime, which serves the emulator the daemon is calling.
async fn akguard(app: &TestDaemon, token: &str, args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("AKGUARD_URL", &app.base)
        .env("AKGUARD_TOKEN", token);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let out = Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in SECRETS {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{args:?} printed a secret:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    out
}

/// `akguard incidents act`, again while a worker holds the incident for a moment (409).
async fn act(app: &TestDaemon, args: &[&str]) -> Output {
    for _ in 0..100 {
        let out = akguard(app, OPERATOR_TOKEN, args).await;
        if out.status.success() || !out.stderr.contains("try again") {
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{args:?} stayed busy");
}

fn ids(json_rows: &str) -> Vec<i64> {
    let rows: Value = serde_json::from_str(json_rows).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_cli_lists_shows_audits_and_approves_against_a_running_daemon() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    let config = "[approvals]\nsteps = [\"disable_key\"]\ndeadline = \"1h\"\n";
    let app = daemon_with(&url, config, &[]).await;
    let id = report(&app, UNUSED_KEY, 5).await;
    let sts = report(&app, STS_KEY, 5).await;
    app.wait_for_incident(id, "waiting for approval", |i| i["waiting_for"].is_object())
        .await;
    app.wait_for_incident(sts, "settled", |i| i["state"] == "needs_attention")
        .await;

    let list = akguard(&app, VIEWER_TOKEN, &["incidents", "list"]).await;
    assert!(list.status.success(), "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    assert!(lines[0].starts_with("ID"), "{}", list.stdout);
    let waiting_row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap();
    for expected in [
        "******************2x8QwP",
        "disable_key",
        "approval: disable_key",
    ] {
        assert!(waiting_row.contains(expected), "{expected}: {waiting_row}");
    }
    assert!(!list.stdout.contains(UNUSED_KEY), "the key is masked");
    let sts_row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{sts} ")))
        .unwrap();
    assert!(
        sts_row.contains("needs_attention (sts_key)") && sts_row.contains("operator: console"),
        "{sts_row}"
    );

    let approval = akguard(
        &app,
        VIEWER_TOKEN,
        &["incidents", "list", "--waiting", "approval", "--json"],
    )
    .await;
    assert!(approval.status.success(), "{}", approval.stderr);
    assert_eq!(ids(&approval.stdout), [id]);
    let operator = akguard(
        &app,
        VIEWER_TOKEN,
        &["incidents", "list", "--waiting", "operator", "--json"],
    )
    .await;
    assert_eq!(ids(&operator.stdout), [sts], "{}", operator.stderr);
    let by_state = akguard(
        &app,
        VIEWER_TOKEN,
        &["incidents", "list", "--state", "needs_attention", "--json"],
    )
    .await;
    assert_eq!(ids(&by_state.stdout), [sts], "{}", by_state.stderr);

    let show = akguard(&app, VIEWER_TOKEN, &["incidents", "show", &id.to_string()]).await;
    assert!(show.status.success(), "{}", show.stderr);
    for expected in [
        &format!("incident {id}  disable_key"),
        &format!("key          {UNUSED_KEY}"),
        "waiting for  approval: disable_key",
        "approval of the disable_key step",
    ] {
        assert!(
            show.stdout.contains(expected),
            "no {expected:?} in:\n{}",
            show.stdout
        );
    }
    let audit = akguard(&app, VIEWER_TOKEN, &["incidents", "audit", &id.to_string()]).await;
    assert!(audit.status.success(), "{}", audit.stderr);
    assert!(
        audit.stdout.lines().count() >= 2 && audit.stdout.contains("source:generic"),
        "{}",
        audit.stdout
    );

    // A viewer may not act: the API's 403, in its words, and a failed exit.
    let refused = akguard(
        &app,
        VIEWER_TOKEN,
        &["incidents", "act", &id.to_string(), "approve"],
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("403 Forbidden") && refused.stderr.contains("needs operator"),
        "{}",
        refused.stderr
    );

    let approved = act(&app, &["incidents", "act", &id.to_string(), "approve"]).await;
    assert!(approved.status.success(), "{}", approved.stderr);
    assert!(
        approved
            .stdout
            .contains(&format!("incident {id}: approve accepted")),
        "{}",
        approved.stdout
    );
    app.wait_for_incident(id, "past the approval", |i| i["state"] != "disable_key")
        .await;
    let trail = akguard(&app, VIEWER_TOKEN, &["incidents", "audit", &id.to_string()]).await;
    assert!(
        trail.stdout.contains("operator:alice") && trail.stdout.contains("operator.approve"),
        "{}",
        trail.stdout
    );
    let approval = akguard(
        &app,
        VIEWER_TOKEN,
        &["incidents", "list", "--waiting", "approval", "--json"],
    )
    .await;
    assert_eq!(ids(&approval.stdout), Vec::<i64>::new());
}

#[tokio::test]
async fn a_cancel_needs_a_reason_and_then_closes_the_incident() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&crate::helpers::generic(
            "LTAI5tCLICANCEL00001",
            "cli-cancel",
        ))
        .await
        .incident_id()
        .to_string();
    let bare = act(&app, &["incidents", "act", &id, "cancel"]).await;
    assert!(!bare.status.success());
    assert!(
        bare.stderr
            .contains("400 Bad Request: cancel needs {\"reason\": \"...\"} (bad_request)"),
        "{}",
        bare.stderr
    );
    let cancelled = act(
        &app,
        &["incidents", "act", &id, "cancel", "--reason", "a test key"],
    )
    .await;
    assert!(cancelled.status.success(), "{}", cancelled.stderr);
    assert!(
        cancelled.stdout.contains("cancel accepted; now cancel"),
        "{}",
        cancelled.stdout
    );
    let trail = akguard(&app, VIEWER_TOKEN, &["incidents", "audit", &id]).await;
    assert!(trail.stdout.contains("a test key"), "{}", trail.stdout);
}

#[tokio::test]
async fn a_wrong_token_shows_the_apis_401_and_fails() {
    let app = TestDaemon::spawn().await;
    let out = akguard(&app, "not-the-token-0000", &["incidents", "list"]).await;
    assert!(!out.status.success());
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("401 Unauthorized: the bearer token is not valid (unauthorized)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-token-0000"), "{}", out.stderr);

    // --token-file wins over the environment, and --url over AKGUARD_URL.
    let token_file = app.dir.path().join("token");
    std::fs::write(&token_file, format!("{VIEWER_TOKEN}\n")).unwrap();
    let token_file = token_file.display().to_string();
    let out = akguard(
        &app,
        "not-the-token-0000",
        &[
            "incidents",
            "list",
            "--token-file",
            &token_file,
            "--url",
            &app.base,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);

    let unknown = akguard(&app, VIEWER_TOKEN, &["incidents", "show", "999"]).await;
    assert!(!unknown.status.success());
    assert!(
        unknown
            .stderr
            .contains("404 Not Found: no incident \"999\" (not_found)"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn completions_print_for_bash_and_help_names_the_client_commands() {
    let run = |args: &[&str]| {
        let out = Command::new(binary()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_akguard()") && bash.contains("incidents"),
        "{bash}"
    );
    assert!(bash.contains("confirm-cutover"), "the actions complete too");
    assert!(run(&["completions", "zsh"]).contains("#compdef akguard"));
    assert!(run(&["completions", "fish"]).contains("complete -c akguard"));

    let help = run(&["help"]);
    assert!(
        help.contains("incidents") && help.contains("completions"),
        "{help}"
    );
    let incidents = run(&["incidents", "--help"]);
    for command in [
        "list",
        "show",
        "audit",
        "act",
        "--url <URL>",
        "--token-file <FILE>",
    ] {
        assert!(incidents.contains(command), "{command}: {incidents}");
    }
    let act = run(&["help", "incidents", "act"]);
    for expected in [
        "--reason <TEXT>",
        "--set <KEY=VALUE>",
        "confirm-cutover",
        "Examples:",
    ] {
        assert!(act.contains(expected), "{expected}: {act}");
    }
    assert!(run(&["--version"]).starts_with("akguard "));
}

#[tokio::test]
async fn akguard_report_prints_the_incidents_report_in_markdown_or_json() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&crate::helpers::generic(
            "LTAI5tReportedForCliRep1",
            "e-cli-report",
        ))
        .await
        .incident_id();
    let id_arg = id.to_string();

    let md = akguard(&app, VIEWER_TOKEN, &["report", &id_arg]).await;
    assert!(md.status.success(), "{}", md.stderr);
    assert!(
        md.stdout.starts_with(&format!("# Incident report {id}\n")),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("## Open items"), "{}", md.stdout);

    let ja = akguard(&app, VIEWER_TOKEN, &["report", &id_arg, "--lang", "ja"]).await;
    assert!(
        ja.stdout
            .starts_with(&format!("# インシデント報告書 {id}\n")),
        "{}",
        ja.stdout
    );

    let json = akguard(&app, VIEWER_TOKEN, &["report", &id_arg, "--json"]).await;
    assert!(json.status.success(), "{}", json.stderr);
    let data: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(data["summary"]["incident_id"], id, "{data}");

    let missing = akguard(&app, VIEWER_TOKEN, &["report", "999999"]).await;
    assert!(!missing.status.success());
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
}

/// `akguard incidents watch ARGS` running in the background, its stdout read line by line.
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    fn start(app: &TestDaemon, token: &str, args: &[&str]) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new(binary())
            .args(["incidents", "watch"])
            .args(args)
            .env("AKGUARD_URL", &app.base)
            .env("AKGUARD_TOKEN", token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Lines until one satisfies `done` (bounded), all of them.
    async fn until(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = tokio::task::block_in_place(|| {
                self.lines.recv_timeout(std::time::Duration::from_secs(60))
            })
            .unwrap_or_else(|_| panic!("the awaited line never came; got {seen:#?}"));
            let last = done(&line);
            seen.push(line);
            if last {
                return seen;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_watch_follows_the_event_stream_and_resumes_after_an_event_id() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, "", &[]).await;
    let live = Watch::start(&app, VIEWER_TOKEN, &["--json"]);
    // The stream starts now: wait until the watcher is connected before reporting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let id = report(&app, crate::cloud_support::LEAKED_KEY, 25).await;
    let to = |line: &str, state: &str| {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        event["event"] == "transition"
            && event["data"]["incident_id"] == id
            && event["data"]["detail"]["to"] == state
    };
    let seen = live.until(|l| to(l, "awaiting_operator")).await;
    let events: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(seen.iter().any(|l| to(l, "revoke")), "{seen:#?}");
    for secret in SECRETS {
        assert!(
            !seen.iter().any(|l| l.contains(secret)),
            "a secret was shown"
        );
    }
    drop(live);

    // From the first event's id, in text, only this incident: what followed it, in order.
    let first = &events[0];
    let after = first["id"].as_str().unwrap();
    let resumed = Watch::start(
        &app,
        VIEWER_TOKEN,
        &["--after", after, "--incident", &id.to_string()],
    );
    let text = resumed.until(|l| l.contains("-> awaiting_operator")).await;
    let expected: Vec<&Value> = events[1..]
        .iter()
        .filter(|e| e["data"]["incident_id"] == id)
        .collect();
    assert_eq!(text.len(), expected.len(), "{text:#?}\n{expected:#?}");
    for (line, event) in text.iter().zip(expected) {
        let at = event["data"]["at"].as_str().unwrap();
        assert!(line.starts_with(&format!("{at}  #{id}  ")), "{line}");
    }
    assert!(
        text.iter().any(|l| l.contains("-> revoke  by worker:")),
        "{text:#?}"
    );

    // A refused token ends the command at once with the API's words; it is not retried.
    let refused = akguard(&app, "not-the-token-0000", &["incidents", "watch"]).await;
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    let bad_cursor = akguard(&app, VIEWER_TOKEN, &["incidents", "watch", "--after", "x"]).await;
    assert!(!bad_cursor.status.success());
    assert!(bad_cursor.stderr.contains("400"), "{}", bad_cursor.stderr);
}

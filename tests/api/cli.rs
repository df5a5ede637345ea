//! The subcommands besides `serve`.

use crate::helpers::{DAEMON_AK_SECRET, GENERIC_SECRET, TestDaemon, run_cli, run_cli_with_env};

#[tokio::test]
async fn check_config_prints_the_settings_with_secrets_redacted() {
    let app = TestDaemon::spawn().await;
    let (status, stdout, stderr) = run_cli(&["check-config"], &app.config_path());
    assert!(status.success(), "{stderr}");
    let settings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        settings["intake"]["sources"]["generic"]["secret"],
        "[redacted]"
    );
    assert_eq!(settings["alibaba"]["access_key_secret"], "[redacted]");
    assert_eq!(settings["alibaba"]["access_key_id"], "LTAI5tDaemonOwnKey01");
    assert!(!stdout.contains(GENERIC_SECRET) && !stdout.contains(DAEMON_AK_SECRET));
}

#[test]
fn check_config_fails_clearly_on_an_invalid_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let siem = "[intake.sources.siem]\nformat = \"generic\"\nauth = \"hmac\"\n";
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Env, &str); 6] = [
        (
            "[server]\nlisten = \"not an address\"\n",
            &[],
            "server.listen",
        ),
        (siem, &[], "intake.sources.siem.secret"),
        (
            siem,
            &[("AKGUARD__INTAKE__SOURCES__SIEM__SECRET", "short")],
            "at least 16",
        ),
        (
            "[intake.sources.other]\nauth = \"none\"\n",
            &[],
            "intake.sources.other.format",
        ),
        ("[intake.sources.generic]\nauth = \"magic\"\n", &[], "magic"),
        (
            "[api]\ntokens_file = \"/nonexistent/tokens.toml\"\n",
            &[],
            "api.tokens_file /nonexistent/tokens.toml",
        ),
    ];
    for (toml, env, expected) in cases {
        std::fs::write(&config, toml).unwrap();
        let (status, stdout, stderr) = run_cli_with_env(&["check-config"], &config, env);
        assert!(!status.success(), "{toml} was accepted:\n{stdout}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}

#[test]
fn check_config_lists_every_mistake_with_its_full_path_and_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mistakes.toml");
    std::fs::write(
        &config,
        r#"
[log]
level = "verbose"

[remediaton]
workers = 2

[remediation]
dry_run = "yes"

[triage]
in_use_windw = "7d"

[intake.sources.generic]
secret = "written-in-the-file-0123456789"

[[rotation.users]]
user = "ci-deployer"
sink = "kms"
secret_name = "acme/ci-deployer/accesskey"

[[rotation.users]]
user = "ci-deployer"
sink = "file"
path = "/etc/ci-deployer/accesskey.json"
"#,
    )
    .unwrap();
    let (status, stdout, stderr) = run_cli_with_env(
        &["check-config"],
        &config,
        &[("AKGUARD__REMEDIATION__DRYRUN", "true")],
    );
    assert!(!status.success(), "accepted:\n{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    for expected in [
        "7 errors in the configuration",
        "`log.level`: \"verbose\" is not a level; expected one of trace, debug, info, warn, error, off",
        "unknown setting `remediaton`",
        "did you mean `remediation`?",
        "`remediation.dry_run`: invalid type: string \"yes\", expected a boolean",
        "unknown setting `triage.in_use_windw`",
        "did you mean `triage.in_use_window`?",
        "`intake.sources.generic.secret`",
        "set the environment variable AKGUARD__INTAKE__SOURCES__GENERIC__SECRET instead",
        "`rotation.users[1].user`: `ci-deployer` is already listed at rotation.users[0]",
        "unknown setting `remediation.dryrun` in environment variable AKGUARD__REMEDIATION__DRYRUN; \
         did you mean `remediation.dry_run` (AKGUARD__REMEDIATION__DRY_RUN)?",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("written-in-the-file-0123456789"),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_the_warnings_serve_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("akguard.toml");
    std::fs::write(
        &config,
        "[intake.sources.dev]\nformat = \"generic\"\nauth = \"none\"\n\n\
         [remediation]\ndry_run = true\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::helpers::binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for expected in [
        "warning: alibaba.access_key_id: no Alibaba Cloud credentials are configured",
        "warning: api.tokens_file: no API tokens configured",
        "warning: intake.sources.dev.auth: intake source `dev` accepts UNAUTHENTICATED notifications",
        "warning: remediation.dry_run: dry run",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    let settings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(settings["remediation"]["dry_run"], true);
}

#[test]
fn migrate_creates_the_database_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/akguard.db");
    let config = dir.path().join("akguard.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let (status, _, stderr) = run_cli(&["migrate"], &config);
    assert!(status.success(), "{stderr}");
    assert!(db.exists());
    // Migrating twice is harmless.
    assert!(run_cli(&["migrate"], &config).0.success());
}

#[test]
fn the_emulator_command_announces_its_address_and_serves_signed_calls() {
    use std::io::{BufRead, BufReader};
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenarios/leaked-unused.json");
    let mut child = std::process::Command::new(crate::helpers::binary())
        .args(["emulator", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ready["emulator"], "ready", "{line}");
    let listen = ready["listen"].as_str().unwrap();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{line}"
    );
    assert_eq!(ready.as_object().unwrap().len(), 2, "{line}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let users = runtime.block_on(async {
        crate::cloud_support::client(&format!("http://{listen}"))
            .list_users()
            .await
            .unwrap()
            .value
    });
    assert!(users.iter().any(|u| u.user_name == "legacy-backup"));

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn verify_audit_names_a_missing_database_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mistyped/akguard.db");
    let config = dir.path().join("akguard.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let (status, stdout, stderr) = run_cli(&["verify-audit"], &config);
    assert!(!status.success(), "{stdout}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(!db.exists() && !db.parent().unwrap().exists());
}

#[test]
fn help_describes_every_command_and_its_options() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(crate::helpers::binary())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for text in [help(&["help"]), help(&["--help"])] {
        for command in [
            "serve",
            "check-config",
            "migrate",
            "verify-audit",
            "demo",
            "emulator",
        ] {
            assert!(text.contains(command), "{command} missing from:\n{text}");
        }
    }
    let serve = help(&["serve", "--help"]);
    assert!(serve.contains("--config <FILE>"), "{serve}");
    let emulator = help(&["help", "emulator"]);
    assert!(
        emulator.contains("--listen <ADDR>") && emulator.contains("--scenario <FILE>"),
        "{emulator}"
    );
}

#[test]
fn check_config_names_each_bad_fence_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fence.toml");
    std::fs::write(
        &config,
        r#"
[[containment.fence]]
user = "ci-deployer"
cidrs = ["10.0.8.0/24", "10.0.8.0/33"]

[[containment.fence]]
user = "batch"
cidrs = []

[[containment.fence]]
user = "etl"
vpc = { id = "vpc-etl" }

[[containment.fence]]
user = "web"
cidrs = ["203.0.113.0/24"]
vpc = { id = "vpc-web", cidrs = ["172.16.0.0/16"] }
"#,
    )
    .unwrap();
    let (status, stdout, stderr) = run_cli_with_env(&["check-config"], &config, &[]);
    assert!(!status.success(), "accepted:\n{stdout}");
    for expected in [
        "3 errors in the configuration",
        "`containment.fence[0].cidrs`: `10.0.8.0/33` is not a CIDR block",
        "`containment.fence[1].cidrs`: the fence for `batch` lists no networks",
        "`containment.fence[2].vpc.cidrs`: VPC vpc-etl has no CIDR blocks",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("fence[3]"), "{stderr}");
}

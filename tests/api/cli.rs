//! The subcommands besides `serve`.

use crate::helpers::{DAEMON_AK_SECRET, GENERIC_SECRET, TestDaemon, run_cli};

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
    let cases = [
        ("[server]\nlisten = \"not an address\"\n", "server.listen"),
        (
            "[intake.sources.generic]\nauth = \"hmac\"\n",
            "intake.sources.generic.secret",
        ),
        (
            "[intake.sources.generic]\nauth = \"hmac\"\nsecret = \"short\"\n",
            "at least 16",
        ),
        (
            "[intake.sources.siem]\nauth = \"none\"\n",
            "intake.sources.siem.format",
        ),
        ("[intake.sources.generic]\nauth = \"magic\"\n", "magic"),
        (
            "[api]\ntokens_file = \"/nonexistent/tokens.toml\"\n",
            "api.tokens_file",
        ),
    ];
    for (toml, expected) in cases {
        std::fs::write(&config, toml).unwrap();
        let (status, stdout, stderr) = run_cli(&["check-config"], &config);
        assert!(!status.success(), "{toml} was accepted:\n{stdout}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
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

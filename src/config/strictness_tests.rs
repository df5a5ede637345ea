//! Tests of strict loading: each mistake a user can make in the file or the environment is
//! refused with the key's full path, and all of them at once.

use std::path::PathBuf;

use super::{ConfigError, Settings, Warning};

/// Loads `toml` as the configuration file, with `env` as the whole environment.
fn load(toml: &str, env: &[(&str, &str)]) -> (Result<Settings, ConfigError>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("akguard.toml");
    std::fs::write(&path, toml).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    (Settings::load_with_env(Some(&path), env), path)
}

/// Every error of a failed load or validation, as `check-config` finds them, flattened.
fn errors(toml: &str, env: &[(&str, &str)]) -> Vec<ConfigError> {
    match load(toml, env).0.and_then(|s| s.validate()) {
        Ok(_) => panic!("accepted:\n{toml}\n{env:?}"),
        Err(ConfigError::Several(all)) => all,
        Err(one) => vec![one],
    }
}

/// The one error about `key`, as text.
fn error_about(errors: &[ConfigError], key: &str) -> String {
    let found: Vec<String> = errors
        .iter()
        .filter(|e| e.key() == Some(key))
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 1, "one error about {key} in {errors:#?}");
    found[0].clone()
}

#[test]
fn an_unknown_section_is_refused_with_the_section_meant() {
    let (result, path) = load("[remediaton]\ndry_run = true\n", &[]);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("unknown setting `remediaton`"), "{err}");
    assert!(err.contains("did you mean `remediation`?"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn an_unknown_key_is_named_by_its_full_path_with_the_key_meant() {
    let all = errors(
        "[remediation]\ndryrun = true\n[triage]\nin_use_windw = \"7d\"\n",
        &[],
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    let dry = error_about(&all, "remediation.dryrun");
    assert!(dry.contains("did you mean `remediation.dry_run`?"), "{dry}");
    let window = error_about(&all, "triage.in_use_windw");
    assert!(
        window.contains("did you mean `triage.in_use_window`?"),
        "{window}"
    );
}

#[test]
fn a_key_in_the_wrong_section_is_pointed_to_its_section() {
    let all = errors("[remediation]\nin_use_window = \"7d\"\n", &[]);
    let err = error_about(&all, "remediation.in_use_window");
    assert!(
        err.contains("did you mean `triage.in_use_window`?"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_inside_a_source_or_a_rotation_user_is_refused() {
    let all = errors(
        "[intake.sources.siem]\nformat = \"generic\"\nauht = \"hmac\"\n\n\
         [[rotation.users]]\nuser = \"ci\"\nsink = \"kms\"\nsecret_nme = \"acme/ci\"\n",
        &[(
            "AKGUARD__INTAKE__SOURCES__SIEM__SECRET",
            "0123456789abcdef0",
        )],
    );
    let auth = error_about(&all, "intake.sources.siem.auht");
    assert!(
        auth.contains("did you mean `intake.sources.siem.auth`?"),
        "{auth}"
    );
    let name = error_about(&all, "rotation.users[0].secret_nme");
    assert!(
        name.contains("did you mean `rotation.users[0].secret_name`?"),
        "{name}"
    );
}

#[test]
fn an_unknown_environment_variable_is_named_with_the_variable_meant() {
    let all = errors("", &[("AKGUARD__REMEDIATION__DRYRUN", "true")]);
    let err = error_about(&all, "remediation.dryrun");
    assert!(
        err.contains("environment variable AKGUARD__REMEDIATION__DRYRUN"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `remediation.dry_run` (AKGUARD__REMEDIATION__DRY_RUN)?"),
        "{err}"
    );
    let all = errors("", &[("AKGUARD__REMEDIATON__DRY_RUN", "true")]);
    let err = error_about(&all, "remediaton.dry_run");
    assert!(err.contains("did you mean `remediation.dry_run`"), "{err}");
}

#[test]
fn an_invalid_choice_lists_the_valid_ones() {
    let all = errors("[log]\nformat = \"xml\"\nlevel = \"verbose\"\n", &[]);
    let format = error_about(&all, "log.format");
    assert!(
        format.contains("`text`") && format.contains("`json`"),
        "{format}"
    );
    let level = error_about(&all, "log.level");
    assert!(
        level.contains(
            "\"verbose\" is not a level; expected one of trace, debug, info, warn, error, off"
        ),
        "{level}"
    );
    let all = errors("[approvals]\non_deadline = \"wait\"\n", &[]);
    let on_deadline = error_about(&all, "approvals.on_deadline");
    assert!(
        on_deadline.contains("`proceed`") && on_deadline.contains("`needs_attention`"),
        "{on_deadline}"
    );
}

#[test]
fn a_switch_is_true_or_false_and_nothing_else() {
    let all = errors("[remediation]\ndry_run = \"yes\"\n", &[]);
    let err = error_about(&all, "remediation.dry_run");
    assert!(
        err.contains("invalid type: string \"yes\", expected a boolean"),
        "{err}"
    );
    let all = errors("[rotation]\ndisable_unknown_keys = 1\n", &[]);
    error_about(&all, "rotation.disable_unknown_keys");
    let all = errors("", &[("AKGUARD__REMEDIATION__DRY_RUN", "on")]);
    let err = error_about(&all, "remediation.dry_run");
    assert!(err.contains("AKGUARD__REMEDIATION__DRY_RUN"), "{err}");
    let (settings, _) = load("", &[("AKGUARD__REMEDIATION__DRY_RUN", "TRUE")]);
    assert!(settings.unwrap().remediation.dry_run);
}

#[test]
fn a_number_written_as_text_in_the_file_is_refused() {
    let all = errors("[remediation]\nworkers = \"4\"\n", &[]);
    let err = error_about(&all, "remediation.workers");
    assert!(err.contains("invalid type: string \"4\""), "{err}");
    let (settings, _) = load("", &[("AKGUARD__REMEDIATION__WORKERS", "2")]);
    assert_eq!(settings.unwrap().remediation.workers, 2);
}

#[test]
fn a_user_listed_twice_for_rotation_is_refused() {
    let (settings, _) = load(
        "[[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"kms\"\nsecret_name = \"acme/ci\"\n\n\
         [[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"file\"\npath = \"/etc/ci/key.json\"\n",
        &[],
    );
    let err = settings.unwrap().validate().unwrap_err().to_string();
    assert!(err.contains("`rotation.users[1].user`"), "{err}");
    assert!(err.contains("already listed at rotation.users[0]"), "{err}");
}

#[test]
fn a_secret_written_in_the_file_is_refused_naming_its_variable() {
    let webhook = "file-webhook-secret-0123456789";
    let key_secret = "file-access-key-secret-0123";
    let all = errors(
        &format!(
            "[intake.sources.generic]\nsecret = \"{webhook}\"\n\
             [alibaba]\naccess_key_id = \"LTAI5tFileKey\"\naccess_key_secret = \"{key_secret}\"\n"
        ),
        &[],
    );
    let source = error_about(&all, "intake.sources.generic.secret");
    assert!(
        source.contains("set the environment variable AKGUARD__INTAKE__SOURCES__GENERIC__SECRET"),
        "{source}"
    );
    let key = error_about(&all, "alibaba.access_key_secret");
    assert!(key.contains("AKGUARD__ALIBABA__ACCESS_KEY_SECRET"), "{key}");
    let debug = format!("{all:?}");
    let shown = format!("{debug} {}", ConfigError::Several(all));
    assert!(
        !shown.contains(webhook) && !shown.contains(key_secret),
        "{shown}"
    );
}

#[test]
fn a_secret_of_the_wrong_type_is_not_quoted() {
    let all = errors(
        "[intake.sources.generic]\nsecret = 98765432109876543\n",
        &[],
    );
    let err = error_about(&all, "intake.sources.generic.secret");
    assert!(!err.contains("98765432109876543"), "{err}");
    assert!(err.contains("expected a string"), "{err}");
}

#[test]
fn a_file_that_cannot_be_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("no/such/tokens.toml");
    let all = errors(
        &format!(
            "[api]\ntokens_file = \"{}\"\n[server]\nlisten = \"nowhere\"\n",
            tokens.display()
        ),
        &[],
    );
    let missing = all
        .iter()
        .find(|e| matches!(e, ConfigError::File { what: "api.tokens_file", path, .. } if *path == tokens))
        .unwrap_or_else(|| panic!("no error about the tokens file in {all:#?}"));
    let text = missing.to_string();
    assert!(text.contains(&tokens.display().to_string()), "{text}");
    assert!(text.contains("No such file"), "{text}");
    error_about(&all, "server.listen");

    let config = dir.path().join("absent.toml");
    let err = Settings::load_with_env(Some(&config), std::iter::empty()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::File { what: "configuration file", path, .. } if *path == config),
        "{err}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let all = errors(
        r#"
[server]
listen = "nowhere"

[log]
format = "xml"

[remediaton]
workers = 2

[remediation]
dry_run = "yes"

[triage]
in_use_windw = "7d"

[[rotation.users]]
user = "ci-deployer"
sink = "s3"

[[rotation.users]]
user = "backup-agent"
sink = "file"
path = "/etc/backup/key.json"
paht = "/etc/backup/key.json"
"#,
        &[("AKGUARD__AUDIT__LOOKBAK", "7d")],
    );
    for key in [
        "server.listen",
        "log.format",
        "remediaton",
        "remediation.dry_run",
        "triage.in_use_windw",
        "rotation.users[0].sink",
        // The first entry cannot be read, yet the second keeps its own number.
        "rotation.users[1].paht",
        "audit.lookbak",
    ] {
        error_about(&all, key);
    }
    assert_eq!(all.len(), 8, "{all:#?}");
}

#[test]
fn check_config_warns_about_what_serve_warns_about() {
    let (settings, _) = load(
        "[intake.sources.dev]\nformat = \"generic\"\nauth = \"none\"\n\
         [remediation]\ndry_run = true\n",
        &[],
    );
    let warnings: Vec<String> = settings
        .unwrap()
        .check()
        .unwrap()
        .iter()
        .map(|w: &Warning| w.setting.clone())
        .collect();
    assert_eq!(
        warnings,
        [
            "alibaba.access_key_id",
            "intake.security_center.enabled",
            "api.tokens_file",
            "intake.sources.dev.auth",
            "remediation.dry_run"
        ]
    );
}

#[test]
fn independent_mistakes_within_one_table_are_all_reported() {
    let all = errors(
        "[intake.sources.siem]\nformat = \"generic\"\nauth = \"basic\"\n\
         allow_cidrs = [\"10.0.0.0/33\"]\n\
         [alibaba]\nendpoints = { s3 = \"https://s3.example\" }\nrole_arn = \"arn:aws:iam\"\n\
         [audit]\nlookback = \"365d\"\n[remediation]\nlease = \"soon\"\n",
        &[
            (
                "AKGUARD__INTAKE__SOURCES__SIEM__SECRET",
                "basic-password-0123456",
            ),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tEnvKey"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret-value"),
        ],
    );
    for key in [
        "intake.sources.siem.username",
        "intake.sources.siem.allow_cidrs",
        "alibaba.endpoints.s3",
        "alibaba.role_arn",
        "audit.lookback",
        "remediation.lease",
    ] {
        error_about(&all, key);
    }
    assert_eq!(all.len(), 6, "{all:#?}");
}

#[test]
fn the_metrics_token_comes_only_from_the_environment_and_is_checked() {
    let in_file = errors("[metrics]\ntoken = \"metrics-token-in-the-file-0\"\n", &[]);
    let message = error_about(&in_file, "metrics.token");
    assert!(message.contains("AKGUARD__METRICS__TOKEN"), "{message}");
    assert!(
        !message.contains("metrics-token-in-the-file-0"),
        "{message}"
    );
    let short = errors("", &[("AKGUARD__METRICS__TOKEN", "short")]);
    error_about(&short, "metrics.token");
    let listen = errors("[metrics]\nlisten = \"everywhere\"\n", &[]);
    error_about(&listen, "metrics.listen");

    let (settings, _) = load(
        "[server]\nlisten = \"0.0.0.0:8080\"\n",
        &[("AKGUARD__METRICS__LISTEN", "127.0.0.1:9464")],
    );
    let runtime = settings.unwrap().validate().unwrap();
    let metrics = runtime.metrics.as_ref().expect("metrics are on by default");
    assert_eq!(metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert!(
        runtime
            .warnings()
            .iter()
            .all(|w| w.setting != "metrics.token")
    );
    // Beside the API on a public address and with no token, a warning says so.
    let (settings, _) = load("[server]\nlisten = \"0.0.0.0:8080\"\n", &[]);
    let warnings: Vec<Warning> = settings.unwrap().validate().unwrap().warnings();
    assert!(
        warnings.iter().any(|w| w.setting == "metrics.token"),
        "{warnings:?}"
    );
    let (settings, _) = load("[metrics]\nenabled = false\n", &[]);
    assert!(settings.unwrap().validate().unwrap().metrics.is_none());
}

#[test]
fn bad_account_entries_are_named_by_their_place_and_account() {
    let all = errors(
        "[alibaba]\naccess_key_id = \"LTAI5tOwnKey\"\n\
         [[alibaba.accounts]]\naccount_id = \"2222222222222222\"\n\
         role_arn = \"acs:ram::2222222222222222:role/akguard\"\n\
         [[alibaba.accounts]]\naccount_id = \"2222222222222222\"\n\
         role_arn = \"acs:ram::2222222222222222:role/akguard\"\n\
         [[alibaba.accounts]]\naccount_id = \"3333333333333333\"\nrole_arn = \"acs:ram:3333:role/x\"\n\
         [[alibaba.accounts]]\naccount_id = \"4444444444444444\"\n\
         role_arn = \"acs:ram::5555555555555555:role/akguard\"\n\
         rate_limits = { other = -1.0 }\nendpoints = { s3 = \"https://s3.example\" }\n\
         [[alibaba.accounts]]\naccount_id = \"acme\"\nrole_arn = \"acs:ram::1:role/x\"\n\
         [[alibaba.accounts]]\naccount_id = \"6666666666666666\"\n\
         role_arn = \"acs:ram::6666666666666666:role/x\"\nrolearn = \"typo\"\n",
        &[(
            "AKGUARD__ALIBABA__ACCESS_KEY_SECRET",
            "own-secret-value-0123",
        )],
    );
    let twice = error_about(&all, "alibaba.accounts[1].account_id");
    assert!(
        twice.contains("account 2222222222222222: listed twice"),
        "{twice}"
    );
    let malformed = error_about(&all, "alibaba.accounts[2].role_arn");
    assert!(
        malformed.contains("account 3333333333333333: expected acs:ram::"),
        "{malformed}"
    );
    let elsewhere = error_about(&all, "alibaba.accounts[3].role_arn");
    assert!(
        elsewhere.contains("in account 5555555555555555"),
        "{elsewhere}"
    );
    error_about(&all, "alibaba.accounts[3].rate_limits");
    error_about(&all, "alibaba.accounts[3].endpoints.s3");
    error_about(&all, "alibaba.accounts[4].account_id");
    let typo = error_about(&all, "alibaba.accounts[5].rolearn");
    assert!(
        typo.contains("did you mean `alibaba.accounts[5].role_arn`?"),
        "{typo}"
    );
}

#[test]
fn other_accounts_need_akguards_own_credentials() {
    let all = errors(
        "[[alibaba.accounts]]\naccount_id = \"2222222222222222\"\n\
         role_arn = \"acs:ram::2222222222222222:role/akguard\"\n",
        &[],
    );
    let err = error_about(&all, "alibaba.accounts");
    assert!(err.contains("akguard's own credentials"), "{err}");
}

//! What the demo sets up before anything runs: a private scratch directory, fresh secrets, the
//! built-in scenario with its simulated workload, and a configuration file pointing at it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use akguard::intake::sign_webhook;
use akguard_emulator::{Scenario, Workload};

/// The scenario: a CI user's key leaked to GitHub and in use from unknown IPs, a backdoor
/// user, a billing spike, console users without MFA.
const SCENARIO: &str = include_str!("../../config/scenarios/leaked-in-use.json");
pub const LEAKED_KEY: &str = "LTAI5tQ9xLeakedCiDeploy7";
pub const LEAKED_USER: &str = "ci-deployer";
const WORKLOAD_SECRET: &str = "acme/ci-deployer/accesskey";
/// Where the CI workload calls from: the address its trail shows before the leak. The
/// network fence limits the leaked key to its block, so the attacker's calls are refused.
pub const WORKLOAD_ADDRESS: &str = "10.0.8.14";
/// akguard's own identity in the scenario; it exists only inside the emulator.
const AKGUARD_KEY: &str = "LTAI5tAKGUARDEMULATOR001";
const AKGUARD_SECRET: &str = "akguardEmulatorSecretDoNotUse0";

/// The built-in scenario, with the CI workload re-reading its KMS secret twice a second so
/// that it moves to the rotated key on its own.
pub fn scenario() -> Scenario {
    let mut scenario = Scenario::from_json(SCENARIO).expect("the built-in scenario is valid");
    scenario.workload = Some(Workload {
        access_key_id: LEAKED_KEY.into(),
        secret_name: WORKLOAD_SECRET.into(),
        interval_ms: 500,
        source_ip: Some(WORKLOAD_ADDRESS.parse().expect("a valid address")),
        source_vpc: None,
    });
    scenario
}

/// A directory only this user can read, removed when dropped.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("akguard-demo-{}", random_hex(6)));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path)?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove the demo's directory");
        }
    }
}

/// Secrets made up for this run only.
pub struct Secrets {
    pub webhook: String,
    pub viewer_token: String,
    pub operator_token: String,
}

impl Secrets {
    pub fn generate() -> Self {
        Self {
            webhook: random_hex(24),
            viewer_token: random_hex(24),
            operator_token: random_hex(24),
        }
    }
}

/// Writes the token file and the configuration into `dir`; returns the configuration's path.
pub fn write_config(
    dir: &Path,
    listen: SocketAddr,
    emulator_url: &str,
    secrets: &Secrets,
) -> std::io::Result<PathBuf> {
    let sha = |token: &str| hex::encode(Sha256::digest(token.as_bytes()));
    let tokens = format!(
        "[[token]]\nname = \"demo-viewer\"\nsha256 = \"{}\"\nrole = \"viewer\"\n\n\
         [[token]]\nname = \"demo-operator\"\nsha256 = \"{}\"\nrole = \"operator\"\n",
        sha(&secrets.viewer_token),
        sha(&secrets.operator_token),
    );
    let tokens_path = dir.join("tokens.toml");
    std::fs::write(&tokens_path, tokens)?;
    let database = format!("sqlite://{}", dir.join("akguard.db").display());
    // The waits that guard a real workload (30 minutes of quiet, an hour's grace) are cut to
    // seconds, and the second ActionTrail pass runs shortly after the first.
    let config = format!(
        r#"[server]
listen = {listen}
shutdown_grace_secs = 5

[database]
url = {database}

[api]
tokens_file = {tokens}

[intake.security_center]
enabled = false

[intake.sources.generic]
auth = "hmac"

[alibaba]
endpoint = {endpoint}
access_key_id = {key}

[audit]
known_cidrs = ["10.0.0.0/8"]
settle_delay = "3s"

[[containment.fence]]
user = {user}
cidrs = ["10.0.8.0/24"]

[rotation]
quiet_period = "2s"
poll_interval = "1s"
disable_grace = "2s"

[[rotation.users]]
user = {user}
sink = "kms"
secret_name = {secret_name}
"#,
        listen = quote(&listen.to_string()),
        database = quote(&database),
        tokens = quote(&tokens_path.display().to_string()),
        endpoint = quote(emulator_url),
        key = quote(AKGUARD_KEY),
        user = quote(LEAKED_USER),
        secret_name = quote(WORKLOAD_SECRET),
    );
    let path = dir.join("akguard.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// The secrets the configuration leaves out, as the variables that carry them: akguard never
/// reads a secret from its configuration file.
pub fn secret_variables(secrets: &Secrets) -> impl Iterator<Item = (String, String)> {
    [
        (
            "AKGUARD__INTAKE__SOURCES__GENERIC__SECRET",
            secrets.webhook.as_str(),
        ),
        ("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_SECRET),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .into_iter()
}

/// A TOML basic string: JSON's escapes are a subset of TOML's.
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The leak report the demo sends its own webhook, as a SIEM would, and its HMAC headers.
pub fn notification(secret: &str, now: chrono::DateTime<chrono::Utc>) -> (Vec<u8>, String, String) {
    let body = serde_json::json!({
        "access_key_id": LEAKED_KEY,
        "account_id": "1234567890123456",
        "account_name": "acme-prod",
        "owner_type": "ram_user",
        "user_name": LEAKED_USER,
        "leak_url": "https://github.com/acme-dev/deploy-scripts/blob/3f9c2ab/config/settings.py",
        "detected_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "event_id": format!("demo-{}", random_hex(8)),
    })
    .to_string()
    .into_bytes();
    let timestamp = now.timestamp().to_string();
    let signature = sign_webhook(secret, &timestamp, &body);
    (body, timestamp, signature)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system provides randomness");
    hex::encode(buf)
}

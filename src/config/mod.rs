//! Typed settings: built-in defaults, then an optional file, then `AKGUARD__SECTION__KEY`
//! environment variables. Secrets are `SecretString`s and print as `[redacted]`.
//!
//! Loading is strict (see `load` and `keys`): an unknown key, a value of the wrong kind or a
//! secret written in the file is an error naming the key's full path, and every error is
//! reported at once.

mod accounts;
mod alibaba;
mod console;
mod error;
mod events;
mod fence;
mod keys;
mod load;
mod log;
mod metrics;
mod notify;
mod remediation;
mod sinks;
mod sources;
#[cfg(test)]
mod strictness_tests;
mod tokens;
mod values;
mod warnings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

pub use alibaba::AlibabaSettings;
pub use console::ConsoleConfig;
pub use error::ConfigError;
use error::Errors;
pub use events::EventLimits;
pub use fence::FenceConfig;
pub use metrics::{MetricsConfig, MetricsSettings};
pub use notify::{Channel, ChannelKind, Language, NotifyConfig, NotifySettings};
pub use remediation::{OnDeadline, RemediationConfig, Sink};
pub use sinks::{SinkPolicy, SinkRefused};
pub use sources::{IntakeSource, SourceAuth, SourceFormat};
pub use tokens::{ApiToken, Role};
pub use warnings::Warning;

/// The defaults, compiled in so the binary runs from any directory.
const DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, Deserialize, Serialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub intake: IntakeSettings,
    pub api: ApiSettings,
    pub alibaba: AlibabaSettings,
    pub triage: remediation::TriageSettings,
    pub rotation: remediation::RotationSettings,
    pub approvals: remediation::ApprovalSettings,
    pub revoke: remediation::RevokeSettings,
    pub audit: remediation::AuditSettings,
    pub billing: remediation::BillingSettings,
    pub remediation: remediation::RemediationSettings,
    pub protect: remediation::ProtectSettings,
    pub containment: fence::ContainmentSettings,
    pub notify: NotifySettings,
    pub metrics: MetricsSettings,
    pub console: console::ConsoleSettings,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ServerSettings {
    pub listen: String,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// How long a client may take to send a request's headers, from the connection's first
    /// byte (or its opening, for a new connection).
    #[serde(deserialize_with = "values::text_or_number")]
    pub header_read_timeout: String,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(deserialize_with = "values::text_or_number")]
    pub idle_timeout: String,
    /// Connections held at once; beyond it the oldest idle one is closed.
    pub max_connections: u32,
    /// Failed authentications a peer may make per `auth_failure_window` before it is refused.
    pub max_auth_failures: u32,
    #[serde(deserialize_with = "values::text_or_number")]
    pub auth_failure_window: String,
    /// How often `/readyz` asks STS whether akguard's own credentials still work.
    #[serde(deserialize_with = "values::text_or_number")]
    pub readiness_refresh: String,
}

/// The listener's limits, validated.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub header_read_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_connections: u32,
    pub max_auth_failures: u32,
    pub auth_failure_window: std::time::Duration,
    pub readiness_refresh: std::time::Duration,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct DatabaseSettings {
    #[serde(serialize_with = "serialize_url")]
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct IntakeSettings {
    pub max_body_bytes: usize,
    pub hmac_window_secs: i64,
    pub max_batch: usize,
    /// How far before receipt a stated detection time may lie; older ones are clamped.
    #[serde(deserialize_with = "values::text_or_number")]
    pub max_detection_age: String,
    #[serde(default)]
    pub sources: BTreeMap<String, sources::SourceSettings>,
    pub security_center: SecurityCenterSettings,
}

/// The Security Center leak-record poller.
#[derive(Debug, Deserialize, Serialize)]
pub struct SecurityCenterSettings {
    pub enabled: bool,
    /// Seconds, or a number with `s`, `m` or `h`.
    #[serde(deserialize_with = "values::text_or_number")]
    pub interval: String,
    /// How far before the newest record already seen each poll looks again, so records
    /// that Alibaba indexes late are not missed; deduplication absorbs the overlap.
    pub overlap_secs: u64,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ApiSettings {
    pub tokens_file: Option<PathBuf>,
    pub events: events::EventSettings,
}

/// Settings after validation, in the shapes the daemon uses.
#[derive(Debug)]
pub struct Runtime {
    pub listen: SocketAddr,
    pub server: ServerLimits,
    /// `api.events`.
    pub events: EventLimits,
    pub sources: BTreeMap<String, IntakeSource>,
    pub tokens: Vec<ApiToken>,
    /// `None` when no credentials are configured: nothing can be called.
    pub cloud: Option<crate::cloud::ClientOptions>,
    /// `[[alibaba.accounts]]`: the accounts besides the home one (`cloud`).
    pub accounts: Vec<crate::cloud::accounts::AccountOptions>,
    /// How the worker reschedules a step that failed transiently.
    pub step_retry: crate::cloud::retry::RetryPolicy,
    /// `None` when the Security Center poller is off.
    pub security_center_interval: Option<std::time::Duration>,
    /// `intake.max_detection_age`.
    pub max_detection_age: std::time::Duration,
    pub remediation: RemediationConfig,
    /// The notification channels, in the order configured, and their retries.
    pub notify: NotifyConfig,
    /// `None` when `/metrics` is off.
    pub metrics: Option<MetricsConfig>,
    /// `None` when the console is off.
    pub console: Option<console::ConsoleConfig>,
}

impl Settings {
    /// Reads the layers in order: defaults, `file`, environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Reads the defaults, `file` and the variables in `env` only, never the process's
    /// environment: nothing outside can point this process elsewhere (the demo relies on it
    /// never reaching a real account, and passes its secrets this way).
    pub fn load_isolated(
        file: &Path,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_env(Some(file), env)
    }

    fn load_with_env(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.collect();
        load::load(file, &env)
    }

    /// Checks every setting and turns it into the daemon's working form; the error lists
    /// every invalid setting.
    pub fn validate(&self) -> Result<Runtime, ConfigError> {
        let mut errors = Errors::default();
        let listen = self.server.listen.parse().map_err(|_| {
            ConfigError::invalid("server.listen", "expected an address like 127.0.0.1:8080")
        });
        let listen = errors.take(listen.map(Some));
        let server = self.server.limits(&mut errors);
        let events = self.api.events.limits(&mut errors);
        let scheme = self.database.url.split(':').next().unwrap_or_default();
        if !["sqlite", "postgres", "postgresql"].contains(&scheme) {
            errors.push(ConfigError::invalid(
                "database.url",
                "expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
            ));
        }
        errors.at_least_one([
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("intake.max_body_bytes", self.intake.max_body_bytes as u64),
            ("intake.max_batch", self.intake.max_batch as u64),
        ]);
        if self.intake.hmac_window_secs <= 0 {
            errors.push(ConfigError::invalid(
                "intake.hmac_window_secs",
                "must be positive",
            ));
        }
        errors.take(log::check_level(&self.log.level));
        let cloud = self.alibaba.client_options();
        let cloud_failed = cloud.is_err();
        let cloud = errors.take(cloud);
        let accounts = match cloud_failed {
            true => Vec::new(),
            false => errors.take(accounts::validate(&self.alibaba, cloud.as_ref())),
        };
        let step_retry = errors.take(self.alibaba.step_retry().map(Some));
        let mut sources = BTreeMap::new();
        for (name, source) in &self.intake.sources {
            if let Some(source) = errors.take(source.resolve(name).map(Some)) {
                sources.insert(name.clone(), source);
            }
        }
        let max_detection_age = errors.take(
            values::parse(&self.intake.max_detection_age)
                .filter(|d| !d.is_zero() && *d <= crate::domain::triage::ACTIONTRAIL_RETENTION)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "intake.max_detection_age",
                        "expected a duration from 1s to 90d (what ActionTrail keeps), such as 24h",
                    )
                })
                .map(Some),
        );
        let tokens = match &self.api.tokens_file {
            Some(path) => errors.take(tokens::load(path)),
            None => Vec::new(),
        };
        let security_center_interval = errors.take(self.security_center_interval());
        let remediation = errors.take(
            remediation::validate(
                &self.triage,
                &self.rotation,
                &self.approvals,
                &self.revoke,
                &self.audit,
                &self.billing,
                &self.remediation,
                &self.protect,
                &self.containment,
                &self.alibaba.region,
                self.protected_dirs(),
            )
            .map(Some),
        );
        let notify = self.notify.validate(&mut errors);
        let metrics = errors.take(self.metrics.validate().map(Some));
        let console = errors.take(self.console.validate().map(Some));
        match (
            listen,
            server,
            events,
            step_retry,
            max_detection_age,
            remediation,
            metrics,
            console,
        ) {
            (
                Some(listen),
                Some(server),
                Some(events),
                Some(step_retry),
                Some(max_detection_age),
                Some(remediation),
                Some(metrics),
                Some(console),
            ) => errors.finish(Runtime {
                listen,
                server,
                events,
                sources,
                tokens,
                cloud,
                accounts,
                step_retry,
                security_center_interval,
                max_detection_age,
                remediation,
                notify,
                metrics,
                console,
            }),
            _ => Err(errors.into_error()),
        }
    }

    /// What `check-config` reports: the settings' errors, or the warnings `serve` would log.
    pub fn check(&self) -> Result<Vec<Warning>, ConfigError> {
        self.validate().map(|runtime| runtime.warnings())
    }

    fn security_center_interval(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        let sc = &self.intake.security_center;
        if !sc.enabled {
            return Ok(None);
        }
        let key = "intake.security_center.interval";
        let interval = values::parse(&sc.interval).ok_or_else(|| {
            ConfigError::invalid(
                key,
                "expected a duration such as 60, \"60s\", \"5m\" or \"1h\"",
            )
        })?;
        if interval.is_zero() {
            return Err(ConfigError::invalid(key, "must be longer than zero"));
        }
        Ok(Some(interval))
    }

    /// akguard's own directories, where no key is ever written: the database's, and the
    /// state directory systemd names in `STATE_DIRECTORY`.
    fn protected_dirs(&self) -> Vec<PathBuf> {
        let state = std::env::var("STATE_DIRECTORY").unwrap_or_default();
        sinks::database_directory(&self.database.url)
            .into_iter()
            .chain(
                state
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            )
            .collect()
    }

    /// The effective settings as JSON, every secret redacted.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl ServerSettings {
    /// The listener's limits, or `None` with every invalid one recorded in `errors`.
    fn limits(&self, errors: &mut Errors) -> Option<ServerLimits> {
        let mut duration = |key: &str, raw: &str| {
            errors.take(
                values::positive(format!("server.{key}"), raw, "10, \"10s\" or \"1m\"").map(Some),
            )
        };
        let header_read_timeout = duration("header_read_timeout", &self.header_read_timeout);
        let idle_timeout = duration("idle_timeout", &self.idle_timeout);
        let auth_failure_window = duration("auth_failure_window", &self.auth_failure_window);
        let readiness_refresh = duration("readiness_refresh", &self.readiness_refresh);
        errors.at_least_one([
            ("server.max_connections", u64::from(self.max_connections)),
            (
                "server.max_auth_failures",
                u64::from(self.max_auth_failures),
            ),
        ]);
        Some(ServerLimits {
            header_read_timeout: header_read_timeout?,
            idle_timeout: idle_timeout?,
            max_connections: self.max_connections,
            max_auth_failures: self.max_auth_failures,
            auth_failure_window: auth_failure_window?,
            readiness_refresh: readiness_refresh?,
        })
    }
}

fn serialize_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// Database URLs may carry a password between `:` and `@`.
fn serialize_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_with_env(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_validate() {
        let settings = load(&[]).unwrap();
        let runtime = settings.validate().unwrap();
        assert_eq!(runtime.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.url, "sqlite://data/akguard.db");
        assert_eq!(settings.intake.max_body_bytes, 256 * 1024);
    }

    #[test]
    fn environment_variables_override_and_create_sources() {
        let settings = load(&[
            ("AKGUARD__SERVER__LISTEN", "0.0.0.0:9000"),
            (
                "AKGUARD__INTAKE__SOURCES__GENERIC__SECRET",
                "0123456789abcdef0123",
            ),
            ("AKGUARD__INTAKE__SOURCES__SIEM__FORMAT", "generic"),
            ("AKGUARD__INTAKE__SOURCES__SIEM__AUTH", "api_key"),
            ("AKGUARD__INTAKE__SOURCES__SIEM__HEADER", "X-Token"),
            (
                "AKGUARD__INTAKE__SOURCES__SIEM__SECRET",
                "abcdefabcdefabcdef",
            ),
        ])
        .unwrap();
        let runtime = settings.validate().unwrap();
        assert_eq!(runtime.listen.port(), 9000);
        assert_eq!(runtime.sources["generic"].format, SourceFormat::Generic);
        assert!(matches!(
            runtime.sources["generic"].auth,
            SourceAuth::Hmac(_)
        ));
        assert!(matches!(
            runtime.sources["siem"].auth,
            SourceAuth::ApiKey { .. }
        ));
    }

    #[test]
    fn lists_can_come_from_the_environment() {
        let runtime = load(&[
            ("AKGUARD__AUDIT__KNOWN_CIDRS", "10.0.0.0/8, 192.168.0.0/16"),
            ("AKGUARD__AUDIT__REGIONS", "cn-hangzhou,cn-shanghai"),
        ])
        .unwrap()
        .validate()
        .unwrap();
        let r = runtime.remediation;
        assert_eq!(r.known_cidrs.len(), 2);
        assert_eq!(r.regions, ["cn-hangzhou", "cn-shanghai", "ap-southeast-1"]);
    }

    #[test]
    fn standard_alibaba_variables_fill_the_daemon_credentials() {
        let settings = load(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tDaemonKey"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "daemon-secret-value"),
        ])
        .unwrap();
        assert_eq!(
            settings.alibaba.access_key_id.as_deref(),
            Some("LTAI5tDaemonKey")
        );
        let shown = settings.redacted().to_string();
        assert!(!shown.contains("daemon-secret-value"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn every_invalid_server_limit_is_named() {
        let err = load(&[
            ("AKGUARD__SERVER__HEADER_READ_TIMEOUT", "0s"),
            ("AKGUARD__SERVER__IDLE_TIMEOUT", "soon"),
            ("AKGUARD__SERVER__MAX_CONNECTIONS", "0"),
            ("AKGUARD__SERVER__MAX_AUTH_FAILURES", "0"),
            ("AKGUARD__SERVER__AUTH_FAILURE_WINDOW", "0"),
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        for key in [
            "server.header_read_timeout",
            "server.idle_timeout",
            "server.max_connections",
            "server.max_auth_failures",
            "server.auth_failure_window",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
    }

    #[test]
    fn the_database_url_names_sqlite_or_postgres() {
        for url in ["sqlite://data/a.db", "postgres://akguard@db:5432/akguard"] {
            let settings = load(&[("AKGUARD__DATABASE__URL", url)]).unwrap();
            assert!(settings.validate().is_ok(), "{url}");
        }
        let err = load(&[("AKGUARD__DATABASE__URL", "mysql://db/akguard")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let err = load(&[("AKGUARD__SERVER__LISTEN", "nowhere")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
        let err = load(&[("AKGUARD__INTAKE__SOURCES__FORWARDER__AUTH", "hmac")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("intake.sources.forwarder.format"),
            "{err}"
        );
        let err = load(&[("AKGUARD__INTAKE__SOURCES__GENERIC__AUTH", "hmac")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("intake.sources.generic.secret"),
            "{err}"
        );
    }

    #[test]
    fn detection_age_protection_and_source_scope_are_checked() {
        let runtime = load(&[
            ("AKGUARD__PROTECT__USERS", "breakglass, oncall"),
            ("AKGUARD__PROTECT__ACCESS_KEY_IDS", "LTAI5tResponder01"),
        ])
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            runtime.max_detection_age,
            std::time::Duration::from_secs(86_400)
        );
        assert_eq!(runtime.remediation.protect_users, ["breakglass", "oncall"]);
        assert_eq!(
            runtime.remediation.protect_access_key_ids,
            ["LTAI5tResponder01"]
        );
        for age in ["0s", "91d", "soon"] {
            let err = load(&[("AKGUARD__INTAKE__MAX_DETECTION_AGE", age)])
                .unwrap()
                .validate()
                .unwrap_err();
            assert!(
                err.to_string().contains("intake.max_detection_age"),
                "{err}"
            );
        }
        let scoped = |accounts: &str| {
            load(&[
                (
                    "AKGUARD__INTAKE__SOURCES__GENERIC__SECRET",
                    "0123456789abcdef0123",
                ),
                ("AKGUARD__INTAKE__SOURCES__GENERIC__ACCOUNTS", accounts),
            ])
            .unwrap()
            .validate()
        };
        let runtime = scoped("1234567890123456,6543210987654321").unwrap();
        assert_eq!(runtime.sources["generic"].accounts.len(), 2);
        let err = scoped("acme-prod").unwrap_err();
        assert!(
            err.to_string().contains("intake.sources.generic.accounts"),
            "{err}"
        );
    }

    #[test]
    fn the_example_file_is_valid_once_its_secrets_are_set() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let secret = "example-secret-0123456789";
        let env = ["GENERIC", "EVENTBRIDGE", "CLOUDMONITOR"].map(|s| {
            (
                format!("AKGUARD__INTAKE__SOURCES__{s}__SECRET"),
                secret.to_owned(),
            )
        });
        let settings = Settings::load_with_env(Some(&example), env.into_iter()).unwrap();
        let runtime = settings.validate().unwrap();
        assert_eq!(runtime.sources.len(), 3);
        assert_eq!(runtime.sources["cloudmonitor"].allow.len(), 5);
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://akguard:hunter2@db:5432/akguard"),
            "postgres://akguard:[redacted]@db:5432/akguard"
        );
        assert_eq!(
            redact_url("sqlite://data/akguard.db"),
            "sqlite://data/akguard.db"
        );
    }
}

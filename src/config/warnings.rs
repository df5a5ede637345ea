//! Settings that are valid but leave akguard less able than it may look: `serve` logs them at
//! start and `check-config` prints them, from this one list.

use std::fmt;

use super::{Runtime, SourceAuth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The setting to look at.
    pub setting: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl Runtime {
    pub fn warnings(&self) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let mut warn = |setting: &str, message: &str| {
            warnings.push(Warning {
                setting: setting.to_owned(),
                message: message.to_owned(),
            });
        };
        if self.cloud.is_none() {
            warn(
                "alibaba.access_key_id",
                "no Alibaba Cloud credentials are configured (alibaba.access_key_id or \
                 alibaba.ecs_ram_role): incidents are recorded but not remediated until \
                 credentials are set",
            );
            if self.security_center_interval.is_some() {
                warn(
                    "intake.security_center.enabled",
                    "the Security Center poller is enabled but needs Alibaba Cloud credentials; \
                     it will not run",
                );
            }
        }
        if self.tokens.is_empty() {
            warn(
                "api.tokens_file",
                "no API tokens configured: the status API refuses every request",
            );
        }
        for source in self.sources.values() {
            if matches!(source.auth, SourceAuth::None) {
                warn(
                    &format!("intake.sources.{}.auth", source.name),
                    &format!(
                        "intake source `{}` accepts UNAUTHENTICATED notifications (auth = \
                         \"none\"): anyone who reaches this port can open incidents; use only \
                         for local development",
                        source.name
                    ),
                );
            }
        }
        if let Some(metrics) = &self.metrics {
            let addr = metrics.listen.unwrap_or(self.listen);
            if metrics.token.is_none() && !addr.ip().is_loopback() {
                warn(
                    "metrics.token",
                    &format!(
                        "/metrics is served on {addr} without a token: whoever reaches it reads \
                         incident counts and error rates; set AKGUARD__METRICS__TOKEN"
                    ),
                );
            }
        }
        if self.remediation.dry_run {
            warn(
                "remediation.dry_run",
                "dry run: no mutating Alibaba Cloud call will be made; the audit log records \
                 each one that would have been",
            );
        }
        warnings
    }
}

//! `log.level`'s syntax, checked more strictly than `EnvFilter` checks it.

use super::ConfigError;

/// The names `log.level` accepts on their own.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `EnvFilter` reads a bare word as a target name, so `verbose` would silently mean "every
/// level of a module called verbose". Here a bare word must be a level; a target's level is
/// written `target=level`, and such directives are left to `EnvFilter` to judge.
pub(super) fn check_level(level: &str) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::invalid("log.level", message);
    for directive in level.split(',').map(str::trim) {
        if directive.is_empty() {
            return Err(invalid(
                "an empty directive (two commas, or a trailing one)".into(),
            ));
        }
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!(
                "{directive:?} is not a level; expected one of {}, or target=level directives \
                 such as \"info,akguard::intake=debug\"",
                LEVELS.join(", ")
            )));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_is_a_level_name_or_target_directives() {
        for good in [
            "info",
            "WARN",
            "debug,sqlx=warn",
            "info,akguard::intake=debug",
            "off",
        ] {
            assert!(check_level(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "info,loud", "", "info,", "akguard=verbose"] {
            let err = check_level(bad).unwrap_err().to_string();
            assert!(err.contains("log.level"), "{bad}: {err}");
        }
        let err = check_level("verbose").unwrap_err().to_string();
        assert!(
            err.contains("trace, debug, info, warn, error, off"),
            "{err}"
        );
    }
}

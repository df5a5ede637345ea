//! The API token file: `[[token]]` entries with a name, the SHA-256 of the token, a role.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

/// A token as configured: only its hash is ever held.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub sha256: [u8; 32],
    pub role: Role,
}

#[derive(Deserialize)]
struct TokenFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
struct RawToken {
    name: String,
    sha256: String,
    role: Role,
}

pub(super) fn load(path: &Path) -> Result<Vec<ApiToken>, ConfigError> {
    let invalid = |message: String| ConfigError::invalid("api.tokens_file", message);
    let unreadable = |message: String| ConfigError::File {
        what: "api.tokens_file",
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let file: TokenFile = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| unreadable(e.to_string()))?;
    file.token
        .into_iter()
        .map(|t| {
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut sha256).map_err(|_| {
                invalid(format!("token `{}`: sha256 must be 64 hex digits", t.name))
            })?;
            if t.name.trim().is_empty() {
                return Err(invalid("every token needs a name".into()));
            }
            Ok(ApiToken {
                name: t.name,
                sha256,
                role: t.role,
            })
        })
        .collect()
}

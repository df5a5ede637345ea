//! The API token file: `[[token]]` entries with a name, the SHA-256 of the token, a role.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use super::error::Errors;

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

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            _ => None,
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
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    sha256: String,
    role: Role,
}

/// The tokens in the file at `path`; the error lists every invalid entry.
pub(super) fn load(path: &Path) -> Result<Vec<ApiToken>, ConfigError> {
    let unreadable = |message: String| ConfigError::File {
        what: "api.tokens_file",
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let file: TokenFile = super::load::read_toml(&text).map_err(unreadable)?;
    let mut errors = Errors::default();
    let mut tokens = Vec::new();
    for (i, t) in file.token.into_iter().enumerate() {
        let mut invalid = |message: String| {
            errors.push(ConfigError::File {
                what: "api.tokens_file",
                path: path.to_owned(),
                message: format!("`token[{i}]`: {message}"),
            });
        };
        let mut sha256 = [0u8; 32];
        if hex::decode_to_slice(t.sha256.trim(), &mut sha256).is_err() {
            invalid("sha256 must be 64 hex digits".into());
        } else if t.name.trim().is_empty() {
            invalid("every token needs a name".into());
        } else {
            tokens.push(ApiToken {
                name: t.name,
                sha256,
                role: t.role,
            });
        }
    }
    errors.finish(tokens)
}

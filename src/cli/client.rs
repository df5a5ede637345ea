//! A client of akguard's own HTTP API: where it is, the bearer token, and each answer read
//! as JSON or text, or turned into the API's error as the API worded it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

/// The daemon a local `serve` listens on by default (`server.listen`).
const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Longest stretch of a non-JSON error body shown: enough for a proxy's error page title.
const MAX_RAW_ERROR: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command line or the environment is missing something or gave something unusable.
    #[error("{0}")]
    Setup(String),
    #[error("cannot read the token file {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the akguard API at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API refused: its status and its own words.
    #[error("the API answered {status}: {message}")]
    Api { status: StatusCode, message: String },
    #[error("the answer to {path} is not what akguard's API sends: {reason}")]
    Unexpected { path: String, reason: String },
}

/// Where the API is and how to authenticate, from flags or the environment.
#[derive(Debug)]
pub struct Endpoint {
    base: String,
    token: SecretString,
}

impl Endpoint {
    /// `--url` over `AKGUARD_URL` over the local default; `--token-file` over
    /// `AKGUARD_TOKEN`. The token is never part of any message.
    pub fn resolve(url: Option<&str>, token_file: Option<&Path>) -> Result<Self, ClientError> {
        let base = match url {
            Some(url) => url.to_owned(),
            None => std::env::var("AKGUARD_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned()),
        };
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Setup(format!(
                "the API URL must start with http:// or https://, got {base:?} (from --url or \
                 AKGUARD_URL)"
            )));
        }
        let token = match token_file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => std::env::var("AKGUARD_TOKEN").unwrap_or_default(),
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Setup(
                "no API token: set AKGUARD_TOKEN or pass --token-file FILE".into(),
            ));
        }
        Ok(Self {
            base,
            token: SecretString::from(token),
        })
    }
}

/// Talks to one daemon with one token.
pub struct ApiClient {
    endpoint: Endpoint,
    http: reqwest::Client,
    /// For the event stream, which has no end: only silence longer than a few keep-alives
    /// (`api.events.keep_alive`) counts as a broken connection.
    stream: reqwest::Client,
}

impl ApiClient {
    pub fn new(endpoint: Endpoint) -> Result<Self, ClientError> {
        // The API never redirects: one that does is not akguard, and gets no token.
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
        };
        let unbuilt = |source| ClientError::Unreachable {
            url: endpoint.base.clone(),
            source,
        };
        let http = builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(unbuilt)?;
        let stream = builder()
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(unbuilt)?;
        Ok(Self {
            endpoint,
            http,
            stream,
        })
    }

    /// `GET /v1/events`, resuming after `last_event_id`: the open response, its body still
    /// to be read.
    pub async fn open_events(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self
            .stream
            .get(self.url("/v1/events"))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        self.respond(request).await
    }

    /// `GET path`, the answer as text (a Markdown report, for one).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `GET path`, the answer as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        parse(path, &self.get_text(path).await?)
    }

    /// `POST path` with a JSON body, the answer as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let request = self.http.post(self.url(path)).json(body);
        let text = self.send(request).await?;
        parse(path, &text)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let response = self.respond(request).await?;
        response.text().await.map_err(|e| self.unreachable(e))
    }

    /// Sends `request` with the token: the response when it succeeded, else the API's error.
    async fn respond(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        // reqwest marks the Authorization header sensitive, so it is left out of its Debug.
        let response = request
            .bearer_auth(self.endpoint.token.expose_secret())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        Err(ClientError::Api {
            status,
            message: api_message(&text),
        })
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.endpoint.base.clone(),
            source,
        }
    }
}

fn parse(path: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::Unexpected {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The API's `{"error": {"code", "message"}}` as `message (code)`; any other body (a proxy's,
/// say) as its first few hundred characters.
fn api_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    match error.and_then(|e| e["message"].as_str()) {
        Some(message) => match error.and_then(|e| e["code"].as_str()) {
            Some(code) => format!("{message} ({code})"),
            None => message.to_owned(),
        },
        None if body.trim().is_empty() => "(no body)".into(),
        None => body.trim().chars().take(MAX_RAW_ERROR).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_is_shown_in_the_apis_words() {
        assert_eq!(
            api_message(
                r#"{"error": {"code": "unauthorized", "message": "the bearer token is not valid"}}"#
            ),
            "the bearer token is not valid (unauthorized)"
        );
        assert_eq!(api_message("<h1>Bad Gateway</h1>"), "<h1>Bad Gateway</h1>");
        assert_eq!(api_message(""), "(no body)");
        assert_eq!(api_message(&"x".repeat(2000)).len(), MAX_RAW_ERROR);
    }

    #[test]
    fn a_url_without_a_scheme_is_refused_naming_where_it_came_from() {
        let err = Endpoint::resolve(Some("127.0.0.1:8080"), None).unwrap_err();
        assert!(err.to_string().contains("AKGUARD_URL"), "{err}");
    }

    #[test]
    fn the_token_file_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let endpoint = Endpoint::resolve(Some("http://127.0.0.1:1/"), Some(&path)).unwrap();
        assert_eq!(endpoint.token.expose_secret(), "s3cret-token");
        assert_eq!(endpoint.base, "http://127.0.0.1:1");
        assert!(!format!("{endpoint:?}").contains("s3cret"));

        std::fs::write(&path, " \n").unwrap();
        let err = Endpoint::resolve(Some("http://127.0.0.1:1"), Some(&path)).unwrap_err();
        assert!(err.to_string().contains("AKGUARD_TOKEN"), "{err}");
    }
}

//! Local stand-ins for the chat and pager platforms: each records every request and answers
//! as told; the `verify_*` functions check a platform's documented format and signature,
//! written from the platforms' documentation, not from akguard's sender.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Everything that was sent, for checks that nothing leaked.
    pub fn everything(&self) -> String {
        format!(
            "{}?{} {:?} {}",
            self.path, self.query, self.headers, self.body
        )
    }
}

type Answer = Arc<Mutex<(u16, String)>>;

pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    answer: Answer,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on 127.0.0.1 on a free port; `path` is appended to the URL it reports.
    /// A `status` of 0 holds every request without ever answering.
    pub async fn start(path: &str, status: u16, body: &str) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let answer: Answer = Arc::new(Mutex::new((status, body.to_owned())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, a) = (hits.clone(), answer.clone());
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let (hits, answer) = (h.clone(), a.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let (status, text) = answer.lock().unwrap().clone();
                hits.lock().unwrap().push(Hit {
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or_default().to_owned(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    answered: status,
                });
                if status == 0 {
                    // Holding: the request is seen but never answered.
                    std::future::pending::<()>().await;
                }
                (StatusCode::from_u16(status).unwrap(), text)
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}{path}"),
            hits,
            answer,
            task,
        }
    }

    pub fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// DingTalk: `timestamp` in ms within an hour, `sign = base64(HMAC(secret, ts "\n" secret))`
/// in the query (URL-encoded), the robot's own `access_token` kept; a Markdown message.
pub fn verify_dingtalk(hit: &Hit, secret: &str, token: &str) -> Value {
    assert_eq!(hit.query_param("access_token").as_deref(), Some(token));
    let ts = hit.query_param("timestamp").expect("timestamp");
    let ms: i64 = ts.parse().expect("timestamp in milliseconds");
    assert!(
        (now_ms() - ms).abs() < 3_600_000,
        "timestamp {ms} is not in ms"
    );
    let expected = b64(&hmac(
        secret.as_bytes(),
        format!("{ts}\n{secret}").as_bytes(),
    ));
    assert_eq!(hit.query_param("sign").as_deref(), Some(expected.as_str()));
    let raw_sign = hit
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sign="))
        .expect("sign");
    assert!(
        !raw_sign.contains(['+', '/', '=']),
        "sign is not URL-encoded: {raw_sign}"
    );
    let body = hit.json();
    assert_eq!(body["msgtype"], "markdown");
    assert!(body["markdown"]["title"].is_string());
    assert!(body["markdown"]["text"].is_string());
    body
}

/// Lark: `timestamp` (s, a string) and `sign = base64(HMAC(key = ts "\n" secret, ""))` at the
/// top of the body; an interactive card.
pub fn verify_lark(hit: &Hit, secret: &str) -> Value {
    let body = hit.json();
    let ts = body["timestamp"].as_str().expect("timestamp as a string");
    let secs: i64 = ts.parse().unwrap();
    assert!(
        (now_ms() / 1000 - secs).abs() < 3600,
        "timestamp {secs} is not in s"
    );
    let expected = b64(&hmac(format!("{ts}\n{secret}").as_bytes(), b""));
    assert_eq!(body["sign"], expected);
    assert_eq!(body["msg_type"], "interactive");
    assert!(body["card"]["header"]["title"]["content"].is_string());
    assert!(body["card"]["elements"].is_array());
    body
}

/// Slack: `text` and Block Kit `blocks`, a header first.
pub fn verify_slack(hit: &Hit) -> Value {
    let body = hit.json();
    assert!(body["text"].is_string());
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
    body
}

/// WeCom: a Markdown message to the URL with the robot's `key`.
pub fn verify_wecom(hit: &Hit, key: &str) -> Value {
    assert_eq!(hit.query_param("key").as_deref(), Some(key));
    let body = hit.json();
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().expect("content");
    assert!(content.len() <= 4096);
    body
}

/// PagerDuty Events v2: the routing key, an action, a dedup key; a trigger's payload.
pub fn verify_pagerduty(hit: &Hit, routing_key: &str) -> Value {
    let body = hit.json();
    assert_eq!(body["routing_key"], routing_key);
    let action = body["event_action"].as_str().unwrap();
    assert!(["trigger", "resolve"].contains(&action), "{action}");
    assert!(body["dedup_key"].is_string());
    if action == "trigger" {
        let payload = &body["payload"];
        assert!(payload["summary"].as_str().unwrap().len() <= 1024);
        assert!(payload["source"].is_string());
        assert!(
            ["critical", "error", "warning", "info"]
                .contains(&payload["severity"].as_str().unwrap())
        );
    }
    body
}

/// akguard's own scheme: `X-Akguard-Signature: sha256=hex(HMAC(secret, ts "." body))`.
pub fn verify_webhook(hit: &Hit, secret: &str) -> Value {
    let ts = hit.header("x-akguard-timestamp").expect("timestamp header");
    let expected = format!(
        "sha256={}",
        hex::encode(hmac(
            secret.as_bytes(),
            format!("{ts}.{}", hit.body).as_bytes()
        ))
    );
    assert_eq!(hit.header("x-akguard-signature"), Some(expected.as_str()));
    hit.json()
}

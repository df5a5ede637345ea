//! On-call notifications: rows the store writes to the outbox with each transition, and the
//! sender that delivers them at least once to DingTalk, Lark, Slack, WeCom, PagerDuty or a
//! signed webhook, in the channel's language, escaped for its medium.

mod channel;
mod digest;
mod dingtalk;
mod escape;
mod lark;
mod message;
mod pagerduty;
mod sender;
mod slack;
mod text;
mod webhook;
mod wecom;

pub use message::shown_key;
pub use sender::{Sender, send_test};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    Client(reqwest::Error),
    #[error("no notification channel is named `{0}`")]
    UnknownChannel(String),
    #[error("channel `{channel}` did not take the test message: {error}")]
    NotDelivered { channel: String, error: String },
}

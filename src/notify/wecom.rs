//! WeCom (企业微信) group robot: a Markdown message to the URL carrying the robot's `key`.
//! Like DingTalk it answers 200 with `errcode` in the body.

use serde_json::{Value, json};

use super::channel::{Answer, judge_errcode};
use super::message::Message;

/// WeCom refuses Markdown over 4096 bytes.
const CONTENT_MAX: usize = 4096;
/// "API freq out of limit" (over 20 messages a minute): worth waiting for.
const THROTTLED: &[i64] = &[45009];

pub(super) fn request(message: &Message) -> Value {
    let mut content = super::dingtalk::markdown(message);
    if content.len() > CONTENT_MAX {
        let mut end = CONTENT_MAX - 3;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        content.truncate(end);
        content.push('…');
    }
    json!({"msgtype": "markdown", "markdown": {"content": content}})
}

pub(super) fn judge(body: &str) -> Answer {
    judge_errcode(body, THROTTLED)
}

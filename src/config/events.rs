//! `[api.events]`: the live event stream's limits (`GET /v1/events`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::Errors;
use super::values;

#[derive(Debug, Deserialize, Serialize)]
pub struct EventSettings {
    /// Streams open at once; one more is refused with 503.
    pub max_streams: u32,
    /// Events read ahead for one client; a slow client holds at most this many.
    pub buffer: u32,
    /// How often an idle stream sends a comment, so proxies keep it open.
    #[serde(deserialize_with = "values::text_or_number")]
    pub keep_alive: String,
    /// How often a stream reads the database when nothing in this process woke it (writes
    /// by another replica).
    #[serde(deserialize_with = "values::text_or_number")]
    pub poll_interval: String,
}

/// The event stream's limits, validated.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    pub max_streams: u32,
    pub buffer: u32,
    pub keep_alive: Duration,
    pub poll_interval: Duration,
}

impl EventSettings {
    /// The limits, or `None` with every invalid one recorded in `errors`.
    pub(super) fn limits(&self, errors: &mut Errors) -> Option<EventLimits> {
        let mut duration = |key: &str, raw: &str| {
            errors
                .take(values::positive(format!("api.events.{key}"), raw, "15 or \"15s\"").map(Some))
        };
        let keep_alive = duration("keep_alive", &self.keep_alive);
        let poll_interval = duration("poll_interval", &self.poll_interval);
        errors.at_least_one([
            ("api.events.max_streams", u64::from(self.max_streams)),
            ("api.events.buffer", u64::from(self.buffer)),
        ]);
        Some(EventLimits {
            max_streams: self.max_streams,
            buffer: self.buffer,
            keep_alive: keep_alive?,
            poll_interval: poll_interval?,
        })
    }
}

//! Rules for free text that comes from outside (senders, operators, Alibaba's APIs): length
//! caps, control characters and URL schemes, so that nothing akguard stores or serves can
//! forge a log line, drive a terminal or smuggle a `javascript:` link into a renderer.
//!
//! What breaks a rule is handled by who wrote it. A report a sender wrote is *refused*: the
//! sender gets a 400 naming the field, and a corrected report goes through. A report Alibaba
//! wrote (CloudMonitor, ActionTrail leak protection, Security Center) *loses the field*, not
//! the leak. Text read from ActionTrail is evidence and is *cleaned*: each unsafe character
//! replaced by U+FFFD and overlong text cut with a trailing `…`, so the tampering stays
//! visible in the value.

use std::borrow::Cow;

/// Longest account or user name, in characters (RAM allows 64, principal names 128).
pub const MAX_NAME: usize = 128;
/// Longest event or delivery id, in characters.
pub const MAX_EVENT_ID: usize = 256;
/// Longest leak URL, in characters.
pub const MAX_URL: usize = 2048;
/// Longest account id: Alibaba's are 16 digits.
pub const MAX_ACCOUNT_ID: usize = 32;
/// Longest string kept from an ActionTrail event or another cloud answer.
pub const MAX_FOREIGN: usize = 512;

/// Why a field was refused. Never carries the value: it may be the attack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidText {
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} contains control, line-breaking or bidirectional-formatting characters")]
    Unsafe { field: &'static str },
    #[error("{field} must be {expected}")]
    Shape {
        field: &'static str,
        expected: &'static str,
    },
}

/// A field check: the field's name for the error, then the raw value.
pub type Rule = fn(&'static str, &str) -> Result<String, InvalidText>;

/// Characters no free-text field may hold: C0 and C1 controls (newlines, ESC, NUL, DEL), the
/// Unicode line and paragraph separators, and the invisible formatting characters that
/// reorder or hide text (`U+202E` makes `gpj.exe` read `exe.jpg`).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Printable text of at most `max` characters, trimmed.
pub fn printable(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidText> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(InvalidText::TooLong { field, max });
    }
    if text.chars().any(is_unsafe) {
        return Err(InvalidText::Unsafe { field });
    }
    Ok(text.to_owned())
}

/// An account or display name.
pub fn name(field: &'static str, raw: &str) -> Result<String, InvalidText> {
    printable(field, raw, MAX_NAME)
}

/// A sender's event id, which also names the delivery for deduplication.
pub fn event_id(field: &'static str, raw: &str) -> Result<String, InvalidText> {
    printable(field, raw, MAX_EVENT_ID)
}

/// An Alibaba Cloud account id: digits only.
pub fn account_id(field: &'static str, raw: &str) -> Result<String, InvalidText> {
    let id = printable(field, raw, MAX_ACCOUNT_ID)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidText::Shape {
            field,
            expected: "the account's numeric id",
        });
    }
    Ok(id)
}

/// A RAM user name (`ci-deployer`) or principal name (`ci@1234.onaliyun.com`): akguard passes
/// it to RAM, so it must look like one.
pub fn user_name(field: &'static str, raw: &str) -> Result<String, InvalidText> {
    let name = printable(field, raw, MAX_NAME)?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    let shaped = match name.split_once('@') {
        None => !name.is_empty() && name.bytes().all(allowed),
        Some((user, domain)) => [user, domain]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(allowed)),
    };
    if !shaped {
        return Err(InvalidText::Shape {
            field,
            expected: "a RAM user name: letters, digits, '.', '_', '-' and '@'",
        });
    }
    Ok(name)
}

/// An `https://` URL with a host and no whitespace: the only links a renderer will make.
pub fn https_url(field: &'static str, raw: &str) -> Result<String, InvalidText> {
    let url = printable(field, raw, MAX_URL)?;
    if is_https_url(&url) {
        Ok(url)
    } else {
        Err(InvalidText::Shape {
            field,
            expected: "an https:// URL",
        })
    }
}

/// Whether `url` is an `https://` URL with a host, free of whitespace and unsafe characters.
pub fn is_https_url(url: &str) -> bool {
    let Some(scheme) = url.get(..8) else {
        return false;
    };
    let rest = &url[8..];
    scheme.eq_ignore_ascii_case("https://")
        && !rest.starts_with(['/', '\\', '?', '#'])
        && !rest.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || is_unsafe(c))
}

/// Text from a cloud answer, kept as evidence: unsafe characters become U+FFFD and text
/// beyond `max` characters is cut, ending in `…`.
pub fn clean(raw: &str, max: usize) -> Cow<'_, str> {
    let over = raw.chars().nth(max).is_some();
    if !over && !raw.chars().any(is_unsafe) {
        return Cow::Borrowed(raw);
    }
    let keep = if over { max.saturating_sub(1) } else { max };
    let mut out: String = raw
        .chars()
        .take(keep)
        .map(|c| if is_unsafe(c) { '\u{fffd}' } else { c })
        .collect();
    if over {
        out.push('…');
    }
    Cow::Owned(out)
}

/// A value quoted for an error message: debug-escaped (so a newline reads `\n`) and cut to a
/// few characters, so that a refusal neither forges a log line nor echoes a payload.
pub fn quoted(raw: &str) -> String {
    const SHOWN: usize = 32;
    let head: String = raw.chars().take(SHOWN).collect();
    if raw.chars().nth(SHOWN).is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests;

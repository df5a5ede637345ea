//! Random identifiers in the shapes Alibaba Cloud uses: request ids, AccessKey pairs, STS tokens.

use sha1::{Digest, Sha1};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Without OS randomness the emulator cannot mint secrets at all; there is no useful fallback.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// `7463B73D-35CC-4D19-A010-6B8D65D242EF`: an uppercase UUIDv4.
pub(crate) fn request_id() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `len` letters and digits.
pub(crate) fn alnum(len: usize) -> String {
    let bytes: [u8; 256] = random_bytes();
    // 256 is not a multiple of 62, so the first few letters are slightly likelier; harmless here.
    bytes[..len.min(256)]
        .iter()
        .map(|b| ALNUM[usize::from(*b) % ALNUM.len()] as char)
        .collect()
}

/// `LTAI5t` followed by 18 letters and digits, like current RAM AccessKey ids.
pub(crate) fn access_key_id() -> String {
    format!("LTAI5t{}", alnum(18))
}

pub(crate) fn access_key_secret() -> String {
    alnum(30)
}

pub(crate) fn sts_access_key_id() -> String {
    format!("STS.{}", alnum(25))
}

pub(crate) fn sts_secret() -> String {
    alnum(44)
}

pub(crate) fn security_token() -> String {
    format!("CAIS{}", alnum(180))
}

/// Uniform in `[0, 1)`, for fault probabilities.
pub(crate) fn unit_interval() -> f64 {
    let bits = u64::from_le_bytes(random_bytes());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A stable 16-digit id derived from `seed`, so a scenario without ids gets the same ones on
/// every load.
pub(crate) fn numeric_id(seed: &str) -> String {
    let digest = Sha1::digest(seed.as_bytes());
    let mut n = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
    n %= 1_000_000_000_000_000;
    format!("2{n:015}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shapes() {
        let rid = request_id();
        assert_eq!(rid.len(), 36);
        assert_eq!(rid, rid.to_uppercase());
        assert_eq!(access_key_id().len(), 24);
        assert!(sts_access_key_id().starts_with("STS."));
        assert_eq!(numeric_id("alice"), numeric_id("alice"));
        assert_eq!(numeric_id("alice").len(), 16);
        let u = unit_interval();
        assert!((0.0..1.0).contains(&u));
    }
}

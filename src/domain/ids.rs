//! Validated identifiers: site ids, content ids, access keys, key ids and
//! content keys. Each is built at the edge with `parse` and trusted after.

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use zeroize::Zeroize;

/// `drm-` + UTC `yyyyMMddHHmmss` + `-` + 5 letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteId(String);

impl SiteId {
    /// Checks the shape of a site id.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("drm-")?;
        let (stamp, suffix) = rest.split_once('-')?;
        let stamp_ok = stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit());
        let suffix_ok = suffix.len() == 5 && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
        (stamp_ok && suffix_ok).then(|| Self(text.to_owned()))
    }

    /// A fresh id for a site created at `now_ms`.
    pub fn generate(now_ms: i64) -> Self {
        let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .format("%Y%m%d%H%M%S");
        let suffix: String = rand::thread_rng()
            .sample_iter(Alphanumeric)
            .take(5)
            .map(char::from)
            .collect();
        Self(format!("drm-{stamp}-{}", suffix.to_ascii_uppercase()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A content id: 3..100 of letters, digits, `-` and `_` (spec section 6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ContentId(String);

impl ContentId {
    /// Checks the length and alphabet of a content id.
    pub fn parse(text: &str) -> Option<Self> {
        let alphabet_ok = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ((3..=100).contains(&text.len()) && alphabet_ok).then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Generates an access key id: 20 upper-case letters and digits.
pub fn generate_access_key() -> String {
    random_alphanumeric(20).to_ascii_uppercase()
}

/// Generates a secret key: 40 letters and digits.
pub fn generate_secret_key() -> String {
    random_alphanumeric(40)
}

/// Generates a site's KMS token: 32 letters and digits.
pub fn generate_kms_token() -> String {
    random_alphanumeric(32)
}

/// The SHA-256 of a KMS token, by which the store finds its site.
pub fn kms_token_digest(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

fn random_alphanumeric(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A 16-byte key id as used by Common Encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 16]);

impl Kid {
    /// Reads 32 hex digits, with or without the dashes of a UUID.
    pub fn from_hex(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| *c != '-').collect();
        decode_16(hex::decode(compact).ok()?).map(Self)
    }

    /// Reads base64 in either alphabet, padded or not (W3C EME clients vary).
    pub fn from_base64(text: &str) -> Option<Self> {
        decode_any_base64(text).and_then(decode_16).map(Self)
    }

    /// Lower-case hex, the form the content key API shows.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Unpadded base64url, the only form ClearKey CDMs accept in answers.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// A 16-byte content key; wiped from memory when dropped, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey(pub [u8; 16]);

impl ContentKey {
    /// Reads 32 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        decode_16(hex::decode(text).ok()?).map(Self)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Unpadded base64url, as a JWK `k`.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(********)")
    }
}

fn decode_16(bytes: Vec<u8>) -> Option<[u8; 16]> {
    bytes.try_into().ok()
}

/// Decodes base64 in the standard or URL-safe alphabet, padded or not.
pub fn decode_any_base64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    if trimmed.len() + 2 < text.len() {
        return None;
    }
    let standard: String = trimmed
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    STANDARD_NO_PAD.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids_have_the_documented_shape() {
        let id = SiteId::generate(1_796_266_800_000);

        assert!(id.as_str().starts_with("drm-20261203030000-"), "{id}");
        assert!(SiteId::parse(id.as_str()).is_some());
        assert!(SiteId::parse("drm-20261203000000-TEST1").is_some());
        assert!(SiteId::parse("drm-2026120300000-TEST1").is_none());
        assert!(SiteId::parse("drm-20261203000000-TEST!").is_none());
    }

    #[test]
    fn content_ids_are_limited_in_length_and_alphabet() {
        assert!(ContentId::parse("content-0001").is_some());
        assert!(ContentId::parse("ab").is_none());
        assert!(ContentId::parse(&"a".repeat(101)).is_none());
        assert!(ContentId::parse("has space").is_none());
    }

    #[test]
    fn kids_decode_from_either_base64_alphabet_with_or_without_padding() {
        let expected = Kid::from_hex("a06a6f51885847f8bc52ad8c5a5a4006").unwrap();

        for text in [
            "oGpvUYhYR_i8Uq2MWlpABg",
            "oGpvUYhYR/i8Uq2MWlpABg",
            "oGpvUYhYR/i8Uq2MWlpABg==",
            "oGpvUYhYR_i8Uq2MWlpABg==",
        ] {
            assert_eq!(Kid::from_base64(text), Some(expected), "{text}");
        }
        assert_eq!(expected.to_base64url(), "oGpvUYhYR_i8Uq2MWlpABg");
        assert_eq!(Kid::from_base64("a06a6f51-8858-47f8"), None);
        assert_eq!(Kid::from_base64("oGpvUYhYR_i8Uq2MWlpABg====="), None);
    }
}

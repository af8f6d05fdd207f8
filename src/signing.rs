//! NCP API Gateway signature v2 (spec section 2): the string to sign, the
//! HMAC, the timestamp window and the constant-time check. The server's
//! verifier and the `multidrm sign` client helper both use this module.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the client's clock in epoch milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-ncp-apigw-timestamp";
/// Header carrying the access key id.
pub const ACCESS_KEY_HEADER: &str = "x-ncp-iam-access-key";
/// Header carrying the base64 HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "x-ncp-apigw-signature-v2";
/// Header NCP requires; accepted and ignored (spec section 2, decided).
pub const REGION_HEADER: &str = "x-ncp-region_code";

/// A request whose timestamp is this far or further from the server clock,
/// in either direction, is refused.
pub const WINDOW_MS: i64 = 300_000;

/// Why a timestamp header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The header is not a decimal integer.
    #[error("x-ncp-apigw-timestamp is not a decimal integer of epoch milliseconds")]
    NotANumber,
    /// The header is 300,000 ms or more away from the server clock.
    #[error("x-ncp-apigw-timestamp is 5 minutes or more away from the server clock (it must be epoch milliseconds)")]
    OutsideWindow,
}

/// Builds `METHOD + " " + pathAndQuery + "\n" + timestamp + "\n" + accessKey`,
/// byte for byte, with nothing trimmed or re-ordered.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    access_key: &str,
) -> String {
    format!("{method} {path_and_query}\n{timestamp}\n{access_key}")
}

/// `base64(HMAC-SHA256(secret, message))` in the standard, padded alphabet.
pub fn sign(secret: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `submitted` is the signature of `message`, compared in constant
/// time so that response timing reveals nothing about the expected value.
pub fn signature_matches(secret: &[u8], message: &str, submitted: &str) -> bool {
    let expected = sign(secret, message);
    expected.as_bytes().ct_eq(submitted.as_bytes()).into()
}

/// Checks the timestamp header against the server clock.
pub fn check_timestamp(header: &str, now_ms: i64) -> Result<i64, TimestampError> {
    let digits = header.strip_prefix('-').unwrap_or(header);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimestampError::NotANumber);
    }
    let timestamp: i64 = header.parse().map_err(|_| TimestampError::OutsideWindow)?;
    if timestamp.abs_diff(now_ms) >= WINDOW_MS as u64 {
        return Err(TimestampError::OutsideWindow);
    }
    Ok(timestamp)
}

/// The three signature headers for one request, as a client sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of `x-ncp-apigw-timestamp`.
    pub timestamp: String,
    /// Value of `x-ncp-iam-access-key`.
    pub access_key: String,
    /// Value of `x-ncp-apigw-signature-v2`.
    pub signature: String,
}

impl SignedHeaders {
    /// Signs `method path_and_query` at `now_ms` with the given key pair.
    pub fn new(
        method: &str,
        path_and_query: &str,
        now_ms: i64,
        access_key: &str,
        secret: &str,
    ) -> Self {
        let timestamp = now_ms.to_string();
        let message = string_to_sign(method, path_and_query, &timestamp, access_key);
        Self {
            signature: sign(secret.as_bytes(), &message),
            timestamp,
            access_key: access_key.to_owned(),
        }
    }

    /// The headers as `(name, value)` pairs, region code included.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (TIMESTAMP_HEADER, &self.timestamp),
            (ACCESS_KEY_HEADER, &self.access_key),
            (SIGNATURE_HEADER, &self.signature),
            (REGION_HEADER, "KR"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"TESTSECRETKEY000000000000000000000000001";
    const T0: i64 = 1_796_266_800_000;

    #[test]
    fn reference_history_request_signs_to_the_published_value() {
        let message = string_to_sign(
            "GET",
            "/api/v1/license/statistics?siteId=drm-20261203000000-TEST1&pageNo=1&pageSize=20",
            "1796266800000",
            "TESTACCESSKEY0000001",
        );

        assert_eq!(
            sign(SECRET, &message),
            "VyjyUZpRrqXs+f8uE0RUj4m0nrRvY5821rg+J2jyAt0="
        );
    }

    #[test]
    fn license_post_signs_to_the_published_value() {
        let headers = SignedHeaders::new(
            "POST",
            "/api/v1/license",
            T0,
            "TESTACCESSKEY0000001",
            "TESTSECRETKEY000000000000000000000000001",
        );

        assert_eq!(
            headers.signature,
            "B80rnJ39u12c+zmT16ppWKzCrerquBrjonjeFeTneqA="
        );
    }

    #[test]
    fn a_trailing_newline_changes_the_signature() {
        let message = string_to_sign("GET", "/api/v1/sites", "1", "K");

        assert!(!signature_matches(
            SECRET,
            &message,
            &sign(SECRET, &format!("{message}\n"))
        ));
        assert!(signature_matches(SECRET, &message, &sign(SECRET, &message)));
    }

    #[test]
    fn timestamps_inside_the_window_pass_and_edges_fail() {
        assert_eq!(check_timestamp("1796266501000", T0), Ok(1_796_266_501_000));
        assert_eq!(check_timestamp("1796267099000", T0), Ok(1_796_267_099_000));
        assert_eq!(
            check_timestamp("1796266500000", T0),
            Err(TimestampError::OutsideWindow)
        );
        assert_eq!(
            check_timestamp("1796267100000", T0),
            Err(TimestampError::OutsideWindow)
        );
        assert_eq!(
            check_timestamp("1796266800", T0),
            Err(TimestampError::OutsideWindow)
        );
    }

    #[test]
    fn timestamps_that_are_not_integers_are_refused_as_such() {
        for text in [
            "",
            "-",
            "2026-12-03T03:00:00Z",
            "1.7e12",
            " 1796266800000",
            "99999999999999999999999",
        ] {
            let result = check_timestamp(text, T0);
            assert!(result.is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            check_timestamp("2026-12-03T03:00:00Z", T0),
            Err(TimestampError::NotANumber)
        );
    }
}

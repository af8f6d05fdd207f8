//! Signature v2: the string to sign, the HMAC, the constant-time check and
//! the timestamp window. The input is one request's values, one per line,
//! in the order of the `fuzz/corpus/signature` seeds:
//! method, path and query, timestamp header, access key, secret, submitted
//! signature, server clock (epoch ms; T0 of the shared cases when absent).
//! Lines keep the values free of newlines, as HTTP keeps them.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use multidrm::signing::{
    check_timestamp, sign, signature_matches, string_to_sign, SignedHeaders, TimestampError,
    WINDOW_MS,
};

/// The frozen clock of the shared cases, 2026-12-03T03:00:00Z.
const T0: i64 = 1_796_266_800_000;

/// One signed request as the server sees it.
struct Request<'a> {
    method: &'a str,
    path_and_query: &'a str,
    timestamp: &'a str,
    access_key: &'a str,
    secret: &'a [u8],
    submitted: &'a str,
    now_ms: i64,
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = read_request(data) else {
        return;
    };
    check_canonical_string(&request);
    check_signature(&request);
    check_window(request.timestamp, request.now_ms);
    check_client_headers(&request);
});

fn read_request(data: &[u8]) -> Option<Request<'_>> {
    let mut lines = data.split(|b| *b == b'\n');
    let mut text = || std::str::from_utf8(lines.next().unwrap_or_default()).ok();
    let (method, path_and_query, timestamp, access_key) = (text()?, text()?, text()?, text()?);
    let secret = lines.next().unwrap_or_default();
    let submitted = std::str::from_utf8(lines.next().unwrap_or_default()).ok()?;
    let now_ms = lines
        .next()
        .and_then(|line| std::str::from_utf8(line).ok()?.parse().ok())
        .unwrap_or(T0);
    Some(Request {
        method,
        path_and_query,
        timestamp,
        access_key,
        secret,
        submitted,
        now_ms,
    })
}

/// The string to sign holds the values byte for byte, in order, on three
/// lines: nothing trimmed, re-ordered or escaped.
fn check_canonical_string(request: &Request) {
    let message = string_to_sign(
        request.method,
        request.path_and_query,
        request.timestamp,
        request.access_key,
    );

    let lines: Vec<&str> = message.split('\n').collect();
    let first = format!("{} {}", request.method, request.path_and_query);
    assert_eq!(
        lines,
        [first.as_str(), request.timestamp, request.access_key]
    );
}

/// A signature made by `sign` is accepted, and any other text, a changed
/// message or a changed secret is not.
fn check_signature(request: &Request) {
    let message = string_to_sign(
        request.method,
        request.path_and_query,
        request.timestamp,
        request.access_key,
    );
    let expected = sign(request.secret, &message);

    assert_eq!(
        expected,
        sign(request.secret, &message),
        "signing is not deterministic"
    );
    assert_eq!(STANDARD.decode(&expected).map(|mac| mac.len()), Ok(32));
    assert!(signature_matches(request.secret, &message, &expected));
    assert_eq!(
        signature_matches(request.secret, &message, request.submitted),
        request.submitted == expected
    );
    assert!(!signature_matches(
        request.secret,
        &format!("{message}\n"),
        &expected
    ));
    let other_clock = string_to_sign(
        request.method,
        request.path_and_query,
        &format!("{}0", request.timestamp),
        request.access_key,
    );
    assert!(!signature_matches(request.secret, &other_clock, &expected));
    if let Some((first, rest)) = request.secret.split_first() {
        let other_secret = [&[!first][..], rest].concat();
        assert!(!signature_matches(&other_secret, &message, &expected));
    }
}

/// Accepted timestamps are the decimal integers less than the window away
/// from the clock; text that is no integer is refused as such.
fn check_window(header: &str, now_ms: i64) {
    let digits = header.strip_prefix('-').unwrap_or(header);
    let is_integer_text = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let within = header
        .parse::<i64>()
        .ok()
        .filter(|value| (i128::from(*value) - i128::from(now_ms)).abs() < i128::from(WINDOW_MS));

    let expected = match (is_integer_text, within) {
        (false, _) => Err(TimestampError::NotANumber),
        (true, Some(value)) => Ok(value),
        (true, None) => Err(TimestampError::OutsideWindow),
    };
    assert_eq!(
        check_timestamp(header, now_ms),
        expected,
        "timestamp {header:?} at {now_ms}"
    );
}

/// What the `multidrm sign` helper sends passes the server's own checks.
fn check_client_headers(request: &Request) {
    let Ok(secret) = std::str::from_utf8(request.secret) else {
        return;
    };
    let headers = SignedHeaders::new(
        request.method,
        request.path_and_query,
        request.now_ms,
        request.access_key,
        secret,
    );

    assert_eq!(
        check_timestamp(&headers.timestamp, request.now_ms),
        Ok(request.now_ms)
    );
    let message = string_to_sign(
        request.method,
        request.path_and_query,
        &headers.timestamp,
        &headers.access_key,
    );
    assert!(signature_matches(
        secret.as_bytes(),
        &message,
        &headers.signature
    ));
    let values: Vec<&str> = headers.pairs().iter().map(|(_, value)| *value).collect();
    assert_eq!(
        values[..3],
        [
            headers.timestamp.as_str(),
            request.access_key,
            headers.signature.as_str()
        ]
    );
}

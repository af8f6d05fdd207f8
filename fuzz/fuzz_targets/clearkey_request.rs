//! ClearKey license requests: the body a CDM posts, and the JWK set answered
//! for it. A request that parses must survive being written out again, and
//! the answer for it must name the same kids in the same order.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multidrm::domain::clearkey::{license_response, LicenseRequest, RequestError, SessionType};
use multidrm::domain::ids::{ContentKey, Kid};
use serde_json::{json, Value};

/// Longest kid text a refusal may quote (the parser's own limit).
const MAX_QUOTED_KID: usize = 64;

fuzz_target!(|data: &[u8]| {
    match LicenseRequest::parse(data) {
        Ok(request) => check_request(&request),
        Err(RequestError::BadKid(quoted)) => {
            assert!(
                quoted.chars().count() <= MAX_QUOTED_KID,
                "a refusal quoted {} characters of a kid",
                quoted.chars().count()
            );
        }
        Err(RequestError::NotARequest | RequestError::KidCount | RequestError::BadSessionType) => {}
    }
});

fn check_request(request: &LicenseRequest) {
    assert!((1..=64).contains(&request.kids.len()));
    for (i, kid) in request.kids.iter().enumerate() {
        assert!(
            !request.kids[..i].contains(kid),
            "kid {} repeated",
            kid.to_hex()
        );
    }

    let rewritten = request_body(&request.kids, request.session_type);
    assert_eq!(LicenseRequest::parse(&rewritten).as_ref(), Ok(request));

    let keys: Vec<(Kid, ContentKey)> = request
        .kids
        .iter()
        .map(|kid| (*kid, key_for(kid)))
        .collect();
    let answer: Value = serde_json::from_slice(&license_response(&keys, request.session_type))
        .expect("a license answer is JSON");
    let answered_kids: Vec<Kid> = answer["keys"]
        .as_array()
        .expect("the answer has a keys array")
        .iter()
        .map(|jwk| {
            assert_eq!(jwk["kty"], "oct");
            let text = jwk["kid"].as_str().expect("every key has a kid");
            assert!(
                !text.contains(['=', '+', '/']),
                "kid {text:?} is not unpadded base64url"
            );
            let kid = Kid::from_base64(text).expect("an answered kid decodes");
            assert_eq!(
                jwk["k"],
                key_for(&kid).to_base64url(),
                "key paired with another kid"
            );
            kid
        })
        .collect();
    assert_eq!(answered_kids, request.kids);
    assert_eq!(answer["type"], session_name(request.session_type));
}

/// The body a CDM would post for these kids.
fn request_body(kids: &[Kid], session_type: SessionType) -> Vec<u8> {
    let kids: Vec<String> = kids.iter().map(Kid::to_base64url).collect();
    json!({ "kids": kids, "type": session_name(session_type) })
        .to_string()
        .into_bytes()
}

/// A content key that differs from its kid, so a swapped pair would show.
fn key_for(kid: &Kid) -> ContentKey {
    let mut bytes = kid.0;
    bytes.reverse();
    bytes[0] ^= 0xff;
    ContentKey(bytes)
}

fn session_name(session_type: SessionType) -> &'static str {
    match session_type {
        SessionType::Temporary => "temporary",
        SessionType::PersistentLicense => "persistent-license",
    }
}

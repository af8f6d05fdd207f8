//! X-DRM-TOKEN decoding. Each input is tried twice: as the header text
//! itself, and as the JSON inside a token, sent in all four base64 forms a
//! client may use. The second way lets the fuzzer mutate the JSON directly
//! instead of its base64.

#![no_main]

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use multidrm::domain::token::{RawToken, ResponseFormat, TokenError};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        check_header(header);
    }

    let encoded = [
        STANDARD.encode(data),
        STANDARD_NO_PAD.encode(data),
        URL_SAFE.encode(data),
        URL_SAFE_NO_PAD.encode(data),
    ];
    let outcomes = encoded.map(|header| check_header(&header));
    for other in &outcomes[1..] {
        assert_eq!(
            &outcomes[0], other,
            "base64 forms of one token decode differently"
        );
    }
});

/// What a header decodes to, in a comparable form.
#[derive(Debug, PartialEq)]
enum Outcome {
    Refused(TokenError),
    Decoded {
        site_id: String,
        validated: Result<String, TokenError>,
    },
}

/// Decodes one header and checks what the result promises.
fn check_header(header: &str) -> Outcome {
    let raw = match RawToken::decode(Some(header)) {
        Ok(raw) => raw,
        Err(error) => {
            assert!(
                matches!(
                    error,
                    TokenError::NotBase64Json
                        | TokenError::Field {
                            field: "siteId",
                            ..
                        }
                ),
                "decode refused a present header with {error:?}"
            );
            return Outcome::Refused(error);
        }
    };
    assert!(
        !raw.site_id.is_empty(),
        "decoded a token with an empty siteId"
    );
    let padded = format!(" \t{header}\t ");
    let again = RawToken::decode(Some(&padded)).expect("surrounding blanks are trimmed");
    assert_eq!(again.site_id, raw.site_id);

    let partial = raw.partial();
    let validated = match raw.validate() {
        Ok(token) => {
            assert_eq!(partial.content_id.as_ref(), Some(&token.content_id));
            assert_eq!(partial.drm_type, Some(token.drm_type));
            assert_eq!(partial.user_id.as_ref(), Some(&token.user_id));
            assert!(
                is_md5_hex(&token.user_id),
                "stored user id {:?}",
                token.user_id
            );
            check_reencoding(&raw.site_id, &token);
            Ok(format!("{token:?}"))
        }
        Err(error) => {
            check_partial_after_refusal(&error, &partial);
            Err(error)
        }
    };
    Outcome::Decoded {
        site_id: raw.site_id,
        validated,
    }
}

/// A validated token written out again as a client would send it decodes to
/// the same values (the stored MD5 user id is kept as it is).
fn check_reencoding(site_id: &str, token: &multidrm::domain::token::DrmToken) {
    let format = match token.response_format {
        ResponseFormat::Original => "ORIGINAL",
        ResponseFormat::Json => "JSON",
    };
    let json = json!({
        "siteId": site_id,
        "contentId": token.content_id.as_str(),
        "drmType": token.drm_type.name(),
        "responseFormat": format,
        "userId": token.user_id,
    });
    let header = STANDARD.encode(json.to_string());

    let raw = RawToken::decode(Some(&header)).expect("a re-encoded token decodes");
    let again = raw.validate().expect("a re-encoded token validates");

    assert_eq!(raw.site_id, site_id);
    assert_eq!(again.content_id, token.content_id);
    assert_eq!(again.drm_type, token.drm_type);
    assert_eq!(again.response_format, token.response_format);
    assert_eq!(again.user_id, token.user_id);
}

/// Fields are checked in a fixed order (content, DRM type, format, user), so
/// the field named by a refusal tells which earlier fields were valid.
fn check_partial_after_refusal(
    error: &TokenError,
    partial: &multidrm::domain::token::PartialToken,
) {
    let TokenError::Field { field, .. } = error else {
        panic!("validate refused with {error:?}, not a field error");
    };
    match *field {
        "contentId" => assert!(partial.content_id.is_none()),
        "drmType" => assert!(partial.content_id.is_some() && partial.drm_type.is_none()),
        "responseFormat" => assert!(partial.content_id.is_some() && partial.drm_type.is_some()),
        "userId" => assert!(partial.user_id.is_none()),
        other => panic!("validate named an unknown field {other:?}"),
    }
}

fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

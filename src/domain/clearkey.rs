//! W3C ClearKey license messages (EME, "keyids" init data): the request a
//! CDM sends and the JWK set it accepts. Answers always use unpadded
//! base64url and `kty: "oct"`; Chromium refuses anything else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{ContentKey, Kid};

/// Most kids one request may name.
const MAX_KIDS: usize = 64;

/// Most characters of a bad kid that a refusal quotes back.
const MAX_QUOTED_KID: usize = 64;

/// EME session types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionType {
    /// Keys live only as long as the session.
    #[serde(rename = "temporary")]
    Temporary,
    /// Keys may be stored by the CDM.
    #[serde(rename = "persistent-license")]
    PersistentLicense,
}

/// A parsed ClearKey license request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    /// The key ids asked for, in request order, without repeats.
    pub kids: Vec<Kid>,
    /// The session type; `temporary` when the request names none.
    pub session_type: SessionType,
}

/// Why a body is not a ClearKey license request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not a JSON object with a `kids` array.
    #[error("body is not a ClearKey license request (expected {{\"kids\":[...],\"type\":...}})")]
    NotARequest,
    /// `kids` is empty or too long.
    #[error("kids must name 1 to 64 key ids")]
    KidCount,
    /// A kid is not base64 of 16 bytes.
    #[error("kid {0:?} is not base64 of 16 bytes")]
    BadKid(String),
    /// `type` is not a known session type.
    #[error("type must be \"temporary\" or \"persistent-license\"")]
    BadSessionType,
}

#[derive(Deserialize)]
struct WireRequest {
    kids: Vec<Value>,
    #[serde(rename = "type")]
    session_type: Option<String>,
}

impl LicenseRequest {
    /// Parses the bytes a CDM posted.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let wire: WireRequest =
            serde_json::from_slice(body).map_err(|_| RequestError::NotARequest)?;
        if wire.kids.is_empty() || wire.kids.len() > MAX_KIDS {
            return Err(RequestError::KidCount);
        }
        let mut kids = Vec::with_capacity(wire.kids.len());
        for value in &wire.kids {
            let Value::String(text) = value else {
                return Err(bad_kid(&value.to_string()));
            };
            let kid = Kid::from_base64(text).ok_or_else(|| bad_kid(text))?;
            if !kids.contains(&kid) {
                kids.push(kid);
            }
        }
        let session_type = match wire.session_type.as_deref() {
            None | Some("temporary") => SessionType::Temporary,
            Some("persistent-license") => SessionType::PersistentLicense,
            Some(_) => return Err(RequestError::BadSessionType),
        };
        Ok(Self { kids, session_type })
    }
}

/// A refusal quoting the start of a bad kid, so that a client cannot make
/// the answer echo its whole body back.
fn bad_kid(text: &str) -> RequestError {
    RequestError::BadKid(text.chars().take(MAX_QUOTED_KID).collect())
}

/// One JSON Web Key of a ClearKey answer.
#[derive(Debug, Serialize)]
struct Jwk {
    kty: &'static str,
    kid: String,
    k: String,
}

/// The JWK set a CDM accepts.
#[derive(Debug, Serialize)]
struct JwkSet {
    keys: Vec<Jwk>,
    #[serde(rename = "type")]
    session_type: SessionType,
}

/// Serialises the answer for `keys`, in the order given.
pub fn license_response(keys: &[(Kid, ContentKey)], session_type: SessionType) -> Vec<u8> {
    let keys = keys
        .iter()
        .map(|(kid, key)| Jwk {
            kty: "oct",
            kid: kid.to_base64url(),
            k: key.to_base64url(),
        })
        .collect();
    serde_json::to_vec(&JwkSet { keys, session_type }).expect("a JWK set always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_request_for_two_kids_parses() {
        let body =
            br#"{"kids":["oGpvUYhYR_i8Uq2MWlpABg","ESIzRFVmd4iZAKq7zN3u_w"],"type":"temporary"}"#;

        let request = LicenseRequest::parse(body).unwrap();

        assert_eq!(request.kids[0].to_hex(), "a06a6f51885847f8bc52ad8c5a5a4006");
        assert_eq!(request.kids[1].to_hex(), "11223344556677889900aabbccddeeff");
        assert_eq!(request.session_type, SessionType::Temporary);
    }

    #[test]
    fn answers_are_unpadded_base64url_with_kty_oct() {
        let kid = Kid::from_hex("11223344556677889900aabbccddeeff").unwrap();
        let key = ContentKey::from_hex("ffeeddccbbaa00998877665544332211").unwrap();

        let body = license_response(&[(kid, key)], SessionType::Temporary);

        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"keys":[{"kty":"oct","kid":"ESIzRFVmd4iZAKq7zN3u_w","k":"_-7dzLuqAJmId2ZVRDMiEQ"}],"type":"temporary"}"#
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        assert_eq!(
            LicenseRequest::parse(b"[object Object]"),
            Err(RequestError::NotARequest)
        );
        assert_eq!(LicenseRequest::parse(b""), Err(RequestError::NotARequest));
        assert_eq!(LicenseRequest::parse(b"{}"), Err(RequestError::NotARequest));
        assert_eq!(
            LicenseRequest::parse(br#"{"kids":"ESIzRFVmd4iZAKq7zN3u_w"}"#),
            Err(RequestError::NotARequest)
        );
        assert_eq!(
            LicenseRequest::parse(br#"{"kids":[],"type":"temporary"}"#),
            Err(RequestError::KidCount)
        );
        assert!(matches!(
            LicenseRequest::parse(br#"{"kids":["a06a6f51-8858-47f8"]}"#),
            Err(RequestError::BadKid(_))
        ));
        assert_eq!(
            LicenseRequest::parse(br#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"],"type":"forever"}"#),
            Err(RequestError::BadSessionType)
        );
    }

    #[test]
    fn refusals_quote_at_most_64_characters_of_a_kid_that_is_no_string() {
        // Found by the clearkey_request fuzz target: a kid given as an array
        // was quoted whole, while a kid given as a string was cut at 64.
        let body = br#"{"kids":[["ESIzRFVmd4ypeNKRFVmd4'icAKq7zL,u_w","Kq7N3zwu","AK","AKqKq7zN3uw","AKq7zN3uKRFVm_w","Kq7N3zwu","AKq4zN3u_RFVm{      d8d","AKq7zN3uKR FVmd4i7zN3u_iw","R\\\\\\\\\/-{="],"typeNKRFVmd4'icAKq7zL,u_w","Kq7N3zwu","AK","AKqKq7zN3uw","AKq7zN3uKRFVm_w","Kq7N3zwu","AKq4zN3u_RFVm{      d8d","AKq7zN3uKR FVmd4i7zN3u_w","K q7N_w"]}"#;

        let Err(RequestError::BadKid(quoted)) = LicenseRequest::parse(body) else {
            panic!("the array kid was not refused as a bad kid");
        };

        assert_eq!(
            quoted,
            r#"["ESIzRFVmd4ypeNKRFVmd4'icAKq7zL,u_w","Kq7N3zwu","AK","AKqKq7zN3"#
        );
        let long_string = format!(r#"{{"kids":["{}"]}}"#, "A".repeat(500));
        assert_eq!(
            LicenseRequest::parse(long_string.as_bytes()),
            Err(RequestError::BadKid("A".repeat(64)))
        );
    }
}

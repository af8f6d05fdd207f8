//! X-DRM-TOKEN (spec section 6): base64 of compact JSON naming the site,
//! content, DRM type, response format and user. Decoding happens in two
//! steps so that a token naming a real site can still be recorded as a
//! failure when its other fields are wrong.

use md5::{Digest, Md5};
use serde_json::{Map, Value};

use super::drm::DrmType;
use super::ids::{decode_any_base64, ContentId};

/// Longest raw user id accepted before hashing.
const MAX_USER_ID_LEN: usize = 256;

/// How the license answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// The license bytes exactly as the CDM expects them.
    Original,
    /// A JSON envelope carrying the license as base64 plus device details.
    Json,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No X-DRM-TOKEN header.
    #[error("the X-DRM-TOKEN header is missing")]
    Missing,
    /// Not base64 of a JSON object.
    #[error("X-DRM-TOKEN is not base64 of a JSON object")]
    NotBase64Json,
    /// A field is missing or malformed.
    #[error("X-DRM-TOKEN field {field}: {problem}")]
    Field {
        /// The token field at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// A token decoded far enough to name its site.
#[derive(Debug, Clone)]
pub struct RawToken {
    /// The `siteId` text as the token gives it.
    pub site_id: String,
    fields: Map<String, Value>,
}

/// A fully validated token.
#[derive(Debug, Clone)]
pub struct DrmToken {
    /// The content the license is for.
    pub content_id: ContentId,
    /// The DRM system requested.
    pub drm_type: DrmType,
    /// How to shape the answer.
    pub response_format: ResponseFormat,
    /// The user as stored: 32 lower-case hex MD5.
    pub user_id: String,
}

/// What a refused token still tells about the request, for its fail record.
#[derive(Debug, Clone, Default)]
pub struct PartialToken {
    /// The content id, when valid.
    pub content_id: Option<ContentId>,
    /// The DRM type, when valid.
    pub drm_type: Option<DrmType>,
    /// The stored user id, when present.
    pub user_id: Option<String>,
}

impl RawToken {
    /// Decodes the header text to a JSON object with a string `siteId`.
    pub fn decode(header: Option<&str>) -> Result<Self, TokenError> {
        let text = header.ok_or(TokenError::Missing)?.trim();
        let bytes = decode_any_base64(text).ok_or(TokenError::NotBase64Json)?;
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(TokenError::NotBase64Json);
        };
        let site_id = match fields.get("siteId") {
            Some(Value::String(site_id)) if !site_id.is_empty() => site_id.clone(),
            _ => return Err(field_error("siteId", "required string")),
        };
        Ok(Self { site_id, fields })
    }

    /// Validates the remaining fields.
    pub fn validate(&self) -> Result<DrmToken, TokenError> {
        let content_id = self
            .content_id()
            .ok_or_else(|| field_error("contentId", "3..100 of letters, digits, '-' and '_'"))?;
        let drm_type = self.drm_type().ok_or_else(|| {
            field_error("drmType", "one of WIDEVINE, PLAYREADY, FAIRPLAY, CLEARKEY")
        })?;
        let response_format = match self.string("responseFormat") {
            None | Some("") => ResponseFormat::Original,
            Some(text) if text.eq_ignore_ascii_case("original") => ResponseFormat::Original,
            Some(text) if text.eq_ignore_ascii_case("json") => ResponseFormat::Json,
            Some(_) => return Err(field_error("responseFormat", "ORIGINAL or JSON")),
        };
        let user_id = match self.string("userId") {
            None | Some("") => return Err(field_error("userId", "required and non-empty")),
            Some(raw) if raw.len() > MAX_USER_ID_LEN => {
                return Err(field_error("userId", "at most 256 characters"))
            }
            Some(raw) => stored_user_id(raw),
        };
        Ok(DrmToken {
            content_id,
            drm_type,
            response_format,
            user_id,
        })
    }

    /// Whatever fields are valid, for recording a refused request.
    pub fn partial(&self) -> PartialToken {
        let user_id = self
            .string("userId")
            .filter(|raw| !raw.is_empty() && raw.len() <= MAX_USER_ID_LEN)
            .map(stored_user_id);
        PartialToken {
            content_id: self.content_id(),
            drm_type: self.drm_type(),
            user_id,
        }
    }

    fn content_id(&self) -> Option<ContentId> {
        self.string("contentId").and_then(ContentId::parse)
    }

    fn drm_type(&self) -> Option<DrmType> {
        self.string("drmType").and_then(DrmType::parse)
    }

    fn string(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

fn field_error(field: &'static str, problem: &'static str) -> TokenError {
    TokenError::Field { field, problem }
}

/// The user id as history stores it: kept when it already is 32 lower-case
/// hex digits (an MD5 the customer computed), hashed otherwise. The raw id
/// is never stored.
pub fn stored_user_id(raw: &str) -> String {
    let is_md5 = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_md5 {
        raw.to_owned()
    } else {
        hex::encode(Md5::digest(raw.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;

    fn encode(json: &str) -> String {
        STANDARD.encode(json)
    }

    #[test]
    fn the_published_example_token_decodes() {
        let header = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiQ2xlYXJLZXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";

        let raw = RawToken::decode(Some(header)).unwrap();
        let token = raw.validate().unwrap();

        assert_eq!(raw.site_id, "drm-20261203000000-TEST1");
        assert_eq!(token.content_id.as_str(), "content-0001");
        assert_eq!(token.drm_type, DrmType::ClearKey);
        assert_eq!(token.response_format, ResponseFormat::Original);
        assert_eq!(token.user_id, "6322bd3dea79f605aa8380cef52770f3");
    }

    #[test]
    fn raw_user_ids_are_hashed_and_md5_ids_kept() {
        assert_eq!(
            stored_user_id("user-0001"),
            "6322bd3dea79f605aa8380cef52770f3"
        );
        assert_eq!(
            stored_user_id("6322bd3dea79f605aa8380cef52770f3"),
            "6322bd3dea79f605aa8380cef52770f3"
        );
        assert_eq!(
            stored_user_id("6322BD3DEA79F605AA8380CEF52770F3"),
            hex::encode(Md5::digest(b"6322BD3DEA79F605AA8380CEF52770F3"))
        );
    }

    #[test]
    fn an_empty_user_id_is_refused_and_never_hashed() {
        let raw = RawToken::decode(Some(&encode(
            r#"{"siteId":"s","contentId":"abc","drmType":"clearkey","userId":""}"#,
        )))
        .unwrap();

        assert_eq!(
            raw.validate().unwrap_err(),
            field_error("userId", "required and non-empty")
        );
        assert_eq!(raw.partial().user_id, None);
    }

    #[test]
    fn broken_tokens_say_what_is_wrong() {
        assert_eq!(RawToken::decode(None).unwrap_err(), TokenError::Missing);
        assert_eq!(
            RawToken::decode(Some("not-a-token!!")).unwrap_err(),
            TokenError::NotBase64Json
        );
        assert_eq!(
            RawToken::decode(Some("aGVsbG8=")).unwrap_err(),
            TokenError::NotBase64Json
        );
        assert_eq!(
            RawToken::decode(Some(&encode("[1]"))).unwrap_err(),
            TokenError::NotBase64Json
        );
        assert!(matches!(
            RawToken::decode(Some(&encode(r#"{"siteId":7}"#))),
            Err(TokenError::Field {
                field: "siteId",
                ..
            })
        ));

        let no_drm = RawToken::decode(Some(&encode(
            r#"{"siteId":"s","contentId":"abc","userId":"u"}"#,
        )))
        .unwrap();
        assert!(matches!(
            no_drm.validate(),
            Err(TokenError::Field {
                field: "drmType",
                ..
            })
        ));
    }

    #[test]
    fn response_format_is_read_in_any_case() {
        let raw = RawToken::decode(Some(&encode(r#"{"siteId":"s","contentId":"abc","drmType":"Widevine","responseFormat":"json","userId":"u"}"#))).unwrap();

        assert_eq!(
            raw.validate().unwrap().response_format,
            ResponseFormat::Json
        );
    }
}

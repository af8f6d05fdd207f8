//! Extractors that answer bad input in the API's error shape: JSON bodies,
//! raw bodies with the size limit, and the authenticated caller.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::store::AuditEntry;

/// A JSON body; a parse failure is a 400 with code 280001.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::BytesRejection(rejection)) => Err(body_error(rejection)),
            Err(rejection) => Err(ApiError::JsonParse(format!(
                "body is not the expected JSON: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// The raw body bytes, within the configured size limit.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(body_error)
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::JsonParse("the request body could not be read".to_owned())
    }
}

/// The account and key that signed the request; set by the signature check.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account every lookup is scoped to.
    pub account_id: i64,
    /// The access key id that signed the request.
    pub access_key: String,
}

impl Caller {
    /// A log entry for a change this caller makes at `at`.
    pub fn audit<'a>(&'a self, description: &'a str, at: i64) -> AuditEntry<'a> {
        AuditEntry {
            description,
            access_key: Some(&self.access_key),
            at,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::AuthenticationFailed("the request is not signed"))
    }
}

/// Path parameters; a malformed segment is a 400 in the service shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let rejection = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => return Ok(Self(value)),
            Err(rejection) => rejection,
        };
        let PathRejection::FailedToDeserializePathParams(error) = &rejection else {
            return Err(ApiError::InvalidParameter(format!(
                "path: {}",
                rejection.body_text()
            )));
        };
        let value = match error.kind() {
            ErrorKind::ParseErrorAtKey { value, .. }
            | ErrorKind::ParseErrorAtIndex { value, .. }
            | ErrorKind::ParseError { value, .. } => value,
            _ => {
                return Err(ApiError::InvalidParameter(format!(
                    "path: {}",
                    error.body_text()
                )))
            }
        };
        // Name the segment the client wrote, not the Rust type it should parse to.
        let params = RawPathParams::from_request_parts(parts, state).await;
        let key = params
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(_, raw)| *raw == value)
                    .map(|(key, _)| key.to_owned())
            })
            .unwrap_or_else(|| "path".to_owned());
        Err(ApiError::InvalidParameter(format!(
            "{key} must be an integer, not {value:?}"
        )))
    }
}

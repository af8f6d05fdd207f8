//! The API's one error type. A single `match` picks the HTTP status, the
//! code and the name; gateway refusals use NCP's gateway shape (spec
//! section 2) and everything else the service shape (spec section 3).
//! The full list of codes is in `docs/errors.md`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::cpix::CpixError;
use crate::domain::drm::DrmType;
use crate::domain::history::FailReason;
use crate::domain::params::ParamError;
use crate::domain::upstream::UpstreamError;
use crate::store::{StoreError, WriteError};

/// `Retry-After` of an overload answer: capacity frees up quickly, so a
/// client may retry soon.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// `Retry-After` while the database is unavailable: an outage lasts longer
/// than a burst of load.
pub const OUTAGE_RETRY_AFTER_SECONDS: u64 = 5;

/// A refusal's body: the service shape (spec section 3) or NCP's gateway
/// shape (spec section 2); the client tells them apart by their fields.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorBody {
    /// `{"error": {"code", "name", "message"}}`.
    Service {
        /// What went wrong.
        error: ServiceError,
    },
    /// `{"error": {"errorCode", "message", "details"}}`.
    Gateway {
        /// What the gateway refused.
        error: GatewayError,
    },
}

/// A service error: `code` is a string such as `"281003"`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceError {
    /// Numeric code as a string; see `docs/errors.md`.
    pub code: String,
    /// Upper-case name, e.g. `SITE_NOT_FOUND`.
    pub name: String,
    /// Human-readable reason.
    pub message: String,
}

/// A gateway refusal (signature, route, size, rate limit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayError {
    /// `200`, `300`, `420` or `430`.
    pub error_code: String,
    /// e.g. `Authentication Failed`.
    pub message: String,
    /// Which check failed, without echoing values.
    pub details: String,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Gateway: missing or bad credentials; `details` says which check failed.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(&'static str),
    /// Gateway: no such route.
    #[error("no such route")]
    RouteNotFound,
    /// Gateway: the body is over the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Gateway: the access key sent more than its rate limit allows; it
    /// may try again after this many seconds.
    #[error("the access key is over its rate limit; retry after {0} s")]
    RateLimited(u64),
    /// The body is not the expected JSON.
    #[error("{0}")]
    JsonParse(String),
    /// A parameter is missing, malformed or out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// Unknown site, or one of another account.
    #[error("site {0} not found")]
    SiteNotFound(String),
    /// The action needs a site that is not deleted.
    #[error("site {0} is deleted")]
    SiteDeleted(String),
    /// The site is not on (disable, or issue on an off site).
    #[error("site {0} is not on")]
    SiteNotOn(String),
    /// The site is already on.
    #[error("site {0} is already on")]
    SiteNotOff(String),
    /// FairPlay requested on a site without FairPlay credentials.
    #[error("site {0} has no FairPlay credentials")]
    FairPlayCertIncomplete(String),
    /// No content key for the request.
    #[error("{0}")]
    DrmInfoNotFound(String),
    /// Unknown policy id, or one of another account.
    #[error("policy {0} not found")]
    PolicyNotFound(i64),
    /// A site that is not deleted uses the policy.
    #[error("policy {0} is used by a site; move the site to another policy first")]
    PolicyInUse(i64),
    /// The built-in policy cannot change.
    #[error("policy 0 is the built-in Basic policy and cannot be changed or deleted")]
    PolicyReadOnly,
    /// The policy is deleted.
    #[error("policy {0} is deleted")]
    PolicyDeleted(i64),
    /// X-DRM-TOKEN is missing or malformed.
    #[error("{0}")]
    InvalidDrmToken(String),
    /// The site's policy does not allow the DRM type.
    #[error("the site's policy does not allow {0}")]
    DrmTypeNotAllowed(DrmType),
    /// The site's policy does not allow the session type.
    #[error("the site's policy does not allow persistent licenses")]
    SessionTypeNotAllowed,
    /// A content key with this kid is already registered for the content.
    #[error("kid {0} is already registered for this content")]
    ContentKeyExists(String),
    /// The CDM's message is not a license request of the DRM type.
    #[error("{0}")]
    InvalidLicenseRequest(String),
    /// No upstream license server is configured for the DRM type.
    #[error("no upstream license server is configured for {0} on this site")]
    UpstreamNotConfigured(DrmType),
    /// The upstream license server failed or did not answer in time.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// The CPIX document cannot be answered; names the fault.
    #[error("{0}")]
    InvalidCpix(CpixError),
    /// No site has the KMS token; the token is never echoed.
    #[error("no site has this KMS token")]
    KmsTokenUnknown,
    /// The database is unavailable (and, for a license request,
    /// `history_on_outage` is `refuse`); trying later may succeed.
    #[error("the database is unavailable; try again later")]
    DatabaseUnavailable,
    /// The service is at its request, connection or history queue limit.
    #[error("the service is at capacity; retry after {RETRY_AFTER_SECONDS} s")]
    Overloaded,
    /// Anything unexpected; the cause goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A parameter error in the client's words.
    pub fn parameter(error: ParamError) -> Self {
        Self::InvalidParameter(error.to_string())
    }

    /// HTTP status, code and name.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::AuthenticationFailed(_) => (S::UNAUTHORIZED, "200", "Authentication Failed"),
            Self::RouteNotFound => (S::NOT_FOUND, "300", "Not Found Exception"),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "430", "Request Entity Too Large"),
            Self::RateLimited(_) => (S::TOO_MANY_REQUESTS, "420", "Rate Limited"),
            Self::JsonParse(_) => (S::BAD_REQUEST, "280001", "JSON_PARSE_FAILED_EXCEPTION"),
            Self::InvalidParameter(_) => (
                S::BAD_REQUEST,
                "280003",
                "WEB_INVALID_PARAMETER_TYPE_TWO_PARAM",
            ),
            Self::SiteNotFound(_) => (S::NOT_FOUND, "281003", "SITE_NOT_FOUND"),
            Self::SiteDeleted(_) => (S::CONFLICT, "281004", "SITE_STATUS_NOT_RUNNING"),
            Self::SiteNotOn(_) => (S::CONFLICT, "281005", "SITE_STATUS_NOT_ON"),
            Self::SiteNotOff(_) => (S::CONFLICT, "281006", "SITE_STATUS_NOT_OFF"),
            Self::FairPlayCertIncomplete(_) => (S::CONFLICT, "2810011", "SITE_CERT_INCOMPLETE"),
            Self::DrmInfoNotFound(_) => (S::NOT_FOUND, "2810012", "LICENSE_DRM_INFO_NOT_FOUND"),
            Self::PolicyNotFound(_) => (S::NOT_FOUND, "289001", "POLICY_NOT_FOUND"),
            Self::PolicyInUse(_) => (S::CONFLICT, "289002", "POLICY_IN_USE"),
            Self::PolicyReadOnly => (S::FORBIDDEN, "289006", "POLICY_READ_ONLY"),
            Self::PolicyDeleted(_) => (S::CONFLICT, "289011", "POLICY_DELETED"),
            Self::InvalidDrmToken(_) => (S::BAD_REQUEST, "289003", "INVALID_DRM_TOKEN"),
            Self::DrmTypeNotAllowed(_) => (S::FORBIDDEN, "289004", "DRM_TYPE_NOT_ALLOWED"),
            Self::SessionTypeNotAllowed => (S::FORBIDDEN, "289005", "SESSION_TYPE_NOT_ALLOWED"),
            Self::ContentKeyExists(_) => (S::CONFLICT, "289007", "CONTENT_KEY_EXISTS"),
            Self::InvalidLicenseRequest(_) => (S::BAD_REQUEST, "289008", "INVALID_LICENSE_REQUEST"),
            Self::UpstreamNotConfigured(_) => (S::CONFLICT, "289010", "UPSTREAM_NOT_CONFIGURED"),
            Self::Upstream(UpstreamError::Timeout(..)) => {
                (S::BAD_GATEWAY, "289013", "UPSTREAM_TIMEOUT")
            }
            Self::Upstream(_) => (S::BAD_GATEWAY, "289012", "UPSTREAM_FAILED"),
            Self::InvalidCpix(_) => (S::UNPROCESSABLE_ENTITY, "289014", "INVALID_CPIX_DOCUMENT"),
            Self::KmsTokenUnknown => (S::NOT_FOUND, "289015", "KMS_TOKEN_NOT_FOUND"),
            Self::DatabaseUnavailable => (S::SERVICE_UNAVAILABLE, "280020", "DATABASE_UNAVAILABLE"),
            Self::Overloaded => (S::SERVICE_UNAVAILABLE, "289016", "SERVICE_OVERLOADED"),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "280000", "EXCEPTION"),
        }
    }

    /// Code and name as a fail record stores them.
    pub fn fail_reason(&self) -> FailReason {
        let (_, code, name) = self.classify();
        FailReason {
            code: code.to_owned(),
            name: name.to_owned(),
        }
    }

    fn is_gateway(&self) -> bool {
        matches!(
            self,
            Self::AuthenticationFailed(_)
                | Self::RouteNotFound
                | Self::PayloadTooLarge
                | Self::RateLimited(_)
        )
    }

    /// Seconds a client should wait before trying again, for refusals that
    /// only mean "not now".
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited(seconds) => Some(*seconds),
            Self::Overloaded => Some(RETRY_AFTER_SECONDS),
            Self::DatabaseUnavailable => Some(OUTAGE_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "database unavailable");
                Self::DatabaseUnavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Unavailable => Self::DatabaseUnavailable,
            WriteError::QueueFull => Self::Overloaded,
            other => Self::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, name) = self.classify();
        let body = if self.is_gateway() {
            let details = match &self {
                Self::AuthenticationFailed(details) => details.to_string(),
                other => other.to_string(),
            };
            ErrorBody::Gateway {
                error: GatewayError {
                    error_code: code.to_owned(),
                    message: name.to_owned(),
                    details,
                },
            }
        } else {
            if let Self::Internal(cause) = &self {
                tracing::error!(error = format!("{cause:#}"), "request failed unexpectedly");
            }
            let message = match &self {
                Self::Internal(_) => "an unexpected error occurred; see the server log".to_owned(),
                other => other.to_string(),
            };
            ErrorBody::Service {
                error: ServiceError {
                    code: code.to_owned(),
                    name: name.to_owned(),
                    message,
                },
            }
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_history_queue_is_a_503_with_retry_after() {
        let response = ApiError::from(WriteError::QueueFull).into_response();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_rate_limited_request_says_when_to_retry() {
        let response = ApiError::RateLimited(7).into_response();

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}

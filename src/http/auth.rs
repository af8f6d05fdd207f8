//! The signature check (spec section 2) and the public prefix it signs
//! against. Refusals say which check failed but never echo a value.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::extract::Caller;
use super::AppState;
use crate::signing::{self, TimestampError};

/// The request target as the client signed it: public prefix + path + query.
#[derive(Debug, Clone)]
pub struct SigningTarget(pub String);

/// Records the signing target and strips the public prefix for routing.
/// Requests may arrive with the prefix (no proxy) or without it (a proxy
/// removed it); both are signed over prefix + path.
pub fn apply_public_prefix(prefix: &str, mut request: Request) -> Request {
    let received = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let stripped = received
        .strip_prefix(prefix)
        .filter(|rest| !prefix.is_empty() && (rest.starts_with('/') || rest.starts_with('?')));
    let target = match stripped {
        Some(rest) => {
            if let Ok(uri) = rest.parse::<Uri>() {
                *request.uri_mut() = uri;
            }
            received
        }
        None => format!("{prefix}{received}"),
    };
    request.extensions_mut().insert(SigningTarget(target));
    request
}

/// Middleware: admits a request only with a valid signature v2 from an
/// enabled access key within its rate limit, and tells handlers who the
/// caller is.
pub async fn verify_signature(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Only the head is borrowed across the key lookup: the body is not `Sync`.
    let (mut parts, body) = request.into_parts();
    let caller = authenticate(&app, &parts).await.inspect_err(|error| {
        if let ApiError::AuthenticationFailed(reason) = error {
            tracing::debug!(reason, "request refused by the signature check");
        }
    })?;
    if let Some(limiter) = &app.rate_limiter {
        limiter.check(&caller.access_key).inspect_err(|_| {
            tracing::debug!(access_key = %caller.access_key, "request refused by the rate limit");
        })?;
    }
    parts.extensions.insert(caller);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

async fn authenticate(app: &AppState, request: &Parts) -> Result<Caller, ApiError> {
    let headers = &request.headers;
    let timestamp = header(headers, signing::TIMESTAMP_HEADER)?;
    let access_key = header(headers, signing::ACCESS_KEY_HEADER)?;
    let signature = header(headers, signing::SIGNATURE_HEADER)?;

    signing::check_timestamp(timestamp, app.clock.now_ms()).map_err(|error| match error {
        TimestampError::NotANumber => ApiError::AuthenticationFailed("x-ncp-apigw-timestamp is not a decimal integer of epoch milliseconds"),
        TimestampError::OutsideWindow => ApiError::AuthenticationFailed(
            "x-ncp-apigw-timestamp is 5 minutes or more away from the server clock; it must be epoch milliseconds",
        ),
    })?;

    let key = app.store.find_access_key(access_key).await?;
    let Some(key) = key.filter(|key| key.enabled) else {
        return Err(ApiError::AuthenticationFailed(
            "unknown or disabled access key",
        ));
    };
    let secret = app
        .master_key
        .open(&key.secret_sealed)
        .map_err(|error| ApiError::Internal(error.into()))?;

    let target = request
        .extensions
        .get::<SigningTarget>()
        .map_or_else(|| request.uri.to_string(), |target| target.0.clone());
    let message = signing::string_to_sign(request.method.as_str(), &target, timestamp, access_key);
    if !signing::signature_matches(&secret, &message, signature) {
        return Err(ApiError::AuthenticationFailed(
            "signature does not match (sign METHOD, the path with its query, the timestamp header and the access key)",
        ));
    }
    Ok(Caller {
        account_id: key.account_id,
        access_key: key.access_key,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    let missing = match name {
        signing::TIMESTAMP_HEADER => "missing header x-ncp-apigw-timestamp",
        signing::ACCESS_KEY_HEADER => "missing header x-ncp-iam-access-key",
        _ => "missing header x-ncp-apigw-signature-v2",
    };
    let value = headers
        .get(name)
        .ok_or(ApiError::AuthenticationFailed(missing))?;
    value
        .to_str()
        .map_err(|_| ApiError::AuthenticationFailed("a signature header is not visible ASCII"))
}

//! Console sessions: signing in with an access key and its secret, the
//! session cookie, and the checks every change must pass. A session lives
//! in the database, found by the SHA-256 of its random id, so the cookie
//! holds nothing but that id, the secret never reaches the browser, and
//! every node serving the database knows the session.

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, RawForm, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use maud::html;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::page::{self, PageError};
use crate::domain::params::QueryParams;
use crate::http::extract::Caller;
use crate::http::AppState;

/// Name of the session cookie.
const COOKIE: &str = "multidrm_console";
/// How long a session lasts after sign-in.
const LIFETIME: Duration = Duration::from_secs(8 * 3600);
fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 random bytes in base64url: a session id or a CSRF token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The session cookie's value, if the request carries one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A signed-in request: who acts, the token its forms carry, and the
/// public prefix links start with.
#[derive(Debug, Clone)]
pub struct Console {
    /// The account and key the session signed in with.
    pub caller: Caller,
    /// The session's CSRF token.
    pub csrf: String,
    /// `public_base_path`, which every link starts with.
    pub prefix: String,
}

impl Console {
    /// The public path of console page `path` (e.g. `/sites`).
    pub fn link(&self, path: &str) -> String {
        format!("{}/console{path}", self.prefix)
    }
}

/// Why a request has no console: not signed in (the browser is sent to
/// the sign-in form) or the session could not be looked up.
pub enum NoConsole {
    /// No cookie, or one naming no live session.
    SignInFirst(String),
    /// The database did not answer.
    Store(PageError),
}

impl IntoResponse for NoConsole {
    fn into_response(self) -> Response {
        match self {
            Self::SignInFirst(to) => Redirect::to(&to).into_response(),
            Self::Store(error) => error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = NoConsole;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, NoConsole> {
        let prefix = app.settings.public_base_path.clone();
        let session = match cookie(&parts.headers) {
            Some(id) => app
                .store
                .find_console_session(&digest(id), app.clock.now_ms())
                .await
                .map_err(|error| NoConsole::Store(PageError::from_store(error)))?,
            None => None,
        };
        let Some(session) = session else {
            return Err(NoConsole::SignInFirst(format!("{prefix}/console/sign-in")));
        };
        Ok(Self {
            caller: Caller {
                account_id: session.account_id,
                access_key: session.access_key,
            },
            csrf: session.csrf,
            prefix,
        })
    }
}

/// A POSTed change: the signed-in console and the form's fields, after
/// the cross-site checks: the `Origin` header, when the browser sends one,
/// is this service's own, and the form carries the session's CSRF token.
pub struct Change {
    /// Who acts.
    pub console: Console,
    /// The form's fields.
    pub form: QueryParams,
}

impl FromRequest<AppState> for Change {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        same_origin(&parts.headers, own_scheme(app)).map_err(IntoResponse::into_response)?;
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| forbidden("the form could not be read").into_response())?;
        let form = QueryParams::parse(Some(&String::from_utf8_lossy(&bytes)));
        let token = form.get("csrf").ok().flatten().unwrap_or_default();
        if !bool::from(token.as_bytes().ct_eq(console.csrf.as_bytes())) {
            tracing::debug!("console change refused: missing or wrong CSRF token");
            return Err(forbidden(
                "the form is not from this console; reload the page and try again",
            )
            .into_response());
        }
        Ok(Self { console, form })
    }
}

fn forbidden(message: &str) -> PageError {
    PageError::new(StatusCode::FORBIDDEN, message)
}

/// The scheme browsers reach this service by: the listener's own, since
/// `serve` speaks either HTTPS only or HTTP only.
fn own_scheme(app: &AppState) -> &'static str {
    match app.settings.tls_cert.is_some() {
        true => "https",
        false => "http",
    }
}

/// Refuses a request whose `Origin` is not `scheme://` followed by the
/// `Host` it was sent to; browsers send `Origin` with every cross-site
/// POST, and a page served over the other scheme is another origin.
fn same_origin(headers: &HeaderMap, scheme: &str) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.strip_prefix(scheme)?.strip_prefix("://"));
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host == host => Ok(()),
        _ => {
            tracing::debug!("console change refused: cross-origin request");
            Err(forbidden(
                "a request from another site cannot change anything here",
            ))
        }
    }
}

/// `GET /console/sign-in`
pub async fn sign_in_page(State(app): State<AppState>) -> Response {
    sign_in_form(&app, StatusCode::OK, None)
}

fn sign_in_form(app: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let prefix = &app.settings.public_base_path;
    let body = html! {
        @if let Some(problem) = problem {
            p.alert role="alert" { (problem) }
        }
        form.stack method="post" action=(format!("{prefix}/console/sign-in")) {
            label for="access-key" { "Access key" }
            input #access-key name="accessKey" autocomplete="username" required autofocus;
            label for="secret-key" { "Secret key" }
            input #secret-key name="secretKey" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        p.hint { "The secret is checked once and kept by neither the browser nor the session." }
    };
    (status, page::bare(prefix, "Sign in", body)).into_response()
}

/// `POST /console/sign-in`: checks the key pair as the signature check
/// does (an enabled key whose sealed secret matches, compared in constant
/// time) and starts a session.
pub async fn sign_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawForm(bytes): RawForm,
) -> Result<Response, PageError> {
    same_origin(&headers, own_scheme(&app))?;
    let form = QueryParams::parse(Some(&String::from_utf8_lossy(&bytes)));
    let access_key = form.get("accessKey").ok().flatten().unwrap_or_default();
    let secret = form.get("secretKey").ok().flatten().unwrap_or_default();
    if !verify(&app, access_key, secret).await? {
        tracing::debug!("console sign-in refused: unknown or disabled key, or wrong secret");
        return Ok(sign_in_form(
            &app,
            StatusCode::UNAUTHORIZED,
            Some("Unknown or disabled access key, or wrong secret key."),
        ));
    }

    let id = random_token();
    let now_ms = app.clock.now_ms();
    let expires_at = now_ms.saturating_add(LIFETIME.as_millis() as i64);
    app.store
        .insert_console_session(
            &digest(&id),
            access_key,
            &random_token(),
            expires_at,
            now_ms,
        )
        .await
        .map_err(PageError::from_store)?;
    tracing::info!(access_key, "console sign-in");
    let prefix = &app.settings.public_base_path;
    let secure = if app.settings.tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; Path={prefix}/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&format!("{prefix}/console/history")),
    )
        .into_response())
}

/// Whether `access_key` is an enabled key whose secret is `secret`.
async fn verify(app: &AppState, access_key: &str, secret: &str) -> Result<bool, PageError> {
    if access_key.is_empty() || secret.is_empty() {
        return Ok(false);
    }
    let key = app
        .store
        .find_access_key(access_key)
        .await
        .map_err(PageError::from_store)?;
    let Some(key) = key.filter(|key| key.enabled) else {
        return Ok(false);
    };
    let stored = app
        .master_key
        .open(&key.secret_sealed)
        .map_err(|error| PageError::internal(error.into()))?;
    Ok(bool::from(stored.as_slice().ct_eq(secret.as_bytes())))
}

/// `POST /console/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    change: Change,
) -> Result<Response, PageError> {
    if let Some(id) = cookie(&headers) {
        app.store
            .delete_console_session(&digest(id))
            .await
            .map_err(PageError::from_store)?;
    }
    let prefix = &change.console.prefix;
    let cookie = format!("{COOKIE}=; Path={prefix}/console; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&format!("{prefix}/console/sign-in")),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; multidrm_console_old=x"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("b=2;  multidrm_console=abc"),
        );

        assert_eq!(cookie(&headers), Some("abc"));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn a_post_from_another_host_or_scheme_is_refused_and_one_without_origin_passes() {
        let headers = |origin: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };

        assert!(same_origin(&headers(None), "http").is_ok());
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080")), "http").is_ok());
        assert!(same_origin(&headers(Some("https://127.0.0.1:8080")), "https").is_ok());
        assert!(same_origin(&headers(Some("https://127.0.0.1:8080")), "http").is_err());
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080")), "https").is_err());
        assert!(same_origin(&headers(Some("http://127.0.0.1:9090")), "http").is_err());
        assert!(same_origin(&headers(Some("null")), "http").is_err());
    }
}

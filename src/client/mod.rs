//! The command-line client of a remote multidrm server: signed requests
//! (NCP signature v2), credentials from profiles or the environment, and
//! the `sites`, `policies`, `content-keys`, `history` and `license`
//! commands built on them.

pub mod commands;
pub mod credentials;
pub mod output;

use std::fmt;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::http::error::ErrorBody;
use crate::signing::SignedHeaders;
use credentials::Credentials;

/// A refusal from the server, shown as one line with its code and name.
#[derive(Debug, thiserror::Error)]
pub struct ServerError {
    /// HTTP status.
    pub status: u16,
    /// The body, when it was one of the API's error shapes.
    pub body: Option<ErrorBody>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            Some(ErrorBody::Service { error }) => write!(
                f,
                "{} {}: {} (HTTP {})",
                error.code, error.name, error.message, self.status
            ),
            Some(ErrorBody::Gateway { error }) => write!(
                f,
                "{} {}: {} (HTTP {})",
                error.error_code, error.message, error.details, self.status
            ),
            None => write!(
                f,
                "the server answered HTTP {} without an API error body",
                self.status
            ),
        }
    }
}

/// Signs and sends requests to one server with one key pair.
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    credentials: Credentials,
}

impl Client {
    /// A client for the credentials' endpoint.
    pub fn new(credentials: Credentials) -> anyhow::Result<Self> {
        let Some(endpoint) = &credentials.endpoint else {
            anyhow::bail!("no endpoint: pass --endpoint, set MULTIDRM_ENDPOINT, or add endpoint to the profile");
        };
        let endpoint = Url::parse(endpoint.trim_end_matches('/'))
            .with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("multidrm-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            endpoint,
            credentials,
        })
    }

    /// Sends a signed request and answers the response when its status is
    /// a success; otherwise the server's error.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> anyhow::Result<Response> {
        let url = Url::parse(&format!(
            "{}{path_and_query}",
            self.endpoint.as_str().trim_end_matches('/')
        ))
        .with_context(|| format!("{path_and_query:?} does not make a URL"))?;
        // The server checks the target exactly as sent, public prefix included.
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let signed = SignedHeaders::new(
            method.as_str(),
            &target,
            SystemClock.now_ms(),
            &self.credentials.access_key,
            self.credentials.secret_key.expose(),
        );
        let mut request = self.http.request(method, url).headers(headers).body(body);
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("sending the request to {}", self.endpoint))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.ok();
        Err(ServerError {
            status,
            body: body.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        }
        .into())
    }

    /// Sends JSON (or nothing) and reads the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let mut headers = HeaderMap::new();
        let bytes = match body {
            Some(body) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                serde_json::to_vec(body)?
            }
            None => Vec::new(),
        };
        let response = self.send(method, path_and_query, headers, bytes).await?;
        let bytes = response.bytes().await.context("reading the answer")?;
        serde_json::from_slice(&bytes).context("the answer is not the expected JSON")
    }

    /// `GET` of a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> anyhow::Result<T> {
        self.json(Method::GET, path_and_query, None::<&()>).await
    }
}

//! Upstream license servers [extension]: per site and per DRM type
//! (Widevine, PlayReady, FairPlay) a URL and optional static headers, and
//! the one call that forwards a CDM's message to it. The settings are
//! sealed at rest as JSON because header values may hold credentials; only
//! URLs and header names are ever shown back.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::drm::DrmType;

/// Largest answer taken from an upstream license server.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Headers the service sets itself; a static header may not replace them.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
];

/// The `licenseServers` object of a site create or update.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseServersInput {
    /// Widevine license server.
    pub widevine: Option<UpstreamInput>,
    /// PlayReady license server.
    pub playready: Option<UpstreamInput>,
    /// FairPlay key server.
    pub fairplay: Option<UpstreamInput>,
}

/// One upstream license server as a client gives it.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamInput {
    /// `http://` or `https://` URL the CDM's message is posted to.
    pub url: String,
    /// Static headers sent with every forwarded message.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A site's upstream license servers, checked; sealed at rest as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseServers {
    widevine: Option<Upstream>,
    playready: Option<Upstream>,
    fairplay: Option<Upstream>,
}

/// One checked upstream license server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Where the CDM's message goes.
    pub url: String,
    /// Static headers, names in lower case.
    pub headers: BTreeMap<String, String>,
}

/// Why a `licenseServers` field was refused.
#[derive(Debug, thiserror::Error)]
#[error("licenseServers.{field}: {problem}")]
pub struct LicenseServersError {
    field: String,
    problem: String,
}

/// Shows header names only: their values may be credentials.
impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_upstream(f, &self.url, &self.headers)
    }
}

/// Shows header names only: their values may be credentials.
impl std::fmt::Debug for UpstreamInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_upstream(f, &self.url, &self.headers)
    }
}

fn debug_upstream(
    f: &mut std::fmt::Formatter<'_>,
    url: &str,
    headers: &BTreeMap<String, String>,
) -> std::fmt::Result {
    f.debug_struct("Upstream")
        .field("url", &url)
        .field("header_names", &headers.keys().collect::<Vec<_>>())
        .finish()
}

impl LicenseServersInput {
    /// Checks every URL and header.
    pub fn validate(self) -> Result<LicenseServers, LicenseServersError> {
        Ok(LicenseServers {
            widevine: self.widevine.map(|u| u.validate("widevine")).transpose()?,
            playready: self
                .playready
                .map(|u| u.validate("playready"))
                .transpose()?,
            fairplay: self.fairplay.map(|u| u.validate("fairplay")).transpose()?,
        })
    }
}

impl UpstreamInput {
    fn validate(self, drm: &str) -> Result<Upstream, LicenseServersError> {
        let fail = |field: String, problem: &str| LicenseServersError {
            field,
            problem: problem.to_owned(),
        };
        let url_ok = reqwest::Url::parse(&self.url)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        if !url_ok {
            return Err(fail(
                format!("{drm}.url"),
                "must be an http:// or https:// URL",
            ));
        }
        let mut headers = BTreeMap::new();
        for (name, value) in self.headers {
            let field = format!("{drm}.headers.{name}");
            let Ok(parsed) = HeaderName::try_from(name.as_str()) else {
                return Err(fail(field, "is not a valid header name"));
            };
            if RESERVED_HEADERS.contains(&parsed.as_str()) {
                return Err(fail(field, "is set by the service and cannot be replaced"));
            }
            // The value is never echoed: it may be a credential.
            if HeaderValue::try_from(value.as_str()).is_err() {
                return Err(fail(field, "has a value that is not a valid header value"));
            }
            headers.insert(parsed.as_str().to_owned(), value);
        }
        Ok(Upstream {
            url: self.url,
            headers,
        })
    }
}

impl LicenseServers {
    /// The upstream for `drm`; ClearKey never has one.
    pub fn get(&self, drm: DrmType) -> Option<&Upstream> {
        match drm {
            DrmType::Widevine => self.widevine.as_ref(),
            DrmType::PlayReady => self.playready.as_ref(),
            DrmType::FairPlay => self.fairplay.as_ref(),
            DrmType::ClearKey => None,
        }
    }

    /// The DRM types that have an upstream, in a stable order.
    pub fn configured(&self) -> Vec<DrmType> {
        DrmType::ALL
            .into_iter()
            .filter(|drm| self.get(*drm).is_some())
            .collect()
    }
}

/// Why an upstream call failed; the text never holds a URL or header value.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer within the configured time.
    #[error("the {0} license server did not answer within {1} ms")]
    Timeout(DrmType, u128),
    /// Connection refused, reset, or a broken answer.
    #[error("the {0} license server could not be reached")]
    Unreachable(DrmType, #[source] reqwest::Error),
    /// An answer with a status other than 2xx.
    #[error("the {0} license server answered HTTP {1}")]
    Status(DrmType, u16),
    /// An answer larger than [`MAX_ANSWER_BYTES`].
    #[error("the {0} license server answered more than {MAX_ANSWER_BYTES} bytes")]
    TooLarge(DrmType),
}

/// What an upstream answered.
#[derive(Debug)]
pub struct UpstreamAnswer {
    /// The answer's bytes, unchanged.
    pub body: Vec<u8>,
    /// Its content type, when it named one.
    pub content_type: Option<String>,
}

/// One CDM message on its way upstream.
pub struct Forward<'a> {
    /// The DRM type, for messages.
    pub drm: DrmType,
    /// The message's bytes, sent unchanged.
    pub body: Vec<u8>,
    /// Content type to send.
    pub content_type: &'a str,
    /// Other request headers passed along (e.g. PlayReady's `SOAPAction`).
    pub passed: Vec<(HeaderName, HeaderValue)>,
}

impl Upstream {
    /// Posts the message and reads the whole answer within `timeout`.
    pub async fn forward(
        &self,
        client: &reqwest::Client,
        message: Forward<'_>,
        timeout: Duration,
    ) -> Result<UpstreamAnswer, UpstreamError> {
        let drm = message.drm;
        let exchange = async {
            let mut request = client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, message.content_type)
                .body(message.body);
            for (name, value) in message.passed {
                request = request.header(name, value);
            }
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            let response = request
                .send()
                .await
                .map_err(|error| UpstreamError::Unreachable(drm, error.without_url()))?;
            if !response.status().is_success() {
                return Err(UpstreamError::Status(drm, response.status().as_u16()));
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body =
                read_capped(response, MAX_ANSWER_BYTES)
                    .await
                    .map_err(|error| match error {
                        CapError::TooLarge => UpstreamError::TooLarge(drm),
                        CapError::Broken(error) => {
                            UpstreamError::Unreachable(drm, error.without_url())
                        }
                    })?;
            Ok(UpstreamAnswer { body, content_type })
        };
        // One deadline for connecting, sending and reading the whole answer.
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(UpstreamError::Timeout(drm, timeout.as_millis())))
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum CapError {
    /// More bytes than allowed.
    TooLarge,
    /// The transfer broke.
    Broken(reqwest::Error),
}

/// Reads a response body, refusing more than `limit` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, CapError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CapError::Broken)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(CapError::TooLarge);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str, headers: &[(&str, &str)]) -> LicenseServersInput {
        LicenseServersInput {
            widevine: Some(UpstreamInput {
                url: url.to_owned(),
                headers: headers
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                    .collect(),
            }),
            ..LicenseServersInput::default()
        }
    }

    #[test]
    fn header_names_are_kept_in_lower_case() {
        let servers = input("https://license.example/wv", &[("X-Api-Key", "secret")])
            .validate()
            .unwrap();

        let upstream = servers.get(DrmType::Widevine).unwrap();
        assert_eq!(upstream.headers.get("x-api-key").unwrap(), "secret");
        assert_eq!(servers.configured(), vec![DrmType::Widevine]);
        assert!(servers.get(DrmType::ClearKey).is_none());
    }

    #[test]
    fn bad_urls_and_headers_are_refused_without_echoing_values() {
        let not_http = input("ftp://license.example", &[]).validate().unwrap_err();
        let reserved = input("https://l.example", &[("Host", "x")])
            .validate()
            .unwrap_err();
        let bad_value = input("https://l.example", &[("x-key", "line\nbreak-secret")])
            .validate()
            .unwrap_err();

        assert!(not_http
            .to_string()
            .starts_with("licenseServers.widevine.url"));
        assert!(reserved.to_string().contains("headers.Host"));
        assert!(!bad_value.to_string().contains("secret"), "{bad_value}");
    }
}

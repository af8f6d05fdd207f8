//! A site's FairPlay credentials. File fields (`certFile`, `privateKey`)
//! take an `http(s)://` URL, fetched once at most 64 KiB, or a `data:` URI;
//! the resolved bytes are what the store keeps, sealed.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Largest credential file accepted.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The `fairPlayCert` object of a site create or update.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FairPlayCertInput {
    /// Application certificate: URL or `data:` URI.
    pub cert_file: String,
    /// Private key: URL or `data:` URI.
    pub private_key: String,
    /// Pass phrase of the private key.
    #[serde(default)]
    pub private_encrypted_string: String,
    /// Application secret key (ASK).
    #[serde(default)]
    pub secret_key: String,
}

/// Resolved credentials, serialised to JSON and sealed at rest.
#[derive(Clone, Serialize, Deserialize)]
pub struct FairPlayCredentials {
    /// `certFile` as the client gave it.
    pub cert_file_source: String,
    /// Certificate bytes, base64.
    pub cert: String,
    /// Private key bytes, base64.
    pub private_key: String,
    /// Pass phrase of the private key.
    pub private_encrypted_string: String,
    /// Application secret key.
    pub secret_key: String,
}

/// Why a credential could not be read.
#[derive(Debug, thiserror::Error)]
#[error("fairPlayCert.{field}: {problem}")]
pub struct FairPlayError {
    /// The field at fault.
    pub field: &'static str,
    /// What went wrong.
    pub problem: String,
}

impl FairPlayCertInput {
    /// Fetches or decodes both files.
    pub async fn resolve(
        self,
        client: &reqwest::Client,
    ) -> Result<FairPlayCredentials, FairPlayError> {
        let cert = read_file(client, "certFile", &self.cert_file).await?;
        let private_key = read_file(client, "privateKey", &self.private_key).await?;
        Ok(FairPlayCredentials {
            cert_file_source: self.cert_file,
            cert: STANDARD.encode(cert),
            private_key: STANDARD.encode(private_key),
            private_encrypted_string: self.private_encrypted_string,
            secret_key: self.secret_key,
        })
    }
}

async fn read_file(
    client: &reqwest::Client,
    field: &'static str,
    source: &str,
) -> Result<Vec<u8>, FairPlayError> {
    let fail = |problem: String| FairPlayError { field, problem };
    let bytes = if source.starts_with("data:") {
        let url = data_url::DataUrl::process(source)
            .map_err(|_| fail("is not a valid data: URI".into()))?;
        url.decode_to_vec()
            .map_err(|_| fail("data: URI payload is not valid base64".into()))?
            .0
    } else if source.starts_with("https://") || source.starts_with("http://") {
        fetch(client, source).await.map_err(fail)?
    } else {
        return Err(fail("must be an http(s):// URL or a data: URI".into()));
    };
    if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
        return Err(fail(format!("must hold 1 to {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| format!("could not be fetched ({})", error.without_url()))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "download was interrupted".to_owned())?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_FILE_BYTES {
            return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
        }
    }
    Ok(bytes)
}

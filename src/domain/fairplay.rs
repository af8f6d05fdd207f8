//! A site's FairPlay credentials. File fields (`certFile`, `privateKey`)
//! take an `http(s)://` URL, fetched once at most 64 KiB, or a `data:` URI;
//! the resolved bytes are what the store keeps, sealed. Also the reading
//! of a player's SPC, which arrives raw or as `spc=` form data.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::decode_any_base64;
use super::upstream::{read_capped, CapError};

/// Largest credential file accepted.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The `fairPlayCert` object of a site create or update.
#[derive(Debug, Clone, Deserialize, ToSchema)]
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
    let response = client
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| format!("could not be fetched ({})", error.without_url()))?;
    read_capped(response, MAX_FILE_BYTES)
        .await
        .map_err(|error| match error {
            CapError::TooLarge => format!("is larger than {MAX_FILE_BYTES} bytes"),
            CapError::Broken(_) => "download was interrupted".to_owned(),
        })
}

/// Why a FairPlay license request body holds no SPC.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpcError {
    /// Form data without an `spc` field.
    #[error("the form body has no 'spc' field")]
    MissingField,
    /// The `spc` field is not base64.
    #[error("the 'spc' field is not base64")]
    NotBase64,
    /// Nothing was sent.
    #[error("the body holds no SPC")]
    Empty,
}

/// The SPC bytes of a FairPlay license request: the raw body, or the
/// base64 `spc` field of form data in either alphabet, padded or not.
pub fn read_spc(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, SpcError> {
    let is_form = content_type.is_some_and(|value| {
        value
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let spc = if is_form {
        let (_, value) = form_urlencoded::parse(body)
            .find(|(name, _)| name == "spc")
            .ok_or(SpcError::MissingField)?;
        // A '+' sent unescaped reads as a space after form decoding; a
        // space never belongs in base64, so it can only have been a '+'.
        decode_any_base64(&value.replace(' ', "+")).ok_or(SpcError::NotBase64)?
    } else {
        body.to_vec()
    };
    if spc.is_empty() {
        return Err(SpcError::Empty);
    }
    Ok(spc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const SPC: [u8; 7] = [0xfb, 0xef, 0xff, 0x00, 0x10, 0x7e, 0x3f];

    #[test]
    fn every_spc_encoding_gives_the_same_bytes() {
        for body in [
            "spc=%2B%2B%2F%2FABB%2BPw%3D%3D",
            "spc=--__ABB-Pw",
            "spc=++//ABB+Pw==",
        ] {
            assert_eq!(read_spc(FORM, body.as_bytes()).unwrap(), SPC, "{body}");
        }
        assert_eq!(
            read_spc(Some("application/octet-stream"), &SPC).unwrap(),
            SPC
        );
    }

    #[test]
    fn form_data_without_spc_is_refused() {
        assert_eq!(
            read_spc(FORM, b"assetId=content-0001"),
            Err(SpcError::MissingField)
        );
        assert_eq!(read_spc(FORM, b"spc=%%%"), Err(SpcError::NotBase64));
        assert_eq!(read_spc(None, b""), Err(SpcError::Empty));
    }
}

//! Where the command-line client finds its key pair and endpoint: flags,
//! `NCLOUD_ACCESS_KEY_ID` / `NCLOUD_SECRET_KEY` as NCP's tools read them,
//! or a profile of the credentials file, which must be private to its owner.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::secrets::Secret;

/// Environment variable of the access key id, as NCP's tools name it.
pub const ACCESS_KEY_VAR: &str = "NCLOUD_ACCESS_KEY_ID";
/// Environment variable of the secret key, as NCP's tools name it.
pub const SECRET_KEY_VAR: &str = "NCLOUD_SECRET_KEY";
/// Profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// A key pair and, when known, the server it is for.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret key; never printed.
    pub secret_key: Secret,
    /// Base URL of the server, e.g. `https://drm.example.com` or one with
    /// a public prefix such as `https://example.com/drm`.
    pub endpoint: Option<String>,
}

/// One `[name]` table of the credentials file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    access_key_id: String,
    secret_key: Secret,
    endpoint: Option<String>,
}

/// What the command line says about credentials.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--profile`, when given.
    pub profile: Option<String>,
    /// `--endpoint`, when given.
    pub endpoint: Option<String>,
    /// `--access-key` (`sign` only), when given.
    pub access_key: Option<String>,
    /// `--secret-key` (`sign` only), when given.
    pub secret_key: Option<Secret>,
}

/// `$XDG_CONFIG_HOME/multidrm/credentials`, else `~/.config/multidrm/credentials`.
pub fn credentials_path() -> anyhow::Result<PathBuf> {
    let config_home = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home =
                std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(config_home.join("multidrm").join("credentials"))
}

impl Sources {
    /// The key pair to sign with: flags, then a profile named by
    /// `--profile`, then the `NCLOUD_*` variables, then the default profile.
    /// `--endpoint` replaces a profile's endpoint; a key pair from flags or
    /// variables takes the default profile's endpoint when it has one.
    pub fn resolve(&self) -> anyhow::Result<Credentials> {
        let mut credentials = self.key_pair()?;
        if let Some(endpoint) = &self.endpoint {
            credentials.endpoint = Some(endpoint.clone());
        }
        if credentials.endpoint.is_none() {
            credentials.endpoint = default_profile_endpoint();
        }
        Ok(credentials)
    }

    fn key_pair(&self) -> anyhow::Result<Credentials> {
        if let (Some(access_key), Some(secret_key)) = (&self.access_key, &self.secret_key) {
            return Ok(Credentials {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                endpoint: None,
            });
        }
        if let Some(name) = &self.profile {
            return read_profile(&credentials_path()?, name);
        }
        let from_env = (std::env::var(ACCESS_KEY_VAR), std::env::var(SECRET_KEY_VAR));
        if let (Ok(access_key), Ok(secret_key)) = from_env {
            return Ok(Credentials {
                access_key,
                secret_key: Secret::new(secret_key),
                endpoint: None,
            });
        }
        let path = credentials_path()?;
        if !path.exists() {
            bail!("no credentials: set {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}, or write a [{DEFAULT_PROFILE}] profile to {}", path.display());
        }
        read_profile(&path, DEFAULT_PROFILE)
    }
}

/// The endpoint of the default profile, when the credentials file exists
/// and holds one; a missing or unusable file only means there is none.
fn default_profile_endpoint() -> Option<String> {
    let path = credentials_path().ok().filter(|path| path.exists())?;
    read_profile(&path, DEFAULT_PROFILE).ok()?.endpoint
}

/// Reads profile `name` from `path`, refusing a file others may read.
pub fn read_profile(path: &Path, name: &str) -> anyhow::Result<Credentials> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("reading credentials file {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "credentials file {} is readable by group or others (mode {mode:04o}); run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading credentials file {}", path.display()))?;
    // Only the message and line: toml's own rendering quotes the line,
    // which may hold the secret.
    let mut profiles: BTreeMap<String, Profile> = toml::from_str(&text).map_err(|error| {
        let line = error
            .span()
            .map_or(0, |span| text[..span.start].lines().count().max(1));
        anyhow::anyhow!(
            "credentials file {} is not valid at line {line}: {}",
            path.display(),
            error.message()
        )
    })?;
    let Some(profile) = profiles.remove(name) else {
        bail!(
            "credentials file {} has no profile [{name}]",
            path.display()
        );
    };
    Ok(Credentials {
        access_key: profile.access_key_id,
        secret_key: profile.secret_key,
        endpoint: profile.endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), text).expect("writable");
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        file
    }

    #[test]
    fn a_named_profile_is_read_with_its_endpoint() {
        let file = private_file(
            "[default]\naccess_key_id = \"A\"\nsecret_key = \"S\"\n\n[staging]\naccess_key_id = \"B\"\nsecret_key = \"STAGINGSECRET\"\nendpoint = \"http://staging\"\n",
        );

        let credentials = read_profile(file.path(), "staging").unwrap();

        assert_eq!(credentials.access_key, "B");
        assert_eq!(credentials.secret_key.expose(), "STAGINGSECRET");
        assert_eq!(credentials.endpoint.as_deref(), Some("http://staging"));
        assert!(!format!("{credentials:?}").contains("STAGINGSECRET"));
    }

    #[test]
    fn a_missing_profile_is_named() {
        let file = private_file("[default]\naccess_key_id = \"A\"\nsecret_key = \"S\"\n");

        let error = read_profile(file.path(), "prod").unwrap_err();

        assert!(
            error.to_string().ends_with("has no profile [prod]"),
            "{error}"
        );
    }
}

//! The one typed settings struct. Defaults start the service on embedded
//! SQLite under `./multidrm-data`; a TOML file, `MULTIDRM_*` variables and
//! command-line flags override them, in that order.

use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono_tz::Tz;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::secrets::Secret;
use crate::store::OnOutage;

/// Prefix of every environment variable that sets a field.
pub const ENV_PREFIX: &str = "MULTIDRM_";
/// The TOML file read when present and no other file is named.
pub const DEFAULT_CONFIG_FILE: &str = "multidrm.toml";

/// Every setting of the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder for the SQLite database, the master key and initial credentials.
    pub data_dir: PathBuf,
    /// Database URL; empty means `sqlite://<data_dir>/multidrm.db`.
    pub database_url: String,
    /// Address `serve` listens on.
    pub listen: String,
    /// Public prefix the service is mounted under (e.g. `/drm`); signatures
    /// are checked against prefix + path (spec section 1).
    pub public_base_path: String,
    /// IANA zone of `licenseCreatedTime` in history answers.
    pub history_time_zone: String,
    /// Master key as 64 hex digits or base64; empty means `<data_dir>/master.key`.
    pub master_key: Option<Secret>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Most history records committed in one write transaction.
    pub history_batch_size: usize,
    /// Days of license history to keep; 0 keeps everything.
    pub history_retention_days: u32,
    /// While the database is unavailable: `spool` keeps issuing licenses
    /// and writes their records to a file in the data directory, replayed
    /// once the database is back; `refuse` answers license requests 503.
    pub history_on_outage: OnOutage,
    /// How long, in ms, a node reuses an access key, site or content key it
    /// read for a license request; 0 reads them every time. Changes made on
    /// another node sharing the database apply within this time.
    pub lookup_cache_ms: u64,
    /// Longest wait, in ms, for an upstream license server to answer in
    /// full; past it the license request fails with a 502.
    pub upstream_timeout_ms: u64,
    /// Log filter in `tracing` syntax (e.g. `info,multidrm=debug`).
    pub log: String,
    /// Serve the playback demo page at `/demo` (never on a public address:
    /// it signs license and history requests for anyone who can reach it).
    pub demo: bool,
    /// Access key the demo signs with; its secret stays in the database.
    pub demo_access_key: String,
    /// Shaka Player's compiled script, served to the demo page.
    pub demo_shaka_js: PathBuf,
    /// PEM certificate chain; with `tls_key`, `serve` speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Open connections served at once; past it a new connection gets one
    /// 503 and is closed.
    pub max_connections: usize,
    /// Requests handled at once; past it a request is answered 503 at once
    /// instead of queueing (this also bounds the memory of request bodies).
    pub max_concurrent_requests: usize,
    /// Longest wait, in ms, for a request's headers, and for the next
    /// request on an idle keep-alive connection; past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Longest time, in ms, to receive a request's whole body once its
    /// headers are in; past it the request fails with a 400.
    pub body_read_timeout_ms: u64,
    /// Requests per second allowed to each access key (license requests
    /// included); 0 turns the limit off. Fractions are allowed (0.5 = one per 2 s).
    pub rate_limit_per_second: f64,
    /// Requests an access key may send at once before `rate_limit_per_second` applies.
    pub rate_limit_burst: u32,
    /// Address of a second listener serving Prometheus metrics at
    /// `/metrics`, without authentication; empty serves no metrics.
    pub metrics_listen: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("multidrm-data"),
            database_url: String::new(),
            listen: "127.0.0.1:8080".to_owned(),
            public_base_path: String::new(),
            history_time_zone: "UTC".to_owned(),
            master_key: None,
            body_limit_bytes: 1024 * 1024,
            history_batch_size: 512,
            history_retention_days: 0,
            history_on_outage: OnOutage::Spool,
            lookup_cache_ms: 1000,
            upstream_timeout_ms: 5000,
            log: "info".to_owned(),
            demo: false,
            demo_access_key: String::new(),
            demo_shaka_js: PathBuf::from(
                "tests/player/node_modules/shaka-player/dist/shaka-player.compiled.js",
            ),
            tls_cert: None,
            tls_key: None,
            max_connections: 1024,
            max_concurrent_requests: 256,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            rate_limit_per_second: 0.0,
            rate_limit_burst: 100,
            metrics_listen: String::new(),
        }
    }
}

impl Settings {
    /// Layers defaults, the TOML file, `MULTIDRM_*` variables and then `overrides`.
    pub fn load(file: Option<&Path>, overrides: Figment) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) if !path.exists() => {
                bail!("configuration file {} does not exist", path.display())
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        // Client-side variables share the prefix but are not settings.
        let env = Env::prefixed(ENV_PREFIX).ignore(&[
            "config",
            "access_key",
            "secret_key",
            "profile",
            "endpoint",
        ]);
        let figment = figment.merge(env).merge(overrides);
        let settings: Settings = figment.extract().map_err(describe_error)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.time_zone()?;
        let base = &self.public_base_path;
        if !base.is_empty() && (!base.starts_with('/') || base.ends_with('/')) {
            bail!("MULTIDRM_PUBLIC_BASE_PATH must start with '/' and not end with '/', e.g. /drm");
        }
        if self.history_batch_size == 0 {
            bail!("MULTIDRM_HISTORY_BATCH_SIZE must be at least 1");
        }
        if self.upstream_timeout_ms == 0 {
            bail!("MULTIDRM_UPSTREAM_TIMEOUT_MS must be at least 1");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("MULTIDRM_TLS_CERT and MULTIDRM_TLS_KEY must be set together");
        }
        self.validate_limits()?;
        if self.demo && self.demo_access_key.is_empty() {
            bail!(
                "MULTIDRM_DEMO needs MULTIDRM_DEMO_ACCESS_KEY, the access key the demo signs with"
            );
        }
        Ok(())
    }

    fn validate_limits(&self) -> anyhow::Result<()> {
        if self.max_connections == 0 {
            bail!("MULTIDRM_MAX_CONNECTIONS must be at least 1");
        }
        if self.max_concurrent_requests == 0 {
            bail!("MULTIDRM_MAX_CONCURRENT_REQUESTS must be at least 1");
        }
        if self.header_read_timeout_ms == 0 {
            bail!("MULTIDRM_HEADER_READ_TIMEOUT_MS must be at least 1");
        }
        if self.body_read_timeout_ms == 0 {
            bail!("MULTIDRM_BODY_READ_TIMEOUT_MS must be at least 1");
        }
        if !self.rate_limit_per_second.is_finite() || self.rate_limit_per_second < 0.0 {
            bail!("MULTIDRM_RATE_LIMIT_PER_SECOND must be 0 (no limit) or a positive number");
        }
        if self.rate_limit_per_second > 0.0 && self.rate_limit_burst == 0 {
            bail!("MULTIDRM_RATE_LIMIT_BURST must be at least 1");
        }
        Ok(())
    }

    /// The configured history time zone.
    pub fn time_zone(&self) -> anyhow::Result<Tz> {
        self.history_time_zone.parse().map_err(|_| {
            anyhow::anyhow!(
                "MULTIDRM_HISTORY_TIME_ZONE {:?} is not an IANA time zone",
                self.history_time_zone
            )
        })
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("multidrm.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The settings as TOML with every secret masked, for `multidrm config`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = mask_url_password(&self.effective_database_url());
        shown.master_key = self.master_key.as_ref().map(|_| Secret::new("********"));
        toml::to_string(&shown).expect("settings always serialise to TOML")
    }
}

/// Names the setting, and the variable or file it came from, at fault.
fn describe_error(error: figment::Error) -> anyhow::Error {
    let messages: Vec<String> = error.into_iter().map(|error| error.to_string()).collect();
    anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
}

/// Replaces the password of a `scheme://user:password@host` URL with stars.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://u:pw@db/x"),
            "postgres://u:********@db/x"
        );
        assert_eq!(
            mask_url_password("sqlite://data/multidrm.db"),
            "sqlite://data/multidrm.db"
        );
    }

    #[test]
    fn an_unknown_time_zone_names_the_variable() {
        let settings = Settings {
            history_time_zone: "Mars/Olympus".into(),
            ..Settings::default()
        };

        let error = settings.validate().unwrap_err().to_string();

        assert!(error.contains("MULTIDRM_HISTORY_TIME_ZONE"), "{error}");
    }

    #[test]
    fn a_zero_upstream_timeout_names_the_variable() {
        let settings = Settings {
            upstream_timeout_ms: 0,
            ..Settings::default()
        };

        let error = settings.validate().unwrap_err().to_string();

        assert!(error.contains("MULTIDRM_UPSTREAM_TIMEOUT_MS"), "{error}");
    }

    #[test]
    fn the_demo_needs_an_access_key_to_sign_with() {
        let settings = Settings {
            demo: true,
            ..Settings::default()
        };

        let error = settings.validate().unwrap_err().to_string();

        assert!(error.contains("MULTIDRM_DEMO_ACCESS_KEY"), "{error}");
    }

    #[test]
    fn a_tls_certificate_needs_its_key() {
        let settings = Settings {
            tls_cert: Some(PathBuf::from("cert.pem")),
            ..Settings::default()
        };

        let error = settings.validate().unwrap_err().to_string();

        assert!(error.contains("MULTIDRM_TLS_KEY"), "{error}");
    }

    #[test]
    fn a_negative_rate_limit_names_the_variable() {
        let settings = Settings {
            rate_limit_per_second: -1.0,
            ..Settings::default()
        };

        let error = settings.validate().unwrap_err().to_string();

        assert!(error.contains("MULTIDRM_RATE_LIMIT_PER_SECOND"), "{error}");
    }
}

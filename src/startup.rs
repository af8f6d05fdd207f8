//! Putting the service together: open storage, load the master key, start
//! the history writer, and serve on a listener the caller bound (tests
//! pass port 0), with TLS, connection guards and metrics as configured.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::{self, AppState, KeyRateLimiter, Services};
use crate::monitoring;
use crate::retention;
use crate::secrets::{MasterKey, MASTER_KEY_FILE};
use crate::server::{self, tls, Guards};
use crate::store::{self, CachedStore, HistoryWriter, SharedStore, WriterOptions};

/// Name of the meta value that proves the master key matches the database.
const MASTER_KEY_CHECK: &str = "master_key_check";

/// Opens the database and the master key that seals its secrets. A new
/// database gets a new key; an existing one must be opened with its own
/// key, or this fails before anything is served.
pub async fn open_storage(settings: &Settings) -> anyhow::Result<(SharedStore, MasterKey)> {
    let data_dir = &settings.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let store = store::open(&settings.effective_database_url()).await?;
    let check = store.read_meta(MASTER_KEY_CHECK).await?;
    let found = MasterKey::find(settings.master_key.as_ref(), data_dir)?;

    let master_key = match (found, &check) {
        (Some(key), _) => key,
        (None, None) => MasterKey::create(data_dir)?,
        (None, Some(_)) => bail!(
            "the database holds secrets sealed with a master key that is missing: restore {} or set MULTIDRM_MASTER_KEY",
            data_dir.join(MASTER_KEY_FILE).display()
        ),
    };
    match check {
        Some(sealed) if master_key.open(&sealed).is_err() => bail!(
            "the master key (MULTIDRM_MASTER_KEY or {}) is not the one this database was sealed with",
            data_dir.join(MASTER_KEY_FILE).display()
        ),
        Some(_) => {}
        None => store.write_meta(MASTER_KEY_CHECK, &master_key.seal(b"multidrm")).await?,
    }
    Ok((store, master_key))
}

/// The connection limit, timeout and TLS of `settings`.
fn guards(settings: &Settings) -> anyhow::Result<Guards> {
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    Ok(Guards {
        max_connections: settings.max_connections,
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        tls,
    })
}

/// A ready-to-serve service with its background writer.
pub struct App {
    /// State shared by every handler.
    pub state: AppState,
    writer_task: JoinHandle<()>,
    guards: Guards,
}

impl App {
    /// Opens everything `settings` names, creating the data directory and
    /// database on first use.
    pub async fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        // A bad certificate should stop the service before it touches the data.
        let guards = guards(&settings)?;
        let (store, master_key) = open_storage(&settings).await?;
        let store: SharedStore = match settings.lookup_cache_ms {
            0 => store,
            ms => Arc::new(CachedStore::new(store, Duration::from_millis(ms))),
        };
        let options = WriterOptions {
            batch_size: settings.history_batch_size,
            on_outage: settings.history_on_outage,
            spool_dir: settings.data_dir.clone(),
        };
        let (writer, writer_task) = HistoryWriter::start(store.clone(), options)
            .context("opening the history spool in the data directory")?;
        let http_client = reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?;
        let state = AppState::new(Services {
            store,
            writer,
            clock,
            master_key,
            time_zone: settings.time_zone()?,
            rate_limiter: KeyRateLimiter::new(
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            )
            .map(Arc::new),
            settings: Arc::new(settings),
            http_client,
        });
        Ok(Self {
            state,
            writer_task,
            guards,
        })
    }

    /// Creates the first account and key when the database has none.
    pub async fn ensure_initial_credentials(&self) -> anyhow::Result<()> {
        let state = &self.state;
        let written = admin::ensure_initial_credentials(
            &*state.store,
            &state.master_key,
            &state.settings.data_dir,
            state.clock.now_ms(),
        )
        .await?;
        if let Some(path) = written {
            tracing::info!(path = %path.display(), "created the first access key; its secret is in this file (mode 0600)");
        }
        Ok(())
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests
    /// and waits for the history writer to commit what it holds.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let settings = &self.state.settings;
        let metrics = match settings.metrics_listen.as_str() {
            "" => None,
            address => Some(monitoring::serve(address).await?),
        };
        let retention = retention::spawn(
            self.state.store.clone(),
            self.state.clock.clone(),
            settings.history_retention_days,
        );
        let scheme = if self.guards.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(address = %listener.local_addr()?, scheme, "listening");
        let service = http::service(self.state.clone());
        server::serve(listener, service, self.guards, shutdown).await;
        for task in [retention, metrics].into_iter().flatten() {
            task.abort();
        }
        drop(self.state);
        self.writer_task
            .await
            .context("history writer stopped abnormally")?;
        Ok(())
    }
}

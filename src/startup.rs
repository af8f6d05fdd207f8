//! Putting the service together: open storage, load the master key, start
//! the history writer, and serve on a listener the caller bound (tests
//! pass port 0).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::secrets::MasterKey;
use crate::store::{self, HistoryWriter};

/// A ready-to-serve service with its background writer.
pub struct App {
    /// State shared by every handler.
    pub state: AppState,
    writer_task: JoinHandle<()>,
}

impl App {
    /// Opens everything `settings` names, creating the data directory and
    /// database on first use.
    pub async fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let master_key = MasterKey::load(settings.master_key.as_ref(), &settings.data_dir)?;
        let store = store::open(&settings.effective_database_url()).await?;
        let (writer, writer_task) =
            HistoryWriter::start(store.clone(), settings.history_batch_size);
        let http_client = reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?;
        let state = AppState {
            store,
            writer,
            clock,
            master_key,
            time_zone: settings.time_zone()?,
            settings: Arc::new(settings),
            http_client,
        };
        Ok(Self { state, writer_task })
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
        let service = http::service(self.state.clone());
        let make_service =
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(service);
        tracing::info!(address = %listener.local_addr()?, "listening");
        axum::serve(listener, make_service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        drop(self.state);
        self.writer_task
            .await
            .context("history writer stopped abnormally")?;
        Ok(())
    }
}

//! The command line: `serve` runs the service; `keys` and `config`
//! administer a local database; `sign` and `token` help a client call a
//! running server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Parser, Subcommand};
use figment::providers::Serialized;
use figment::Figment;
use serde_json::json;

use crate::admin;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::drm::DrmType;
use crate::domain::token::RawToken;
use crate::history_cli;
use crate::history_file::ExportFormat;
use crate::signing::SignedHeaders;
use crate::startup::{open_storage, App};

/// Self-hostable multi-DRM license service with a searchable license history.
#[derive(Debug, Parser)]
#[command(name = "multidrm", version)]
pub struct Cli {
    /// TOML settings file (default: ./multidrm.toml when present).
    #[arg(long, global = true, env = "MULTIDRM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder for the database, master key and initial credentials.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default: sqlite://<data dir>/multidrm.db).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Serve the playback demo page at /demo (see docs/playback.md).
        #[arg(long)]
        demo: bool,
        /// Access key the demo signs with (its secret stays on the server).
        #[arg(long)]
        demo_access_key: Option<String>,
        /// PEM certificate chain; with --tls-key, serve HTTPS only.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Address serving Prometheus metrics at /metrics, unauthenticated
        /// (keep it private), e.g. 127.0.0.1:9464.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Manage access keys in the local database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move license history between the local database and files.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Print the effective settings, secrets masked.
    Config,
    /// Print the signature headers for one request, one `name: value` per line.
    Sign {
        /// HTTP method, e.g. GET.
        method: String,
        /// Path with its query exactly as it will be sent, e.g. '/api/v1/sites?pageNo=1'.
        path: String,
        /// Access key id.
        #[arg(long, env = "MULTIDRM_ACCESS_KEY")]
        access_key: String,
        /// Secret key.
        #[arg(long, env = "MULTIDRM_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
    /// Print an X-DRM-TOKEN for a license request.
    Token {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Content id.
        #[arg(long)]
        content: String,
        /// DRM type: widevine, playready, fairplay or clearkey.
        #[arg(long, default_value = "clearkey")]
        drm_type: String,
        /// The viewer's user id (hashed by the service unless already an MD5).
        #[arg(long)]
        user: String,
        /// ORIGINAL or JSON.
        #[arg(long, default_value = "ORIGINAL")]
        response_format: String,
    },
}

/// `multidrm history ...`
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Write a site's history, newest first, as CSV or NDJSON.
    Export {
        /// The site.
        #[arg(long)]
        site: String,
        /// csv or ndjson (default: from --output's extension, else ndjson).
        #[arg(long)]
        format: Option<String>,
        /// File to write; standard output when absent.
        #[arg(long)]
        output: Option<PathBuf>,
        /// success or fail.
        #[arg(long)]
        status: Option<String>,
        /// Earliest record, epoch ms (inclusive).
        #[arg(long)]
        start_time: Option<String>,
        /// Latest record, epoch ms (inclusive).
        #[arg(long)]
        end_time: Option<String>,
        /// contentId, drmType, userId, deviceId or deviceModel.
        #[arg(long, requires = "search_keyword")]
        search_condition: Option<String>,
        /// Exact value for --search-condition.
        #[arg(long, requires = "search_condition")]
        search_keyword: Option<String>,
    },
    /// Read records from a CSV (by extension) or NDJSON file.
    Import {
        /// The file, as `history export` writes it.
        file: PathBuf,
        /// Account that owns sites the database does not have yet.
        #[arg(long, default_value = admin::DEFAULT_ACCOUNT)]
        account: String,
    },
}

/// `multidrm keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an account if needed and a new access key; the secret is printed once.
    Create {
        /// Account that owns the key.
        #[arg(long, default_value = admin::DEFAULT_ACCOUNT)]
        account: String,
        /// Print {"account", "accessKey", "secretKey"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List access keys (never their secrets).
    List,
    /// Disable an access key; requests signed with it are refused from then on.
    Disable {
        /// The access key id.
        key: String,
    },
}

impl Cli {
    /// Settings from defaults, file, environment and these flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut overrides = Figment::new();
        if let Some(dir) = &self.data_dir {
            overrides = overrides.merge(Serialized::default("data_dir", dir));
        }
        if let Some(url) = &self.database_url {
            overrides = overrides.merge(Serialized::default("database_url", url));
        }
        if let Command::Serve {
            listen,
            demo,
            demo_access_key,
            tls_cert,
            tls_key,
            metrics_listen,
        } = &self.command
        {
            if let Some(listen) = listen {
                overrides = overrides.merge(Serialized::default("listen", listen));
            }
            // Without the flag the file or environment decide.
            if *demo {
                overrides = overrides.merge(Serialized::default("demo", true));
            }
            if let Some(key) = demo_access_key {
                overrides = overrides.merge(Serialized::default("demo_access_key", key));
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                overrides = overrides
                    .merge(Serialized::default("tls_cert", cert))
                    .merge(Serialized::default("tls_key", key));
            }
            if let Some(address) = metrics_listen {
                overrides = overrides.merge(Serialized::default("metrics_listen", address));
            }
        }
        Settings::load(self.config.as_deref(), overrides)
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { .. } => serve(cli.settings()?).await,
        Command::Keys(command) => keys(cli.settings()?, command).await,
        Command::History(command) => history(cli.settings()?, command).await,
        Command::Config => {
            print!("{}", cli.settings()?.to_masked_toml());
            Ok(())
        }
        Command::Sign {
            method,
            path,
            access_key,
            secret_key,
        } => {
            let headers = SignedHeaders::new(
                &method.to_ascii_uppercase(),
                path,
                SystemClock.now_ms(),
                access_key,
                secret_key,
            );
            for (name, value) in headers.pairs() {
                println!("{name}: {value}");
            }
            Ok(())
        }
        Command::Token {
            site,
            content,
            drm_type,
            user,
            response_format,
        } => {
            let Some(drm) = DrmType::parse(drm_type) else {
                bail!("--drm-type must be widevine, playready, fairplay or clearkey")
            };
            let token = json!({ "siteId": site, "contentId": content, "drmType": drm.name(), "responseFormat": response_format, "userId": user });
            let encoded = STANDARD.encode(token.to_string());
            // The service's own rules, so that no printed token is refused.
            RawToken::decode(Some(&encoded))
                .and_then(|raw| raw.validate())
                .context("the token would be refused")?;
            println!("{encoded}");
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings.log);
    let listen = settings.listen.clone();
    let app = App::open(settings, Arc::new(SystemClock)).await?;
    app.ensure_initial_credentials().await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    app.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing requests and committing history");
}

async fn keys(settings: Settings, command: &KeysCommand) -> anyhow::Result<()> {
    let (store, master_key) = open_storage(&settings).await?;
    match command {
        KeysCommand::Create { account, json } => {
            let key = admin::create_access_key(&*store, &master_key, account, SystemClock.now_ms())
                .await?;
            if *json {
                println!("{}", serde_json::to_string(&key)?);
            } else {
                println!("account:    {}\naccess key: {}\nsecret key: {}\n(the secret key is shown only now)", key.account, key.access_key, key.secret_key);
            }
        }
        KeysCommand::List => {
            for key in store.list_access_keys().await? {
                let state = if key.enabled { "enabled" } else { "disabled" };
                println!("{}\t{}\t{}", key.access_key, key.account_name, state);
            }
        }
        KeysCommand::Disable { key } => {
            if !store.disable_access_key(key).await? {
                bail!("no access key {key}");
            }
            println!("disabled {key}");
        }
    }
    Ok(())
}

async fn history(settings: Settings, command: &HistoryCommand) -> anyhow::Result<()> {
    let (store, master_key) = open_storage(&settings).await?;
    match command {
        HistoryCommand::Export {
            site,
            format,
            output,
            status,
            start_time,
            end_time,
            search_condition,
            search_keyword,
        } => {
            let format = match (format, output) {
                (Some(format), _) => ExportFormat::parse(Some(format))
                    .map_err(|error| anyhow::anyhow!("--{error}"))?,
                (None, Some(path)) => ExportFormat::of_file(&path.to_string_lossy()),
                (None, None) => ExportFormat::Ndjson,
            };
            let named = [
                ("siteId", Some(site)),
                ("status", status.as_ref()),
                ("startTime", start_time.as_ref()),
                ("endTime", end_time.as_ref()),
                ("searchCondition", search_condition.as_ref()),
                ("searchKeyword", search_keyword.as_ref()),
            ];
            let query = named
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?.clone())))
                .collect();
            let written = history_cli::export(
                &store,
                settings.time_zone()?,
                query,
                format,
                output.as_deref(),
            )
            .await?;
            eprintln!("exported {written} records");
        }
        HistoryCommand::Import { file, account } => {
            // An import of millions of records logs its phases and their times.
            crate::telemetry::init(&settings.log);
            let stored = history_cli::import(&store, &master_key, file, account).await?;
            eprintln!("imported {stored} records");
        }
    }
    Ok(())
}

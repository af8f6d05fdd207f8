//! The command line: `serve` runs the service; `keys`, `config` and
//! `history export|import` administer a local database; `sites`,
//! `policies`, `content-keys`, `history list`, `history export --remote`
//! and `license` call a remote server (see `client`); `sign` and `token`
//! help other clients call one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use figment::providers::Serialized;
use figment::Figment;
use serde_json::json;

use crate::admin;
use crate::client::commands::{
    self as remote, ContentKeysCommand, HistoryFilter, HistoryListArgs, LicenseCommand,
    PoliciesCommand, SitesCommand,
};
use crate::client::credentials::Sources;
use crate::client::output::OutputArgs;
use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::drm::DrmType;
use crate::domain::token::RawToken;
use crate::history_cli;
use crate::history_file::ExportFormat;
use crate::secrets::Secret;
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
    /// Remote commands: profile of the credentials file
    /// (~/.config/multidrm/credentials) to sign with.
    #[arg(long, global = true, env = "MULTIDRM_PROFILE")]
    pub profile: Option<String>,
    /// Remote commands: base URL of the server, e.g. https://drm.example.com.
    #[arg(long, global = true, env = "MULTIDRM_ENDPOINT")]
    pub endpoint: Option<String>,
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
    /// Read a remote site's history, or move history between the local
    /// database and files.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Remote: manage sites.
    #[command(subcommand)]
    Sites(SitesCommand),
    /// Remote: manage policies.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Remote: a content's keys (not access keys; see `keys`).
    #[command(subcommand)]
    ContentKeys(ContentKeysCommand),
    /// Remote: ask for a license to check a setup.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
    /// Print the effective settings, secrets masked.
    Config,
    /// Print the signature headers for one request, one `name: value` per line.
    Sign {
        /// HTTP method, e.g. GET.
        method: String,
        /// Path with its query exactly as it will be sent, e.g. '/api/v1/sites?pageNo=1'.
        path: String,
        /// Access key id (default: NCLOUD_ACCESS_KEY_ID or the profile's).
        #[arg(long, env = "MULTIDRM_ACCESS_KEY", requires = "secret_key")]
        access_key: Option<String>,
        /// Secret key (default: NCLOUD_SECRET_KEY or the profile's).
        #[arg(
            long,
            env = "MULTIDRM_SECRET_KEY",
            hide_env_values = true,
            requires = "access_key"
        )]
        secret_key: Option<String>,
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
    /// Remote: one page of a site's history, newest first; --follow keeps
    /// printing new records.
    List(HistoryListArgs),
    /// Remote: totals, a time series by status, counts by DRM type and
    /// platform, and the top failure reasons of a site's filtered history.
    Summary {
        #[command(flatten)]
        filter: HistoryFilter,
        /// hour or day (default: hour for windows of two days or less).
        #[arg(long)]
        interval: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write a site's history, newest first, from the local database, or
    /// with --remote (or --profile or --endpoint) from a server, with a
    /// progress bar.
    Export {
        #[command(flatten)]
        filter: HistoryFilter,
        /// csv, ndjson or xlsx (default: from --output's extension, else
        /// ndjson).
        #[arg(long)]
        format: Option<String>,
        /// File to write; standard output when absent.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Download from the server of the credentials, not the local database.
        #[arg(long)]
        remote: bool,
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

impl Cli {
    /// What the command line says about remote credentials.
    fn sources(&self) -> Sources {
        Sources {
            profile: self.profile.clone(),
            endpoint: self.endpoint.clone(),
            ..Sources::default()
        }
    }

    /// A client of the remote server the credentials name.
    fn client(&self) -> anyhow::Result<Client> {
        Client::new(self.sources().resolve()?)
    }
}

/// The export format: `--format`, else `--output`'s extension, else NDJSON.
fn export_format(format: Option<&str>, output: Option<&Path>) -> anyhow::Result<ExportFormat> {
    Ok(match (format, output) {
        (Some(format), _) => {
            ExportFormat::parse(Some(format)).map_err(|error| anyhow::anyhow!("--{error}"))?
        }
        (None, Some(path)) => ExportFormat::of_file(&path.to_string_lossy()),
        (None, None) => ExportFormat::Ndjson,
    })
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { .. } => serve(cli.settings()?).await,
        Command::Keys(command) => keys(cli.settings()?, command).await,
        Command::History(command) => history(&cli, command).await,
        Command::Sites(command) => remote::sites(&cli.client()?, command).await,
        Command::Policies(command) => remote::policies(&cli.client()?, command).await,
        Command::ContentKeys(command) => remote::content_keys(&cli.client()?, command).await,
        Command::License(command) => remote::license(&cli.client()?, command).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "multidrm",
                &mut std::io::stdout(),
            );
            Ok(())
        }
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
            let credentials = Sources {
                access_key: access_key.clone(),
                secret_key: secret_key.clone().map(Secret::new),
                ..cli.sources()
            }
            .resolve()?;
            let headers = SignedHeaders::new(
                &method.to_ascii_uppercase(),
                path,
                SystemClock.now_ms(),
                &credentials.access_key,
                credentials.secret_key.expose(),
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

async fn history(cli: &Cli, command: &HistoryCommand) -> anyhow::Result<()> {
    match command {
        HistoryCommand::List(args) => remote::history_list(&cli.client()?, args).await,
        HistoryCommand::Summary {
            filter,
            interval,
            output,
        } => remote::history_summary(&cli.client()?, filter, interval.as_deref(), *output).await,
        HistoryCommand::Export {
            filter,
            format,
            output,
            remote,
        } => {
            let format = export_format(format.as_deref(), output.as_deref())?;
            if !(*remote || cli.profile.is_some() || cli.endpoint.is_some()) {
                return local_export(cli.settings()?, filter, format, output.as_deref()).await;
            }
            let total =
                remote::history_export(&cli.client()?, filter, format, output.as_deref()).await?;
            eprintln!("exported {total} records");
            Ok(())
        }
        HistoryCommand::Import { file, account } => {
            import_history(cli.settings()?, file, account).await
        }
    }
}

async fn local_export(
    settings: Settings,
    filter: &HistoryFilter,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let (store, _) = open_storage(&settings).await?;
    let query = filter
        .pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let written = history_cli::export(&store, settings.time_zone()?, query, format, output).await?;
    eprintln!("exported {written} records");
    Ok(())
}

async fn import_history(settings: Settings, file: &Path, account: &str) -> anyhow::Result<()> {
    let (store, master_key) = open_storage(&settings).await?;
    // An import of millions of records logs its phases and their times.
    crate::telemetry::init(&settings.log);
    let stored = history_cli::import(&store, &master_key, file, account).await?;
    eprintln!("imported {stored} records");
    Ok(())
}

//! The remote commands: what each sends and how its answer is printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use super::output::{print_object, print_rows, print_stream, Format, OutputArgs};
use super::Client;
use crate::domain::ids::Kid;
use crate::history_file::ExportFormat;

const SITE_COLUMNS: &[&str] = &[
    "siteId",
    "siteName",
    "siteStatus",
    "siteEnabledYn",
    "policyId",
    "policyName",
    "siteCreatedTime",
];
const POLICY_COLUMNS: &[&str] = &[
    "policyId",
    "policyName",
    "policyStatus",
    "persistent",
    "rentalDuration",
    "playbackDuration",
    "policyUpdateTime",
];
const KEY_COLUMNS: &[&str] = &["siteId", "contentId", "kid", "key", "createdTime"];
const HISTORY_COLUMNS: &[&str] = &[
    "licenseCreatedTime",
    "licenseStatus",
    "contentId",
    "drmType",
    "userId",
    "deviceId",
    "deviceModel",
    "platformName",
    "errorCode",
    "errorName",
];

/// `--page` and `--page-size` of list commands.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Items per page, 1..100.
    #[arg(long, default_value_t = 20)]
    pub page_size: u32,
}

/// `multidrm sites ...` against a remote server.
#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// List sites.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one site, with its KMS token.
    Show {
        /// The site id.
        site: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Create a site (READY and off).
    Create {
        #[command(flatten)]
        body: SiteBody,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Change a site's name, policy or credentials.
    Update {
        /// The site id.
        site: String,
        #[command(flatten)]
        body: SiteBody,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Start issuing licenses on a site.
    On {
        /// The site id.
        site: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Stop issuing licenses on a site.
    Off {
        /// The site id.
        site: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a site; its history stays readable.
    Delete {
        /// The site id.
        site: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// The body of site create and update.
#[derive(Debug, Clone, Args)]
pub struct SiteBody {
    /// 3..20 of letters, digits and `_` (update: unchanged when neither
    /// this nor the file names it).
    #[arg(long)]
    pub name: Option<String>,
    /// Policy id (create: Basic 0 when absent; update: unchanged).
    #[arg(long)]
    pub policy: Option<i64>,
    /// JSON file with more fields, e.g. fairPlayCert or licenseServers.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// `multidrm policies ...` against a remote server.
#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// List policies.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one policy with its DRM settings.
    Show {
        /// The policy id.
        policy: i64,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Create a policy from a JSON file and/or a name.
    Create {
        #[command(flatten)]
        body: PolicyBody,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Replace a policy's settings.
    Update {
        /// The policy id.
        policy: i64,
        #[command(flatten)]
        body: PolicyBody,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a policy no site uses.
    Delete {
        /// The policy id.
        policy: i64,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Copy a policy as `Copy_<name>`.
    Copy {
        /// The policy id.
        policy: i64,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// The body of policy create and update.
#[derive(Debug, Clone, Args)]
pub struct PolicyBody {
    /// Policy name; replaces the file's policyName.
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// JSON file with the policy's fields (spec section 5).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// `multidrm content-keys ...`: a content's keys on a remote server.
#[derive(Debug, Subcommand)]
pub enum ContentKeysCommand {
    /// List a content's key ids (never the keys).
    List {
        #[command(flatten)]
        content: ContentArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Register a key, or have one generated; the key is printed only now.
    Add {
        #[command(flatten)]
        content: ContentArgs,
        /// Key id, 32 hex digits; with --key.
        #[arg(long, requires = "key")]
        kid: Option<String>,
        /// The key, 32 hex digits; with --kid.
        #[arg(long, requires = "kid")]
        key: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `--site` and `--content`.
#[derive(Debug, Clone, Args)]
pub struct ContentArgs {
    /// The site id.
    #[arg(long)]
    pub site: String,
    /// The content id.
    #[arg(long)]
    pub content: String,
}

/// `multidrm license ...`: check a setup by asking for a license.
#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Send a ClearKey license request and print the keys it answers.
    Clearkey {
        #[command(flatten)]
        content: ContentArgs,
        /// The viewer's user id.
        #[arg(long, default_value = "multidrm-cli")]
        user: String,
        /// Key id to ask for, 32 hex digits; repeatable. Default: every
        /// key registered for the content.
        #[arg(long)]
        kid: Vec<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// The history filters of the API (spec section 7).
#[derive(Debug, Clone, Args)]
pub struct HistoryFilter {
    /// The site.
    #[arg(long)]
    pub site: String,
    /// success or fail.
    #[arg(long)]
    pub status: Option<String>,
    /// Earliest record, epoch ms (inclusive).
    #[arg(long)]
    pub start_time: Option<String>,
    /// Latest record, epoch ms (inclusive).
    #[arg(long)]
    pub end_time: Option<String>,
    /// contentId, drmType, userId, deviceId or deviceModel.
    #[arg(long, requires = "search_keyword")]
    pub search_condition: Option<String>,
    /// Exact value for --search-condition.
    #[arg(long, requires = "search_condition")]
    pub search_keyword: Option<String>,
    /// Only this DRM type (widevine, playready, fairplay or clearkey), on
    /// top of any search condition.
    #[arg(long)]
    pub drm_type: Option<String>,
    /// Only this platform, e.g. PLATFORM_LINUX.
    #[arg(long)]
    pub platform: Option<String>,
}

impl HistoryFilter {
    /// The filters as query pairs, `siteId` first.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("siteId", Some(&self.site)),
            ("status", self.status.as_ref()),
            ("startTime", self.start_time.as_ref()),
            ("endTime", self.end_time.as_ref()),
            ("searchCondition", self.search_condition.as_ref()),
            ("searchKeyword", self.search_keyword.as_ref()),
            ("drmType", self.drm_type.as_ref()),
            ("platform", self.platform.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.clone())))
        .collect()
    }
}

/// `multidrm history list`: one page of a remote site's history.
#[derive(Debug, Clone, Args)]
pub struct HistoryListArgs {
    #[command(flatten)]
    pub filter: HistoryFilter,
    #[command(flatten)]
    pub page: PageArgs,
    /// nextCursor of a previous page; replaces --page.
    #[arg(long, conflicts_with = "follow")]
    pub cursor: Option<String>,
    /// After the page, keep printing new records as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn query(pairs: &[(&str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn path_segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn read_json_file(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))? {
        Value::Object(fields) => Ok(fields),
        _ => bail!("{} must hold a JSON object", path.display()),
    }
}

/// Prints the `content` of an envelope.
fn print_content(format: Format, answer: &Value) -> anyhow::Result<()> {
    print_object(format, &answer["content"])
}

fn rows(answer: &Value) -> &[Value] {
    answer["content"].as_array().map_or(&[], Vec::as_slice)
}

/// Runs `multidrm sites ...`.
pub async fn sites(client: &Client, command: &SitesCommand) -> anyhow::Result<()> {
    let (method, path, body, output) = match command {
        SitesCommand::List { page, output } => {
            let path = format!(
                "/api/v1/sites?pageNo={}&pageSize={}",
                page.page, page.page_size
            );
            let answer: Value = client.get(&path).await?;
            print_rows(output.format(), SITE_COLUMNS, rows(&answer))?;
            return Ok(());
        }
        SitesCommand::Show { site, output } => (Method::GET, site_path(site, ""), None, output),
        SitesCommand::Create { body, output } => (
            Method::POST,
            "/api/v1/sites".to_owned(),
            Some(Value::Object(site_body(body)?)),
            output,
        ),
        SitesCommand::Update { site, body, output } => {
            let mut fields = site_body(body)?;
            if !fields.contains_key("siteName") {
                // The API takes the whole site; an unnamed change keeps the name.
                let current: Value = client.get(&site_path(site, "")).await?;
                fields.insert(
                    "siteName".to_owned(),
                    current["content"]["siteName"].clone(),
                );
            }
            (
                Method::PUT,
                site_path(site, ""),
                Some(Value::Object(fields)),
                output,
            )
        }
        SitesCommand::On { site, output } => (Method::PUT, site_path(site, "/on"), None, output),
        SitesCommand::Off { site, output } => (Method::PUT, site_path(site, "/off"), None, output),
        SitesCommand::Delete { site, output } => {
            (Method::DELETE, site_path(site, ""), None, output)
        }
    };
    let answer: Value = client.json(method, &path, body.as_ref()).await?;
    print_content(output.format(), &answer)
}

fn site_path(site: &str, suffix: &str) -> String {
    format!("/api/v1/sites/{}{suffix}", path_segment(site))
}

fn site_body(body: &SiteBody) -> anyhow::Result<Map<String, Value>> {
    let mut fields = match &body.file {
        Some(path) => read_json_file(path)?,
        None => Map::new(),
    };
    if let Some(name) = &body.name {
        fields.insert("siteName".to_owned(), json!(name));
    }
    if let Some(policy) = body.policy {
        fields.insert("policyId".to_owned(), json!(policy));
    }
    Ok(fields)
}

/// Runs `multidrm policies ...`.
pub async fn policies(client: &Client, command: &PoliciesCommand) -> anyhow::Result<()> {
    let (method, path, body, output) = match command {
        PoliciesCommand::List { page, output } => {
            let path = format!(
                "/api/v1/policy?pageNo={}&pageSize={}",
                page.page, page.page_size
            );
            let answer: Value = client.get(&path).await?;
            print_rows(output.format(), POLICY_COLUMNS, rows(&answer))?;
            return Ok(());
        }
        PoliciesCommand::Show { policy, output } => (
            Method::GET,
            format!("/api/v1/policy/{policy}"),
            None,
            output,
        ),
        PoliciesCommand::Create { body, output } => (
            Method::POST,
            "/api/v1/policy".to_owned(),
            Some(policy_body(body)?),
            output,
        ),
        PoliciesCommand::Update {
            policy,
            body,
            output,
        } => (
            Method::PUT,
            format!("/api/v1/policy/{policy}"),
            Some(policy_body(body)?),
            output,
        ),
        PoliciesCommand::Delete { policy, output } => (
            Method::DELETE,
            format!("/api/v1/policy/{policy}"),
            None,
            output,
        ),
        PoliciesCommand::Copy { policy, output } => (
            Method::POST,
            format!("/api/v1/policy/{policy}/copy"),
            None,
            output,
        ),
    };
    let answer: Value = client.json(method, &path, body.as_ref()).await?;
    print_content(output.format(), &answer)
}

fn policy_body(body: &PolicyBody) -> anyhow::Result<Value> {
    let mut fields = match &body.file {
        Some(path) => read_json_file(path)?,
        None => Map::new(),
    };
    if let Some(name) = &body.name {
        fields.insert("policyName".to_owned(), json!(name));
    }
    Ok(Value::Object(fields))
}

fn keys_path(content: &ContentArgs) -> String {
    format!(
        "/api/v1/sites/{}/contents/{}/keys",
        path_segment(&content.site),
        path_segment(&content.content)
    )
}

/// Runs `multidrm content-keys ...`.
pub async fn content_keys(client: &Client, command: &ContentKeysCommand) -> anyhow::Result<()> {
    match command {
        ContentKeysCommand::List { content, output } => {
            let answer: Value = client.get(&keys_path(content)).await?;
            print_rows(output.format(), KEY_COLUMNS, rows(&answer))
        }
        ContentKeysCommand::Add {
            content,
            kid,
            key,
            output,
        } => {
            let body = match (kid, key) {
                (Some(kid), Some(key)) => Some(json!({ "kid": kid, "key": key })),
                _ => None,
            };
            let answer: Value = client
                .json(Method::POST, &keys_path(content), body.as_ref())
                .await?;
            print_content(output.format(), &answer)
        }
    }
}

/// Runs `multidrm license clearkey`.
pub async fn license(client: &Client, command: &LicenseCommand) -> anyhow::Result<()> {
    let LicenseCommand::Clearkey {
        content,
        user,
        kid,
        output,
    } = command;
    let kids = if kid.is_empty() {
        let answer: Value = client.get(&keys_path(content)).await?;
        rows(&answer)
            .iter()
            .filter_map(|key| key["kid"].as_str().map(str::to_owned))
            .collect()
    } else {
        kid.clone()
    };
    if kids.is_empty() {
        bail!(
            "content {} of site {} has no content keys; add one with `multidrm content-keys add`",
            content.content,
            content.site
        );
    }
    let encoded = kids
        .iter()
        .map(|kid| {
            Kid::from_hex(kid)
                .map(|kid| URL_SAFE_NO_PAD.encode(kid.0))
                .with_context(|| format!("kid {kid:?} is not 32 hex digits"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = json!({
        "siteId": content.site,
        "contentId": content.content,
        "drmType": "CLEARKEY",
        "responseFormat": "ORIGINAL",
        "userId": user,
    });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "x-drm-token",
        HeaderValue::from_str(&STANDARD.encode(token.to_string()))?,
    );
    let body = json!({ "kids": encoded, "type": "temporary" });
    let response = client
        .send(
            Method::POST,
            "/api/v1/license",
            headers,
            serde_json::to_vec(&body)?,
        )
        .await?;
    let answer: Value = serde_json::from_slice(&response.bytes().await?)
        .context("the license is not a JSON Web Key set")?;
    let keys = answer["keys"]
        .as_array()
        .context("the license has no keys")?
        .iter()
        .map(|jwk| -> anyhow::Result<Value> {
            let hex_of = |field: &str| -> anyhow::Result<String> {
                let text = jwk[field].as_str().unwrap_or_default();
                Ok(hex::encode(URL_SAFE_NO_PAD.decode(text).with_context(
                    || format!("the license's {field} is not base64url"),
                )?))
            };
            Ok(json!({ "kid": hex_of("kid")?, "key": hex_of("k")? }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_rows(output.format(), &["kid", "key"], &keys)
}

/// Runs `multidrm history summary`: one object, its lists as JSON cells in
/// the table form.
pub async fn history_summary(
    client: &Client,
    filter: &HistoryFilter,
    interval: Option<&str>,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let mut pairs = filter.pairs();
    if let Some(interval) = interval {
        pairs.push(("interval", interval.to_owned()));
    }
    let answer: Value = client
        .get(&format!(
            "/api/v1/license/statistics/summary?{}",
            query(&pairs)
        ))
        .await?;
    print_object(output.format(), &answer["content"])
}

/// Runs `multidrm history list`.
pub async fn history_list(client: &Client, args: &HistoryListArgs) -> anyhow::Result<()> {
    let format = args.output.format();
    let mut pairs = args.filter.pairs();
    pairs.push(("pageSize", args.page.page_size.to_string()));
    match &args.cursor {
        Some(cursor) => pairs.push(("cursor", cursor.clone())),
        None => pairs.push(("pageNo", args.page.page.to_string())),
    }
    let answer: Value = client
        .get(&format!("/api/v1/license/statistics?{}", query(&pairs)))
        .await?;
    let records = rows(&answer);
    if !args.follow {
        print_rows(format, HISTORY_COLUMNS, records)?;
        if let Some(next) = answer["nextCursor"].as_str() {
            eprintln!("more records: --cursor {next}");
        }
        return Ok(());
    }
    let mut oldest_first: Vec<Value> = records.iter().rev().cloned().collect();
    print_stream(format, HISTORY_COLUMNS, &oldest_first, true)?;
    let mut seen = Seen::default();
    seen.note(&oldest_first);
    loop {
        tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
        oldest_first = newer_records(client, &args.filter, &mut seen).await?;
        if !oldest_first.is_empty() {
            print_stream(format, HISTORY_COLUMNS, &oldest_first, false)?;
        }
    }
}

/// What `--follow` has printed: the newest time, and the records at that
/// time (several can share a millisecond, and records carry no id).
#[derive(Debug, Default)]
struct Seen {
    newest: Option<i64>,
    at_newest: Vec<Value>,
}

impl Seen {
    fn note(&mut self, oldest_first: &[Value]) {
        for record in oldest_first {
            let at = record["licenseCreatedAt"].as_i64().unwrap_or_default();
            if self.newest != Some(at) {
                self.newest = Some(at);
                self.at_newest.clear();
            }
            self.at_newest.push(record.clone());
        }
    }

    fn printed(&self, record: &Value) -> bool {
        let at = record["licenseCreatedAt"].as_i64();
        at < self.newest || (at == self.newest && self.at_newest.contains(record))
    }
}

/// Every record since the newest printed, oldest first, following cursors.
async fn newer_records(
    client: &Client,
    filter: &HistoryFilter,
    seen: &mut Seen,
) -> anyhow::Result<Vec<Value>> {
    let mut pairs = filter.pairs();
    if let Some(newest) = seen.newest {
        pairs.retain(|(name, _)| *name != "startTime");
        pairs.push(("startTime", newest.to_string()));
    }
    pairs.push(("pageSize", "100".to_owned()));
    let mut fresh = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_pairs = pairs.clone();
        if let Some(cursor) = &cursor {
            page_pairs.push(("cursor", cursor.clone()));
        }
        let answer: Value = client
            .get(&format!(
                "/api/v1/license/statistics?{}",
                query(&page_pairs)
            ))
            .await?;
        fresh.extend(
            rows(&answer)
                .iter()
                .filter(|record| !seen.printed(record))
                .cloned(),
        );
        match answer["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    fresh.reverse();
    seen.note(&fresh);
    Ok(fresh)
}

/// Downloads a remote site's filtered history with a progress bar.
pub async fn history_export(
    client: &Client,
    filter: &HistoryFilter,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<u64> {
    let mut pairs = filter.pairs();
    let mut count_pairs = pairs.clone();
    count_pairs.push(("pageSize", "1".to_owned()));
    let counted: Value = client
        .get(&format!(
            "/api/v1/license/statistics?{}",
            query(&count_pairs)
        ))
        .await?;
    let total = counted["total"].as_u64().unwrap_or_default();

    pairs.push(("format", format.extension().to_owned()));
    let mut response = client
        .send(
            Method::GET,
            &format!("/api/v1/license/statistics/export?{}", query(&pairs)),
            HeaderMap::new(),
            Vec::new(),
        )
        .await?;
    let progress = export_progress(format, total);
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin> = match output {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    // CSV's header line is no record.
    let mut header_lines = u64::from(format == ExportFormat::Csv);
    while let Some(chunk) = response.chunk().await.context("reading the export")? {
        sink.write_all(&chunk).await?;
        if format == ExportFormat::Xlsx {
            progress.inc(chunk.len() as u64);
            continue;
        }
        let lines = chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
        let header = lines.min(header_lines);
        header_lines -= header;
        progress.inc(lines - header);
    }
    sink.flush().await?;
    progress.finish_and_clear();
    Ok(total)
}

/// A bar of records for CSV and NDJSON, a byte counter for XLSX.
fn export_progress(format: ExportFormat, total: u64) -> ProgressBar {
    match format {
        ExportFormat::Xlsx => ProgressBar::no_length().with_style(
            ProgressStyle::with_template("{spinner} {bytes} written ({bytes_per_sec})")
                .expect("the template is valid"),
        ),
        ExportFormat::Csv | ExportFormat::Ndjson => {
            ProgressBar::new(total).with_style(records_style())
        }
    }
}

fn records_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:40} {pos}/{len} records ({per_sec}, {eta} left)")
        .expect("the template is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: i64, user: &str) -> Value {
        json!({ "licenseCreatedAt": at, "userId": user })
    }

    #[test]
    fn follow_skips_what_it_printed_even_within_the_same_millisecond() {
        let mut seen = Seen::default();
        seen.note(&[record(1, "a"), record(2, "b")]);

        let printed: Vec<bool> = [
            record(1, "z"),
            record(2, "b"),
            record(2, "c"),
            record(3, "d"),
        ]
        .iter()
        .map(|record| seen.printed(record))
        .collect();

        assert_eq!(printed, [true, true, false, false]);
    }

    #[test]
    fn history_filters_become_the_api_parameters_in_order() {
        let filter = HistoryFilter {
            site: "drm-1".to_owned(),
            status: Some("fail".to_owned()),
            start_time: None,
            end_time: Some("5".to_owned()),
            search_condition: Some("userId".to_owned()),
            search_keyword: Some("a b&c".to_owned()),
            drm_type: None,
            platform: Some("PLATFORM_TV".to_owned()),
        };

        assert_eq!(
            query(&filter.pairs()),
            "siteId=drm-1&status=fail&endTime=5&searchCondition=userId&searchKeyword=a+b%26c&platform=PLATFORM_TV"
        );
    }
}

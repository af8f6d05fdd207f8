//! `multidrm history export` and `multidrm history import`: moving license
//! records between a local database and CSV or NDJSON files, with a
//! progress bar when standard error is a terminal.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::{Clock, SystemClock};
use crate::domain::history::{HistoryQuery, HistoryWindow, NewLicenseRecord, RecordKey};
use crate::domain::ids::{generate_kms_token, SiteId};
use crate::domain::params::QueryParams;
use crate::domain::policy::BASIC_POLICY_ID;
use crate::history_file::{ExportFormat, FileRecord, XlsxExport};
use crate::secrets::MasterKey;
use crate::store::{HistoryWalk, NewSite, SharedStore};

/// Records committed per transaction by an import.
const IMPORT_BATCH: usize = 5000;

fn progress(length: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)");
    let bar = ProgressBar::new(length);
    bar.set_style(ProgressStyle::with_template(&template).expect("the progress template is valid"));
    bar
}

/// Writes one site's history, filtered by `query` (history API parameters),
/// newest first, to `output` or standard output.
pub async fn export(
    store: &SharedStore,
    zone: Tz,
    query: Vec<(String, String)>,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<u64> {
    let query = HistoryQuery::from_params(&QueryParams::from_pairs(query))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let Some(site) = store.find_site_of_any_account(&query.site_id).await? else {
        bail!("no site {}", query.site_id)
    };
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let (_, total) = store
        .search_history(
            &site,
            &query.filter,
            HistoryWindow {
                after: None,
                offset: 0,
                limit: 0,
            },
        )
        .await?;
    let bar = progress(total as u64, "records");

    let mut walk = HistoryWalk::new(store.clone(), site, query.filter);
    let mut written = 0;
    if format == ExportFormat::Xlsx {
        let mut workbook = XlsxExport::new(zone);
        while let Some(page) = walk.next_page().await? {
            written += page.len() as u64;
            bar.inc(page.len() as u64);
            workbook.push(page)?;
        }
        std::io::copy(&mut workbook.finish()?, &mut out)?;
    } else {
        out.write_all(format.header())?;
        while let Some(page) = walk.next_page().await? {
            written += page.len() as u64;
            bar.inc(page.len() as u64);
            out.write_all(&format.write(page, zone)?)?;
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(written)
}

/// Reads records from `path` (CSV when it ends in `.csv`, NDJSON otherwise)
/// into the database. A site the database lacks is created, turned off,
/// under `account`. Answers how many records were stored.
pub async fn import(
    store: &SharedStore,
    master_key: &MasterKey,
    path: &Path,
    account: &str,
) -> anyhow::Result<u64> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bar = progress(file.metadata()?.len(), "bytes");
    let reader = BufReader::new(bar.wrap_read(file));
    let records: Box<dyn Iterator<Item = anyhow::Result<FileRecord>>> =
        match ExportFormat::of_file(&path.to_string_lossy()) {
            ExportFormat::Csv => Box::new(
                csv::Reader::from_reader(reader)
                    .into_deserialize()
                    .map(|row| row.map_err(anyhow::Error::from)),
            ),
            ExportFormat::Ndjson => Box::new(ndjson_records(reader)),
            ExportFormat::Xlsx => bail!("import reads CSV or NDJSON, not XLSX"),
        };

    let mut importer = Importer {
        store,
        master_key,
        account,
        sites: HashMap::new(),
        run: Vec::new(),
        batch: Vec::new(),
        stored: 0,
    };
    for (index, record) in records.enumerate() {
        let record =
            record.with_context(|| format!("record {} of {}", index + 1, path.display()))?;
        importer
            .add(record)
            .await
            .with_context(|| format!("record {} of {}", index + 1, path.display()))?;
    }
    importer.finish().await?;
    bar.finish_and_clear();
    Ok(importer.stored)
}

fn ndjson_records(reader: impl BufRead) -> impl Iterator<Item = anyhow::Result<FileRecord>> {
    reader
        .lines()
        .filter(|line| !matches!(line, Ok(text) if text.trim().is_empty()))
        .map(|line| Ok(serde_json::from_str(&line?)?))
}

struct Importer<'a> {
    store: &'a SharedStore,
    master_key: &'a MasterKey,
    account: &'a str,
    sites: HashMap<String, i64>,
    /// Records of one millisecond, kept back until the next one starts.
    run: Vec<NewLicenseRecord>,
    batch: Vec<NewLicenseRecord>,
    stored: u64,
}

impl Importer<'_> {
    async fn add(&mut self, record: FileRecord) -> anyhow::Result<()> {
        let checked = record.check().map_err(anyhow::Error::msg)?;
        let site_pk = self.site_pk(&record.site_id).await?;
        let new = NewLicenseRecord {
            key: RecordKey::generate(),
            site_pk,
            content_id: record.content_id,
            drm_type: checked.drm_type,
            user_id: record.user_id,
            device_id: record.device_id,
            device_model: record.device_model,
            platform: checked.platform,
            created_at: record.license_created_at,
            failure: checked.failure,
        };
        if self
            .run
            .first()
            .is_some_and(|first| first.created_at != new.created_at)
        {
            self.end_run().await?;
        }
        self.run.push(new);
        Ok(())
    }

    /// Exports list records of one millisecond newest first, that is by
    /// falling id; storing them in reverse keeps that order on re-export.
    async fn end_run(&mut self) -> anyhow::Result<()> {
        self.batch.extend(self.run.drain(..).rev());
        if self.batch.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.stored += self.store.insert_license_records(&self.batch).await?;
        self.batch.clear();
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        self.end_run().await?;
        self.flush().await
    }

    async fn site_pk(&mut self, site_id: &str) -> anyhow::Result<i64> {
        if let Some(pk) = self.sites.get(site_id) {
            return Ok(*pk);
        }
        let pk = match self.store.find_site_of_any_account(site_id).await? {
            Some(site) => site.pk,
            None => self.create_site(site_id).await?,
        };
        self.sites.insert(site_id.to_owned(), pk);
        Ok(pk)
    }

    async fn create_site(&self, site_id: &str) -> anyhow::Result<i64> {
        if SiteId::parse(site_id).is_none() {
            bail!("siteId {site_id:?} is not a site id (drm-, 14 digits of UTC time, -, 5 letters or digits)");
        }
        let now = SystemClock.now_ms();
        let account_id = self.store.ensure_account(self.account, now).await?;
        let site = NewSite {
            site_id: site_id.to_owned(),
            account_id,
            name: "imported".to_owned(),
            policy_id: BASIC_POLICY_ID,
            kms_token_sealed: self.master_key.seal(generate_kms_token().as_bytes()),
            fairplay_sealed: None,
            created_at: now,
        };
        Ok(self
            .store
            .insert_site(&site, "site created by history import")
            .await?
            .pk)
    }
}

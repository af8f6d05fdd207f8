//! `multidrm history export` and `multidrm history import`: moving license
//! records between a local database and CSV or NDJSON files, with a
//! progress bar when standard error is a terminal.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::domain::history::{HistoryQuery, HistoryWindow, NewLicenseRecord};
use crate::domain::ids::{generate_kms_token, SiteId};
use crate::domain::params::QueryParams;
use crate::domain::policy::BASIC_POLICY_ID;
use crate::history_file::{CheckedRecord, ExportFormat, FileRecord, XlsxExport};
use crate::secrets::MasterKey;
use crate::store::{HistoryImport, HistoryWalk, NewSite, SharedStore};

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

/// Records the reading thread parses before handing them over.
const PARSE_BATCH: usize = 10_000;

/// Reads records from `path` (CSV when it ends in `.csv`, NDJSON otherwise)
/// into the database. A site the database lacks is created, turned off,
/// under `account`. Answers how many records were stored. One thread
/// parses while this task stores, so the two overlap on separate cores.
pub async fn import(
    store: &SharedStore,
    master_key: &MasterKey,
    path: &Path,
    account: &str,
) -> anyhow::Result<u64> {
    let format = match ExportFormat::of_file(&path.to_string_lossy()) {
        ExportFormat::Xlsx => bail!("import reads CSV or NDJSON, not XLSX"),
        format => format,
    };
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let length = file.metadata()?.len();
    let bar = progress(length, "bytes");
    let read = Arc::new(AtomicU64::new(0));
    let reader = BufReader::new(ByteCount {
        inner: bar.wrap_read(file),
        read: read.clone(),
    });
    let (batches, mut parsed) = mpsc::channel(4);
    let name = path.display().to_string();
    let reading =
        tokio::task::spawn_blocking(move || parse_records(reader, format, &name, batches));

    let account_id = store.ensure_account(account, SystemClock.now_ms()).await?;
    let mut importer = None;
    while let Some(batch) = parsed.recv().await {
        let batch = batch?;
        let importer = match &mut importer {
            Some(importer) => importer,
            None => {
                let so_far = read.load(Ordering::Relaxed).max(1);
                let expected = length.saturating_mul(batch.len() as u64) / so_far;
                importer.insert(Importer::begin(store, master_key, account_id, expected).await?)
            }
        };
        importer.add(batch).await?;
    }
    reading.await??;
    let stored = match importer {
        Some(importer) => importer.finish().await?,
        None => 0,
    };
    bar.finish_and_clear();
    Ok(stored)
}

/// A reader that tells how many bytes have gone through it.
struct ByteCount<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for ByteCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Parses and checks every record of `reader`, sending them on in batches;
/// the first fault is sent instead, naming the record, and ends the read.
fn parse_records(
    reader: impl BufRead,
    format: ExportFormat,
    name: &str,
    batches: mpsc::Sender<anyhow::Result<Vec<CheckedRecord>>>,
) -> anyhow::Result<()> {
    let records: Box<dyn Iterator<Item = anyhow::Result<FileRecord>>> = match format {
        ExportFormat::Csv => Box::new(
            csv::Reader::from_reader(reader)
                .into_deserialize()
                .map(|row| row.map_err(anyhow::Error::from)),
        ),
        _ => Box::new(ndjson_records(reader)),
    };
    let mut batch = Vec::with_capacity(PARSE_BATCH);
    for (index, record) in records.enumerate() {
        let checked = record.and_then(|record| record.check().map_err(anyhow::Error::msg));
        match checked {
            Ok(checked) => batch.push(checked),
            Err(error) => {
                let error = error.context(format!("record {} of {name}", index + 1));
                // The importer may already have stopped; it then has its own error.
                let _ = batches.blocking_send(Err(error));
                return Ok(());
            }
        }
        if batch.len() == PARSE_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(PARSE_BATCH));
            if batches.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
    Ok(())
}

fn ndjson_records(reader: impl BufRead) -> impl Iterator<Item = anyhow::Result<FileRecord>> {
    reader
        .lines()
        .filter(|line| !matches!(line, Ok(text) if text.trim().is_empty()))
        .map(|line| Ok(serde_json::from_str(&line?)?))
}

struct Importer<'a> {
    import: Box<dyn HistoryImport + 'a>,
    master_key: &'a MasterKey,
    account_id: i64,
    sites: HashMap<String, i64>,
    /// Records of one millisecond, kept back until the next one starts.
    run: Vec<NewLicenseRecord>,
}

impl<'a> Importer<'a> {
    async fn begin(
        store: &'a SharedStore,
        master_key: &'a MasterKey,
        account_id: i64,
        expected: u64,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            import: store.begin_import(expected).await?,
            master_key,
            account_id,
            sites: HashMap::new(),
            run: Vec::new(),
        })
    }

    /// Stores a batch of records, but for the last millisecond's, which
    /// wait for the next batch.
    async fn add(&mut self, records: Vec<CheckedRecord>) -> anyhow::Result<()> {
        let mut ready = Vec::with_capacity(records.len());
        for record in records {
            let site_pk = self.site_pk(&record.site_id).await?;
            let record = record.stored_as(site_pk);
            if self
                .run
                .first()
                .is_some_and(|first| first.created_at != record.created_at)
            {
                self.end_run(&mut ready);
            }
            self.run.push(record);
        }
        Ok(self.import.add(ready).await?)
    }

    /// Exports list records of one millisecond newest first, that is by
    /// falling id; storing them in reverse keeps that order on re-export.
    fn end_run(&mut self, ready: &mut Vec<NewLicenseRecord>) {
        ready.extend(self.run.drain(..).rev());
    }

    async fn finish(mut self) -> anyhow::Result<u64> {
        let mut ready = Vec::new();
        self.end_run(&mut ready);
        self.import.add(ready).await?;
        Ok(self.import.commit().await?)
    }

    async fn site_pk(&mut self, site_id: &str) -> anyhow::Result<i64> {
        if let Some(pk) = self.sites.get(site_id) {
            return Ok(*pk);
        }
        let pk = match self.import.find_site(site_id).await? {
            Some(site) => site.pk,
            None => self.create_site(site_id).await?,
        };
        self.sites.insert(site_id.to_owned(), pk);
        Ok(pk)
    }

    async fn create_site(&mut self, site_id: &str) -> anyhow::Result<i64> {
        if SiteId::parse(site_id).is_none() {
            bail!("siteId {site_id:?} is not a site id (drm-, 14 digits of UTC time, -, 5 letters or digits)");
        }
        let site = NewSite {
            site_id: site_id.to_owned(),
            account_id: self.account_id,
            name: "imported".to_owned(),
            policy_id: BASIC_POLICY_ID,
            kms_token_sealed: self.master_key.seal(generate_kms_token().as_bytes()),
            fairplay_sealed: None,
            created_at: SystemClock.now_ms(),
        };
        Ok(self
            .import
            .insert_site(&site, "site created by history import")
            .await?
            .pk)
    }
}

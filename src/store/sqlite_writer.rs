//! SQLite's history commits, on a thread and connection of their own.
//!
//! Through the async driver a batch took four hand-offs between the
//! history writer task and the driver's connection thread (begin, insert,
//! counters, commit), and each hand-off waited for a core while the
//! service was busy answering requests: the writer spent about half of
//! every commit waiting to be scheduled. Here the whole batch is one
//! hand-off: the thread runs the transaction with cached prepared
//! statements and answers when it is committed.
//!
//! A second thread moves committed pages from the WAL into the database
//! file, which SQLite would otherwise do inside every thousandth-page
//! commit, holding up the licenses waiting for it.

use std::path::Path;
use std::sync::{mpsc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, DatabaseName, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::history_sql::{COUNTS_ADD_ON_CONFLICT, COUNTS_INSERT};
use super::outage::is_sqlite_outage_code;
use super::sqlite::RECORDS_INSERT;
use super::tally::{self, Counted};
use super::{StoreError, StoreResult};
use crate::domain::drm::DrmType;
use crate::domain::history::NewLicenseRecord;

type Job = (
    Vec<NewLicenseRecord>,
    oneshot::Sender<Result<u64, rusqlite::Error>>,
);

/// Handle to the commit thread; the thread ends when the last handle is
/// dropped.
#[derive(Debug, Clone)]
pub(super) struct RecordWriter {
    jobs: mpsc::Sender<Job>,
}

impl RecordWriter {
    /// Opens the database file at `path` (already created and migrated)
    /// with the store's settings and starts the thread. The file must
    /// exist and be writable: an in-memory database cannot be reached from
    /// a second connection. A path starting with `file:` is read as a URI,
    /// as the pool reads it.
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Self> {
        let mut connection = connect(path, busy_timeout)?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = spawn_checkpointer(connect(path, CHECKPOINT_WAIT)?)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("history-commit".to_owned())
            .spawn(move || {
                for (records, done) in queue {
                    let committed = commit(&mut connection, &records);
                    // A failed commit (a full disk, say) adds nothing to copy.
                    let nudge = committed.is_ok();
                    // A waiter that went away needs no answer.
                    let _ = done.send(committed);
                    if nudge {
                        let _ = checkpoints.try_send(());
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Commits `records` in one transaction: each new record once, with
    /// its counters; records already stored (a replayed batch) are skipped
    /// and not counted again. Answers how many were new.
    pub(super) async fn insert(&self, records: Vec<NewLicenseRecord>) -> StoreResult<u64> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send((records, done))
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("the commit thread stopped")))?;
        let committed = committed
            .await
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("the commit thread stopped")))?;
        committed.map_err(translate)
    }
}

/// A connection to the file at `path` with the store's settings.
fn connect(path: &Path, busy_timeout: Duration) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {} (it must be a database file)", path.display()))?;
    // SQLite opens a file it may not write read-only instead of failing.
    if connection.is_readonly(DatabaseName::Main)? {
        anyhow::bail!(
            "{} is read-only: the service must be able to write its database file",
            path.display()
        );
    }
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "full")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    Ok(connection)
}

/// Pause after each checkpoint, so that they do not follow every commit.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(20);

/// WAL pages past which a checkpoint also makes the WAL start over.
const RESTART_PAGES: i64 = 16_384;
/// Longest wait of a restarting checkpoint for the commit in progress and
/// for readers of older pages (a long export, say); commits wait for it
/// meanwhile. Past it the checkpoint gives up and the next one tries again.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(5);

/// Copies committed pages from the WAL into the database file on a thread
/// and connection of their own, so that no commit waits for that work (a
/// passive checkpoint takes no lock a commit needs). While commits keep
/// coming, a passive checkpoint never catches up with the last one and the
/// WAL would only grow; past `RESTART_PAGES` a restarting checkpoint, with
/// little left to copy, holds commits back for that copy and lets the next
/// commit write the WAL from its start. Answers the sender the commit
/// thread nudges after each commit.
fn spawn_checkpointer(connection: Connection) -> anyhow::Result<mpsc::SyncSender<()>> {
    let (nudge, nudges) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("history-checkpoint".to_owned())
        .spawn(move || {
            for () in nudges {
                let done = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                });
                let done = done.and_then(|(log, copied)| {
                    tracing::trace!(log, copied, "history WAL checkpoint");
                    if log < RESTART_PAGES {
                        return Ok(());
                    }
                    connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                });
                if let Err(error) = done {
                    tracing::warn!(%error, "history WAL checkpoint failed");
                }
                std::thread::sleep(CHECKPOINT_PAUSE);
            }
        })?;
    Ok(nudge)
}

/// One record, skipped when its key is stored already.
static INSERT_RECORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{RECORDS_INSERT} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING"
    )
});

/// One counter change, added to the counter when it exists.
static ADD_COUNT: LazyLock<String> = LazyLock::new(|| {
    format!("{COUNTS_INSERT} VALUES (?1, ?2, ?3, ?4, ?5, ?6) {COUNTS_ADD_ON_CONFLICT}")
});

fn commit(connection: &mut Connection, records: &[NewLicenseRecord]) -> rusqlite::Result<u64> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut new = Vec::with_capacity(records.len());
    {
        let mut insert = transaction.prepare_cached(&INSERT_RECORD)?;
        for record in records {
            let failure = record.failure.as_ref();
            let inserted = insert.execute(params![
                record.key.as_bytes().as_slice(),
                record.site_pk,
                record.created_at,
                i64::from(failure.is_some()),
                record.drm_type.map(DrmType::code),
                record.content_id,
                record.user_id,
                record.device_id,
                record.device_model,
                record.platform.name(),
                failure.map(|failure| failure.code.as_str()),
                failure.map(|failure| failure.name.as_str()),
            ])?;
            if inserted == 1 {
                new.push(record);
            }
        }
        let mut count = transaction.prepare_cached(&ADD_COUNT)?;
        for (key, n) in tally::changes(new.iter().map(|record| Counted::from(*record)), 1) {
            count.execute(params![
                key.site_pk,
                key.facet,
                key.span,
                key.bucket,
                key.status,
                n
            ])?;
        }
    }
    transaction.commit()?;
    Ok(new.len() as u64)
}

/// A failed commit as the store reports it: busy, locked, I/O errors, a
/// full disk or a file that cannot be opened are an outage.
fn translate(error: rusqlite::Error) -> StoreError {
    let outage = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => is_sqlite_outage_code(failure.extended_code),
        _ => false,
    };
    if outage {
        StoreError::Unavailable(error.into())
    } else {
        StoreError::Unexpected(error.into())
    }
}

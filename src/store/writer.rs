//! The history writer: license handlers hand it records and wait; it
//! commits whatever has queued up in one transaction (group commit) and
//! answers each waiter only after that commit, so a response is never sent
//! for a record that is not durable.
//!
//! When the database is unavailable, a batch goes to the spool instead
//! (`history_on_outage = "spool"`, the default), flushed to disk before its
//! waiters are answered, and later batches follow it there until a replay
//! reaches the database again; or it is refused (`"refuse"`), and the
//! license requests fail with a 503. A replayer task moves spooled records
//! into the database in file order, at startup (a spool left by a crash)
//! and whenever the spool holds some; records carry keys the database
//! deduplicates, so a replay interrupted by a crash is simply replayed again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::spool::{Spool, SpoolError};
use super::{SharedStore, StoreError};
use crate::domain::history::NewLicenseRecord;
use crate::monitoring;

/// Records waiting for the writer, at most.
const QUEUE_DEPTH: usize = 8192;
/// Pause between replay attempts while the spool holds records.
const REPLAY_EVERY: Duration = Duration::from_millis(500);
/// Spooled records committed per replay transaction, in batches.
const REPLAY_BATCHES: usize = 8;

/// A record could not be committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The commit failed; the record is not stored.
    #[error("the history record could not be committed")]
    CommitFailed,
    /// The database is unavailable and the settings refuse issuance then.
    #[error("the database is unavailable and history_on_outage is refuse")]
    Unavailable,
    /// The writer has stopped (the service is shutting down).
    #[error("the history writer has stopped")]
    Stopped,
    /// The queue is full: the database is not keeping up, so the record is
    /// refused at once rather than waiting without bound.
    #[error("the history writer's queue is full")]
    QueueFull,
}

/// What happens to license requests while the database is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOutage {
    /// Records go to the spool in the data directory; playback goes on.
    Spool,
    /// License requests fail with a 503 until the database is back.
    Refuse,
}

/// How the writer works.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most records committed in one transaction.
    pub batch_size: usize,
    /// What to do while the database is unavailable.
    pub on_outage: OnOutage,
    /// Folder of the spool file.
    pub spool_dir: PathBuf,
}

type Job = (NewLicenseRecord, oneshot::Sender<Result<(), WriteError>>);

/// Handle for submitting records to the writer task.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    queue: mpsc::Sender<Job>,
}

/// What the writer and the replayer share.
struct Shared {
    store: SharedStore,
    spool: Mutex<Spool>,
    /// Set while the database is known to be unavailable: batches then go
    /// straight to the spool instead of waiting for the database to fail.
    outage: AtomicBool,
}

impl HistoryWriter {
    /// Opens the spool and starts the writer task. It ends, after
    /// committing what was queued and trying once more to replay the
    /// spool, once every handle has been dropped.
    pub fn start(
        store: SharedStore,
        options: WriterOptions,
    ) -> Result<(Self, JoinHandle<()>), SpoolError> {
        let spool = Spool::open(&options.spool_dir)?;
        monitoring::history_spool_bytes(spool.len());
        if !spool.is_empty() {
            tracing::warn!(path = %spool.path().display(), bytes = spool.len(), "replaying history records spooled before the last stop");
        }
        let shared = Arc::new(Shared {
            store,
            spool: Mutex::new(spool),
            outage: AtomicBool::new(false),
        });
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let (stop, stopped) = watch::channel(false);
        let replayer = tokio::spawn(replay(shared.clone(), stopped, options.batch_size));
        let task = tokio::spawn(async move {
            run(&shared, jobs, &options).await;
            let _ = stop.send(true);
            if let Err(error) = replayer.await {
                tracing::error!(error = %error, "history spool replayer stopped abnormally");
            }
        });
        Ok((Self { queue }, task))
    }

    /// Queues a record and waits until it is committed (or spooled);
    /// refuses at once when the queue is full.
    pub async fn record(&self, record: NewLicenseRecord) -> Result<(), WriteError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .try_send((record, done))
            .map_err(|error| match error {
                TrySendError::Full(_) => WriteError::QueueFull,
                TrySendError::Closed(_) => WriteError::Stopped,
            })?;
        committed.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run(shared: &Arc<Shared>, mut jobs: mpsc::Receiver<Job>, options: &WriterOptions) {
    let mut batch = Vec::with_capacity(options.batch_size);
    while jobs.recv_many(&mut batch, options.batch_size).await > 0 {
        monitoring::history_queue_depth(batch.len() + jobs.len());
        let (records, waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let outcome = write(shared, records, options.on_outage).await;
        for waiter in waiters {
            // A waiter that gave up (client went away) needs no answer.
            let _ = waiter.send(outcome.clone());
        }
    }
}

/// Commits a batch, or spools it while the database is unavailable.
async fn write(
    shared: &Arc<Shared>,
    records: Vec<NewLicenseRecord>,
    on_outage: OnOutage,
) -> Result<(), WriteError> {
    let spooling = on_outage == OnOutage::Spool;
    if spooling && shared.outage.load(Ordering::Acquire) {
        return append(shared, records).await;
    }
    let begun = std::time::Instant::now();
    let committed = shared.store.insert_license_records(&records).await;
    monitoring::history_commit(begun.elapsed(), committed.is_ok());
    match committed {
        Ok(_) => {
            tracing::debug!(
                records = records.len(),
                micros = begun.elapsed().as_micros() as u64,
                "history batch committed"
            );
            Ok(())
        }
        Err(StoreError::Unavailable(cause)) if spooling => {
            tracing::warn!(
                error = format!("{cause:#}"),
                "database unavailable; history records go to the spool until it is back"
            );
            shared.outage.store(true, Ordering::Release);
            append(shared, records).await
        }
        Err(StoreError::Unavailable(cause)) => {
            tracing::warn!(
                error = format!("{cause:#}"),
                records = records.len(),
                "database unavailable; license requests refused (history_on_outage = refuse)"
            );
            Err(WriteError::Unavailable)
        }
        Err(error) => {
            tracing::error!(error = ?error, records = records.len(), "history batch could not be committed");
            Err(WriteError::CommitFailed)
        }
    }
}

/// Appends a batch to the spool and flushes it to disk.
async fn append(shared: &Arc<Shared>, records: Vec<NewLicenseRecord>) -> Result<(), WriteError> {
    let shared = shared.clone();
    let appended = tokio::task::spawn_blocking(move || {
        let mut spool = shared.spool.lock().expect("no spool user panics");
        let appended = spool.append(&records).map(|()| records.len());
        monitoring::history_spool_bytes(spool.len());
        appended
    })
    .await
    .expect("spool appends do not panic");
    match appended {
        Ok(count) => {
            tracing::debug!(records = count, "history batch spooled");
            Ok(())
        }
        Err(error) => {
            tracing::error!(error = %error, "history batch could neither be committed nor spooled");
            Err(WriteError::CommitFailed)
        }
    }
}

/// Replays the spool whenever it holds records, until told to stop; then
/// tries once more, so that a clean shutdown leaves the spool empty when
/// the database is reachable.
async fn replay(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, batch_size: usize) {
    let chunk = batch_size.saturating_mul(REPLAY_BATCHES);
    let mut offset = 0;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(REPLAY_EVERY) => false,
            _ = stop.changed() => true,
        };
        offset = drain(&shared, offset, chunk).await;
        if stopping {
            return;
        }
    }
}

/// Commits spooled records from byte `offset` until the spool is empty or
/// the database fails; answers the offset to go on from.
async fn drain(shared: &Arc<Shared>, mut offset: u64, chunk: usize) -> u64 {
    loop {
        let (records, next) = match read(shared, offset, chunk).await {
            Ok(Some(read)) => read,
            Ok(None) => return 0,
            Err(error) => {
                tracing::error!(error = %error, "history spool could not be read");
                return offset;
            }
        };
        match shared.store.insert_license_records(&records).await {
            Ok(new) => {
                shared.outage.store(false, Ordering::Release);
                tracing::info!(
                    records = records.len(),
                    new,
                    "spooled history records committed"
                );
                offset = next;
            }
            Err(StoreError::Unavailable(_)) => {
                shared.outage.store(true, Ordering::Release);
                return offset;
            }
            Err(error) => {
                tracing::error!(error = ?error, "spooled history records were refused by the database");
                set_aside(shared).await;
                return 0;
            }
        }
    }
}

/// Spooled records from `offset` on; None, after emptying the spool, when
/// every record in it is committed.
async fn read(
    shared: &Arc<Shared>,
    offset: u64,
    chunk: usize,
) -> Result<Option<(Vec<NewLicenseRecord>, u64)>, SpoolError> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut spool = shared.spool.lock().expect("no spool user panics");
        if offset < spool.len() {
            return spool.read(offset, chunk).map(Some);
        }
        if !spool.is_empty() {
            spool.clear()?;
            monitoring::history_spool_bytes(0);
            tracing::info!("history spool replayed in full and emptied");
        }
        Ok(None)
    })
    .await
    .expect("spool reads do not panic")
}

/// Moves a spool the database refuses to a side file for an operator, so
/// that it does not block the records after it.
async fn set_aside(shared: &Arc<Shared>) {
    let shared = shared.clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let moved = tokio::task::spawn_blocking(move || {
        let mut spool = shared.spool.lock().expect("no spool user panics");
        let moved = spool.set_aside(now_ms);
        monitoring::history_spool_bytes(spool.len());
        moved
    })
    .await
    .expect("spool moves do not panic");
    match moved {
        Ok(path) => {
            tracing::error!(path = %path.display(), "history records the database refused were moved here; they are not in the history")
        }
        Err(error) => tracing::error!(error = %error, "history spool could not be set aside"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device::Platform;
    use crate::domain::history::RecordKey;

    fn record() -> NewLicenseRecord {
        NewLicenseRecord {
            site_pk: 1,
            content_id: "content-1".to_owned(),
            drm_type: None,
            user_id: String::new(),
            device_id: String::new(),
            device_model: String::new(),
            platform: Platform::Unknown,
            created_at: 0,
            failure: None,
            key: RecordKey::generate(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_a_record_at_once() {
        // A queue of one that nobody drains: the first record fills it.
        let (queue, _jobs) = mpsc::channel(1);
        let writer = HistoryWriter { queue };
        let waiting = tokio::spawn({
            let writer = writer.clone();
            async move { writer.record(record()).await }
        });
        while writer.queue.capacity() > 0 {
            tokio::task::yield_now().await;
        }

        let refused = writer.record(record()).await;

        assert!(matches!(refused, Err(WriteError::QueueFull)), "{refused:?}");
        waiting.abort();
    }
}

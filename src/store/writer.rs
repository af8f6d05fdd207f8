//! The history writer: license handlers hand it records and wait; it
//! commits whatever has queued up in one transaction (group commit) and
//! answers each waiter only after that commit, so a response is never sent
//! for a record that is not durable.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::SharedStore;
use crate::domain::history::NewLicenseRecord;

/// Records waiting for the writer, at most.
const QUEUE_DEPTH: usize = 8192;

/// A record could not be committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The commit failed; the record is not stored.
    #[error("the history record could not be committed")]
    CommitFailed,
    /// The writer has stopped (the service is shutting down).
    #[error("the history writer has stopped")]
    Stopped,
}

type Job = (NewLicenseRecord, oneshot::Sender<Result<(), WriteError>>);

/// Handle for submitting records to the writer task.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    queue: mpsc::Sender<Job>,
}

impl HistoryWriter {
    /// Starts the writer task. It ends, after committing what was queued,
    /// once every handle has been dropped.
    pub fn start(store: SharedStore, batch_size: usize) -> (Self, JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(store, jobs, batch_size));
        (Self { queue }, task)
    }

    /// Queues a record and waits until it is committed.
    pub async fn record(&self, record: NewLicenseRecord) -> Result<(), WriteError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send((record, done))
            .await
            .map_err(|_| WriteError::Stopped)?;
        committed.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run(store: SharedStore, mut jobs: mpsc::Receiver<Job>, batch_size: usize) {
    let mut batch = Vec::with_capacity(batch_size);
    while jobs.recv_many(&mut batch, batch_size).await > 0 {
        let (records, waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let begun = std::time::Instant::now();
        let outcome = store.insert_license_records(&records).await.map_err(|error| {
            tracing::error!(error = ?error, records = records.len(), "history batch could not be committed");
            WriteError::CommitFailed
        });
        tracing::debug!(
            records = records.len(),
            micros = begun.elapsed().as_micros() as u64,
            "history batch committed"
        );
        for waiter in waiters {
            // A waiter that gave up (client went away) needs no answer.
            let _ = waiter.send(outcome.clone());
        }
    }
}

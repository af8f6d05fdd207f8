//! History retention: with `history_retention_days` set, a background job
//! deletes records older than that: on PostgreSQL whole monthly partitions
//! first, then the rest site by site in bounded batches, so that license
//! writes never wait long behind it. Every deletion takes its records out
//! of the counters in the same transaction, so totals stay exact.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::store::{SharedStore, StoreResult};

/// Records deleted per statement at most.
const BATCH: i64 = 10_000;
/// How often the job runs.
const PERIOD: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 86_400_000;

/// Deletes every record older than `days` before now; answers how many.
pub async fn purge_once(store: &SharedStore, now_ms: i64, days: u32) -> StoreResult<u64> {
    let cutoff = now_ms - i64::from(days) * DAY_MS;
    let mut deleted = store.drop_history_before(cutoff).await?;
    for site_pk in store.list_site_pks().await? {
        loop {
            let removed = store
                .delete_license_records_before(site_pk, cutoff, BATCH)
                .await?;
            deleted += removed;
            if removed < BATCH as u64 {
                break;
            }
        }
    }
    Ok(deleted)
}

/// Starts the job when `days` is not 0: once now, then every hour.
pub fn spawn(store: SharedStore, clock: SharedClock, days: u32) -> Option<JoinHandle<()>> {
    if days == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PERIOD);
        loop {
            ticks.tick().await;
            match purge_once(&store, clock.now_ms(), days).await {
                Ok(deleted) => tracing::info!(
                    deleted,
                    retention_days = days,
                    "old license records removed"
                ),
                Err(error) => {
                    tracing::warn!(error = ?error, "removing old license records failed; retrying in an hour")
                }
            }
        }
    }))
}

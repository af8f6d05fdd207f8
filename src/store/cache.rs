//! A short-lived cache in front of the store for what every license request
//! reads: its access key, its site, the site's policy, its content keys and
//! the site's upstream license servers.
//! Without it each license costs up to four database reads before its
//! record is written.
//!
//! Only found entries are cached, never absences, so a key, site or content
//! key created on any node is usable at once. Changes made through this
//! node take effect at once; changes made by another node sharing the
//! database (a disabled key, a site turned off) take effect within the
//! configured lifetime (`lookup_cache_ms`, 0 turns the cache off) and the
//! time of one read: when an answer grows old, one lookup reads it again
//! while concurrent lookups of the same key keep the old answer, so a busy
//! node does not send every request in flight to the database at once.
//!
//! While the database is unavailable, a lookup answered before the outage
//! is answered again from the cache however old it is, so playback goes on
//! for every key, site, policy and content key used since the start (up to
//! the capacity); what was never looked up fails with a 503. After a read
//! finds the database unavailable, cached answers are served at once and
//! one lookup every few seconds tries the database again.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::sync::Cache;

use super::{
    AccessKeyRecord, AuditEntry, ConsoleSession, HistoryImport, NewSite, SharedStore, Store,
    StoreError, StoreResult, StoredContentKey,
};
use crate::domain::history::{HistoryFilter, HistoryWindow, LicenseRecord, NewLicenseRecord};
use crate::domain::ids::Kid;
use crate::domain::params::{Page, TimeRange};
use crate::domain::policy::{Policy, PolicyEvent, PolicySettings};
use crate::domain::site::{Site, SiteEvent, SiteStatistics, SiteStatus};
use crate::domain::summary::{HistorySummary, Interval};

/// Entries kept per kind at most.
const CAPACITY: u64 = 100_000;

/// After a read found the database unavailable, how long stale answers
/// are served without trying it again.
const OUTAGE_RETRY: Duration = Duration::from_secs(5);

/// Whether the database was found unavailable lately. While it was, one
/// lookup at a time tries it again and the others answer from the cache
/// at once instead of each waiting for the connection to time out.
#[derive(Default)]
struct Outage {
    retry_at: Mutex<Option<Instant>>,
}

impl Outage {
    /// Whether a lookup with a stale answer at hand should read the
    /// database; claims the retry when one is due.
    fn should_read(&self) -> bool {
        let mut retry_at = self.retry_at.lock().expect("no outage user panics");
        match *retry_at {
            None => true,
            Some(at) if Instant::now() < at => false,
            Some(_) => {
                *retry_at = Some(Instant::now() + OUTAGE_RETRY);
                true
            }
        }
    }

    fn update(&self, unavailable: bool) {
        let mut retry_at = self.retry_at.lock().expect("no outage user panics");
        *retry_at = unavailable.then(|| Instant::now() + OUTAGE_RETRY);
    }
}

/// Cached answers of one kind of lookup, each with the time it was read.
/// An answer older than the lifetime is read again, but kept: while the
/// database is unavailable the last answer read is served instead, so that
/// licenses keep being issued for keys and sites used before an outage.
struct Lookup<K, R> {
    answers: Cache<K, (Instant, R)>,
    lifetime: Duration,
    outage: Arc<Outage>,
    /// Counts invalidations: an answer read while one happened may predate
    /// the change and is not cached.
    generation: AtomicU64,
}

/// How long a lookup refreshing an old answer keeps the other lookups of
/// that key on the old answer; past it (a slow or abandoned read) another
/// lookup reads it again.
const REFRESH_GRACE: Duration = Duration::from_millis(100);

impl<K, R> Lookup<K, R>
where
    K: Clone + Hash + Eq + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    fn new(lifetime: Duration, outage: &Arc<Outage>) -> Self {
        Self {
            answers: Cache::builder().max_capacity(CAPACITY).build(),
            lifetime,
            outage: outage.clone(),
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets the answer for `key`, and keeps a read in flight from
    /// caching what it saw before the change.
    fn invalidate<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.answers.invalidate(key);
    }

    /// Forgets every answer, as [`Lookup::invalidate`] does one.
    fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.answers.invalidate_all();
    }

    /// The cached answer for `key` while it is fresh, else what `read`
    /// answers; kept when `keep` says so. The stale answer stands in for
    /// a database that is unavailable.
    async fn get(
        &self,
        key: K,
        keep: impl FnOnce(&R) -> bool,
        read: impl Future<Output = StoreResult<R>>,
    ) -> StoreResult<R> {
        let generation = self.generation.load(Ordering::Acquire);
        let cached = self.answers.get(&key);
        if let Some((read_at, answer)) = &cached {
            if read_at.elapsed() < self.lifetime || !self.outage.should_read() {
                return Ok(answer.clone());
            }
            // This lookup reads the answer again; for a short while the
            // concurrent lookups of the same key keep answering from the
            // cache instead of all reading the database at once.
            let fresh_until_grace = Instant::now()
                .checked_sub(self.lifetime.saturating_sub(REFRESH_GRACE))
                .unwrap_or_else(Instant::now);
            self.answers
                .insert(key.clone(), (fresh_until_grace, answer.clone()));
        }
        let outcome = read.await;
        self.outage
            .update(matches!(outcome, Err(StoreError::Unavailable(_))));
        let unchanged = self.generation.load(Ordering::Acquire) == generation;
        match outcome {
            Ok(answer) => {
                if keep(&answer) && unchanged {
                    self.answers.insert(key, (Instant::now(), answer.clone()));
                } else {
                    self.answers.invalidate(&key);
                }
                Ok(answer)
            }
            Err(StoreError::Unavailable(cause)) => match cached {
                Some((read_at, answer)) => {
                    tracing::debug!(
                        age_ms = read_at.elapsed().as_millis() as u64,
                        "database unavailable; answering a lookup from before the outage"
                    );
                    Ok(answer)
                }
                None => Err(StoreError::Unavailable(cause)),
            },
            Err(error) => {
                // The answer stays as stale as it was: the next lookup tries again.
                if let Some(stale) = cached.filter(|_| unchanged) {
                    self.answers.insert(key, stale);
                }
                Err(error)
            }
        }
    }
}

/// The store with cached license-path lookups.
pub struct CachedStore {
    inner: SharedStore,
    keys: Lookup<String, Option<AccessKeyRecord>>,
    sites: Lookup<(i64, String), Option<Site>>,
    policies: Lookup<(i64, i64), Option<Policy>>,
    content_keys: Lookup<(i64, String, Vec<Kid>), Vec<StoredContentKey>>,
    license_servers: Lookup<i64, Option<Vec<u8>>>,
}

impl CachedStore {
    /// Wraps `inner`; entries are fresh for `lifetime`.
    pub fn new(inner: SharedStore, lifetime: Duration) -> Self {
        let outage = Arc::default();
        Self {
            inner,
            keys: Lookup::new(lifetime, &outage),
            sites: Lookup::new(lifetime, &outage),
            policies: Lookup::new(lifetime, &outage),
            content_keys: Lookup::new(lifetime, &outage),
            license_servers: Lookup::new(lifetime, &outage),
        }
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn find_access_key(&self, access_key: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let read = self.inner.find_access_key(access_key);
        self.keys
            .get(access_key.to_owned(), Option::is_some, read)
            .await
    }

    async fn disable_access_key(&self, access_key: &str) -> StoreResult<bool> {
        let disabled = self.inner.disable_access_key(access_key).await?;
        self.keys.invalidate(access_key);
        Ok(disabled)
    }

    async fn find_site(&self, account_id: i64, site_id: &str) -> StoreResult<Option<Site>> {
        let read = self.inner.find_site(account_id, site_id);
        self.sites
            .get((account_id, site_id.to_owned()), Option::is_some, read)
            .await
    }

    async fn update_site(&self, site: &Site, entry: &AuditEntry<'_>) -> StoreResult<()> {
        let outcome = self.inner.update_site(site, entry).await;
        self.sites.invalidate_all();
        outcome
    }

    async fn set_site_status_logged(
        &self,
        site_pk: i64,
        status: SiteStatus,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let outcome = self
            .inner
            .set_site_status_logged(site_pk, status, entry)
            .await;
        self.sites.invalidate_all();
        outcome
    }

    async fn find_policy(&self, account_id: i64, policy_id: i64) -> StoreResult<Option<Policy>> {
        let read = self.inner.find_policy(account_id, policy_id);
        self.policies
            .get((account_id, policy_id), Option::is_some, read)
            .await
    }

    async fn update_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let outcome = self
            .inner
            .update_policy(account_id, policy_id, settings, entry)
            .await;
        self.policies.invalidate(&(account_id, policy_id));
        outcome
    }

    async fn delete_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<bool> {
        let outcome = self.inner.delete_policy(account_id, policy_id, entry).await;
        self.policies.invalidate(&(account_id, policy_id));
        outcome
    }

    async fn find_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
        kids: &[Kid],
    ) -> StoreResult<Vec<StoredContentKey>> {
        let key = (site_pk, content_id.to_owned(), kids.to_vec());
        let read = self.inner.find_content_keys(site_pk, content_id, kids);
        self.content_keys
            .get(key, |found| found.len() == kids.len(), read)
            .await
    }

    async fn read_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.read_meta(name).await
    }

    async fn write_meta(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        self.inner.write_meta(name, value).await
    }

    async fn ensure_account(&self, name: &str, now_ms: i64) -> StoreResult<i64> {
        self.inner.ensure_account(name, now_ms).await
    }

    async fn insert_access_key(
        &self,
        account_id: i64,
        access_key: &str,
        secret_sealed: &[u8],
        now_ms: i64,
    ) -> StoreResult<()> {
        self.inner
            .insert_access_key(account_id, access_key, secret_sealed, now_ms)
            .await
    }

    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        self.inner.list_access_keys().await
    }

    async fn insert_site_logged(
        &self,
        site: &NewSite,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Site> {
        self.inner.insert_site_logged(site, entry).await
    }

    async fn find_site_of_any_account(&self, site_id: &str) -> StoreResult<Option<Site>> {
        self.inner.find_site_of_any_account(site_id).await
    }

    async fn list_sites(&self, account_id: i64, page: Page) -> StoreResult<(Vec<Site>, i64)> {
        self.inner.list_sites(account_id, page).await
    }

    async fn list_site_events(
        &self,
        account_id: i64,
        site_pk: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<SiteEvent>, i64)> {
        self.inner
            .list_site_events(account_id, site_pk, range, page)
            .await
    }

    async fn find_license_servers(&self, site_pk: i64) -> StoreResult<Option<Vec<u8>>> {
        let read = self.inner.find_license_servers(site_pk);
        self.license_servers
            .get(site_pk, Option::is_some, read)
            .await
    }

    async fn save_license_servers(&self, site_pk: i64, sealed: &[u8]) -> StoreResult<()> {
        let outcome = self.inner.save_license_servers(site_pk, sealed).await;
        self.license_servers.invalidate(&site_pk);
        outcome
    }

    async fn find_kms_token_owner(&self, digest: &[u8]) -> StoreResult<Option<(i64, String)>> {
        self.inner.find_kms_token_owner(digest).await
    }

    async fn list_unindexed_kms_tokens(&self) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        self.inner.list_unindexed_kms_tokens().await
    }

    async fn index_kms_token(&self, site_pk: i64, digest: &[u8]) -> StoreResult<()> {
        self.inner.index_kms_token(site_pk, digest).await
    }

    async fn insert_console_session(
        &self,
        digest: &[u8],
        access_key: &str,
        csrf: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.inner
            .insert_console_session(digest, access_key, csrf, expires_at, now_ms)
            .await
    }

    async fn find_console_session(
        &self,
        digest: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        self.inner.find_console_session(digest, now_ms).await
    }

    async fn delete_console_session(&self, digest: &[u8]) -> StoreResult<()> {
        self.inner.delete_console_session(digest).await
    }

    async fn site_statistics(&self, site_pk: i64, since_ms: i64) -> StoreResult<SiteStatistics> {
        self.inner.site_statistics(site_pk, since_ms).await
    }

    async fn insert_policy(
        &self,
        account_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Policy> {
        self.inner.insert_policy(account_id, settings, entry).await
    }

    async fn list_policies(
        &self,
        account_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Policy>, i64)> {
        self.inner.list_policies(account_id, offset, limit).await
    }

    async fn list_policy_events(
        &self,
        account_id: i64,
        policy_id: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<PolicyEvent>, i64)> {
        self.inner
            .list_policy_events(account_id, policy_id, range, page)
            .await
    }

    async fn insert_content_key(
        &self,
        site_pk: i64,
        content_id: &str,
        key: &StoredContentKey,
    ) -> StoreResult<()> {
        self.inner
            .insert_content_key(site_pk, content_id, key)
            .await
    }

    async fn list_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
    ) -> StoreResult<Vec<StoredContentKey>> {
        self.inner.list_content_keys(site_pk, content_id).await
    }

    async fn delete_license_records_before(
        &self,
        site_pk: i64,
        cutoff_ms: i64,
        limit: i64,
    ) -> StoreResult<u64> {
        self.inner
            .delete_license_records_before(site_pk, cutoff_ms, limit)
            .await
    }

    async fn drop_history_before(&self, cutoff_ms: i64) -> StoreResult<u64> {
        self.inner.drop_history_before(cutoff_ms).await
    }

    async fn list_site_pks(&self) -> StoreResult<Vec<i64>> {
        self.inner.list_site_pks().await
    }

    async fn insert_license_records(&self, records: &[NewLicenseRecord]) -> StoreResult<u64> {
        self.inner.insert_license_records(records).await
    }

    async fn begin_import(
        &self,
        expected_records: u64,
    ) -> StoreResult<Box<dyn HistoryImport + '_>> {
        self.inner.begin_import(expected_records).await
    }

    async fn read_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<Vec<LicenseRecord>> {
        self.inner.read_history(site, filter, window).await
    }

    async fn search_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<(Vec<LicenseRecord>, i64)> {
        self.inner.search_history(site, filter, window).await
    }

    async fn summarize_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        interval: Interval,
    ) -> StoreResult<HistorySummary> {
        self.inner.summarize_history(site, filter, interval).await
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;

    use super::*;

    #[tokio::test]
    async fn one_lookup_reads_a_stale_answer_again_while_the_others_answer_from_the_cache() {
        let lookup = Lookup::<u8, u32>::new(Duration::from_millis(20), &Arc::default());
        let reads = AtomicUsize::new(0);
        let read = |answer: u32, wait: Duration| {
            let reads = &reads;
            async move {
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(wait).await;
                Ok(answer)
            }
        };
        assert_eq!(
            lookup
                .get(1, |_| true, read(1, Duration::ZERO))
                .await
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(30)).await;

        // The first lookup after the lifetime starts its read and waits in it.
        let mut refresh =
            std::pin::pin!(lookup.get(1, |_| true, read(2, Duration::from_millis(50))));
        poll_fn(|context| {
            assert!(refresh.as_mut().poll(context).is_pending());
            Poll::Ready(())
        })
        .await;
        for _ in 0..10 {
            let answer = lookup.get(1, |_| true, read(3, Duration::ZERO)).await;
            assert_eq!(answer.unwrap(), 1, "the others answer from the cache");
        }
        assert_eq!(refresh.await.unwrap(), 2);
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "the first read and one refresh"
        );
        assert_eq!(
            lookup
                .get(1, |_| true, read(3, Duration::ZERO))
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn an_answer_read_while_the_key_was_invalidated_is_not_cached() {
        let lookup = Lookup::<u8, u32>::new(Duration::from_secs(60), &Arc::default());
        let mut before_change = std::pin::pin!(lookup.get(1, |_| true, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1)
        }));
        poll_fn(|context| {
            assert!(before_change.as_mut().poll(context).is_pending());
            Poll::Ready(())
        })
        .await;
        // A change through this node lands while that read is in flight.
        lookup.invalidate(&1);
        assert_eq!(before_change.await.unwrap(), 1);
        let after = lookup.get(1, |_| true, async { Ok(2) }).await;
        assert_eq!(
            after.unwrap(),
            2,
            "the answer read before the change was not kept"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_leaves_the_answer_stale_so_that_the_next_lookup_tries_again() {
        let lookup = Lookup::<u8, u32>::new(Duration::from_millis(20), &Arc::default());
        let answer = |value: u32| async move { Ok(value) };
        assert_eq!(lookup.get(1, |_| true, answer(1)).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let failed = lookup
            .get(1, |_| true, async { Err(StoreError::Conflict("test")) })
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))));
        assert_eq!(lookup.get(1, |_| true, answer(2)).await.unwrap(), 2);
    }
}

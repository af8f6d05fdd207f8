//! A short-lived cache in front of the store for what every license request
//! reads: its access key, its site, the site's policy and its content keys.
//! Without it each license costs up to four database reads before its
//! record is written.
//!
//! Only found entries are cached, never absences, so a key, site or content
//! key created on any node is usable at once. Changes made through this
//! node take effect at once; changes made by another node sharing the
//! database (a disabled key, a site turned off) take effect within the
//! configured lifetime (`lookup_cache_ms`, 0 turns the cache off).

use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;

use super::{
    AccessKeyRecord, AuditEntry, HistoryImport, NewSite, SharedStore, Store, StoreResult,
    StoredContentKey,
};
use crate::domain::history::{HistoryFilter, HistoryWindow, LicenseRecord, NewLicenseRecord};
use crate::domain::ids::Kid;
use crate::domain::params::{Page, TimeRange};
use crate::domain::policy::{Policy, PolicyEvent, PolicySettings};
use crate::domain::site::{Site, SiteEvent, SiteStatistics, SiteStatus};

/// Entries kept per kind at most.
const CAPACITY: u64 = 100_000;

/// The store with cached license-path lookups.
pub struct CachedStore {
    inner: SharedStore,
    keys: Cache<String, AccessKeyRecord>,
    sites: Cache<(i64, String), Site>,
    policies: Cache<(i64, i64), Policy>,
    content_keys: Cache<(i64, String, Vec<Kid>), Vec<StoredContentKey>>,
}

impl CachedStore {
    /// Wraps `inner`; entries live for `lifetime`.
    pub fn new(inner: SharedStore, lifetime: Duration) -> Self {
        fn cache<K, V>(lifetime: Duration) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(lifetime)
                .build()
        }
        Self {
            inner,
            keys: cache(lifetime),
            sites: cache(lifetime),
            policies: cache(lifetime),
            content_keys: cache(lifetime),
        }
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn find_access_key(&self, access_key: &str) -> StoreResult<Option<AccessKeyRecord>> {
        if let Some(found) = self.keys.get(access_key) {
            return Ok(Some(found));
        }
        let found = self.inner.find_access_key(access_key).await?;
        if let Some(record) = &found {
            self.keys.insert(access_key.to_owned(), record.clone());
        }
        Ok(found)
    }

    async fn disable_access_key(&self, access_key: &str) -> StoreResult<bool> {
        let disabled = self.inner.disable_access_key(access_key).await?;
        self.keys.invalidate(access_key);
        Ok(disabled)
    }

    async fn find_site(&self, account_id: i64, site_id: &str) -> StoreResult<Option<Site>> {
        let key = (account_id, site_id.to_owned());
        if let Some(found) = self.sites.get(&key) {
            return Ok(Some(found));
        }
        let found = self.inner.find_site(account_id, site_id).await?;
        if let Some(site) = &found {
            self.sites.insert(key, site.clone());
        }
        Ok(found)
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
        let key = (account_id, policy_id);
        if let Some(found) = self.policies.get(&key) {
            return Ok(Some(found));
        }
        let found = self.inner.find_policy(account_id, policy_id).await?;
        if let Some(policy) = &found {
            self.policies.insert(key, policy.clone());
        }
        Ok(found)
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
        if let Some(found) = self.content_keys.get(&key) {
            return Ok(found);
        }
        let found = self
            .inner
            .find_content_keys(site_pk, content_id, kids)
            .await?;
        if found.len() == kids.len() {
            self.content_keys.insert(key, found.clone());
        }
        Ok(found)
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
        self.inner.find_license_servers(site_pk).await
    }

    async fn save_license_servers(&self, site_pk: i64, sealed: &[u8]) -> StoreResult<()> {
        self.inner.save_license_servers(site_pk, sealed).await
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

    async fn insert_license_records(&self, records: &[NewLicenseRecord]) -> StoreResult<()> {
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
}

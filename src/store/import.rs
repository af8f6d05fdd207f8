//! History imports: records from another service, loaded in one go. An
//! engine may load them its own way (SQLite builds its indexes once, at the
//! end); [`BatchedImport`] is the plain way, through the store's own calls.

use async_trait::async_trait;

use super::{NewSite, Store, StoreResult};
use crate::domain::history::NewLicenseRecord;
use crate::domain::site::Site;

/// Records committed per transaction by a [`BatchedImport`].
const BATCH: usize = 5000;

/// An import under way. Records and sites added to it are stored by
/// [`commit`](HistoryImport::commit); whether dropping it first undoes
/// them is the engine's to say ([`Store::begin_import`]).
#[async_trait]
pub trait HistoryImport: Send {
    /// A site of any account, as the import sees it.
    async fn find_site(&mut self, site_id: &str) -> StoreResult<Option<Site>>;
    /// Creates a site for records whose site the database lacks.
    async fn insert_site(&mut self, site: &NewSite, event: &str) -> StoreResult<Site>;
    /// Adds records; a record stored earlier in the same millisecond as
    /// another sorts as the older one.
    async fn add(&mut self, records: Vec<NewLicenseRecord>) -> StoreResult<()>;
    /// Stores everything added; answers how many records that was.
    async fn commit(self: Box<Self>) -> StoreResult<u64>;
}

/// An import through [`Store::insert_license_records`], [`BATCH`] records
/// per transaction: what was committed before a failure stays.
pub struct BatchedImport<'a, S: Store + ?Sized> {
    store: &'a S,
    batch: Vec<NewLicenseRecord>,
    stored: u64,
}

impl<'a, S: Store + ?Sized> BatchedImport<'a, S> {
    /// Starts an import into `store`.
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            batch: Vec::with_capacity(BATCH),
            stored: 0,
        }
    }

    async fn flush(&mut self) -> StoreResult<()> {
        self.stored += self.store.insert_license_records(&self.batch).await?;
        self.batch.clear();
        Ok(())
    }
}

#[async_trait]
impl<S: Store + ?Sized> HistoryImport for BatchedImport<'_, S> {
    async fn find_site(&mut self, site_id: &str) -> StoreResult<Option<Site>> {
        self.store.find_site_of_any_account(site_id).await
    }

    async fn insert_site(&mut self, site: &NewSite, event: &str) -> StoreResult<Site> {
        self.store.insert_site(site, event).await
    }

    async fn add(&mut self, records: Vec<NewLicenseRecord>) -> StoreResult<()> {
        for record in records {
            self.batch.push(record);
            if self.batch.len() >= BATCH {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<u64> {
        self.flush().await?;
        Ok(self.stored)
    }
}

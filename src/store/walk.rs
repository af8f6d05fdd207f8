//! Reading a whole filtered history page by page, newest first, on the
//! (created_at, id) cursor: each page costs the same however far the walk
//! has gone. Exports use it.

use super::{SharedStore, StoreResult};
use crate::domain::cursor::Cursor;
use crate::domain::history::{HistoryFilter, HistoryWindow, LicenseRecord};
use crate::domain::site::Site;

/// Records read per page.
const PAGE: i64 = 1000;

/// A walk over one site's filtered history.
pub struct HistoryWalk {
    store: SharedStore,
    site: Site,
    filter: HistoryFilter,
    after: Option<Cursor>,
    done: bool,
}

impl HistoryWalk {
    /// A walk from the newest record.
    pub fn new(store: SharedStore, site: Site, filter: HistoryFilter) -> Self {
        Self {
            store,
            site,
            filter,
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` once every record has been read.
    pub async fn next_page(&mut self) -> StoreResult<Option<Vec<LicenseRecord>>> {
        if self.done {
            return Ok(None);
        }
        let window = HistoryWindow {
            after: self.after,
            offset: 0,
            limit: PAGE,
        };
        let page = self
            .store
            .read_history(&self.site, &self.filter, window)
            .await?;
        self.done = (page.len() as i64) < PAGE;
        self.after = page.last().map(|last| Cursor {
            created_at: last.created_at,
            id: last.id,
        });
        if page.is_empty() {
            return Ok(None);
        }
        Ok(Some(page))
    }
}

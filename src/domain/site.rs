//! Sites (spec section 4): names, the lifecycle states and what the store
//! keeps of a site.

use serde::Serialize;

use super::audit::LogEntry;

/// A site name: 3..20 of letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteName(String);

impl SiteName {
    /// Checks the length and alphabet.
    pub fn parse(text: &str) -> Option<Self> {
        let alphabet_ok = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ((3..=20).contains(&text.len()) && alphabet_ok).then(|| Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a site is in its lifecycle (spec section 4, decided: no
/// asynchronous provisioning, so `CREATING` is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SiteStatus {
    /// Created or turned off; issues nothing.
    Ready,
    /// Turned on; issues licenses.
    Running,
    /// Deleted; its history stays readable.
    Deleted,
}

impl SiteStatus {
    /// The stored and wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Running => "RUNNING",
            Self::Deleted => "DELETED",
        }
    }

    /// The inverse of [`SiteStatus::name`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Ready, Self::Running, Self::Deleted]
            .into_iter()
            .find(|status| status.name() == text)
    }
}

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Internal key, used by history rows.
    pub pk: i64,
    /// Public id.
    pub site_id: String,
    /// Owning account.
    pub account_id: i64,
    /// Display name.
    pub name: String,
    /// Lifecycle state.
    pub status: SiteStatus,
    /// Applied policy.
    pub policy_id: i64,
    /// The KMS token, sealed with the master key.
    pub kms_token_sealed: Vec<u8>,
    /// FairPlay credentials as sealed JSON, when set.
    pub fairplay_sealed: Option<Vec<u8>>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// Activity of a site in the current month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteStatistics {
    /// Distinct users with a license issued.
    pub monthly_active_users: i64,
    /// Distinct devices with a license issued.
    pub monthly_active_devices: i64,
    /// Licenses issued.
    pub monthly_active_licenses: i64,
}

/// One entry of the site log; the subject is the site's public id.
pub type SiteEvent = LogEntry<String>;

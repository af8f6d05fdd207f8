//! DRM policies (spec section 5): what a policy holds, how a client's
//! settings are read and checked, and the built-in read-only `Basic`
//! policy 0, which allows every DRM type with temporary sessions.

mod drm_config;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use drm_config::*;

use super::audit::LogEntry;
use super::body::from_json_strict;
use super::drm::DrmType;
use super::params::{Page, ParamError};

/// Id of the built-in policy.
pub const BASIC_POLICY_ID: i64 = 0;

/// Longest duration a policy may set, in seconds (`i32::MAX`, spec section 5).
pub const MAX_DURATION_SECONDS: i64 = 2_147_483_647;

/// A policy name: 3..20 of letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(pattern = "^[A-Za-z0-9_]{3,20}$")]
pub struct PolicyName(String);

impl PolicyName {
    /// Checks the length and alphabet.
    pub fn parse(text: &str) -> Option<Self> {
        let alphabet_ok = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ((3..=20).contains(&text.len()) && alphabet_ok).then(|| Self(text.to_owned()))
    }

    /// The name a copy of `self` gets: `Copy_<name>`, cut to the longest
    /// name allowed (decided: the spec's names cannot hold every copy).
    pub fn copy(&self) -> Self {
        let mut name = format!("Copy_{}", self.0);
        name.truncate(20);
        Self(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyName {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or("must be 3 to 20 letters, digits or '_'")
    }
}

impl From<PolicyName> for String {
    fn from(name: PolicyName) -> Self {
        name.0
    }
}

/// A duration in seconds, 0..=2147483647; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "i64", into = "i64")]
pub struct Seconds(i64);

impl Seconds {
    /// The number of seconds.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Seconds {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if (0..=MAX_DURATION_SECONDS).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!(
                "must be an integer from 0 to {MAX_DURATION_SECONDS}, not {value}"
            ))
        }
    }
}

impl From<Seconds> for i64 {
    fn from(seconds: Seconds) -> Self {
        seconds.0
    }
}

/// What a client sets on a policy: the body of create and update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySettings {
    /// Display name.
    pub policy_name: PolicyName,
    /// Whether persistent licenses may be issued.
    #[serde(default)]
    pub persistent: bool,
    /// How long a persistent license may be kept; needs `persistent`.
    #[serde(default)]
    pub rental_duration: Seconds,
    /// How long playback may last once started.
    #[serde(default)]
    pub playback_duration: Seconds,
    /// Per DRM system settings.
    #[serde(default)]
    pub drm_policy_config: DrmPolicyConfig,
}

impl PolicySettings {
    /// Reads and checks a request body; a fault names the field at fault
    /// by its path, e.g. `drmPolicyConfig.widevine.securityLevel`.
    pub fn from_json(body: serde_json::Value) -> Result<Self, ParamError> {
        let settings: Self = from_json_strict(&body)?;
        if settings.rental_duration.get() > 0 && !settings.persistent {
            return Err(ParamError::new(
                "rentalDuration",
                "must be 0 unless persistent is true",
            ));
        }
        Ok(settings)
    }

    /// The settings' fields that differ from `other`, as
    /// `path: old -> new`, for the policy log.
    pub fn changes_from(&self, other: &Self) -> Vec<String> {
        let mut changes = Vec::new();
        let (new, old) = (serde_json::json!(self), serde_json::json!(other));
        diff_values("", &old, &new, &mut changes);
        changes
    }
}

fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
        for (key, new_value) in new {
            let path = match path {
                "" => key.clone(),
                parent => format!("{parent}.{key}"),
            };
            let old_value = old.get(key).unwrap_or(&serde_json::Value::Null);
            diff_values(&path, old_value, new_value, out);
        }
        return;
    }
    if old != new {
        out.push(format!("{path}: {old} -> {new}"));
    }
}

/// Where a policy is in its lifecycle (spec section 5, decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStatus {
    /// Created or updated; may be applied to sites.
    Ready,
    /// Deleted; stays visible, changes nothing.
    Deleted,
}

impl PolicyStatus {
    /// The stored and wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Deleted => "DELETED",
        }
    }

    /// The inverse of [`PolicyStatus::name`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Ready, Self::Deleted]
            .into_iter()
            .find(|status| status.name() == text)
    }
}

/// A policy as stored, or the built-in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Policy id; 0 is `Basic`.
    pub id: i64,
    /// Lifecycle state.
    pub status: PolicyStatus,
    /// What the policy sets.
    pub settings: PolicySettings,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last update, epoch ms.
    pub updated_at: i64,
    /// Deletion time, epoch ms.
    pub deleted_at: Option<i64>,
}

impl Policy {
    /// The built-in read-only `Basic` policy: every DRM type, temporary
    /// sessions only, no duration limits.
    pub fn basic() -> Self {
        Self {
            id: BASIC_POLICY_ID,
            status: PolicyStatus::Ready,
            settings: PolicySettings {
                policy_name: PolicyName("Basic".to_owned()),
                persistent: false,
                rental_duration: Seconds::default(),
                playback_duration: Seconds::default(),
                drm_policy_config: DrmPolicyConfig::default(),
            },
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        }
    }

    /// The display name.
    pub fn name(&self) -> &str {
        self.settings.policy_name.as_str()
    }

    /// Whether licenses of `drm_type` may be issued under this policy.
    pub fn allows(&self, drm_type: DrmType) -> bool {
        self.settings.drm_policy_config.allows(drm_type)
    }

    /// Whether persistent licenses may be issued.
    pub fn allows_persistent(&self) -> bool {
        self.settings.persistent
    }
}

/// One entry of the policy log; the subject is the policy id.
pub type PolicyEvent = LogEntry<i64>;

/// Where one page of the policy list falls among an account's own
/// policies: `Basic` comes first, then the account's, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyListWindow {
    /// Whether the page starts with `Basic`.
    pub with_basic: bool,
    /// Own policies to skip.
    pub offset: i64,
    /// Own policies to read at most.
    pub limit: i64,
}

impl PolicyListWindow {
    /// The window of `page`.
    pub fn of(page: Page) -> Self {
        match page.offset() {
            0 => Self {
                with_basic: true,
                offset: 0,
                limit: page.size - 1,
            },
            offset => Self {
                with_basic: false,
                offset: offset - 1,
                limit: page.size,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fault(body: serde_json::Value) -> String {
        PolicySettings::from_json(body).unwrap_err().to_string()
    }

    #[test]
    fn missing_fields_take_the_basic_policys_values() {
        let settings = PolicySettings::from_json(json!({"policyName": "Basic"})).unwrap();

        assert_eq!(settings, Policy::basic().settings);
    }

    #[test]
    fn faults_name_their_field_by_path() {
        assert_eq!(fault(json!({})), "body missing field `policyName`");
        assert!(fault(json!({"policyName": "a b c"})).starts_with("policyName"));
        assert!(fault(json!({"policyName": "abc", "playbackDuration": -1}))
            .starts_with("playbackDuration"));
        assert!(
            fault(json!({"policyName": "abc", "rentalDuration": 5})).starts_with("rentalDuration")
        );
        let level = fault(
            json!({"policyName": "abc", "drmPolicyConfig": {"widevine": {"securityLevel": 6}}}),
        );
        assert!(
            level.starts_with("drmPolicyConfig.widevine.securityLevel"),
            "{level}"
        );
    }

    #[test]
    fn copies_are_named_copy_of_and_stay_valid() {
        let short = PolicyName::parse("movies").unwrap();
        let long = PolicyName::parse("a_twenty_char_name_x").unwrap();

        assert_eq!(short.copy().as_str(), "Copy_movies");
        assert_eq!(long.copy().as_str(), "Copy_a_twenty_char_n");
        assert!(PolicyName::parse(long.copy().as_str()).is_some());
    }

    #[test]
    fn the_first_page_starts_with_basic() {
        let window = |number, size| PolicyListWindow::of(Page { number, size });

        assert_eq!(
            window(1, 20),
            PolicyListWindow {
                with_basic: true,
                offset: 0,
                limit: 19
            }
        );
        assert_eq!(
            window(2, 20),
            PolicyListWindow {
                with_basic: false,
                offset: 19,
                limit: 20
            }
        );
    }

    #[test]
    fn changes_list_each_changed_field_by_path() {
        let old = Policy::basic().settings;
        let mut new = old.clone();
        new.drm_policy_config.widevine.use_yn = false;
        new.persistent = true;

        assert_eq!(
            new.changes_from(&old),
            vec![
                "drmPolicyConfig.widevine.useYn: true -> false",
                "persistent: false -> true"
            ]
        );
    }
}

//! DRM policies. This holds the built-in `Basic` policy 0, which allows
//! every DRM type with temporary sessions; custom policies build on it.

use super::drm::DrmType;

/// Id of the built-in policy.
pub const BASIC_POLICY_ID: i64 = 0;

/// What a policy allows at issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Policy id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// DRM types with `useYn: true`.
    pub allowed: Vec<DrmType>,
    /// Whether persistent licenses may be issued.
    pub persistent: bool,
}

impl Policy {
    /// The built-in read-only `Basic` policy.
    pub fn basic() -> Self {
        Self {
            id: BASIC_POLICY_ID,
            name: "Basic".to_owned(),
            allowed: DrmType::ALL.to_vec(),
            persistent: false,
        }
    }

    /// Whether licenses of `drm_type` may be issued under this policy.
    pub fn allows(&self, drm_type: DrmType) -> bool {
        self.allowed.contains(&drm_type)
    }
}

//! DRM systems the service knows and how each is named on the wire.

use std::fmt;

use serde::Serialize;

/// A DRM system named in X-DRM-TOKEN and history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DrmType {
    /// Google Widevine.
    Widevine,
    /// Microsoft PlayReady.
    PlayReady,
    /// Apple FairPlay Streaming.
    FairPlay,
    /// W3C ClearKey [extension].
    ClearKey,
}

impl DrmType {
    /// Every DRM type, in a stable order.
    pub const ALL: [DrmType; 4] = [
        Self::Widevine,
        Self::PlayReady,
        Self::FairPlay,
        Self::ClearKey,
    ];

    /// Reads a DRM type in any letter case (`CLEARKEY`, `ClearKey`, `clearkey`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|drm| drm.name().eq_ignore_ascii_case(text))
    }

    /// The name history records carry, e.g. `Widevine`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Widevine => "Widevine",
            Self::PlayReady => "PlayReady",
            Self::FairPlay => "FairPlay",
            Self::ClearKey => "ClearKey",
        }
    }

    /// The small integer stored in the database.
    pub fn code(self) -> i64 {
        match self {
            Self::Widevine => 1,
            Self::PlayReady => 2,
            Self::FairPlay => 3,
            Self::ClearKey => 4,
        }
    }

    /// The inverse of [`DrmType::code`].
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|drm| drm.code() == code)
    }
}

impl fmt::Display for DrmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drm_types_parse_in_any_case_and_round_trip_their_codes() {
        assert_eq!(DrmType::parse("CLEARKEY"), Some(DrmType::ClearKey));
        assert_eq!(DrmType::parse("playready"), Some(DrmType::PlayReady));
        assert_eq!(DrmType::parse("Primetime"), None);
        for drm in DrmType::ALL {
            assert_eq!(DrmType::from_code(drm.code()), Some(drm));
        }
    }
}

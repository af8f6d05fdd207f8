//! `drmPolicyConfig` (spec section 5): what a policy sets per DRM system.
//! Each value is checked where it is deserialized, so a config that exists
//! is valid; a missing field takes the value of the built-in `Basic` policy.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::domain::drm::DrmType;

/// The settings of every DRM system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct DrmPolicyConfig {
    /// Google Widevine.
    pub widevine: WidevinePolicy,
    /// Microsoft PlayReady.
    pub playready: PlayReadyPolicy,
    /// Apple FairPlay Streaming.
    pub fairplay: FairPlayPolicy,
    /// W3C ClearKey [extension].
    pub clearkey: ClearKeyPolicy,
}

impl DrmPolicyConfig {
    /// Whether licenses of `drm_type` may be issued (`useYn`).
    pub fn allows(&self, drm_type: DrmType) -> bool {
        match drm_type {
            DrmType::Widevine => self.widevine.use_yn,
            DrmType::PlayReady => self.playready.use_yn,
            DrmType::FairPlay => self.fairplay.use_yn,
            DrmType::ClearKey => self.clearkey.use_yn,
        }
    }
}

/// Widevine settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct WidevinePolicy {
    /// Whether Widevine licenses are issued.
    pub use_yn: bool,
    /// Robustness, 1 (software) to 5 (hardware).
    #[schema(inline)]
    pub security_level: WidevineSecurityLevel,
    /// Output protection required.
    pub hdcp: Hdcp,
    /// Copy generation management.
    pub cgms: Cgms,
    /// Whether analog outputs must be off.
    pub disable_analog_output_yn: bool,
    /// HDCP system renewability rule.
    pub hdcp_srm_rule: HdcpSrmRule,
    /// Whether revoked devices are refused.
    pub device_revocation: bool,
}

impl Default for WidevinePolicy {
    fn default() -> Self {
        Self {
            use_yn: true,
            security_level: level(1),
            hdcp: Hdcp::HdcpNone,
            cgms: Cgms::CgmsNone,
            disable_analog_output_yn: false,
            hdcp_srm_rule: HdcpSrmRule::HdcpSrmRuleNone,
            device_revocation: false,
        }
    }
}

/// Widevine's required HDCP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Hdcp {
    /// No HDCP required.
    HdcpNone,
    /// HDCP 1.x.
    HdcpV1,
    /// HDCP 2.0.
    HdcpV2,
    /// HDCP 2.1.
    HdcpV2_1,
    /// HDCP 2.2.
    HdcpV2_2,
    /// No digital output at all.
    HdcpNoDigitalOutput,
}

/// Widevine's copy generation management setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Cgms {
    /// Not signalled.
    CgmsNone,
    /// Copying allowed.
    CopyFree,
    /// One copy allowed.
    CopyOnce,
    /// No copy allowed.
    CopyNever,
}

/// Widevine's HDCP system renewability message rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HdcpSrmRule {
    /// No rule.
    HdcpSrmRuleNone,
    /// The current SRM is required.
    CurrentSrm,
}

/// PlayReady settings; the levels are PlayReady's own numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct PlayReadyPolicy {
    /// Whether PlayReady licenses are issued.
    pub use_yn: bool,
    /// 150, 2000 or 3000.
    #[schema(inline)]
    pub security_level: PlayReadySecurityLevel,
    /// 100, 250, 270, 300 or 301.
    #[schema(inline)]
    pub digital_video_protection_level: DigitalVideoProtection,
    /// 100, 150, 200 or 201.
    #[schema(inline)]
    pub analog_video_protection_level: AnalogVideoProtection,
    /// 100, 250, 300 or 301.
    #[schema(inline)]
    pub digital_audio_protection_level: DigitalAudioProtection,
    /// Whether HDCP is required.
    pub hdcp_use_yn: bool,
}

/// A default level; the defaults are constants of each set.
fn level<S: LevelSet>(value: u16) -> Level<S> {
    Level::new(value).expect("every default level is one of its set's numbers")
}

impl Default for PlayReadyPolicy {
    fn default() -> Self {
        Self {
            use_yn: true,
            security_level: level(150),
            digital_video_protection_level: level(100),
            analog_video_protection_level: level(100),
            digital_audio_protection_level: level(100),
            hdcp_use_yn: false,
        }
    }
}

/// A setting whose values are a fixed set of numbers; implemented by
/// uninhabited markers, which are `Copy` so that their levels are.
pub trait LevelSet: Copy {
    /// The numbers allowed, in increasing order.
    const ALLOWED: &'static [u16];
}

/// A number from the set `S` allows; checked when deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Level<S: LevelSet>(u16, PhantomData<S>);

impl<S: LevelSet> Level<S> {
    /// `value` when `S` allows it.
    pub fn new(value: u16) -> Option<Self> {
        S::ALLOWED
            .contains(&value)
            .then_some(Self(value, PhantomData))
    }
}

/// An integer schema listing exactly the numbers `S` allows.
impl<S: LevelSet> PartialSchema for Level<S> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some(S::ALLOWED.iter().copied()))
            .into()
    }
}

impl<S: LevelSet> ToSchema for Level<S> {}

impl<S: LevelSet> TryFrom<i64> for Level<S> {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u16::try_from(value)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| {
                let allowed: Vec<String> = S::ALLOWED.iter().map(u16::to_string).collect();
                format!("must be one of {}, not {value}", allowed.join(", "))
            })
    }
}

impl<S: LevelSet> From<Level<S>> for i64 {
    fn from(level: Level<S>) -> Self {
        level.0.into()
    }
}

/// Defines the marker of a [`LevelSet`] and the alias of its [`Level`].
macro_rules! level_set {
    ($(#[$doc:meta])* $alias:ident, $marker:ident, [$($value:literal),+]) => {
        #[doc = concat!("The numbers of [`", stringify!($alias), "`].")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $marker {}

        impl LevelSet for $marker {
            const ALLOWED: &'static [u16] = &[$($value),+];
        }

        $(#[$doc])*
        pub type $alias = Level<$marker>;
    };
}

level_set!(
    /// Widevine's security level: 1 (software) to 5 (hardware).
    WidevineSecurityLevel, WidevineLevels, [1, 2, 3, 4, 5]
);
level_set!(
    /// PlayReady's security level: 150, 2000 or 3000.
    PlayReadySecurityLevel, PlayReadyLevels, [150, 2000, 3000]
);
level_set!(
    /// PlayReady's minimum digital video output protection.
    DigitalVideoProtection, DigitalVideoLevels, [100, 250, 270, 300, 301]
);
level_set!(
    /// PlayReady's minimum analog video output protection.
    AnalogVideoProtection, AnalogVideoLevels, [100, 150, 200, 201]
);
level_set!(
    /// PlayReady's minimum digital audio output protection.
    DigitalAudioProtection, DigitalAudioLevels, [100, 250, 300, 301]
);

/// FairPlay settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct FairPlayPolicy {
    /// Whether FairPlay licenses are issued.
    pub use_yn: bool,
    /// HDCP enforcement, as FairPlay's strings.
    pub hdcp_enforcement: HdcpEnforcement,
    /// Whether AirPlay output is allowed.
    pub allow_air_play: bool,
    /// Whether Apple's AV adapters are allowed.
    pub allow_av_adaptor: bool,
}

impl Default for FairPlayPolicy {
    fn default() -> Self {
        Self {
            use_yn: true,
            hdcp_enforcement: HdcpEnforcement::NotRequired,
            allow_air_play: true,
            allow_av_adaptor: true,
        }
    }
}

/// FairPlay's HDCP enforcement: the strings `"-1"`, `"0"` and `"1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum HdcpEnforcement {
    /// `"-1"`: no HDCP required.
    #[serde(rename = "-1")]
    NotRequired,
    /// `"0"`: HDCP type 0.
    #[serde(rename = "0")]
    Type0,
    /// `"1"`: HDCP type 1.
    #[serde(rename = "1")]
    Type1,
}

/// ClearKey settings [extension].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ClearKeyPolicy {
    /// Whether ClearKey licenses are issued.
    pub use_yn: bool,
}

impl Default for ClearKeyPolicy {
    fn default() -> Self {
        Self { use_yn: true }
    }
}

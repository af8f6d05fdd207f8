//! JSON shapes of the API, shared by the server, the command-line client
//! and the tests. Field names are camelCase exactly as the spec writes them.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::drm::DrmType;
use crate::domain::fairplay::FairPlayCertInput;
use crate::domain::history::{format_created_time, LicenseRecord};
use crate::domain::policy::{DrmPolicyConfig, Policy, PolicyStatus};
use crate::domain::summary::{HistorySummary, Interval};
use crate::domain::upstream::{LicenseServers, LicenseServersInput, Upstream};

/// `{"success": true, "content": ..., "total": ...}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Envelope<T> {
    /// Always true; failures use the error shapes instead.
    pub success: bool,
    /// The answer.
    pub content: T,
    /// Items matching over all pages, on list endpoints.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total: Option<i64>,
    /// History only [extension]: pass as `cursor` for the next page.
    #[serde(
        rename = "nextCursor",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub next_cursor: Option<String>,
}

impl<T> Envelope<T> {
    /// A single-object answer.
    pub fn one(content: T) -> Self {
        Self {
            success: true,
            content,
            total: None,
            next_cursor: None,
        }
    }

    /// One page of a list and the total over all pages.
    pub fn page(content: T, total: i64) -> Self {
        Self {
            success: true,
            content,
            total: Some(total),
            next_cursor: None,
        }
    }

    /// Adds the cursor of the next page, when there is one.
    pub fn with_next_cursor(mut self, next_cursor: Option<String>) -> Self {
        self.next_cursor = next_cursor;
        self
    }
}

/// Body of site create and update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteRequest {
    /// 3..20 of letters, digits and `_`.
    #[schema(pattern = "^[A-Za-z0-9_]{3,20}$")]
    pub site_name: String,
    /// Policy to apply; on create the built-in Basic policy 0 when absent,
    /// on update the site's current policy.
    pub policy_id: Option<i64>,
    /// FairPlay credentials; unchanged on update when absent.
    pub fair_play_cert: Option<FairPlayCertInput>,
    /// Upstream license servers [extension]; replaced whole when given,
    /// unchanged on update when absent.
    pub license_servers: Option<LicenseServersInput>,
}

/// A site as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    /// True once deleted.
    pub disabled: bool,
    /// Public id.
    pub site_id: String,
    /// Display name.
    pub site_name: String,
    /// `READY`, `RUNNING` or `DELETED`.
    pub site_status: String,
    /// Whether licenses are issued.
    pub site_enabled_yn: bool,
    /// Applied policy.
    pub policy_id: i64,
    /// Its name.
    pub policy_name: String,
    /// Detail only: the token packagers use for key exchange.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_token: Option<String>,
    /// FairPlay credentials, secrets masked.
    pub fair_play_cert: Option<FairPlayCertView>,
    /// Upstream license servers [extension], header values left out.
    #[serde(default)]
    pub license_servers: Option<LicenseServersView>,
    /// Current month's activity.
    pub statistics: StatisticsView,
    /// Creation time, epoch ms.
    pub site_created_time: i64,
}

/// FairPlay credentials with every secret masked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FairPlayCertView {
    /// The certificate source as given.
    pub cert_file: String,
    /// Masked.
    pub private_key: String,
    /// Masked.
    pub private_encrypted_string: String,
    /// Masked.
    pub secret_key: String,
}

/// A site's upstream license servers as the API shows them [extension].
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LicenseServersView {
    /// Widevine license server.
    pub widevine: Option<UpstreamView>,
    /// PlayReady license server.
    pub playready: Option<UpstreamView>,
    /// FairPlay key server.
    pub fairplay: Option<UpstreamView>,
}

/// One upstream license server: the URL and only the names of its static
/// headers, whose values may be credentials.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamView {
    /// Where CDM messages go.
    pub url: String,
    /// Names of the static headers sent along.
    pub header_names: Vec<String>,
}

impl From<&LicenseServers> for LicenseServersView {
    fn from(servers: &LicenseServers) -> Self {
        let view = |drm| servers.get(drm).map(UpstreamView::from);
        Self {
            widevine: view(DrmType::Widevine),
            playready: view(DrmType::PlayReady),
            fairplay: view(DrmType::FairPlay),
        }
    }
}

impl From<&Upstream> for UpstreamView {
    fn from(upstream: &Upstream) -> Self {
        Self {
            url: upstream.url.clone(),
            header_names: upstream.headers.keys().cloned().collect(),
        }
    }
}

/// A site's activity in the current month.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsView {
    /// Distinct users with a license issued.
    pub monthly_active_users: i64,
    /// Distinct devices with a license issued.
    pub monthly_active_devices: i64,
    /// Licenses issued.
    pub monthly_active_licenses: i64,
}

/// One site log entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteLogItem {
    /// The site.
    pub site_id: String,
    /// What happened.
    pub description: String,
    /// When, epoch ms.
    pub timestamp: i64,
    /// The access key that made the change [extension]; absent for
    /// operator tools and entries older than the field.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_key: Option<String>,
}

/// A policy as the API shows it (spec section 5).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// True once deleted.
    pub disabled: bool,
    /// Policy id; 0 is the built-in `Basic`.
    pub policy_id: i64,
    /// Display name.
    pub policy_name: String,
    /// `READY` or `DELETED`.
    pub policy_status: String,
    /// Creation time, epoch ms.
    pub policy_created_time: i64,
    /// Last update, epoch ms.
    pub policy_update_time: i64,
    /// Deletion time, epoch ms.
    pub policy_deleted_time: Option<i64>,
    /// Whether persistent licenses may be issued.
    pub persistent: bool,
    /// Seconds a persistent license may be kept; 0 is unlimited.
    pub rental_duration: i64,
    /// Seconds playback may last; 0 is unlimited.
    pub playback_duration: i64,
    /// Per DRM system settings.
    pub drm_policy_config: DrmPolicyConfig,
}

impl From<&Policy> for PolicyView {
    fn from(policy: &Policy) -> Self {
        Self {
            disabled: policy.status == PolicyStatus::Deleted,
            policy_id: policy.id,
            policy_name: policy.name().to_owned(),
            policy_status: policy.status.name().to_owned(),
            policy_created_time: policy.created_at,
            policy_update_time: policy.updated_at,
            policy_deleted_time: policy.deleted_at,
            persistent: policy.settings.persistent,
            rental_duration: policy.settings.rental_duration.get(),
            playback_duration: policy.settings.playback_duration.get(),
            drm_policy_config: policy.settings.drm_policy_config.clone(),
        }
    }
}

/// One policy log entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLogItem {
    /// The policy.
    pub policy_id: i64,
    /// What changed.
    pub description: String,
    /// When, epoch ms.
    pub timestamp: i64,
    /// The access key that made the change [extension].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_key: Option<String>,
}

/// Body registering a given content key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentKeyRequest {
    /// 32 hex digits (UUID dashes allowed).
    pub kid: String,
    /// 32 hex digits.
    pub key: String,
}

/// A content key; `key` appears only in the answer that created it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContentKeyView {
    /// The site.
    pub site_id: String,
    /// The content.
    pub content_id: String,
    /// Key id, 32 lower-case hex digits.
    pub kid: String,
    /// The key, 32 lower-case hex digits; shown once.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// Registration time, epoch ms.
    pub created_time: i64,
}

/// One license history record (spec section 7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecordView {
    /// The site.
    pub site_id: String,
    /// From the token.
    pub content_id: String,
    /// `success` or `fail`.
    pub license_status: String,
    /// `Widevine`, `PlayReady`, `FairPlay` or `ClearKey`; empty when the token named none.
    pub drm_type: String,
    /// MD5 of the user id.
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Device model.
    pub device_model: String,
    /// Platform.
    pub platform_name: String,
    /// `yyyyMMddHHmmss` in the history time zone.
    pub license_created_time: String,
    /// Epoch ms [extension].
    pub license_created_at: i64,
    /// Fail records: the error code answered [extension].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_code: Option<String>,
    /// Fail records: the error name answered [extension].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_name: Option<String>,
}

impl HistoryRecordView {
    /// A stored record as the API shows it, times in `zone`.
    pub fn from_record(record: LicenseRecord, zone: Tz) -> Self {
        Self {
            site_id: record.site_id,
            content_id: record.content_id,
            license_status: record.status.name().to_owned(),
            drm_type: record.drm_type.map_or("", DrmType::name).to_owned(),
            user_id: record.user_id,
            device_id: record.device_id,
            device_model: record.device_model,
            platform_name: record.platform_name,
            license_created_time: format_created_time(record.created_at, zone),
            license_created_at: record.created_at,
            error_code: record.failure.as_ref().map(|failure| failure.code.clone()),
            error_name: record.failure.map(|failure| failure.name),
        }
    }
}

/// `GET /api/v1/license/statistics/summary` [extension]: aggregates over
/// the filtered history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    /// Every matching record.
    pub total: i64,
    /// `hour` or `day`: the length of a series bucket, aligned to UTC.
    pub interval: String,
    /// Non-empty buckets, oldest first.
    pub series: Vec<SeriesBucketView>,
    /// Non-zero counts per DRM type.
    pub by_drm_type: Vec<DrmTypeCountView>,
    /// Counts per platform, largest first.
    pub by_platform: Vec<PlatformCountView>,
    /// The most frequent failure reasons, largest first (ten at most).
    pub top_failures: Vec<FailureCountView>,
}

/// One bucket of the summary's time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesBucketView {
    /// Start of the bucket, epoch ms.
    pub start: i64,
    /// Issued licenses.
    pub success: i64,
    /// Refused requests.
    pub fail: i64,
}

/// Records of one DRM type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrmTypeCountView {
    /// As in history records; empty for requests whose token named none.
    pub drm_type: String,
    /// Records.
    pub count: i64,
}

/// Records of one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCountView {
    /// As in history records, e.g. `PLATFORM_LINUX`.
    pub platform_name: String,
    /// Records.
    pub count: i64,
}

/// Fail records with one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureCountView {
    /// Error code answered.
    pub error_code: String,
    /// Error name answered.
    pub error_name: String,
    /// Records.
    pub count: i64,
}

impl SummaryView {
    /// A store summary as the API shows it.
    pub fn new(summary: HistorySummary, interval: Interval) -> Self {
        Self {
            total: summary.total,
            interval: interval.name().to_owned(),
            series: summary
                .series
                .into_iter()
                .map(|bucket| SeriesBucketView {
                    start: bucket.start,
                    success: bucket.success,
                    fail: bucket.fail,
                })
                .collect(),
            by_drm_type: summary
                .by_drm_type
                .into_iter()
                .map(|(drm, count)| DrmTypeCountView {
                    drm_type: drm.map_or("", DrmType::name).to_owned(),
                    count,
                })
                .collect(),
            by_platform: summary
                .by_platform
                .into_iter()
                .map(|(platform_name, count)| PlatformCountView {
                    platform_name,
                    count,
                })
                .collect(),
            top_failures: summary
                .top_failures
                .into_iter()
                .map(|failure| FailureCountView {
                    error_code: failure.code,
                    error_name: failure.name,
                    count: failure.count,
                })
                .collect(),
        }
    }
}

/// A license in the `JSON` response format.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseJsonView {
    /// The DRM type issued.
    pub drm_type: String,
    /// The `ORIGINAL` answer, standard base64.
    pub license: String,
    /// Device id recorded.
    pub device_id: String,
    /// Device model recorded.
    pub device_model: String,
    /// Platform recorded.
    pub platform_name: String,
}

/// A newly created access key, as `multidrm keys create --json` prints it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccessKey {
    /// Owning account.
    pub account: String,
    /// Key id.
    pub access_key: String,
    /// Secret; shown only at creation.
    pub secret_key: String,
}

//! The license history (spec section 7): what a record holds, how the
//! history query is read and validated, and how times are shown.

use chrono::TimeZone;
use chrono_tz::Tz;

use super::cursor::Cursor;
use super::device::Platform;
use super::drm::DrmType;
use super::params::{Page, ParamError, QueryParams, TimeRange};
use super::token::stored_user_id;

/// Largest epoch millisecond accepted in a query (year 9999).
pub const MAX_EPOCH_MS: i64 = 253_402_300_799_999;

/// Outcome of one license request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseStatus {
    /// A license was issued.
    Success,
    /// The request was refused.
    Fail,
}

impl LicenseStatus {
    /// The wire name: `success` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Fail => "fail",
        }
    }

    /// The inverse of [`LicenseStatus::name`], in any letter case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Success, Self::Fail]
            .into_iter()
            .find(|status| status.name().eq_ignore_ascii_case(text))
    }
}

/// Why a request failed, as recorded in its fail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailReason {
    /// The error code the client received, e.g. `2810012`.
    pub code: String,
    /// The error name the client received, e.g. `LICENSE_DRM_INFO_NOT_FOUND`.
    pub name: String,
}

/// A record's identity, chosen when the record is made and stored with it,
/// so that writing the same record twice (a spool replayed after a crash,
/// a batch retried after a lost answer) stores it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKey([u8; 16]);

impl RecordKey {
    /// A new random key (UUID version 4: 122 random bits).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().into_bytes())
    }

    /// The key as stored.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A stored key; None unless it is 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

/// A record about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicenseRecord {
    /// Identity that makes writing the record idempotent.
    pub key: RecordKey,
    /// Internal key of the site.
    pub site_pk: i64,
    /// Content id from the token; empty when the token had none valid.
    pub content_id: String,
    /// DRM type from the token, when valid.
    pub drm_type: Option<DrmType>,
    /// Stored user id (MD5); empty when the token had none.
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Device model.
    pub device_model: String,
    /// Platform.
    pub platform: Platform,
    /// Epoch ms of the request.
    pub created_at: i64,
    /// Set for fail records.
    pub failure: Option<FailReason>,
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRecord {
    /// Record id; orders records written in the same millisecond.
    pub id: i64,
    /// The site's public id.
    pub site_id: String,
    /// Content id.
    pub content_id: String,
    /// Outcome.
    pub status: LicenseStatus,
    /// DRM type, when the token named a valid one.
    pub drm_type: Option<DrmType>,
    /// Stored user id (MD5).
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Device model.
    pub device_model: String,
    /// Platform wire name.
    pub platform_name: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Set for fail records.
    pub failure: Option<FailReason>,
}

/// The one exact-match search a history query may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchFilter {
    /// `searchCondition=contentId`.
    ContentId(String),
    /// `searchCondition=drmType`, matched in any case.
    DrmType(DrmType),
    /// `searchCondition=userId`, raw or MD5, compared as stored.
    UserId(String),
    /// `searchCondition=deviceId`.
    DeviceId(String),
    /// `searchCondition=deviceModel`.
    DeviceModel(String),
}

/// Filters over one site's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Exact-match search.
    pub search: Option<SearchFilter>,
    /// Inclusive lower bound, epoch ms.
    pub start: Option<i64>,
    /// Inclusive upper bound, epoch ms.
    pub end: Option<i64>,
    /// Outcome.
    pub status: Option<LicenseStatus>,
    /// DRM type [extension], on top of any search.
    pub drm_type: Option<DrmType>,
    /// Platform [extension].
    pub platform: Option<Platform>,
}

/// Which rows of a filtered history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryWindow {
    /// Read only rows after this one in the history's order.
    pub after: Option<Cursor>,
    /// Rows to skip (page number paging).
    pub offset: i64,
    /// Rows to read at most.
    pub limit: i64,
}

/// A validated `GET /api/v1/license/statistics` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The site asked about, as text; its owner is checked by the caller.
    pub site_id: String,
    /// Filters.
    pub filter: HistoryFilter,
    /// Page.
    pub page: Page,
    /// Where a cursor walk continues [extension].
    pub after: Option<Cursor>,
}

impl HistoryQuery {
    /// Validates every parameter; the first fault found is reported.
    pub fn from_params(params: &QueryParams) -> Result<Self, ParamError> {
        let site_id = params.require("siteId")?.to_owned();
        let search = search_filter(params)?;
        let TimeRange { start, end } = TimeRange::from_params(params)?;
        let status = match params.get("status")? {
            None => None,
            Some(text) => Some(
                LicenseStatus::parse(text)
                    .ok_or_else(|| ParamError::new("status", "must be success or fail"))?,
            ),
        };
        let drm_type = match params.get("drmType")? {
            None => None,
            Some(text) => Some(DrmType::parse(text).ok_or_else(|| {
                ParamError::new(
                    "drmType",
                    "is not a DRM type (Widevine, PlayReady, FairPlay, ClearKey)",
                )
            })?),
        };
        let platform = match params.get("platform")? {
            None => None,
            Some(text) => Some(Platform::from_name(text).ok_or_else(|| {
                ParamError::new("platform", "is not a platform name such as PLATFORM_LINUX")
            })?),
        };
        let page = Page::from_params(params)?;
        let filter = HistoryFilter {
            search,
            start,
            end,
            status,
            drm_type,
            platform,
        };
        let after = match params.get("cursor")? {
            Some(text) => Some(Cursor::decode(text, &site_id, &filter)?),
            None => None,
        };
        if after.is_some() && page.number != 1 {
            return Err(ParamError::new("pageNo", "cannot be combined with cursor"));
        }
        Ok(Self {
            site_id,
            filter,
            page,
            after,
        })
    }
}

fn search_filter(params: &QueryParams) -> Result<Option<SearchFilter>, ParamError> {
    let (condition, keyword) = match (params.get("searchCondition")?, params.get("searchKeyword")?)
    {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ParamError::new(
                "searchKeyword",
                "is required with searchCondition",
            ))
        }
        (None, Some(_)) => {
            return Err(ParamError::new(
                "searchCondition",
                "is required with searchKeyword",
            ))
        }
        (Some(condition), Some(keyword)) => (condition, keyword),
    };
    let filter = match condition {
        "contentId" => SearchFilter::ContentId(keyword.to_owned()),
        "drmType" => SearchFilter::DrmType(DrmType::parse(keyword).ok_or_else(|| {
            ParamError::new(
                "searchKeyword",
                "is not a DRM type (Widevine, PlayReady, FairPlay, ClearKey)",
            )
        })?),
        "userId" => SearchFilter::UserId(stored_user_id(keyword)),
        "deviceId" => SearchFilter::DeviceId(keyword.to_owned()),
        "deviceModel" => SearchFilter::DeviceModel(keyword.to_owned()),
        _ => {
            return Err(ParamError::new(
                "searchCondition",
                "must be contentId, drmType, userId, deviceId or deviceModel",
            ))
        }
    };
    Ok(Some(filter))
}

/// `yyyyMMddHHmmss` of `epoch_ms` in `zone`; never the machine's zone.
pub fn format_created_time(epoch_ms: i64, zone: Tz) -> String {
    zone.timestamp_millis_opt(epoch_ms)
        .single()
        .map(|time| time.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<HistoryQuery, ParamError> {
        HistoryQuery::from_params(&QueryParams::parse(Some(text)))
    }

    #[test]
    fn every_parameter_is_read() {
        let parsed = query("siteId=s&searchCondition=drmType&searchKeyword=CLEARKEY&startTime=1&endTime=2&status=FAIL&pageNo=2&pageSize=5").unwrap();

        assert_eq!(parsed.site_id, "s");
        assert_eq!(
            parsed.filter.search,
            Some(SearchFilter::DrmType(DrmType::ClearKey))
        );
        assert_eq!((parsed.filter.start, parsed.filter.end), (Some(1), Some(2)));
        assert_eq!(parsed.filter.status, Some(LicenseStatus::Fail));
        assert_eq!(parsed.page, Page { number: 2, size: 5 });
    }

    #[test]
    fn drm_type_and_platform_filter_on_top_of_a_search() {
        let parsed = query("siteId=s&searchCondition=contentId&searchKeyword=c&drmType=widevine&platform=PLATFORM_TV").unwrap();

        assert_eq!(
            parsed.filter.search,
            Some(SearchFilter::ContentId("c".into()))
        );
        assert_eq!(parsed.filter.drm_type, Some(DrmType::Widevine));
        assert_eq!(parsed.filter.platform, Some(Platform::Tv));
    }

    #[test]
    fn user_id_searches_match_raw_ids_and_their_md5() {
        let raw = query("siteId=s&searchCondition=userId&searchKeyword=user-0001").unwrap();
        let md5 =
            query("siteId=s&searchCondition=userId&searchKeyword=6322bd3dea79f605aa8380cef52770f3")
                .unwrap();

        assert_eq!(raw.filter.search, md5.filter.search);
    }

    #[test]
    fn faults_name_their_parameter() {
        let param = |text: &str| query(text).unwrap_err().param;

        assert_eq!(param("pageNo=1"), "siteId");
        assert_eq!(param("siteId=s&startTime=2&endTime=1"), "endTime");
        assert_eq!(param("siteId=s&startTime=-1"), "startTime");
        assert_eq!(param("siteId=s&startTime=1.5e12"), "startTime");
        assert_eq!(param("siteId=s&status=ok"), "status");
        assert_eq!(param("siteId=s&drmType=Primetime"), "drmType");
        assert_eq!(param("siteId=s&platform=linux"), "platform");
        assert_eq!(param("siteId=s&searchCondition=contentId"), "searchKeyword");
        assert_eq!(param("siteId=s&searchKeyword=x"), "searchCondition");
        assert_eq!(
            param("siteId=s&searchCondition=title&searchKeyword=x"),
            "searchCondition"
        );
        assert_eq!(
            param("siteId=s&searchCondition=drmType&searchKeyword=Primetime"),
            "searchKeyword"
        );
    }

    #[test]
    fn created_time_uses_the_configured_zone() {
        assert_eq!(
            format_created_time(1_796_266_800_000, chrono_tz::UTC),
            "20261203030000"
        );
        assert_eq!(
            format_created_time(1_796_266_800_000, chrono_tz::Asia::Seoul),
            "20261203120000"
        );
    }
}

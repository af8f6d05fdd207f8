//! History files: the CSV and NDJSON forms of license records that the
//! export endpoint streams and the `history export` / `history import`
//! commands write and read. Both forms carry the API's record fields, so a
//! file exported here imports back to the same records.

use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::device::Platform;
use crate::domain::drm::DrmType;
use crate::domain::history::{FailReason, LicenseRecord, LicenseStatus};
use crate::domain::params::ParamError;
use crate::wire::HistoryRecordView;

/// Column names of the CSV form, in the order of the record fields.
const CSV_HEADER: &str = "siteId,contentId,licenseStatus,drmType,userId,deviceId,deviceModel,platformName,licenseCreatedTime,licenseCreatedAt,errorCode,errorName\n";

/// The forms a history file can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON record per line.
    Ndjson,
}

impl ExportFormat {
    /// Reads `csv` or `ndjson` in any case; CSV when absent.
    pub fn parse(text: Option<&str>) -> Result<Self, ParamError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("csv") => Ok(Self::Csv),
            Some("ndjson") => Ok(Self::Ndjson),
            Some(_) => Err(ParamError::new("format", "must be csv or ndjson")),
        }
    }

    /// The form a file name's extension says; NDJSON unless it ends in `.csv`.
    pub fn of_file(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".csv") {
            Self::Csv
        } else {
            Self::Ndjson
        }
    }

    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    /// What precedes the records: the CSV header row, or nothing.
    pub fn header(self) -> &'static [u8] {
        match self {
            Self::Csv => CSV_HEADER.as_bytes(),
            Self::Ndjson => b"",
        }
    }

    /// Serialises records in this form, times in `zone`.
    pub fn write(self, records: Vec<LicenseRecord>, zone: Tz) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut out);
                for record in records {
                    let view = HistoryRecordView::from_record(record, zone);
                    let created_at = view.license_created_at.to_string();
                    writer.write_record([
                        view.site_id.as_str(),
                        &view.content_id,
                        &view.license_status,
                        &view.drm_type,
                        &view.user_id,
                        &view.device_id,
                        &view.device_model,
                        &view.platform_name,
                        &view.license_created_time,
                        &created_at,
                        view.error_code.as_deref().unwrap_or(""),
                        view.error_name.as_deref().unwrap_or(""),
                    ])?;
                }
                writer.flush()?;
            }
            Self::Ndjson => {
                for record in records {
                    serde_json::to_writer(&mut out, &HistoryRecordView::from_record(record, zone))?;
                    out.push(b'\n');
                }
            }
        }
        Ok(out)
    }
}

/// One record of a history file, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    /// Site the record belongs to.
    pub site_id: String,
    /// Content id.
    pub content_id: String,
    /// `success` or `fail`.
    pub license_status: String,
    /// DRM type name; empty when unknown.
    #[serde(default)]
    pub drm_type: String,
    /// User id (stored as given).
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Device model.
    pub device_model: String,
    /// Platform name.
    pub platform_name: String,
    /// Epoch ms of the license.
    pub license_created_at: i64,
    /// Error code of a fail record.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Error name of a fail record.
    #[serde(default)]
    pub error_name: Option<String>,
}

/// The parts of a file record that the store keeps as typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRecord {
    /// DRM type, when the record names one.
    pub drm_type: Option<DrmType>,
    /// Platform.
    pub platform: Platform,
    /// Set for fail records.
    pub failure: Option<FailReason>,
}

impl FileRecord {
    /// Checks the enumerated fields; the error names the field at fault.
    pub fn check(&self) -> Result<CheckedRecord, String> {
        let status = LicenseStatus::parse(&self.license_status)
            .ok_or("licenseStatus must be success or fail")?;
        let drm_type = match self.drm_type.as_str() {
            "" => None,
            name => Some(
                DrmType::parse(name)
                    .ok_or_else(|| format!("drmType {name:?} is not a DRM type"))?,
            ),
        };
        let platform = Platform::from_name(&self.platform_name)
            .ok_or_else(|| format!("platformName {:?} is not a platform", self.platform_name))?;
        let failure = match status {
            LicenseStatus::Success => None,
            LicenseStatus::Fail => Some(FailReason {
                code: self.error_code.clone().unwrap_or_default(),
                name: self.error_name.clone().unwrap_or_default(),
            }),
        };
        Ok(CheckedRecord {
            drm_type,
            platform,
            failure,
        })
    }
}

//! History files: the CSV and NDJSON forms of license records that the
//! export endpoint streams and the `history export` / `history import`
//! commands write and read. Both forms carry the API's record fields, so a
//! file exported here imports back to the same records.

use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::device::Platform;
use crate::domain::drm::DrmType;
use crate::domain::history::{
    FailReason, LicenseRecord, LicenseStatus, NewLicenseRecord, RecordKey, MAX_EPOCH_MS,
};
use crate::domain::params::ParamError;
use crate::wire::HistoryRecordView;

/// Column names of the CSV form, in the order of the record fields.
const CSV_HEADER: &str = "siteId,contentId,licenseStatus,drmType,userId,deviceId,deviceModel,platformName,licenseCreatedTime,licenseCreatedAt,errorCode,errorName\n";

/// Position of `licenseCreatedAt`, the one numeric column.
const CREATED_AT_COLUMN: usize = 9;

/// The cells of one record, in the order of the header's columns; absent
/// fields are empty.
fn cells(view: HistoryRecordView) -> [String; 12] {
    [
        view.site_id,
        view.content_id,
        view.license_status,
        view.drm_type,
        view.user_id,
        view.device_id,
        view.device_model,
        view.platform_name,
        view.license_created_time,
        view.license_created_at.to_string(),
        view.error_code.unwrap_or_default(),
        view.error_name.unwrap_or_default(),
    ]
}

/// The forms a history file can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON record per line.
    Ndjson,
    /// An Excel workbook, built by [`XlsxExport`].
    Xlsx,
}

impl ExportFormat {
    /// Reads `csv` or `ndjson` in any case; CSV when absent.
    pub fn parse(text: Option<&str>) -> Result<Self, ParamError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("csv") => Ok(Self::Csv),
            Some("ndjson") => Ok(Self::Ndjson),
            Some("xlsx") => Ok(Self::Xlsx),
            Some(_) => Err(ParamError::new("format", "must be csv, ndjson or xlsx")),
        }
    }

    /// The form a file name's extension says; NDJSON unless it ends in
    /// `.csv` or `.xlsx`.
    pub fn of_file(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".csv") {
            Self::Csv
        } else if name.ends_with(".xlsx") {
            Self::Xlsx
        } else {
            Self::Ndjson
        }
    }

    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
            Self::Xlsx => "xlsx",
        }
    }

    /// What precedes the records: the CSV header row, or nothing.
    pub fn header(self) -> &'static [u8] {
        match self {
            Self::Csv => CSV_HEADER.as_bytes(),
            Self::Ndjson | Self::Xlsx => b"",
        }
    }

    /// Serialises records in a line-based form (CSV or NDJSON), times in
    /// `zone`; an XLSX workbook is built whole by [`XlsxExport`] instead.
    pub fn write(self, records: Vec<LicenseRecord>, zone: Tz) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Self::Xlsx => anyhow::bail!("XLSX is not written row by row; use XlsxExport"),
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut out);
                for record in records {
                    writer.write_record(cells(HistoryRecordView::from_record(record, zone)))?;
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

/// A file record whose fields have been checked, ready to be stored once
/// its site's internal key is known.
#[derive(Debug, Clone)]
pub struct CheckedRecord {
    /// Site the record belongs to.
    pub site_id: String,
    record: NewLicenseRecord,
}

impl CheckedRecord {
    /// The record as stored under the site whose internal key is `site_pk`.
    pub fn stored_as(self, site_pk: i64) -> NewLicenseRecord {
        NewLicenseRecord {
            site_pk,
            ..self.record
        }
    }
}

impl FileRecord {
    /// Checks the enumerated fields; the error names the field at fault.
    pub fn check(self) -> Result<CheckedRecord, String> {
        let status = LicenseStatus::parse(&self.license_status)
            .ok_or("licenseStatus must be success or fail")?;
        let drm_type = match self.drm_type.as_str() {
            "" => None,
            name => Some(
                DrmType::parse(name)
                    .ok_or_else(|| format!("drmType {name:?} is not a DRM type"))?,
            ),
        };
        if !(0..=MAX_EPOCH_MS).contains(&self.license_created_at) {
            return Err(format!(
                "licenseCreatedAt {} is not an epoch millisecond between 0 and {MAX_EPOCH_MS}",
                self.license_created_at
            ));
        }
        let platform = Platform::from_name(&self.platform_name)
            .ok_or_else(|| format!("platformName {:?} is not a platform", self.platform_name))?;
        let failure = match status {
            LicenseStatus::Success => None,
            LicenseStatus::Fail => Some(FailReason {
                code: self.error_code.unwrap_or_default(),
                name: self.error_name.unwrap_or_default(),
            }),
        };
        Ok(CheckedRecord {
            site_id: self.site_id,
            record: NewLicenseRecord {
                key: RecordKey::generate(),
                site_pk: 0,
                content_id: self.content_id,
                drm_type,
                user_id: self.user_id,
                device_id: self.device_id,
                device_model: self.device_model,
                platform,
                created_at: self.license_created_at,
                failure,
            },
        })
    }
}

/// Rows of one worksheet at most: the XLSX limit less the header row.
const XLSX_ROWS_PER_SHEET: u32 = 1_048_575;

/// Builds an XLSX export in constant memory: rows go to temporary files
/// as they come, and a new worksheet starts whenever one is full.
pub struct XlsxExport {
    workbook: rust_xlsxwriter::Workbook,
    sheet_rows: u32,
    zone: Tz,
}

impl XlsxExport {
    /// An empty workbook whose times are shown in `zone`.
    pub fn new(zone: Tz) -> Self {
        Self {
            workbook: rust_xlsxwriter::Workbook::new(),
            sheet_rows: XLSX_ROWS_PER_SHEET,
            zone,
        }
    }

    /// Appends records after those already added.
    pub fn push(&mut self, records: Vec<LicenseRecord>) -> anyhow::Result<()> {
        for record in records {
            if self.sheet_rows == XLSX_ROWS_PER_SHEET {
                self.start_sheet()?;
            }
            self.sheet_rows += 1;
            let row = self.sheet_rows;
            let sheet = self
                .workbook
                .worksheets_mut()
                .last_mut()
                .expect("a worksheet exists once a record is pushed");
            let created_at = record.created_at as f64;
            for (column, cell) in cells(HistoryRecordView::from_record(record, self.zone))
                .iter()
                .enumerate()
            {
                if column == CREATED_AT_COLUMN {
                    sheet.write_number(row, column as u16, created_at)?;
                } else {
                    sheet.write_string(row, column as u16, cell)?;
                }
            }
        }
        Ok(())
    }

    /// Adds a worksheet holding only the header row.
    fn start_sheet(&mut self) -> anyhow::Result<()> {
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        for (column, name) in CSV_HEADER.trim_end().split(',').enumerate() {
            sheet.write_string(0, column as u16, name)?;
        }
        self.sheet_rows = 0;
        Ok(())
    }

    /// Writes the finished workbook to a temporary file and answers it,
    /// rewound to its start.
    pub fn finish(mut self) -> anyhow::Result<std::fs::File> {
        if self.workbook.worksheets_mut().is_empty() {
            self.start_sheet()?;
        }
        let mut file = tempfile::tempfile()?;
        self.workbook.save_to_writer(&mut file)?;
        std::io::Seek::rewind(&mut file)?;
        Ok(file)
    }
}

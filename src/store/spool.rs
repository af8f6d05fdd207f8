//! The history spool: an append-only file in the data directory that holds
//! history records while the database cannot take them. Each append is
//! flushed to disk (fsync) before the license responses it stands for are
//! sent; the records are replayed into the database in file order once it
//! answers again, and the file is emptied only after every record in it is
//! committed.
//!
//! One record a line, as JSON, so that an operator can read it. A crash in
//! the middle of an append can leave a torn last line, or (after a power
//! loss) a line of garbage: those records were never acknowledged, so a
//! line that does not parse is skipped with a warning.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::device::Platform;
use crate::domain::drm::DrmType;
use crate::domain::history::{FailReason, NewLicenseRecord, RecordKey};

/// Name of the first process's spool file in the data directory; others
/// sharing the directory use `history-spool-<n>.ndjson`.
pub const SPOOL_FILE: &str = "history-spool.ndjson";

/// Processes that can share one data directory, at most.
const SLOTS: usize = 64;

/// A spool operation failed: the disk is full, gone or read-only.
#[derive(Debug, thiserror::Error)]
#[error("history spool {path}: {source}")]
pub struct SpoolError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The spool file, open for appending and reading.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Spool {
    /// Opens (creating if needed) the first spool in `dir` that no other
    /// process holds, and holds it (a file lock, released when the
    /// process ends, however it ends). Processes sharing a data directory
    /// thus each get a spool of their own, and a process that starts takes
    /// over, and so replays, a spool left by one that crashed. A torn last
    /// line left by a crash is closed with a newline, so that it stays one
    /// bad line.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        for slot in 0..SLOTS {
            let path = match slot {
                0 => dir.join(SPOOL_FILE),
                n => dir.join(format!("history-spool-{n}.ndjson")),
            };
            let fail = |source| SpoolError {
                path: path.clone(),
                source,
            };
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(fail)?;
            match file.try_lock() {
                Ok(()) => return Self::hold(path, file),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(source)) => return Err(fail(source)),
            }
        }
        Err(SpoolError {
            path: dir.join(SPOOL_FILE),
            source: std::io::Error::other(format!(
                "all {SLOTS} history spools are held by other processes"
            )),
        })
    }

    fn hold(path: PathBuf, mut file: File) -> Result<Self, SpoolError> {
        let fail = |source| SpoolError {
            path: path.clone(),
            source,
        };
        let mut len = file.metadata().map_err(fail)?.len();
        if len > 0 && last_byte(&mut file, len).map_err(fail)? != b'\n' {
            tracing::warn!(path = %path.display(), "history spool ends in a torn record; it will be skipped");
            file.write_all(b"\n").map_err(fail)?;
            file.sync_data().map_err(fail)?;
            len += 1;
        }
        let spool = Self { path, file, len };
        spool.report();
        Ok(spool)
    }

    /// Where the spool is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the spool.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether every spooled record has been replayed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `records` and flushes them to disk. On failure the spool is
    /// cut back to what it held, so a half-written batch leaves no trace.
    pub fn append(&mut self, records: &[NewLicenseRecord]) -> Result<(), SpoolError> {
        let mut lines = Vec::with_capacity(records.len() * 320);
        for record in records {
            serde_json::to_writer(&mut lines, &SpooledRecord::from(record))
                .expect("a spooled record always serialises to JSON");
            lines.push(b'\n');
        }
        let written = self
            .file
            .write_all(&lines)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Best effort: the batch is refused whether or not this works.
            let _ = self.file.set_len(self.len);
            return Err(self.error(source));
        }
        self.len += lines.len() as u64;
        self.report();
        Ok(())
    }

    /// Up to `max` records from byte `from` on, and the offset after them.
    pub fn read(&self, from: u64, max: usize) -> Result<(Vec<NewLicenseRecord>, u64), SpoolError> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(from))
            .map_err(|source| self.error(source))?;
        let mut reader = BufReader::new(file.take(self.len.saturating_sub(from)));
        let (mut records, mut offset, mut line) = (Vec::new(), from, Vec::new());
        while records.len() < max {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| self.error(source))?;
            if read == 0 {
                break;
            }
            match serde_json::from_slice::<SpooledRecord>(&line).map(NewLicenseRecord::try_from) {
                Ok(Ok(record)) => records.push(record),
                _ => {
                    tracing::warn!(path = %self.path.display(), offset, "skipping a history spool line that is not a record (torn by a crash)")
                }
            }
            offset += read as u64;
        }
        Ok((records, offset))
    }

    /// Empties the spool, once everything in it is committed.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|source| self.error(source))?;
        self.len = 0;
        self.report();
        Ok(())
    }

    /// Moves the spool's content to a side file that an operator must look
    /// at, and starts empty; answers the side file's path.
    pub fn set_aside(&mut self, now_ms: i64) -> Result<PathBuf, SpoolError> {
        let aside = self.path.with_extension(format!("{now_ms}.rejected"));
        std::fs::copy(&self.path, &aside)
            .and_then(|_| File::open(&aside)?.sync_all())
            .map_err(|source| self.error(source))?;
        self.clear()?;
        Ok(aside)
    }

    fn error(&self, source: std::io::Error) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            source,
        }
    }

    fn report(&self) {
        metrics::gauge!("multidrm_history_spool_bytes").set(self.len as f64);
    }
}

fn last_byte(file: &mut File, len: u64) -> std::io::Result<u8> {
    let mut byte = [0];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut byte)?;
    Ok(byte[0])
}

/// A record as one spool line.
#[derive(Debug, Serialize, Deserialize)]
struct SpooledRecord {
    key: String,
    site_pk: i64,
    created_at: i64,
    content_id: String,
    drm_type: Option<i64>,
    user_id: String,
    device_id: String,
    device_model: String,
    platform: String,
    error_code: Option<String>,
    error_name: Option<String>,
}

impl From<&NewLicenseRecord> for SpooledRecord {
    fn from(record: &NewLicenseRecord) -> Self {
        Self {
            key: hex::encode(record.key.as_bytes()),
            site_pk: record.site_pk,
            created_at: record.created_at,
            content_id: record.content_id.clone(),
            drm_type: record.drm_type.map(DrmType::code),
            user_id: record.user_id.clone(),
            device_id: record.device_id.clone(),
            device_model: record.device_model.clone(),
            platform: record.platform.name().to_owned(),
            error_code: record.failure.as_ref().map(|f| f.code.clone()),
            error_name: record.failure.as_ref().map(|f| f.name.clone()),
        }
    }
}

impl TryFrom<SpooledRecord> for NewLicenseRecord {
    type Error = &'static str;

    fn try_from(line: SpooledRecord) -> Result<Self, Self::Error> {
        let key = hex::decode(&line.key).ok();
        let failure = match (line.error_code, line.error_name) {
            (Some(code), Some(name)) => Some(FailReason { code, name }),
            _ => None,
        };
        Ok(Self {
            key: key
                .as_deref()
                .and_then(RecordKey::from_slice)
                .ok_or("bad key")?,
            site_pk: line.site_pk,
            content_id: line.content_id,
            drm_type: match line.drm_type {
                Some(code) => Some(DrmType::from_code(code).ok_or("bad DRM type")?),
                None => None,
            },
            user_id: line.user_id,
            device_id: line.device_id,
            device_model: line.device_model,
            platform: Platform::from_name(&line.platform).ok_or("bad platform")?,
            created_at: line.created_at,
            failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64) -> NewLicenseRecord {
        NewLicenseRecord {
            key: RecordKey::generate(),
            site_pk: 3,
            content_id: format!("content-{n}"),
            drm_type: Some(DrmType::ClearKey),
            user_id: "user".into(),
            device_id: "device".into(),
            device_model: "Chrome".into(),
            platform: Platform::Linux,
            created_at: 1_700_000_000_000 + n,
            failure: (n % 2 == 1).then(|| FailReason {
                code: "2810012".into(),
                name: "LICENSE_DRM_INFO_NOT_FOUND".into(),
            }),
        }
    }

    #[test]
    fn records_come_back_in_order_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let written: Vec<_> = (0..5).map(record).collect();

        spool.append(&written[..2]).unwrap();
        spool.append(&written[2..]).unwrap();
        let (first, middle) = spool.read(0, 3).unwrap();
        let (rest, end) = spool.read(middle, 3).unwrap();

        assert_eq!([first, rest].concat(), written);
        assert_eq!(end, spool.len());
    }

    #[test]
    fn a_torn_last_line_is_skipped_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[record(1)]).unwrap();
        let mut file = OpenOptions::new().append(true).open(spool.path()).unwrap();
        file.write_all(b"{\"key\":\"00").unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[record(2)]).unwrap();
        let (read, _) = spool.read(0, 10).unwrap();

        let contents: Vec<_> = read.iter().map(|r| r.content_id.as_str()).collect();
        assert_eq!(contents, ["content-1", "content-2"]);
    }

    #[test]
    fn a_second_holder_of_the_data_directory_gets_a_spool_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let first = Spool::open(dir.path()).unwrap();

        let second = Spool::open(dir.path()).unwrap();
        drop(first);
        let third = Spool::open(dir.path()).unwrap();

        assert_eq!(second.path(), dir.path().join("history-spool-1.ndjson"));
        assert_eq!(third.path(), dir.path().join(SPOOL_FILE));
    }

    #[test]
    fn a_cleared_spool_is_empty_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[record(1)]).unwrap();

        spool.clear().unwrap();

        assert!(spool.is_empty());
        assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), 0);
        drop(spool);
        let reopened = Spool::open(dir.path()).unwrap();
        assert_eq!(reopened.path(), dir.path().join(SPOOL_FILE));
        assert!(reopened.is_empty());
    }
}

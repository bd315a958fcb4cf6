//! The recording retention policy (`recording.retention_days`): at start
//! and then daily, recordings older than the retention period are deleted
//! together with their call records.
//!
//! Records go first (in small transactions), then their files: a crash in
//! between leaves files without records, which the sweep of whole expired
//! day directories (`<dir>/<YYYYMMDD>/`) removes on the next run, together
//! with recordings that never had a record (test extensions).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::metrics::ApiCounters;
use super::recordings::resolve;
use super::state::ApiState;
use super::time::days_from_civil;
use crate::storage::{StorageError, Store};

/// How often the policy runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Records deleted per transaction.
const BATCH: usize = 500;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub records: u64,
    pub files: u64,
    pub directories: u64,
    /// Files or directories that could not be deleted (logged).
    pub errors: u64,
}

fn remove_file(path: &Path, report: &mut RetentionReport) {
    match std::fs::remove_file(path) {
        Ok(()) => report.files += 1,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            report.errors += 1;
            tracing::warn!(path = %path.display(), error = %e, "retention: cannot delete");
        }
    }
}

/// The day of a `YYYYMMDD` directory name, as days since 1970-01-01.
fn day_of(name: &str) -> Option<i64> {
    if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = name[..4].parse().ok()?;
    let m: u32 = name[4..6].parse().ok()?;
    let d: u32 = name[6..].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| days_from_civil(y, m, d))
}

/// Deletes the recordings (and their records) of calls that arrived
/// before `now - keep`, then every WAV and sidecar in day directories
/// that ended before that.
pub fn run(
    store: &mut Store,
    dir: &Path,
    now: SystemTime,
    keep: Duration,
) -> Result<RetentionReport, StorageError> {
    let mut report = RetentionReport::default();
    let cutoff = now.checked_sub(keep).unwrap_or(UNIX_EPOCH);
    loop {
        let paths = store.delete_recorded_calls_before(cutoff, BATCH)?;
        if paths.is_empty() {
            break;
        }
        report.records += paths.len() as u64;
        for relative in paths {
            match resolve(dir, &relative) {
                Some(wav) => {
                    remove_file(&wav, &mut report);
                    remove_file(&wav.with_extension("json"), &mut report);
                }
                None => {
                    report.errors += 1;
                    tracing::warn!(path = %relative.display(), "retention: unsafe recording path in a record");
                }
            }
        }
    }
    // A day directory holds recordings started that day (UTC); all of it
    // is expired once the day after it starts at or before the cutoff.
    let cutoff_day = i64::try_from(
        cutoff
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / 86_400,
    )
    .unwrap_or(i64::MAX);
    let Ok(days) = std::fs::read_dir(dir) else {
        return Ok(report);
    };
    for entry in days.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(day) = day_of(&name) else { continue };
        if day + 1 > cutoff_day || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for file in files.flatten() {
            let fname = file.file_name().to_string_lossy().into_owned();
            if [".wav", ".json", ".json.tmp"]
                .iter()
                .any(|ext| fname.ends_with(ext))
            {
                remove_file(&file.path(), &mut report);
            }
        }
        if std::fs::remove_dir(entry.path()).is_ok() {
            report.directories += 1;
        }
    }
    Ok(report)
}

/// Runs the policy at once and then every [`RETENTION_EVERY`], until the
/// API stops.
pub async fn task(state: ApiState, keep: Duration, counters: Arc<ApiCounters>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let dir = state.recordings_dir.clone();
        let result = state
            .blocking(move |store| {
                run(store, &dir, SystemTime::now(), keep).map_err(super::error::ApiError::from)
            })
            .await;
        match result {
            Ok(r) => {
                counters.retention_records_deleted.add(r.records);
                counters.retention_files_deleted.add(r.files);
                tracing::info!(
                    records = r.records,
                    files = r.files,
                    directories = r.directories,
                    errors = r.errors,
                    "recording retention applied"
                );
            }
            Err(e) => tracing::warn!(error = %e, "recording retention failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::call::record::{CallDirection, CallOutcome, CallRecordBuilder};
    use crate::storage::CallRecordFilter;

    const DAY: u64 = 86_400;

    fn at_day(day: u64, secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(day * DAY + secs)
    }

    fn dir_name(day: u64) -> String {
        let (y, m, d) = crate::calendar::civil_from_days(i64::try_from(day).unwrap());
        format!("{y:04}{m:02}{d:02}")
    }

    #[test]
    fn expired_recordings_go_with_their_records_and_orphans_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let day0 = 20_000u64; // 2024-10-04
        let mut records = Vec::new();
        for (n, day) in [(1u64, day0), (2, day0 + 1), (3, day0 + 10)] {
            let rel = format!("{}/call{n}-1.wav", dir_name(day));
            std::fs::create_dir_all(dir.join(dir_name(day))).unwrap();
            std::fs::write(dir.join(&rel), b"RIFF").unwrap();
            std::fs::write(dir.join(&rel).with_extension("json"), b"{}").unwrap();
            let mut b = CallRecordBuilder::new(
                format!("call{n}"),
                CallDirection::Inbound,
                "+49",
                "800",
                at_day(day, 3600),
            );
            b.recording(rel.into());
            b.ended(at_day(day, 3700), CallOutcome::Answered, None, "");
            records.push(b.finish());
        }
        // A call that was not recorded stays whatever its age.
        let mut b = CallRecordBuilder::new(
            "plain",
            CallDirection::Inbound,
            "+49",
            "800",
            at_day(day0, 0),
        );
        b.ended(at_day(day0, 1), CallOutcome::Abandoned, None, "");
        records.push(b.finish());
        // A recording without a record in an expired day directory.
        std::fs::write(dir.join(dir_name(day0)).join("echo-7.wav"), b"RIFF").unwrap();
        std::fs::write(dir.join(dir_name(day0)).join("notes.txt"), b"keep").unwrap();
        // Directories that are not days are left alone.
        std::fs::create_dir_all(dir.join("other")).unwrap();
        std::fs::write(dir.join("other/x.wav"), b"RIFF").unwrap();

        let mut store = Store::open(&dir.join("db.sqlite")).unwrap();
        let (writer, handle) = Store::open(&dir.join("db.sqlite"))
            .unwrap()
            .spawn_writer()
            .unwrap();
        drop(writer);
        let records_writer = handle.call_record_writer();
        for r in records {
            records_writer.write(r);
        }
        handle.close().unwrap();

        // Keep 5 days, now = day0 + 7 12:00: calls 1 and 2 (days 0, 1)
        // expire, and both day directories ended before the cutoff.
        let now = at_day(day0 + 7, 12 * 3600);
        let report = run(&mut store, dir, now, Duration::from_secs(5 * DAY)).unwrap();
        assert_eq!(report.records, 2);
        assert_eq!(report.errors, 0);
        // call1 wav+json, call2 wav+json, echo-7.wav.
        assert_eq!(report.files, 5);
        assert_eq!(
            report.directories, 1,
            "day1 is empty and goes; day0 keeps notes.txt"
        );
        assert!(!dir.join(dir_name(day0)).join("call1-1.wav").exists());
        assert!(dir.join(dir_name(day0)).join("notes.txt").exists());
        assert!(!dir.join(dir_name(day0 + 1)).exists());
        assert!(dir.join(dir_name(day0 + 10)).join("call3-1.wav").exists());
        assert!(dir.join("other/x.wav").exists());
        let mut left: Vec<String> = store
            .call_records(&CallRecordFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        left.sort();
        assert_eq!(left, vec!["call3".to_owned(), "plain".to_owned()]);
        // A second run finds nothing.
        let again = run(&mut store, dir, now, Duration::from_secs(5 * DAY)).unwrap();
        assert_eq!((again.records, again.files), (0, 0));
    }

    #[test]
    fn day_names() {
        assert_eq!(day_of("19700101"), Some(0));
        assert_eq!(day_of("19700102"), Some(1));
        for bad in ["1970010", "197001011", "1970-1-1", "19701301", "abcdefgh"] {
            assert_eq!(day_of(bad), None, "{bad}");
        }
    }
}

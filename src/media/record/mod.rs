//! Call recording: one stereo 16-bit PCM WAV per call at 8 kHz, caller on
//! the left, the other party on the right, plus a JSON sidecar.
//!
//! Two halves, so the media path never touches the disk:
//! - [`Recording`] (sans-IO, one per call, owned by the media session)
//!   turns each 20 ms tick's two frames into one interleaved [`Chunk`],
//!   padding every gap with silence so both channels stay on the same
//!   clock;
//! - the writer thread ([`spawn`]) owns the open files. Media workers hand
//!   it one batch of chunks per tick through [`RecorderHandle::write`],
//!   which never blocks: when the queue is full the batch is dropped,
//!   counted, and later padded with silence in the file.

mod recording;
mod writer;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use recording::{Pause, Recording, RecordingSummary, MAX_PAD_FRAMES};
pub use writer::{
    spawn, EndedBy, RecorderConfig, RecorderHandle, RecorderThread, ShutdownReport, Sidecar,
};

use crate::calendar::civil_from_days;
use crate::media::wav::WavError;

/// Recordings are written at the media bus rate.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples per channel in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 160;
/// Recordings are stereo: caller left, other party right.
pub const CHANNELS: u16 = 2;

/// Identifies one recording between the media session and the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordingId(pub u64);

/// Interleaved stereo samples for one recording (a whole number of
/// frames: 320 samples per 20 ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub id: RecordingId,
    pub samples: Vec<i16>,
}

/// Who and what a recording is, stored in its sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    /// Start of the recording, RFC 3339 in UTC (see [`rfc3339_utc`]).
    pub started: String,
    /// What the left channel holds (e.g. "caller").
    pub left: String,
    /// What the right channel holds (e.g. "agent" or "gateway").
    pub right: String,
}

/// Why a recording operation failed. Errors on one recording never stop
/// the others.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("WAV error on {path}: {source}")]
    Wav {
        path: PathBuf,
        #[source]
        source: WavError,
    },
    #[error("sidecar {path} could not be serialised: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The relative path was absolute or climbed out of the recording dir.
    #[error("recording path {path} must be relative and stay inside the recording dir")]
    BadPath { path: PathBuf },
    /// The writer queue was full: the batch was dropped (already counted
    /// per recording and padded with silence later; callers may ignore it).
    #[error("recorder queue full: dropped {chunks} chunk(s)")]
    Full { chunks: usize },
    /// The writer thread has stopped.
    #[error("recorder thread is gone")]
    Closed,
    #[error("could not start the recorder thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("recorder thread panicked")]
    ThreadPanicked,
}

/// Formats `t` as RFC 3339 in UTC with second precision, e.g.
/// `2026-11-23T02:59:08Z` (RFC 3339 §5.6). Times before 1970 clamp to the
/// epoch.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339_utc() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.
        assert_eq!(at(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(at(1_795_402_748), "2026-11-23T02:59:08Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}

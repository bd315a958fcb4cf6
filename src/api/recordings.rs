//! Recordings for quality staff: search, metadata, the WAV with HTTP
//! Range support (RFC 9110 §14), deletion.
//!
//! A recording is named by the id of its call record (the caller leg's
//! Call-ID); the file is the one the record names, relative to
//! `recording.dir`. Client input never becomes a path: the id is looked
//! up in the store, and the stored path must be relative and plain
//! (no `..`, no root) before it is joined to the directory.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::records::{time_range, QualityView, RecordView};
use super::state::ApiState;
use crate::call::record::CallRecord;
use crate::media::record::Sidecar;
use crate::storage::{CallRecordFilter, MAX_CALL_RECORDS};

/// Where `relative` (a path from a call record) is under `dir`, if it is
/// a plain relative path to a WAV file.
pub fn resolve(dir: &Path, relative: &Path) -> Option<PathBuf> {
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    let wav = relative.extension().is_some_and(|e| e == "wav");
    (plain && wav && relative.components().next().is_some()).then(|| dir.join(relative))
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No Range, one we ignore (not bytes, malformed, or several ranges):
    /// the whole file with 200.
    Full,
    /// Bytes `start..=end`, with 206.
    Part { start: u64, end: u64 },
    /// No byte of the range exists: 416.
    Unsatisfiable,
}

/// The file's validators: a strong entity tag from its length and
/// modification time (a recording still being written changes both), and
/// its Last-Modified date.
fn validators(len: u64, modified: Option<std::time::SystemTime>) -> (String, Option<String>) {
    let nanos = modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    (
        format!("\"{len:x}-{nanos:x}\""),
        modified.map(crate::sip::message::http_date),
    )
}

/// RFC 9110 §13.1.5: a Range is honoured only when `If-Range` (if any)
/// names the current representation: its entity tag, compared strongly
/// (a weak tag never matches), or its Last-Modified date, exactly.
fn if_range_holds(if_range: Option<&str>, etag: &str, last_modified: Option<&str>) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(v) if v.starts_with("W/") => false,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => last_modified == Some(v),
    }
}

/// RFC 9110 §14.1.2 `bytes=` with a single range: `a-b`, `a-` or `-n`.
/// A header that does not parse is ignored (§14.2: a server MAY ignore
/// Range); several ranges are answered with the whole file rather than a
/// multipart body.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (start, "") => match number(start) {
            None => RangeRequest::Full,
            Some(s) if s >= len => RangeRequest::Unsatisfiable,
            Some(s) => RangeRequest::Part {
                start: s,
                end: len - 1,
            },
        },
        (start, end) => match (number(start), number(end)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= len {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Part {
                        start: s,
                        end: e.min(len - 1),
                    }
                }
            }
            _ => RangeRequest::Full,
        },
    }
}

/// Percent-encodes `id` for a URL path segment (everything but RFC 3986
/// unreserved characters).
pub fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?from=&to=&agent=&queue=&caller=&min_duration=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    from: Option<String>,
    to: Option<String>,
    agent: Option<String>,
    queue: Option<String>,
    caller: Option<String>,
    /// Seconds connected (talk + hold), at least.
    min_duration: Option<u64>,
    limit: Option<usize>,
}

/// One search hit.
#[derive(Debug, Serialize)]
pub struct RecordingHit {
    pub id: String,
    pub arrived: String,
    pub caller: String,
    pub dialled: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: &'static str,
    /// Talk plus hold: how long the call was connected and recorded.
    pub duration_ms: u64,
    /// Where the metadata and the audio are.
    pub href: String,
    pub audio: String,
}

fn hit(r: &CallRecord) -> RecordingHit {
    let id = encode_segment(&r.id);
    RecordingHit {
        id: r.id.clone(),
        arrived: super::time::format_rfc3339(r.arrived),
        caller: r.caller.clone(),
        dialled: r.dialled.clone(),
        queue: r.queue.as_ref().map(|q| q.as_str().to_owned()),
        agent: r.agent.as_ref().map(|a| a.as_str().to_owned()),
        outcome: r.outcome.as_str(),
        duration_ms: u64::try_from((r.talk + r.hold).as_millis()).unwrap_or(u64::MAX),
        href: format!("/api/v1/recordings/{id}"),
        audio: format!("/api/v1/recordings/{id}/audio"),
    }
}

pub async fn search(
    caller: Caller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<RecordingQuery>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecordings)?;
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let mut filter = CallRecordFilter {
        from,
        to,
        recorded: true,
        min_connected: q.min_duration.map(std::time::Duration::from_secs),
        ..Default::default()
    };
    if let Some(agent) = &q.agent {
        filter.agent = Some(
            agent
                .parse()
                .map_err(|e| ApiError::bad_request(format!("agent {agent:?}: {e}")))?,
        );
    }
    if let Some(queue) = &q.queue {
        filter.queue = Some(
            queue
                .parse()
                .map_err(|e| ApiError::bad_request(format!("queue {queue:?}: {e}")))?,
        );
    }
    filter.caller = q.caller.clone().filter(|c| !c.is_empty());
    if let Some(limit) = q.limit {
        if limit == 0 || limit > MAX_CALL_RECORDS {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_CALL_RECORDS}"
            )));
        }
        filter.limit = Some(limit);
    }
    let records = state
        .blocking(move |store| Ok(store.call_records(&filter)?))
        .await?;
    let hits: Vec<RecordingHit> = records.iter().map(hit).collect();
    Ok(Json(json!({ "recordings": hits })).into_response())
}

/// The record with a recording and the recording's absolute path.
async fn locate(state: &ApiState, id: &str) -> Result<(CallRecord, PathBuf, PathBuf), ApiError> {
    let lookup = id.to_owned();
    let record = state
        .blocking(move |store| Ok(store.call_record(&lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call record {id:?}")))?;
    let Some(relative) = record.recording.clone() else {
        return Err(ApiError::not_found(format!("call {id:?} has no recording")));
    };
    let Some(path) = resolve(&state.recordings_dir, &relative) else {
        return Err(ApiError::internal(format!(
            "call record {id:?} names an unsafe recording path {}",
            relative.display()
        )));
    };
    Ok((record, relative, path))
}

/// The sidecar next to `wav`, if it exists and parses.
fn read_sidecar(wav: &Path) -> Option<Sidecar> {
    let path = wav.with_extension("json");
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable recording sidecar");
            None
        }
    }
}

#[derive(Debug, Serialize)]
struct LegInfo {
    channel: &'static str,
    /// What the channel holds (`caller`, `agent`, `customer`, ...).
    party: String,
    /// The caller's number or the agent's id.
    who: Option<String>,
    quality: Option<QualityView>,
}

/// Metadata: the call record, the recording's file, duration, pauses and
/// gaps (from the sidecar), and each leg's media quality.
pub async fn metadata(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecordings)?;
    let (record, _, path) = locate(&state, &id).await?;
    let probe = path.clone();
    let (bytes, sidecar) = tokio::task::spawn_blocking(move || {
        (
            std::fs::metadata(&probe).ok().map(|m| m.len()),
            read_sidecar(&probe),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?;
    let Some(bytes) = bytes else {
        return Err(ApiError::not_found(format!(
            "the recording file of call {id:?} is missing"
        )));
    };
    let left = sidecar
        .as_ref()
        .map_or("caller".to_owned(), |s| s.meta.left.clone());
    let right = sidecar
        .as_ref()
        .map_or("agent".to_owned(), |s| s.meta.right.clone());
    let legs = [
        LegInfo {
            channel: "left",
            party: left,
            who: Some(record.caller.clone()),
            quality: record.caller_quality.as_ref().map(QualityView::from),
        },
        LegInfo {
            channel: "right",
            party: right,
            who: record.agent.as_ref().map(|a| a.as_str().to_owned()),
            quality: record.agent_quality.as_ref().map(QualityView::from),
        },
    ];
    let file = sidecar.as_ref().map(|s| {
        json!({
            "started": s.meta.started,
            "sample_rate": s.sample_rate,
            "channels": s.channels,
            "complete": s.complete,
            "ended_by": s.ended_by,
            "frames": s.frames,
            "duration_s": s.duration_s,
            "pauses": s.pauses,
            "gap_frames_left": s.gap_frames_left,
            "gap_frames_right": s.gap_frames_right,
            "unpadded_frames": s.unpadded_frames,
            "dropped_chunks": s.dropped_chunks,
            "dropped_frames": s.dropped_frames,
            "error": s.error,
        })
    });
    let enc = encode_segment(&id);
    Ok(Json(json!({
        "recording": {
            "id": id,
            "bytes": bytes,
            "audio": format!("/api/v1/recordings/{enc}/audio"),
            "file": file,
            "legs": legs,
            "record": RecordView::from(&record),
        }
    }))
    .into_response())
}

/// A file name safe in a Content-Disposition header.
fn download_name(path: &Path) -> String {
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "recording.wav".to_owned()
    } else {
        name
    }
}

/// The WAV as written, byte for byte; `Range: bytes=` gives 206 with the
/// bytes asked for, 416 when none exist, unless `If-Range` names another
/// version of the file (then 200 with all of it).
pub async fn audio(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecordings)?;
    let (_, _, path) = locate(&state, &id).await?;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!(
                "the recording file of call {id:?} is missing"
            )))
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "opening {}: {e}",
                path.display()
            )))
        }
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?;
    let len = meta.len();
    let (etag, last_modified) = validators(len, meta.modified().ok());
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_holds(if_range, &etag, last_modified.as_deref()));
    let (status, start, count) = match parse_range(range, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeRequest::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { length: len }),
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(format!("seeking {}: {e}", path.display())))?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = last_modified.and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        download_name(&path)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// Removes `path`; a file already gone is fine.
fn remove(path: &Path) -> Result<bool, std::io::Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes the WAV and its sidecar, then clears the recording from the
/// call record (which stays, for reports). Admin only.
pub async fn delete(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Access::DeleteRecordings)?;
    let (_, relative, path) = locate(&state, &id).await?;
    let record_id = id.clone();
    state
        .blocking(move |store| {
            for p in [path.clone(), path.with_extension("json")] {
                remove(&p)
                    .map_err(|e| ApiError::internal(format!("deleting {}: {e}", p.display())))?;
            }
            store.forget_recording(&record_id, &relative)?;
            Ok(())
        })
        .await?;
    state.counters.recordings_deleted.inc();
    tracing::info!(call = %id, "recording deleted through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_wav_paths_resolve() {
        let dir = Path::new("/var/rec");
        assert_eq!(
            resolve(dir, Path::new("20261123/abc-1.wav")),
            Some(PathBuf::from("/var/rec/20261123/abc-1.wav"))
        );
        for bad in [
            "../etc/passwd.wav",
            "20261123/../../x.wav",
            "/etc/x.wav",
            "./x.wav",
            "20261123/abc.json",
            "",
        ] {
            assert_eq!(resolve(dir, Path::new(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn if_range_names_the_current_version_or_the_range_is_ignored() {
        let modified = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        let (etag, date) = validators(1000, Some(modified));
        assert_eq!(date.as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        let date = date.unwrap_or_default();
        assert!(if_range_holds(None, &etag, Some(&date)));
        assert!(if_range_holds(Some(&etag), &etag, Some(&date)));
        assert!(if_range_holds(Some(&date), &etag, Some(&date)));
        // Another length (still being written) or time: another version.
        let (grown, _) = validators(1001, Some(modified));
        assert_ne!(grown, etag);
        assert!(!if_range_holds(Some(&grown), &etag, Some(&date)));
        assert!(!if_range_holds(
            Some("Sun, 06 Nov 1994 08:49:38 GMT"),
            &etag,
            Some(&date)
        ));
        // A weak tag never matches (strong comparison), even the same one.
        assert!(!if_range_holds(
            Some(&format!("W/{etag}")),
            &etag,
            Some(&date)
        ));
        assert!(!if_range_holds(Some(&date), &etag, None));
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Full);
        assert_eq!(r("bytes=0-99"), Part { start: 0, end: 99 });
        assert_eq!(
            r("bytes=990-2000"),
            Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=500-"),
            Part {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-100"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r("bytes=-5000"), Part { start: 0, end: 999 });
        assert_eq!(
            r("bytes=999-999"),
            Part {
                start: 999,
                end: 999
            }
        );
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=1000-1001"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), Unsatisfiable);
        // Ignored: several ranges, other units, nonsense.
        assert_eq!(r("bytes=0-1,5-6"), Full);
        assert_eq!(r("items=0-1"), Full);
        assert_eq!(r("bytes=5-1"), Full);
        assert_eq!(r("bytes=a-b"), Full);
        assert_eq!(r("bytes=-"), Full);
        assert_eq!(r("bytes=+1-2"), Full);
    }

    #[test]
    fn ids_are_encoded_for_paths() {
        assert_eq!(
            encode_segment("a84b4c76e66710@pc33/x y"),
            "a84b4c76e66710%40pc33%2Fx%20y"
        );
        assert_eq!(encode_segment("plain-id_1.~"), "plain-id_1.~");
    }
}

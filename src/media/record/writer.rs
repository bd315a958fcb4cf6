//! The recording writer thread: owns every open WAV file and sidecar, so
//! blocking file I/O never runs on a media worker.
//!
//! Queueing: one message per worker tick carries the chunks of all the
//! worker's recordings. Write batches are bounded by `queue`: when that many
//! are waiting, [`RecorderHandle::write`] drops the batch instead of
//! blocking, counts it per recording, and the thread later pads the file
//! with the same amount of silence, so a recording stays as long as the
//! call. Start and Finish travel on the same (ordered) channel but are never
//! dropped: losing one would lose a whole recording or leave it unfinished,
//! and there are only two per call. That is why the bound is an atomic
//! count of queued batches in front of an unbounded channel rather than a
//! `sync_channel`, which would drop control messages along with audio.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::{Chunk, Pause, RecordError, RecordingId, RecordingMeta, RecordingSummary};
use super::{CHANNELS, SAMPLE_RATE};
use crate::media::wav::WavWriter;

/// Where recordings go and how many write batches may wait.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub dir: PathBuf,
    /// Write batches (worker ticks) that may be queued before new ones are
    /// dropped. 0 drops everything (useful only in tests).
    pub queue: usize,
}

/// Why a sidecar was finalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The media session finished the recording.
    Finish,
    /// The recorder shut down with the recording still open.
    Shutdown,
}

/// The JSON sidecar next to each WAV (`<name>.json`). Written at start
/// with `complete: false` and rewritten (atomically) at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    #[serde(flatten)]
    pub meta: RecordingMeta,
    /// File name of the WAV, relative to the sidecar's directory.
    pub wav: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// True once the WAV was finalised (sizes written and fsynced).
    pub complete: bool,
    pub ended_by: Option<EndedBy>,
    /// Frames in the WAV and their duration.
    pub frames: Option<u64>,
    pub duration_s: Option<f64>,
    /// From the session's [`RecordingSummary`]; absent when the recorder
    /// shut down before the session finished the recording.
    pub pauses: Option<Vec<Pause>>,
    pub gap_frames_left: Option<u64>,
    pub gap_frames_right: Option<u64>,
    pub unpadded_frames: Option<u64>,
    /// Chunks dropped on a full queue, and the frames of silence written
    /// in their place.
    pub dropped_chunks: u64,
    pub dropped_frames: u64,
    /// The first I/O error on this recording, if any.
    pub error: Option<String>,
}

/// What the thread did on its way out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Recordings still open at shutdown, finalised with
    /// `ended_by: "shutdown"`.
    pub ended_by_shutdown: usize,
    /// Recordings that hit an I/O error during the thread's life.
    pub failed: usize,
}

enum Message {
    Start {
        id: RecordingId,
        relative_path: PathBuf,
        meta: Box<RecordingMeta>,
    },
    /// `seq` orders it against dropped batches (see [`Dropped`]).
    Write {
        seq: u64,
        batch: Vec<Chunk>,
    },
    Finish {
        id: RecordingId,
        summary: RecordingSummary,
    },
    Shutdown,
    /// Blocks the thread until the sender side is dropped (tests use it to
    /// fill the queue deterministically).
    #[cfg(test)]
    Stall(mpsc::Receiver<()>),
}

/// Batches dropped for one recording: the count, and per drop its batch
/// sequence number and frames, so the thread pads the silence exactly
/// where the audio was lost (after the batches sent before it), not
/// wherever it happens to notice the drop.
#[derive(Debug, Default, Clone)]
struct Dropped {
    chunks: u64,
    frames: u64,
    at: Vec<(u64, u64)>,
}

struct Shared {
    capacity: usize,
    /// Write batches sent and not yet received by the thread.
    queued: AtomicUsize,
    /// Sequence number of the next write attempt (sent or dropped).
    seq: AtomicU64,
    /// Set after a drop so the thread looks at `drops` only when needed.
    drops_pending: AtomicBool,
    drops: Mutex<HashMap<RecordingId, Dropped>>,
}

/// Feeds the writer thread; cheap to clone, one per media worker.
#[derive(Clone)]
pub struct RecorderHandle {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

/// The running writer thread.
pub struct RecorderThread {
    thread: JoinHandle<ShutdownReport>,
}

/// Starts the writer thread.
pub fn spawn(config: RecorderConfig) -> Result<(RecorderHandle, RecorderThread), RecordError> {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        capacity: config.queue,
        queued: AtomicUsize::new(0),
        seq: AtomicU64::new(0),
        drops_pending: AtomicBool::new(false),
        drops: Mutex::new(HashMap::new()),
    });
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || Writer::new(config.dir, thread_shared).run(rx))
        .map_err(RecordError::Spawn)?;
    Ok((RecorderHandle { tx, shared }, RecorderThread { thread }))
}

impl RecorderHandle {
    /// Opens `<dir>/<relative_path>` (creating directories) and its
    /// sidecar. Never blocks; errors opening the file are logged by the
    /// thread and the recording's writes are then ignored.
    pub fn start(
        &self,
        id: RecordingId,
        relative_path: PathBuf,
        meta: RecordingMeta,
    ) -> Result<(), RecordError> {
        let inside = relative_path.components().next().is_some()
            && relative_path
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(RecordError::BadPath {
                path: relative_path,
            });
        }
        self.send(Message::Start {
            id,
            relative_path,
            meta: Box::new(meta),
        })
    }

    /// Queues one tick's chunks (any number of recordings). Never blocks:
    /// with `queue` batches already waiting, the batch is dropped, counted
    /// per recording (and padded with silence in the file) and
    /// [`RecordError::Full`] is returned.
    pub fn write(&self, batch: Vec<Chunk>) -> Result<(), RecordError> {
        if batch.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        let seq = s.seq.fetch_add(1, Ordering::Relaxed);
        if s.queued.fetch_add(1, Ordering::AcqRel) >= s.capacity {
            s.queued.fetch_sub(1, Ordering::AcqRel);
            let chunks = batch.len();
            s.note_dropped(seq, &batch);
            return Err(RecordError::Full { chunks });
        }
        self.tx.send(Message::Write { seq, batch }).map_err(|_| {
            s.queued.fetch_sub(1, Ordering::AcqRel);
            RecordError::Closed
        })
    }

    /// Finalises the WAV and rewrites the sidecar with the summary.
    pub fn finish(&self, id: RecordingId, summary: RecordingSummary) -> Result<(), RecordError> {
        self.send(Message::Finish { id, summary })
    }

    /// Asks the thread to finalise everything still open and stop.
    pub fn shutdown(&self) -> Result<(), RecordError> {
        self.send(Message::Shutdown)
    }

    fn send(&self, m: Message) -> Result<(), RecordError> {
        self.tx.send(m).map_err(|_| RecordError::Closed)
    }

    #[cfg(test)]
    fn stall(&self) -> Result<mpsc::Sender<()>, RecordError> {
        let (release, wait) = mpsc::channel();
        self.send(Message::Stall(wait))?;
        Ok(release)
    }
}

impl Shared {
    fn note_dropped(&self, seq: u64, batch: &[Chunk]) {
        let mut drops = self.drops.lock().unwrap_or_else(PoisonError::into_inner);
        for c in batch {
            let d = drops.entry(c.id).or_default();
            let frames = (c.samples.len() / usize::from(CHANNELS)) as u64;
            d.chunks += 1;
            d.frames += frames;
            d.at.push((seq, frames));
        }
        drop(drops);
        self.drops_pending.store(true, Ordering::Release);
    }
}

impl RecorderThread {
    /// Waits for the thread to stop: after [`RecorderHandle::shutdown`]
    /// or once every handle is dropped. Open recordings are finalised with
    /// `ended_by: "shutdown"`.
    pub fn join(self) -> Result<ShutdownReport, RecordError> {
        self.thread.join().map_err(|_| RecordError::ThreadPanicked)
    }
}

struct Open {
    /// None after an I/O error: later writes for it are ignored.
    wav: Option<WavWriter>,
    wav_path: PathBuf,
    sidecar_path: PathBuf,
    sidecar: Sidecar,
    /// Silence owed for dropped chunks: (batch sequence, frames), written
    /// before the first later chunk.
    pad: Vec<(u64, u64)>,
}

struct Writer {
    dir: PathBuf,
    shared: Arc<Shared>,
    open: HashMap<RecordingId, Open>,
    /// Drops noted for recordings whose Start the thread has not seen yet.
    orphan_drops: HashMap<RecordingId, Dropped>,
    report: ShutdownReport,
}

impl Writer {
    fn new(dir: PathBuf, shared: Arc<Shared>) -> Self {
        Self {
            dir,
            shared,
            open: HashMap::new(),
            orphan_drops: HashMap::new(),
            report: ShutdownReport::default(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Message>) -> ShutdownReport {
        while let Ok(m) = rx.recv() {
            match m {
                Message::Start {
                    id,
                    relative_path,
                    meta,
                } => self.start(id, &relative_path, *meta),
                Message::Write { seq, batch } => {
                    self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                    self.collect_drops();
                    for chunk in &batch {
                        self.write(seq, chunk);
                    }
                }
                Message::Finish { id, summary } => {
                    self.collect_drops();
                    self.orphan_drops.remove(&id);
                    if let Some(open) = self.open.remove(&id) {
                        self.finalise(id, open, Some(summary), EndedBy::Finish);
                    }
                }
                Message::Shutdown => break,
                #[cfg(test)]
                Message::Stall(wait) => {
                    let _ = wait.recv();
                }
            }
        }
        self.collect_drops();
        let open: Vec<_> = self.open.drain().collect();
        for (id, o) in open {
            self.report.ended_by_shutdown += 1;
            self.finalise(id, o, None, EndedBy::Shutdown);
        }
        self.report
    }

    fn start(&mut self, id: RecordingId, relative: &Path, meta: RecordingMeta) {
        if self.open.contains_key(&id) {
            warn!(
                recording = id.0,
                "recording started twice; second start ignored"
            );
            return;
        }
        let wav_path = self.dir.join(relative);
        let sidecar_path = wav_path.with_extension("json");
        let wav_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sidecar = Sidecar {
            meta,
            wav: wav_name,
            sample_rate: SAMPLE_RATE,
            channels: CHANNELS,
            complete: false,
            ended_by: None,
            frames: None,
            duration_s: None,
            pauses: None,
            gap_frames_left: None,
            gap_frames_right: None,
            unpadded_frames: None,
            dropped_chunks: 0,
            dropped_frames: 0,
            error: None,
        };
        let opened = create_parent(&wav_path)
            .and_then(|()| {
                WavWriter::create(&wav_path, SAMPLE_RATE, CHANNELS).map_err(|source| {
                    RecordError::Wav {
                        path: wav_path.clone(),
                        source,
                    }
                })
            })
            .and_then(|wav| write_sidecar(&sidecar_path, &sidecar).map(|()| wav));
        match opened {
            Ok(wav) => {
                let mut open = Open {
                    wav: Some(wav),
                    wav_path,
                    sidecar_path,
                    sidecar,
                    pad: Vec::new(),
                };
                if let Some(d) = self.orphan_drops.remove(&id) {
                    add_drops(id, &mut open, d);
                }
                self.open.insert(id, open);
                debug!(recording = id.0, "recording started");
            }
            Err(e) => {
                self.report.failed += 1;
                warn!(recording = id.0, error = %e, "recording could not be started");
            }
        }
    }

    /// Moves drops noted by the handles onto the open recordings.
    fn collect_drops(&mut self) {
        if !self.shared.drops_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let taken = std::mem::take(
            &mut *self
                .shared
                .drops
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (id, d) in taken {
            match self.open.get_mut(&id) {
                Some(open) => add_drops(id, open, d),
                None => {
                    let o = self.orphan_drops.entry(id).or_default();
                    o.chunks += d.chunks;
                    o.frames += d.frames;
                    o.at.extend(d.at);
                }
            }
        }
    }

    fn write(&mut self, seq: u64, chunk: &Chunk) {
        if let Some(open) = self.open.get_mut(&chunk.id) {
            if append(chunk.id, open, seq, &chunk.samples) {
                self.report.failed += 1;
            }
        }
    }

    fn finalise(
        &mut self,
        id: RecordingId,
        mut open: Open,
        summary: Option<RecordingSummary>,
        ended_by: EndedBy,
    ) {
        // Silence owed for chunks dropped at the very end.
        if !open.pad.is_empty() && append(id, &mut open, u64::MAX, &[]) {
            self.report.failed += 1;
        }
        let s = &mut open.sidecar;
        s.ended_by = Some(ended_by);
        if let Some(sum) = summary {
            s.pauses = Some(sum.pauses);
            s.gap_frames_left = Some(sum.gap_frames_left);
            s.gap_frames_right = Some(sum.gap_frames_right);
            s.unpadded_frames = Some(sum.unpadded_frames);
        }
        if let Some(wav) = open.wav.take() {
            match wav.finish() {
                Ok(frames) => {
                    s.complete = true;
                    s.frames = Some(u64::from(frames));
                    s.duration_s = Some(f64::from(frames) / f64::from(SAMPLE_RATE));
                }
                Err(source) => {
                    let e = RecordError::Wav {
                        path: open.wav_path.clone(),
                        source,
                    };
                    warn!(recording = id.0, error = %e, "recording could not be finalised");
                    s.error.get_or_insert_with(|| e.to_string());
                    self.report.failed += 1;
                }
            }
        }
        if let Err(e) = write_sidecar(&open.sidecar_path, &open.sidecar) {
            warn!(recording = id.0, error = %e, "recording sidecar could not be written");
            self.report.failed += 1;
        }
        debug!(recording = id.0, ?ended_by, "recording finalised");
    }
}

/// Writes the silence owed for chunks dropped before batch `seq`, then
/// `samples`. Returns true
/// when this call hit an I/O error (the recording then stops; the file
/// stays valid up to its last header update).
fn append(id: RecordingId, open: &mut Open, seq: u64, samples: &[i16]) -> bool {
    let Some(wav) = open.wav.as_mut() else {
        return false;
    };
    let owed: u64 = open
        .pad
        .iter()
        .filter(|&&(at, _)| at < seq)
        .map(|&(_, f)| f)
        .sum();
    open.pad.retain(|&(at, _)| at >= seq);
    let mut result = Ok(());
    let mut left = owed;
    while left > 0 && result.is_ok() {
        // At most one second at a time keeps the buffer small.
        let n = left.min(u64::from(SAMPLE_RATE));
        let silence = vec![0i16; usize::try_from(n).unwrap_or(0) * usize::from(CHANNELS)];
        result = wav.write_frames(&silence);
        left -= n;
    }
    let result = result.and_then(|()| wav.write_frames(samples));
    let Err(source) = result else {
        return false;
    };
    let e = RecordError::Wav {
        path: open.wav_path.clone(),
        source,
    };
    warn!(recording = id.0, error = %e, "recording write failed; recording stopped");
    open.sidecar.error = Some(e.to_string());
    // Dropping the writer commits what it can.
    open.wav = None;
    true
}

fn add_drops(id: RecordingId, open: &mut Open, d: Dropped) {
    if open.sidecar.dropped_chunks == 0 && d.chunks > 0 {
        // Once per recording: a full queue means the disk or this thread
        // cannot keep up, and every later drop would say the same.
        warn!(
            recording = id.0,
            path = %open.wav_path.display(),
            "recorder queue full: audio dropped and replaced by silence"
        );
    }
    open.sidecar.dropped_chunks += d.chunks;
    open.sidecar.dropped_frames += d.frames;
    open.pad.extend(d.at);
}

fn create_parent(path: &Path) -> Result<(), RecordError> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|source| RecordError::Io {
            path: parent.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

/// Writes the sidecar to a temporary file, fsyncs it and renames it over
/// the old one, so a reader (or a crash) sees either the old or the new
/// sidecar, never half of one.
fn write_sidecar(path: &Path, sidecar: &Sidecar) -> Result<(), RecordError> {
    let json = serde_json::to_vec_pretty(sidecar).map_err(|source| RecordError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("json.tmp");
    let io = |source, p: &Path| RecordError::Io {
        path: p.to_path_buf(),
        source,
    };
    let mut f = File::create(&tmp).map_err(|e| io(e, &tmp))?;
    f.write_all(&json).map_err(|e| io(e, &tmp))?;
    f.sync_all().map_err(|e| io(e, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| io(e, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::{ToneDetector, ToneGenerator};
    use crate::media::pacer::FrameIndex;
    use crate::media::record::{Recording, FRAME_SAMPLES};
    use crate::media::wav::WavReader;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn meta() -> RecordingMeta {
        RecordingMeta {
            call_id: "abc@host".into(),
            caller: "1001".into(),
            callee: "*45123".into(),
            started: "2026-11-23T03:00:00Z".into(),
            left: "caller".into(),
            right: "agent".into(),
        }
    }

    fn read_sidecar(path: &Path) -> Sidecar {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn tone_frame(g: &mut ToneGenerator) -> [i16; FRAME_SAMPLES] {
        let mut f = [0i16; FRAME_SAMPLES];
        g.fill(&mut f);
        f
    }

    /// 697 Hz only on the left, 1209 Hz only on the right, random gaps on
    /// each side, skipped ticks and a pause: read back, each 20 ms frame of
    /// each channel holds its own tone, or silence exactly where a gap,
    /// skip or the pause was, and never the other side's tone.
    #[test]
    fn tones_stay_on_their_channels_through_gaps_and_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let (h, t) = spawn(RecorderConfig {
            dir: dir.path().to_path_buf(),
            queue: 10_000,
        })
        .unwrap();
        let id = RecordingId(9);
        h.start(id, PathBuf::from("20261123/abc.wav"), meta())
            .unwrap();
        let sidecar_path = dir.path().join("20261123/abc.json");
        let start = 50u64;
        let mut rec = Recording::new(id, FrameIndex(start));
        let (mut gl, mut gr) = (
            ToneGenerator::new(697.0, 8000, 8000),
            ToneGenerator::new(1209.0, 8000, 8000),
        );
        let mut rng = StdRng::seed_from_u64(3);
        // Per frame of the file: (left expected tone?, right expected tone?)
        let mut expect = Vec::new();
        let ticks = 500u64;
        let mut frame = start;
        while frame < start + ticks {
            let i = frame - start;
            if i == 200 {
                rec.pause(FrameIndex(frame));
            }
            if i == 300 {
                rec.resume(FrameIndex(frame));
            }
            let paused = (200..300).contains(&i);
            let (l, r) = (tone_frame(&mut gl), tone_frame(&mut gr));
            let l_on = !rng.random_ratio(1, 8);
            let r_on = !rng.random_ratio(1, 8);
            let mut batch = Vec::new();
            rec.tick(
                FrameIndex(frame),
                l_on.then_some(&l[..]),
                r_on.then_some(&r[..]),
                &mut batch,
            );
            let padded = batch[0].samples.len() / (2 * FRAME_SAMPLES) - 1;
            expect.extend(std::iter::repeat_n((false, false), padded));
            expect.push((l_on && !paused, r_on && !paused));
            h.write(batch).unwrap();
            frame += if rng.random_ratio(1, 40) { 3 } else { 1 };
        }
        // Before finish, the sidecar says incomplete (the thread writes it
        // asynchronously, so wait for it).
        let waited = std::time::Instant::now();
        while !sidecar_path.exists() && waited.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let early = read_sidecar(&sidecar_path);
        assert!(!early.complete);
        assert_eq!(early.meta, meta());
        h.finish(id, rec.summary()).unwrap();
        drop(h);
        assert_eq!(t.join().unwrap(), ShutdownReport::default());

        let wav = WavReader::open_recording(dir.path().join("20261123/abc.wav")).unwrap();
        assert_eq!((wav.sample_rate(), wav.channels()), (8000, 2));
        let total_ticks = frame - start;
        assert_eq!(wav.frames() as u64, total_ticks * FRAME_SAMPLES as u64);
        assert_eq!(expect.len() as u64, total_ticks);
        let det = ToneDetector::new(8000, &[697.0, 1209.0]);
        for (n, (frame, &(l_on, r_on))) in wav
            .samples()
            .chunks_exact(2 * FRAME_SAMPLES)
            .zip(&expect)
            .enumerate()
        {
            let left: Vec<i16> = frame.iter().step_by(2).copied().collect();
            let right: Vec<i16> = frame.iter().skip(1).step_by(2).copied().collect();
            let lf = det.detect(&left).map(|d| d.freq);
            let rf = det.detect(&right).map(|d| d.freq);
            assert_eq!(lf, l_on.then_some(697.0), "left frame {n}");
            assert_eq!(rf, r_on.then_some(1209.0), "right frame {n}");
            if !l_on {
                assert!(left.iter().all(|&s| s == 0), "left frame {n} not silent");
            }
            if !r_on {
                assert!(right.iter().all(|&s| s == 0), "right frame {n} not silent");
            }
        }
        let side = read_sidecar(&sidecar_path);
        assert!(side.complete);
        assert_eq!(side.ended_by, Some(EndedBy::Finish));
        assert_eq!(side.frames, Some(total_ticks * FRAME_SAMPLES as u64));
        let pauses = side.pauses.unwrap();
        assert_eq!(pauses.len(), 1);
        assert!((pauses[0].start_s - 4.0).abs() < 1e-9 && (pauses[0].end_s - 6.0).abs() < 1e-9);
        assert!(side.gap_frames_left.unwrap() > 0 && side.gap_frames_right.unwrap() > 0);
        assert_eq!(side.dropped_chunks, 0);
        assert!(!dir.path().join("20261123/abc.json.tmp").exists());
    }

    /// A crash mid-call (the thread never finishes the file): the WAV
    /// still opens, with everything up to the last once-a-second header
    /// update. Simulated by stalling the thread after 2 s of audio and
    /// forgetting it, so neither finish nor the writer's Drop runs, then
    /// reading the file as another process would after the crash.
    #[test]
    fn a_crash_leaves_a_playable_file() {
        let dir = tempfile::tempdir().unwrap();
        let (h, t) = spawn(RecorderConfig {
            dir: dir.path().to_path_buf(),
            queue: 1000,
        })
        .unwrap();
        let id = RecordingId(1);
        h.start(id, PathBuf::from("crash.wav"), meta()).unwrap();
        let mut rec = Recording::new(id, FrameIndex(0));
        let f = [1234i16; FRAME_SAMPLES];
        for i in 0..100 {
            let mut batch = Vec::new();
            rec.tick(FrameIndex(i), Some(&f), Some(&f), &mut batch);
            h.write(batch).unwrap();
        }
        // Once the thread is stalled every write before it was handled.
        let (release, wait) = mpsc::channel::<()>();
        h.send(Message::Stall(wait)).unwrap();
        while h.shared.queued.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let wav = WavReader::open_recording(dir.path().join("crash.wav")).unwrap();
        assert_eq!(wav.channels(), 2);
        assert!(wav.frames() >= 12_000, "only {} frames", wav.frames());
        assert!(wav.samples().iter().all(|&s| s == 1234));
        let side = read_sidecar(&dir.path().join("crash.json"));
        assert!(!side.complete);
        // Never release the thread: its files are abandoned, as in a crash.
        std::mem::forget(release);
        std::mem::forget(h);
        std::mem::forget(t);
    }

    /// With room for one batch and the thread stalled, every later write
    /// returns at once with `Full`; the drops are counted in the sidecar
    /// and padded with silence so the file keeps the call's length.
    #[test]
    fn a_full_queue_drops_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (h, t) = spawn(RecorderConfig {
            dir: dir.path().to_path_buf(),
            queue: 1,
        })
        .unwrap();
        let (a, b) = (RecordingId(1), RecordingId(2));
        h.start(a, PathBuf::from("a.wav"), meta()).unwrap();
        h.start(b, PathBuf::from("b.wav"), meta()).unwrap();
        let release = h.stall().unwrap();
        let (mut ra, mut rb) = (
            Recording::new(a, FrameIndex(0)),
            Recording::new(b, FrameIndex(0)),
        );
        let f = [100i16; FRAME_SAMPLES];
        let began = std::time::Instant::now();
        let mut full = 0;
        for i in 0..500 {
            let mut batch = Vec::new();
            ra.tick(FrameIndex(i), Some(&f), Some(&f), &mut batch);
            rb.tick(FrameIndex(i), Some(&f), None, &mut batch);
            match h.write(batch) {
                Ok(()) => {}
                Err(RecordError::Full { chunks: 2 }) => full += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(began.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(full, 499);
        drop(release);
        h.finish(a, ra.summary()).unwrap();
        h.finish(b, rb.summary()).unwrap();
        // An unstarted recording is refused up front when the path escapes.
        assert!(matches!(
            h.start(RecordingId(3), PathBuf::from("../x.wav"), meta()),
            Err(RecordError::BadPath { .. })
        ));
        h.shutdown().unwrap();
        assert_eq!(t.join().unwrap(), ShutdownReport::default());
        for name in ["a", "b"] {
            let side = read_sidecar(&dir.path().join(format!("{name}.json")));
            assert_eq!(side.dropped_chunks, 499);
            assert_eq!(side.dropped_frames, 499 * 160);
            let wav = WavReader::open_recording(dir.path().join(format!("{name}.wav"))).unwrap();
            // The one batch that got through, then silence for the rest.
            assert_eq!(wav.frames(), 500 * 160);
            assert!(wav.samples()[..320].iter().step_by(2).all(|&s| s == 100));
            assert!(wav.samples()[320..].iter().all(|&s| s == 0));
        }
        assert!(matches!(h.write(vec![]), Ok(())));
    }

    /// Recordings still open when the handles go away are finalised and
    /// marked as ended by shutdown; a recording whose file cannot be
    /// created does not stop the others.
    #[test]
    fn shutdown_finalises_open_recordings_and_errors_stay_local() {
        let dir = tempfile::tempdir().unwrap();
        // A file where a directory must go makes one start fail.
        std::fs::write(dir.path().join("blocked"), b"x").unwrap();
        let (h, t) = spawn(RecorderConfig {
            dir: dir.path().to_path_buf(),
            queue: 100,
        })
        .unwrap();
        h.start(RecordingId(1), PathBuf::from("blocked/x.wav"), meta())
            .unwrap();
        h.start(RecordingId(2), PathBuf::from("ok/y.wav"), meta())
            .unwrap();
        let mut batch = Vec::new();
        for id in [1, 2] {
            Recording::new(RecordingId(id), FrameIndex(0)).tick(
                FrameIndex(0),
                Some(&[7; FRAME_SAMPLES]),
                None,
                &mut batch,
            );
        }
        h.write(batch).unwrap();
        drop(h);
        let report = t.join().unwrap();
        assert_eq!(
            report,
            ShutdownReport {
                ended_by_shutdown: 1,
                failed: 1
            }
        );
        let side = read_sidecar(&dir.path().join("ok/y.json"));
        assert!(side.complete);
        assert_eq!(side.ended_by, Some(EndedBy::Shutdown));
        assert_eq!(side.frames, Some(160));
        assert!(side.pauses.is_none());
        let wav = WavReader::open_recording(dir.path().join("ok/y.wav")).unwrap();
        assert_eq!(wav.frames(), 160);
    }
}

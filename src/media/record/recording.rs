//! The per-call, sans-IO half of recording: turns the two legs' frames into
//! interleaved stereo chunks that stay aligned with each other and with
//! wall time.
//!
//! Alignment is structural: every frame index from the start of the
//! recording produces exactly one 160-sample frame on *both* channels,
//! whatever happened to the audio (loss, hold, DTMF, pause, a late worker).
//! The two channels therefore can never drift apart, and the file's
//! duration is the call's wall-clock duration on the pacer's grid.

use serde::{Deserialize, Serialize};

use super::{Chunk, RecordingId, FRAME_SAMPLES};
use crate::media::pacer::FrameIndex;

/// Seconds per frame on the 20 ms media grid.
const FRAME_SECS: f64 = 0.020;

/// Upper bound on the silence one `tick` pads for skipped frame indexes
/// (5 minutes). The indexes come from our own pacer, so a larger jump is a
/// bug rather than a stall; padding it would allocate without bound. The
/// excess is reported in [`RecordingSummary::unpadded_frames`].
pub const MAX_PAD_FRAMES: u64 = 5 * 60 * 50;

/// A paused stretch of the recording (e.g. while a card number was read
/// out), in seconds from the start of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub start_s: f64,
    pub end_s: f64,
}

/// What a [`Recording`] wrote, for the sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingSummary {
    /// Stereo frames (sample pairs) produced: 160 per tick on the grid.
    pub frames: u64,
    /// Paused stretches; silence was written during them.
    pub pauses: Vec<Pause>,
    /// 20 ms frames with no audio for the left (caller) channel, outside
    /// pauses, including frames padded for skipped ticks.
    pub gap_frames_left: u64,
    /// Same for the right channel.
    pub gap_frames_right: u64,
    /// Frames a jump in the frame index left unpadded (see
    /// [`MAX_PAD_FRAMES`]); non-zero means the file is that much shorter
    /// than wall time.
    pub unpadded_frames: u64,
    /// Chunks lost to a full writer queue (filled in by the writer thread,
    /// which also pads them with silence).
    pub dropped_chunks: u64,
}

/// Aligns one call's two channels (caller left, other party right).
#[derive(Debug, Clone)]
pub struct Recording {
    id: RecordingId,
    started: u64,
    /// Next frame index expected; anything below it was already written.
    next: u64,
    /// Frame index of the current pause's start.
    paused_since: Option<u64>,
    summary: RecordingSummary,
}

impl Recording {
    /// A recording whose first frame is `started_frame` on the pacer grid.
    pub fn new(id: RecordingId, started_frame: FrameIndex) -> Self {
        Self {
            id,
            started: started_frame.0,
            next: started_frame.0,
            paused_since: None,
            summary: RecordingSummary::default(),
        }
    }

    pub fn id(&self) -> RecordingId {
        self.id
    }

    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Once per 20 ms tick: `left`/`right` are 160-sample frames or `None`
    /// (a gap, written as silence). Appends one interleaved chunk to
    /// `batch`: 320 samples, more when frame indexes were skipped since the
    /// last tick (the skipped frames are padded with silence first, so file
    /// time stays equal to wall time). A frame index already written
    /// (duplicate or out of order) is ignored.
    ///
    /// A frame shorter than 160 samples is padded with silence, a longer
    /// one truncated, so one tick is always exactly one frame per channel.
    pub fn tick(
        &mut self,
        frame: FrameIndex,
        left: Option<&[i16]>,
        right: Option<&[i16]>,
        batch: &mut Vec<Chunk>,
    ) {
        if frame.0 < self.next {
            return;
        }
        let skipped = frame.0 - self.next;
        let pad = skipped.min(MAX_PAD_FRAMES);
        self.summary.unpadded_frames += skipped - pad;
        let paused = self.paused_since.is_some();
        if !paused {
            self.summary.gap_frames_left += pad;
            self.summary.gap_frames_right += pad;
        }
        // `pad` is at most MAX_PAD_FRAMES, so this fits any usize >= 32 bits.
        let pad_samples = usize::try_from(pad).unwrap_or(0) * FRAME_SAMPLES * 2;
        let mut samples = vec![0i16; pad_samples + FRAME_SAMPLES * 2];
        let current = &mut samples[pad_samples..];
        if !paused {
            match left {
                Some(l) => interleave(l, current, 0),
                None => self.summary.gap_frames_left += 1,
            }
            match right {
                Some(r) => interleave(r, current, 1),
                None => self.summary.gap_frames_right += 1,
            }
        }
        self.summary.frames += (pad + 1) * FRAME_SAMPLES as u64;
        self.next = frame.0 + 1;
        batch.push(Chunk {
            id: self.id,
            samples,
        });
    }

    /// Stops recording audio from `frame` on (silence is written instead,
    /// so the file keeps its length). Pausing while paused does nothing.
    pub fn pause(&mut self, frame: FrameIndex) {
        if self.paused_since.is_none() {
            self.paused_since = Some(frame.0.max(self.started));
        }
    }

    /// Ends a pause at `frame`; the pause is listed in the summary.
    pub fn resume(&mut self, frame: FrameIndex) {
        if let Some(start) = self.paused_since.take() {
            let end = frame.0.max(start);
            self.summary.pauses.push(self.pause_span(start, end));
        }
    }

    /// Frames, pauses and gaps so far. A pause still open ends at the
    /// last frame written.
    pub fn summary(&self) -> RecordingSummary {
        let mut s = self.summary.clone();
        if let Some(start) = self.paused_since {
            s.pauses.push(self.pause_span(start, self.next.max(start)));
        }
        s
    }

    fn pause_span(&self, start: u64, end: u64) -> Pause {
        let secs = |f: u64| (f - self.started) as f64 * FRAME_SECS;
        Pause {
            start_s: secs(start),
            end_s: secs(end),
        }
    }
}

/// Writes `frame` (up to 160 samples) into every other slot of `out`
/// starting at `channel`.
fn interleave(frame: &[i16], out: &mut [i16], channel: usize) {
    for (slot, &s) in out
        .iter_mut()
        .skip(channel)
        .step_by(2)
        .zip(frame.iter().take(FRAME_SAMPLES))
    {
        *slot = s;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    const L: i16 = 1000;
    const R: i16 = -2000;

    /// A simulated hour of ticks with random gaps on either side, random
    /// skipped frame indexes, duplicates and pauses: every chunk holds
    /// exactly one stereo frame per frame index elapsed, each channel only
    /// its own leg's marker or silence, and the running sample count is the
    /// wall-clock position (so the channels can never drift, here or in
    /// the file, which is the concatenation of the chunks).
    #[test]
    fn an_hour_with_random_gaps_stays_aligned_to_the_grid() {
        let mut rng = StdRng::seed_from_u64(7);
        let start = 1_000u64;
        let hour = 60 * 60 * 50;
        let mut rec = Recording::new(RecordingId(1), FrameIndex(start));
        let left = [L; FRAME_SAMPLES];
        let right = [R; FRAME_SAMPLES];
        let mut batch = Vec::new();
        let mut total_samples = 0usize;
        let (mut gaps_l, mut gaps_r, mut skipped_total) = (0u64, 0u64, 0u64);
        let mut frame = start;
        let mut paused = false;
        while frame < start + hour {
            if rng.random_ratio(1, 5000) {
                if paused {
                    rec.resume(FrameIndex(frame));
                } else {
                    rec.pause(FrameIndex(frame));
                }
                paused = !paused;
            }
            let l = !rng.random_ratio(1, 20);
            let r = !rng.random_ratio(1, 10);
            batch.clear();
            rec.tick(
                FrameIndex(frame),
                l.then_some(&left[..]),
                r.then_some(&right[..]),
                &mut batch,
            );
            // An occasional duplicate tick must write nothing.
            if rng.random_ratio(1, 1000) {
                rec.tick(FrameIndex(frame), Some(&left), Some(&right), &mut batch);
            }
            assert_eq!(batch.len(), 1);
            let chunk = &batch[0];
            assert_eq!(chunk.id, RecordingId(1));
            let n = chunk.samples.len();
            assert_eq!(n % (2 * FRAME_SAMPLES), 0);
            let current = &chunk.samples[n - 2 * FRAME_SAMPLES..];
            let padded = &chunk.samples[..n - 2 * FRAME_SAMPLES];
            assert!(padded.iter().all(|&s| s == 0));
            let want_l = if l && !paused { L } else { 0 };
            let want_r = if r && !paused { R } else { 0 };
            assert!(current.iter().step_by(2).all(|&s| s == want_l));
            assert!(current.iter().skip(1).step_by(2).all(|&s| s == want_r));
            if !paused {
                let pad = (padded.len() / (2 * FRAME_SAMPLES)) as u64;
                gaps_l += pad + u64::from(!l);
                gaps_r += pad + u64::from(!r);
            }
            total_samples += n;
            // Wall time and file time agree after every tick.
            assert_eq!(total_samples as u64, (frame - start + 1) * 320);
            // The worker is sometimes late and the pacer skips frames.
            let skip = if rng.random_ratio(1, 500) {
                rng.random_range(1..20)
            } else {
                0
            };
            skipped_total += skip;
            frame += 1 + skip;
        }
        assert!(skipped_total > 0);
        let s = rec.summary();
        assert_eq!(s.frames, total_samples as u64 / 2);
        assert_eq!(s.frames, (frame - start) * FRAME_SAMPLES as u64);
        assert_eq!((s.gap_frames_left, s.gap_frames_right), (gaps_l, gaps_r));
        assert!(!s.pauses.is_empty());
        assert_eq!(s.unpadded_frames, 0);
    }

    #[test]
    fn pauses_are_listed_in_seconds_from_the_start() {
        let mut rec = Recording::new(RecordingId(2), FrameIndex(100));
        let mut batch = Vec::new();
        let f = [5i16; FRAME_SAMPLES];
        for i in 100..400 {
            if i == 150 {
                rec.pause(FrameIndex(i));
                rec.pause(FrameIndex(i + 3)); // already paused: ignored
            }
            if i == 250 {
                rec.resume(FrameIndex(i));
            }
            if i == 350 {
                rec.pause(FrameIndex(i));
            }
            rec.tick(FrameIndex(i), Some(&f), Some(&f), &mut batch);
        }
        assert!(rec.is_paused());
        let s = rec.summary();
        let spans: Vec<(f64, f64)> = s.pauses.iter().map(|p| (p.start_s, p.end_s)).collect();
        assert_eq!(spans.len(), 2);
        assert!((spans[0].0 - 1.0).abs() < 1e-9 && (spans[0].1 - 3.0).abs() < 1e-9);
        // The open pause ends at the last frame written.
        assert!((spans[1].0 - 5.0).abs() < 1e-9 && (spans[1].1 - 6.0).abs() < 1e-9);
        // Pause frames are silence and not counted as gaps.
        assert!(batch[60].samples.iter().all(|&x| x == 0));
        assert!(batch[160].samples.iter().all(|&x| x == 5));
        assert_eq!((s.gap_frames_left, s.gap_frames_right), (0, 0));
        // resume without a pause does nothing.
        rec.resume(FrameIndex(400));
        rec.resume(FrameIndex(401));
        assert_eq!(rec.summary().pauses.len(), 2);
    }

    #[test]
    fn odd_sized_frames_are_padded_or_cut_to_one_frame() {
        let mut rec = Recording::new(RecordingId(3), FrameIndex(0));
        let mut batch = Vec::new();
        rec.tick(FrameIndex(0), Some(&[7; 10]), Some(&[9; 500]), &mut batch);
        let s = &batch[0].samples;
        assert_eq!(s.len(), 320);
        assert!(s[..20].iter().step_by(2).all(|&x| x == 7));
        assert!(s[20..].iter().step_by(2).all(|&x| x == 0));
        assert!(s.iter().skip(1).step_by(2).all(|&x| x == 9));
    }

    #[test]
    fn a_huge_index_jump_pads_a_bounded_amount() {
        let mut rec = Recording::new(RecordingId(4), FrameIndex(0));
        let mut batch = Vec::new();
        rec.tick(FrameIndex(MAX_PAD_FRAMES + 10), None, None, &mut batch);
        let s = rec.summary();
        assert_eq!(s.unpadded_frames, 10);
        assert_eq!(s.frames, (MAX_PAD_FRAMES + 1) * 160);
        assert_eq!(batch[0].samples.len() as u64, (MAX_PAD_FRAMES + 1) * 320);
    }
}

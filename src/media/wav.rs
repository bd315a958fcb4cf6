//! WAV (RIFF/WAVE) files: reading prompts and hold music, and writing call
//! recordings so that they stay playable if the process dies mid-call.
//!
//! Only what Switchboard needs is supported: 16-bit linear PCM (format tag 1,
//! or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format) at 8, 16 or 48 kHz.
//! Prompts are mono; recordings are stereo (caller left, other party right).
//! Anything else is rejected with a [`WavError`] that names what is wrong,
//! so a misconfigured prompt fails loudly at load time rather than playing
//! noise to callers.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Buffered bytes per recording before they go to the file.
const WRITE_BUFFER: usize = 32 * 1024;

/// Sample rates the media engine can play or record without resampling.
pub const SUPPORTED_SAMPLE_RATES: [u32; 3] = [8000, 16000, 48000];

/// Size of the canonical header [`header`] produces and [`WavWriter`] writes.
pub const HEADER_LEN: usize = 44;

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
const BITS_PER_SAMPLE: u16 = 16;
const BYTES_PER_SAMPLE: u16 = 2;
/// KSDATAFORMAT_SUBTYPE_PCM, 00000001-0000-0010-8000-00AA00389B71, in the
/// little-endian GUID byte order it has on disk.
const SUBFORMAT_PCM: [u8; 16] = [
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];
/// Byte offsets of the two size fields in the canonical 44-byte header.
const RIFF_SIZE_OFFSET: u64 = 4;
const DATA_SIZE_OFFSET: u64 = 40;

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a RIFF file (no 'RIFF' magic at offset 0)")]
    NotRiff,
    #[error("RIFF file is not WAVE (form type is not 'WAVE')")]
    NotWave,
    #[error("missing '{0}' chunk")]
    MissingChunk(&'static str),
    #[error("'fmt ' chunk is {len} bytes, need at least {need}")]
    FmtTooShort { len: u32, need: u32 },
    #[error("unsupported format tag {tag:#06x} (only PCM 0x0001 and EXTENSIBLE 0xfffe with PCM sub-format)")]
    UnsupportedFormat { tag: u16 },
    #[error("unsupported EXTENSIBLE sub-format GUID {guid:02x?} (only PCM)")]
    UnsupportedSubFormat { guid: [u8; 16] },
    #[error("unsupported {bits} bits per sample (only 16)")]
    UnsupportedBitsPerSample { bits: u16 },
    #[error("unsupported channel count {channels} (expected {expected})")]
    UnsupportedChannels {
        channels: u16,
        expected: &'static str,
    },
    #[error("unsupported sample rate {rate} Hz (only 8000, 16000, 48000)")]
    UnsupportedSampleRate { rate: u32 },
    #[error("block align {declared} does not match {channels} channel(s) of 16-bit samples")]
    BlockAlignMismatch { declared: u16, channels: u16 },
    #[error("frame slice of {samples} samples is not a whole number of {channels}-channel frames")]
    PartialFrame { samples: usize, channels: u16 },
    #[error("recording would exceed the 4 GiB WAV size limit")]
    TooLong,
    #[error("an earlier write failed; the file is valid up to the last header update")]
    WriterFailed,
}

/// A decoded WAV file: interleaved 16-bit samples and their format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavReader {
    sample_rate: u32,
    channels: u16,
    samples: Vec<i16>,
    truncated: bool,
}

impl WavReader {
    /// Reads a prompt: mono, 16-bit PCM, at a supported rate.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        Self::from_bytes(&std::fs::read(path)?)
    }

    /// Parses a prompt held in memory; same rules as [`WavReader::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WavError> {
        parse(bytes, Channels::MonoOnly)
    }

    /// Reads a recording (mono or stereo), e.g. to check or replay one.
    pub fn open_recording(path: impl AsRef<Path>) -> Result<Self, WavError> {
        Self::recording_from_bytes(&std::fs::read(path)?)
    }

    /// Parses a recording held in memory; same rules as
    /// [`WavReader::open_recording`].
    pub fn recording_from_bytes(bytes: &[u8]) -> Result<Self, WavError> {
        parse(bytes, Channels::MonoOrStereo)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Interleaved samples (for mono, simply the samples).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn into_samples(self) -> Vec<i16> {
        self.samples
    }

    /// Number of whole frames (one sample per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// True when the data chunk declared more bytes than the file holds
    /// (a truncated copy); the samples are whatever was present.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

#[derive(Clone, Copy)]
enum Channels {
    MonoOnly,
    MonoOrStereo,
}

struct Fmt {
    sample_rate: u32,
    channels: u16,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b2, c, d]) => u32::from_le_bytes([a, b2, c, d]),
        _ => 0,
    }
}

fn parse_fmt(body: &[u8], declared_len: u32, want: Channels) -> Result<Fmt, WavError> {
    if body.len() < 16 {
        return Err(WavError::FmtTooShort {
            len: declared_len.min(u32::try_from(body.len()).unwrap_or(u32::MAX)),
            need: 16,
        });
    }
    let tag = le_u16(body, 0);
    let channels = le_u16(body, 2);
    let sample_rate = le_u32(body, 4);
    let block_align = le_u16(body, 12);
    let bits = le_u16(body, 14);
    match tag {
        FORMAT_PCM => {}
        FORMAT_EXTENSIBLE => {
            // WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4)
            // subFormat(16) follow the 16-byte base, 40 bytes in all.
            if body.len() < 40 {
                return Err(WavError::FmtTooShort {
                    len: u32::try_from(body.len()).unwrap_or(u32::MAX),
                    need: 40,
                });
            }
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&body[24..40]);
            if guid != SUBFORMAT_PCM {
                return Err(WavError::UnsupportedSubFormat { guid });
            }
            // Valid bits below the container size would need rescaling;
            // we only accept the plain 16-in-16 layout.
            let valid = le_u16(body, 18);
            if valid != BITS_PER_SAMPLE {
                return Err(WavError::UnsupportedBitsPerSample { bits: valid });
            }
        }
        tag => return Err(WavError::UnsupportedFormat { tag }),
    }
    if bits != BITS_PER_SAMPLE {
        return Err(WavError::UnsupportedBitsPerSample { bits });
    }
    let channels_ok = match want {
        Channels::MonoOnly => channels == 1,
        Channels::MonoOrStereo => channels == 1 || channels == 2,
    };
    if !channels_ok {
        let expected = match want {
            Channels::MonoOnly => "1 (mono)",
            Channels::MonoOrStereo => "1 or 2",
        };
        return Err(WavError::UnsupportedChannels { channels, expected });
    }
    if !SUPPORTED_SAMPLE_RATES.contains(&sample_rate) {
        return Err(WavError::UnsupportedSampleRate { rate: sample_rate });
    }
    if block_align != channels * BYTES_PER_SAMPLE {
        return Err(WavError::BlockAlignMismatch {
            declared: block_align,
            channels,
        });
    }
    Ok(Fmt {
        sample_rate,
        channels,
    })
}

fn parse(bytes: &[u8], want: Channels) -> Result<WavReader, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") {
        return Err(WavError::NotRiff);
    }
    if bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWave);
    }
    // The RIFF size is deliberately not trusted: a crashed recording or a
    // truncated copy may disagree with it. The chunk walk is bounded by the
    // bytes actually present.
    let mut pos = 12usize;
    let mut fmt: Option<Fmt> = None;
    let mut data: Option<(&[u8], bool)> = None;
    while fmt.is_none() || data.is_none() {
        let Some(head) = bytes.get(pos..pos.saturating_add(8)) else {
            break;
        };
        let id = &head[0..4];
        let size = le_u32(head, 4);
        let body_start = pos + 8;
        let rest = &bytes[body_start..];
        let size_usize = usize::try_from(size).unwrap_or(usize::MAX);
        let present = size_usize.min(rest.len());
        match id {
            b"fmt " => fmt = Some(parse_fmt(&rest[..present], size, want)?),
            // Once data is found we keep scanning only if fmt is still
            // missing; bytes after a recording's data chunk may be a
            // half-written frame, not a chunk.
            b"data" => data = Some((&rest[..present], present < size_usize)),
            // LIST, fact, cue, ... carry nothing we need.
            _ => {}
        }
        // RIFF chunks are padded to an even length; the pad byte is not
        // counted in the chunk size.
        let padded = size_usize.saturating_add(size_usize & 1);
        pos = body_start.saturating_add(padded);
    }
    let fmt = fmt.ok_or(WavError::MissingChunk("fmt "))?;
    let (data, truncated) = data.ok_or(WavError::MissingChunk("data"))?;
    let frame_bytes = usize::from(fmt.channels) * usize::from(BYTES_PER_SAMPLE);
    // A trailing partial frame (odd byte, or a lone left sample) is dropped
    // so callers always see whole frames.
    let whole = data.len() - data.len() % frame_bytes;
    let samples = data[..whole]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(WavReader {
        sample_rate: fmt.sample_rate,
        channels: fmt.channels,
        samples,
        truncated,
    })
}

/// Fuzz body: parsing arbitrary bytes must return, never panic.
pub fn fuzz_wav(data: &[u8]) {
    if let Ok(w) = WavReader::from_bytes(data) {
        assert_eq!(w.channels(), 1);
    }
    if let Ok(w) = WavReader::recording_from_bytes(data) {
        assert_eq!(w.samples().len() % usize::from(w.channels()), 0);
    }
}

/// The canonical 44-byte header for 16-bit PCM with `data_len` bytes of
/// samples. Pure, so the exact bytes can be tested.
pub fn header(sample_rate: u32, channels: u16, data_len: u32) -> [u8; HEADER_LEN] {
    let block_align = channels.saturating_mul(BYTES_PER_SAMPLE);
    let byte_rate = sample_rate.saturating_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_size(data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// RIFF size: everything after the 8-byte RIFF header, i.e. "WAVE" + the
/// fmt chunk (24) + the data chunk header (8) + data. Our data is always
/// whole 16-bit samples, so there is never a pad byte to count.
fn riff_size(data_len: u32) -> u32 {
    data_len.saturating_add(36)
}

/// Writes a recording so it stays playable if the process dies at any point.
///
/// Crash safety: the header is written first with zero sizes, which is a
/// valid empty file. Samples are appended through a `BufWriter`; every
/// `header_interval` frames the buffer is flushed to the file *and then* the
/// RIFF and data size fields are overwritten in place (seek + 4 bytes each),
/// so the sizes never claim bytes that are not yet in the file. After a crash
/// a reader sees every frame up to the last header update (and ignores any
/// frames written after it). Surviving power loss additionally needs the
/// fsync that [`WavWriter::finish`] does.
///
/// This does blocking file I/O: the media path must not call it directly but
/// hand frames over a channel to a dedicated writer thread that owns the
/// `WavWriter`.
#[derive(Debug)]
pub struct WavWriter {
    out: BufWriter<File>,
    sample_rate: u32,
    channels: u16,
    header_interval: u32,
    /// Data bytes handed to `out` (buffered or written).
    data_len: u32,
    /// Data bytes the on-disk header currently declares.
    committed_len: u32,
    finished: bool,
    /// Set after an I/O error: a partial write may have left stray bytes
    /// after the data, so appending more would misalign every later frame.
    failed: bool,
}

impl WavWriter {
    /// Creates (truncating) `path` with a header update every second of
    /// audio.
    pub fn create(
        path: impl AsRef<Path>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, WavError> {
        Self::create_with_interval(path, sample_rate, channels, sample_rate)
    }

    /// Like [`WavWriter::create`] with the header rewritten every
    /// `header_interval_frames` frames (at least 1).
    pub fn create_with_interval(
        path: impl AsRef<Path>,
        sample_rate: u32,
        channels: u16,
        header_interval_frames: u32,
    ) -> Result<Self, WavError> {
        if !SUPPORTED_SAMPLE_RATES.contains(&sample_rate) {
            return Err(WavError::UnsupportedSampleRate { rate: sample_rate });
        }
        if channels != 1 && channels != 2 {
            return Err(WavError::UnsupportedChannels {
                channels,
                expected: "1 or 2",
            });
        }
        // A second of 8 kHz stereo (32,000 bytes) fits: the buffer reaches
        // the file about once per header update rather than every 8 KiB
        // (thousands of recordings at once make that a lot of system calls),
        // for 32 KiB of memory per recording.
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?);
        out.write_all(&header(sample_rate, channels, 0))?;
        // Get the valid empty header on disk before any sample.
        out.flush()?;
        Ok(Self {
            out,
            sample_rate,
            channels,
            header_interval: header_interval_frames.max(1),
            data_len: 0,
            committed_len: 0,
            finished: false,
            failed: false,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    fn frame_bytes(&self) -> u32 {
        u32::from(self.channels) * u32::from(BYTES_PER_SAMPLE)
    }

    /// Frames appended so far.
    pub fn frames_written(&self) -> u32 {
        self.data_len / self.frame_bytes()
    }

    /// Frames a reader is guaranteed to see if the process dies now.
    pub fn committed_frames(&self) -> u32 {
        self.committed_len / self.frame_bytes()
    }

    /// Appends interleaved frames (`[left, right, left, right, ...]` for
    /// stereo). The slice must hold whole frames.
    pub fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        if self.failed {
            return Err(WavError::WriterFailed);
        }
        if interleaved.len() % usize::from(self.channels) != 0 {
            return Err(WavError::PartialFrame {
                samples: interleaved.len(),
                channels: self.channels,
            });
        }
        let add = u32::try_from(interleaved.len())
            .ok()
            .and_then(|n| n.checked_mul(u32::from(BYTES_PER_SAMPLE)))
            .and_then(|n| n.checked_add(self.data_len))
            .filter(|&n| n.checked_add(36).is_some())
            .ok_or(WavError::TooLong)?;
        let result = self.append(interleaved, add);
        self.failed = result.is_err();
        result
    }

    fn append(&mut self, interleaved: &[i16], new_len: u32) -> Result<(), WavError> {
        let mut bytes = [0u8; 1024];
        for chunk in interleaved.chunks(bytes.len() / 2) {
            for (b, s) in bytes.chunks_exact_mut(2).zip(chunk) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            self.out.write_all(&bytes[..chunk.len() * 2])?;
        }
        self.data_len = new_len;
        let interval_bytes = u64::from(self.header_interval) * u64::from(self.frame_bytes());
        if u64::from(self.data_len - self.committed_len) >= interval_bytes {
            self.update_header()?;
        }
        Ok(())
    }

    /// Flushes buffered samples, then makes the header declare them.
    fn update_header(&mut self) -> Result<(), WavError> {
        // Order matters: the samples must be in the file before the sizes
        // claim them, or a crash in between leaves a header pointing past
        // the end of the data.
        self.out.flush()?;
        // Positioned writes: the append position stays at the end.
        let file = self.out.get_ref();
        file.write_all_at(&riff_size(self.data_len).to_le_bytes(), RIFF_SIZE_OFFSET)?;
        file.write_all_at(&self.data_len.to_le_bytes(), DATA_SIZE_OFFSET)?;
        self.committed_len = self.data_len;
        Ok(())
    }

    /// Writes the final sizes and fsyncs. Returns the number of frames.
    pub fn finish(mut self) -> Result<u32, WavError> {
        self.finished = true;
        if self.failed {
            return Err(WavError::WriterFailed);
        }
        self.update_header()?;
        self.out.get_ref().sync_all()?;
        Ok(self.frames_written())
    }
}

impl Drop for WavWriter {
    /// Best effort for a writer dropped without `finish` (e.g. on an error
    /// path): commit what was written. Errors cannot be reported here; the
    /// file is still valid up to the last successful header update.
    fn drop(&mut self) {
        if !self.finished && !self.failed && self.committed_len != self.data_len {
            let _ = self.update_header();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a WAV file from raw chunks (id, body), padding odd bodies.
    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn fmt_pcm(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    fn fmt_extensible(subformat: [u8; 16], valid_bits: u16) -> Vec<u8> {
        let mut f = fmt_pcm(FORMAT_EXTENSIBLE, 1, 16000, 16);
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&valid_bits.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes()); // SPEAKER_FRONT_CENTER
        f.extend_from_slice(&subformat);
        f
    }

    fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (f64::sin(2.0 * std::f64::consts::PI * freq * t) * 12000.0) as i16
            })
            .collect()
    }

    fn interleave(l: &[i16], r: &[i16]) -> Vec<i16> {
        l.iter().zip(r).flat_map(|(a, b)| [*a, *b]).collect()
    }

    #[test]
    fn header_matches_known_bytes() {
        let expected: [u8; 44] = [
            b'R', b'I', b'F', b'F', 0x24, 0xFA, 0x00, 0x00, // RIFF size 36 + 64000
            b'W', b'A', b'V', b'E', b'f', b'm', b't', b' ', //
            0x10, 0x00, 0x00, 0x00, // fmt size 16
            0x01, 0x00, 0x02, 0x00, // PCM, 2 channels
            0x80, 0x3E, 0x00, 0x00, // 16000 Hz
            0x00, 0xFA, 0x00, 0x00, // byte rate 64000
            0x04, 0x00, 0x10, 0x00, // block align 4, 16 bits
            b'd', b'a', b't', b'a', 0x00, 0xFA, 0x00, 0x00, // data size 64000
        ];
        assert_eq!(header(16000, 2, 64000), expected);
    }

    #[test]
    fn stereo_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let n = 16000 + 123;
        let left = tone(440.0, 16000, n);
        let right = tone(1000.0, 16000, n);
        let frames = interleave(&left, &right);
        let mut w = WavWriter::create(&path, 16000, 2).unwrap();
        for chunk in frames.chunks(320) {
            w.write_frames(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap(), n as u32);

        let r = WavReader::open_recording(&path).unwrap();
        assert_eq!((r.sample_rate(), r.channels(), r.frames()), (16000, 2, n));
        assert!(!r.truncated());
        assert_eq!(r.samples(), &frames[..]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + n * 4);
        assert_eq!(bytes[..44], header(16000, 2, (n * 4) as u32));
        // A recording is not a prompt.
        assert!(matches!(
            WavReader::open(&path),
            Err(WavError::UnsupportedChannels { channels: 2, .. })
        ));
    }

    #[test]
    fn crash_mid_recording_keeps_frames_up_to_last_header_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        // Interval 1000 frames, batches of 300: updates after 1200 and 2400
        // frames; 3000 are written in all.
        let mut w = WavWriter::create_with_interval(&path, 8000, 2, 1000).unwrap();
        let batch = interleave(&tone(440.0, 8000, 300), &tone(1000.0, 8000, 300));
        for _ in 0..10 {
            w.write_frames(&batch).unwrap();
        }
        assert_eq!(w.frames_written(), 3000);
        assert_eq!(w.committed_frames(), 2400);
        // Simulated crash: no finish, no Drop, BufWriter contents lost.
        std::mem::forget(w);

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[4..8], (36u32 + 2400 * 4).to_le_bytes());
        assert_eq!(bytes[40..44], (2400u32 * 4).to_le_bytes());
        assert!(bytes.len() >= HEADER_LEN + 2400 * 4);
        let r = WavReader::open_recording(&path).unwrap();
        assert_eq!(r.frames(), 2400);
        assert!(!r.truncated());
        assert_eq!(r.samples()[..600], batch[..]);
    }

    #[test]
    fn crash_before_first_update_is_a_valid_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("early.wav");
        let mut w = WavWriter::create(&path, 48000, 2).unwrap();
        w.write_frames(&[1, 2, 3, 4]).unwrap();
        std::mem::forget(w);
        let r = WavReader::open_recording(&path).unwrap();
        assert_eq!((r.sample_rate(), r.frames()), (48000, 0));
    }

    #[test]
    fn drop_without_finish_commits_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drop.wav");
        let mut w = WavWriter::create(&path, 8000, 1).unwrap();
        w.write_frames(&[5, -5, 7]).unwrap();
        drop(w);
        let r = WavReader::open(&path).unwrap();
        assert_eq!(r.samples(), &[5, -5, 7]);
    }

    #[test]
    fn writer_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        assert!(matches!(
            WavWriter::create(&p, 44100, 2),
            Err(WavError::UnsupportedSampleRate { rate: 44100 })
        ));
        assert!(matches!(
            WavWriter::create(&p, 8000, 3),
            Err(WavError::UnsupportedChannels { channels: 3, .. })
        ));
        let mut w = WavWriter::create(&p, 8000, 2).unwrap();
        assert!(matches!(
            w.write_frames(&[1, 2, 3]),
            Err(WavError::PartialFrame {
                samples: 3,
                channels: 2
            })
        ));
        assert_eq!(w.finish().unwrap(), 0);
    }

    #[test]
    fn reads_mono_prompt_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompt.wav");
        let s = tone(440.0, 8000, 800);
        std::fs::write(
            &path,
            riff(&[
                (b"fmt ", &fmt_pcm(1, 1, 8000, 16)),
                (b"data", &pcm_bytes(&s)),
            ]),
        )
        .unwrap();
        let r = WavReader::open(&path).unwrap();
        assert_eq!(r.sample_rate(), 8000);
        assert_eq!(r.into_samples(), s);
    }

    #[test]
    fn reads_extensible_pcm() {
        let s = [1i16, -2, 3, i16::MIN, i16::MAX];
        let f = riff(&[
            (b"fmt ", &fmt_extensible(SUBFORMAT_PCM, 16)),
            (b"data", &pcm_bytes(&s)),
        ]);
        let r = WavReader::from_bytes(&f).unwrap();
        assert_eq!((r.sample_rate(), r.samples()), (16000, &s[..]));
    }

    #[test]
    fn rejects_extensible_non_pcm() {
        let mut float = SUBFORMAT_PCM;
        float[0] = 3; // KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
        let f = riff(&[(b"fmt ", &fmt_extensible(float, 16)), (b"data", &[0, 0])]);
        let e = WavReader::from_bytes(&f).unwrap_err();
        assert!(matches!(e, WavError::UnsupportedSubFormat { guid } if guid == float));
        assert!(e.to_string().contains("sub-format"));
        let f = riff(&[
            (b"fmt ", &fmt_extensible(SUBFORMAT_PCM, 12)),
            (b"data", &[0, 0]),
        ]);
        assert!(matches!(
            WavReader::from_bytes(&f),
            Err(WavError::UnsupportedBitsPerSample { bits: 12 })
        ));
        let short = fmt_extensible(SUBFORMAT_PCM, 16);
        let f = riff(&[(b"fmt ", &short[..30]), (b"data", &[0, 0])]);
        assert!(matches!(
            WavReader::from_bytes(&f),
            Err(WavError::FmtTooShort { len: 30, need: 40 })
        ));
    }

    #[test]
    fn rejects_bad_formats_with_named_cause() {
        let data: &[u8] = &[0, 0, 0, 0];
        let case = |fmt: Vec<u8>| {
            WavReader::from_bytes(&riff(&[(b"fmt ", &fmt), (b"data", data)])).unwrap_err()
        };
        let e = case(fmt_pcm(3, 1, 8000, 32));
        assert!(matches!(e, WavError::UnsupportedFormat { tag: 3 }));
        assert!(e.to_string().contains("0x0003"));
        let e = case(fmt_pcm(1, 1, 8000, 8));
        assert!(matches!(e, WavError::UnsupportedBitsPerSample { bits: 8 }));
        assert!(e.to_string().contains("8 bits"));
        assert!(matches!(
            case(fmt_pcm(1, 1, 8000, 24)),
            WavError::UnsupportedBitsPerSample { bits: 24 }
        ));
        let e = case(fmt_pcm(1, 2, 8000, 16));
        assert!(matches!(
            e,
            WavError::UnsupportedChannels { channels: 2, .. }
        ));
        assert!(e.to_string().contains("mono"));
        let e = case(fmt_pcm(1, 1, 44100, 16));
        assert!(matches!(e, WavError::UnsupportedSampleRate { rate: 44100 }));
        assert!(e.to_string().contains("44100"));
        let mut bad_align = fmt_pcm(1, 1, 8000, 16);
        bad_align[12] = 4;
        assert!(matches!(
            case(bad_align),
            WavError::BlockAlignMismatch {
                declared: 4,
                channels: 1
            }
        ));
        assert!(matches!(
            case(vec![1, 0, 1, 0]),
            WavError::FmtTooShort { len: 4, need: 16 }
        ));
    }

    #[test]
    fn rejects_non_wav_and_missing_chunks() {
        assert!(matches!(WavReader::from_bytes(b""), Err(WavError::NotRiff)));
        assert!(matches!(
            WavReader::from_bytes(b"RIFX\0\0\0\0WAVE"),
            Err(WavError::NotRiff)
        ));
        assert!(matches!(
            WavReader::from_bytes(b"RIFF\0\0\0\0AVI "),
            Err(WavError::NotWave)
        ));
        let no_data = riff(&[(b"fmt ", &fmt_pcm(1, 1, 8000, 16))]);
        assert!(matches!(
            WavReader::from_bytes(&no_data),
            Err(WavError::MissingChunk("data"))
        ));
        let no_fmt = riff(&[(b"data", &[0, 0])]);
        assert!(matches!(
            WavReader::from_bytes(&no_fmt),
            Err(WavError::MissingChunk("fmt "))
        ));
    }

    #[test]
    fn skips_list_chunk_with_odd_padding() {
        let s = [10i16, 20, 30];
        // 5-byte LIST body, so a pad byte follows it; an odd-size "fact"
        // chunk between fmt and data too.
        let f = riff(&[
            (b"LIST", b"INFOx"),
            (b"fmt ", &fmt_pcm(1, 1, 48000, 16)),
            (b"fact", &[1, 2, 3]),
            (b"data", &pcm_bytes(&s)),
            (b"LIST", b"trailing"),
        ]);
        let r = WavReader::from_bytes(&f).unwrap();
        assert_eq!((r.sample_rate(), r.samples()), (48000, &s[..]));
    }

    #[test]
    fn data_before_fmt_is_accepted() {
        let s = [7i16, 8];
        let f = riff(&[
            (b"data", &pcm_bytes(&s)),
            (b"fmt ", &fmt_pcm(1, 1, 8000, 16)),
        ]);
        assert_eq!(WavReader::from_bytes(&f).unwrap().samples(), &s[..]);
    }

    #[test]
    fn truncated_data_chunk_reads_what_is_there() {
        let s = [1i16, 2, 3, 4, 5];
        let mut f = riff(&[
            (b"fmt ", &fmt_pcm(1, 1, 8000, 16)),
            (b"data", &pcm_bytes(&s)),
        ]);
        // Declare 1000 data bytes, then cut mid-sample.
        let data_size_at = f.len() - 10 - 4;
        f[data_size_at..data_size_at + 4].copy_from_slice(&1000u32.to_le_bytes());
        f.pop();
        let r = WavReader::from_bytes(&f).unwrap();
        assert!(r.truncated());
        assert_eq!(r.samples(), &s[..4]);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_wav(&data);
        }

        #[test]
        fn never_panics_on_mutated_valid_file(
            samples in proptest::collection::vec(any::<i16>(), 0..64),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let mut f = header(8000, 1, (samples.len() * 2) as u32).to_vec();
            f.extend(pcm_bytes(&samples));
            let parsed = WavReader::from_bytes(&f).unwrap().into_samples();
            prop_assert_eq!(parsed, samples);
            for (at, v) in flips {
                let i = at % f.len();
                f[i] = v;
            }
            f.truncate(cut % (f.len() + 1));
            fuzz_wav(&f);
        }
    }
}

//! Cost of recording one call-second: 50 `Recording::tick`s (two 160-sample
//! legs interleaved into a 320-sample chunk each) and the writer thread's
//! share, writing those chunks to a `WavWriter` in a temporary directory
//! (buffered appends plus the once-a-second header update). Dividing one
//! second by the time per iteration gives how many recorded calls one core
//! can keep up with.
//!
//! The file is restarted every 10 minutes of audio so it never nears the
//! WAV size limit; that amortised create is part of a real call too.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::codec::ToneGenerator;
use switchboard::media::pacer::FrameIndex;
use switchboard::media::record::{Recording, RecordingId, FRAME_SAMPLES};
use switchboard::media::wav::WavWriter;

const FRAMES_PER_FILE: u32 = 8000 * 600;

fn record_call_second(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("bench.wav");
    let Ok(mut wav) = WavWriter::create(&path, 8000, 2) else {
        return;
    };
    let mut left = [0i16; FRAME_SAMPLES];
    let mut right = [0i16; FRAME_SAMPLES];
    ToneGenerator::new(697.0, 8000, 8000).fill(&mut left);
    ToneGenerator::new(1209.0, 8000, 8000).fill(&mut right);
    let mut rec = Recording::new(RecordingId(1), FrameIndex(0));
    let mut frame = 0u64;
    let mut batch = Vec::with_capacity(1);

    c.bench_function("record_tick_only_call_second", |b| {
        let mut r = Recording::new(RecordingId(2), FrameIndex(0));
        let mut f = 0u64;
        b.iter(|| {
            for _ in 0..50 {
                batch.clear();
                r.tick(FrameIndex(f), Some(&left), Some(&right), &mut batch);
                f += 1;
            }
            black_box(&batch);
        });
    });

    c.bench_function("record_tick_and_write_call_second", |b| {
        b.iter(|| {
            for _ in 0..50 {
                batch.clear();
                rec.tick(FrameIndex(frame), Some(&left), Some(&right), &mut batch);
                frame += 1;
                for chunk in batch.drain(..) {
                    if wav.write_frames(black_box(&chunk.samples)).is_err() {
                        return;
                    }
                }
            }
            if wav.frames_written() >= FRAMES_PER_FILE {
                if let Ok(next) = WavWriter::create(&path, 8000, 2) {
                    // Dropping the old writer commits its header.
                    drop(std::mem::replace(&mut wav, next));
                }
            }
        });
    });
}

criterion_group!(benches, record_call_second);
criterion_main!(benches);

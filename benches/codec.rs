//! Per-frame cost of the media conversions a transcoding leg runs every
//! 20 ms: G.711 µ-law encode+decode and 48 kHz ↔ 8 kHz resampling.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::codec::{ulaw, Resampler, SampleRate, ToneGenerator};

fn frame(rate: SampleRate) -> Vec<i16> {
    let mut pcm = vec![0i16; rate.samples_per_20ms()];
    ToneGenerator::new(1000.0, 12000, rate.hz()).fill(&mut pcm);
    pcm
}

fn bench_ulaw(c: &mut Criterion) {
    let pcm = frame(SampleRate::Hz8000);
    let mut codes = [0u8; 160];
    let mut back = [0i16; 160];
    c.bench_function("ulaw encode+decode 160", |b| {
        b.iter(|| {
            let _ = ulaw::encode_into(black_box(&pcm), &mut codes);
            let _ = ulaw::decode_into(black_box(&codes), &mut back);
            black_box(&back);
        })
    });
}

fn bench_resample(c: &mut Criterion) {
    for (from, to, name) in [
        (SampleRate::Hz48000, SampleRate::Hz8000, "resample 960->160"),
        (SampleRate::Hz8000, SampleRate::Hz48000, "resample 160->960"),
    ] {
        let pcm = frame(from);
        let mut r = Resampler::new(from, to);
        let mut out = vec![0i16; to.samples_per_20ms()];
        c.bench_function(name, |b| {
            b.iter(|| {
                let _ = r.process_into(black_box(&pcm), &mut out);
                black_box(&out);
            })
        });
    }
}

criterion_group!(benches, bench_ulaw, bench_resample);
criterion_main!(benches);

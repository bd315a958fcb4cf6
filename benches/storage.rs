//! Throughput of the write-behind binding writer: 10,000 upserts enqueued
//! and flushed to a database file on disk (WAL, synchronous=NORMAL).
//!
//! `insert` writes 10,000 new bindings into an empty file (agents logging
//! in after a restart); `refresh` rewrites the same 10,000 bindings (the
//! steady state: re-REGISTERs before expiry).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use switchboard::storage::{BindingWriter, Store, StoredBinding, WriterHandle};

const BINDINGS: u32 = 10_000;

fn binding(i: u32, cseq: u32) -> StoredBinding {
    let source = SocketAddr::from(([203, 0, 113, (i % 250) as u8], 10_000 + (i % 50_000) as u16));
    StoredBinding {
        aor: format!("agent-{i:05}"),
        contact: format!("<sip:agent-{i:05}@{source};transport=udp;ob>"),
        instance: Some(format!("<urn:uuid:00000000-0000-1000-8000-{i:012}>")),
        reg_id: Some(1),
        call_id: format!("{i:08x}-reg@softphone.example"),
        cseq,
        expires_at: SystemTime::now() + Duration::from_secs(3600),
        q: None,
        transport: "UDP".to_owned(),
        source,
        local: SocketAddr::from(([198, 51, 100, 1], 5060)),
        user_agent: Some("Softphone/4.2".to_owned()),
        path: Vec::new(),
    }
}

fn spawn(path: &Path) -> (BindingWriter, WriterHandle) {
    match Store::open(path).and_then(Store::spawn_writer) {
        Ok(pair) => pair,
        Err(e) => panic!("cannot open the bench store at {}: {e:?}", path.display()),
    }
}

fn upsert_all_and_flush(writer: &BindingWriter, cseq: u32) {
    for i in 0..BINDINGS {
        writer.upsert(black_box(binding(i, cseq)));
    }
    if let Err(e) = writer.flush() {
        panic!("flush failed: {e:?}");
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("binding_writer_10k_upserts");
    group.throughput(Throughput::Elements(u64::from(BINDINGS)));
    group.sample_size(20);

    group.bench_function("insert", |b| {
        b.iter_batched(
            || {
                let dir = match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(e) => panic!("tempdir: {e}"),
                };
                let (writer, handle) = spawn(&dir.path().join("bench.db"));
                (dir, writer, handle)
            },
            |(dir, writer, handle)| {
                upsert_all_and_flush(&writer, 1);
                // Returned so that closing and deleting happen untimed.
                (dir, writer, handle)
            },
            BatchSize::PerIteration,
        );
    });

    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let (writer, handle) = spawn(&dir.path().join("bench.db"));
    upsert_all_and_flush(&writer, 0);
    let mut cseq = 1;
    group.bench_function("refresh", |b| {
        b.iter(|| {
            upsert_all_and_flush(&writer, cseq);
            cseq += 1;
        });
    });
    let stats = writer.stats();
    eprintln!(
        "refresh: {} upserts in {} transactions ({} per commit on average)",
        stats.enqueued,
        stats.committed_batches,
        stats.enqueued / stats.committed_batches.max(1)
    );
    if let Err(e) = handle.close() {
        panic!("close failed: {e:?}");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

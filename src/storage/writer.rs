//! Write-behind persistence of registrar bindings and call records.
//!
//! The registrar keeps its bindings in memory and must never wait for the
//! disk, so it only *enqueues* changes on an unbounded channel. One dedicated
//! thread owns the database connection, drains whatever has queued up,
//! coalesces it (only the last change per binding matters) and commits it in
//! one transaction. Under load a batch therefore carries thousands of
//! REGISTERs for the price of one commit; when idle, a change is on disk
//! within one commit's latency.
//!
//! Finished calls' records ([`CallRecordWriter`]) travel on the same
//! channel but are never coalesced: each is one insert, committed in a
//! transaction of their own next to the bindings', so a failure of one kind
//! does not hold back the other.
//!
//! Failures never stop the thread: a batch whose commit fails (busy, I/O,
//! disk full) is kept and retried, each change being given up on after
//! [`MAX_FAILURES`] failed commits; a single change the database rejects
//! (e.g. a constraint) is dropped on its own while the rest commits. Every
//! failure is logged and counted in [`WriterStats`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::call::record::CallRecord;
use crate::storage::bindings::{Batch, BindingOp, DroppedChange, StoredBinding};
use crate::storage::call_records::RecordBatch;
use crate::storage::error::StorageError;
use crate::storage::sqlite::{Committed, CommittedRecords, Rejected, Store};

/// Upper bound on messages folded into one batch, so a producer that is
/// faster than the drain loop cannot postpone the commit indefinitely.
/// How long the writer lets changes gather after the first one before it
/// commits them: bounds how stale the store is (and what a crash loses).
const BATCH_WINDOW: Duration = Duration::from_millis(20);
const MAX_BATCH_MESSAGES: usize = 16_384;
/// Failed commits after which a change is given up on.
const MAX_FAILURES: u8 = 5;
/// After a failed commit, wait this long (still absorbing new changes)
/// before the next attempt, so a transient fault gets time to clear.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Pause between attempts when a flush or shutdown is waiting.
const FINISH_RETRY_PAUSE: Duration = Duration::from_millis(100);

enum Msg {
    Op(BindingOp),
    Record(Box<CallRecord>),
    /// Reply once everything queued before this message is committed.
    Flush(Sender<Result<(), StorageError>>),
    /// Like `Flush`, then exit.
    Shutdown(Sender<Result<(), StorageError>>),
}

#[derive(Debug, Default)]
struct Shared {
    enqueued: AtomicU64,
    committed_batches: AtomicU64,
    committed_statements: AtomicU64,
    failed_commits: AtomicU64,
    dropped: AtomicU64,
    lost_after_exit: AtomicU64,
    gone_logged: AtomicBool,
    records_enqueued: AtomicU64,
    records_committed: AtomicU64,
    records_dropped: AtomicU64,
    records_lost_after_exit: AtomicU64,
    records_gone_logged: AtomicBool,
}

impl Shared {
    fn stats(&self) -> WriterStats {
        WriterStats {
            enqueued: self.enqueued.load(Ordering::Relaxed),
            committed_batches: self.committed_batches.load(Ordering::Relaxed),
            committed_statements: self.committed_statements.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lost_after_exit: self.lost_after_exit.load(Ordering::Relaxed),
            records_enqueued: self.records_enqueued.load(Ordering::Relaxed),
            records_committed: self.records_committed.load(Ordering::Relaxed),
            records_dropped: self.records_dropped.load(Ordering::Relaxed),
            records_lost_after_exit: self.records_lost_after_exit.load(Ordering::Relaxed),
        }
    }
}

/// Counters of the write-behind thread, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Binding changes accepted onto the queue.
    pub enqueued: u64,
    /// Transactions committed (of bindings or of call records).
    pub committed_batches: u64,
    /// Binding row statements committed, after coalescing (at most one per
    /// binding per batch, plus one per `remove_aor`).
    pub committed_statements: u64,
    /// Commit attempts that failed and were (or will be) retried, of
    /// bindings or of call records.
    pub failed_commits: u64,
    /// Binding changes given up on: rejected by the database, or failed too
    /// often.
    pub dropped: u64,
    /// Binding changes enqueued after the thread had exited; they are not
    /// persisted.
    pub lost_after_exit: u64,
    /// Call records accepted onto the queue.
    pub records_enqueued: u64,
    /// Call records committed.
    pub records_committed: u64,
    /// Call records given up on (rejected, or failed too often); each was
    /// logged in full.
    pub records_dropped: u64,
    /// Call records written after the thread had exited; not persisted.
    pub records_lost_after_exit: u64,
}

/// Cheap, cloneable handle to enqueue binding changes. Never blocks.
#[derive(Clone)]
pub struct BindingWriter {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BindingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingWriter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl BindingWriter {
    /// Insert or replace the binding with this `(aor, contact)`.
    pub fn upsert(&self, binding: StoredBinding) {
        self.enqueue(BindingOp::Upsert(Box::new(binding)));
    }

    /// Delete the binding `(aor, contact)`, if stored.
    pub fn remove(&self, aor: impl Into<String>, contact: impl Into<String>) {
        self.enqueue(BindingOp::Remove {
            aor: aor.into(),
            contact: contact.into(),
        });
    }

    /// Delete every binding of `aor` (REGISTER with `Contact: *`,
    /// RFC 3261 §10.2.2).
    pub fn remove_aor(&self, aor: impl Into<String>) {
        self.enqueue(BindingOp::RemoveAor { aor: aor.into() });
    }

    /// Block until every change enqueued before this call (from any clone)
    /// is committed or given up on. `Err(Write { dropped })` if changes were
    /// given up on since the previous flush; `Err(WriterGone)` if the thread
    /// has exited.
    pub fn flush(&self) -> Result<(), StorageError> {
        flush(&self.tx)
    }

    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }

    fn enqueue(&self, op: BindingOp) {
        match self.tx.send(Msg::Op(op)) {
            Ok(()) => {
                self.shared.enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.shared.lost_after_exit.fetch_add(1, Ordering::Relaxed);
                // Once, not per REGISTER: at 10k/s this would drown the log.
                if !self.shared.gone_logged.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "binding writer thread is gone: binding changes are no longer persisted"
                    );
                }
            }
        }
    }
}

/// Cheap, cloneable handle to persist finished calls' records, from
/// [`WriterHandle::call_record_writer`]. Never blocks; records are never
/// coalesced, and those queued when the writer is closed are committed
/// before it exits.
#[derive(Clone)]
pub struct CallRecordWriter {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CallRecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecordWriter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl CallRecordWriter {
    /// Queue `record` for insertion (a `CallRecord` or a `Box` of one).
    pub fn write(&self, record: impl Into<Box<CallRecord>>) {
        match self.tx.send(Msg::Record(record.into())) {
            Ok(()) => {
                self.shared.records_enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::SendError(msg)) => {
                self.shared
                    .records_lost_after_exit
                    .fetch_add(1, Ordering::Relaxed);
                // A record is billing data: log it whole, so it can be
                // recovered from the log. The warning about the thread once.
                if !self
                    .shared
                    .records_gone_logged
                    .swap(true, Ordering::Relaxed)
                {
                    tracing::error!(
                        "storage writer thread is gone: call records are no longer persisted"
                    );
                }
                if let Msg::Record(record) = msg {
                    tracing::error!(?record, "call record not persisted");
                }
            }
        }
    }

    /// Block until every record (and binding change) enqueued before this
    /// call is committed or given up on; see [`BindingWriter::flush`].
    pub fn flush(&self) -> Result<(), StorageError> {
        flush(&self.tx)
    }

    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }
}

fn flush(tx: &Sender<Msg>) -> Result<(), StorageError> {
    let (reply, result) = mpsc::channel();
    tx.send(Msg::Flush(reply))
        .map_err(|_| StorageError::WriterGone)?;
    result.recv().map_err(|_| StorageError::WriterGone)?
}

/// Owner's handle on the writer thread.
///
/// Dropping it without [`WriterHandle::close`] detaches the thread, which
/// then commits what is queued and exits once every [`BindingWriter`] and
/// [`CallRecordWriter`] clone is dropped.
#[derive(Debug)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

impl WriterHandle {
    /// A writer for call records, on the same thread as the bindings.
    pub fn call_record_writer(&self) -> CallRecordWriter {
        CallRecordWriter {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Commit everything queued, stop the thread and wait for it. Changes
    /// enqueued by clones after this call are not persisted (they are
    /// counted in [`WriterStats::lost_after_exit`] and
    /// [`WriterStats::records_lost_after_exit`], and logged).
    pub fn close(self) -> Result<(), StorageError> {
        let (reply, result) = mpsc::channel();
        let sent = self.tx.send(Msg::Shutdown(reply));
        let flushed = match sent {
            Ok(()) => result.recv().unwrap_or(Err(StorageError::WriterGone)),
            Err(_) => Err(StorageError::WriterGone),
        };
        let joined = self.thread.join();
        match (flushed, joined) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(_)) => Err(StorageError::WriterGone),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
}

pub(crate) fn spawn(store: Store) -> Result<(BindingWriter, WriterHandle), StorageError> {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared::default());
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("storage-writer".to_owned())
        .spawn(move || {
            crate::os::background_thread();
            WriterThread::new(store, thread_shared).run(&rx)
        })
        .map_err(StorageError::WriterSpawn)?;
    Ok((
        BindingWriter {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
        },
        WriterHandle { tx, shared, thread },
    ))
}

struct WriterThread {
    store: Store,
    shared: Arc<Shared>,
    /// Binding changes absorbed but not yet committed.
    batch: Batch,
    /// Call records absorbed but not yet committed.
    records: RecordBatch,
    /// Flushes (and the shutdown) to answer after the next commit.
    waiters: Vec<Sender<Result<(), StorageError>>>,
    shutting_down: bool,
    /// Changes given up on since the last answered flush.
    dropped_since_flush: u64,
    /// Set after a failed commit: no new attempt before then unless a flush
    /// is waiting.
    retry_at: Option<Instant>,
}

impl WriterThread {
    fn new(store: Store, shared: Arc<Shared>) -> Self {
        WriterThread {
            store,
            shared,
            batch: Batch::default(),
            records: RecordBatch::default(),
            waiters: Vec::new(),
            shutting_down: false,
            dropped_since_flush: 0,
            retry_at: None,
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            // Wait for work; while shutting down, only take what is queued.
            let first = if self.shutting_down {
                rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else if let Some(at) = self.retry_at {
                rx.recv_timeout(at.saturating_duration_since(Instant::now()))
            } else {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            let mut channel_empty = false;
            let mut disconnected = false;
            match first {
                Ok(msg) => self.absorb(msg),
                Err(RecvTimeoutError::Timeout) => channel_empty = self.shutting_down,
                Err(RecvTimeoutError::Disconnected) => {
                    channel_empty = true;
                    disconnected = true;
                }
            }
            // Let a batch gather before draining it: a thread woken for every
            // binding costs the SIP thread a futex wake-up and a context
            // switch per REGISTER, more than the SQL itself. Within the
            // window, senders find us not waiting and wake nobody.
            if !channel_empty && !self.shutting_down && self.waiters.is_empty() {
                std::thread::sleep(BATCH_WINDOW);
            }
            // Drain what else is queued into the same batch.
            let mut absorbed = 1;
            while !channel_empty && absorbed < MAX_BATCH_MESSAGES {
                match rx.try_recv() {
                    Ok(msg) => {
                        self.absorb(msg);
                        absorbed += 1;
                    }
                    Err(TryRecvError::Empty) => channel_empty = true,
                    Err(TryRecvError::Disconnected) => {
                        channel_empty = true;
                        disconnected = true;
                    }
                }
            }

            if !self.waiters.is_empty() || disconnected {
                self.commit_until_empty();
                self.answer_waiters();
            } else if self.retry_at.is_none_or(|at| Instant::now() >= at) {
                self.commit_once();
            }

            if disconnected || (self.shutting_down && channel_empty) {
                return;
            }
        }
    }

    fn absorb(&mut self, msg: Msg) {
        match msg {
            Msg::Op(op) => self.batch.push(op),
            Msg::Record(record) => self.records.push(record),
            Msg::Flush(reply) => self.waiters.push(reply),
            Msg::Shutdown(reply) => {
                self.waiters.push(reply);
                self.shutting_down = true;
            }
        }
    }

    /// Someone is waiting: retry (with short pauses) until every change is
    /// committed or given up on. Terminates because each failure brings
    /// every change one step closer to `MAX_FAILURES`.
    fn commit_until_empty(&mut self) {
        while !self.commit_once() {
            std::thread::sleep(FINISH_RETRY_PAUSE);
        }
    }

    fn answer_waiters(&mut self) {
        let dropped = std::mem::take(&mut self.dropped_since_flush);
        for waiter in self.waiters.drain(..) {
            let result = if dropped == 0 {
                Ok(())
            } else {
                Err(StorageError::Write { dropped })
            };
            // A flusher that stopped waiting is not an error.
            let _ = waiter.send(result);
        }
    }

    /// One commit attempt of whatever is queued (bindings, then records, in
    /// separate transactions). Returns whether nothing is left queued.
    fn commit_once(&mut self) -> bool {
        let mut failed = false;
        if !self.batch.is_empty() {
            failed |= !self.commit_bindings();
        }
        if !self.records.is_empty() {
            failed |= !self.commit_records();
        }
        self.retry_at = failed.then(|| Instant::now() + RETRY_DELAY);
        self.batch.is_empty() && self.records.is_empty()
    }

    /// Commit the queued binding changes. Returns whether the commit
    /// succeeded.
    fn commit_bindings(&mut self) -> bool {
        match self.store.commit_batch(&self.batch) {
            Ok(Committed {
                statements,
                rejected,
            }) => {
                self.batch.clear();
                let rejected_count = rejected.len();
                for r in rejected {
                    match r {
                        Rejected::Clear { aor, error } => {
                            tracing::error!(%error, aor, "database rejected removing all bindings of an AOR; dropped");
                        }
                        Rejected::Contact {
                            aor,
                            contact,
                            error,
                        } => {
                            tracing::error!(%error, aor, contact, "database rejected a binding change; dropped");
                        }
                    }
                }
                self.count_dropped(rejected_count);
                let s = &self.shared;
                s.committed_batches.fetch_add(1, Ordering::Relaxed);
                s.committed_statements
                    .fetch_add((statements - rejected_count) as u64, Ordering::Relaxed);
                true
            }
            Err(error) => {
                self.shared.failed_commits.fetch_add(1, Ordering::Relaxed);
                let dropped = self.batch.record_failure(MAX_FAILURES);
                tracing::error!(
                    %error,
                    pending = self.batch.statements(),
                    given_up = dropped.len(),
                    "committing queued binding changes failed; will retry"
                );
                for d in &dropped {
                    match d {
                        DroppedChange::Clear { aor } => {
                            tracing::error!(
                                aor,
                                failures = MAX_FAILURES,
                                "gave up removing all bindings of an AOR"
                            );
                        }
                        DroppedChange::Contact { aor, contact } => {
                            tracing::error!(
                                aor,
                                contact,
                                failures = MAX_FAILURES,
                                "gave up persisting a binding change"
                            );
                        }
                    }
                }
                self.count_dropped(dropped.len());
                false
            }
        }
    }

    /// Insert the queued call records. Returns whether the commit
    /// succeeded.
    fn commit_records(&mut self) -> bool {
        match self.store.commit_records(&self.records) {
            Ok(CommittedRecords { inserted, rejected }) => {
                let rejected_count = rejected.len();
                for (index, error) in rejected {
                    if let Some(queued) = self.records.records.get(index) {
                        tracing::error!(%error, record = ?queued.record, "database rejected a call record; dropped");
                    }
                }
                self.records.clear();
                self.count_dropped_records(rejected_count);
                let s = &self.shared;
                s.committed_batches.fetch_add(1, Ordering::Relaxed);
                s.records_committed
                    .fetch_add(inserted as u64, Ordering::Relaxed);
                true
            }
            Err(error) => {
                self.shared.failed_commits.fetch_add(1, Ordering::Relaxed);
                let dropped = self.records.record_failure(MAX_FAILURES);
                tracing::error!(
                    %error,
                    pending = self.records.len(),
                    given_up = dropped.len(),
                    "committing queued call records failed; will retry"
                );
                for record in &dropped {
                    // Logged whole so that it can be recovered from the log.
                    tracing::error!(
                        ?record,
                        failures = MAX_FAILURES,
                        "gave up persisting a call record"
                    );
                }
                self.count_dropped_records(dropped.len());
                false
            }
        }
    }

    fn count_dropped(&mut self, n: usize) {
        let n = n as u64;
        self.dropped_since_flush += n;
        self.shared.dropped.fetch_add(n, Ordering::Relaxed);
    }

    fn count_dropped_records(&mut self, n: usize) {
        let n = n as u64;
        self.dropped_since_flush += n;
        self.shared.records_dropped.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::storage::bindings::tests::{apply_to_model, arb_op, binding, Model};
    use crate::storage::call_records::tests::{full_record, minimal_record};
    use crate::storage::CallRecordFilter;
    use proptest::prelude::*;
    use rusqlite::Connection;
    use std::path::Path;
    use std::time::UNIX_EPOCH;

    fn load_map(path: &Path) -> Model {
        Store::open(path)
            .unwrap()
            .load_bindings(UNIX_EPOCH)
            .unwrap()
            .into_iter()
            .map(|b| ((b.aor.clone(), b.contact.clone()), b))
            .collect()
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn upsert_then_remove_in_one_flush_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        writer.upsert(binding("alice", "sip:a", 1));
        writer.upsert(binding("alice", "sip:b", 1));
        writer.upsert(binding("bob", "sip:c", 1));
        writer.remove("alice", "sip:a");
        writer.flush().unwrap();
        writer.remove_aor("bob");
        writer.upsert(binding("bob", "sip:d", 2));
        writer.flush().unwrap();
        handle.close().unwrap();

        let stored = load_map(&path);
        let mut keys: Vec<_> = stored.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("alice".to_owned(), "sip:b".to_owned()),
                ("bob".to_owned(), "sip:d".to_owned())
            ]
        );
    }

    #[test]
    fn flush_sees_changes_from_other_clones_and_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        let producers: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        w.upsert(binding(&format!("agent-{t}"), &format!("sip:{i}"), i));
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(writer.stats().enqueued, 1000);
        handle.close().unwrap();
        assert_eq!(load_map(&path).len(), 1000);
    }

    /// Hold the database's write lock from a second connection so the writer
    /// cannot commit while we enqueue; everything enqueued meanwhile must
    /// then land in at most two transactions, coalesced per binding.
    #[test]
    fn queued_upserts_of_one_binding_coalesce_into_one_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        for cseq in 0..1000 {
            writer.upsert(binding("alice", "sip:a", cseq));
        }
        blocker.execute_batch("COMMIT").unwrap();
        writer.flush().unwrap();
        let stats = writer.stats();
        assert_eq!(stats.enqueued, 1000);
        assert!(stats.committed_batches <= 2, "{stats:?}");
        assert!(stats.committed_statements <= 2, "{stats:?}");
        handle.close().unwrap();
        let stored = load_map(&path);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[&("alice".to_owned(), "sip:a".to_owned())].cseq, 999);
    }

    #[test]
    fn bindings_survive_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/b.db");
        let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        writer.upsert(binding("alice", "sip:a", 1));
        handle.close().unwrap();
        // A second generation of the process: load, then keep writing.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load_bindings(UNIX_EPOCH).unwrap().len(), 1);
        let (writer, handle) = store.spawn_writer().unwrap();
        writer.upsert(binding("bob", "sip:b", 1));
        handle.close().unwrap();
        assert_eq!(load_map(&path).len(), 2);
    }

    #[test]
    fn a_busy_database_is_retried_until_it_frees_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let store = Store::open(&path).unwrap();
        store.set_busy_timeout(Duration::from_millis(10)).unwrap();
        let (writer, handle) = store.spawn_writer().unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        writer.upsert(binding("alice", "sip:a", 1));
        wait_until("a failed commit", || writer.stats().failed_commits >= 1);
        blocker.execute_batch("COMMIT").unwrap();
        writer.flush().unwrap();
        let stats = writer.stats();
        assert_eq!(stats.dropped, 0, "{stats:?}");
        handle.close().unwrap();
        assert_eq!(load_map(&path).len(), 1);
    }

    /// A change the database rejects (here: a trigger) is dropped on its
    /// own; the rest of its batch and later changes are committed.
    #[test]
    fn a_rejected_change_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let store = Store::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON bindings WHEN NEW.aor = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            )
            .unwrap();
        let (writer, handle) = store.spawn_writer().unwrap();
        writer.upsert(binding("alice", "sip:a", 1));
        writer.upsert(binding("poison", "sip:p", 1));
        writer.upsert(binding("bob", "sip:b", 1));
        match writer.flush() {
            Err(StorageError::Write { dropped: 1 }) => {}
            other => panic!("expected one dropped change, got {other:?}"),
        }
        writer.upsert(binding("carol", "sip:c", 1));
        writer.flush().unwrap();
        assert_eq!(writer.stats().dropped, 1);
        handle.close().unwrap();
        let stored = load_map(&path);
        assert_eq!(stored.len(), 3);
        assert!(!stored.contains_key(&("poison".to_owned(), "sip:p".to_owned())));
    }

    /// A change that makes every commit fail (here: a trigger rolling back
    /// the transaction) is given up on after MAX_FAILURES; later changes are
    /// committed.
    #[test]
    fn a_change_that_always_fails_the_commit_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let store = Store::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON bindings WHEN NEW.aor = 'poison'
                 BEGIN SELECT RAISE(ROLLBACK, 'poisoned'); END;",
            )
            .unwrap();
        let (writer, handle) = store.spawn_writer().unwrap();
        writer.upsert(binding("poison", "sip:p", 1));
        match writer.flush() {
            Err(StorageError::Write { dropped: 1 }) => {}
            other => panic!("expected one dropped change, got {other:?}"),
        }
        assert_eq!(writer.stats().failed_commits, u64::from(MAX_FAILURES));
        writer.upsert(binding("alice", "sip:a", 1));
        writer.flush().unwrap();
        handle.close().unwrap();
        assert_eq!(load_map(&path).len(), 1);
    }

    #[test]
    fn after_close_changes_are_counted_as_lost_and_flush_fails() {
        let (writer, handle) = Store::open_in_memory().unwrap().spawn_writer().unwrap();
        writer.upsert(binding("alice", "sip:a", 1));
        handle.close().unwrap();
        assert_eq!(writer.stats().committed_statements, 1);
        writer.upsert(binding("alice", "sip:a", 2));
        writer.remove_aor("alice");
        assert_eq!(writer.stats().lost_after_exit, 2);
        assert!(matches!(writer.flush(), Err(StorageError::WriterGone)));
    }

    #[test]
    fn dropping_the_handle_keeps_the_writer_running_for_its_clones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        drop(handle);
        writer.upsert(binding("alice", "sip:a", 1));
        writer.flush().unwrap();
        drop(writer);
        assert_eq!(load_map(&path).len(), 1);
    }

    fn all_records(path: &Path) -> Vec<CallRecord> {
        Store::open(path)
            .unwrap()
            .call_records(&CallRecordFilter::default())
            .unwrap()
    }

    #[test]
    fn call_records_round_trip_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (bindings, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        let records = handle.call_record_writer();
        let full = full_record(1);
        let minimal = minimal_record(2);
        records.write(full.clone());
        records.clone().write(Box::new(minimal.clone()));
        bindings.upsert(binding("alice", "sip:a", 1));
        records.flush().unwrap();

        // Read back from a second connection while the writer still runs.
        let reader = Store::open(&path).unwrap();
        assert_eq!(reader.call_record(&full.id).unwrap(), Some(full.clone()));
        assert_eq!(
            reader.call_records(&CallRecordFilter::default()).unwrap(),
            vec![full, minimal]
        );
        let stats = records.stats();
        assert_eq!((stats.records_enqueued, stats.records_committed), (2, 2));
        assert_eq!((stats.enqueued, stats.committed_statements), (1, 1));
        handle.close().unwrap();
        assert_eq!(load_map(&path).len(), 1);
    }

    /// Many records of one Call-ID written in one batch are all kept.
    #[test]
    fn records_are_never_coalesced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (_bindings, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        let records = handle.call_record_writer();
        for _ in 0..100 {
            records.write(minimal_record(1));
        }
        handle.close().unwrap();
        assert_eq!(all_records(&path).len(), 100);
    }

    /// Shutdown without a flush first: what is queued is committed.
    #[test]
    fn close_commits_queued_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (_bindings, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
        let records = handle.call_record_writer();
        // Hold the write lock so that the records are still queued when
        // close is called.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        for n in 0..50 {
            records.write(full_record(n));
        }
        let closing = std::thread::spawn(move || handle.close());
        std::thread::sleep(Duration::from_millis(50));
        blocker.execute_batch("COMMIT").unwrap();
        closing.join().unwrap().unwrap();
        assert_eq!(all_records(&path).len(), 50);
        assert_eq!(records.stats().records_dropped, 0);
    }

    #[test]
    fn a_busy_database_is_retried_for_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let store = Store::open(&path).unwrap();
        store.set_busy_timeout(Duration::from_millis(10)).unwrap();
        let (_bindings, handle) = store.spawn_writer().unwrap();
        let records = handle.call_record_writer();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        records.write(full_record(1));
        wait_until("a failed commit", || records.stats().failed_commits >= 1);
        blocker.execute_batch("COMMIT").unwrap();
        records.flush().unwrap();
        let stats = records.stats();
        assert_eq!((stats.records_committed, stats.records_dropped), (1, 0));
        handle.close().unwrap();
        assert_eq!(all_records(&path), vec![full_record(1)]);
    }

    /// A record that makes every commit fail is given up on after
    /// MAX_FAILURES, without holding back bindings or later records.
    #[test]
    fn a_record_that_always_fails_the_commit_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let store = Store::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON call_records WHEN NEW.call_id = 'min-666'
                 BEGIN SELECT RAISE(ROLLBACK, 'poisoned'); END;",
            )
            .unwrap();
        let (bindings, handle) = store.spawn_writer().unwrap();
        let records = handle.call_record_writer();
        records.write(minimal_record(666));
        bindings.upsert(binding("alice", "sip:a", 1));
        match records.flush() {
            Err(StorageError::Write { dropped: 1 }) => {}
            other => panic!("expected one dropped record, got {other:?}"),
        }
        let stats = records.stats();
        assert_eq!(stats.failed_commits, u64::from(MAX_FAILURES));
        assert_eq!((stats.records_dropped, stats.dropped), (1, 0));
        records.write(minimal_record(1));
        records.flush().unwrap();
        handle.close().unwrap();
        assert_eq!(ids_of(&all_records(&path)), vec!["min-1"]);
        assert_eq!(load_map(&path).len(), 1);
    }

    fn ids_of(records: &[CallRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn after_close_records_are_counted_as_lost() {
        let (_bindings, handle) = Store::open_in_memory().unwrap().spawn_writer().unwrap();
        let records = handle.call_record_writer();
        records.write(minimal_record(1));
        handle.close().unwrap();
        assert_eq!(records.stats().records_committed, 1);
        records.write(minimal_record(2));
        assert_eq!(records.stats().records_lost_after_exit, 1);
        assert!(matches!(records.flush(), Err(StorageError::WriterGone)));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Op(BindingOp),
        Flush,
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![12 => arb_op().prop_map(Step::Op), 1 => Just(Step::Flush)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any sequence of changes, cut into batches at random flush points,
        /// leaves the file in the state a plain HashMap reaches.
        #[test]
        fn writer_matches_a_hashmap_reference(steps in prop::collection::vec(arb_step(), 0..120)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("b.db");
            let (writer, handle) = Store::open(&path).unwrap().spawn_writer().unwrap();
            let mut model = Model::new();
            for step in steps {
                match step {
                    Step::Flush => writer.flush().unwrap(),
                    Step::Op(op) => {
                        apply_to_model(&mut model, &op);
                        match op {
                            BindingOp::Upsert(b) => writer.upsert(*b),
                            BindingOp::Remove { aor, contact } => writer.remove(aor, contact),
                            BindingOp::RemoveAor { aor } => writer.remove_aor(aor),
                        }
                    }
                }
            }
            handle.close().unwrap();
            prop_assert_eq!(load_map(&path), model);
        }
    }
}

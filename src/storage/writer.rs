//! Write-behind persistence of registrar bindings.
//!
//! The registrar keeps its bindings in memory and must never wait for the
//! disk, so it only *enqueues* changes on an unbounded channel. One dedicated
//! thread owns the database connection, drains whatever has queued up,
//! coalesces it (only the last change per binding matters) and commits it in
//! one transaction. Under load a batch therefore carries thousands of
//! REGISTERs for the price of one commit; when idle, a change is on disk
//! within one commit's latency.
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

use crate::storage::bindings::{Batch, BindingOp, DroppedChange, StoredBinding};
use crate::storage::error::StorageError;
use crate::storage::sqlite::{Committed, Rejected, Store};

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
    /// Reply once everything queued before this message is committed.
    Flush(Sender<Result<(), StorageError>>),
    /// Like `Flush`, then exit.
    Shutdown(Sender<Result<(), StorageError>>),
}

#[derive(Default)]
struct Shared {
    enqueued: AtomicU64,
    committed_batches: AtomicU64,
    committed_statements: AtomicU64,
    failed_commits: AtomicU64,
    dropped: AtomicU64,
    lost_after_exit: AtomicU64,
    gone_logged: AtomicBool,
}

/// Counters of the write-behind thread, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Changes accepted onto the queue.
    pub enqueued: u64,
    /// Transactions committed.
    pub committed_batches: u64,
    /// Row statements committed, after coalescing (at most one per binding
    /// per batch, plus one per `remove_aor`).
    pub committed_statements: u64,
    /// Commit attempts that failed and were (or will be) retried.
    pub failed_commits: u64,
    /// Changes given up on: rejected by the database, or failed too often.
    pub dropped: u64,
    /// Changes enqueued after the thread had exited; they are not persisted.
    pub lost_after_exit: u64,
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
        let (reply, result) = mpsc::channel();
        self.tx
            .send(Msg::Flush(reply))
            .map_err(|_| StorageError::WriterGone)?;
        result.recv().map_err(|_| StorageError::WriterGone)?
    }

    pub fn stats(&self) -> WriterStats {
        let s = &self.shared;
        WriterStats {
            enqueued: s.enqueued.load(Ordering::Relaxed),
            committed_batches: s.committed_batches.load(Ordering::Relaxed),
            committed_statements: s.committed_statements.load(Ordering::Relaxed),
            failed_commits: s.failed_commits.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            lost_after_exit: s.lost_after_exit.load(Ordering::Relaxed),
        }
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

/// Owner's handle on the writer thread.
///
/// Dropping it without [`WriterHandle::close`] detaches the thread, which
/// then commits what is queued and exits once every [`BindingWriter`] clone
/// is dropped.
#[derive(Debug)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    thread: JoinHandle<()>,
}

impl WriterHandle {
    /// Commit everything queued, stop the thread and wait for it. Changes
    /// enqueued by clones after this call are not persisted (they are
    /// counted in [`WriterStats::lost_after_exit`] and logged once).
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
            shared,
        },
        WriterHandle { tx, thread },
    ))
}

struct WriterThread {
    store: Store,
    shared: Arc<Shared>,
    /// Changes absorbed but not yet committed.
    batch: Batch,
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

    /// One commit attempt. Returns whether the batch is now empty.
    fn commit_once(&mut self) -> bool {
        if self.batch.is_empty() {
            self.retry_at = None;
            return true;
        }
        match self.store.commit_batch(&self.batch) {
            Ok(Committed {
                statements,
                rejected,
            }) => {
                self.batch.clear();
                self.retry_at = None;
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
                self.retry_at = Some(Instant::now() + RETRY_DELAY);
                self.batch.is_empty()
            }
        }
    }

    fn count_dropped(&mut self, n: usize) {
        let n = n as u64;
        self.dropped_since_flush += n;
        self.shared.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::storage::bindings::tests::{apply_to_model, arb_op, binding, Model};
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

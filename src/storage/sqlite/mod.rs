//! The SQLite backend: one database file per node.

mod bindings;
mod call_records;
mod migrations;

use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};

use crate::call::record::CallRecord;
use crate::storage::bindings::{Batch, StoredBinding};
use crate::storage::call_records::{CallRecordFilter, RecordBatch};
use crate::storage::error::{OpenError, StorageError};
use crate::storage::writer::{self, BindingWriter, WriterHandle};

pub(crate) use bindings::{Committed, Rejected};
pub(crate) use call_records::CommittedRecords;

/// How long a statement waits for a lock held by another connection (a
/// backup tool, an operator's `sqlite3` shell) before failing with BUSY.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open store. Read what is needed at startup ([`Store::load_bindings`]),
/// then hand the store to the write-behind thread with [`Store::spawn_writer`].
///
/// Readers that run alongside the writer (the control API's call record
/// queries) open a second `Store` on the same file: in WAL mode readers
/// and the writer do not block each other.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Open (creating it and its parent directories if needed) the database
    /// file at `path`, and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StorageError> {
        let open_error = |source| StorageError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(OpenError::CreateDir(e)))?;
        }
        // No SQLITE_OPEN_URI: a configured path that happens to start with
        // "file:" is a file name, not a URI with options.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .and_then(|conn| {
                configure_file(&conn)?;
                Ok(conn)
            })
            .map_err(|e| open_error(OpenError::Sqlite(e)))?;
        Store::with_connection(conn)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store, StorageError> {
        let conn = Connection::open_in_memory().map_err(|e| StorageError::Open {
            path: ":memory:".into(),
            source: OpenError::Sqlite(e),
        })?;
        Store::with_connection(conn)
    }

    fn with_connection(mut conn: Connection) -> Result<Store, StorageError> {
        // Off by default in SQLite; on, `call_offers` rows go with their
        // call record when records are deleted.
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// Change how long statements wait for a lock held by another connection
    /// before failing (default 5 s).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StorageError> {
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// All bindings still valid at `now`. Expired ones (`expires_at <= now`)
    /// are deleted. A row that cannot be decoded is logged and skipped
    /// rather than failing the whole load: that agent re-registers.
    pub fn load_bindings(&self, now: SystemTime) -> Result<Vec<StoredBinding>, StorageError> {
        let loaded = bindings::load(&self.conn, now)?;
        tracing::info!(
            loaded = loaded.bindings.len(),
            expired = loaded.expired,
            undecodable = loaded.undecodable,
            "registrar bindings loaded from storage"
        );
        Ok(loaded.bindings)
    }

    /// Move the connection to a dedicated write-behind thread. See
    /// [`BindingWriter`].
    pub fn spawn_writer(self) -> Result<(BindingWriter, WriterHandle), StorageError> {
        writer::spawn(self)
    }

    /// Commit one coalesced batch of binding writes in one transaction.
    pub(crate) fn commit_batch(&mut self, batch: &Batch) -> rusqlite::Result<Committed> {
        bindings::commit_batch(&mut self.conn, batch)
    }

    /// Insert queued call records in one transaction.
    pub(crate) fn commit_records(
        &mut self,
        batch: &RecordBatch,
    ) -> rusqlite::Result<CommittedRecords> {
        call_records::commit_records(&mut self.conn, batch)
    }

    /// Call records matching `filter`, newest arrival first, at most
    /// [`CallRecordFilter::effective_limit`]. Rows that cannot be decoded
    /// are logged and skipped.
    pub fn call_records(&self, filter: &CallRecordFilter) -> Result<Vec<CallRecord>, StorageError> {
        Ok(call_records::query(&self.conn, filter)?)
    }

    /// The record of the call whose caller leg had this SIP Call-ID (the
    /// newest, should a phone have reused one). A row that cannot be
    /// decoded is an error here.
    pub fn call_record(&self, id: &str) -> Result<Option<CallRecord>, StorageError> {
        Ok(call_records::by_id(&self.conn, id)?)
    }

    /// Every call record matching `filter` (newest arrival first), handed
    /// to `visit` one at a time, for reports and exports that read more
    /// than [`MAX_CALL_RECORDS`](crate::storage::MAX_CALL_RECORDS): here
    /// `filter.limit` is not capped, and `None` means all. Returns how many
    /// were visited.
    pub fn scan_call_records(
        &self,
        filter: &CallRecordFilter,
        visit: impl FnMut(CallRecord),
    ) -> Result<usize, StorageError> {
        Ok(call_records::scan(&self.conn, filter, filter.limit, visit)?)
    }

    /// The recording `recording` of call `id` was deleted: the newest
    /// record of that call keeps everything else but no longer names it.
    /// Returns whether a record named it.
    pub fn forget_recording(&self, id: &str, recording: &Path) -> Result<bool, StorageError> {
        Ok(call_records::forget_recording(&self.conn, id, recording)?)
    }

    /// Retention: deletes the records of recorded calls that arrived before
    /// `before`, oldest first and at most `max` in one transaction (so the
    /// write-behind thread never waits long for the lock), and returns
    /// their recordings' paths (relative to the recording directory) for
    /// the caller to delete. Records of calls that were not recorded stay.
    pub fn delete_recorded_calls_before(
        &mut self,
        before: SystemTime,
        max: usize,
    ) -> Result<Vec<std::path::PathBuf>, StorageError> {
        Ok(call_records::delete_recorded_before(
            &mut self.conn,
            before,
            max,
        )?)
    }
}

fn configure_file(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
    // WAL: readers (an operator's shell, a backup) never block the writer,
    // and a commit is one sequential append instead of a rollback journal.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems (network mounts) cannot do WAL; SQLite then keeps
        // the previous mode, which is slower but correct.
        tracing::warn!(journal_mode = %mode, "storage could not switch to WAL mode");
    }
    // In WAL mode NORMAL syncs at checkpoints only: a power cut may lose the
    // last commits but never corrupts the file, and bindings are refreshed by
    // the next REGISTER anyway.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::storage::bindings::tests::binding;
    use crate::storage::bindings::BindingOp;
    use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
    use std::time::UNIX_EPOCH;

    fn commit(store: &mut Store, ops: Vec<BindingOp>) {
        let mut batch = Batch::default();
        for op in ops {
            batch.push(op);
        }
        let committed = store.commit_batch(&batch).unwrap();
        assert!(committed.rejected.is_empty());
    }

    /// Every field set, IPv6 with a scope id, non-ASCII text.
    fn full_binding() -> StoredBinding {
        StoredBinding {
            aor: "agent-42".to_owned(),
            contact:
                "<sip:agent42@[2001:db8::7]:5070;transport=tcp;ob>;+sip.instance=\"<urn:uuid:x>\""
                    .to_owned(),
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".to_owned()),
            reg_id: Some(u32::MAX),
            call_id: "a84b4c76e66710@pc33.example.com".to_owned(),
            cseq: u32::MAX,
            expires_at: UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
            q: Some(1000),
            transport: "TCP".to_owned(),
            source: SocketAddr::V6(SocketAddrV6::new(
                "fe80::1ff:fe23:4567:890a".parse().unwrap(),
                65535,
                0,
                3,
            )),
            local: SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 5060, 0, 0)),
            user_agent: Some("Pöly/1.0 (\"quoted\", semi;colon)".to_owned()),
            path: vec![
                "<sip:p1.example.com;lr>".to_owned(),
                "<sip:p2.example.com;lr;x=\"a,b\">".to_owned(),
            ],
        }
    }

    #[test]
    fn round_trips_every_field() {
        let mut store = Store::open_in_memory().unwrap();
        let full = full_binding();
        let minimal = binding("agent-7", "sip:agent7@192.0.2.7", 0);
        commit(
            &mut store,
            vec![
                BindingOp::Upsert(Box::new(full.clone())),
                BindingOp::Upsert(Box::new(minimal.clone())),
            ],
        );
        let mut loaded = store.load_bindings(UNIX_EPOCH).unwrap();
        loaded.sort_by(|a, b| a.aor.cmp(&b.aor));
        assert_eq!(loaded, vec![full, minimal]);
    }

    #[test]
    fn upsert_replaces_every_field_of_the_same_key() {
        let mut store = Store::open_in_memory().unwrap();
        let full = full_binding();
        let mut replaced = binding(&full.aor, &full.contact, 9);
        replaced.source = "192.0.2.99:1024".parse().unwrap();
        commit(&mut store, vec![BindingOp::Upsert(Box::new(full))]);
        commit(
            &mut store,
            vec![BindingOp::Upsert(Box::new(replaced.clone()))],
        );
        assert_eq!(store.load_bindings(UNIX_EPOCH).unwrap(), vec![replaced]);
    }

    #[test]
    fn expired_bindings_are_dropped_and_deleted_at_load() {
        let mut store = Store::open_in_memory().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut expired = binding("a", "sip:old", 1);
        expired.expires_at = now - Duration::from_secs(1);
        let mut at_now = binding("a", "sip:now", 1);
        at_now.expires_at = now;
        let mut live = binding("a", "sip:live", 1);
        live.expires_at = now + Duration::from_nanos(1);
        commit(
            &mut store,
            vec![
                BindingOp::Upsert(Box::new(expired)),
                BindingOp::Upsert(Box::new(at_now)),
                BindingOp::Upsert(Box::new(live.clone())),
            ],
        );
        assert_eq!(store.load_bindings(now).unwrap(), vec![live.clone()]);
        // They were deleted, not just skipped: an earlier clock sees them gone.
        assert_eq!(store.load_bindings(UNIX_EPOCH).unwrap(), vec![live]);
    }

    #[test]
    fn undecodable_rows_are_skipped_not_fatal() {
        let mut store = Store::open_in_memory().unwrap();
        let good = binding("good", "sip:g", 1);
        commit(
            &mut store,
            vec![
                BindingOp::Upsert(Box::new(good.clone())),
                BindingOp::Upsert(Box::new(binding("bad", "sip:b", 1))),
            ],
        );
        store
            .conn
            .execute(
                "UPDATE bindings SET source = 'not an address' WHERE aor = 'bad'",
                [],
            )
            .unwrap();
        assert_eq!(store.load_bindings(UNIX_EPOCH).unwrap(), vec![good]);
    }

    #[test]
    fn open_creates_parent_directories_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/switchboard.db");
        let store = Store::open(&path).unwrap();
        assert!(path.exists());
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn open_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where a parent directory should be.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("switchboard.db");
        match Store::open(&path) {
            Err(StorageError::Open {
                path: p,
                source: OpenError::CreateDir(_),
            }) => assert_eq!(p, path),
            other => panic!("expected Open/CreateDir, got {other:?}"),
        }
        // A directory where the database file should be.
        match Store::open(dir.path()) {
            Err(StorageError::Open {
                source: OpenError::Sqlite(_),
                ..
            }) => {}
            other => panic!("expected Open/Sqlite, got {other:?}"),
        }
    }

    #[test]
    fn bindings_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let full = full_binding();
        {
            let mut store = Store::open(&path).unwrap();
            commit(&mut store, vec![BindingOp::Upsert(Box::new(full.clone()))]);
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load_bindings(UNIX_EPOCH).unwrap(), vec![full]);
    }
}

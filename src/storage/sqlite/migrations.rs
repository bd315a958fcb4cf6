//! Schema migrations, keyed by `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to version `i + 1`. A new
//! table or column is a new entry appended at the end; existing entries are
//! never edited, since deployed databases have already run them.

use rusqlite::{Connection, TransactionBehavior};

use crate::storage::error::MigrationError;

const MIGRATIONS: &[&str] = &[
    // 1: registrar bindings. WITHOUT ROWID because every write is by the
    // (aor, contact) primary key or an AOR prefix of it. No index on the
    // expiry: it is only used at startup, by a load that reads every row
    // anyway, while an index would cost an extra B-tree update per REGISTER.
    // Times are signed nanoseconds since the Unix epoch so SystemTime
    // round-trips exactly.
    "CREATE TABLE bindings (
        aor             TEXT    NOT NULL,
        contact         TEXT    NOT NULL,
        instance        TEXT,
        reg_id          INTEGER,
        call_id         TEXT    NOT NULL,
        cseq            INTEGER NOT NULL,
        expires_unix_ns INTEGER NOT NULL,
        q               INTEGER,
        transport       TEXT    NOT NULL,
        source          TEXT    NOT NULL,
        local           TEXT    NOT NULL,
        user_agent      TEXT,
        path            TEXT    NOT NULL,
        PRIMARY KEY (aor, contact)
    ) WITHOUT ROWID;",
    // 2: call detail records (`call::record::CallRecord`): `call_records`,
    // one row per call, inserted once when the call ends and never updated,
    // and `call_offers`, every agent rung for it, in order. The key is the
    // rowid `seq`, not the Call-ID: a Call-ID comes from the caller's phone
    // and is not trusted to be unique, and a record must never be lost to a
    // conflict. Times are integer milliseconds since the Unix epoch (UTC),
    // durations integer milliseconds, enums their stable lower-case names;
    // a leg's six quality columns are all NULL when it was not measured.
    // The indexes serve the control API's filters, newest arrival first:
    // by time, by queue, by answering agent, by outcome (each index ends in
    // arrived_ms and, implicitly, the rowid, so no sort step is needed), and
    // the lookup by Call-ID. The caller filter is a substring match, which
    // no index can serve; it walks the time index.
    "CREATE TABLE call_records (
        seq                     INTEGER PRIMARY KEY,
        call_id                 TEXT    NOT NULL,
        direction               TEXT    NOT NULL,
        caller                  TEXT    NOT NULL,
        dialled                 TEXT    NOT NULL,
        queue                   TEXT,
        ivr_choices             TEXT    NOT NULL,
        agent                   TEXT,
        arrived_ms              INTEGER NOT NULL,
        queued_ms               INTEGER,
        answered_ms             INTEGER,
        ended_ms                INTEGER NOT NULL,
        wait_ms                 INTEGER NOT NULL,
        talk_ms                 INTEGER NOT NULL,
        hold_ms                 INTEGER NOT NULL,
        wrap_up_ms              INTEGER NOT NULL,
        outcome                 TEXT    NOT NULL,
        hung_up_by              TEXT,
        end_reason              TEXT    NOT NULL,
        recording               TEXT,
        caller_packets_received INTEGER,
        caller_packets_sent     INTEGER,
        caller_lost             INTEGER,
        caller_jitter_ms        REAL,
        caller_mos              REAL,
        caller_rtt_ms           REAL,
        agent_packets_received  INTEGER,
        agent_packets_sent      INTEGER,
        agent_lost              INTEGER,
        agent_jitter_ms         REAL,
        agent_mos               REAL,
        agent_rtt_ms            REAL
    );
    CREATE INDEX call_records_arrived ON call_records (arrived_ms);
    CREATE INDEX call_records_queue   ON call_records (queue, arrived_ms);
    CREATE INDEX call_records_agent   ON call_records (agent, arrived_ms);
    CREATE INDEX call_records_outcome ON call_records (outcome, arrived_ms);
    CREATE INDEX call_records_call_id ON call_records (call_id);
    CREATE TABLE call_offers (
        call_seq INTEGER NOT NULL REFERENCES call_records (seq) ON DELETE CASCADE,
        ordinal  INTEGER NOT NULL,
        agent    TEXT    NOT NULL,
        at_ms    INTEGER NOT NULL,
        result   TEXT    NOT NULL,
        ended_ms INTEGER,
        PRIMARY KEY (call_seq, ordinal)
    ) WITHOUT ROWID;",
];

/// The schema version this build writes.
#[cfg(test)]
fn latest_version() -> u32 {
    version_after(MIGRATIONS)
}

fn version_after(migrations: &[&str]) -> u32 {
    // The list is a compile-time constant far below u32::MAX.
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

/// Bring the schema up to the latest version. Each step runs in its own
/// transaction together with the `user_version` bump, so a crash mid-way
/// leaves the database at a consistent earlier version.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrationError> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), MigrationError> {
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(MigrationError::ReadVersion)?;
    let supported = version_after(migrations);
    if found > supported {
        return Err(MigrationError::TooNew { found, supported });
    }
    for (sql, to_version) in migrations.iter().zip(1..).skip(found as usize) {
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            // IMMEDIATE takes the write lock before reading the version: if
            // two processes open the same fresh file, the second waits for the
            // first to commit, then sees the bumped version and skips the step.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if current < to_version {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", to_version)?;
            }
            tx.commit()
        };
        step(conn).map_err(|source| MigrationError::Step { to_version, source })?;
        tracing::info!(version = to_version, "storage schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn version(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn fresh_database_reaches_latest_and_rerun_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), latest_version());
        assert!(latest_version() >= 1);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), latest_version());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bindings'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    /// A database written by a build that knew only version 1 keeps its
    /// bindings and gains the call record tables.
    #[test]
    fn a_version_1_database_is_migrated_with_its_bindings() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap();
        assert_eq!(version(&conn), 1);
        conn.execute(
            "INSERT INTO bindings (aor, contact, call_id, cseq, expires_unix_ns, transport,
                 source, local, path)
             VALUES ('alice', 'sip:a', 'c', 1, 0, 'UDP', '192.0.2.1:5060', '192.0.2.2:5060', '')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), latest_version());
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM bindings"), 1);
        assert_eq!(count("SELECT count(*) FROM call_records"), 0);
        assert_eq!(count("SELECT count(*) FROM call_offers"), 0);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        match migrate(&mut conn) {
            Err(MigrationError::TooNew { found, supported }) => {
                assert_eq!(found, latest_version() + 1);
                assert_eq!(supported, latest_version());
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[test]
    fn failed_step_is_rolled_back_with_its_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x);",
            // Fails on its second statement, after creating `b`.
            "CREATE TABLE b (x); CREATE TABLE a (y);",
        ];
        match migrate_with(&mut conn, &steps) {
            Err(MigrationError::Step { to_version: 2, .. }) => {}
            other => panic!("expected Step failure, got {other:?}"),
        }
        assert_eq!(version(&conn), 1, "step 1 stays committed");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, vec!["a".to_owned()], "step 2 is rolled back whole");
    }
}

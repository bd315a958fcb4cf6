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

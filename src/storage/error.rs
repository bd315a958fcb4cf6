//! Errors of the embedded store, grouped by cause.

use std::path::PathBuf;

/// Everything that can go wrong in `storage`.
///
/// The variants are grouped by *cause* so that callers can decide what to do:
/// an `Open` or `Migration` failure at startup is fatal for persistence, a
/// `Query` is a failed statement, `Write` reports background writes that were
/// given up on, and `WriterGone` means the write-behind thread no longer runs.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database file could not be created, opened or configured.
    #[error("cannot open the store at {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: OpenError,
    },

    /// The schema could not be brought to the version this build expects.
    #[error("schema migration failed")]
    Migration(#[from] MigrationError),

    /// A statement failed (reading bindings, deleting expired ones, querying
    /// call records, ...).
    #[error("database query failed")]
    Query(#[from] rusqlite::Error),

    /// Queued writes (binding changes and call records) that the
    /// write-behind thread gave up on since the previous flush. Each one was
    /// logged with its SQLite error when it was dropped; the count is what
    /// the caller can act on.
    #[error(
        "{dropped} queued write(s) could not be committed and were dropped (see the error log)"
    )]
    Write { dropped: u64 },

    /// The operating system refused to start the write-behind thread.
    #[error("cannot start the storage writer thread")]
    WriterSpawn(#[source] std::io::Error),

    /// The write-behind thread has exited (closed or crashed), so the request
    /// cannot be served.
    #[error("the storage writer thread is gone")]
    WriterGone,
}

/// Why [`StorageError::Open`] happened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the parent directory")]
    CreateDir(#[source] std::io::Error),
    #[error("SQLite cannot open or configure the database")]
    Sqlite(#[source] rusqlite::Error),
}

/// Why [`StorageError::Migration`] happened.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer build of Switchboard; running the old
    /// code against it could silently lose columns, so we refuse.
    #[error(
        "database schema version {found} is newer than the newest this build knows ({supported})"
    )]
    TooNew { found: u32, supported: u32 },

    /// Reading `PRAGMA user_version` failed.
    #[error("cannot read the schema version")]
    ReadVersion(#[source] rusqlite::Error),

    /// One migration step failed; it was rolled back as a whole.
    #[error("migration to schema version {to_version} failed")]
    Step {
        to_version: u32,
        #[source]
        source: rusqlite::Error,
    },
}

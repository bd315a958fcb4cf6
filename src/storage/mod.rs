//! Embedded store: what must survive a restart.
//!
//! Today that is the registrar's bindings and the call detail records. The
//! registrar serves its bindings from memory; this module only makes them
//! durable, write-behind, so that the SIP core never waits for the disk.
//! Call records are written the same way when a call ends, and read back
//! by queries for reports and the control API:
//!
//! ```text
//! startup:  Store::open(path) -> load_bindings(now) -> spawn_writer()
//!           WriterHandle::call_record_writer()
//! running:  BindingWriter::upsert / remove / remove_aor   (enqueue, never block)
//!           CallRecordWriter::write                        (enqueue, never block)
//!           Store::call_records / call_record              (a second Store, reads)
//! shutdown: WriterHandle::close()                          (flush, join)
//! ```
//!
//! Layout, so that more tables and a second backend slot in:
//! - `bindings`: the stored record types and the backend-neutral coalescing
//!   of queued changes into one batch;
//! - `call_records`: the query filter and the queue of records to insert;
//! - `sqlite`: the SQLite backend (`Store`), one module per table plus
//!   `migrations` (schema versions keyed by `PRAGMA user_version`);
//! - `writer`: the write-behind thread, which only needs the backend to
//!   commit a coalesced batch in one transaction.

mod bindings;
mod call_records;
mod error;
mod sqlite;
mod writer;

pub use bindings::StoredBinding;
pub use call_records::{CallRecordFilter, MAX_CALL_RECORDS};
pub use error::{MigrationError, OpenError, StorageError};
pub use sqlite::Store;
pub use writer::{BindingWriter, CallRecordWriter, WriterHandle, WriterStats};

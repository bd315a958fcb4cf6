//! Embedded store: what must survive a restart.
//!
//! Today that is the registrar's bindings. The registrar serves them from
//! memory; this module only makes them durable, write-behind, so that the SIP
//! core never waits for the disk:
//!
//! ```text
//! startup:  Store::open(path) -> load_bindings(now) -> spawn_writer()
//! running:  BindingWriter::upsert / remove / remove_aor   (enqueue, never block)
//! shutdown: WriterHandle::close()                          (flush, join)
//! ```
//!
//! Layout, so that more tables and a second backend slot in:
//! - `bindings`: the stored record types and the backend-neutral coalescing
//!   of queued changes into one batch;
//! - `sqlite`: the SQLite backend (`Store`), one module per table plus
//!   `migrations` (schema versions keyed by `PRAGMA user_version`);
//! - `writer`: the write-behind thread, which only needs the backend to
//!   commit a coalesced batch in one transaction.

mod bindings;
mod error;
mod sqlite;
mod writer;

pub use bindings::StoredBinding;
pub use error::{MigrationError, OpenError, StorageError};
pub use sqlite::Store;
pub use writer::{BindingWriter, WriterHandle, WriterStats};

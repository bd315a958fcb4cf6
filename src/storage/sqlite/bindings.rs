//! The `bindings` table: row encoding, loading at startup, and committing a
//! coalesced [`Batch`] of queued writes.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Type;
use rusqlite::{params, Connection, ErrorCode, Row, TransactionBehavior};

use crate::storage::bindings::{Batch, ContactChange, StoredBinding};

const UPSERT: &str = "INSERT INTO bindings (aor, contact, instance, reg_id, call_id, cseq,
        expires_unix_ns, q, transport, source, local, user_agent, path)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (aor, contact) DO UPDATE SET
        instance = excluded.instance, reg_id = excluded.reg_id,
        call_id = excluded.call_id, cseq = excluded.cseq,
        expires_unix_ns = excluded.expires_unix_ns, q = excluded.q,
        transport = excluded.transport, source = excluded.source,
        local = excluded.local, user_agent = excluded.user_agent,
        path = excluded.path";
const DELETE: &str = "DELETE FROM bindings WHERE aor = ?1 AND contact = ?2";
const DELETE_AOR: &str = "DELETE FROM bindings WHERE aor = ?1";
const DELETE_EXPIRED: &str = "DELETE FROM bindings WHERE expires_unix_ns <= ?1";
const SELECT_ALL: &str = "SELECT aor, contact, instance, reg_id, call_id, cseq,
        expires_unix_ns, q, transport, source, local, user_agent, path
    FROM bindings";

/// Result of loading the table at startup.
pub(crate) struct Loaded {
    pub(crate) bindings: Vec<StoredBinding>,
    pub(crate) expired: usize,
    /// Rows that could not be decoded; they are logged and left in place.
    pub(crate) undecodable: usize,
}

/// Delete bindings expired at `now` and read the rest, in one transaction so
/// the writer of another process cannot slip a row in between.
pub(crate) fn load(conn: &Connection, now: SystemTime) -> rusqlite::Result<Loaded> {
    let tx = conn.unchecked_transaction()?;
    let expired = tx.execute(DELETE_EXPIRED, [to_unix_nanos(now)])?;
    let mut bindings = Vec::new();
    let mut undecodable = 0;
    {
        let mut stmt = tx.prepare(SELECT_ALL)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            match decode_row(row) {
                Ok(b) => bindings.push(b),
                Err(error) => {
                    // One damaged row must not keep the registrar from
                    // starting; that agent simply re-registers.
                    let aor: Option<String> = row.get(0).ok();
                    tracing::error!(%error, ?aor, "skipping undecodable stored binding");
                    undecodable += 1;
                }
            }
        }
    }
    tx.commit()?;
    Ok(Loaded {
        bindings,
        expired,
        undecodable,
    })
}

/// A change the database refused while the rest of the batch committed.
pub(crate) enum Rejected {
    Clear {
        aor: String,
        error: rusqlite::Error,
    },
    Contact {
        aor: String,
        contact: String,
        error: rusqlite::Error,
    },
}

/// Outcome of a committed batch.
pub(crate) struct Committed {
    pub(crate) statements: usize,
    pub(crate) rejected: Vec<Rejected>,
}

/// Commit `batch` in one transaction.
///
/// `Err` means nothing was committed and the batch should be retried later:
/// the transaction could not start or commit, SQLite rolled it back, or a
/// statement failed for a reason that is about the database rather than the
/// row (busy, I/O, disk full, out of memory). A statement that fails for a
/// reason tied to its row (e.g. a constraint) is left out and reported in
/// [`Committed::rejected`] so that it cannot hold back the others.
pub(crate) fn commit_batch(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<Committed> {
    // IMMEDIATE takes the write lock up front, so a competing writer shows up
    // as a retryable failure of BEGIN rather than of some statement midway.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rejected = Vec::new();
    let mut statements = 0;
    {
        let mut upsert = tx.prepare_cached(UPSERT)?;
        let mut delete = tx.prepare_cached(DELETE)?;
        let mut delete_aor = tx.prepare_cached(DELETE_AOR)?;
        // Decide whether a failed statement only affects its row; if not,
        // the error aborts the whole batch (and `tx` rolls back on drop).
        let row_only = |error: rusqlite::Error| -> rusqlite::Result<rusqlite::Error> {
            if tx.is_autocommit() || is_transient(&error) {
                Err(error)
            } else {
                Ok(error)
            }
        };
        for (aor, changes) in &batch.aors {
            if changes.clear.is_some() {
                statements += 1;
                if let Err(error) = delete_aor.execute([aor]) {
                    let error = row_only(error)?;
                    rejected.push(Rejected::Clear {
                        aor: aor.clone(),
                        error,
                    });
                }
            }
            for (contact, pending) in &changes.contacts {
                statements += 1;
                let result = match &pending.change {
                    ContactChange::Upsert(b) => upsert.execute(params![
                        b.aor,
                        b.contact,
                        b.instance,
                        b.reg_id,
                        b.call_id,
                        b.cseq,
                        to_unix_nanos(b.expires_at),
                        b.q,
                        b.transport,
                        b.source.to_string(),
                        b.local.to_string(),
                        b.user_agent,
                        encode_path(&b.path),
                    ]),
                    ContactChange::Remove => delete.execute([aor, contact]),
                };
                if let Err(error) = result {
                    let error = row_only(error)?;
                    rejected.push(Rejected::Contact {
                        aor: aor.clone(),
                        contact: contact.clone(),
                        error,
                    });
                }
            }
        }
    }
    tx.commit()?;
    Ok(Committed {
        statements,
        rejected,
    })
}

/// Errors about the database as a whole, worth retrying the batch for.
pub(super) fn is_transient(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
        )
    )
}

fn decode_row(row: &Row<'_>) -> rusqlite::Result<StoredBinding> {
    Ok(StoredBinding {
        aor: row.get(0)?,
        contact: row.get(1)?,
        instance: row.get(2)?,
        reg_id: row.get(3)?,
        call_id: row.get(4)?,
        cseq: row.get(5)?,
        expires_at: from_unix_nanos(row.get(6)?),
        q: row.get(7)?,
        transport: row.get(8)?,
        source: parse_addr(row, 9)?,
        local: parse_addr(row, 10)?,
        user_agent: row.get(11)?,
        path: decode_path(&row.get::<_, String>(12)?)
            .ok_or_else(|| conversion_error(12, "malformed path list"))?,
    })
}

fn parse_addr(row: &Row<'_>, idx: usize) -> rusqlite::Result<SocketAddr> {
    let text: String = row.get(idx)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DecodeError(&'static str);

fn conversion_error(idx: usize, what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(DecodeError(what)))
}

/// Signed nanoseconds since the Unix epoch; i64 spans the years 1677–2262,
/// and times outside that are clamped (a binding expiring after 2262 is
/// as good as one expiring in 2262).
pub(crate) fn to_unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i64::MIN),
    }
}

pub(crate) fn from_unix_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    let t = if nanos >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    // Every i64 nanosecond count is representable on the platforms we run
    // on; the fallback only keeps this total.
    t.unwrap_or(UNIX_EPOCH)
}

/// Path values as one TEXT column: each entry as `<byte length>:<bytes>`.
/// A length prefix rather than a separator because a URI may contain any
/// separator we could pick (commas and semicolons are common in Path).
fn encode_path(path: &[String]) -> String {
    let mut out = String::with_capacity(path.iter().map(|p| p.len() + 4).sum());
    for entry in path {
        out.push_str(&entry.len().to_string());
        out.push(':');
        out.push_str(entry);
    }
    out
}

fn decode_path(mut text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let (len, rest) = text.split_once(':')?;
        let len: usize = len.parse().ok()?;
        out.push(rest.get(..len)?.to_owned());
        text = rest.get(len..)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn path_codec_round_trips(path in prop::collection::vec(".*", 0..5)) {
            prop_assert_eq!(decode_path(&encode_path(&path)), Some(path));
        }

        #[test]
        fn time_codec_round_trips(nanos in any::<i64>()) {
            prop_assert_eq!(to_unix_nanos(from_unix_nanos(nanos)), nanos);
        }
    }

    #[test]
    fn path_codec_handles_separators_and_multibyte() {
        let path = vec![
            "<sip:p1.example.com;lr>".to_owned(),
            String::new(),
            "<sip:é,x:1@p2;lr>".to_owned(),
        ];
        assert_eq!(
            encode_path(&path),
            "23:<sip:p1.example.com;lr>0:18:<sip:é,x:1@p2;lr>"
        );
        assert_eq!(decode_path(&encode_path(&path)), Some(path));
        assert_eq!(decode_path(""), Some(vec![]));
    }

    #[test]
    fn malformed_path_is_rejected() {
        for bad in ["5:abc", "x:abc", "abc", "1:é", "3:abc4"] {
            assert_eq!(decode_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_out_of_range_are_clamped() {
        let far = UNIX_EPOCH + Duration::from_secs(400 * 365 * 24 * 3600);
        assert_eq!(to_unix_nanos(far), i64::MAX);
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(to_unix_nanos(before), -5_000_000_000);
        assert_eq!(from_unix_nanos(-5_000_000_000), before);
    }
}

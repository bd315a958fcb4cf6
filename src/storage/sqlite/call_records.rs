//! The `call_records` and `call_offers` tables: inserting queued records
//! and the control API's queries.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{Type, Value};
use rusqlite::{params, params_from_iter, Connection, Row, Transaction, TransactionBehavior};

use crate::call::record::{CallRecord, LegQuality, OfferRecord};
use crate::storage::call_records::{CallRecordFilter, RecordBatch};
use crate::storage::sqlite::bindings::is_transient;

const INSERT_RECORD: &str = "INSERT INTO call_records (call_id, direction, caller, dialled,
        queue, ivr_choices, agent, arrived_ms, queued_ms, answered_ms, ended_ms,
        wait_ms, talk_ms, hold_ms, wrap_up_ms, outcome, hung_up_by, end_reason, recording,
        caller_packets_received, caller_packets_sent, caller_lost, caller_jitter_ms,
        caller_mos, caller_rtt_ms,
        agent_packets_received, agent_packets_sent, agent_lost, agent_jitter_ms,
        agent_mos, agent_rtt_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";
const INSERT_OFFER: &str = "INSERT INTO call_offers (call_seq, ordinal, agent, at_ms, result,
        ended_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// The columns [`decode_record`] reads, in its order; `seq` last.
const RECORD_COLUMNS: &str = "call_id, direction, caller, dialled, queue, ivr_choices, agent,
        arrived_ms, queued_ms, answered_ms, ended_ms, wait_ms, talk_ms, hold_ms, wrap_up_ms,
        outcome, hung_up_by, end_reason, recording,
        caller_packets_received, caller_packets_sent, caller_lost, caller_jitter_ms,
        caller_mos, caller_rtt_ms,
        agent_packets_received, agent_packets_sent, agent_lost, agent_jitter_ms,
        agent_mos, agent_rtt_ms, seq";
const SEQ_COLUMN: usize = 31;
const SELECT_OFFERS: &str = "SELECT agent, at_ms, result, ended_ms FROM call_offers
    WHERE call_seq = ?1 ORDER BY ordinal";

/// Outcome of a committed batch of records.
pub(crate) struct CommittedRecords {
    pub(crate) inserted: usize,
    /// Records the database refused on their own (e.g. a constraint), by
    /// index in the batch; the others are committed.
    pub(crate) rejected: Vec<(usize, rusqlite::Error)>,
}

/// Insert every record of `batch` in one transaction.
///
/// `Err` means nothing was committed and the batch should be retried, as
/// for bindings. Each record (its row and its offers) is inserted under a
/// savepoint, so a record refused for a reason of its own is rolled back
/// whole, without half its offers, and does not hold back the others.
pub(crate) fn commit_records(
    conn: &mut Connection,
    batch: &RecordBatch,
) -> rusqlite::Result<CommittedRecords> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rejected = Vec::new();
    for (index, queued) in batch.records.iter().enumerate() {
        if let Err(error) = insert(&mut tx, &queued.record) {
            // The whole transaction is gone (RAISE(ROLLBACK), some I/O
            // errors) or the database as a whole is unwell: retry it all.
            if tx.is_autocommit() || is_transient(&error) {
                return Err(error);
            }
            rejected.push((index, error));
        }
    }
    tx.commit()?;
    Ok(CommittedRecords {
        inserted: batch.len() - rejected.len(),
        rejected,
    })
}

fn insert(tx: &mut Transaction<'_>, r: &CallRecord) -> rusqlite::Result<()> {
    // Rolled back on drop if any statement fails.
    let sp = tx.savepoint()?;
    {
        let caller = quality_columns(r.caller_quality.as_ref());
        let agent = quality_columns(r.agent_quality.as_ref());
        sp.prepare_cached(INSERT_RECORD)?.execute(params![
            r.id,
            r.direction.as_str(),
            r.caller,
            r.dialled,
            r.queue.as_ref().map(|q| q.as_str()),
            r.ivr_choices,
            r.agent.as_ref().map(|a| a.as_str()),
            to_unix_millis(r.arrived),
            r.queued.map(to_unix_millis),
            r.answered.map(to_unix_millis),
            to_unix_millis(r.ended),
            to_millis(r.wait),
            to_millis(r.talk),
            to_millis(r.hold),
            to_millis(r.wrap_up),
            r.outcome.as_str(),
            r.hung_up_by.map(|h| h.as_str()),
            r.end_reason,
            // A path that is not UTF-8 is stored lossily: recordings are
            // named by the gateway, from text, so this does not happen.
            r.recording.as_ref().map(|p| p.to_string_lossy()),
            caller.0,
            caller.1,
            caller.2,
            caller.3,
            caller.4,
            caller.5,
            agent.0,
            agent.1,
            agent.2,
            agent.3,
            agent.4,
            agent.5,
        ])?;
        let seq = sp.last_insert_rowid();
        let mut insert_offer = sp.prepare_cached(INSERT_OFFER)?;
        for (ordinal, o) in (0_i64..).zip(&r.offers) {
            insert_offer.execute(params![
                seq,
                ordinal,
                o.agent.as_str(),
                to_unix_millis(o.at),
                o.result.as_str(),
                o.ended.map(to_unix_millis),
            ])?;
        }
    }
    sp.commit()
}

type QualityColumns = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

fn quality_columns(q: Option<&LegQuality>) -> QualityColumns {
    match q {
        None => (None, None, None, None, None, None),
        Some(q) => (
            Some(count(q.packets_received)),
            Some(count(q.packets_sent)),
            Some(count(q.lost)),
            Some(q.jitter_ms),
            Some(q.mos),
            q.rtt_ms,
        ),
    }
}

/// The records matching `filter`, newest arrival first, at most
/// [`CallRecordFilter::effective_limit`]. A row that cannot be decoded is
/// logged and skipped: one damaged row must not hide the others from a
/// report.
pub(crate) fn query(
    conn: &Connection,
    filter: &CallRecordFilter,
) -> rusqlite::Result<Vec<CallRecord>> {
    let mut records = Vec::new();
    scan(conn, filter, Some(filter.effective_limit()), |r| {
        records.push(r);
    })?;
    Ok(records)
}

/// Every record matching `filter`, newest arrival first, handed to `visit`
/// one by one (reports and exports read more than a page); at most `limit`
/// when set. Undecodable rows are logged and skipped as in [`query`].
/// Returns how many were visited.
pub(crate) fn scan(
    conn: &Connection,
    filter: &CallRecordFilter,
    limit: Option<usize>,
    mut visit: impl FnMut(CallRecord),
) -> rusqlite::Result<usize> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(from) = filter.from {
        conditions.push("arrived_ms >= ?");
        values.push(Value::Integer(to_unix_millis(from)));
    }
    if let Some(to) = filter.to {
        conditions.push("arrived_ms < ?");
        values.push(Value::Integer(to_unix_millis(to)));
    }
    if let Some(queue) = &filter.queue {
        conditions.push("queue = ?");
        values.push(Value::Text(queue.as_str().to_owned()));
    }
    if let Some(agent) = &filter.agent {
        conditions.push("agent = ?");
        values.push(Value::Text(agent.as_str().to_owned()));
    }
    if let Some(caller) = &filter.caller {
        // instr rather than LIKE: no wildcard characters to escape, and
        // case-sensitive like the numbers and URIs it searches.
        conditions.push("instr(caller, ?) > 0");
        values.push(Value::Text(caller.clone()));
    }
    if let Some(outcome) = filter.outcome {
        conditions.push("outcome = ?");
        values.push(Value::Text(outcome.as_str().to_owned()));
    }
    if filter.recorded {
        conditions.push("recording IS NOT NULL");
    }
    if let Some(min) = filter.min_connected {
        conditions.push("talk_ms + hold_ms >= ?");
        values.push(Value::Integer(to_millis(min)));
    }
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM call_records");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    // `seq` breaks ties in insertion order; both are in every index (the
    // rowid is the implicit last column), so no sort step is needed.
    sql.push_str(" ORDER BY arrived_ms DESC, seq DESC");
    if let Some(limit) = limit {
        sql.push_str(" LIMIT ?");
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }

    // One read transaction: the rows and their offers from one snapshot.
    let tx = conn.unchecked_transaction()?;
    let mut visited = 0;
    {
        let mut stmt = tx.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            match decode_record(&tx, row) {
                Ok(r) => {
                    visit(r);
                    visited += 1;
                }
                Err(error) => {
                    let seq: Option<i64> = row.get(SEQ_COLUMN).ok();
                    let call_id: Option<String> = row.get(0).ok();
                    tracing::error!(%error, ?seq, ?call_id, "skipping undecodable call record");
                }
            }
        }
    }
    tx.commit()?;
    Ok(visited)
}

/// Clears the recording of the newest record of call `id` if it is
/// `recording` (the file was deleted; the record stays for reports).
/// Returns whether a record changed.
pub(crate) fn forget_recording(
    conn: &Connection,
    id: &str,
    recording: &std::path::Path,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE call_records SET recording = NULL
         WHERE seq = (SELECT seq FROM call_records WHERE call_id = ?1 ORDER BY seq DESC LIMIT 1)
           AND recording = ?2",
        params![id, recording.to_string_lossy()],
    )?;
    Ok(changed > 0)
}

/// Deletes the records (and their offers) of recorded calls that arrived
/// before `before`, at most `max` in one transaction; returns their
/// recordings' paths, for the caller to delete the files.
pub(crate) fn delete_recorded_before(
    conn: &mut Connection,
    before: SystemTime,
    max: usize,
) -> rusqlite::Result<Vec<PathBuf>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut paths = Vec::new();
    {
        let mut select = tx.prepare(
            "SELECT seq, recording FROM call_records
             WHERE arrived_ms < ?1 AND recording IS NOT NULL
             ORDER BY arrived_ms LIMIT ?2",
        )?;
        let mut delete = tx.prepare("DELETE FROM call_records WHERE seq = ?1")?;
        let rows: Vec<(i64, String)> = select
            .query_map(
                params![
                    to_unix_millis(before),
                    i64::try_from(max).unwrap_or(i64::MAX)
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, path) in rows {
            // `call_offers` rows go with it (ON DELETE CASCADE).
            delete.execute([seq])?;
            paths.push(PathBuf::from(path));
        }
    }
    tx.commit()?;
    Ok(paths)
}

/// The newest record of the call with this Call-ID.
pub(crate) fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<CallRecord>> {
    let tx = conn.unchecked_transaction()?;
    let found = {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM call_records WHERE call_id = ?1
             ORDER BY seq DESC LIMIT 1"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Some(decode_record(&tx, row)?),
            None => None,
        }
    };
    tx.commit()?;
    Ok(found)
}

fn decode_record(conn: &Connection, row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    let seq: i64 = row.get(SEQ_COLUMN)?;
    let mut offers = Vec::new();
    {
        let mut stmt = conn.prepare_cached(SELECT_OFFERS)?;
        let mut rows = stmt.query([seq])?;
        while let Some(o) = rows.next()? {
            offers.push(OfferRecord {
                agent: parse(o, 0)?,
                at: from_unix_millis(o.get(1)?),
                result: parse(o, 2)?,
                ended: o.get::<_, Option<i64>>(3)?.map(from_unix_millis),
            });
        }
    }
    Ok(CallRecord {
        id: row.get(0)?,
        direction: parse(row, 1)?,
        caller: row.get(2)?,
        dialled: row.get(3)?,
        queue: parse_opt(row, 4)?,
        ivr_choices: row.get(5)?,
        offers,
        agent: parse_opt(row, 6)?,
        arrived: from_unix_millis(row.get(7)?),
        queued: row.get::<_, Option<i64>>(8)?.map(from_unix_millis),
        answered: row.get::<_, Option<i64>>(9)?.map(from_unix_millis),
        ended: from_unix_millis(row.get(10)?),
        wait: duration(row, 11)?,
        talk: duration(row, 12)?,
        hold: duration(row, 13)?,
        wrap_up: duration(row, 14)?,
        outcome: parse(row, 15)?,
        hung_up_by: parse_opt(row, 16)?,
        end_reason: row.get(17)?,
        recording: row.get::<_, Option<String>>(18)?.map(PathBuf::from),
        caller_quality: quality(row, 19)?,
        agent_quality: quality(row, 25)?,
    })
}

/// Six quality columns from `first`; `None` when the leg was not measured
/// (its packet count is NULL).
fn quality(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<LegQuality>> {
    if row.get::<_, Option<i64>>(first)?.is_none() {
        return Ok(None);
    }
    Ok(Some(LegQuality {
        packets_received: unsigned(row, first)?,
        packets_sent: unsigned(row, first + 1)?,
        lost: unsigned(row, first + 2)?,
        jitter_ms: row.get(first + 3)?,
        mos: row.get(first + 4)?,
        rtt_ms: row.get(first + 5)?,
    }))
}

fn parse<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn parse_opt<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => parse(row, idx).map(Some),
    }
}

fn unsigned(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

fn duration(row: &Row<'_>, idx: usize) -> rusqlite::Result<Duration> {
    unsigned(row, idx).map(Duration::from_millis)
}

/// Counters are far below `i64::MAX`; clamping keeps the encoding total.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, rounded down (towards the past, also
/// before 1970); clamped to the i64 range.
fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            i64::try_from(ms).map(|n| -n).unwrap_or(i64::MIN)
        }
    }
}

fn from_unix_millis(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    let t = if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    // Every i64 millisecond count is representable on the platforms we run
    // on; the fallback only keeps this total.
    t.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::call::record::CallOutcome;
    use crate::storage::call_records::tests::{at_ms, full_record, minimal_record};
    use crate::storage::call_records::MAX_CALL_RECORDS;
    use crate::storage::sqlite::Store;
    use proptest::prelude::*;

    fn store_with(records: &[CallRecord]) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = RecordBatch::default();
        for r in records {
            batch.push(Box::new(r.clone()));
        }
        let committed = store.commit_records(&batch).unwrap();
        assert!(committed.rejected.is_empty());
        assert_eq!(committed.inserted, records.len());
        store
    }

    fn ids(records: &[CallRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn every_field_round_trips() {
        let full = full_record(1);
        let minimal = minimal_record(2);
        assert_eq!(full.offers.len(), 3);
        assert!(full.caller_quality.is_some() && full.recording.is_some());
        let store = store_with(&[full.clone(), minimal.clone()]);
        assert_eq!(store.call_record(&full.id).unwrap(), Some(full.clone()));
        assert_eq!(store.call_record(&minimal.id).unwrap(), Some(minimal));
        assert_eq!(store.call_record("nope").unwrap(), None);
    }

    /// Six calls an hour apart, newest last; each filter picks its own.
    #[test]
    fn filters_combine_and_results_are_newest_first() {
        let hour = 3_600_000;
        let mut records: Vec<CallRecord> = (0..6)
            .map(|n| {
                let mut r = full_record(n);
                r.arrived = at_ms(n * hour);
                r
            })
            .collect();
        records[1].queue = Some("support".parse().unwrap());
        records[2].agent = Some("1003".parse().unwrap());
        records[3].outcome = CallOutcome::Abandoned;
        records[3].agent = None;
        records[4].caller = "sip:+4940999@carrier.example".to_owned();
        let store = store_with(&records);
        let query = |f: CallRecordFilter| ids(&store.call_records(&f).unwrap()).join(" ");
        let id = |n: usize| records[n].id.clone();

        let all = query(CallRecordFilter::default());
        assert_eq!(all, [5, 4, 3, 2, 1, 0].map(id).join(" "));
        let window = CallRecordFilter {
            from: Some(at_ms(hour)),
            to: Some(at_ms(4 * hour)),
            ..Default::default()
        };
        assert_eq!(
            query(window.clone()),
            [3, 2, 1].map(id).join(" "),
            "from inclusive, to exclusive"
        );
        let queue = CallRecordFilter {
            queue: Some("support".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(query(queue), id(1));
        let agent = CallRecordFilter {
            agent: Some("1003".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            query(agent),
            id(2),
            "the answering agent, not agents only offered"
        );
        let outcome = CallRecordFilter {
            outcome: Some(CallOutcome::Abandoned),
            ..Default::default()
        };
        assert_eq!(query(outcome), id(3));
        let caller = CallRecordFilter {
            caller: Some("4940".to_owned()),
            ..Default::default()
        };
        assert_eq!(query(caller), id(4), "a substring");
        let no_wildcards = CallRecordFilter {
            caller: Some("%".to_owned()),
            ..Default::default()
        };
        assert_eq!(query(no_wildcards), "");
        let combined = CallRecordFilter {
            agent: Some("1002".parse().unwrap()),
            queue: Some("sales".parse().unwrap()),
            outcome: Some(CallOutcome::Answered),
            caller: Some("+4930".to_owned()),
            limit: Some(2),
            ..window
        };
        assert_eq!(query(combined), "");
        let limited = CallRecordFilter {
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(query(limited), [5, 4].map(id).join(" "));
        let zero = CallRecordFilter {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(query(zero), "");
    }

    #[test]
    fn limit_is_capped_at_the_maximum() {
        let records: Vec<_> = (0..MAX_CALL_RECORDS as u64 + 5)
            .map(minimal_record)
            .collect();
        let store = store_with(&records);
        let f = CallRecordFilter {
            limit: Some(usize::MAX),
            ..Default::default()
        };
        assert_eq!(store.call_records(&f).unwrap().len(), MAX_CALL_RECORDS);
    }

    /// Records are never merged: a Call-ID seen twice is two rows, and the
    /// lookup by id returns the newer one; equal arrivals list in insertion
    /// order, newest first.
    #[test]
    fn a_reused_call_id_keeps_both_records() {
        let first = minimal_record(7);
        let mut second = minimal_record(7);
        second.end_reason = "second".to_owned();
        let store = store_with(&[first.clone(), second.clone()]);
        assert_eq!(store.call_record(&first.id).unwrap(), Some(second.clone()));
        assert_eq!(
            store.call_records(&CallRecordFilter::default()).unwrap(),
            vec![second, first]
        );
    }

    #[test]
    fn filters_use_the_indexes() {
        let store = store_with(&[]);
        for (filter, index) in [
            ("arrived_ms >= 0", "call_records_arrived"),
            ("queue = 'q'", "call_records_queue"),
            ("agent = 'a'", "call_records_agent"),
            ("outcome = 'answered'", "call_records_outcome"),
        ] {
            let plan: Vec<String> = store
                .conn
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT seq FROM call_records WHERE {filter}
                     ORDER BY arrived_ms DESC, seq DESC LIMIT 10"
                ))
                .unwrap()
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{filter}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{filter} sorts: {plan}");
        }
    }

    #[test]
    fn an_undecodable_row_is_skipped_in_lists_and_an_error_by_id() {
        let good = minimal_record(1);
        let bad = minimal_record(2);
        let store = store_with(&[good.clone(), bad.clone()]);
        store
            .conn
            .execute(
                "UPDATE call_records SET outcome = 'exploded' WHERE call_id = ?1",
                [&bad.id],
            )
            .unwrap();
        assert_eq!(
            store.call_records(&CallRecordFilter::default()).unwrap(),
            vec![good]
        );
        assert!(store.call_record(&bad.id).is_err());
    }

    /// A record refused on its own (here: one of its offers, by a trigger)
    /// is rolled back whole, without a half-written row; the others commit.
    #[test]
    fn a_rejected_record_leaves_nothing_behind() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON call_offers WHEN NEW.agent = '1003'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            )
            .unwrap();
        let mut batch = RecordBatch::default();
        batch.push(Box::new(minimal_record(1)));
        batch.push(Box::new(full_record(2))); // offers 1001, 1002, 1003
        batch.push(Box::new(minimal_record(3)));
        let committed = store.commit_records(&batch).unwrap();
        assert_eq!(committed.inserted, 2);
        assert_eq!(committed.rejected.len(), 1);
        assert_eq!(committed.rejected[0].0, 1);
        let count = |table: &str| -> i64 {
            store
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count("call_records"), 2);
        assert_eq!(count("call_offers"), 0);
    }

    #[test]
    fn deleting_a_record_deletes_its_offers() {
        let store = store_with(&[full_record(1)]);
        store.conn.execute("DELETE FROM call_records", []).unwrap();
        let offers: i64 = store
            .conn
            .query_row("SELECT count(*) FROM call_offers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(offers, 0);
    }

    /// full_record(n): talk 95 s - 20.5 s - 5 s hold, recorded; minimal:
    /// never connected, not recorded.
    #[test]
    fn recorded_and_min_connected_filters() {
        let mut short = full_record(3);
        short.talk = Duration::from_secs(10);
        short.hold = Duration::from_secs(2);
        let store = store_with(&[full_record(1), minimal_record(2), short.clone()]);
        let query = |f: CallRecordFilter| {
            let mut v: Vec<String> = store
                .call_records(&f)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            v.sort();
            v
        };
        let recorded = CallRecordFilter {
            recorded: true,
            ..Default::default()
        };
        assert_eq!(
            query(recorded.clone()),
            vec![full_record(1).id, short.id.clone()]
        );
        let long = CallRecordFilter {
            min_connected: Some(Duration::from_secs(13)),
            ..recorded.clone()
        };
        assert_eq!(query(long), vec![full_record(1).id]);
        let exactly = CallRecordFilter {
            min_connected: Some(Duration::from_secs(12)),
            ..recorded
        };
        assert_eq!(query(exactly).len(), 2, "talk + hold, inclusive");
    }

    #[test]
    fn scan_reads_past_the_page_limit_newest_first() {
        let records: Vec<_> = (0..MAX_CALL_RECORDS as u64 + 5)
            .map(minimal_record)
            .collect();
        let store = store_with(&records);
        let mut seen = Vec::new();
        let n = store
            .scan_call_records(&CallRecordFilter::default(), |r| seen.push(r.id))
            .unwrap();
        assert_eq!(n, MAX_CALL_RECORDS + 5);
        assert_eq!(seen.first().map(String::as_str), Some("min-1004"));
        let mut two = 0;
        let limited = CallRecordFilter {
            limit: Some(2),
            ..Default::default()
        };
        store.scan_call_records(&limited, |_| two += 1).unwrap();
        assert_eq!(two, 2);
    }

    #[test]
    fn a_deleted_recording_is_forgotten_by_its_record_only() {
        let a = full_record(1);
        let mut again = full_record(1); // the same Call-ID, a newer row
        again.recording = Some("20231114/other.wav".into());
        let store = store_with(&[a.clone(), again.clone()]);
        let path = a.recording.clone().unwrap();
        // Only the newest row is addressed by id, and only with its path.
        assert!(!store.forget_recording(&a.id, &path).unwrap());
        assert!(store
            .forget_recording(&a.id, again.recording.as_ref().unwrap())
            .unwrap());
        let now = store.call_record(&a.id).unwrap().unwrap();
        assert_eq!(now.recording, None);
        assert_eq!(now.talk, again.talk, "the rest of the record stays");
        assert!(!store.forget_recording("nope", &path).unwrap());
    }

    #[test]
    fn retention_deletes_old_recorded_calls_in_bounded_batches() {
        let old: Vec<CallRecord> = (1..=3).map(full_record).collect();
        let unrecorded = minimal_record(4); // arrives at_ms(4): old, kept
        let mut new = full_record(500);
        new.id = "new".into();
        let mut store = store_with(&[
            old[0].clone(),
            old[1].clone(),
            old[2].clone(),
            unrecorded,
            new,
        ]);
        let cutoff = at_ms(100_000);
        let first = store.delete_recorded_calls_before(cutoff, 2).unwrap();
        assert_eq!(
            first,
            vec![
                old[0].recording.clone().unwrap(),
                old[1].recording.clone().unwrap()
            ]
        );
        let second = store.delete_recorded_calls_before(cutoff, 2).unwrap();
        assert_eq!(second, vec![old[2].recording.clone().unwrap()]);
        assert!(store
            .delete_recorded_calls_before(cutoff, 2)
            .unwrap()
            .is_empty());
        let left: Vec<String> = store
            .call_records(&CallRecordFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, vec!["new".to_owned(), "min-4".to_owned()]);
        let offers: i64 = store
            .conn
            .query_row("SELECT count(*) FROM call_offers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(offers, 3, "only the new call's offers remain");
    }

    proptest! {
        #[test]
        fn millis_round_trip(ms in any::<i64>()) {
            prop_assert_eq!(to_unix_millis(from_unix_millis(ms)), ms);
        }
    }

    #[test]
    fn millis_round_down_towards_the_past() {
        let t = UNIX_EPOCH + Duration::from_micros(1_999);
        assert_eq!(to_unix_millis(t), 1);
        let before = UNIX_EPOCH - Duration::from_micros(1_001);
        assert_eq!(to_unix_millis(before), -2);
        assert_eq!(to_unix_millis(UNIX_EPOCH - Duration::from_millis(3)), -3);
    }
}

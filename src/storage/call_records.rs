//! Call detail records as the store sees them: the query filter, and the
//! queue of finished records waiting for the write-behind thread.
//!
//! Unlike bindings, records are never coalesced: every finished call is one
//! insert, so the queue keeps each record until it is committed or given up
//! on.

use std::time::SystemTime;

use crate::call::record::{CallOutcome, CallRecord};
use crate::config::{AgentId, QueueName};

/// Most records one query returns (also the default).
pub const MAX_CALL_RECORDS: usize = 1000;

/// Which call records [`Store::call_records`](crate::storage::Store::call_records)
/// returns: those matching every field that is set, newest arrival first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecordFilter {
    /// Calls that arrived at or after this time (millisecond precision).
    pub from: Option<SystemTime>,
    /// Calls that arrived before this time (exclusive; millisecond precision).
    pub to: Option<SystemTime>,
    /// Calls whose last queue was this one.
    pub queue: Option<QueueName>,
    /// Calls this agent answered (offers the agent did not answer do not
    /// count).
    pub agent: Option<AgentId>,
    /// Calls whose caller *contains* this text, case-sensitively: "4930"
    /// finds "+4930123456" and "sip:+4930123456@carrier".
    pub caller: Option<String>,
    pub outcome: Option<CallOutcome>,
    /// Only calls that were recorded (and whose recording was not deleted).
    pub recorded: bool,
    /// Only calls connected (talk plus hold) at least this long.
    pub min_connected: Option<std::time::Duration>,
    /// At most this many records; `None`, or more than [`MAX_CALL_RECORDS`],
    /// means [`MAX_CALL_RECORDS`] (except for
    /// [`Store::scan_call_records`](crate::storage::Store::scan_call_records),
    /// where `None` means all).
    pub limit: Option<usize>,
}

impl CallRecordFilter {
    /// The limit the query applies.
    pub fn effective_limit(&self) -> usize {
        self.limit
            .map_or(MAX_CALL_RECORDS, |l| l.min(MAX_CALL_RECORDS))
    }
}

/// A record waiting to be committed, with the commits it already failed in.
#[derive(Debug)]
pub(crate) struct QueuedRecord {
    pub(crate) record: Box<CallRecord>,
    failures: u8,
}

/// Records waiting for the next commit, in the order they were written.
#[derive(Debug, Default)]
pub(crate) struct RecordBatch {
    pub(crate) records: Vec<QueuedRecord>,
}

impl RecordBatch {
    pub(crate) fn push(&mut self, record: Box<CallRecord>) {
        self.records.push(QueuedRecord {
            record,
            failures: 0,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }

    /// The commit of this batch failed: count one more failure on every
    /// record and remove those that reached `max_failures`, so that one
    /// record the database keeps refusing cannot hold back the others.
    /// Returns the removed records, for logging.
    pub(crate) fn record_failure(&mut self, max_failures: u8) -> Vec<CallRecord> {
        let mut dropped = Vec::new();
        let mut kept = Vec::with_capacity(self.records.len());
        for mut queued in self.records.drain(..) {
            queued.failures = queued.failures.saturating_add(1);
            if queued.failures < max_failures {
                kept.push(queued);
            } else {
                dropped.push(*queued.record);
            }
        }
        self.records = kept;
        dropped
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::call::record::{
        CallDirection, CallRecordBuilder, HungUpBy, LegQuality, OfferResult,
    };
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    /// A whole-millisecond time `ms` after 2023-11-14 (the store keeps
    /// milliseconds, so these round-trip exactly).
    pub(crate) fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    /// An answered call with every field set. `n` varies the id, caller and
    /// arrival (n seconds later).
    pub(crate) fn full_record(n: u64) -> CallRecord {
        let t0 = n * 1000;
        let mut b = CallRecordBuilder::new(
            format!("{n:08x}-in@trunk.example"),
            CallDirection::Inbound,
            format!("+49301234{n:03}"),
            "800",
            at_ms(t0),
        );
        b.ivr_digit('2');
        b.ivr_digit('#');
        b.queued("sales".parse().unwrap(), at_ms(t0 + 1_250));
        b.offered("1001".parse().unwrap(), at_ms(t0 + 2_000));
        b.offer_ended(
            &"1001".parse().unwrap(),
            at_ms(t0 + 17_000),
            OfferResult::RingTimeout,
        );
        b.offered("1002".parse().unwrap(), at_ms(t0 + 17_001));
        b.offered("1003".parse().unwrap(), at_ms(t0 + 17_001));
        b.answered("1002".parse().unwrap(), at_ms(t0 + 20_500));
        b.hold_started(at_ms(t0 + 30_000));
        b.hold_ended(at_ms(t0 + 35_007));
        b.recording(PathBuf::from(format!("2023/11/14/{n:08x}-in.wav")));
        b.caller_quality(LegQuality {
            packets_received: 4_000,
            packets_sent: 4_010,
            lost: 3,
            jitter_ms: 1.625,
            mos: 4.31,
            rtt_ms: Some(42.5),
        });
        b.agent_quality(LegQuality {
            packets_received: 3_990,
            packets_sent: 4_000,
            lost: 0,
            jitter_ms: 0.5,
            mos: 4.4,
            rtt_ms: None,
        });
        b.wrap_up(Duration::from_secs(30));
        b.ended(
            at_ms(t0 + 95_000),
            CallOutcome::Answered,
            Some(HungUpBy::Agent),
            "BYE from agent: «ok»",
        );
        b.finish()
    }

    /// A call that failed before any queue: every optional field empty.
    pub(crate) fn minimal_record(n: u64) -> CallRecord {
        let mut b = CallRecordBuilder::new(
            format!("min-{n}"),
            CallDirection::Internal,
            "",
            "9",
            at_ms(n),
        );
        b.ended(at_ms(n), CallOutcome::Failed, None, "");
        b.finish()
    }

    #[test]
    fn failures_drop_only_records_that_failed_too_often() {
        let mut batch = RecordBatch::default();
        batch.push(Box::new(minimal_record(1)));
        assert!(batch.record_failure(2).is_empty());
        batch.push(Box::new(minimal_record(2)));
        let dropped = batch.record_failure(2);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].id, "min-1");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.records[0].record.id, "min-2");
    }

    #[test]
    fn limit_defaults_to_and_is_capped_at_the_maximum() {
        let mut f = CallRecordFilter::default();
        assert_eq!(f.effective_limit(), MAX_CALL_RECORDS);
        f.limit = Some(MAX_CALL_RECORDS + 1);
        assert_eq!(f.effective_limit(), MAX_CALL_RECORDS);
        f.limit = Some(7);
        assert_eq!(f.effective_limit(), 7);
    }
}

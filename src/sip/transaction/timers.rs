//! The timer queue shared by all transactions, and the pieces of timer state
//! the state machines use.
//!
//! Each transaction exposes one deadline (the earliest of its running
//! timers) and remembers the deadline it last queued. The queue is a binary
//! heap of `(deadline, transaction)` with lazy deletion: when a transaction's
//! deadline changes a new entry is pushed and the old one is left to be
//! skipped, because it no longer equals what the transaction has queued.
//! Every operation is O(log n), and a timer check allocates nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{ClientTxId, ServerTxId};

/// A retransmission timer (A, E, G): when it next fires and the interval
/// that got it there, which the next firing doubles or caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retransmit {
    pub(super) at: Instant,
    pub(super) interval: Duration,
}

impl Retransmit {
    /// Started at `now` with the initial interval T1, but only on unreliable
    /// transports (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1).
    pub(super) fn start(now: Instant, t1: Duration, reliable: bool) -> Option<Retransmit> {
        (!reliable).then(|| Retransmit {
            at: now + t1,
            interval: t1,
        })
    }

    /// Rearms after firing at `now` with the next interval.
    pub(super) fn rearm(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.at = now + interval;
    }
}

/// Whether a timer that the transport type may make zero is running: on
/// reliable transports Timers D, I, J and K are zero (RFC 3261 §17), so the
/// state they guard ends at once and `None` is returned.
pub(super) fn unless_reliable(now: Instant, reliable: bool, duration: Duration) -> Option<Instant> {
    (!reliable).then(|| now + duration)
}

/// What a state machine did when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fired {
    /// Nothing was due (a stale wake-up).
    Idle,
    /// A retransmission timer fired: send the request (client) or the last
    /// response (server) again.
    Retransmit,
    /// A timeout (B, F, H or the §9.1 CANCEL timer): tell the TU, terminate.
    Timeout,
    /// A wait state ended (D, I, J, K, L, M): terminate quietly.
    Terminated,
}

/// The earliest of some optional deadlines.
pub(super) fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

/// Which transaction a queued deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Owner {
    Client(ClientTxId),
    Server(ServerTxId),
}

#[derive(Default)]
pub(super) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, Owner)>>,
}

impl TimerQueue {
    pub(super) fn push(&mut self, at: Instant, owner: Owner) {
        self.heap.push(Reverse((at, owner)));
    }

    pub(super) fn peek(&self) -> Option<(Instant, Owner)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    pub(super) fn pop(&mut self) -> Option<(Instant, Owner)> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Entries queued, stale ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.push(t0 + Duration::from_secs(2), Owner::Server(ServerTxId(1)));
        q.push(t0 + Duration::from_secs(1), Owner::Client(ClientTxId(7)));
        q.push(t0 + Duration::from_secs(3), Owner::Server(ServerTxId(2)));
        assert_eq!(
            q.peek(),
            Some((t0 + Duration::from_secs(1), Owner::Client(ClientTxId(7))))
        );
        let order: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|(at, _)| at - t0)
            .collect();
        assert_eq!(order, [1, 2, 3].map(Duration::from_secs));
    }

    #[test]
    fn zero_length_timers_on_reliable_transports() {
        let t0 = Instant::now();
        assert_eq!(unless_reliable(t0, true, Duration::from_secs(5)), None);
        assert_eq!(
            unless_reliable(t0, false, Duration::from_secs(5)),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(
            Retransmit::start(t0, Duration::from_millis(500), true),
            None
        );
        assert_eq!(
            earliest(&[None, Some(t0 + Duration::from_secs(2)), Some(t0)]),
            Some(t0)
        );
    }
}

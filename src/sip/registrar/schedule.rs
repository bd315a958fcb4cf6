//! Deadlines of bindings (expiry, next qualify), ordered by time, with
//! removal: a refreshed or removed binding takes its old entries with it, so
//! the schedule holds exactly one entry per binding however often phones
//! refresh (a heap with lazy deletion would keep every superseded entry
//! until its time came, up to `max_expires` later).

use std::collections::BTreeSet;
use std::time::Instant;

#[derive(Debug, Default)]
pub(super) struct Schedule(BTreeSet<(Instant, String, String)>);

impl Schedule {
    pub(super) fn insert(&mut self, at: Instant, aor: &str, key: &str) {
        self.0.insert((at, aor.to_owned(), key.to_owned()));
    }

    pub(super) fn remove(&mut self, at: Instant, aor: &str, key: &str) {
        self.0.remove(&(at, aor.to_owned(), key.to_owned()));
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.0.first().map(|(at, _, _)| *at)
    }

    /// The earliest entry due by `now`, taken out.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, String, String)> {
        if self.next()? > now {
            return None;
        }
        self.0.pop_first()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

//! Brute-force limiter: a source that fails authentication `max_failures`
//! times within `window` is blocked for `block` (RFC 3261 §26.1 lists
//! password guessing among the threats to digest; RFC 7616 §5.2 asks servers
//! to limit it).
//!
//! Sources are IPv4 addresses and IPv6 /64 prefixes: a single IPv6 host
//! usually controls a whole /64, so counting per address would let it
//! guess from 2^64 addresses and flush the table. IPv4-mapped IPv6 addresses
//! count as their IPv4 address.
//!
//! The window is fixed: it opens at a source's first failure and the count
//! restarts once it has passed. Memory is bounded by `max_tracked`; when the
//! table is full, expired entries go first, then the entry closest to
//! expiry (the oldest window, or the block nearest its end).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The longest window or block honoured; longer settings are capped so that
/// `Instant` arithmetic cannot overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Source::V6Prefix(prefix)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked: bool,
    /// End of the counting window, or of the block once blocked; the entry
    /// carries no information after it.
    expires: Instant,
}

/// Counts authentication failures per source and blocks persistent guessers.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    block: Duration,
    max_tracked: usize,
    entries: HashMap<Source, Entry>,
    /// The same entries ordered by expiry, for O(log n) eviction.
    by_expiry: BTreeSet<(Instant, Source)>,
}

impl FailureLimiter {
    /// `max_failures` failures within `window` block a source for `block`;
    /// at most `max_tracked` sources are remembered. Zero for `max_failures`
    /// or `max_tracked` is taken as 1; durations are capped at a year.
    pub fn new(max_failures: u32, window: Duration, block: Duration, max_tracked: usize) -> Self {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window: window.min(MAX_DURATION),
            block: block.min(MAX_DURATION),
            max_tracked: max_tracked.max(1),
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Whether requests from `ip` should be refused without looking at them.
    pub fn is_blocked(&mut self, now: Instant, ip: IpAddr) -> bool {
        let source = Source::from(ip);
        match self.live_entry(now, source) {
            Some(entry) => entry.blocked,
            None => false,
        }
    }

    /// Records a failed authentication from `ip`; returns true when this
    /// failure starts a block.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> bool {
        let source = Source::from(ip);
        let entry = match self.live_entry(now, source) {
            Some(entry) if entry.blocked => return false,
            Some(entry) => Entry {
                failures: entry.failures.saturating_add(1),
                ..entry
            },
            None => {
                self.make_room(now);
                Entry {
                    failures: 1,
                    blocked: false,
                    expires: deadline(now, self.window),
                }
            }
        };
        let blocks = entry.failures >= self.max_failures;
        let entry = if blocks {
            Entry {
                blocked: true,
                expires: deadline(now, self.block),
                ..entry
            }
        } else {
            entry
        };
        self.store(source, entry);
        blocks
    }

    /// Records a successful authentication from `ip`: its failure count is
    /// forgotten. A block stays until it ends; a success during a block can
    /// only come from a caller that skipped [`is_blocked`](Self::is_blocked).
    pub fn record_success(&mut self, ip: IpAddr) {
        let source = Source::from(ip);
        if let Some(entry) = self.entries.get(&source) {
            if !entry.blocked {
                let key = (entry.expires, source);
                self.by_expiry.remove(&key);
                self.entries.remove(&source);
            }
        }
    }

    /// The entry for `source` if it has not expired; an expired one is
    /// dropped.
    fn live_entry(&mut self, now: Instant, source: Source) -> Option<Entry> {
        let entry = *self.entries.get(&source)?;
        if now < entry.expires {
            return Some(entry);
        }
        self.remove(source, entry);
        None
    }

    fn remove(&mut self, source: Source, entry: Entry) {
        self.by_expiry.remove(&(entry.expires, source));
        self.entries.remove(&source);
    }

    fn store(&mut self, source: Source, entry: Entry) {
        if let Some(old) = self.entries.insert(source, entry) {
            self.by_expiry.remove(&(old.expires, source));
        }
        self.by_expiry.insert((entry.expires, source));
    }

    /// Frees a slot for a new source: all expired entries first, else the
    /// one expiring soonest.
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.max_tracked {
            return;
        }
        while let Some(&(expires, source)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            self.by_expiry.pop_first();
            self.entries.remove(&source);
        }
        if self.entries.len() >= self.max_tracked {
            if let Some((_, source)) = self.by_expiry.pop_first() {
                self.entries.remove(&source);
            }
        }
    }
}

fn deadline(now: Instant, after: Duration) -> Instant {
    // `after` is capped at MAX_DURATION, so this only fails for an `Instant`
    // within a year of the platform's limit.
    now.checked_add(after).unwrap_or(now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);
    const BLOCK: Duration = Duration::from_secs(600);

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn limiter() -> FailureLimiter {
        FailureLimiter::new(3, WINDOW, BLOCK, 100)
    }

    #[test]
    fn blocks_at_the_threshold_within_the_window() {
        let t0 = Instant::now();
        let mut l = limiter();
        assert!(!l.is_blocked(t0, v4(1)));
        assert!(!l.record_failure(t0, v4(1)));
        assert!(!l.record_failure(t0 + secs(10), v4(1)));
        assert!(!l.is_blocked(t0 + secs(10), v4(1)));
        assert!(l.record_failure(t0 + secs(20), v4(1)));
        assert!(l.is_blocked(t0 + secs(20), v4(1)));
        // Only the failure that started the block reports it.
        assert!(!l.record_failure(t0 + secs(21), v4(1)));
        // Other sources are unaffected.
        assert!(!l.is_blocked(t0 + secs(20), v4(2)));
    }

    #[test]
    fn block_lasts_its_duration_then_counting_restarts() {
        let t0 = Instant::now();
        let mut l = limiter();
        for _ in 0..3 {
            l.record_failure(t0, v4(1));
        }
        // Failures during the block do not extend it.
        l.record_failure(t0 + secs(300), v4(1));
        assert!(l.is_blocked(t0 + BLOCK - Duration::from_millis(1), v4(1)));
        assert!(!l.is_blocked(t0 + BLOCK, v4(1)));
        let t1 = t0 + BLOCK;
        assert!(!l.record_failure(t1, v4(1)));
        assert!(!l.record_failure(t1, v4(1)));
        assert!(l.record_failure(t1, v4(1)));
    }

    #[test]
    fn block_ends_even_without_polling_in_between() {
        let t0 = Instant::now();
        let mut l = limiter();
        for _ in 0..3 {
            l.record_failure(t0, v4(1));
        }
        // The first thing seen after the block is a failure: it counts as 1.
        assert!(!l.record_failure(t0 + BLOCK + secs(1), v4(1)));
        assert!(!l.is_blocked(t0 + BLOCK + secs(1), v4(1)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t0 = Instant::now();
        let mut l = limiter();
        l.record_failure(t0, v4(1));
        l.record_failure(t0 + secs(30), v4(1));
        // The window opened at t0 has closed: this starts a new one.
        assert!(!l.record_failure(t0 + WINDOW, v4(1)));
        assert!(!l.record_failure(t0 + WINDOW + secs(1), v4(1)));
        assert!(l.record_failure(t0 + WINDOW + secs(2), v4(1)));
    }

    #[test]
    fn success_resets_the_count_but_not_a_block() {
        let t0 = Instant::now();
        let mut l = limiter();
        l.record_failure(t0, v4(1));
        l.record_failure(t0, v4(1));
        l.record_success(v4(1));
        assert!(!l.record_failure(t0, v4(1)));
        assert!(!l.record_failure(t0, v4(1)));
        assert!(l.record_failure(t0, v4(1)));
        l.record_success(v4(1));
        assert!(l.is_blocked(t0 + secs(1), v4(1)));
        // Success from an unknown source is a no-op.
        l.record_success(v4(9));
        assert!(!l.is_blocked(t0, v4(9)));
    }

    #[test]
    fn ipv6_counts_per_64_prefix_and_mapped_ipv4_as_ipv4() {
        let t0 = Instant::now();
        let mut l = limiter();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        l.record_failure(t0, a);
        l.record_failure(t0, b);
        assert!(l.record_failure(t0, a));
        assert!(l.is_blocked(t0, b));
        assert!(!l.is_blocked(t0, other));

        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        l.record_failure(t0, mapped);
        l.record_failure(t0, v4(7));
        assert!(l.record_failure(t0, mapped));
        assert!(l.is_blocked(t0, v4(7)));
    }

    #[test]
    fn table_is_bounded() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(3, WINDOW, BLOCK, 10);
        for i in 0..=255u8 {
            l.record_failure(t0 + Duration::from_millis(u64::from(i)), v4(i));
            assert!(l.entries.len() <= 10);
            assert_eq!(l.entries.len(), l.by_expiry.len());
        }
    }

    #[test]
    fn full_table_evicts_expired_entries_first() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(3, WINDOW, BLOCK, 3);
        l.record_failure(t0, v4(1)); // expires at t0 + 60
        for _ in 0..3 {
            l.record_failure(t0, v4(2)); // blocked until t0 + 600
        }
        l.record_failure(t0 + secs(30), v4(3)); // expires at t0 + 90
                                                // At t0 + 70 only v4(1) has expired; adding a source removes it and
                                                // keeps the younger v4(3).
        let t = t0 + secs(70);
        l.record_failure(t, v4(4));
        assert_eq!(l.entries.len(), 3);
        assert!(!l.entries.contains_key(&Source::from(v4(1))));
        assert!(l.is_blocked(t, v4(2)));
        l.record_failure(t, v4(3));
        assert!(l.record_failure(t, v4(3)));
    }

    #[test]
    fn full_table_evicts_the_oldest_when_nothing_expired() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(2, WINDOW, BLOCK, 2);
        l.record_failure(t0, v4(1));
        l.record_failure(t0 + secs(1), v4(2));
        l.record_failure(t0 + secs(2), v4(3));
        assert!(!l.entries.contains_key(&Source::from(v4(1))));
        // v4(2) kept its count: one more failure blocks it.
        assert!(l.record_failure(t0 + secs(3), v4(2)));
        // v4(1) starts from scratch (and evicts v4(3), now the oldest).
        assert!(!l.record_failure(t0 + secs(3), v4(1)));
        assert!(!l.entries.contains_key(&Source::from(v4(3))));
        assert!(l.is_blocked(t0 + secs(3), v4(2)));
    }

    #[test]
    fn degenerate_settings_are_clamped() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(0, Duration::MAX, Duration::MAX, 0);
        // max_failures 0 behaves as 1, max_tracked 0 as 1, and huge
        // durations do not overflow.
        assert!(l.record_failure(t0, v4(1)));
        assert!(l.is_blocked(t0 + secs(86_400 * 364), v4(1)));
        assert!(l.record_failure(t0, v4(2)));
        assert_eq!(l.entries.len(), 1);
    }
}

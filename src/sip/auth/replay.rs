//! Nonce-count replay protection (RFC 7616 §3.4, §5.3; RFC 2617 §3.2.2).
//!
//! For every nonce in use the guard remembers the highest `nc` it accepted; a
//! request whose `nc` is not above it is a replay. Memory is bounded: entries
//! leave when their nonce expires, and when the table is full the oldest
//! nonce (the one expiring first) is evicted.
//!
//! Evicting must not reopen a replay window: an evicted nonce presented again
//! must not look like a first use. Eviction goes oldest first, so a forgotten
//! nonce never expires later than anything still tracked, and the guard
//! remembers the latest expiry it ever evicted (a single watermark). An
//! untracked nonce expiring at or before the watermark (e.g. a twin issued in
//! the same second as an evicted one) or before everything in a full table
//! may have been seen, so it is refused as [`ReplayError::Forgotten`]; the
//! verifier answers `stale=TRUE`, which makes the client fetch a new nonce
//! without re-prompting its user.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use thiserror::Error;

use super::nonce::NonceId;

/// Why a nonce count was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// `nc` is not above the highest count already accepted for the nonce
    /// (counts start at 1, so `nc == 0` always lands here).
    #[error("nonce count {nc} replayed (highest accepted {highest})")]
    Replayed {
        /// The count presented.
        nc: u32,
        /// The highest count accepted so far for this nonce.
        highest: u32,
    },
    /// The guard no longer knows this nonce (it expired, or was evicted to
    /// stay within capacity), so it cannot tell whether `nc` is fresh.
    #[error("nonce no longer tracked")]
    Forgotten,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    highest_nc: u32,
    expires: Instant,
}

/// Highest accepted nonce count per nonce, with bounded memory.
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    entries: HashMap<NonceId, Entry>,
    /// The same entries ordered by expiry (then id, to make keys unique), so
    /// expiry and oldest-first eviction are O(log n).
    by_expiry: BTreeSet<(Instant, NonceId)>,
    /// Latest expiry of any entry evicted for room.
    forgotten_until: Option<Instant>,
}

impl ReplayGuard {
    /// A guard tracking at most `capacity` nonces. A capacity of 0 refuses
    /// every nonce as `Forgotten`.
    pub fn new(capacity: usize) -> Self {
        ReplayGuard {
            capacity,
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            forgotten_until: None,
        }
    }

    /// Number of nonces currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no nonce is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accepts `nc` for `nonce` (which stops being usable after `expires`) if
    /// it is above every count accepted before, and records it.
    ///
    /// Call this only once the request's digest has been verified; otherwise
    /// anyone could burn a legitimate client's counts.
    pub fn accept(
        &mut self,
        now: Instant,
        nonce: NonceId,
        expires: Instant,
        nc: u32,
    ) -> Result<(), ReplayError> {
        self.purge(now);
        if let Some(entry) = self.entries.get_mut(&nonce) {
            if nc <= entry.highest_nc {
                return Err(ReplayError::Replayed {
                    nc,
                    highest: entry.highest_nc,
                });
            }
            entry.highest_nc = nc;
            return Ok(());
        }
        if expires < now || self.forgotten_until.is_some_and(|w| expires <= w) {
            return Err(ReplayError::Forgotten);
        }
        if nc == 0 {
            return Err(ReplayError::Replayed { nc, highest: 0 });
        }
        if self.entries.len() >= self.capacity {
            match self.by_expiry.first() {
                // Evict the oldest, unless the newcomer is older still: then
                // it is the one that does not fit.
                Some(&(oldest, _)) if oldest <= expires => self.evict_oldest(),
                _ => return Err(ReplayError::Forgotten),
            }
        }
        self.entries.insert(
            nonce,
            Entry {
                highest_nc: nc,
                expires,
            },
        );
        self.by_expiry.insert((expires, nonce));
        Ok(())
    }

    fn evict_oldest(&mut self) {
        if let Some((expires, id)) = self.by_expiry.pop_first() {
            self.entries.remove(&id);
            self.forgotten_until = Some(self.forgotten_until.map_or(expires, |w| w.max(expires)));
        }
    }

    /// Drops entries whose nonce has expired: they can no longer be used, so
    /// forgetting them opens no window (expired nonces are refused above).
    fn purge(&mut self, now: Instant) {
        while let Some(&(expires, id)) = self.by_expiry.first() {
            if expires >= now {
                break;
            }
            self.by_expiry.pop_first();
            debug_assert!(self.entries.get(&id).is_some_and(|e| e.expires == expires));
            self.entries.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sip::auth::nonce::NonceIssuer;

    const TTL: Duration = Duration::from_secs(60);

    /// Distinct authentic nonce ids issued at `t`, with their expiry.
    struct Ids {
        issuer: NonceIssuer,
    }

    impl Ids {
        fn new(t0: Instant) -> Self {
            Ids {
                issuer: NonceIssuer::new([1; 32], t0),
            }
        }

        fn at(&mut self, t: Instant) -> Option<(NonceId, Instant)> {
            let n = self.issuer.issue(t);
            let a = self.issuer.inspect(&n)?;
            Some((a.id, a.issued_at + TTL))
        }
    }

    #[test]
    fn counts_must_increase() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (id, exp) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(10);
        g.accept(t0, id, exp, 1)?;
        assert_eq!(
            g.accept(t0, id, exp, 1),
            Err(ReplayError::Replayed { nc: 1, highest: 1 })
        );
        g.accept(t0, id, exp, 2)?;
        // Gaps are fine (a client may have had requests lost), going back is not.
        g.accept(t0, id, exp, 7)?;
        assert_eq!(
            g.accept(t0, id, exp, 5),
            Err(ReplayError::Replayed { nc: 5, highest: 7 })
        );
        g.accept(t0, id, exp, u32::MAX)?;
        assert!(g.accept(t0, id, exp, u32::MAX).is_err());
        Ok(())
    }

    #[test]
    fn zero_count_is_never_accepted() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (id, exp) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(10);
        assert_eq!(
            g.accept(t0, id, exp, 0),
            Err(ReplayError::Replayed { nc: 0, highest: 0 })
        );
        assert!(g.is_empty());
        Ok(())
    }

    #[test]
    fn nonces_are_independent() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (a, ea) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let (b, eb) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(10);
        g.accept(t0, a, ea, 1)?;
        g.accept(t0, b, eb, 1)?;
        assert_eq!(g.len(), 2);
        Ok(())
    }

    #[test]
    fn entries_leave_when_their_nonce_expires() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (a, ea) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let (b, eb) = ids
            .at(t0 + Duration::from_secs(30))
            .ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(10);
        g.accept(t0, a, ea, 1)?;
        g.accept(t0 + Duration::from_secs(30), b, eb, 1)?;
        // At the expiry instant the nonce is still usable.
        g.accept(ea, a, ea, 2)?;
        assert_eq!(g.len(), 2);
        let later = ea + Duration::from_millis(1);
        g.accept(later, b, eb, 2)?;
        assert_eq!(g.len(), 1);
        // And an expired nonce is refused, not re-registered from scratch.
        assert_eq!(g.accept(later, a, ea, 3), Err(ReplayError::Forgotten));
        assert_eq!(g.len(), 1);
        Ok(())
    }

    #[test]
    fn full_guard_evicts_oldest_and_refuses_it_afterwards() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let mut g = ReplayGuard::new(3);
        let mut all = Vec::new();
        for s in 0..3 {
            let t = t0 + Duration::from_secs(s);
            let (id, exp) = ids.at(t).ok_or(ReplayError::Forgotten)?;
            g.accept(t, id, exp, 1)?;
            all.push((id, exp));
        }
        let t = t0 + Duration::from_secs(3);
        let (newest, exp) = ids.at(t).ok_or(ReplayError::Forgotten)?;
        g.accept(t, newest, exp, 1)?;
        assert_eq!(g.len(), 3);
        // The oldest was evicted; presenting it again must not be taken as a
        // first use (that would let its old counts be replayed).
        let (oldest, oldest_exp) = all[0];
        assert_eq!(
            g.accept(t, oldest, oldest_exp, 1),
            Err(ReplayError::Forgotten)
        );
        assert_eq!(
            g.accept(t, oldest, oldest_exp, 100),
            Err(ReplayError::Forgotten)
        );
        // The others are still tracked.
        let (second, second_exp) = all[1];
        assert_eq!(
            g.accept(t, second, second_exp, 1),
            Err(ReplayError::Replayed { nc: 1, highest: 1 })
        );
        g.accept(t, second, second_exp, 2)?;
        Ok(())
    }

    #[test]
    fn evicted_nonce_stays_refused_even_beside_a_twin_of_the_same_second() -> Result<(), ReplayError>
    {
        // Nonces issued in the same second share an expiry, so the evicted
        // one is not older than its twin still in the table; only the
        // watermark tells that it may have been used before.
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (a, ea) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let (b, eb) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        assert_eq!(ea, eb);
        let t = t0 + Duration::from_secs(5);
        let (c, ec) = ids.at(t).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(2);
        g.accept(t0, a, ea, 1)?;
        g.accept(t0, b, eb, 1)?;
        g.accept(t, c, ec, 1)?;
        let evicted = if g.entries.contains_key(&a) { b } else { a };
        assert!(!g.entries.contains_key(&evicted));
        assert_eq!(g.accept(t, evicted, ea, 1), Err(ReplayError::Forgotten));
        assert_eq!(g.accept(t, evicted, ea, 2), Err(ReplayError::Forgotten));
        assert_eq!(g.len(), 2);
        Ok(())
    }

    #[test]
    fn newcomer_older_than_everything_tracked_does_not_fit() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (old, old_exp) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let t = t0 + Duration::from_secs(10);
        let (young, young_exp) = ids.at(t).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(1);
        g.accept(t, young, young_exp, 1)?;
        assert_eq!(g.accept(t, old, old_exp, 1), Err(ReplayError::Forgotten));
        g.accept(t, young, young_exp, 2)?;
        Ok(())
    }

    #[test]
    fn memory_stays_bounded_under_churn() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let mut g = ReplayGuard::new(50);
        // 4 new nonces a second living 60 s: 240 would be live at once.
        for i in 0..1_000u64 {
            let t = t0 + Duration::from_millis(i * 250);
            let (id, exp) = ids.at(t).ok_or(ReplayError::Forgotten)?;
            // Eviction only ever takes nonces from earlier seconds, so every
            // newcomer is younger than the watermark and fits.
            g.accept(t, id, exp, 1)?;
            assert!(g.len() <= 50);
        }
        assert_eq!(g.len(), 50);
        Ok(())
    }

    #[test]
    fn zero_capacity_refuses_everything() -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut ids = Ids::new(t0);
        let (id, exp) = ids.at(t0).ok_or(ReplayError::Forgotten)?;
        let mut g = ReplayGuard::new(0);
        assert_eq!(g.accept(t0, id, exp, 1), Err(ReplayError::Forgotten));
        assert!(g.is_empty());
        Ok(())
    }
}

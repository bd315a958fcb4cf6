//! RTP/RTCP port pairs from the configured media port range.
//!
//! RFC 3550 §11: RTP uses an even port and RTCP the next (odd) one. Pairs
//! are handed out round-robin: a pair released by one call is reused only
//! after the allocator has gone once around the range, so late packets of
//! the old call (still in flight, or from a peer that has not yet seen the
//! BYE) do not land in a new call's stream.

use std::ops::RangeInclusive;

use thiserror::Error;

/// An RTP port (even) and its RTCP port (RTP + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortPair {
    rtp: u16,
}

impl PortPair {
    /// The even RTP port.
    pub fn rtp(self) -> u16 {
        self.rtp
    }

    /// The RTCP port, `rtp + 1` (RFC 3550 §11).
    pub fn rtcp(self) -> u16 {
        // rtp is even, so rtp + 1 cannot overflow.
        self.rtp | 1
    }
}

/// Why a configured port range is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PortRangeError {
    /// Port 0 means "any port" to the OS, not a port a peer can send to.
    #[error("media port range {start}..={end} includes port 0")]
    IncludesZero { start: u16, end: u16 },
    /// The range does not contain an even port followed by its odd port.
    #[error("media port range {start}..={end} holds no even/odd RTP/RTCP pair")]
    NoPair { start: u16, end: u16 },
}

/// Why a release was refused (nothing was changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReleaseError {
    /// The pair is not in this allocator's range.
    #[error("port pair {}/{} is outside the media port range", .0.rtp(), .0.rtcp())]
    OutOfRange(PortPair),
    /// The pair is in range but not currently allocated (double release).
    #[error("port pair {}/{} is not allocated", .0.rtp(), .0.rtcp())]
    NotAllocated(PortPair),
}

/// Hands out RTP/RTCP pairs from a range. Not thread-safe by itself; the
/// media runtime owns one and serialises access.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    /// RTP port of slot 0; slot `i` is `first + 2 * i`.
    first: u16,
    used: Vec<bool>,
    in_use: usize,
    /// Slot where the next search starts (round-robin).
    cursor: usize,
}

impl PortAllocator {
    /// Allocator over the even/odd pairs inside `range`. Odd bounds are
    /// fine: a range of 10001..=10010 yields 10002/3 .. 10008/9.
    pub fn new(range: RangeInclusive<u16>) -> Result<Self, PortRangeError> {
        let (start, end) = (*range.start(), *range.end());
        if start == 0 {
            return Err(PortRangeError::IncludesZero { start, end });
        }
        let no_pair = PortRangeError::NoPair { start, end };
        // First even port >= start; start < 65535 when it is odd and a
        // pair can still fit, so the checked add only fails without one.
        let first = if start % 2 == 0 {
            start
        } else {
            start.checked_add(1).ok_or(no_pair.clone())?
        };
        if first >= end {
            return Err(no_pair);
        }
        // Pairs (first, first+1), ..., with the last RTCP port <= end.
        let count = usize::from((end - first).div_ceil(2));
        Ok(Self {
            first,
            used: vec![false; count],
            in_use: 0,
            cursor: 0,
        })
    }

    /// Number of pairs in the range.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// Number of pairs currently allocated.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// The next free pair after the last one handed out, or `None` when
    /// all are in use.
    pub fn allocate(&mut self) -> Option<PortPair> {
        if self.in_use == self.capacity() {
            return None;
        }
        let cap = self.capacity();
        let slot = (0..cap)
            .map(|step| (self.cursor + step) % cap)
            .find(|&slot| !self.used.get(slot).copied().unwrap_or(true))?;
        if let Some(used) = self.used.get_mut(slot) {
            *used = true;
        }
        self.in_use += 1;
        self.cursor = (slot + 1) % cap;
        Some(self.pair_of(slot))
    }

    /// Return a pair. Releasing a pair that is not allocated changes
    /// nothing and says why.
    pub fn release(&mut self, pair: PortPair) -> Result<(), ReleaseError> {
        let slot = self.slot_of(pair).ok_or(ReleaseError::OutOfRange(pair))?;
        match self.used.get_mut(slot) {
            Some(used) if *used => {
                *used = false;
                self.in_use -= 1;
                Ok(())
            }
            Some(_) => Err(ReleaseError::NotAllocated(pair)),
            None => Err(ReleaseError::OutOfRange(pair)),
        }
    }

    /// Whether `pair` is currently allocated.
    pub fn is_allocated(&self, pair: PortPair) -> bool {
        self.slot_of(pair)
            .and_then(|slot| self.used.get(slot).copied())
            .unwrap_or(false)
    }

    fn pair_of(&self, slot: usize) -> PortPair {
        // slot < capacity, so first + 2 * slot <= end - 1 fits in u16.
        let offset = u16::try_from(slot * 2).unwrap_or(u16::MAX);
        PortPair {
            rtp: self.first.saturating_add(offset),
        }
    }

    fn slot_of(&self, pair: PortPair) -> Option<usize> {
        let offset = pair.rtp.checked_sub(self.first)?;
        let slot = usize::from(offset / 2);
        (offset % 2 == 0 && slot < self.capacity()).then_some(slot)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn even_bounds() {
        let a = PortAllocator::new(10000..=10009).unwrap();
        assert_eq!(a.capacity(), 5);
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn odd_bounds_are_trimmed() {
        let mut a = PortAllocator::new(10001..=10010).unwrap();
        assert_eq!(a.capacity(), 4);
        let pairs: Vec<_> = std::iter::from_fn(|| a.allocate()).collect();
        let rtp: Vec<u16> = pairs.iter().map(|p| p.rtp()).collect();
        assert_eq!(rtp, vec![10002, 10004, 10006, 10008]);
        assert!(pairs.iter().all(|p| p.rtcp() == p.rtp() + 1));
    }

    #[test]
    fn top_of_port_space() {
        let mut a = PortAllocator::new(65534..=65535).unwrap();
        assert_eq!(a.capacity(), 1);
        let p = a.allocate().unwrap();
        assert_eq!((p.rtp(), p.rtcp()), (65534, 65535));
        assert_eq!(
            PortAllocator::new(65535..=65535).unwrap_err(),
            PortRangeError::NoPair {
                start: 65535,
                end: 65535
            }
        );
    }

    #[test]
    fn ranges_without_a_pair_are_rejected() {
        for (s, e) in [(10000, 10000), (10001, 10002), (10010, 10000), (9, 9)] {
            assert_eq!(
                PortAllocator::new(s..=e).unwrap_err(),
                PortRangeError::NoPair { start: s, end: e },
                "{s}..={e}"
            );
        }
        assert_eq!(
            PortAllocator::new(0..=100).unwrap_err(),
            PortRangeError::IncludesZero { start: 0, end: 100 }
        );
        // A single pair is enough.
        assert_eq!(PortAllocator::new(10001..=10003).unwrap().capacity(), 1);
    }

    #[test]
    fn exhaustion_returns_none_and_release_refills() {
        let mut a = PortAllocator::new(20000..=20005).unwrap();
        let got: Vec<_> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(a.allocate(), None);
        assert_eq!(a.in_use(), 3);
        a.release(got[1]).unwrap();
        assert_eq!(a.allocate(), Some(got[1]));
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn released_pair_is_reused_only_after_cycling() {
        let mut a = PortAllocator::new(30000..=30009).unwrap(); // 5 pairs
        let p0 = a.allocate().unwrap();
        let p1 = a.allocate().unwrap();
        a.release(p0).unwrap();
        // p0 is free but the others come first.
        let next: Vec<u16> = (0..3).map(|_| a.allocate().unwrap().rtp()).collect();
        assert_eq!(next, vec![30004, 30006, 30008]);
        // Wrapped around: now p0 again (p1 is still in use).
        assert_eq!(a.allocate(), Some(p0));
        assert!(a.is_allocated(p1));
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn bad_release_is_a_typed_no_op() {
        let mut a = PortAllocator::new(40000..=40003).unwrap();
        let p = a.allocate().unwrap();
        a.release(p).unwrap();
        assert_eq!(a.release(p), Err(ReleaseError::NotAllocated(p)));
        assert_eq!(a.in_use(), 0);

        let mut other = PortAllocator::new(50000..=50001).unwrap();
        let foreign = other.allocate().unwrap();
        assert_eq!(a.release(foreign), Err(ReleaseError::OutOfRange(foreign)));
        assert_eq!(a.in_use(), 0);
    }

    proptest! {
        #[test]
        fn matches_hashset_reference(
            start in 1000u16..1010,
            len in 1u16..40,
            ops in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..300),
        ) {
            let end = start + len;
            let Ok(mut a) = PortAllocator::new(start..=end) else {
                // Only a range of length 1 starting odd has no pair.
                prop_assert!(len == 1 && start % 2 == 1);
                return Ok(());
            };
            let mut held: HashSet<PortPair> = HashSet::new();
            let mut all_seen: HashSet<u16> = HashSet::new();
            for (alloc, idx) in ops {
                if alloc {
                    match a.allocate() {
                        Some(p) => {
                            prop_assert!(held.len() < a.capacity());
                            prop_assert!(p.rtp() % 2 == 0);
                            prop_assert_eq!(p.rtcp(), p.rtp() + 1);
                            prop_assert!(p.rtp() >= start && p.rtcp() <= end);
                            prop_assert!(held.insert(p), "handed out twice: {:?}", p);
                            all_seen.insert(p.rtp());
                        }
                        None => prop_assert_eq!(held.len(), a.capacity()),
                    }
                } else if !held.is_empty() {
                    let mut v: Vec<_> = held.iter().copied().collect();
                    v.sort();
                    let p = v[idx.index(v.len())];
                    prop_assert_eq!(a.release(p), Ok(()));
                    held.remove(&p);
                    // A second release is refused and changes nothing.
                    prop_assert_eq!(a.release(p), Err(ReleaseError::NotAllocated(p)));
                }
                prop_assert_eq!(a.in_use(), held.len());
            }
            prop_assert!(all_seen.len() <= a.capacity());
        }
    }
}

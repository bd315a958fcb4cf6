//! Transaction storage: a generational slab.
//!
//! Ids index a vector directly (no hashing on every timer and every
//! `respond`), and a generation per slot makes the id of a terminated
//! transaction stay dead after its slot is reused, so a TU that answers late
//! gets an error rather than answering someone else's request.

pub(super) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// `generation << 32 | index`.
fn split(key: u64) -> (u32, usize) {
    ((key >> 32) as u32, (key & u64::from(u32::MAX)) as usize)
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                slot.value = Some(value);
                return u64::from(slot.generation) << 32 | u64::from(index);
            }
        }
        // 2^32 live transactions would need terabytes: the index fits.
        let index = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        u64::from(index)
    }

    pub(super) fn get(&self, key: u64) -> Option<&T> {
        let (generation, index) = split(key);
        self.slots
            .get(index)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.value.as_ref())
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        let (generation, index) = split(key);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.value.as_mut())
    }

    pub(super) fn remove(&mut self, key: u64) -> Option<T> {
        let (generation, index) = split(key);
        let slot = self
            .slots
            .get_mut(index)
            .filter(|s| s.generation == generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_do_not_revive_old_ids() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_ne!(a, b);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }
}

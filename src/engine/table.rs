//! Ticket id → slot: open addressing with linear probing over 8-byte entries.
//!
//! An entry holds the low 32 bits of the id's hash (which also pick its home position) and
//! the slot number + 1 (0 marks an empty entry). Written by hand instead of using
//! `hashbrown` for one reason: the line a lookup will read is computable from the hash alone,
//! so a caller that knows upcoming ticket ids can prefetch it (see [`IdTable::prefetch`]),
//! which overlaps the cache misses of consecutive events. Deletion shifts later entries back
//! (no tombstones), so probe chains stay as short as the load factor (at most 3/4) allows.

/// Fewest entries once anything is stored.
const MIN_CAPACITY: usize = 1024;

#[derive(Default)]
pub struct IdTable {
    entries: Vec<u64>,
    len: usize,
}

fn entry(hash: u32, slot: u32) -> u64 {
    (u64::from(hash) << 32) | (u64::from(slot) + 1)
}

fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

fn hash_of(e: u64) -> u32 {
    (e >> 32) as u32
}

impl IdTable {
    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask()
    }

    /// The slot whose entry has `hash` and satisfies `is_it`.
    pub fn find(&self, hash: u32, is_it: impl Fn(u32) -> bool) -> Option<u32> {
        self.probe(hash, |e| is_it(slot_of(e)))
            .map(|i| slot_of(self.entries[i]))
    }

    /// The position of the entry with `hash` that satisfies `is_it`.
    fn probe(&self, hash: u32, is_it: impl Fn(u64) -> bool) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            match self.entries[i] {
                0 => return None,
                e if hash_of(e) == hash && is_it(e) => return Some(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// Adds `slot` under `hash` (the caller knows it is not there yet).
    pub fn insert(&mut self, hash: u32, slot: u32) {
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        self.place(entry(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mut i = self.home(hash_of(e));
        while self.entries[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let capacity = (self.entries.len() * 2).max(MIN_CAPACITY);
        let old = std::mem::replace(&mut self.entries, vec![0; capacity]);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Removes the entry of `slot`, stored under `hash`.
    pub fn remove(&mut self, hash: u32, slot: u32) {
        let Some(mut hole) = self.probe(hash, |e| slot_of(e) == slot) else {
            return;
        };
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            // Move the entry back into the hole unless its home lies after the hole.
            let home = self.home(hash_of(e));
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
        self.len -= 1;
    }

    /// Starts loading the line a lookup of `hash` reads first.
    pub fn prefetch(&self, hash: u32) {
        if !self.entries.is_empty() {
            prefetch(&self.entries[self.home(hash)]);
        }
    }
}

/// A hint to the CPU to start loading the cache line at `p`; no effect on other targets.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching never faults, whatever the address.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Against a HashMap model, with hashes squeezed into few values to force long probe
        /// chains and wrap-around.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u32..64, any::<bool>()), 1..3000)) {
            let mut table = IdTable::default();
            let mut model: HashMap<u32, u32> = HashMap::new();
            let hash = |key: u32| key.wrapping_mul(0x9E37_79B9) | 0x3FF; // same home for many keys
            for (key, insert) in ops {
                let found = table.find(hash(key), |s| s == key);
                prop_assert_eq!(found, model.get(&key).copied());
                match (insert, found) {
                    (true, None) => {
                        table.insert(hash(key), key);
                        model.insert(key, key);
                    }
                    (false, Some(slot)) => {
                        table.remove(hash(key), slot);
                        model.remove(&key);
                    }
                    _ => {}
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for key in 0..64 {
                prop_assert_eq!(table.find(hash(key), |s| s == key), model.get(&key).copied());
            }
        }
    }
}

//! The deadline index: which ticket falls due next.
//!
//! A bucketed timer queue with lazy deletion. Instants are grouped into buckets of about a
//! minute; later buckets are plain `Vec`s found through a small ordered map, and only the
//! current bucket is kept as a heap. Pushing appends to one bucket and popping works on a
//! heap of one bucket's size, both cache-friendly, where a `BTreeSet` or one big binary heap
//! costs a chain of cache misses per operation (see docs/PERFORMANCE.md). A ticket whose due
//! instant changes just pushes a new entry; the old one is recognised as stale when it comes
//! up, because it no longer matches the ticket. Stale entries are bounded by compaction: once
//! they outnumber the live ones, every bucket keeps only the entries that still match.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::time::Instant;

/// `(due, slot)` in 12 bytes: `due` is never negative (instants start at 1970), so comparing
/// the halves in order compares the instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    due_hi: u32,
    due_lo: u32,
    slot: u32,
}

impl Entry {
    fn new(due: Instant, slot: u32) -> Entry {
        debug_assert!(due >= 0);
        Entry {
            due_hi: (due >> 32) as u32,
            due_lo: due as u32,
            slot,
        }
    }

    fn due(self) -> Instant {
        (i64::from(self.due_hi) << 32) | i64::from(self.due_lo)
    }
}

/// log2 of a bucket's width in milliseconds (65.5 s).
const BUCKET_BITS: u32 = 16;
/// Entries beyond twice the live ones (plus this slack) trigger a compaction.
const COMPACT_SLACK: usize = 4096;

#[derive(Default)]
pub struct DueIndex {
    /// Entries of buckets up to `current`, as a min-heap.
    ready: BinaryHeap<Reverse<Entry>>,
    current: Instant,
    /// Entries of later buckets, by bucket number.
    later: BTreeMap<Instant, Vec<Entry>>,
    len: usize,
}

impl DueIndex {
    /// Records that `slot` is due at `due`. `live` is the number of tickets currently due at
    /// some instant and `is_current` tells whether an entry still matches its ticket; both
    /// serve the occasional compaction.
    pub fn push(&mut self, due: Instant, slot: u32, live: usize, is_current: impl Fn(Instant, u32) -> bool) {
        let entry = Entry::new(due, slot);
        let bucket = due >> BUCKET_BITS;
        if bucket <= self.current {
            self.ready.push(Reverse(entry));
        } else {
            self.later.entry(bucket).or_default().push(entry);
        }
        self.len += 1;
        if self.len > 2 * live + COMPACT_SLACK {
            self.ready.retain(|Reverse(e)| is_current(e.due(), e.slot));
            self.later.retain(|_, entries| {
                entries.retain(|e| is_current(e.due(), e.slot));
                entries.shrink_to_fit();
                !entries.is_empty()
            });
            self.len = self.ready.len() + self.later.values().map(Vec::len).sum::<usize>();
        }
    }

    /// The earliest entry (possibly stale).
    pub fn peek(&mut self) -> Option<(Instant, u32)> {
        if self.ready.is_empty() {
            let (bucket, entries) = self.later.pop_first()?;
            self.current = bucket;
            self.ready = BinaryHeap::from(entries.into_iter().map(Reverse).collect::<Vec<_>>());
        }
        self.ready.peek().map(|Reverse(e)| (e.due(), e.slot))
    }

    /// Removes the earliest entry (possibly stale: check it against the ticket).
    pub fn pop(&mut self) -> Option<(Instant, u32)> {
        self.peek()?;
        self.len -= 1;
        self.ready.pop().map(|Reverse(e)| (e.due(), e.slot))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_instant_then_slot_order() {
        let mut index = DueIndex::default();
        for (due, slot) in [(5_000_000_000_000, 1), (7, 3), (7, 2), (1 << 33, 0)] {
            index.push(due, slot, 10, |_, _| true);
        }
        let order: Vec<_> = std::iter::from_fn(|| index.pop()).collect();
        assert_eq!(order, [(7, 2), (7, 3), (1 << 33, 0), (5_000_000_000_000, 1)]);
    }

    #[test]
    fn compaction_keeps_only_current_entries() {
        let mut index = DueIndex::default();
        for due in 0..(COMPACT_SLACK as i64 + 10) {
            // One ticket rescheduled over and over: only the last entry is current.
            index.push(due << 10, 0, 1, |d, _| d == due << 10);
        }
        assert!(index.len() < 20, "{}", index.len());
        assert!(
            index.peek().unwrap().0 > (COMPACT_SLACK as i64) << 10,
            "stale entries were dropped"
        );
    }
}

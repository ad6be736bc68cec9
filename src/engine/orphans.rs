//! Events for tickets not created yet, held for `orphan_hold` of frontier time (SPEC §2).
//!
//! Multi-topic input can deliver a ticket's `reply.sent` before its `ticket.created`. Such
//! events wait here, bounded by `max_orphans` and `max_orphan_bytes`, until the creation arrives (then they are
//! applied in arrival order) or the frontier passes their hold (then they are dead-lettered
//! as `unknown_ticket`). Expiry instants only grow, so a FIFO queue orders them; entries of
//! released events stay in the queue and are skipped when they come up.

use std::collections::{HashMap, VecDeque};

use compact_str::CompactString;

use super::Applied;
use crate::event::{Event, Reason, Rejection};
use crate::policy::EngineSettings;
use crate::time::Instant;

pub struct Orphans<P> {
    held: HashMap<CompactString, VecDeque<(u64, Event, P)>>,
    /// (expiry, sequence number, ticket id) in arrival order.
    queue: VecDeque<(Instant, u64, CompactString)>,
    next_seq: u64,
    count: usize,
    /// Input bytes of the events held.
    bytes: usize,
    /// Sequence numbers held or let go since the changes were last taken, once tracking is on.
    changes: Option<Vec<u64>>,
}

impl<P> Default for Orphans<P> {
    fn default() -> Self {
        Orphans {
            held: HashMap::new(),
            queue: VecDeque::new(),
            next_seq: 0,
            count: 0,
            bytes: 0,
            changes: None,
        }
    }
}

impl<P> Orphans<P> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn hold(&mut self, ev: Event, payload: P, frontier: Instant, settings: &EngineSettings) -> Applied {
        if self.count >= settings.max_orphans || self.bytes + ev.size > settings.max_orphan_bytes {
            return Applied::Rejected(Rejection::new(
                Reason::UnknownTicket,
                format!(
                    "unknown ticket {:?}; the orphan buffer is full ({} events, {} bytes; limits {} and {})",
                    ev.ticket_id, self.count, self.bytes, settings.max_orphans, settings.max_orphan_bytes
                ),
            ));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.restore(seq, frontier.saturating_add(settings.orphan_hold), ev, payload);
        self.changed_seq(seq);
        Applied::Held
    }

    /// Holds `ev` under `seq` (ascending) until `expiry`.
    pub fn restore(&mut self, seq: u64, expiry: Instant, ev: Event, payload: P) {
        self.count += 1;
        self.bytes += ev.size;
        self.queue.push_back((expiry, seq, ev.ticket_id.clone()));
        self.held
            .entry(ev.ticket_id.clone())
            .or_default()
            .push_back((seq, ev, payload));
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn set_next_seq(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    pub fn changed(&self) -> bool {
        self.changes.as_ref().is_some_and(|c| !c.is_empty())
    }

    fn changed_seq(&mut self, seq: u64) {
        if let Some(c) = &mut self.changes {
            c.push(seq);
        }
    }

    /// The events held for `id`, in arrival order, now that it exists.
    pub fn release(&mut self, id: &str) -> Vec<(Event, P)> {
        if self.count == 0 {
            return Vec::new(); // the common case, without hashing the id
        }
        let Some(events) = self.held.remove(id) else {
            return Vec::new();
        };
        self.count -= events.len();
        for (seq, ev, _) in &events {
            self.bytes -= ev.size;
            self.changed_seq(*seq);
        }
        events.into_iter().map(|(_, ev, p)| (ev, p)).collect()
    }

    /// Removes and returns the events whose hold the frontier has passed.
    pub fn expire(&mut self, frontier: Instant) -> Vec<(P, CompactString)> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|&(expiry, ..)| expiry < frontier) {
            let (_, seq, id) = self.queue.pop_front().expect("checked non-empty");
            out.extend(self.take(seq, id));
        }
        out
    }

    /// Removes and returns every held event, in arrival order.
    pub fn drain(&mut self) -> Vec<(P, CompactString)> {
        std::mem::take(&mut self.queue)
            .into_iter()
            .filter_map(|(_, seq, id)| self.take(seq, id))
            .collect()
    }

    fn take(&mut self, seq: u64, id: CompactString) -> Option<(P, CompactString)> {
        let events = self.held.get_mut(&id)?;
        if events.front().is_none_or(|e| e.0 != seq) {
            return None; // released earlier
        }
        let (_, ev, payload) = events.pop_front().expect("checked non-empty");
        self.bytes -= ev.size;
        if events.is_empty() {
            self.held.remove(&id);
        }
        self.count -= 1;
        self.changed_seq(seq);
        Some((payload, id))
    }
}

impl<P> Orphans<P> {
    /// The sequence numbers of the events held or let go since the last call, ascending.
    pub fn take_changes(&mut self) -> Vec<u64> {
        let mut seqs = self.changes.as_mut().map(std::mem::take).unwrap_or_default();
        seqs.sort_unstable();
        seqs.dedup();
        seqs
    }

    /// The event held under `seq`, if still held: its expiry and payload.
    pub fn get(&self, seq: u64) -> Option<(Instant, &P)> {
        let i = self.queue.binary_search_by_key(&seq, |e| e.1).ok()?;
        let (expiry, _, id) = &self.queue[i];
        let (_, _, payload) = self.held.get(id)?.iter().find(|e| e.0 == seq)?;
        Some((*expiry, payload))
    }
}

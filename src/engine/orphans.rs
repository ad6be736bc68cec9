//! Events for tickets not created yet, held for `orphan_hold` of frontier time (SPEC §2).
//!
//! Multi-topic input can deliver a ticket's `reply.sent` before its `ticket.created`. Such
//! events wait here, bounded by `max_orphans`, until the creation arrives (then they are
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
}

impl<P> Default for Orphans<P> {
    fn default() -> Self {
        Orphans {
            held: HashMap::new(),
            queue: VecDeque::new(),
            next_seq: 0,
            count: 0,
        }
    }
}

impl<P> Orphans<P> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn hold(&mut self, ev: Event, payload: P, frontier: Instant, settings: &EngineSettings) -> Applied {
        if self.count >= settings.max_orphans {
            return Applied::Rejected(Rejection::new(
                Reason::UnknownTicket,
                format!(
                    "unknown ticket {:?}; the orphan buffer is full ({} events)",
                    ev.ticket_id, settings.max_orphans
                ),
            ));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.count += 1;
        self.queue
            .push_back((frontier.saturating_add(settings.orphan_hold), seq, ev.ticket_id.clone()));
        self.held
            .entry(ev.ticket_id.clone())
            .or_default()
            .push_back((seq, ev, payload));
        Applied::Held
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
        let (_, _, payload) = events.pop_front().expect("checked non-empty");
        if events.is_empty() {
            self.held.remove(&id);
        }
        self.count -= 1;
        Some((payload, id))
    }
}

//! Per-ticket state and the table that holds it.
//!
//! Memory is the constraint here (millions of open tickets, budget 200 bytes each including
//! the deadline index), so a ticket is one fixed-size record of two cache lines in a slab
//! `Vec`, found through a table of 8-byte slot entries ([`IdTable`]) instead of a map that
//! repeats the key and pads every record to a power-of-two bucket count. Ticket ids up to 24
//! bytes live inline. Groups and tiers are interned ids; tags are the bits policies look at.

use compact_str::CompactString;
use thin_vec::ThinVec;
use xxhash_rust::xxh3::xxh3_64;

use super::table::{IdTable, prefetch};
use crate::event::{Channel, Kind, Priority, Status};
use crate::policy::{Attrs, Clock};
use crate::time::Instant;

/// Marks "no instant" for [`Ticket::due`] and [`Ticket::paused_since`].
pub const NEVER: Instant = Instant::MAX;

/// One run of a clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cycle {
    pub start: Instant,
    /// From 1 per ticket and clock; 0 = this clock never ran.
    pub number: u16,
    /// Warnings emitted, by fraction bit ([`crate::policy::Rules::fractions`]).
    pub warned: u16,
    /// Escalation levels emitted, bit `k` = level `k + 1`.
    pub escalated: u8,
    pub flags: u8,
    /// The alerts of the policy's schedule before this position that were not emitted are
    /// skipped: the last re-evaluation placed them below the frontier.
    pub skipped: u8,
}

impl Cycle {
    pub const RUNNING: u8 = 1;
    /// The cycle ended with a fulfilment (otherwise, if not running, it was cancelled).
    pub const FULFILLED: u8 = 2;
    /// Its breach was emitted.
    pub const BREACHED: u8 = 4;
    pub const RETRACTED: u8 = 8;
    /// On the response slot: this is a `next_response` cycle, not `first_response`.
    pub const NEXT: u8 = 16;

    pub fn started(start: Instant, number: u16, flags: u8) -> Cycle {
        Cycle {
            start,
            number,
            flags: flags | Cycle::RUNNING,
            ..Cycle::default()
        }
    }

    pub fn is(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn running(&self) -> bool {
        self.is(Cycle::RUNNING)
    }

    /// A breach that was emitted and stands.
    pub fn breach_stands(&self) -> bool {
        self.is(Cycle::BREACHED) && !self.is(Cycle::RETRACTED)
    }
}

/// Which of a ticket's two cycle slots: `first_response` and `next_response` never run at
/// the same time (the latter needs an agent reply, which ends the former), so they share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Response,
    Resolution,
}

impl Slot {
    pub const BOTH: [Slot; 2] = [Slot::Response, Slot::Resolution];
}

#[derive(Debug)]
pub struct Ticket {
    pub id: CompactString,
    /// The latest time applied to this ticket; later events never go back before it.
    pub applied_at: Instant,
    /// Its key in the deadline index, or `NEVER` (`i64::MAX`).
    pub due: Instant,
    /// Start of the open pause of the resolution cycle, or `NEVER` (`i64::MAX`).
    pub paused_since: Instant,
    /// Closed pauses of the current resolution cycle, in order.
    pub pauses: ThinVec<(Instant, Instant)>,
    pub tags: u64,
    pub group: u32,
    pub tier: u32,
    /// Fingerprints of the last event ids seen, newest at `seen_next - 1` (ring).
    pub seen: [u32; 4],
    pub response: Cycle,
    pub resolution: Cycle,
    pub priority: Priority,
    pub channel: Channel,
    pub kind: Kind,
    pub status: Status,
    /// Index of the ticket's policy, or `NO_POLICY`.
    pub policy: u16,
    pub agent_replied: bool,
    pub(super) seen_next: u8,
}

pub const NO_POLICY: u16 = u16::MAX;

impl Ticket {
    pub fn new(id: CompactString, at: Instant, attrs: Attrs, status: Status) -> Ticket {
        Ticket {
            id,
            applied_at: at,
            due: NEVER,
            paused_since: NEVER,
            pauses: ThinVec::new(),
            tags: attrs.tags,
            group: attrs.group,
            tier: attrs.tier,
            seen: [0; 4],
            response: Cycle::default(),
            resolution: Cycle::default(),
            priority: attrs.priority,
            channel: attrs.channel,
            kind: attrs.kind,
            status,
            policy: NO_POLICY,
            agent_replied: false,
            seen_next: 0,
        }
    }

    pub fn attrs(&self) -> Attrs {
        Attrs {
            priority: self.priority,
            channel: self.channel,
            kind: self.kind,
            group: self.group,
            tier: self.tier,
            tags: self.tags,
        }
    }

    pub fn set_attrs(&mut self, a: Attrs) {
        (self.priority, self.channel, self.kind) = (a.priority, a.channel, a.kind);
        (self.group, self.tier, self.tags) = (a.group, a.tier, a.tags);
    }

    pub fn policy(&self) -> Option<usize> {
        (self.policy != NO_POLICY).then_some(self.policy as usize)
    }

    pub fn cycle(&self, slot: Slot) -> &Cycle {
        match slot {
            Slot::Response => &self.response,
            Slot::Resolution => &self.resolution,
        }
    }

    pub fn cycle_mut(&mut self, slot: Slot) -> &mut Cycle {
        match slot {
            Slot::Response => &mut self.response,
            Slot::Resolution => &mut self.resolution,
        }
    }

    pub fn clock(&self, slot: Slot) -> Clock {
        match slot {
            Slot::Resolution => Clock::Resolution,
            Slot::Response if self.response.is(Cycle::NEXT) => Clock::NextResponse,
            Slot::Response => Clock::FirstResponse,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_since != NEVER
    }

    /// Is `event_id` among the last ones recorded (a duplicate)?
    pub fn has_seen(&self, event_id: &str) -> bool {
        self.seen.contains(&fingerprint(event_id))
    }

    /// Records the event id of an event applied to (or ignored by) this ticket.
    pub fn remember(&mut self, event_id: Option<&str>) {
        if let Some(id) = event_id {
            self.seen[self.seen_next as usize] = fingerprint(id);
            self.seen_next = (self.seen_next + 1) % self.seen.len() as u8;
        }
    }

    pub fn end_pause(&mut self, at: Instant) {
        if self.paused() {
            self.pauses.push((self.paused_since, at.max(self.paused_since)));
            self.paused_since = NEVER;
        }
    }
}

/// 32 bits of the id's hash, never 0 (so an empty ring slot cannot match).
fn fingerprint(event_id: &str) -> u32 {
    (xxh3_64(event_id.as_bytes()) >> 32) as u32 | 1
}

/// Tickets by id: a slab of records plus a table of slot numbers.
#[derive(Default)]
pub struct Tickets {
    slab: Vec<Ticket>,
    free: Vec<u32>,
    by_id: IdTable,
    /// What changed since the changes were last taken, once tracking is on.
    changes: Option<Changes>,
}

/// Tickets changed and forgotten since the changes were last taken: every record reached
/// through [`Tickets::get_mut`] counts as changed.
#[derive(Default)]
pub struct Changes {
    /// One bit per record slot: already in `slots`.
    marked: Vec<u64>,
    pub slots: Vec<u32>,
    /// Ids of the tickets removed, in order.
    pub forgotten: Vec<CompactString>,
}

impl Changes {
    fn mark(&mut self, slot: u32) {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if word >= self.marked.len() {
            self.marked.resize(word + 1, 0);
        }
        if self.marked[word] & bit == 0 {
            self.marked[word] |= bit;
            self.slots.push(slot);
        }
    }
}

fn hash(id: &str) -> u32 {
    xxh3_64(id.as_bytes()) as u32
}

impl Tickets {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn find(&self, id: &str) -> Option<u32> {
        self.by_id.find(hash(id), |s| self.slab[s as usize].id == id)
    }

    pub fn insert(&mut self, ticket: Ticket) -> u32 {
        let h = hash(&ticket.id);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = ticket;
                s
            }
            None => {
                self.slab.push(ticket);
                self.slab.len() as u32 - 1
            }
        };
        self.by_id.insert(h, slot);
        if let Some(c) = &mut self.changes {
            c.mark(slot);
        }
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        let t = &mut self.slab[slot as usize];
        self.by_id.remove(hash(&t.id), slot);
        // Release the heap parts now; the record itself is reused by the next insert.
        let id = std::mem::take(&mut t.id);
        t.pauses = ThinVec::new();
        t.due = NEVER;
        self.free.push(slot);
        if let Some(c) = &mut self.changes {
            c.forgotten.push(id);
        }
    }

    /// Starts recording which tickets change (for a changelog).
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(Changes::default);
    }

    /// Whether anything changed since the changes were last taken.
    pub fn changed(&self) -> bool {
        self.changes
            .as_ref()
            .is_some_and(|c| !c.slots.is_empty() || !c.forgotten.is_empty())
    }

    /// What changed since the last call (nothing unless tracking is on).
    pub fn take_changes(&mut self) -> Changes {
        let Some(c) = &mut self.changes else {
            return Changes::default();
        };
        let marked = std::mem::take(&mut c.marked);
        let taken = std::mem::replace(
            c,
            Changes {
                marked,
                ..Changes::default()
            },
        );
        c.marked.fill(0);
        taken
    }

    pub fn get(&self, slot: u32) -> &Ticket {
        &self.slab[slot as usize]
    }

    /// Number of record slots, free ones included.
    pub fn slots(&self) -> usize {
        self.slab.len()
    }

    /// The tickets in record slots `slots` (free records have an empty id).
    pub fn in_slots(&self, slots: std::ops::Range<usize>) -> impl Iterator<Item = &Ticket> {
        let end = slots.end.min(self.slab.len());
        self.slab[slots.start.min(end)..end].iter().filter(|t| !t.id.is_empty())
    }

    pub fn get_mut(&mut self, slot: u32) -> &mut Ticket {
        if let Some(c) = &mut self.changes {
            c.mark(slot);
        }
        &mut self.slab[slot as usize]
    }

    /// First stage of looking `id` up ahead of time: load its table line.
    pub fn prefetch_entry(&self, id: &str) {
        self.by_id.prefetch(hash(id));
    }

    /// Starts loading the record in `slot` (both of its cache lines).
    pub fn prefetch_slot(&self, slot: u32) {
        if let Some(t) = self.slab.get(slot as usize) {
            let record = t as *const Ticket;
            prefetch(record);
            prefetch(record.wrapping_byte_add(64));
        }
    }

    /// Second stage, once the table line is likely cached: load the ticket's record.
    pub fn prefetch_record(&self, id: &str) {
        if let Some(slot) = self.by_id.find(hash(id), |_| true) {
            self.prefetch_slot(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn low_email() -> Attrs {
        Attrs {
            priority: Priority::Low,
            channel: Channel::Email,
            kind: Kind::Request,
            group: 0,
            tier: 0,
            tags: 0,
        }
    }

    #[test]
    fn ticket_record_stays_compact() {
        assert!(size_of::<Ticket>() <= 128, "Ticket is {} bytes", size_of::<Ticket>());
    }

    #[test]
    fn repeated_event_ids_are_recognised_among_the_last_four() {
        let attrs = low_email();
        let mut t = Ticket::new("T".into(), 0, attrs, Status::New);
        for id in ["a", "b", "c", "d"] {
            assert!(!t.has_seen(id));
            t.remember(Some(id));
        }
        assert!(t.has_seen("a"));
        t.remember(Some("e"));
        assert!(!t.has_seen("a"), "only the last four are kept");
    }

    #[test]
    fn slots_are_reused_and_lookups_follow() {
        let attrs = low_email();
        let mut tickets = Tickets::default();
        let a = tickets.insert(Ticket::new("a".into(), 0, attrs, Status::New));
        let b = tickets.insert(Ticket::new("b".into(), 0, attrs, Status::New));
        tickets.remove(a);
        assert_eq!(tickets.find("a"), None);
        let c = tickets.insert(Ticket::new("c".into(), 0, attrs, Status::New));
        assert_eq!((c, tickets.find("c"), tickets.find("b")), (a, Some(a), Some(b)));
        assert_eq!(tickets.len(), 2);
    }
}

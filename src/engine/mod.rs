//! The SLA clock engine: tickets, cycles, the frontier and the deadline index (SPEC §3–§6).
//!
//! One `Engine` serves one partition (in replay: the single input stream). It is pure and
//! deterministic: no wall clock, no I/O, no randomness; time comes only from event timestamps
//! and from [`Engine::advance`]. For every event: advance the frontier, emit the alerts now
//! due in (instant, ticket id, clock, cycle, kind, level) order, then apply the event and emit
//! what it causes.
//!
//! Invariants:
//! - every ticket with a pending alert (or a retention expiry) has `Ticket::due` set and an
//!   entry `(due, slot)` in `index`; entries that no longer match their ticket are stale;
//! - after the due step of an event, no pending alert lies below the frontier except those of
//!   cycles that the event itself starts late (they fire at the next due step);
//! - a cycle's end first emits its alerts due before the end, so a fulfilment's outcome never
//!   depends on how far the frontier happened to be (see docs/SEMANTICS.md).

mod alerts;
mod index;
mod orphans;
mod output;
mod state;
mod table;
mod ticket;
mod timeline;
mod view;

pub use output::{Detail, Outcome, SlaEvent, SlaKind};
pub use state::{Changed, Held, Progress, SavedCycle, TicketState};
pub use ticket::{Cycle, Slot, Ticket};
pub use view::{AT_RISK, CycleState, CycleView, Summary};

use std::collections::HashMap;
use std::sync::Arc;

use compact_str::CompactString;
use thin_vec::ThinVec;

use crate::event::{Author, Body, Created, Event, Reason, Rejection, Status, Update};
use crate::policy::{Attrs, Rules};
use crate::time::Instant;
use alerts::Report;
use index::DueIndex;
use orphans::Orphans;
use ticket::{NEVER, NO_POLICY, Tickets};
use timeline::Alert;

/// What became of one input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// A repeated `event_id` on the ticket: ignored.
    Duplicate,
    /// The ticket is closed: ignored.
    Ignored,
    /// No such ticket yet: held for up to `orphan_hold`.
    Held,
    /// Cannot be applied: dead-letter it.
    Rejected(Rejection),
}

/// A record to dead-letter, with what the caller attached to it (see [`Engine::handle`]).
#[derive(Debug)]
pub struct DeadLetter<P> {
    pub payload: P,
    pub rejection: Rejection,
}

/// What the engine emits; the caller drains both after each call.
#[derive(Debug)]
pub struct Outbox<P> {
    pub sla: Vec<SlaEvent>,
    pub dead: Vec<DeadLetter<P>>,
}

impl<P> Default for Outbox<P> {
    fn default() -> Self {
        Outbox {
            sla: Vec::new(),
            dead: Vec::new(),
        }
    }
}

/// Counters for the summary line and metrics.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub applied: u64,
    pub duplicates: u64,
    pub ignored: u64,
    pub held: u64,
    pub unmatched: u64,
    pub evicted: u64,
    pub sla: [u64; 6],
}

/// Interned strings (groups, customer tiers) seeded with the ones policies name, so that
/// ids `1..=n` agree with [`Rules`]. Id 0 is "none".
#[derive(Default)]
struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

/// Distinct values one interner takes before further ones are rejected as `capacity`.
const MAX_INTERNED: usize = 1 << 20;

impl Interner {
    fn seeded(names: &[Arc<str>]) -> Interner {
        let mut i = Interner::default();
        for n in names {
            i.intern(n);
        }
        i
    }

    fn intern(&mut self, s: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(s) {
            return Some(id);
        }
        if self.names.len() >= MAX_INTERNED {
            return None;
        }
        let name: Arc<str> = s.into();
        self.names.push(name.clone());
        let id = self.names.len() as u32;
        self.ids.insert(name, id);
        Some(id)
    }

    fn name(&self, id: u32) -> Option<&Arc<str>> {
        id.checked_sub(1).map(|i| &self.names[i as usize])
    }
}

pub struct Engine<P> {
    rules: Arc<Rules>,
    frontier: Instant,
    max_seen: Instant,
    tickets: Tickets,
    index: DueIndex,
    /// Tickets with a due instant (`Ticket::due != NEVER`): the live entries of `index`.
    scheduled: usize,
    orphans: Orphans<P>,
    groups: Interner,
    tiers: Interner,
    /// The `tags_any` tags by bit.
    tag_names: Vec<Arc<str>>,
    /// Reused buffer for the tickets due at one instant.
    batch: Vec<u32>,
    pub stats: Stats,
}

impl<P> Engine<P> {
    pub fn new(rules: Arc<Rules>) -> Self {
        let mut tag_names: Vec<(u32, Arc<str>)> = rules.tag_bits.iter().map(|(t, &b)| (b, t.as_str().into())).collect();
        tag_names.sort_unstable();
        Engine {
            tag_names: tag_names.into_iter().map(|(_, t)| t).collect(),
            groups: Interner::seeded(&rules.groups),
            tiers: Interner::seeded(&rules.tiers),
            rules,
            frontier: Instant::MIN,
            max_seen: Instant::MIN,
            tickets: Tickets::default(),
            index: DueIndex::default(),
            scheduled: 0,
            orphans: Orphans::default(),
            batch: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The frontier F (`Instant::MIN` before the first event).
    pub fn frontier(&self) -> Instant {
        self.frontier
    }

    pub fn open_tickets(&self) -> usize {
        self.tickets.len()
    }

    pub fn held_events(&self) -> usize {
        self.orphans.len()
    }

    pub fn ticket(&self, id: &str) -> Option<&Ticket> {
        self.tickets.find(id).map(|s| self.tickets.get(s))
    }

    /// Lookahead, first stage: an event for `ticket_id` follows in about two events; start
    /// loading its table entry. With [`Engine::prefetch_ticket`] one event ahead, the cache
    /// misses of consecutive events overlap instead of adding up (docs/PERFORMANCE.md).
    pub fn prefetch_lookup(&self, ticket_id: &str) {
        self.tickets.prefetch_entry(ticket_id);
    }

    /// Lookahead, second stage: an event for `ticket_id` is next; start loading its record.
    pub fn prefetch_ticket(&self, ticket_id: &str) {
        self.tickets.prefetch_record(ticket_id);
    }

    /// Moves the frontier to `f` if that is later, then emits what is due and expires held
    /// events. Live mode calls this on idle partitions; replay calls it at end of input.
    pub fn advance(&mut self, f: Instant, out: &mut Outbox<P>) {
        self.frontier = self.frontier.max(f);
        self.emit_due(out);
        for (payload, id) in self.orphans.expire(self.frontier) {
            out.dead.push(DeadLetter {
                payload,
                rejection: Rejection::new(
                    Reason::UnknownTicket,
                    format!("no ticket.created for {id:?} within orphan_hold"),
                ),
            });
        }
    }

    /// End of input: the frontier becomes `until` (or the largest `occurred_at` seen), due
    /// alerts are emitted, and events still held are dead-lettered — nothing can create
    /// their tickets any more.
    pub fn finish(&mut self, until: Option<Instant>, out: &mut Outbox<P>) {
        self.advance(until.unwrap_or(self.max_seen), out);
        for (payload, id) in self.orphans.drain() {
            out.dead.push(DeadLetter {
                payload,
                rejection: Rejection::new(
                    Reason::UnknownTicket,
                    format!("no ticket.created for {id:?} before end of input"),
                ),
            });
        }
    }

    /// Applies one valid event. `hold` produces what to keep with the event if it has to be
    /// held as an orphan (called only then).
    pub fn handle(&mut self, ev: &Event, hold: impl FnOnce() -> P, out: &mut Outbox<P>) -> Applied {
        self.advance(ev.occurred_at.saturating_sub(self.rules.engine.allowed_lateness), out);
        self.apply(ev, hold, out)
    }

    /// Applies one valid event without moving the frontier: the second half of
    /// [`Engine::handle`], for the live shard, which advances the frontier itself (after a
    /// restart it drops the alerts delivered before).
    pub fn apply(&mut self, ev: &Event, hold: impl FnOnce() -> P, out: &mut Outbox<P>) -> Applied {
        self.max_seen = self.max_seen.max(ev.occurred_at);
        let outcome = match self.tickets.find(&ev.ticket_id) {
            Some(slot) => self.apply_known(slot, ev, out),
            None => match &ev.body {
                Body::Created(_) => self.create(ev, out),
                _ => self.orphans.hold(ev.clone(), hold(), self.frontier, &self.rules.engine),
            },
        };
        self.count(&outcome);
        outcome
    }

    fn count(&mut self, outcome: &Applied) {
        let counter = match outcome {
            Applied::Applied => &mut self.stats.applied,
            Applied::Duplicate => &mut self.stats.duplicates,
            Applied::Ignored => &mut self.stats.ignored,
            Applied::Held => &mut self.stats.held,
            Applied::Rejected(_) => return,
        };
        *counter += 1;
    }

    fn create(&mut self, ev: &Event, out: &mut Outbox<P>) -> Applied {
        let Body::Created(c) = &ev.body else {
            unreachable!("create() takes ticket.created")
        };
        if self.tickets.len() >= self.rules.engine.max_tickets {
            let max = self.rules.engine.max_tickets;
            return Applied::Rejected(Rejection::new(
                Reason::Capacity,
                format!("open-ticket limit of {max} reached"),
            ));
        }
        let attrs = match self.created_attrs(c) {
            Ok(a) => a,
            Err(r) => return Applied::Rejected(r),
        };
        let at = ev.occurred_at;
        let mut ticket = Ticket::new(ev.ticket_id.clone(), at, attrs, Status::New);
        ticket.remember(ev.event_id.as_deref());
        ticket.policy = self.select(&attrs);
        if ticket.policy == NO_POLICY {
            self.stats.unmatched += 1;
        }
        if c.opened_by_agent {
            ticket.agent_replied = true;
        } else {
            ticket.response = Cycle::started(at, 1, 0);
        }
        ticket.resolution = Cycle::started(at, 1, 0);
        if self.rules.pause_of(ticket.policy()) & status_bit(Status::New) != 0 {
            ticket.paused_since = at;
        }
        let slot = self.tickets.insert(ticket);
        if c.status != Status::New {
            let late = at < self.frontier;
            self.set_status(slot, c.status, at, late, out);
        }
        self.reschedule(slot);
        for (held, payload) in self.orphans.release(&ev.ticket_id) {
            let outcome = self.apply_known(slot, &held, out);
            self.count(&outcome);
            if let Applied::Rejected(rejection) = outcome {
                out.dead.push(DeadLetter { payload, rejection });
            }
        }
        Applied::Applied
    }

    fn created_attrs(&mut self, c: &Created) -> Result<Attrs, Rejection> {
        Ok(Attrs {
            priority: c.priority,
            channel: c.channel,
            kind: c.kind,
            group: self.intern_group(c.group.as_deref())?,
            tier: self.intern_tier(c.customer_tier.as_deref())?,
            tags: self.rules.tag_mask(c.tags.iter().map(CompactString::as_str)),
        })
    }

    fn intern_group(&mut self, g: Option<&str>) -> Result<u32, Rejection> {
        g.map_or(Ok(0), |g| self.groups.intern(g).ok_or_else(|| too_many("groups")))
    }

    fn intern_tier(&mut self, t: Option<&str>) -> Result<u32, Rejection> {
        t.map_or(Ok(0), |t| {
            self.tiers.intern(t).ok_or_else(|| too_many("customer tiers"))
        })
    }

    fn select(&self, attrs: &Attrs) -> u16 {
        self.rules.select(attrs).map_or(NO_POLICY, |p| p as u16)
    }

    fn apply_known(&mut self, slot: u32, ev: &Event, out: &mut Outbox<P>) -> Applied {
        let t = self.tickets.get_mut(slot);
        if ev.event_id.as_deref().is_some_and(|id| t.has_seen(id)) {
            return Applied::Duplicate;
        }
        if matches!(ev.body, Body::Created(_)) {
            let detail = format!("ticket {:?} already exists", ev.ticket_id);
            return Applied::Rejected(Rejection::new(Reason::DuplicateTicket, detail));
        }
        // A rating changes no clock and counts whatever the status, closed included (SPEC §2).
        if let Body::Rated { .. } = ev.body {
            t.remember(ev.event_id.as_deref());
            return Applied::Applied;
        }
        if t.status == Status::Closed {
            t.remember(ev.event_id.as_deref());
            return Applied::Ignored;
        }
        let late = ev.occurred_at < self.frontier;
        let at = ev.occurred_at;
        let now = at.max(t.applied_at);
        // Interning can fail (capacity); do it before anything changes.
        let attrs = match &ev.body {
            Body::Updated(u) => match self.updated_attrs(slot, u) {
                Ok(a) => Some(a),
                Err(r) => return Applied::Rejected(r),
            },
            _ => None,
        };
        let t = self.tickets.get_mut(slot);
        t.remember(ev.event_id.as_deref());
        t.applied_at = now;
        match &ev.body {
            Body::Created(_) | Body::Rated { .. } => unreachable!("handled above"),
            Body::Updated(_) => self.update(slot, attrs.expect("computed above"), now, out),
            Body::StatusChanged(s) => self.set_status(slot, *s, at, late, out),
            // Exactly a status change to solved (which fulfils the resolution clock).
            Body::ComplaintResolved => self.set_status(slot, Status::Solved, at, late, out),
            Body::ReplySent { public: false, .. } => {}
            Body::ReplySent {
                author: Author::Agent,
                public: true,
                ..
            } => {
                let end = self.end_time(slot, Slot::Response, at, late);
                self.flush_before(slot, [end, Instant::MIN], out);
                self.end_cycle(slot, Slot::Response, End::Fulfil, at, late, out);
                self.tickets.get_mut(slot).agent_replied = true;
            }
            Body::ReplySent {
                author: Author::Customer,
                public: true,
                ..
            } => {
                if self.tickets.get(slot).status == Status::Solved {
                    self.set_status(slot, Status::Open, at, late, out);
                }
                let t = self.tickets.get_mut(slot);
                if t.agent_replied && !t.response.running() {
                    let number = if t.response.is(Cycle::NEXT) {
                        t.response.number.saturating_add(1)
                    } else {
                        1
                    };
                    t.response = Cycle::started(now, number, Cycle::NEXT);
                }
            }
        }
        self.reschedule(slot);
        Applied::Applied
    }

    /// The ticket's attributes after `u`.
    fn updated_attrs(&mut self, slot: u32, u: &Update) -> Result<Attrs, Rejection> {
        let mut a = self.tickets.get(slot).attrs();
        a.priority = u.priority.unwrap_or(a.priority);
        a.channel = u.channel.unwrap_or(a.channel);
        a.kind = u.kind.unwrap_or(a.kind);
        if let Some(g) = &u.group {
            a.group = self.intern_group(g.as_deref())?;
        }
        if let Some(t) = &u.customer_tier {
            a.tier = self.intern_tier(t.as_deref())?;
        }
        if let Some(tags) = &u.tags {
            a.tags = self.rules.tag_mask(tags.iter().map(CompactString::as_str));
        }
        Ok(a)
    }

    /// Applies new attributes and re-evaluates the running cycles against the policy chosen
    /// again (SPEC §4).
    fn update(&mut self, slot: u32, a: Attrs, now: Instant, out: &mut Outbox<P>) {
        // Alerts due in the ticket's own time before the change fire under the old policy
        // whatever the frontier, so the outcome never depends on other tickets' events.
        self.flush_before(slot, [now, now], out);
        let policy = self.select(&a);
        let t = self.tickets.get_mut(slot);
        t.set_attrs(a);
        t.policy = policy;
        self.reapply(slot, now, out);
    }

    /// After the ticket's policy may have changed at `now`: a change of pause_statuses applies
    /// from now on (recorded pauses stay), and the running cycles are re-evaluated.
    fn reapply(&mut self, slot: u32, now: Instant, out: &mut Outbox<P>) {
        let t = self.tickets.get_mut(slot);
        let pauses_now = self.rules.pause_of(t.policy()) & status_bit(t.status) != 0;
        if t.resolution.running() && t.paused() != pauses_now {
            if pauses_now {
                t.paused_since = now;
            } else {
                t.end_pause(now);
            }
        }
        for which in Slot::BOTH {
            self.reevaluate(slot, which, out);
        }
    }

    fn set_status(&mut self, slot: u32, status: Status, at: Instant, late: bool, out: &mut Outbox<P>) {
        let t = self.tickets.get(slot);
        let old = t.status;
        if status == old {
            return;
        }
        let now = t.applied_at;
        match status {
            Status::Solved | Status::Closed => {
                let ends = Slot::BOTH.map(|which| self.end_time(slot, which, at, late));
                self.flush_before(slot, ends, out);
                self.end_cycle(slot, Slot::Response, End::Cancel, at, late, out);
                self.end_cycle(slot, Slot::Resolution, End::Fulfil, at, late, out);
            }
            _ if old == Status::Solved => {
                // A reopen: a new resolution cycle from now.
                let pauses = self.rules.pause_of(t.policy()) & status_bit(status) != 0;
                let t = self.tickets.get_mut(slot);
                t.resolution = Cycle::started(now, t.resolution.number.saturating_add(1), 0);
                t.pauses = ThinVec::new();
                t.paused_since = if pauses { now } else { NEVER };
            }
            _ => {
                let pauses = self.rules.pause_of(t.policy()) & status_bit(status) != 0;
                let t = self.tickets.get_mut(slot);
                if t.resolution.running() && pauses && !t.paused() {
                    t.paused_since = now;
                } else if !pauses {
                    t.end_pause(now);
                }
            }
        }
        self.tickets.get_mut(slot).status = status;
    }

    /// When an event occurring at `at` ends the cycle in `which`: a late event at its own
    /// time, any other at the ticket's time (SPEC §6), never before the cycle started.
    /// `Instant::MIN` if the cycle is not running.
    fn end_time(&self, slot: u32, which: Slot, at: Instant, late: bool) -> Instant {
        let t = self.tickets.get(slot);
        let c = t.cycle(which);
        if !c.running() {
            return Instant::MIN;
        }
        if late { at } else { t.applied_at }.max(c.start)
    }

    /// Ends the running cycle in `which` (see [`Engine::end_time`]): fulfils the resolution
    /// and any cycle an event answers, cancels response cycles on solve. The caller has
    /// flushed the alerts due before the end.
    fn end_cycle(&mut self, slot: u32, which: Slot, end: End, at: Instant, late: bool, out: &mut Outbox<P>) {
        if !self.tickets.get(slot).cycle(which).running() {
            return;
        }
        let end_at = self.end_time(slot, which, at, late);
        let target = self.target(slot, which);
        let c = self.tickets.get_mut(slot).cycle_mut(which);
        c.flags &= !Cycle::RUNNING;
        let Some((policy, target)) = target else {
            return;
        };
        if end == End::Cancel {
            self.emit(slot, which, Report::Cancelled, end_at, out);
            return;
        }
        c.flags |= Cycle::FULFILLED;
        let mut outcome = if c.breach_stands() {
            Outcome::Breached
        } else {
            Outcome::Met
        };
        if outcome == Outcome::Breached && late {
            let deadline = self.instant_of(slot, which, &self.rules.policies[policy], target, Alert::Breach);
            if deadline.is_some_and(|d| end_at <= d) {
                self.tickets.get_mut(slot).cycle_mut(which).flags |= Cycle::RETRACTED;
                self.emit(slot, which, Report::Retracted, end_at, out);
                outcome = Outcome::Met;
            }
        }
        self.emit(slot, which, Report::Fulfilled(outcome), end_at, out);
    }
}

/// How a cycle ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Fulfil,
    Cancel,
}

fn status_bit(s: Status) -> u8 {
    1 << s as u8
}

fn too_many(what: &str) -> Rejection {
    Rejection::new(
        Reason::Capacity,
        format!("too many distinct {what} (limit {MAX_INTERNED})"),
    )
}

#[cfg(test)]
mod tests;

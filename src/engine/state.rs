//! The engine's state in a form that outlives the process and the configuration: what the
//! changelog stores (`crate::live::changelog`) and a restore reads back.
//!
//! A [`TicketState`] names what the configuration numbers (group, customer tier, the tags
//! policies look at, the warning fractions done), so a restore under a changed configuration
//! maps it onto the new numbering and re-evaluates the running cycles (SPEC §7). Under the same
//! configuration a restore gives back the engine that was saved: the same tickets, due instants,
//! held events and frontier, hence the same outputs from then on.
//!
//! Changes are tracked once [`Engine::track_changes`] is called: every ticket touched and every
//! held event added or removed since the last [`Engine::take_changes`].

use std::sync::Arc;

use compact_str::CompactString;
use thin_vec::ThinVec;

use super::alerts::Report;
use super::ticket::{Cycle, NEVER, Slot, Ticket};
use super::timeline::{Alert, schedule};
use super::{Engine, Outbox, SlaEvent};
use crate::event::{Channel, Event, Kind, Priority, Rejection, Status};
use crate::policy::Attrs;
use crate::time::Instant;

/// One ticket, configuration-independent.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketState {
    pub id: CompactString,
    pub applied_at: Instant,
    /// The next instant something is due (`Instant::MAX`: never).
    pub due: Instant,
    /// Start of the open pause of the resolution cycle (`Instant::MAX`: none).
    pub paused_since: Instant,
    pub pauses: Vec<(Instant, Instant)>,
    pub priority: Priority,
    pub channel: Channel,
    pub kind: Kind,
    pub status: Status,
    pub group: Option<Arc<str>>,
    pub tier: Option<Arc<str>>,
    /// The ticket's tags that policies looked at, by name.
    pub tags: Vec<Arc<str>>,
    /// Event-id fingerprints, the ring of the duplicate window, and its next position.
    pub seen: [u32; 4],
    pub seen_next: u8,
    pub agent_replied: bool,
    pub response: SavedCycle,
    pub resolution: SavedCycle,
}

/// One cycle, configuration-independent but for `skipped`.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCycle {
    pub start: Instant,
    pub number: u16,
    /// [`Cycle`] flags.
    pub flags: u8,
    /// Escalation levels emitted, bit `k` = level `k + 1`.
    pub escalated: u8,
    /// The warning fractions emitted, ascending.
    pub warned: Vec<f64>,
    /// [`Cycle::skipped`], a position in the schedule of the policy the ticket had under the
    /// saved configuration: a changed configuration re-evaluates, which sets it anew.
    pub skipped: u8,
}

/// Partition-level state besides the tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub frontier: Instant,
    pub max_seen: Instant,
    /// Sequence number of the next held event.
    pub next_held: u64,
}

/// An event held for a ticket not created yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Held<P> {
    /// When its hold ends (frontier time).
    pub expiry: Instant,
    pub event: Event,
    pub payload: P,
}

/// What changed since the changes were last taken: look each one up with
/// [`Engine::saved_ticket`] and [`Engine::saved_held`].
#[derive(Debug, Default)]
pub struct Changed {
    /// Tickets forgotten, in order; a ticket created again after its id also has a slot.
    pub forgotten: Vec<CompactString>,
    /// Record slots of the tickets changed.
    pub slots: Vec<u32>,
    /// Sequence numbers of the events held or let go, ascending.
    pub held: Vec<u64>,
}

impl<P> Engine<P> {
    /// Starts recording changes (live mode with a changelog).
    pub fn track_changes(&mut self) {
        self.tickets.track_changes();
        self.orphans.track_changes();
    }

    /// Whether anything changed since the changes were last taken.
    pub fn has_changes(&self) -> bool {
        self.tickets.changed() || self.orphans.changed()
    }

    /// What changed since the last call.
    pub fn take_changes(&mut self) -> Changed {
        let changes = self.tickets.take_changes();
        Changed {
            forgotten: changes.forgotten,
            slots: changes.slots,
            held: self.orphans.take_changes(),
        }
    }

    /// The state of the ticket in record slot `slot`, if one is there.
    pub fn saved_ticket(&self, slot: u32) -> Option<TicketState> {
        let t = self.tickets.get(slot);
        (!t.id.is_empty()).then(|| self.export(t))
    }

    /// The event held under `seq`, if still held: when its hold ends, and its payload.
    pub fn saved_held(&self, seq: u64) -> Option<(Instant, &P)> {
        self.orphans.get(seq)
    }

    pub fn progress(&self) -> Progress {
        Progress {
            frontier: self.frontier,
            max_seen: self.max_seen,
            next_held: self.orphans.next_seq(),
        }
    }

    fn export(&self, t: &Ticket) -> TicketState {
        let tags = self
            .tag_names
            .iter()
            .enumerate()
            .filter(|(bit, _)| t.tags & (1 << bit) != 0)
            .map(|(_, name)| name.clone())
            .collect();
        let cycle = |c: &Cycle| SavedCycle {
            start: c.start,
            number: c.number,
            flags: c.flags,
            escalated: c.escalated,
            skipped: c.skipped,
            warned: {
                let mut w: Vec<f64> = (self.rules.fractions.iter().enumerate())
                    .filter(|(bit, _)| c.warned & (1 << bit) != 0)
                    .map(|(_, &f)| f)
                    .collect();
                w.sort_by(f64::total_cmp);
                w
            },
        };
        TicketState {
            id: t.id.clone(),
            applied_at: t.applied_at,
            due: t.due,
            paused_since: t.paused_since,
            pauses: t.pauses.to_vec(),
            priority: t.priority,
            channel: t.channel,
            kind: t.kind,
            status: t.status,
            group: self.groups.name(t.group).cloned(),
            tier: self.tiers.name(t.tier).cloned(),
            tags,
            seen: t.seen,
            seen_next: t.seen_next,
            agent_replied: t.agent_replied,
            response: cycle(&t.response),
            resolution: cycle(&t.resolution),
        }
    }

    /// Restores (or replaces) one ticket. Its deadline index entry is made by
    /// [`Engine::restored`], once every ticket is in.
    pub fn restore_ticket(&mut self, s: &TicketState) -> Result<(), String> {
        let limit = |e: Rejection| e.detail;
        let attrs = Attrs {
            priority: s.priority,
            channel: s.channel,
            kind: s.kind,
            group: self.intern_group(s.group.as_deref()).map_err(limit)?,
            tier: self.intern_tier(s.tier.as_deref()).map_err(limit)?,
            tags: self.rules.tag_mask(s.tags.iter().map(|t| &**t)),
        };
        let fractions = &self.rules.fractions;
        let cycle = |c: &SavedCycle| Cycle {
            start: c.start,
            number: c.number,
            flags: c.flags,
            escalated: c.escalated,
            skipped: c.skipped,
            warned: (c.warned.iter())
                .filter_map(|f| fractions.iter().position(|x| x == f))
                .fold(0, |bits, bit| bits | 1 << bit),
        };
        let mut t = Ticket::new(s.id.clone(), s.applied_at, attrs, s.status);
        t.due = s.due;
        t.paused_since = s.paused_since;
        t.pauses = ThinVec::from(s.pauses.as_slice());
        t.seen = s.seen;
        t.seen_next = s.seen_next % 4;
        t.agent_replied = s.agent_replied;
        t.response = cycle(&s.response);
        t.resolution = cycle(&s.resolution);
        t.policy = self.select(&attrs);
        match self.tickets.find(&s.id) {
            Some(slot) => *self.tickets.get_mut(slot) = t,
            None => {
                if self.tickets.len() >= self.rules.engine.max_tickets {
                    return Err(format!(
                        "more than engine.max_tickets ({})",
                        self.rules.engine.max_tickets
                    ));
                }
                self.tickets.insert(t);
            }
        }
        Ok(())
    }

    /// Removes a restored ticket again (its changelog tombstone followed).
    pub fn forget_restored(&mut self, id: &str) {
        if let Some(slot) = self.tickets.find(id) {
            self.tickets.remove(slot);
        }
    }

    /// Restores a held event under its sequence number (ascending).
    pub fn restore_held(&mut self, seq: u64, held: Held<P>) {
        self.orphans.restore(seq, held.expiry, held.event, held.payload);
    }

    /// Ends a restore: the frontier and counters come back, every ticket is indexed by its due
    /// instant, and the changes made by the restore itself are dropped. Under a changed
    /// configuration (`reevaluate`), each ticket's policy is chosen again, a change of pause
    /// statuses applies from the frontier on, and the running cycles are re-evaluated as after
    /// an attribute change (SPEC §4, §7): their outputs go to `out`, and every ticket counts
    /// as changed.
    pub fn restored(&mut self, p: Progress, reevaluate: bool, out: &mut Outbox<P>) {
        self.frontier = p.frontier;
        self.max_seen = p.max_seen;
        self.orphans.set_next_seq(p.next_held);
        self.scheduled = 0;
        for slot in 0..self.tickets.slots() as u32 {
            let t = self.tickets.get(slot);
            if t.id.is_empty() {
                continue;
            }
            if reevaluate {
                self.reapply_rules(slot, out);
            } else if t.due != NEVER {
                let due = t.due;
                self.tickets.get_mut(slot).due = NEVER;
                self.set_due(slot, due);
            }
        }
        if !reevaluate {
            self.tickets.take_changes();
            self.orphans.take_changes();
        }
    }

    /// A restored ticket under new rules: as [`Engine::update`] does for new attributes.
    fn reapply_rules(&mut self, slot: u32, out: &mut Outbox<P>) {
        let now = self.frontier.max(self.tickets.get(slot).applied_at);
        self.tickets.get_mut(slot).due = NEVER;
        self.reapply(slot, now, out);
        self.reschedule(slot);
    }

    /// The alerts a restored engine holds as active, for the alert outputs: of each running
    /// cycle, the latest warning emitted, its standing breach and its highest escalation,
    /// as the SLA events that raised them.
    pub fn active_alerts(&self) -> Vec<SlaEvent> {
        let mut events = Vec::new();
        for slot in 0..self.tickets.slots() as u32 {
            let t = self.tickets.get(slot);
            if t.id.is_empty() {
                continue;
            }
            for which in Slot::BOTH {
                let c = t.cycle(which);
                let Some((p, target)) = self.target(slot, which).filter(|_| c.running()) else {
                    continue;
                };
                let policy = &self.rules.policies[p];
                let emitted: Vec<_> = schedule(policy).filter(|a| a.is_emitted(c)).collect();
                let latest_warning = emitted.iter().rfind(|a| matches!(a, Alert::Warning(_)));
                let breach = emitted.iter().find(|a| matches!(a, Alert::Breach));
                let escalation = emitted.iter().rfind(|a| matches!(a, Alert::Escalation(_)));
                for &alert in [latest_warning, breach.filter(|_| c.breach_stands()), escalation]
                    .into_iter()
                    .flatten()
                {
                    if let Some(at) = self.instant_of(slot, which, policy, target, alert) {
                        events.extend(self.sla_event(slot, which, Report::Alert(alert), at));
                    }
                }
            }
        }
        events
    }
}

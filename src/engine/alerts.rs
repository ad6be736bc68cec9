//! The deadline side of the engine: when each ticket is next due, emitting the alerts the
//! frontier has passed in contract order, re-evaluation after a policy change, and the SLA
//! events themselves.

use super::ticket::{NEVER, Slot, Ticket};
use super::timeline::{Alert, Timeline, next_alert, schedule};
use super::{Detail, Engine, Outbox, Outcome, SlaEvent, SlaKind};
use crate::event::Status;
use crate::policy::Policy;
use crate::time::Instant;

/// What an SLA event reports.
#[derive(Debug, Clone, Copy)]
pub(super) enum Report {
    Alert(Alert),
    Cancelled,
    Retracted,
    Fulfilled(Outcome),
}

impl<P> Engine<P> {
    /// Recomputed alerts below the frontier: a breach not yet emitted is emitted at once
    /// (at the recomputed deadline); warnings and escalations not emitted are skipped until
    /// the next re-evaluation, which makes them due again if it puts them above the frontier.
    pub(super) fn reevaluate(&mut self, slot: u32, which: Slot, out: &mut Outbox<P>) {
        let rules = self.rules.clone();
        let Some((policy, target)) = self.target(slot, which) else {
            return;
        };
        if !self.tickets.get(slot).cycle(which).running() {
            return;
        }
        let policy = &rules.policies[policy];
        let mut skipped = 0;
        for (i, alert) in schedule(policy).enumerate() {
            if alert.is_emitted(self.tickets.get(slot).cycle(which)) {
                continue;
            }
            match self.instant_of(slot, which, policy, target, alert) {
                Some(at) if at < self.frontier => {
                    if alert == Alert::Breach {
                        self.raise(slot, which, alert, at, out);
                    }
                    skipped = i + 1;
                }
                _ => break,
            }
        }
        // A schedule has at most 16 warnings, the breach and 8 escalations.
        self.tickets.get_mut(slot).cycle_mut(which).skipped = skipped as u8;
    }

    /// Emits the pending alerts of the running cycles that fall due before each slot's
    /// bound (`Instant::MIN`: none), in instant order across the slots.
    pub(super) fn flush_before(&mut self, slot: u32, bounds: [Instant; 2], out: &mut Outbox<P>) {
        loop {
            let mut first: Option<(Instant, Slot, Alert)> = None;
            for (which, bound) in Slot::BOTH.into_iter().zip(bounds) {
                if let Some((alert, at)) = self.next_alert_at(slot, which)
                    && at < bound
                    && first.is_none_or(|(earliest, ..)| at < earliest)
                {
                    first = Some((at, which, alert));
                }
            }
            let Some((at, which, alert)) = first else { return };
            self.raise(slot, which, alert, at, out);
        }
    }

    /// The ticket's policy and the target of the cycle in `which`, if it has one.
    pub(super) fn target(&self, slot: u32, which: Slot) -> Option<(usize, i64)> {
        let t = self.tickets.get(slot);
        let p = t.policy()?;
        Some((p, self.rules.policies[p].target(t.clock(which), t.priority)?))
    }

    pub(super) fn timeline(t: &Ticket, which: Slot) -> Timeline<'_> {
        match which {
            Slot::Response => Timeline {
                start: t.response.start,
                pauses: &[],
                paused_since: NEVER,
            },
            Slot::Resolution => Timeline {
                start: t.resolution.start,
                pauses: &t.pauses,
                paused_since: t.paused_since,
            },
        }
    }

    pub(super) fn instant_of(
        &self,
        slot: u32,
        which: Slot,
        policy: &Policy,
        target: i64,
        alert: Alert,
    ) -> Option<Instant> {
        let t = self.tickets.get(slot);
        let cal = &self.rules.calendars[policy.calendar].calendar;
        Self::timeline(t, which).instant_at(cal, alert.threshold(policy, target))
    }

    /// Recomputes the ticket's next due instant and moves its index entry.
    pub(super) fn reschedule(&mut self, slot: u32) {
        self.set_due(slot, self.next_due(slot));
    }

    pub(super) fn set_due(&mut self, slot: u32, due: Instant) {
        let t = self.tickets.get_mut(slot);
        if t.due == due {
            return;
        }
        self.scheduled = self.scheduled + usize::from(due != NEVER) - usize::from(t.due != NEVER);
        t.due = due;
        if due != NEVER {
            let tickets = &self.tickets;
            self.index
                .push(due, slot, self.scheduled, |d, s| tickets.get(s).due == d);
        }
    }

    pub(super) fn next_due(&self, slot: u32) -> Instant {
        let t = self.tickets.get(slot);
        let mut due = NEVER;
        for which in Slot::BOTH {
            if let Some(at) = self.next_alert_at(slot, which) {
                due = due.min(at.1);
            }
        }
        due.min(self.forget_at(t))
    }

    /// When a solved or closed ticket is forgotten (`ticket_retention` after its last event).
    pub(super) fn forget_at(&self, t: &Ticket) -> Instant {
        match t.status {
            Status::Solved | Status::Closed => t.applied_at.saturating_add(self.rules.engine.ticket_retention),
            _ => NEVER,
        }
    }

    /// The next alert of the running cycle in `which` and its instant.
    pub(super) fn next_alert_at(&self, slot: u32, which: Slot) -> Option<(Alert, Instant)> {
        let t = self.tickets.get(slot);
        let c = t.cycle(which);
        if !c.running() {
            return None;
        }
        let (p, target) = self.target(slot, which)?;
        let policy = &self.rules.policies[p];
        let alert = next_alert(policy, c)?;
        Some((alert, self.instant_of(slot, which, policy, target, alert)?))
    }

    /// Emits every alert due below the frontier, in contract order.
    pub(super) fn emit_due(&mut self, out: &mut Outbox<P>) {
        while let Some((at, _)) = self.index.peek()
            && at < self.frontier
        {
            let mut batch = std::mem::take(&mut self.batch);
            while let Some((due, slot)) = self.index.peek()
                && due == at
            {
                self.index.pop();
                // Overlap the next entry's cache miss with this one's.
                if let Some((_, next)) = self.index.peek() {
                    self.tickets.prefetch_slot(next);
                }
                let t = self.tickets.get_mut(slot);
                // Entries left behind by rescheduling no longer match their ticket.
                if t.due == at {
                    t.due = NEVER;
                    self.scheduled -= 1;
                    batch.push(slot);
                }
            }
            batch.sort_unstable_by(|&a, &b| self.tickets.get(a).id.cmp(&self.tickets.get(b).id));
            for &slot in &batch {
                self.fire(slot, at, out);
            }
            batch.clear();
            self.batch = batch;
        }
    }

    /// Emits the ticket's alerts at instant `at`, or forgets it when its retention is over.
    pub(super) fn fire(&mut self, slot: u32, at: Instant, out: &mut Outbox<P>) {
        let mut due = NEVER;
        for which in Slot::BOTH {
            while let Some((alert, when)) = self.next_alert_at(slot, which) {
                if when > at {
                    due = due.min(when);
                    break;
                }
                self.raise(slot, which, alert, when, out);
            }
        }
        let forget_at = self.forget_at(self.tickets.get(slot));
        if forget_at <= at {
            self.tickets.remove(slot);
            self.stats.evicted += 1;
        } else {
            self.set_due(slot, due.min(forget_at));
        }
    }

    /// Emits an alert and records it as emitted.
    pub(super) fn raise(&mut self, slot: u32, which: Slot, alert: Alert, at: Instant, out: &mut Outbox<P>) {
        self.emit(slot, which, Report::Alert(alert), at, out);
        alert.mark_emitted(self.tickets.get_mut(slot).cycle_mut(which));
    }

    /// Emits an SLA event about the cycle in `which` at `at` (if its policy gives it a target).
    pub(super) fn emit(&mut self, slot: u32, which: Slot, report: Report, at: Instant, out: &mut Outbox<P>) {
        if let Some(ev) = self.sla_event(slot, which, report, at) {
            self.stats.sla[ev.kind as usize] += 1;
            out.sla.push(ev);
        }
    }

    /// The SLA event about the cycle in `which` at `at`, if its policy gives it a target.
    pub(super) fn sla_event(&self, slot: u32, which: Slot, report: Report, at: Instant) -> Option<SlaEvent> {
        let (p, target) = self.target(slot, which)?;
        let t = self.tickets.get(slot);
        let policy = &self.rules.policies[p];
        let cal = &self.rules.calendars[policy.calendar].calendar;
        let timeline = Self::timeline(t, which);
        let c = t.cycle(which);
        let (kind, detail) = match report {
            Report::Alert(Alert::Warning(w)) => (SlaKind::Warning, Detail::Fraction(w.fraction)),
            Report::Alert(Alert::Breach) => (SlaKind::Breached, Detail::None),
            Report::Alert(Alert::Escalation(level)) => (SlaKind::Escalated, Detail::Level(level)),
            Report::Cancelled => (SlaKind::Cancelled, Detail::None),
            Report::Retracted => (SlaKind::BreachRetracted, Detail::None),
            Report::Fulfilled(outcome) => (SlaKind::Fulfilled, Detail::Outcome(outcome)),
        };
        Some(SlaEvent {
            kind,
            ticket_id: t.id.clone(),
            clock: t.clock(which),
            cycle: c.number,
            policy: policy.name.clone(),
            priority: t.priority,
            channel: t.channel,
            ticket_kind: t.kind,
            group: self.groups.name(t.group).cloned(),
            started_at: c.start,
            deadline: timeline.instant_at(cal, target),
            target_ms: target,
            at,
            // An alert's elapsed time is its threshold by definition.
            elapsed_ms: match report {
                Report::Alert(a) => a.threshold(policy, target),
                _ => timeline.elapsed(cal, at),
            },
            detail,
        })
    }
}

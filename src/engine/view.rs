//! Read-only views of tickets and their cycles, for the HTTP API and the metrics. Elapsed times
//! and states are taken at the frontier: the engine has no clock.

use super::ticket::{Cycle, Slot, Ticket};
use super::{Engine, Status};
use crate::event::Kind;
use crate::policy::Clock;
use crate::time::Instant;

/// Where a cycle stands. The first four are running states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleState {
    OnTrack,
    /// A warning threshold has passed.
    Warned,
    /// The breach was emitted and stands.
    Breached,
    /// Resolution clock, paused by the ticket's status.
    Paused,
    /// Fulfilled on time.
    Met,
    /// Fulfilled after a breach.
    Missed,
    Cancelled,
}

impl CycleState {
    pub const RUNNING: [CycleState; 4] = [
        CycleState::OnTrack,
        CycleState::Warned,
        CycleState::Breached,
        CycleState::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CycleState::OnTrack => "on_track",
            CycleState::Warned => "warned",
            CycleState::Breached => "breached",
            CycleState::Paused => "paused",
            CycleState::Met => "met",
            CycleState::Missed => "missed",
            CycleState::Cancelled => "cancelled",
        }
    }
}

/// The current cycle of one of a ticket's clocks.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleView {
    pub clock: Clock,
    pub number: u16,
    pub start: Instant,
    pub target_ms: i64,
    /// `None` while paused with the target not reached.
    pub deadline: Option<Instant>,
    /// Business time at the frontier (running cycles only).
    pub elapsed_ms: Option<i64>,
    pub state: CycleState,
}

/// The running cycles due within these spans of the frontier count as at risk.
pub const AT_RISK: [(&str, i64); 2] = [("15m", 15 * 60_000), ("1h", 60 * 60_000)];

/// What the gauges show, over one engine's tickets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Tickets neither solved nor closed.
    pub open: u64,
    pub complaints_open: u64,
    /// Running cycles by clock and [`CycleState::RUNNING`] state.
    pub running: [[u64; 4]; 3],
    /// Running cycles not yet breached whose deadline lies within each [`AT_RISK`] span.
    pub at_risk: [[u64; 2]; 3],
}

impl std::ops::AddAssign<&Summary> for Summary {
    fn add_assign(&mut self, other: &Summary) {
        self.open += other.open;
        self.complaints_open += other.complaints_open;
        for clock in 0..3 {
            for (a, b) in self.running[clock].iter_mut().zip(other.running[clock]) {
                *a += b;
            }
            for (a, b) in self.at_risk[clock].iter_mut().zip(other.at_risk[clock]) {
                *a += b;
            }
        }
    }
}

impl<P> Engine<P> {
    /// Number of ticket record slots: [`Engine::tickets`] takes ranges of `0..slots()`, so
    /// that a pass over millions of tickets can be split into short steps.
    pub fn slots(&self) -> usize {
        self.tickets.slots()
    }

    /// The tickets held in record slots `slots`, solved ones kept for `ticket_retention`
    /// included.
    pub fn tickets(&self, slots: std::ops::Range<usize>) -> impl Iterator<Item = &Ticket> {
        self.tickets.in_slots(slots)
    }

    pub fn group_name(&self, t: &Ticket) -> Option<&str> {
        self.groups.name(t.group).map(|g| &**g)
    }

    pub fn tier_name(&self, t: &Ticket) -> Option<&str> {
        self.tiers.name(t.tier).map(|g| &**g)
    }

    /// The current cycle of each clock the ticket's policy gives a target and that ran.
    pub fn cycles<'a>(&'a self, t: &'a Ticket) -> impl Iterator<Item = CycleView> + 'a {
        let policy = t.policy().map(|p| &self.rules.policies[p]);
        Slot::BOTH.into_iter().filter_map(move |which| {
            let policy = policy?;
            let cal = &self.rules.calendars[policy.calendar].calendar;
            let c = t.cycle(which);
            let clock = t.clock(which);
            let target = policy.target(clock, t.priority).filter(|_| c.number > 0)?;
            let timeline = Self::timeline(t, which);
            Some(CycleView {
                clock,
                number: c.number,
                start: c.start,
                target_ms: target,
                deadline: timeline.instant_at(cal, target),
                elapsed_ms: c.running().then(|| timeline.elapsed(cal, self.frontier.max(c.start))),
                state: state(t, which, c),
            })
        })
    }

    /// Adds the tickets of record slots `slots` to `s`.
    pub fn summarize(&self, slots: std::ops::Range<usize>, s: &mut Summary) {
        for t in self.tickets(slots) {
            if matches!(t.status, Status::Solved | Status::Closed) {
                continue;
            }
            s.open += 1;
            s.complaints_open += u64::from(t.kind == Kind::Complaint);
            for c in self.cycles(t) {
                let Some(i) = CycleState::RUNNING.iter().position(|&r| r == c.state) else {
                    continue;
                };
                s.running[c.clock as usize][i] += 1;
                if c.state == CycleState::Breached {
                    continue;
                }
                for (k, (_, span)) in AT_RISK.iter().enumerate() {
                    if c.deadline.is_some_and(|d| d <= self.frontier.saturating_add(*span)) {
                        s.at_risk[c.clock as usize][k] += 1;
                    }
                }
            }
        }
    }
}

fn state(t: &Ticket, which: Slot, c: &Cycle) -> CycleState {
    match (c.running(), c.is(Cycle::FULFILLED)) {
        (false, true) if c.breach_stands() => CycleState::Missed,
        (false, true) => CycleState::Met,
        (false, false) => CycleState::Cancelled,
        (true, _) if c.breach_stands() => CycleState::Breached,
        (true, _) if which == Slot::Resolution && t.paused() => CycleState::Paused,
        (true, _) if c.warned != 0 => CycleState::Warned,
        (true, _) => CycleState::OnTrack,
    }
}

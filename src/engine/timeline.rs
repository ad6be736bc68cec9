//! Elapsed time of a cycle and the instants of its alerts (SPEC §3).
//!
//! A cycle's elapsed time at `t` is the business time between its start and `t` minus the
//! business time of its pauses. Alerts are thresholds on that axis — warning `f` at
//! `floor(f × target)`, the breach at `target`, escalation `k` at `target + escalate_after[k]`
//! — and an alert's instant is the earliest instant at which elapsed time reaches its
//! threshold. Thresholds only ever lie in increasing order, so the next alert of a cycle is
//! the first one neither emitted nor skipped.

use crate::calendar::Calendar;
use crate::policy::{Policy, Warning};
use crate::time::Instant;

use super::ticket::{Cycle, NEVER};

/// A cycle's running intervals: from `start`, interrupted by `pauses`, and stopped for now at
/// `paused_since` unless that is `NEVER` (`i64::MAX`).
#[derive(Clone, Copy)]
pub struct Timeline<'a> {
    pub start: Instant,
    pub pauses: &'a [(Instant, Instant)],
    pub paused_since: Instant,
}

impl Timeline<'_> {
    /// The running intervals, the last one open-ended (`NEVER`) unless paused now.
    fn segments(&self) -> impl Iterator<Item = (Instant, Instant)> + '_ {
        let starts = std::iter::once(self.start).chain(self.pauses.iter().map(|p| p.1));
        let ends = self
            .pauses
            .iter()
            .map(|p| p.0)
            .chain(std::iter::once(self.paused_since));
        starts.zip(ends)
    }

    /// Business time elapsed at `t`.
    pub fn elapsed(&self, cal: &Calendar, t: Instant) -> i64 {
        self.segments()
            .take_while(|&(a, _)| a < t)
            .map(|(a, b)| cal.between(a, b.min(t)))
            .sum()
    }

    /// The earliest instant at which the elapsed time equals `threshold`, or `None` if the
    /// cycle is paused before reaching it (or the instant is past the calendar's range).
    pub fn instant_at(&self, cal: &Calendar, threshold: i64) -> Option<Instant> {
        let mut acc = 0;
        for (a, b) in self.segments() {
            let remaining = threshold - acc;
            if b == NEVER {
                return cal.add(a, remaining);
            }
            let run = cal.between(a, b);
            if run >= remaining {
                return cal.add(a, remaining);
            }
            acc += run;
        }
        None
    }
}

/// One alert of a cycle's schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alert {
    Warning(Warning),
    Breach,
    /// Level from 1.
    Escalation(u8),
}

impl Alert {
    /// Elapsed-time threshold for a cycle with `target`.
    pub fn threshold(self, policy: &Policy, target: i64) -> i64 {
        match self {
            Alert::Warning(w) => (w.fraction * target as f64).floor() as i64,
            Alert::Breach => target,
            Alert::Escalation(level) => target + policy.escalate[level as usize - 1],
        }
    }

    pub fn is_emitted(self, c: &Cycle) -> bool {
        match self {
            Alert::Warning(w) => c.warned & (1 << w.bit) != 0,
            Alert::Breach => c.is(Cycle::BREACHED),
            Alert::Escalation(level) => c.escalated & (1 << (level - 1)) != 0,
        }
    }

    pub fn mark_emitted(self, c: &mut Cycle) {
        match self {
            Alert::Warning(w) => c.warned |= 1 << w.bit,
            Alert::Breach => c.flags |= Cycle::BREACHED,
            Alert::Escalation(level) => c.escalated |= 1 << (level - 1),
        }
    }
}

/// The alerts of `policy`'s schedule in threshold order.
pub fn schedule(policy: &Policy) -> impl Iterator<Item = Alert> + '_ {
    let warnings = policy.warnings.iter().map(|&w| Alert::Warning(w));
    let escalations = (1..=policy.escalate.len() as u8).map(Alert::Escalation);
    warnings.chain(std::iter::once(Alert::Breach)).chain(escalations)
}

/// The first alert of the schedule that is neither emitted nor skipped.
pub fn next_alert(policy: &Policy, cycle: &Cycle) -> Option<Alert> {
    schedule(policy)
        .skip(cycle.skipped.into())
        .find(|a| !a.is_emitted(cycle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn pauses_do_not_count_and_move_later_instants() {
        let cal = Calendar::always();
        let pauses = [(2 * H, 5 * H)];
        let tl = Timeline {
            start: 0,
            pauses: &pauses,
            paused_since: NEVER,
        };
        assert_eq!(tl.elapsed(&cal, 4 * H), 2 * H);
        assert_eq!(tl.elapsed(&cal, 6 * H), 3 * H);
        assert_eq!(tl.instant_at(&cal, H), Some(H));
        assert_eq!(
            tl.instant_at(&cal, 2 * H),
            Some(2 * H),
            "an instant at the pause stays before it"
        );
        assert_eq!(tl.instant_at(&cal, 3 * H), Some(6 * H));
    }

    #[test]
    fn open_pause_leaves_unreached_thresholds_without_instant() {
        let cal = Calendar::always();
        let tl = Timeline {
            start: 0,
            pauses: &[],
            paused_since: 2 * H,
        };
        assert_eq!(tl.instant_at(&cal, H), Some(H));
        assert_eq!(tl.instant_at(&cal, 3 * H), None);
        assert_eq!(tl.elapsed(&cal, 10 * H), 2 * H);
    }
}

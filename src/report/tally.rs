//! The review's numbers: SLA events, tickets, replies and ratings counted per local day and
//! by attribute, for one configuration. Pure: the driver (`super`) feeds it what the engine
//! emitted and the input it applied; `super::render` writes it out.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::engine::{Detail, Outcome, SlaEvent, SlaKind};
use crate::event::{Channel, Kind, Priority};
use crate::policy::Clock;
use crate::time::Instant;

/// Business-time durations (ms) in logarithmic buckets: exact below 1,024 ms, then 1% wide,
/// so a percentile is within 0.5% of the exact one whatever the number of values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
    count: u64,
}

const EXACT: i64 = 1024;
const STEP: f64 = 0.009_950_330_853_168_083; // ln(1.01)

impl Histogram {
    pub fn add(&mut self, ms: i64) {
        let ms = ms.max(0);
        let bucket = if ms < EXACT {
            ms as u32
        } else {
            EXACT as u32 + ((ms as f64 / EXACT as f64).ln() / STEP) as u32
        };
        *self.buckets.entry(bucket).or_default() += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&b, &n) in &other.buckets {
            *self.buckets.entry(b).or_default() += n;
        }
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The nearest-rank `q` quantile (the smallest value with at least `q` of the values at
    /// or below it), as its bucket's middle; `None` without values.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let (&bucket, _) = self.buckets.iter().find(|&(_, &n)| {
            seen += n;
            seen >= rank
        })?;
        Some(middle(bucket))
    }

    /// Each bucket's middle value and count, smallest first.
    pub fn for_each(&self, mut f: impl FnMut(i64, u64)) {
        for (&bucket, &n) in &self.buckets {
            f(middle(bucket), n);
        }
    }
}

fn middle(bucket: u32) -> i64 {
    if bucket < EXACT as u32 {
        i64::from(bucket)
    } else {
        (EXACT as f64 * ((f64::from(bucket - EXACT as u32) + 0.5) * STEP).exp()).round() as i64
    }
}

/// One clock's SLA events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClockTally {
    pub fulfilled: u64,
    pub met: u64,
    pub warnings: u64,
    pub breaches: u64,
    /// Escalations by level, from 1.
    pub escalations: Vec<u64>,
    pub retractions: u64,
    pub cancellations: u64,
    /// Business time of fulfilled cycles.
    pub times: Histogram,
}

/// Satisfaction ratings.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Ratings {
    pub count: u64,
    pub score_sum: u64,
    /// Scores 4 and 5.
    pub satisfied: u64,
}

impl Ratings {
    fn add(&mut self, score: u8) {
        self.count += 1;
        self.score_sum += u64::from(score);
        self.satisfied += u64::from(score >= 4);
    }

    fn merge(&mut self, o: &Ratings) {
        self.count += o.count;
        self.score_sum += o.score_sum;
        self.satisfied += o.satisfied;
    }
}

/// How a rated ticket's first first-response cycle went, as the rating arrived: index into
/// [`Tally::ratings_by_first_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstResponse {
    /// No target, not answered yet, or an outbound ticket.
    Unknown,
    Met,
    Breached,
}

/// What happened in a day, or to tickets with one attribute value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// By [`Clock::ALL`].
    pub clocks: [ClockTally; 3],
    pub tickets: u64,
    pub complaints: u64,
    /// Business time of fulfilled resolution cycles of complaints.
    pub complaint_resolution: Histogram,
    pub ratings: Ratings,
    /// By [`FirstResponse`].
    pub ratings_by_first_response: [Ratings; 3],
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        for (a, b) in self.clocks.iter_mut().zip(&o.clocks) {
            a.fulfilled += b.fulfilled;
            a.met += b.met;
            a.warnings += b.warnings;
            a.breaches += b.breaches;
            if a.escalations.len() < b.escalations.len() {
                a.escalations.resize(b.escalations.len(), 0);
            }
            for (x, y) in a.escalations.iter_mut().zip(&b.escalations) {
                *x += y;
            }
            a.retractions += b.retractions;
            a.cancellations += b.cancellations;
            a.times.merge(&b.times);
        }
        self.tickets += o.tickets;
        self.complaints += o.complaints;
        self.complaint_resolution.merge(&o.complaint_resolution);
        self.ratings.merge(&o.ratings);
        for (a, b) in self
            .ratings_by_first_response
            .iter_mut()
            .zip(&o.ratings_by_first_response)
        {
            a.merge(b);
        }
    }

    fn sla(&mut self, e: &SlaEvent) {
        let c = &mut self.clocks[e.clock as usize];
        match (e.kind, e.detail) {
            (SlaKind::Warning, _) => c.warnings += 1,
            (SlaKind::Breached, _) => c.breaches += 1,
            (SlaKind::Escalated, Detail::Level(level)) => {
                let i = usize::from(level.max(1)) - 1;
                if c.escalations.len() <= i {
                    c.escalations.resize(i + 1, 0);
                }
                c.escalations[i] += 1;
            }
            (SlaKind::Fulfilled, Detail::Outcome(outcome)) => {
                c.fulfilled += 1;
                c.met += u64::from(outcome == Outcome::Met);
                c.times.add(e.elapsed_ms);
                if e.clock == Clock::Resolution && e.ticket_kind == Kind::Complaint {
                    self.complaint_resolution.add(e.elapsed_ms);
                }
            }
            (SlaKind::Cancelled, _) => c.cancellations += 1,
            (SlaKind::BreachRetracted, _) => c.retractions += 1,
            _ => {}
        }
    }
}

/// The attributes a breakdown is by: a ticket's as an event found it.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    /// Empty when no policy matches.
    pub policy: &'a str,
    pub channel: Channel,
    pub priority: Priority,
    pub kind: Kind,
    pub group: Option<&'a str>,
}

impl<'a> From<&'a SlaEvent> for Attrs<'a> {
    fn from(e: &'a SlaEvent) -> Self {
        Attrs {
            policy: &e.policy,
            channel: e.channel,
            priority: e.priority,
            kind: e.ticket_kind,
            group: e.group.as_deref(),
        }
    }
}

/// The breakdowns, in their order in the report.
pub const DIMENSIONS: [&str; 5] = ["policy", "channel", "priority", "kind", "group"];

/// Replies and the responses they fulfilled, of one agent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Agent {
    pub public_replies: u64,
    /// First and next responses fulfilled by the agent's replies: count, met, business time.
    pub responses: [(u64, u64, Histogram); 2],
}

/// A cycle for the worst-tickets lists: how far past its target, in business time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrun {
    pub overrun_ms: i64,
    pub ticket_id: String,
    pub clock: Clock,
    pub cycle: u16,
    pub policy: String,
}

/// Entries in each worst-tickets list.
pub const WORST: usize = 10;

/// Keeps the `WORST` largest overruns, largest first, ties by ticket id.
pub fn keep_worst(list: &mut Vec<Overrun>, o: Overrun) {
    let key = |o: &Overrun| {
        (
            std::cmp::Reverse(o.overrun_ms),
            o.ticket_id.clone(),
            o.clock as u8,
            o.cycle,
        )
    };
    if list.len() == WORST && key(&o) >= key(list.last().expect("full")) {
        return;
    }
    let at = list.partition_point(|x| key(x) < key(&o));
    list.insert(at, o);
    list.truncate(WORST);
}

/// Open tickets and running breached cycles (by clock) at a day's end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub open: u64,
    pub breached_running: [u64; 3],
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Day {
    pub tally: Tally,
    pub backlog: Option<Backlog>,
}

/// Everything counted for one configuration over the report's period.
pub struct Review {
    tz: Tz,
    from: Instant,
    until: Instant,
    /// By local date.
    pub days: BTreeMap<NaiveDate, Day>,
    /// By [`DIMENSIONS`], then value.
    pub by: [BTreeMap<String, Tally>; 5],
    pub agents: BTreeMap<String, Agent>,
    /// Fulfilled cycles that missed their target by most.
    pub worst_breaches: Vec<Overrun>,
    /// Running cycles furthest past their target at the end.
    pub open_overdue: Vec<Overrun>,
    /// How each ticket's first first-response cycle went (by a hash of its id).
    first_response: HashMap<u64, FirstResponse>,
    /// The local day last looked up: its start, end and date.
    day_cache: (Instant, Instant, NaiveDate),
}

impl Review {
    /// Counts what happens in `[from, until)`, in days of `tz`.
    pub fn new(tz: Tz, from: Instant, until: Instant) -> Review {
        Review {
            tz,
            from,
            until,
            days: BTreeMap::new(),
            by: Default::default(),
            agents: BTreeMap::new(),
            worst_breaches: Vec::new(),
            open_overdue: Vec::new(),
            first_response: HashMap::new(),
            day_cache: (0, 0, NaiveDate::MIN),
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    fn counts(&self, at: Instant) -> bool {
        (self.from..self.until).contains(&at)
    }

    /// The local date of `at`, and its start and end instants.
    pub fn day_of(&mut self, at: Instant) -> (NaiveDate, Instant, Instant) {
        let (start, end, date) = self.day_cache;
        if (start..end).contains(&at) {
            return (date, start, end);
        }
        let date = self
            .tz
            .timestamp_millis_opt(at)
            .single()
            .expect("in range")
            .date_naive();
        let start = self.midnight(date);
        let end = self.midnight(date.succ_opt().expect("in range"));
        self.day_cache = (start, end, date);
        (date, start, end)
    }

    /// The first instant of a local date (midnight, or the first time after a gap).
    fn midnight(&self, date: NaiveDate) -> Instant {
        let mut t = date.and_hms_opt(0, 0, 0).expect("midnight");
        loop {
            if let Some(dt) = self.tz.from_local_datetime(&t).earliest() {
                return dt.timestamp_millis();
            }
            t += chrono::Duration::minutes(15);
        }
    }

    /// Applies `f` to the day's tally and to each breakdown's.
    fn each(&mut self, at: Instant, a: Attrs, f: impl Fn(&mut Tally)) {
        let (date, ..) = self.day_of(at);
        f(&mut self.days.entry(date).or_default().tally);
        let values = [
            a.policy,
            a.channel.as_str(),
            a.priority.as_str(),
            a.kind.as_str(),
            a.group.unwrap_or(""),
        ];
        for (map, value) in self.by.iter_mut().zip(values) {
            match map.get_mut(value) {
                Some(t) => f(t),
                None => f(map.entry(value.to_owned()).or_default()),
            }
        }
    }

    /// An SLA event, with the agent whose reply caused it.
    pub fn sla(&mut self, e: &SlaEvent, agent: Option<&str>) {
        let first = e.clock == Clock::FirstResponse && e.cycle == 1;
        match (first, e.detail) {
            (true, Detail::Outcome(Outcome::Met)) => self.set_first_response(&e.ticket_id, FirstResponse::Met),
            (true, Detail::Outcome(Outcome::Breached)) => {
                self.set_first_response(&e.ticket_id, FirstResponse::Breached)
            }
            _ if first && e.kind == SlaKind::Breached => self.set_first_response(&e.ticket_id, FirstResponse::Breached),
            _ => {}
        }
        if !self.counts(e.at) {
            return;
        }
        self.each(e.at, Attrs::from(e), |t| t.sla(e));
        let Detail::Outcome(outcome) = e.detail else {
            return;
        };
        if let (Some(agent), Some(i)) = (
            agent,
            [Clock::FirstResponse, Clock::NextResponse]
                .iter()
                .position(|&c| c == e.clock),
        ) {
            let r = &mut self.agents.entry(agent.to_owned()).or_default().responses[i];
            r.0 += 1;
            r.1 += u64::from(outcome == Outcome::Met);
            r.2.add(e.elapsed_ms);
        }
        if outcome == Outcome::Breached {
            let overrun = Overrun {
                overrun_ms: e.elapsed_ms - e.target_ms,
                ticket_id: e.ticket_id.to_string(),
                clock: e.clock,
                cycle: e.cycle,
                policy: e.policy.to_string(),
            };
            keep_worst(&mut self.worst_breaches, overrun);
        }
    }

    fn set_first_response(&mut self, ticket: &str, how: FirstResponse) {
        self.first_response.insert(hash(ticket), how);
    }

    pub fn ticket_created(&mut self, at: Instant, a: Attrs) {
        if self.counts(at) {
            let complaint = u64::from(a.kind == Kind::Complaint);
            self.each(at, a, |t| {
                t.tickets += 1;
                t.complaints += complaint;
            });
        }
    }

    pub fn rated(&mut self, at: Instant, ticket: &str, score: u8, a: Attrs) {
        if self.counts(at) {
            let how = self
                .first_response
                .get(&hash(ticket))
                .copied()
                .unwrap_or(FirstResponse::Unknown);
            self.each(at, a, |t| {
                t.ratings.add(score);
                t.ratings_by_first_response[how as usize].add(score);
            });
        }
    }

    /// A public reply by `agent`.
    pub fn replied(&mut self, at: Instant, agent: &str) {
        if self.counts(at) {
            self.agents.entry(agent.to_owned()).or_default().public_replies += 1;
        }
    }

    /// The backlog as the day of `at` (its last instant) ends.
    pub fn backlog(&mut self, at: Instant, b: Backlog) {
        if self.counts(at) {
            let (date, ..) = self.day_of(at);
            self.days.entry(date).or_default().backlog = Some(b);
        }
    }

    /// Every day and breakdown together.
    pub fn overall(&self) -> Tally {
        let mut all = Tally::default();
        for day in self.days.values() {
            all.merge(&day.tally);
        }
        all
    }
}

fn hash(ticket: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(ticket.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_within_half_a_percent() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in [5, 1, 3, 2, 4] {
            h.add(v);
        }
        // Exact below 1,024 ms: the 3rd of 5 is the median, the 5th the p90 and p99.
        assert_eq!(
            [h.quantile(0.5), h.quantile(0.9), h.quantile(0.99)],
            [Some(3), Some(5), Some(5)]
        );
        let mut h = Histogram::default();
        let minutes: Vec<i64> = (1..=100).map(|m| m * 60_000).collect();
        for &v in minutes.iter().rev() {
            h.add(v);
        }
        for (q, exact) in [(0.5, 50 * 60_000), (0.9, 90 * 60_000), (0.99, 99 * 60_000)] {
            let got = h.quantile(q).unwrap();
            assert!(
                (got - exact).abs() as f64 <= 0.005 * exact as f64,
                "q{q}: {got} vs {exact}"
            );
        }
        let mut merged = Histogram::default();
        merged.merge(&h);
        merged.merge(&h);
        assert_eq!((merged.count(), merged.quantile(0.5)), (200, h.quantile(0.5)));
    }

    #[test]
    fn the_worst_list_keeps_the_largest_overruns_in_order() {
        let mut list = Vec::new();
        for (i, ms) in [5, 50, 1, 50, 7, 9, 11, 2, 30, 40, 8, 60].into_iter().enumerate() {
            let o = Overrun {
                overrun_ms: ms,
                ticket_id: format!("T{i:02}"),
                clock: Clock::FirstResponse,
                cycle: 1,
                policy: "p".into(),
            };
            keep_worst(&mut list, o);
        }
        let got: Vec<(i64, &str)> = list.iter().map(|o| (o.overrun_ms, o.ticket_id.as_str())).collect();
        assert_eq!(
            got,
            [
                (60, "T11"),
                (50, "T01"),
                (50, "T03"),
                (40, "T09"),
                (30, "T08"),
                (11, "T06"),
                (9, "T05"),
                (8, "T10"),
                (7, "T04"),
                (5, "T00")
            ]
        );
    }

    #[test]
    fn days_follow_the_time_zone_across_a_clock_change() {
        let mut r = Review::new(chrono_tz::Europe::Berlin, Instant::MIN, Instant::MAX);
        // 2026-03-29 has 23 hours in Berlin: 00:00 CET is 23:00Z the day before.
        let at = crate::time::parse_rfc3339("2026-03-29T12:00:00Z").unwrap();
        let (date, start, end) = r.day_of(at);
        assert_eq!(date.to_string(), "2026-03-29");
        assert_eq!(end - start, 23 * 3_600_000);
        assert_eq!(start, crate::time::parse_rfc3339("2026-03-28T23:00:00Z").unwrap());
    }
}

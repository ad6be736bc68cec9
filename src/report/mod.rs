//! `slawatch report`: the service-standard review. Recorded events run through exactly the
//! engine `replay` runs, once per configuration (the current one and, with `--compare`, a
//! candidate, both fed each decoded event in turn); what they emit and the input they applied
//! are counted per local day and by attribute ([`tally`]) and written as JSON or Markdown
//! ([`render`]) or HTML ([`html`]).
//!
//! Memory is that of the engines plus the tallies: the input streams through in batches.

pub mod html;
pub mod render;
pub mod tally;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use chrono_tz::Tz;
use compact_str::CompactString;

use crate::engine::{Applied, CycleState, Detail, Engine, Outbox, Outcome, SlaKind, Summary};
use crate::event::{Author, Body, Event, Reason};
use crate::policy::{Clock, Rules};
use crate::replay::{self, BATCHES_IN_FLIGHT, Progress, ReplayError};
use crate::time::Instant;
use tally::{Attrs, Backlog, Overrun, Review, keep_worst};

pub struct Options<'a> {
    pub input: Option<&'a Path>,
    /// Only what happens in `[from, until)` is counted; the events before `from` still run.
    pub from: Option<Instant>,
    /// As `replay --until`: the frontier at the end.
    pub until: Option<Instant>,
    /// Days are local days here.
    pub time_zone: Tz,
    pub progress: bool,
}

/// A cycle whose outcome differs between the configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub ticket_id: CompactString,
    pub clock: Clock,
    pub cycle: u16,
    /// Under the current configuration (the candidate's is the other one).
    pub current: Outcome,
}

/// Sampled changes kept.
pub const CHANGES_SAMPLED: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub met_to_breached: u64,
    pub breached_to_met: u64,
    /// The first [`CHANGES_SAMPLED`], in input order.
    pub sample: Vec<Change>,
}

pub struct Report {
    pub input: String,
    pub lines: u64,
    pub from: Option<Instant>,
    pub until: Option<Instant>,
    /// Earliest and latest `occurred_at` of the valid events.
    pub span: Option<(Instant, Instant)>,
    /// The current configuration's, then the candidate's.
    pub reviews: Vec<Review>,
    /// Dead letters by reason ([`Reason::ALL`]) under each configuration.
    pub dead: Vec<[u64; Reason::ALL.len()]>,
    pub changes: Option<Changes>,
}

/// One configuration's engine and review.
struct Run {
    engine: Engine<()>,
    review: Review,
    outbox: Outbox<()>,
    /// Where the day the frontier is in ends (`None` before the first event).
    day_end: Option<Instant>,
    dead: [u64; Reason::ALL.len()],
    /// Cycles fulfilled by the event just applied.
    fulfilled: Vec<(CompactString, Clock, u16, Outcome)>,
}

impl Run {
    fn new(rules: Arc<Rules>, opts: &Options) -> Run {
        Run {
            engine: Engine::new(rules),
            review: Review::new(
                opts.time_zone,
                opts.from.unwrap_or(Instant::MIN),
                opts.until.unwrap_or(Instant::MAX),
            ),
            outbox: Outbox::default(),
            day_end: None,
            dead: [0; Reason::ALL.len()],
            fulfilled: Vec::new(),
        }
    }

    fn step(&mut self, ev: &Event) {
        self.close_days(
            ev.occurred_at
                .saturating_sub(self.engine.rules().engine.allowed_lateness),
        );
        match self.engine.handle(ev, || (), &mut self.outbox) {
            Applied::Applied => self.observe(ev),
            Applied::Rejected(r) => self.dead[r.reason as usize] += 1,
            _ => {}
        }
        let agent = match &ev.body {
            Body::ReplySent {
                author: Author::Agent,
                public: true,
                agent,
            } => agent.as_deref(),
            _ => None,
        };
        self.drain(Some(ev).zip(agent));
    }

    /// Counts an applied input event with its ticket's attributes.
    fn observe(&mut self, ev: &Event) {
        let (engine, review) = (&self.engine, &mut self.review);
        let Some(t) = engine.ticket(&ev.ticket_id) else {
            return;
        };
        let attrs = Attrs {
            policy: t.policy().map_or("", |p| &engine.rules().policies[p].name),
            channel: t.channel,
            priority: t.priority,
            kind: t.kind,
            group: engine.group_name(t),
        };
        match &ev.body {
            Body::Created(_) => review.ticket_created(ev.occurred_at, attrs),
            &Body::Rated { score } => review.rated(ev.occurred_at, &ev.ticket_id, score, attrs),
            Body::ReplySent {
                author: Author::Agent,
                public: true,
                agent: Some(agent),
            } => review.replied(ev.occurred_at, agent),
            _ => {}
        }
    }

    /// Counts what the engine emitted; `reply` is the reply just applied and its agent, to
    /// whom the fulfilments of its ticket are credited.
    fn drain(&mut self, reply: Option<(&Event, &str)>) {
        for e in self.outbox.sla.drain(..) {
            let agent = reply.filter(|(ev, _)| ev.ticket_id == e.ticket_id).map(|(_, a)| a);
            self.review.sla(&e, agent);
            if let (SlaKind::Fulfilled, Detail::Outcome(o)) = (e.kind, e.detail) {
                self.fulfilled.push((e.ticket_id.clone(), e.clock, e.cycle, o));
            }
        }
        for d in self.outbox.dead.drain(..) {
            self.dead[d.rejection.reason as usize] += 1;
        }
    }

    /// Moves the frontier through every day that ends by `frontier`, noting each day's
    /// backlog as it ends.
    fn close_days(&mut self, frontier: Instant) {
        let mut end = match self.day_end {
            Some(end) => end,
            None => self.review.day_of(frontier).2,
        };
        while end <= frontier {
            self.engine.advance(end, &mut self.outbox);
            self.drain(None);
            self.note_backlog(end - 1);
            end = self.review.day_of(end).2;
        }
        self.day_end = Some(end);
    }

    fn note_backlog(&mut self, at: Instant) {
        let mut s = Summary::default();
        self.engine.summarize(0..self.engine.slots(), &mut s);
        let breached = CycleState::RUNNING
            .iter()
            .position(|&s| s == CycleState::Breached)
            .expect("a running state");
        self.review.backlog(
            at,
            Backlog {
                open: s.open,
                breached_running: s.running.map(|by_state| by_state[breached]),
            },
        );
    }

    /// End of input: the frontier to `until` (or the last event), the last day's backlog, and
    /// the running cycles furthest past their targets.
    fn finish(&mut self, until: Option<Instant>, last: Option<Instant>) {
        if let Some(end) = until.or(last) {
            self.close_days(end);
        }
        self.engine.finish(until, &mut self.outbox);
        self.drain(None);
        let frontier = self.engine.frontier();
        if self.day_end.is_some_and(|end| frontier > self.review.day_of(end - 1).1) {
            self.note_backlog(frontier - 1);
        }
        for t in self.engine.tickets(0..self.engine.slots()) {
            for c in self.engine.cycles(t) {
                if c.state != CycleState::Breached {
                    continue;
                }
                let o = Overrun {
                    overrun_ms: c.elapsed_ms.unwrap_or(0) - c.target_ms,
                    ticket_id: t.id.to_string(),
                    clock: c.clock,
                    cycle: c.number,
                    policy: t
                        .policy()
                        .map_or(String::new(), |p| self.engine.rules().policies[p].name.to_string()),
                };
                keep_worst(&mut self.review.open_overdue, o);
            }
        }
    }
}

/// Matches the cycles both runs fulfilled with the same event, and records those whose
/// outcome differs. (A cycle fulfils on the same event under every configuration; one
/// without a target under a configuration emits nothing there and is not compared.)
fn compare(
    current: &mut Vec<(CompactString, Clock, u16, Outcome)>,
    candidate: &mut Vec<(CompactString, Clock, u16, Outcome)>,
    changes: &mut Changes,
) {
    for (ticket, clock, cycle, outcome) in current.drain(..) {
        let Some(&(.., other)) = candidate
            .iter()
            .find(|(t, c, n, _)| *t == ticket && *c == clock && *n == cycle)
        else {
            continue;
        };
        if other == outcome {
            continue;
        }
        match outcome {
            Outcome::Met => changes.met_to_breached += 1,
            Outcome::Breached => changes.breached_to_met += 1,
        }
        if changes.sample.len() < CHANGES_SAMPLED {
            changes.sample.push(Change {
                ticket_id: ticket,
                clock,
                cycle,
                current: outcome,
            });
        }
    }
    candidate.clear();
}

/// Runs the review of `input` under `current` and, if given, `candidate`.
pub fn run(current: Arc<Rules>, candidate: Option<Arc<Rules>>, opts: &Options) -> Result<Report, ReplayError> {
    let (in_name, input) = replay::open_input(opts.input)?;
    let max_bytes = current
        .engine
        .max_event_bytes
        .max(candidate.as_ref().map_or(0, |c| c.engine.max_event_bytes));
    let mut runs: Vec<Run> = std::iter::once(current)
        .chain(candidate)
        .map(|r| Run::new(r, opts))
        .collect();
    let mut changes = (runs.len() == 2).then(Changes::default);
    let mut progress = Progress::new("report", opts.progress && std::io::stderr().is_terminal());
    let (mut lines, mut span) = (0, None::<(Instant, Instant)>);
    let (tx, rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    thread::scope(|scope| {
        let reader = scope.spawn(move || replay::read_batches(input, max_bytes, tx));
        for batch in rx {
            for d in &batch.lines {
                let ev = match &d.event {
                    Ok(ev) => ev,
                    Err(r) => {
                        runs.iter_mut().for_each(|run| run.dead[r.reason as usize] += 1);
                        continue;
                    }
                };
                let at = ev.occurred_at;
                span = Some(span.map_or((at, at), |(a, b)| (a.min(at), b.max(at))));
                for run in &mut runs {
                    run.step(ev);
                }
                match (&mut runs[..], &mut changes) {
                    ([a, b], Some(changes)) => compare(&mut a.fulfilled, &mut b.fulfilled, changes),
                    _ => runs[0].fulfilled.clear(),
                }
            }
            lines = batch.last_line;
            progress.tick(lines);
        }
        progress.clear();
        reader
            .join()
            .expect("reader thread panicked")
            .map_err(|source| ReplayError::Read {
                path: in_name.clone(),
                source,
            })
    })?;
    for run in &mut runs {
        run.finish(opts.until, span.map(|(_, last)| last));
    }
    Ok(Report {
        input: in_name,
        lines,
        from: opts.from,
        until: opts.until,
        span,
        dead: runs.iter().map(|r| r.dead).collect(),
        reviews: runs.into_iter().map(|r| r.review).collect(),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    const CONFIG: &str = r#"
[[policy]]
name = "std"
escalate_after = ["1h"]
[policy.targets.first_response]
normal = "1h"
[policy.targets.resolution]
normal = "1d"
"#;

    const H: i64 = 3_600_000;

    /// A day and a half on a 24x7 calendar: A is answered in time and rated 5; B, a
    /// complaint, is answered late and rated 2, then solved late; C arrives at night and is
    /// never answered.
    fn review(from: Option<&str>) -> Report {
        let events = [
            r#"{"type":"ticket.created","ticket_id":"A","occurred_at":"2026-11-24T09:00:00Z","priority":"normal","channel":"email"}"#,
            r#"{"type":"ticket.created","ticket_id":"B","occurred_at":"2026-11-24T09:00:00Z","priority":"normal","channel":"chat","kind":"complaint","group":"billing"}"#,
            r#"{"type":"reply.sent","ticket_id":"A","occurred_at":"2026-11-24T09:30:00Z","author":"agent","agent":"ana"}"#,
            r#"{"type":"reply.sent","ticket_id":"B","occurred_at":"2026-11-24T11:30:00Z","author":"agent","agent":"bo"}"#,
            r#"{"type":"satisfaction.rated","ticket_id":"A","occurred_at":"2026-11-24T12:00:00Z","score":5}"#,
            r#"{"type":"satisfaction.rated","ticket_id":"B","occurred_at":"2026-11-24T13:00:00Z","score":2}"#,
            r#"{"type":"ticket.created","ticket_id":"C","occurred_at":"2026-11-24T22:30:00Z","priority":"normal","channel":"email"}"#,
            r#"{"type":"ticket.status_changed","ticket_id":"B","occurred_at":"2026-11-25T10:00:00Z","status":"solved"}"#,
        ];
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.ndjson");
        std::fs::write(&input, events.join("\n")).unwrap();
        let rules = crate::config::from_toml(CONFIG).unwrap().rules;
        let opts = Options {
            input: Some(&input),
            from: from.map(|t| parse_rfc3339(t).unwrap()),
            until: parse_rfc3339("2026-11-25T12:00:00Z"),
            time_zone: chrono_tz::UTC,
            progress: false,
        };
        run(rules, None, &opts).unwrap()
    }

    #[test]
    fn indicators_of_a_hand_made_history() {
        let report = review(None);
        let r = &report.reviews[0];
        let all = r.overall();
        let [fr, _, res] = &all.clocks;
        assert_eq!(
            (fr.fulfilled, fr.met, fr.breaches, fr.escalations.clone()),
            (2, 1, 2, vec![2])
        );
        assert_eq!((res.fulfilled, res.met, res.breaches), (1, 0, 2));
        // First responses took 30 min and 2 h 30 min: the median is the first.
        let p50 = fr.times.quantile(0.5).unwrap();
        assert!((p50 - H / 2).abs() <= H / 200, "{p50}");
        assert_eq!((all.tickets, all.complaints), (3, 1));
        let complaint = all.complaint_resolution.quantile(0.5).unwrap();
        assert!((complaint - 25 * H).abs() <= 25 * H / 200, "{complaint}");
        // CSAT 1 of 2; the met first response's rating was 5, the breached one's 2.
        assert_eq!(
            (all.ratings.count, all.ratings.satisfied, all.ratings.score_sum),
            (2, 1, 7)
        );
        let [unknown, met, breached] = all.ratings_by_first_response;
        assert_eq!((unknown.count, met.score_sum, breached.score_sum), (0, 5, 2));

        // Day one ends with all three open and C's first response breached and running; the
        // report's last day (up to 12:00) with A and C open, A's resolution breached.
        let days: Vec<(String, Option<Backlog>)> = r.days.iter().map(|(d, day)| (d.to_string(), day.backlog)).collect();
        let backlog = |open, running| {
            Some(Backlog {
                open,
                breached_running: running,
            })
        };
        assert_eq!(
            days,
            [
                ("2026-11-24".into(), backlog(3, [1, 0, 0])),
                ("2026-11-25".into(), backlog(2, [1, 0, 1]))
            ]
        );
        assert_eq!(r.days.values().next().unwrap().tally.tickets, 3);

        // Replies are credited to their agents with the responses they fulfilled.
        let agent = |name: &str| {
            let a = &r.agents[name];
            (a.public_replies, a.responses[0].0, a.responses[0].1)
        };
        assert_eq!((agent("ana"), agent("bo")), ((1, 1, 1), (1, 1, 0)));

        let list = |l: &[Overrun]| {
            l.iter()
                .map(|o| (o.ticket_id.clone(), o.clock, o.overrun_ms))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(&r.worst_breaches),
            [
                ("B".into(), Clock::FirstResponse, 3 * H / 2),
                ("B".into(), Clock::Resolution, H)
            ]
        );
        assert_eq!(
            list(&r.open_overdue),
            [
                ("C".into(), Clock::FirstResponse, 25 * H / 2),
                ("A".into(), Clock::Resolution, 3 * H)
            ]
        );

        // By attribute: the complaint in chat, group billing; no group for the others.
        assert_eq!(r.by[1]["chat"].complaints, 1);
        assert_eq!((r.by[4]["billing"].tickets, r.by[4][""].tickets), (1, 2));
        assert_eq!(r.by[0]["std"].tickets, 3);
    }

    #[test]
    fn a_period_counts_only_its_own_events_but_runs_the_earlier_ones() {
        let report = review(Some("2026-11-25T00:00:00Z"));
        let all = report.reviews[0].overall();
        // Day two: C's escalation, both resolution breaches, B's late resolution.
        assert_eq!(all.tickets, 0);
        assert_eq!(
            (
                all.clocks[0].fulfilled,
                all.clocks[0].breaches,
                all.clocks[0].escalations.clone()
            ),
            (0, 0, vec![1])
        );
        assert_eq!((all.clocks[2].fulfilled, all.clocks[2].breaches), (1, 2));
        assert_eq!(report.reviews[0].days.len(), 1);
    }
}

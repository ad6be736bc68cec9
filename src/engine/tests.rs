//! One test per rule of SPEC §2–§6, driven through the engine's public surface.

use super::*;
use crate::config::from_toml;
use crate::event::decode;
use crate::policy::Clock;
use crate::time::{Rfc3339, parse_rfc3339};

/// 24x7, warnings and escalations off unless a test asks for them.
const PLAIN: &str = r#"
[[policy]]
name = "std"
[policy.targets.first_response]
urgent = "30m"
high = "1h"
normal = "2h"
[policy.targets.next_response]
high = "1h"
[policy.targets.resolution]
urgent = "2h"
high = "4h"
"#;

struct Harness {
    engine: Engine<u32>,
    out: Outbox<u32>,
    line: u32,
    /// Reasons of dead letters, with the line they came from.
    dead: Vec<(u32, Reason)>,
}

impl Harness {
    fn new(config: &str) -> Self {
        let rules = from_toml(config).unwrap_or_else(|e| panic!("{e}")).rules;
        Harness {
            engine: Engine::new(rules),
            out: Outbox::default(),
            line: 0,
            dead: Vec::new(),
        }
    }

    /// Feeds one event: `ty`, ticket, `HH:MM[:SS]` on 2026-11-24 (a Tuesday) or a full
    /// RFC 3339 instant, and extra JSON fields.
    fn send(&mut self, ty: &str, ticket: &str, time: &str, extra: &str) -> Applied {
        self.line += 1;
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(",{extra}")
        };
        let json = format!(
            r#"{{"type":"{ty}","ticket_id":"{ticket}","occurred_at":"{}"{extra}}}"#,
            instant(time)
        );
        let ev = decode(json.as_bytes(), 65_536).unwrap_or_else(|r| panic!("{json}: {r:?}"));
        let line = self.line;
        let outcome = self.engine.handle(&ev, || line, &mut self.out);
        if let Applied::Rejected(r) = &outcome {
            self.dead.push((line, r.reason));
        }
        outcome
    }

    fn create(&mut self, ticket: &str, time: &str, priority: &str, extra: &str) {
        let extra = format!(
            r#""priority":"{priority}","channel":"email"{}{extra}"#,
            if extra.is_empty() { "" } else { "," }
        );
        assert_eq!(self.send("ticket.created", ticket, time, &extra), Applied::Applied);
    }

    fn reply(&mut self, ticket: &str, time: &str, author: &str) {
        self.send("reply.sent", ticket, time, &format!(r#""author":"{author}""#));
    }

    fn status(&mut self, ticket: &str, time: &str, status: &str) {
        self.send(
            "ticket.status_changed",
            ticket,
            time,
            &format!(r#""status":"{status}""#),
        );
    }

    fn finish(&mut self, until: Option<&str>) {
        self.engine
            .finish(until.map(|t| parse_rfc3339(&instant(t)).unwrap()), &mut self.out);
    }

    /// SLA events emitted since the last call, one short line each.
    fn take(&mut self) -> Vec<String> {
        for d in self.out.dead.drain(..) {
            self.dead.push((d.payload, d.rejection.reason));
        }
        self.out.sla.drain(..).map(|e| show(&e)).collect()
    }
}

fn instant(time: &str) -> String {
    match time.len() {
        5 => format!("2026-11-24T{time}:00Z"),
        8 | 12 => format!("2026-11-24T{time}Z"),
        _ => time.to_string(),
    }
}

/// `T1 first_response#1 breached @10:00 elapsed=60m [met]`.
fn show(e: &SlaEvent) -> String {
    let at = Rfc3339(e.at).to_string();
    let at = if at.starts_with("2026-11-24") {
        at[11..19].trim_end_matches(":00").to_string()
    } else {
        at
    };
    let detail = match e.detail {
        Detail::None => String::new(),
        Detail::Fraction(f) => format!(" f={f}"),
        Detail::Level(l) => format!(" level={l}"),
        Detail::Outcome(o) => format!(" {}", o.as_str()),
    };
    let elapsed = e.elapsed_ms / 60_000;
    format!(
        "{} {}#{} {} @{at} elapsed={elapsed}m{detail}",
        e.ticket_id,
        e.clock,
        e.cycle,
        &e.kind.as_str()[4..]
    )
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- §3 clocks -------------------------------------------------------------------------

#[test]
fn first_response_starts_at_creation_and_public_agent_reply_fulfils_it() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "09:40", "agent");
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 fulfilled @09:40 elapsed=40m met"])
    );
}

#[test]
fn ticket_opened_by_agent_has_no_first_response_and_counts_as_replied() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.reply("T1", "09:10", "customer");
    h.reply("T1", "09:30", "agent");
    assert_eq!(
        h.take(),
        lines(&["T1 next_response#1 fulfilled @09:30 elapsed=20m met"])
    );
}

#[test]
fn next_response_starts_at_oldest_unanswered() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "09:05", "agent");
    h.reply("T1", "09:10", "customer");
    h.reply("T1", "09:20", "customer");
    h.reply("T1", "09:50", "agent");
    h.reply("T1", "10:00", "customer");
    h.reply("T1", "10:05", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 fulfilled @09:05 elapsed=5m met",
            "T1 next_response#1 fulfilled @09:50 elapsed=40m met",
            "T1 next_response#2 fulfilled @10:05 elapsed=5m met",
        ])
    );
}

#[test]
fn customer_reply_before_any_agent_reply_starts_no_next_response() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "09:10", "customer");
    h.reply("T1", "09:20", "agent");
    h.finish(Some("2026-11-25T09:00:00Z"));
    let out = h.take();
    assert_eq!(out[0], "T1 first_response#1 fulfilled @09:20 elapsed=20m met");
    assert!(out.iter().all(|l| !l.contains("next_response")), "{out:?}");
}

#[test]
fn non_public_replies_start_and_fulfil_nothing() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.send("reply.sent", "T1", "09:10", r#""author":"agent","public":false"#);
    h.reply("T1", "09:20", "agent");
    h.send("reply.sent", "T1", "09:30", r#""author":"customer","public":false"#);
    h.finish(Some("12:00"));
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 fulfilled @09:20 elapsed=20m met"])
    );
}

#[test]
fn resolution_is_fulfilled_by_solved_closed_or_complaint_resolved() {
    let mut h = Harness::new(PLAIN);
    for (t, how) in [("A", "solved"), ("B", "closed")] {
        h.create(t, "09:00", "high", r#""opened_by":"agent""#);
        h.status(t, "10:00", how);
    }
    h.create("C", "09:00", "high", r#""opened_by":"agent","kind":"complaint""#);
    h.send("complaint.resolved", "C", "11:00", r#""resolution":"refund""#);
    assert_eq!(
        h.take(),
        lines(&[
            "A resolution#1 fulfilled @10 elapsed=60m met",
            "B resolution#1 fulfilled @10 elapsed=60m met",
            "C resolution#1 fulfilled @11 elapsed=120m met",
        ])
    );
    assert_eq!(h.engine.ticket("C").unwrap().status, Status::Solved);
}

#[test]
fn solving_cancels_running_response_cycles() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.status("T1", "09:30", "solved");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 cancelled @09:30 elapsed=30m",
            "T1 resolution#1 fulfilled @09:30 elapsed=30m met",
        ])
    );
}

#[test]
fn pause_statuses_pause_the_resolution_clock() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "10:00", "pending");
    h.status("T1", "12:00", "open");
    h.status("T1", "13:00", "on_hold");
    h.status("T1", "14:00", "open");
    h.status("T1", "15:00", "solved");
    assert_eq!(h.take(), lines(&["T1 resolution#1 fulfilled @15 elapsed=180m met"]));
}

#[test]
fn pause_at_deadline_still_breaches() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", r#""opened_by":"agent""#);
    // Target 2h: the deadline 11:00 is reached exactly when the pause starts.
    h.status("T1", "11:00", "pending");
    h.status("T1", "11:00:01", "open");
    let out = h.take();
    assert_eq!(out, lines(&["T1 resolution#1 breached @11 elapsed=120m"]));
}

#[test]
fn pause_moves_alerts_that_lie_after_it() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", r#""opened_by":"agent""#);
    h.status("T1", "10:00", "pending");
    h.status("T1", "10:30", "open");
    h.finish(Some("12:00"));
    assert_eq!(h.take(), lines(&["T1 resolution#1 breached @11:30 elapsed=120m"]));
}

#[test]
fn paused_cycle_reports_no_deadline_before_reaching_target() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.status("T1", "09:10", "pending");
    h.status("T1", "10:00", "solved");
    let ev = h.out.sla.iter().find(|e| e.clock == Clock::Resolution).unwrap();
    assert_eq!(
        (ev.kind, ev.deadline, ev.elapsed_ms),
        (SlaKind::Fulfilled, None, 600_000)
    );
}

#[test]
fn resume_from_pause_is_not_a_reopen() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "09:30", "pending");
    h.status("T1", "10:00", "new");
    h.status("T1", "10:30", "solved");
    assert_eq!(h.take(), lines(&["T1 resolution#1 fulfilled @10:30 elapsed=60m met"]));
}

#[test]
fn reopen_from_solved_starts_a_new_resolution_cycle() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "10:00", "solved");
    h.status("T1", "11:00", "pending");
    h.status("T1", "12:00", "open");
    h.status("T1", "12:30", "solved");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 resolution#1 fulfilled @10 elapsed=60m met",
            "T1 resolution#2 fulfilled @12:30 elapsed=30m met"
        ])
    );
}

#[test]
fn customer_reply_on_solved_ticket_reopens_it() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "09:10", "agent");
    h.status("T1", "10:00", "solved");
    h.reply("T1", "11:00", "customer");
    assert_eq!(h.engine.ticket("T1").unwrap().status, Status::Open);
    h.reply("T1", "11:20", "agent");
    h.status("T1", "11:30", "solved");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 fulfilled @09:10 elapsed=10m met",
            "T1 resolution#1 fulfilled @10 elapsed=60m met",
            "T1 next_response#1 fulfilled @11:20 elapsed=20m met",
            "T1 resolution#2 fulfilled @11:30 elapsed=30m met",
        ])
    );
}

#[test]
fn a_rating_changes_no_clock_and_counts_on_a_closed_ticket_too() {
    let with_rating = |rate: bool| {
        let mut h = Harness::new(PLAIN);
        h.create("T1", "09:00", "high", "");
        if rate {
            assert_eq!(
                h.send("satisfaction.rated", "T1", "09:30", r#""score":1,"event_id":"r1""#),
                Applied::Applied
            );
            assert_eq!(
                h.send("satisfaction.rated", "T1", "09:31", r#""score":1,"event_id":"r1""#),
                Applied::Duplicate
            );
        }
        // A late reply: applied at its own time, the rating moved nothing forward.
        h.reply("T1", "09:20", "agent");
        h.status("T1", "12:00", "closed");
        if rate {
            assert_eq!(
                h.send("satisfaction.rated", "T1", "12:30", r#""score":5"#),
                Applied::Applied
            );
        }
        h.take()
    };
    assert_eq!(with_rating(true), with_rating(false));
}

#[test]
fn closed_is_final_and_later_events_are_ignored_and_counted() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "10:00", "closed");
    h.take();
    assert_eq!(
        h.send("reply.sent", "T1", "10:10", r#""author":"customer""#),
        Applied::Ignored
    );
    assert_eq!(
        h.send("ticket.status_changed", "T1", "10:20", r#""status":"open""#),
        Applied::Ignored
    );
    assert_eq!(h.engine.stats.ignored, 2);
    let again = h.send("ticket.created", "T1", "10:30", r#""priority":"high","channel":"chat""#);
    assert!(matches!(again, Applied::Rejected(r) if r.reason == Reason::DuplicateTicket));
    assert!(h.take().is_empty());
}

#[test]
fn fulfilment_after_emitted_breach_is_breached() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.reply("T1", "09:45", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @09:30 elapsed=30m",
            "T1 first_response#1 fulfilled @09:45 elapsed=45m breached",
        ])
    );
}

#[test]
fn deadline_at_end_of_a_business_window_is_that_windows_end() {
    let config = r#"
        [[calendar]]
        name = "office"
        timezone = "UTC"
        [calendar.hours]
        tue = ["09:00-12:00", "13:00-17:00"]
        wed = ["09:00-17:00"]
        [[policy]]
        name = "office"
        calendar = "office"
        warn_at = [0.5]
        [policy.targets.first_response]
        high = "3h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", "");
    h.create("T2", "10:00", "high", "");
    h.reply("T1", "12:00", "agent");
    h.finish(Some("2026-11-25T12:00:00Z"));
    let out = h.take();
    assert_eq!(
        out,
        lines(&[
            "T1 first_response#1 warning @10:30 elapsed=90m f=0.5",
            "T2 first_response#1 warning @11:30 elapsed=90m f=0.5",
            "T1 first_response#1 fulfilled @12 elapsed=180m met",
            "T2 first_response#1 breached @14 elapsed=180m",
        ])
    );
    // T1's deadline is 12:00 sharp (window end), not 13:00 (next window's start): a reply
    // in the lunch break would have been late.
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "12:30", "agent");
    assert_eq!(
        h.take()[1..],
        lines(&[
            "T1 first_response#1 breached @12 elapsed=180m",
            "T1 first_response#1 fulfilled @12:30 elapsed=180m breached"
        ])
    );
}

#[test]
fn warnings_fire_at_floor_of_fraction_times_target() {
    let config = "[[policy]]\nname = \"p\"\nwarn_at = [0.29]\n[policy.targets.first_response]\nhigh = \"100s\"\n";
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", "");
    h.finish(Some("10:00"));
    let ev = &h.out.sla[0];
    // floor(0.29 × 100000) = 28999 in IEEE arithmetic.
    assert_eq!(
        (
            ev.kind,
            ev.elapsed_ms,
            ev.at - parse_rfc3339("2026-11-24T09:00:00Z").unwrap()
        ),
        (SlaKind::Warning, 28_999, 28_999)
    );
}

#[test]
fn escalations_follow_the_deadline_in_business_time() {
    let config = r#"
        [[policy]]
        name = "p"
        escalate_after = ["30m", "2h"]
        [policy.targets.first_response]
        high = "1h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", "");
    h.reply("T1", "11:00", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @10 elapsed=60m",
            "T1 first_response#1 escalated @10:30 elapsed=90m level=1",
            "T1 first_response#1 fulfilled @11 elapsed=120m breached",
        ])
    );
}

// ---- §4 policies ------------------------------------------------------------------------

#[test]
fn unmatched_ticket_has_no_targets_and_emits_nothing() {
    let mut h = Harness::new(
        "[[policy]]\nname = \"chat\"\n[policy.match]\nchannel = [\"chat\"]\n[policy.targets.first_response]\nhigh = \"1m\"\n",
    );
    h.create("T1", "09:00", "high", "");
    h.finish(Some("12:00"));
    assert!(h.take().is_empty());
    assert_eq!(h.engine.stats.unmatched, 1);
}

#[test]
fn clock_without_target_has_no_deadline_and_no_events() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "low", "");
    h.reply("T1", "09:10", "agent");
    h.finish(Some("2026-11-30T00:00:00Z"));
    assert!(h.take().is_empty());
}

#[test]
fn priority_raise_breaches_retroactively() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "normal", "");
    h.send("ticket.updated", "T1", "09:50", r#""priority":"urgent""#);
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
}

#[test]
fn recomputed_warnings_below_the_frontier_are_skipped() {
    let config = r#"
        [[policy]]
        name = "p"
        warn_at = [0.5]
        escalate_after = ["10m"]
        [policy.targets.first_response]
        normal = "2h"
        urgent = "30m"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "normal", "");
    h.send("ticket.updated", "T1", "09:50", r#""priority":"urgent""#);
    h.finish(Some("12:00"));
    // The 09:15 warning and the 09:40 escalation lie below the frontier: skipped.
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
}

/// The issue's example: `normal` (24h) raised to `high` (8h) 17 hours in, and back two minutes
/// later. The breach stands; the `high` alerts skipped at 17:00 never fire, and the `normal`
/// ones the second re-evaluation puts above the frontier are due again (0.5 fired at 12:00).
#[test]
fn skipped_alerts_come_back_when_a_priority_change_moves_them_above_the_frontier() {
    let config = r#"
        [[policy]]
        name = "p"
        warn_at = [0.5, 0.75]
        escalate_after = ["30m", "2h"]
        [policy.targets.resolution]
        high = "8h"
        normal = "24h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "00:00", "normal", "");
    h.send("ticket.updated", "T1", "17:00", r#""priority":"high""#);
    assert_eq!(
        h.take(),
        lines(&[
            "T1 resolution#1 warning @12 elapsed=720m f=0.5",
            "T1 resolution#1 breached @08 elapsed=480m"
        ])
    );
    h.send("ticket.updated", "T1", "17:02", r#""priority":"normal""#);
    h.finish(Some("2026-11-26T00:00:00Z"));
    assert_eq!(
        h.take(),
        lines(&[
            "T1 resolution#1 warning @18 elapsed=1080m f=0.75",
            "T1 resolution#1 escalated @2026-11-25T00:30:00.000Z elapsed=1470m level=1",
            "T1 resolution#1 escalated @2026-11-25T02:00:00.000Z elapsed=1560m level=2",
        ])
    );
}

/// The same across a change of policy (by group), for a warning and an escalation: skipped
/// under `fast`, due again under `slow`, skipped again under `fast` — never emitted twice.
#[test]
fn skipped_alerts_come_back_when_a_policy_change_moves_them_above_the_frontier() {
    let config = r#"
        [[policy]]
        name = "fast"
        warn_at = [0.5]
        escalate_after = ["10m"]
        [policy.match]
        group = ["vip"]
        [policy.targets.first_response]
        normal = "1h"
        [[policy]]
        name = "slow"
        warn_at = [0.5]
        escalate_after = ["10m"]
        [policy.targets.first_response]
        normal = "4h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "00:00", "normal", "");
    h.send("ticket.updated", "T1", "01:30", r#""group":"vip""#);
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @01 elapsed=60m"]));
    h.send("ticket.updated", "T1", "01:35", r#""group":null"#);
    h.finish(Some("03:00"));
    assert_eq!(h.take(), lines(&["T1 first_response#1 warning @02 elapsed=120m f=0.5"]));
    // Back under `fast`: its escalation (01:10) is below the frontier again, skipped again;
    // under `slow` once more it is due at 04:10, its warning is never repeated.
    h.send("ticket.updated", "T1", "03:00", r#""group":"vip""#);
    h.send("ticket.updated", "T1", "03:05", r#""group":null"#);
    h.finish(Some("05:00"));
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 escalated @04:10 elapsed=250m level=1"])
    );
}

/// The other direction: an alert ahead is skipped when a re-evaluation places it below the
/// frontier, and stays unfired while the frontier passes it.
#[test]
fn a_pending_alert_placed_below_the_frontier_is_skipped_until_the_next_reevaluation() {
    let config = r#"
        [[policy]]
        name = "p"
        warn_at = [0.5]
        escalate_after = ["15m"]
        [policy.targets.first_response]
        normal = "2h"
        urgent = "30m"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "00:00", "normal", "");
    h.send("ticket.updated", "T1", "00:50", r#""priority":"urgent""#);
    h.finish(Some("00:55"));
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @00:30 elapsed=30m"]));
    // The 00:45 escalation was skipped at 00:50; a change that keeps it below the frontier
    // keeps it skipped.
    h.send("ticket.updated", "T1", "00:55", r#""channel":"chat""#);
    h.finish(Some("01:00"));
    assert!(h.take().is_empty());
    // Back to `normal`: the warning (01:00, at the frontier) and the escalation lie ahead.
    h.send("ticket.updated", "T1", "01:00", r#""priority":"normal""#);
    h.finish(Some("04:00"));
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 warning @01 elapsed=60m f=0.5",
            "T1 first_response#1 escalated @02:15 elapsed=135m level=1",
        ])
    );
}

#[test]
fn each_alert_is_emitted_at_most_once_across_reevaluations() {
    let config = r#"
        [[policy]]
        name = "p"
        warn_at = [0.5]
        [policy.targets.first_response]
        urgent = "30m"
        low = "4h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "urgent", "");
    h.send("ticket.updated", "T1", "09:20", r#""priority":"low""#);
    h.send("ticket.updated", "T1", "09:25", r#""priority":"urgent""#);
    h.finish(Some("12:00"));
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 warning @09:15 elapsed=15m f=0.5",
            "T1 first_response#1 breached @09:30 elapsed=30m"
        ])
    );
}

#[test]
fn alerts_emitted_before_a_reevaluation_stay() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.send("ticket.updated", "T1", "09:40", r#""priority":"normal""#);
    h.reply("T1", "09:50", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @09:30 elapsed=30m",
            "T1 first_response#1 fulfilled @09:50 elapsed=50m breached"
        ])
    );
}

#[test]
fn calendar_change_recomputes_the_deadline() {
    let config = r#"
        [[calendar]]
        name = "office"
        timezone = "UTC"
        [calendar.hours]
        tue = ["09:00-10:00"]
        wed = ["09:00-10:00"]
        [[policy]]
        name = "vip"
        [policy.match]
        customer_tier = ["gold"]
        [policy.targets.first_response]
        high = "2h"
        [[policy]]
        name = "office"
        calendar = "office"
        [policy.targets.first_response]
        high = "2h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", "");
    h.send("ticket.updated", "T1", "12:00", r#""customer_tier":"gold""#);
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @11 elapsed=120m"]));
    assert_eq!(h.engine.ticket("T1").unwrap().policy(), Some(0));
}

#[test]
fn pause_statuses_change_applies_from_the_change_on() {
    let config = r#"
        [[policy]]
        name = "waiting-pauses"
        [policy.match]
        group = ["a"]
        [policy.targets.resolution]
        high = "4h"
        [[policy]]
        name = "never-pauses"
        pause_statuses = []
        [policy.targets.resolution]
        high = "4h"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "09:00", "high", r#""group":"a","opened_by":"agent""#);
    h.status("T1", "10:00", "pending");
    // Paused 10:00–11:00; the new policy does not pause, so time counts again from 11:00.
    h.send("ticket.updated", "T1", "11:00", r#""group":"b""#);
    h.status("T1", "12:00", "solved");
    assert_eq!(h.take(), lines(&["T1 resolution#1 fulfilled @12 elapsed=120m met"]));
}

// ---- §6 frontier ------------------------------------------------------------------------

#[test]
fn alert_is_emitted_only_once_the_frontier_passes_its_instant() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.create("T2", "09:30", "high", "");
    assert!(h.take().is_empty(), "F = 09:30 is not past the 09:30 deadline");
    h.create("T3", "09:30:00.001", "high", "");
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
}

#[test]
fn fulfilment_at_the_deadline_is_met() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.reply("T1", "09:30", "agent");
    h.finish(Some("10:00"));
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 fulfilled @09:30 elapsed=30m met"])
    );
}

#[test]
fn alerts_at_one_instant_are_ordered_by_ticket_then_clock() {
    let mut h = Harness::new(PLAIN);
    h.create("B", "09:00", "urgent", "");
    h.create("A", "09:00", "urgent", r#""opened_by":"agent""#);
    h.reply("A", "09:00", "customer");
    h.send("ticket.updated", "A", "09:00", r#""priority":"high""#);
    h.send("ticket.updated", "A", "09:00", r#""priority":"urgent""#);
    h.finish(Some("12:00"));
    assert_eq!(
        h.take(),
        lines(&[
            "B first_response#1 breached @09:30 elapsed=30m",
            "A resolution#1 breached @11 elapsed=120m",
            "B resolution#1 breached @11 elapsed=120m",
        ])
    );
}

#[test]
fn allowed_lateness_holds_the_frontier_back() {
    let config = format!("[engine]\nallowed_lateness = \"10m\"\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "09:00", "urgent", "");
    h.create("T2", "09:35", "high", "");
    assert!(h.take().is_empty(), "F = 09:25");
    h.create("T3", "09:40:01", "high", "");
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
}

#[test]
fn late_reply_retracts_breach() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.create("T2", "10:00", "high", "");
    h.reply("T1", "09:20", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @09:30 elapsed=30m",
            "T1 first_response#1 breach_retracted @09:20 elapsed=20m",
            "T1 first_response#1 fulfilled @09:20 elapsed=20m met",
        ])
    );
}

#[test]
fn late_fulfilment_after_the_deadline_stays_breached() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.create("T2", "10:00", "high", "");
    h.reply("T1", "09:40", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @09:30 elapsed=30m",
            "T1 first_response#1 fulfilled @09:40 elapsed=40m breached"
        ])
    );
}

#[test]
fn late_event_that_fulfils_nothing_applies_at_the_tickets_latest_time() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "10:00", "open");
    // Late: 09:30 < F = 10:00. The pause starts at 10:00, the ticket's latest time.
    h.status("T1", "09:30", "pending");
    h.status("T1", "11:00", "open");
    h.status("T1", "11:30", "solved");
    assert_eq!(h.take(), lines(&["T1 resolution#1 fulfilled @11:30 elapsed=90m met"]));
}

#[test]
fn with_lateness_a_cycle_ending_after_its_deadline_emits_the_breach_first() {
    let config = format!("[engine]\nallowed_lateness = \"1h\"\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "09:00", "urgent", "");
    h.reply("T1", "09:45", "agent");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 breached @09:30 elapsed=30m",
            "T1 first_response#1 fulfilled @09:45 elapsed=45m breached"
        ])
    );
}

#[test]
fn replay_end_moves_the_frontier_to_until_or_the_last_event() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "urgent", "");
    h.create("T2", "09:31", "urgent", "");
    h.finish(None);
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
    h.finish(Some("10:02"));
    assert_eq!(h.take(), lines(&["T2 first_response#1 breached @10:01 elapsed=30m"]));
}

// ---- §2 input ---------------------------------------------------------------------------

#[test]
fn repeated_event_id_on_a_ticket_is_a_duplicate() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""event_id":"e1""#);
    let reply = r#""author":"customer","event_id":"e2""#;
    assert_eq!(h.send("reply.sent", "T1", "09:05", reply), Applied::Applied);
    assert_eq!(h.send("reply.sent", "T1", "09:05", reply), Applied::Duplicate);
    assert_eq!(
        h.send(
            "ticket.created",
            "T1",
            "09:00",
            r#""priority":"high","channel":"email","event_id":"e1""#
        ),
        Applied::Duplicate
    );
    assert_eq!(
        h.send("reply.sent", "T2", "09:05", reply),
        Applied::Held,
        "other tickets may reuse ids"
    );
    assert_eq!(h.engine.stats.duplicates, 2);
}

#[test]
fn events_before_their_ticket_are_held_then_applied() {
    let mut h = Harness::new(PLAIN);
    assert_eq!(
        h.send("reply.sent", "T1", "09:10", r#""author":"agent""#),
        Applied::Held
    );
    h.create("T1", "09:00", "high", "");
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 fulfilled @09:10 elapsed=10m met"])
    );
    assert_eq!(h.engine.held_events(), 0);
}

#[test]
fn orphans_expire_as_unknown_ticket_after_orphan_hold() {
    let mut h = Harness::new(PLAIN);
    h.send("reply.sent", "T9", "09:00", r#""author":"agent""#);
    h.create("T1", "09:01", "high", "");
    h.take();
    assert!(h.dead.is_empty(), "held for 1m of frontier time");
    h.create("T2", "09:01:00.001", "high", "");
    h.take();
    assert_eq!(h.dead, vec![(1, Reason::UnknownTicket)]);
}

#[test]
fn orphans_still_held_at_end_of_input_are_dead_lettered() {
    let mut h = Harness::new(PLAIN);
    h.send("reply.sent", "T9", "09:00", r#""author":"agent""#);
    h.finish(None);
    h.take();
    assert_eq!(h.dead, vec![(1, Reason::UnknownTicket)]);
}

#[test]
fn orphan_buffer_is_bounded() {
    let config = format!("[engine]\nmax_orphans = 1\n{PLAIN}");
    let mut h = Harness::new(&config);
    assert_eq!(h.send("reply.sent", "A", "09:00", r#""author":"agent""#), Applied::Held);
    assert!(
        matches!(h.send("reply.sent", "B", "09:00", r#""author":"agent""#), Applied::Rejected(r) if r.reason == Reason::UnknownTicket)
    );
}

#[test]
fn orphan_buffer_is_bounded_in_bytes() {
    // Each reply below is 91 bytes of input: two fit in 200, the third does not.
    let config = format!("[engine]\nmax_event_bytes = 100\nmax_orphan_bytes = 200\n{PLAIN}");
    let mut h = Harness::new(&config);
    for ticket in ["A", "B"] {
        assert_eq!(
            h.send("reply.sent", ticket, "09:00", r#""author":"agent""#),
            Applied::Held
        );
    }
    let full = h.send("reply.sent", "C", "09:00", r#""author":"agent""#);
    assert!(
        matches!(&full, Applied::Rejected(r) if r.reason == Reason::UnknownTicket && r.detail.contains("182 bytes")),
        "{full:?}"
    );
    h.create("A", "09:00:01", "high", "");
    assert_eq!(
        h.send("reply.sent", "C", "09:00:01", r#""author":"agent""#),
        Applied::Held,
        "A's reply left the buffer"
    );
}

#[test]
fn second_ticket_created_is_duplicate_ticket() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", "");
    let again = h.send("ticket.created", "T1", "09:05", r#""priority":"high","channel":"chat""#);
    assert!(matches!(again, Applied::Rejected(r) if r.reason == Reason::DuplicateTicket));
}

#[test]
fn ticket_limit_rejects_with_capacity() {
    let config = format!("[engine]\nmax_tickets = 1\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "09:00", "high", "");
    let more = h.send("ticket.created", "T2", "09:05", r#""priority":"high","channel":"chat""#);
    assert!(matches!(more, Applied::Rejected(r) if r.reason == Reason::Capacity));
}

#[test]
fn solved_tickets_are_forgotten_after_retention() {
    let config = format!("[engine]\nticket_retention = \"1h\"\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "09:00", "high", r#""opened_by":"agent""#);
    h.status("T1", "09:10", "solved");
    h.create("T2", "10:10", "high", "");
    assert!(h.engine.ticket("T1").is_some());
    h.create("T3", "10:10:00.001", "high", "");
    assert!(h.engine.ticket("T1").is_none());
    assert_eq!(h.engine.stats.evicted, 1);
}

#[test]
fn with_lateness_a_priority_change_after_the_deadline_keeps_the_breach() {
    let config = format!("[engine]\nallowed_lateness = \"1h\"\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "09:00", "urgent", "");
    // F = 08:50 when the change applies: the 09:30 deadline had already passed in T1's time.
    h.send("ticket.updated", "T1", "09:50", r#""priority":"normal""#);
    h.finish(Some("10:00"));
    assert_eq!(h.take(), lines(&["T1 first_response#1 breached @09:30 elapsed=30m"]));
}

#[test]
fn complaint_resolved_cancels_responses_then_fulfils_resolution() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""kind":"complaint""#);
    h.send("complaint.resolved", "T1", "09:20", "");
    assert_eq!(
        h.take(),
        lines(&[
            "T1 first_response#1 cancelled @09:20 elapsed=20m",
            "T1 resolution#1 fulfilled @09:20 elapsed=20m met"
        ])
    );
    assert_eq!(h.engine.ticket("T1").unwrap().status, Status::Solved);
}

#[test]
fn new_in_pause_statuses_pauses_from_creation() {
    let config = "[[policy]]\nname = \"p\"\npause_statuses = [\"new\"]\n[policy.targets.resolution]\nhigh = \"1h\"\n";
    let mut h = Harness::new(config);
    h.create("T1", "10:00", "high", "");
    h.status("T1", "10:30", "open");
    h.status("T1", "11:00", "solved");
    assert_eq!(h.take(), lines(&["T1 resolution#1 fulfilled @11 elapsed=30m met"]));
}

#[test]
fn an_event_behind_its_tickets_time_but_not_late_ends_cycles_at_ticket_time() {
    let config = format!("[engine]\nallowed_lateness = \"30m\"\n{PLAIN}");
    let mut h = Harness::new(&config);
    h.create("T1", "10:00", "high", "");
    h.send("ticket.updated", "T1", "10:20", r#""group":"g""#);
    // F = 09:50: not late, so applied at T1's time, 10:20.
    h.reply("T1", "10:10", "agent");
    assert_eq!(
        h.take(),
        lines(&["T1 first_response#1 fulfilled @10:20 elapsed=20m met"])
    );
}

#[test]
fn alerts_due_before_a_change_are_emitted_in_instant_order() {
    let config = r#"
        [engine]
        allowed_lateness = "30m"
        [[policy]]
        name = "p"
        [policy.targets.first_response]
        high = "10m"
        [policy.targets.resolution]
        high = "5m"
    "#;
    let mut h = Harness::new(config);
    h.create("T1", "10:00", "high", "");
    h.send("ticket.updated", "T1", "10:20", r#""group":"g""#);
    assert_eq!(
        h.take(),
        lines(&[
            "T1 resolution#1 breached @10:05 elapsed=5m",
            "T1 first_response#1 breached @10:10 elapsed=10m"
        ])
    );
}

#[test]
fn a_rejected_events_id_is_not_remembered() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "09:00", "high", r#""event_id":"e1""#);
    let bad = r#""priority":"high","channel":"chat","event_id":"x1""#;
    assert!(matches!(
        h.send("ticket.created", "T1", "09:01", bad),
        Applied::Rejected(_)
    ));
    assert!(
        matches!(h.send("ticket.created", "T1", "09:02", bad), Applied::Rejected(_)),
        "a retry is rejected again"
    );
}

/// The read-only view: each ticket's current cycles at the frontier, and the gauge summary.
#[test]
fn views_report_cycles_and_states_at_the_frontier() {
    let mut h = Harness::new(PLAIN);
    h.create("T1", "10:00", "high", "");
    h.create("T2", "10:00", "urgent", "");
    h.reply("T2", "10:10", "agent");
    h.create("T3", "08:00", "normal", r#""kind":"complaint""#);
    h.status("T3", "08:30", "pending");
    let at = |t: &str| parse_rfc3339(&instant(t)).unwrap();
    h.engine.advance(at("10:45"), &mut h.out);
    let view = |id: &str| {
        let e = &h.engine;
        e.cycles(e.ticket(id).unwrap())
            .map(|c| {
                let deadline = c
                    .deadline
                    .map_or("-".into(), |d| Rfc3339(d).to_string()[11..16].to_string());
                let elapsed = c.elapsed_ms.map_or("-".into(), |e| format!("{}m", e / 60_000));
                format!(
                    "{}#{} {} due {deadline} elapsed {elapsed}",
                    c.clock,
                    c.number,
                    c.state.as_str()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        view("T1"),
        [
            "first_response#1 on_track due 11:00 elapsed 45m",
            "resolution#1 on_track due 14:00 elapsed 45m"
        ]
    );
    assert_eq!(
        view("T2"),
        [
            "first_response#1 met due 10:30 elapsed -",
            "resolution#1 on_track due 12:00 elapsed 45m"
        ]
    );
    // PLAIN has no normal resolution target; T3's first response breached at 10:00.
    assert_eq!(view("T3"), ["first_response#1 breached due 10:00 elapsed 165m"]);

    let mut s = Summary::default();
    h.engine.summarize(0..h.engine.slots(), &mut s);
    assert_eq!((s.open, s.complaints_open), (3, 1));
    let fr = Clock::FirstResponse as usize;
    let res = Clock::Resolution as usize;
    assert_eq!(s.running[fr], [1, 0, 1, 0], "T1 on track, T3 breached");
    assert_eq!(s.running[res], [2, 0, 0, 0]);
    assert_eq!(s.at_risk[fr], [1, 1], "T1 due 11:00: within 15m and 1h of 10:45");
    assert_eq!(s.at_risk[res], [0, 0]);
}

//! The checks behind the fuzz targets, one function per target. `tests/properties.rs`
//! includes this file too, so plain `cargo test` replays every checked-in corpus and crash
//! input through the same checks.
//!
//! - [`event`]: the decoder on arbitrary bytes.
//! - [`config`]: the loader and validation on arbitrary TOML text; an accepted configuration
//!   then drives an engine through a short fixed event stream.
//! - [`engine`]: the bytes read as a program of ticket events (a few tickets, every event type,
//!   steps forward and back in time, repeated event ids, orphans, idle advances) under a fixed
//!   configuration, decoded and applied as replay does, twice through fresh engines.
//!
//! A check panics when an invariant fails; the fuzzer reports that as a crash.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use slawatch::calendar::{RANGE_END, RANGE_START};
use slawatch::config::from_toml;
use slawatch::engine::{Applied, DeadLetter, Detail, Engine, Outbox, Outcome, SlaKind};
use slawatch::event::{Body, MAX_EVENT_ID, MAX_TICKET_ID, Reason, decode};
use slawatch::policy::{Clock, Rules};
use slawatch::time::{Instant, Rfc3339};

/// The decoder: no panic; an accepted event respects the field bounds; the size limit is the
/// only thing that depends on `max_bytes`.
pub fn event(data: &[u8]) {
    const MAX: usize = 1024;
    let decoded = decode(data, MAX);
    match &decoded {
        Ok(ev) => {
            assert!((1..=MAX_TICKET_ID).contains(&ev.ticket_id.len()), "ticket_id length");
            assert!((RANGE_START..RANGE_END).contains(&ev.occurred_at), "occurred_at range");
            assert!(
                ev.event_id.as_ref().is_none_or(|id| id.len() <= MAX_EVENT_ID),
                "event_id length"
            );
        }
        Err(r) => assert_eq!(r.reason == Reason::TooLarge, data.len() > MAX, "{r:?}"),
    }
    if data.len() <= MAX {
        assert_eq!(decoded, decode(data, usize::MAX), "the limit changed the result");
    }
}

/// The loader and validation: no panic on any text; an accepted configuration runs an engine
/// through [`CONFIG_EVENTS`] with the invariants of [`engine`].
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match from_toml(text) {
        Ok(loaded) => program(&loaded.rules, CONFIG_EVENTS, true),
        Err(e) => assert!(!e.to_string().is_empty(), "an error without a message"),
    }
}

/// The engine under [`FIXED_CONFIG`]: the first byte picks `allowed_lateness` and whether the
/// end of input moves the frontier far ahead; the rest is the [`program`].
pub fn engine(data: &[u8]) {
    let Some((&header, bytes)) = data.split_first() else {
        return;
    };
    program(&fixed_rules()[usize::from(header & 3)], bytes, header & 4 != 0);
}

/// The engine on a program of events (read by [`Program`]): no panic, the invariants of
/// [`Invariants`], and the same outputs from a second, fresh engine.
pub fn program(rules: &Arc<Rules>, bytes: &[u8], far_end: bool) {
    let first = run(rules, bytes, far_end);
    let second = run(rules, bytes, far_end);
    assert!(first == second, "a re-run gave other outputs");
}

/// An engine program exercising every event type, for configurations from [`config`].
const CONFIG_EVENTS: &[u8] = &[
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // T0 created: urgent, email
    0x08, 0x00, 0x02, 0xa5, 0xc9, 0x83, // T1 created: high, phone, complaint, open, group, tier, tags
    0x0a, 0x07, 0x03, 0x02, // +1h: T1 pending
    0x01, 0x08, 0x04, 0x3f, 0x9d, 0x03, // +2h: T0 updated, every attribute
    0x04, 0x87, 0x05, 0x00, // +1h: T0 agent reply
    0x0d, 0x05, 0x06, 0x01, // +29m: T1 customer reply
    0x14, 0x0b, 0x07, 0x00, // +17h: T2 agent reply, held (no ticket yet)
    0x10, 0x01, 0x08, 0x00, 0x00, 0x00, // +1s: T2 created, the reply released
    0x0e, 0x0d, 0x09, // +3d: T1 complaint resolved
    0x0a, 0x02, 0x0a, 0x01, // +1m: T1 reopened
    0x07, 0x0c, // +1d: an idle advance
];

/// The engine target's configuration: several calendars (two time zones, DST changes and
/// holidays near the programs' start), policies with and without warnings, escalations and
/// targets per priority, no catch-all policy, and small limits so that capacity, orphan
/// expiry and retention are reached.
const FIXED_CONFIG: &str = r#"
[engine]
allowed_lateness = "LATENESS"
orphan_hold = "10m"
max_orphans = 3
max_tickets = 4
max_event_bytes = 1024
ticket_retention = "1d"

[[calendar]]
name = "office"
timezone = "Europe/Berlin"
holidays = ["2026-10-26", "2026-11-02"]
[calendar.hours]
mon = ["09:00-12:30", "13:30-17:00"]
tue = ["09:00-12:30", "13:30-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-15:00"]
sat = ["10:00-10:30"]

[[calendar]]
name = "night"
timezone = "America/New_York"
holidays = ["2026-10-30"]
[calendar.hours]
sun = ["00:30-03:00", "22:00-24:00"]
mon = ["00:00-02:00", "22:00-24:00"]
fri = ["01:00-02:00"]

[[policy]]
name = "complaints"
warn_at = [0.5]
escalate_after = ["30m", "2h"]
pause_statuses = ["on_hold"]
[policy.match]
kind = ["complaint"]
[policy.targets.first_response]
high = "30m"
normal = "1h"
[policy.targets.resolution]
urgent = "2h"
high = "4h"
normal = "8h"
low = "1d"

[[policy]]
name = "gold"
calendar = "night"
warn_at = [0.25, 0.5, 0.75]
escalate_after = ["10m", "1h", "3h"]
pause_statuses = []
[policy.match]
customer_tier = ["gold"]
[policy.targets.first_response]
urgent = "10m"
high = "1h"
normal = "2h"
low = "4h"
[policy.targets.next_response]
urgent = "10m"
normal = "1h"
[policy.targets.resolution]
urgent = "1h"
high = "3h"
normal = "5h"

[[policy]]
name = "billing"
calendar = "office"
warn_at = [0.5, 0.9]
escalate_after = ["1h"]
[policy.match]
group = ["billing"]
tags_any = ["legal", "refund"]
[policy.targets.resolution]
high = "2h"
normal = "1d"

[[policy]]
name = "office"
calendar = "office"
warn_at = [0.75]
pause_statuses = ["pending", "on_hold", "new"]
[policy.match]
channel = ["email", "web", "phone"]
priority = ["high", "normal", "low"]
[policy.targets.first_response]
high = "1h"
normal = "4h"
low = "2d"
[policy.targets.next_response]
high = "2h"
normal = "8h"
[policy.targets.resolution]
high = "8h"
normal = "3d"
"#;

/// [`FIXED_CONFIG`] with each `allowed_lateness` the header byte can choose.
fn fixed_rules() -> &'static [Arc<Rules>; 4] {
    static RULES: OnceLock<[Arc<Rules>; 4]> = OnceLock::new();
    RULES.get_or_init(|| {
        ["0s", "1m", "30m", "2h"].map(|lateness| {
            let text = FIXED_CONFIG.replace("LATENESS", lateness);
            from_toml(&text).expect("the fuzz configuration is valid").rules
        })
    })
}

/// Runs a program through a fresh engine as replay does (decode, then handle or dead-letter),
/// checking the outputs; returns them as text. `far_end`: the end of input moves the frontier
/// 60 days past the last event, so every alert still pending fires.
fn run(rules: &Arc<Rules>, program: &[u8], far_end: bool) -> Vec<u8> {
    let mut engine: Engine<u32> = Engine::new(rules.clone());
    let mut out = Outbox::default();
    let mut checks = Invariants::default();
    let mut transcript = Vec::new();
    let mut program = Program::new(program);
    let mut index = 0;
    while let Some(step) = program.step() {
        match step {
            Step::Event(line) => {
                let outcome = match decode(line.as_bytes(), rules.engine.max_event_bytes) {
                    Ok(ev) => {
                        let outcome = engine.handle(&ev, || index, &mut out);
                        if matches!(ev.body, Body::Created(_)) && outcome == Applied::Applied {
                            checks.new_ticket(&ev.ticket_id);
                        }
                        outcome
                    }
                    Err(rejection) => Applied::Rejected(rejection),
                };
                if let Applied::Rejected(rejection) = outcome {
                    out.dead.push(DeadLetter {
                        payload: index,
                        rejection,
                    });
                }
            }
            Step::Advance(at) => engine.advance(at, &mut out),
        }
        checks.record(&mut out, &mut transcript);
        index += 1;
    }
    let until = far_end.then(|| (program.cursor + 60 * DAY).min(LAST));
    engine.finish(until, &mut out);
    checks.record(&mut out, &mut transcript);
    transcript
}

/// What must hold of the outputs, per ticket lifetime (a ticket forgotten after its retention
/// and created again starts a new one, with cycle numbers from 1).
#[derive(Default)]
struct Invariants {
    tickets: HashMap<String, Lifetime>,
    dead: HashSet<u32>,
}

#[derive(Default)]
struct Lifetime {
    ids: HashSet<String>,
    /// Cycles whose breach was emitted and not retracted.
    breached: HashSet<(Clock, u16)>,
    /// Cycles fulfilled or cancelled.
    ended: HashSet<(Clock, u16)>,
}

impl Invariants {
    fn new_ticket(&mut self, id: &str) {
        self.tickets.remove(id);
    }

    /// Checks and drains `out`, appending it to `transcript`:
    /// - each SLA event id at most once;
    /// - a cycle ends (fulfilment or cancellation) at most once, and nothing follows its end;
    /// - a fulfilment is `breached` exactly when the cycle's breach was emitted and not
    ///   retracted; a retraction follows that breach and comes right before the fulfilment;
    /// - each input event is dead-lettered at most once.
    fn record(&mut self, out: &mut Outbox<u32>, transcript: &mut Vec<u8>) {
        let mut retracted = None;
        for e in out.sla.drain(..) {
            let id = e.id();
            let cycle = (e.clock, e.cycle);
            let t = self.tickets.entry(e.ticket_id.to_string()).or_default();
            assert!(!t.ended.contains(&cycle), "{id} after the cycle ended");
            assert!(t.ids.insert(id.clone()), "{id} emitted twice");
            if let Some(fulfilment) = retracted.take() {
                assert_eq!(id, fulfilment, "a retraction not followed by its fulfilment");
            }
            match e.kind {
                SlaKind::Breached => {
                    t.breached.insert(cycle);
                }
                SlaKind::BreachRetracted => {
                    assert!(t.breached.remove(&cycle), "{id} without a breach");
                    retracted = Some(id.replacen("breach_retracted", "fulfilled", 1));
                }
                SlaKind::Fulfilled => {
                    let Detail::Outcome(outcome) = e.detail else {
                        panic!("{id} without an outcome");
                    };
                    assert_eq!(
                        outcome == Outcome::Breached,
                        t.breached.contains(&cycle),
                        "{id}: outcome {outcome:?}"
                    );
                    t.ended.insert(cycle);
                }
                SlaKind::Cancelled => {
                    t.ended.insert(cycle);
                }
                SlaKind::Warning | SlaKind::Escalated => {}
            }
            e.write_json(transcript);
        }
        assert!(retracted.is_none(), "a retraction without its fulfilment");
        for d in out.dead.drain(..) {
            assert!(self.dead.insert(d.payload), "input {} dead-lettered twice", d.payload);
            let r = &d.rejection;
            writeln!(transcript, "dead letter {}: {} {}", d.payload, r.reason, r.detail).expect("writing to a Vec");
        }
    }
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Steps in time, by 4-bit choice: around targets, warnings and escalations, a DST change,
/// retention, and one jump of decades (deadlines past the supported range).
const STEPS: [i64; 16] = [
    0,
    SECOND,
    MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    29 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    4 * HOUR,
    8 * HOUR,
    17 * HOUR,
    DAY,
    3 * DAY,
    8 * DAY,
    30 * 365 * DAY,
];
/// 2026-10-23T06:00:00Z, a Friday: holidays and both DST changes lie within two weeks.
const START: Instant = 1_792_735_200_000;
/// The last instant programs use, an hour before the end of the supported range.
const LAST: Instant = RANGE_END - HOUR;

const TICKETS: [&str; 5] = ["T0", "T1", "T2", "T3", "T4"];
const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
const CHANNELS: [&str; 8] = ["email", "phone", "chat", "social", "web", "other", "email", "chat"];
const STATUSES: [&str; 8] = [
    "new", "open", "pending", "on_hold", "solved", "closed", "open", "pending",
];
/// The groups, customer tiers and tags that programs set.
pub const GROUPS: [&str; 4] = ["billing", "support", "vip-desk", "billing"];
pub const TIERS: [&str; 4] = ["gold", "silver", "bronze", "gold"];
pub const TAGS: [&str; 3] = ["legal", "refund", "other"];

enum Step {
    /// One input line (JSON).
    Event(String),
    /// An idle advance of the frontier (live mode), to this instant.
    Advance(Instant),
}

/// Reads bytes as a program. Each step: an op byte (bits 0–2: the event type or an advance,
/// bits 3–7: the ticket), a time byte (bits 0–3: how far the clock moves forward, bits 4–7:
/// how far the event lies behind it, below 8), an event-id byte (below 0x80: one of six ids),
/// then the bytes of the type's fields. Missing bytes read as zero.
struct Program<'a> {
    bytes: &'a [u8],
    cursor: Instant,
}

impl<'a> Program<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Program { bytes, cursor: START }
    }

    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.bytes.split_first().unwrap_or((&0, &[]));
        self.bytes = rest;
        b
    }

    fn step(&mut self) -> Option<Step> {
        if self.bytes.is_empty() {
            return None;
        }
        let op = self.byte();
        let time = self.byte();
        self.cursor = (self.cursor + STEPS[usize::from(time & 15)]).min(LAST);
        let behind = if time >> 4 < 8 {
            STEPS[usize::from(time >> 4)]
        } else {
            0
        };
        let at = self.cursor - behind;
        let ticket = TICKETS[usize::from(op >> 3) % TICKETS.len()];
        let type_name = match op & 7 {
            0 => "ticket.created",
            1 => "ticket.updated",
            2 | 3 => "ticket.status_changed",
            4 => "reply.sent",
            5 => "satisfaction.rated",
            6 => "complaint.resolved",
            _ => return Some(Step::Advance(at)),
        };
        let mut line = format!(
            r#"{{"type":"{type_name}","ticket_id":"{ticket}","occurred_at":"{}""#,
            Rfc3339(at)
        );
        let event_id = self.byte();
        if event_id < 0x80 {
            field(&mut line, "event_id", &format!("e{}", event_id % 6));
        }
        match op & 7 {
            0 => self.created(&mut line),
            1 => self.updated(&mut line),
            2 | 3 => field(&mut line, "status", STATUSES[usize::from(self.byte() & 7)]),
            4 => {
                let b = self.byte();
                field(&mut line, "author", if b & 1 == 0 { "agent" } else { "customer" });
                if b & 2 != 0 {
                    raw(&mut line, "public", if b & 4 == 0 { "false" } else { "true" });
                }
                if b & 8 != 0 {
                    field(&mut line, "agent", "ana");
                }
            }
            // Score 0 is out of range: a rejection.
            5 => raw(&mut line, "score", &(self.byte() % 6).to_string()),
            _ => {}
        }
        line.push('}');
        Some(Step::Event(line))
    }

    fn created(&mut self, line: &mut String) {
        let (a, b, tags) = (self.byte(), self.byte(), self.byte());
        field(line, "priority", PRIORITIES[usize::from(a & 3)]);
        field(line, "channel", CHANNELS[usize::from(a >> 2 & 7)]);
        if a & 0x20 != 0 {
            field(line, "kind", "complaint");
        }
        if a & 0x40 != 0 {
            field(line, "opened_by", "agent");
        }
        if a & 0x80 != 0 {
            field(line, "status", STATUSES[usize::from(b & 7)]);
        }
        if b & 0x08 != 0 {
            field(line, "group", GROUPS[usize::from(b >> 4 & 3)]);
        }
        if b & 0x40 != 0 {
            field(line, "customer_tier", TIERS[usize::from(b >> 7)]);
        }
        self.tags(line, tags);
    }

    /// Bits of the first byte choose the attributes to change (none: a dead letter).
    fn updated(&mut self, line: &mut String) {
        let (which, b, tags) = (self.byte(), self.byte(), self.byte());
        if which & 1 != 0 {
            field(line, "priority", PRIORITIES[usize::from(b & 3)]);
        }
        if which & 2 != 0 {
            field(line, "channel", CHANNELS[usize::from(b >> 2 & 7)]);
        }
        if which & 4 != 0 {
            field(line, "kind", if b & 0x20 == 0 { "request" } else { "complaint" });
        }
        if which & 8 != 0 {
            clearable(line, "group", (b & 0x40 != 0).then(|| GROUPS[usize::from(which >> 6)]));
        }
        if which & 0x10 != 0 {
            clearable(
                line,
                "customer_tier",
                (b & 0x80 != 0).then(|| TIERS[usize::from(which >> 6)]),
            );
        }
        if which & 0x20 != 0 {
            self.tags(line, tags | 0x80);
        }
    }

    /// Bit 7 includes `tags`, bits 0–2 choose its elements.
    fn tags(&mut self, line: &mut String, bits: u8) {
        if bits & 0x80 != 0 {
            let tags: Vec<String> = (0..TAGS.len())
                .filter(|i| bits & 1 << i != 0)
                .map(|i| format!("\"{}\"", TAGS[i]))
                .collect();
            raw(line, "tags", &format!("[{}]", tags.join(",")));
        }
    }
}

fn field(line: &mut String, key: &str, value: &str) {
    raw(line, key, &format!("\"{value}\""));
}

fn clearable(line: &mut String, key: &str, value: Option<&str>) {
    match value {
        Some(v) => field(line, key, v),
        None => raw(line, key, "null"),
    }
}

fn raw(line: &mut String, key: &str, json: &str) {
    write!(line, r#","{key}":{json}"#).expect("writing to a String");
}

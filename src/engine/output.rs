//! SLA events, the engine's output (SPEC §7), and their JSON form.
//!
//! JSON is written by hand into a byte buffer: the field set is fixed, and this runs once per
//! output line on the replay hot path. Strings go through `serde_json` for escaping.

use std::io::Write;
use std::sync::Arc;

use compact_str::CompactString;
use serde::Serialize;

use crate::event::{Channel, Kind, Priority};
use crate::policy::Clock;
use crate::time::{Instant, format_into};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SlaKind {
    #[serde(rename = "sla.warning")]
    Warning,
    #[serde(rename = "sla.breached")]
    Breached,
    #[serde(rename = "sla.escalated")]
    Escalated,
    #[serde(rename = "sla.fulfilled")]
    Fulfilled,
    #[serde(rename = "sla.cancelled")]
    Cancelled,
    #[serde(rename = "sla.breach_retracted")]
    BreachRetracted,
}

impl SlaKind {
    pub const ALL: [SlaKind; 6] = [
        SlaKind::Warning,
        SlaKind::Breached,
        SlaKind::Escalated,
        SlaKind::Fulfilled,
        SlaKind::Cancelled,
        SlaKind::BreachRetracted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaKind::Warning => "sla.warning",
            SlaKind::Breached => "sla.breached",
            SlaKind::Escalated => "sla.escalated",
            SlaKind::Fulfilled => "sla.fulfilled",
            SlaKind::Cancelled => "sla.cancelled",
            SlaKind::BreachRetracted => "sla.breach_retracted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Met,
    Breached,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Breached => "breached",
        }
    }
}

/// Type-specific part of an SLA event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detail {
    None,
    Fraction(f64),
    Level(u8),
    Outcome(Outcome),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlaEvent {
    pub kind: SlaKind,
    pub ticket_id: CompactString,
    pub clock: Clock,
    pub cycle: u16,
    pub policy: Arc<str>,
    pub priority: Priority,
    pub channel: Channel,
    pub ticket_kind: Kind,
    pub group: Option<Arc<str>>,
    pub started_at: Instant,
    pub deadline: Option<Instant>,
    pub target_ms: i64,
    pub at: Instant,
    pub elapsed_ms: i64,
    pub detail: Detail,
}

impl SlaEvent {
    /// Deterministic and unique per (type, ticket, clock, cycle, level or fraction): the same
    /// across replays and restarts. The ticket id comes last so any id text stays unambiguous.
    pub fn id(&self) -> String {
        let mut id = Vec::new();
        self.write_id(&mut id);
        String::from_utf8(id).expect("ids are built from UTF-8")
    }

    fn write_id(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind.as_str().as_bytes()[4..]);
        out.push(b':');
        out.extend_from_slice(self.clock.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(self.cycle).as_bytes());
        match self.detail {
            Detail::Fraction(f) => {
                out.push(b':');
                write!(out, "{f}").expect("writing to a Vec");
            }
            Detail::Level(l) => {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(l).as_bytes());
            }
            Detail::None | Detail::Outcome(_) => {}
        }
        out.push(b':');
        out.extend_from_slice(self.ticket_id.as_bytes());
    }

    /// Appends the event as one line of JSON (with the newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"id\":");
        let start = out.len();
        self.write_id(out);
        quote_from(out, start);
        out.extend_from_slice(b",\"ticket_id\":");
        string(out, &self.ticket_id);
        out.extend_from_slice(b",\"clock\":\"");
        out.extend_from_slice(self.clock.as_str().as_bytes());
        out.extend_from_slice(b"\",\"cycle\":");
        out.extend_from_slice(num.format(self.cycle).as_bytes());
        out.extend_from_slice(b",\"policy\":");
        string(out, &self.policy);
        for (key, value) in [
            (&b",\"priority\":\""[..], self.priority.as_str()),
            (b"\",\"channel\":\"", self.channel.as_str()),
            (b"\",\"kind\":\"", self.ticket_kind.as_str()),
        ] {
            out.extend_from_slice(key);
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"\",\"group\":");
        match &self.group {
            Some(g) => string(out, g),
            None => out.extend_from_slice(b"null"),
        }
        instant(out, b",\"started_at\":", Some(self.started_at));
        instant(out, b",\"deadline\":", self.deadline);
        out.extend_from_slice(b",\"target_ms\":");
        out.extend_from_slice(num.format(self.target_ms).as_bytes());
        instant(out, b",\"at\":", Some(self.at));
        out.extend_from_slice(b",\"elapsed_ms\":");
        out.extend_from_slice(num.format(self.elapsed_ms).as_bytes());
        match self.detail {
            Detail::None => {}
            Detail::Fraction(f) => write!(out, ",\"fraction\":{f}").expect("writing to a Vec"),
            Detail::Level(l) => {
                out.extend_from_slice(b",\"level\":");
                out.extend_from_slice(num.format(l).as_bytes());
            }
            Detail::Outcome(o) => {
                out.extend_from_slice(b",\"outcome\":\"");
                out.extend_from_slice(o.as_str().as_bytes());
                out.push(b'"');
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

fn instant(out: &mut Vec<u8>, key: &[u8], t: Option<Instant>) {
    out.extend_from_slice(key);
    match t {
        Some(t) => {
            out.push(b'"');
            out.extend_from_slice(format_into(t, &mut [0; 24]).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Does a string need JSON escaping?
fn needs_escape(s: &[u8]) -> bool {
    s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `s` as a JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Turns the text appended since `start` into a JSON string in place.
fn quote_from(out: &mut Vec<u8>, start: usize) {
    if needs_escape(&out[start..]) {
        let text = String::from_utf8(out.split_off(start)).expect("ids are built from UTF-8");
        string(out, &text);
    } else {
        out.insert(start, b'"');
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_every_contract_field() {
        let e = SlaEvent {
            kind: SlaKind::Warning,
            ticket_id: "T\"1".into(),
            clock: Clock::FirstResponse,
            cycle: 1,
            policy: "p".into(),
            priority: Priority::High,
            channel: Channel::Chat,
            ticket_kind: Kind::Request,
            group: None,
            started_at: 0,
            deadline: Some(1_800_000),
            target_ms: 1_800_000,
            at: 900_000,
            elapsed_ms: 900_000,
            detail: Detail::Fraction(0.5),
        };
        let mut out = Vec::new();
        e.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "warning:first_response:1:0.5:T\"1");
        assert_eq!(v["deadline"], "1970-01-01T00:30:00.000Z");
        assert_eq!(v["fraction"], 0.5);
        assert_eq!(v["group"], serde_json::Value::Null);
        assert_eq!(v.as_object().unwrap().len(), 16);
    }
}

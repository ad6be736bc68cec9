//! Input events: decoding, validation and dead-letter reasons (SPEC §2). Pure.
//!
//! Decoding never fails with an error value: every message either becomes an [`Event`] or a
//! [`Rejection`] with one reason code of the fixed set and a readable detail. Fields are read
//! loosely first (`Loose`) so that a wrong JSON type is reported as `invalid_field` naming the
//! field, not as a generic parse error; fields irrelevant to the event's type are ignored.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::calendar::{RANGE_END, RANGE_START};
use crate::time::{Instant, parse_rfc3339};

/// Why an input record could not be applied. The string forms are the contract's reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    InvalidJson,
    MissingField,
    InvalidField,
    UnknownType,
    TooLarge,
    UnknownTicket,
    DuplicateTicket,
    FutureTimestamp,
    Capacity,
    /// Live mode only: the ticket id belongs to another partition under the producers'
    /// partitioner, so another shard owns the ticket.
    Misrouted,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::InvalidJson,
        Reason::MissingField,
        Reason::InvalidField,
        Reason::UnknownType,
        Reason::TooLarge,
        Reason::UnknownTicket,
        Reason::DuplicateTicket,
        Reason::FutureTimestamp,
        Reason::Capacity,
        Reason::Misrouted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::UnknownType => "unknown_type",
            Reason::TooLarge => "too_large",
            Reason::UnknownTicket => "unknown_ticket",
            Reason::DuplicateTicket => "duplicate_ticket",
            Reason::FutureTimestamp => "future_timestamp",
            Reason::Capacity => "capacity",
            Reason::Misrouted => "misrouted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that cannot be applied: the reason code and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// A closed set of words with a typed value each.
pub trait Vocabulary: Sized {
    const WORDS: &'static [&'static str];
    fn parse(s: &str) -> Option<Self>;
    /// This value's bit in a set of values.
    fn bit(self) -> u8;
}

/// Defines a closed vocabulary: a `u8`-sized enum with its wire names.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl Vocabulary for $name {
            const WORDS: &'static [&'static str] = &[$($text),+];

            fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            fn bit(self) -> u8 {
                1 << (self as u8)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(Priority { Urgent = "urgent", High = "high", Normal = "normal", Low = "low" });
vocabulary!(Channel {
    Email = "email",
    Phone = "phone",
    Chat = "chat",
    Social = "social",
    Web = "web",
    Other = "other",
});
vocabulary!(Kind { Request = "request", Complaint = "complaint" });
vocabulary!(Status {
    New = "new",
    Open = "open",
    Pending = "pending",
    OnHold = "on_hold",
    Solved = "solved",
    Closed = "closed",
});
vocabulary!(Author { Agent = "agent", Customer = "customer" });

pub const MAX_TICKET_ID: usize = 128;
pub const MAX_EVENT_ID: usize = 128;
pub const MAX_GROUP: usize = 64;
pub const MAX_TIER: usize = 32;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG: usize = 64;
pub const MAX_AGENT: usize = 64;
pub const MAX_COMMENT: usize = 4096;

/// A validated input event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ticket_id: CompactString,
    pub occurred_at: Instant,
    pub event_id: Option<CompactString>,
    pub body: Body,
    /// Bytes of the message it was decoded from (what holding it as an orphan costs).
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Created(Created),
    Updated(Update),
    StatusChanged(Status),
    /// `agent`: who replied, for reports only.
    ReplySent {
        author: Author,
        public: bool,
        agent: Option<CompactString>,
    },
    ComplaintResolved,
    /// A customer's score from 1 to 5; changes no clock. The comment is validated, not kept.
    Rated {
        score: u8,
    },
}

/// The event types, in [`Body`] order.
pub const TYPES: [&str; 6] = [
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "reply.sent",
    "complaint.resolved",
    "satisfaction.rated",
];

impl Body {
    /// Index of the event's type in [`TYPES`].
    pub fn type_index(&self) -> usize {
        match self {
            Body::Created(_) => 0,
            Body::Updated(_) => 1,
            Body::StatusChanged(_) => 2,
            Body::ReplySent { .. } => 3,
            Body::ComplaintResolved => 4,
            Body::Rated { .. } => 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub priority: Priority,
    pub channel: Channel,
    pub kind: Kind,
    pub status: Status,
    pub opened_by_agent: bool,
    pub group: Option<CompactString>,
    pub customer_tier: Option<CompactString>,
    pub tags: Vec<CompactString>,
}

/// Attribute changes; `Some(None)` clears an optional attribute (JSON `null`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub priority: Option<Priority>,
    pub channel: Option<Channel>,
    pub kind: Option<Kind>,
    pub group: Option<Option<CompactString>>,
    pub customer_tier: Option<Option<CompactString>>,
    pub tags: Option<Vec<CompactString>>,
}

/// Decodes and validates one message. `max_bytes` is the `too_large` limit.
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Event, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::new(
            Reason::TooLarge,
            format!("{} bytes exceeds the limit of {max_bytes}", bytes.len()),
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| Rejection::new(Reason::InvalidJson, format!("not UTF-8: {e}")))?;
    if !text.trim_start().starts_with('{') {
        return Err(Rejection::new(Reason::InvalidJson, "expected a JSON object"));
    }
    let wire: Wire = serde_json::from_str(text).map_err(|e| Rejection::new(Reason::InvalidJson, e.to_string()))?;
    wire.validate(bytes.len())
}

/// Live mode: an event stamped more than `max_skew` after the wall clock's `now` is
/// `future_timestamp`, so that a producer's broken clock cannot drag the frontier ahead and
/// fire alerts early. (Replay has no wall clock and skips this check.)
pub fn check_clock_skew(ev: &Event, now: Instant, max_skew: i64) -> Result<(), Rejection> {
    if ev.occurred_at > now.saturating_add(max_skew) {
        let ahead = (ev.occurred_at - now) / 1000;
        return Err(Rejection::new(
            Reason::FutureTimestamp,
            format!(
                "occurred_at is {ahead} s ahead of the wall clock (max_clock_skew {} s)",
                max_skew / 1000
            ),
        ));
    }
    Ok(())
}

/// Every field read without type expectations, so validation can name the offending field.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind_of_event: Loose<'a>,
    #[serde(borrow)]
    ticket_id: Loose<'a>,
    #[serde(borrow)]
    occurred_at: Loose<'a>,
    #[serde(borrow)]
    event_id: Loose<'a>,
    #[serde(borrow)]
    priority: Loose<'a>,
    #[serde(borrow)]
    channel: Loose<'a>,
    #[serde(borrow)]
    kind: Loose<'a>,
    #[serde(borrow)]
    status: Loose<'a>,
    #[serde(borrow)]
    opened_by: Loose<'a>,
    #[serde(borrow)]
    group: Loose<'a>,
    #[serde(borrow)]
    customer_tier: Loose<'a>,
    #[serde(borrow)]
    tags: Loose<'a>,
    #[serde(borrow)]
    author: Loose<'a>,
    #[serde(borrow)]
    public: Loose<'a>,
    #[serde(borrow)]
    resolution: Loose<'a>,
    #[serde(borrow)]
    agent: Loose<'a>,
    #[serde(borrow)]
    score: Loose<'a>,
    #[serde(borrow)]
    comment: Loose<'a>,
}

/// A JSON value as far as validation cares.
#[derive(Default, Debug)]
enum Loose<'a> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Str(Cow<'a, str>),
    StrList(Vec<Cow<'a, str>>),
    /// A number, as written.
    Number(&'a str),
    /// Any other JSON type, by name.
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                let mut all_strings = true;
                while let Some(item) = seq.next_element::<Loose<'a>>()? {
                    match item {
                        Loose::Str(s) if all_strings => items.push(s),
                        _ => all_strings = false,
                    }
                }
                Ok(if all_strings {
                    Loose::StrList(items)
                } else {
                    Loose::Other("an array with non-string items")
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other("an object"))
            }
        }
        // Numbers are never parsed: any valid JSON number, however large, is "a number".
        let raw = <&'de serde_json::value::RawValue>::deserialize(d)?;
        let text = raw.get();
        // The common cases need no second parse: the raw text is valid JSON.
        match text.as_bytes()[0] {
            b'-' | b'0'..=b'9' => return Ok(Loose::Number(text)),
            b't' => return Ok(Loose::Bool(true)),
            b'f' => return Ok(Loose::Bool(false)),
            b'n' => return Ok(Loose::Null),
            b'"' if !text.contains('\\') => return Ok(Loose::Str(Cow::Borrowed(&text[1..text.len() - 1]))),
            _ => {}
        }
        serde_json::Deserializer::from_str(text)
            .deserialize_any(V(std::marker::PhantomData))
            .map_err(serde::de::Error::custom)
    }
}

impl Loose<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Loose::Absent => "absent",
            Loose::Null => "null",
            Loose::Bool(_) => "a boolean",
            Loose::Str(_) => "a string",
            Loose::StrList(_) => "an array",
            Loose::Number(_) => "a number",
            Loose::Other(what) => what,
        }
    }
}

fn invalid(field: &str, detail: impl fmt::Display) -> Rejection {
    Rejection::new(Reason::InvalidField, format!("{field}: {detail}"))
}

fn missing(field: &str) -> Rejection {
    Rejection::new(Reason::MissingField, format!("{field} is required"))
}

/// A required string field.
fn required<'v>(field: &str, v: &'v Loose) -> Result<&'v str, Rejection> {
    optional(field, v)?.ok_or_else(|| missing(field))
}

/// An optional string field; null counts as absent.
fn optional<'v>(field: &str, v: &'v Loose) -> Result<Option<&'v str>, Rejection> {
    match v {
        Loose::Absent | Loose::Null => Ok(None),
        Loose::Str(s) => Ok(Some(s)),
        other => Err(invalid(
            field,
            format_args!("must be a string, got {}", other.describe()),
        )),
    }
}

fn bounded(field: &str, s: &str, max: usize) -> Result<CompactString, Rejection> {
    if s.len() > max {
        return Err(invalid(field, format_args!("longer than {max} bytes")));
    }
    Ok(CompactString::from(s))
}

fn word<T: Vocabulary>(field: &str, s: &str) -> Result<T, Rejection> {
    T::parse(s).ok_or_else(|| invalid(field, format_args!("{s:?} is not one of {}", T::WORDS.join(", "))))
}

impl Wire<'_> {
    fn validate(&self, size: usize) -> Result<Event, Rejection> {
        let type_name = match &self.kind_of_event {
            Loose::Absent | Loose::Null => return Err(missing("type")),
            Loose::Str(s) => s.as_ref(),
            other => {
                return Err(invalid(
                    "type",
                    format_args!("must be a string, got {}", other.describe()),
                ));
            }
        };
        if !TYPES.contains(&type_name) {
            return Err(Rejection::new(
                Reason::UnknownType,
                format!("unknown event type {type_name:?}"),
            ));
        }
        let ticket_id = required("ticket_id", &self.ticket_id)?;
        if ticket_id.is_empty() || ticket_id.len() > MAX_TICKET_ID {
            return Err(invalid("ticket_id", format_args!("must be 1 to {MAX_TICKET_ID} bytes")));
        }
        let occurred_text = required("occurred_at", &self.occurred_at)?;
        let occurred_at = parse_rfc3339(occurred_text).ok_or_else(|| {
            invalid(
                "occurred_at",
                format_args!("{occurred_text:?} is not RFC 3339 with an offset"),
            )
        })?;
        if !(RANGE_START..RANGE_END).contains(&occurred_at) {
            return Err(invalid(
                "occurred_at",
                "outside the supported range 1970-01-01 to 2099-12-31",
            ));
        }
        let event_id = optional("event_id", &self.event_id)?
            .map(|s| bounded("event_id", s, MAX_EVENT_ID))
            .transpose()?;
        let body = match type_name {
            "ticket.created" => Body::Created(self.created()?),
            "ticket.updated" => Body::Updated(self.update()?),
            "ticket.status_changed" => {
                Body::StatusChanged(word::<Status>("status", required("status", &self.status)?)?)
            }
            "reply.sent" => Body::ReplySent {
                author: word::<Author>("author", required("author", &self.author)?)?,
                public: match self.public {
                    Loose::Absent | Loose::Null => true,
                    Loose::Bool(b) => b,
                    ref other => {
                        return Err(invalid(
                            "public",
                            format_args!("must be a boolean, got {}", other.describe()),
                        ));
                    }
                },
                agent: optional("agent", &self.agent)?
                    .map(|s| bounded("agent", s, MAX_AGENT))
                    .transpose()?,
            },
            "satisfaction.rated" => self.rated()?,
            _ => {
                optional("resolution", &self.resolution)?;
                Body::ComplaintResolved
            }
        };
        Ok(Event {
            ticket_id: CompactString::from(ticket_id),
            occurred_at,
            event_id,
            body,
            size,
        })
    }

    fn created(&self) -> Result<Created, Rejection> {
        let opened_by = optional("opened_by", &self.opened_by)?
            .map(|s| word::<Author>("opened_by", s))
            .transpose()?;
        Ok(Created {
            priority: word::<Priority>("priority", required("priority", &self.priority)?)?,
            channel: word::<Channel>("channel", required("channel", &self.channel)?)?,
            kind: optional("kind", &self.kind)?
                .map(|s| word::<Kind>("kind", s))
                .transpose()?
                .unwrap_or(Kind::Request),
            status: optional("status", &self.status)?
                .map(|s| word::<Status>("status", s))
                .transpose()?
                .unwrap_or(Status::New),
            opened_by_agent: opened_by == Some(Author::Agent),
            group: optional("group", &self.group)?
                .map(|s| bounded("group", s, MAX_GROUP))
                .transpose()?,
            customer_tier: optional("customer_tier", &self.customer_tier)?
                .map(|s| bounded("customer_tier", s, MAX_TIER))
                .transpose()?,
            tags: self.tags()?.unwrap_or_default(),
        })
    }

    fn update(&self) -> Result<Update, Rejection> {
        let clearable = |field: &str, v: &Loose, max: usize| -> Result<Option<Option<CompactString>>, Rejection> {
            match v {
                Loose::Absent => Ok(None),
                Loose::Null => Ok(Some(None)),
                _ => Ok(Some(optional(field, v)?.map(|s| bounded(field, s, max)).transpose()?)),
            }
        };
        let update = Update {
            priority: optional("priority", &self.priority)?
                .map(|s| word::<Priority>("priority", s))
                .transpose()?,
            channel: optional("channel", &self.channel)?
                .map(|s| word::<Channel>("channel", s))
                .transpose()?,
            kind: optional("kind", &self.kind)?
                .map(|s| word::<Kind>("kind", s))
                .transpose()?,
            group: clearable("group", &self.group, MAX_GROUP)?,
            customer_tier: clearable("customer_tier", &self.customer_tier, MAX_TIER)?,
            tags: self.tags()?,
        };
        if update == Update::default() {
            return Err(Rejection::new(
                Reason::MissingField,
                "ticket.updated needs one or more of priority, channel, kind, group, customer_tier, tags",
            ));
        }
        Ok(update)
    }

    fn rated(&self) -> Result<Body, Rejection> {
        let score = match self.score {
            Loose::Absent | Loose::Null => return Err(missing("score")),
            // An integer as JSON writes one: "4.0" and "4e0" are not.
            Loose::Number(n) if matches!(n, "1" | "2" | "3" | "4" | "5") => n.as_bytes()[0] - b'0',
            Loose::Number(n) => return Err(invalid("score", format_args!("{n} is not an integer from 1 to 5"))),
            ref other => {
                return Err(invalid(
                    "score",
                    format_args!("must be an integer from 1 to 5, got {}", other.describe()),
                ));
            }
        };
        if let Some(comment) = optional("comment", &self.comment)? {
            bounded("comment", comment, MAX_COMMENT)?;
        }
        Ok(Body::Rated { score })
    }

    fn tags(&self) -> Result<Option<Vec<CompactString>>, Rejection> {
        match &self.tags {
            Loose::Absent | Loose::Null => Ok(None),
            Loose::StrList(list) => {
                if list.len() > MAX_TAGS {
                    return Err(invalid("tags", format_args!("more than {MAX_TAGS} tags")));
                }
                list.iter()
                    .map(|t| bounded("tags", t, MAX_TAG))
                    .collect::<Result<_, _>>()
                    .map(Some)
            }
            other => Err(invalid(
                "tags",
                format_args!("must be an array of strings, got {}", other.describe()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(json: &str) -> Reason {
        decode(json.as_bytes(), 65_536).expect_err("should be rejected").reason
    }

    const T: &str = r#""ticket_id":"T1","occurred_at":"2026-11-24T10:00:00Z""#;

    #[test]
    fn decodes_a_created_event_with_defaults() {
        let e = decode(
            format!(r#"{{"type":"ticket.created",{T},"priority":"high","channel":"chat","extra":[1,{{}}]}}"#)
                .as_bytes(),
            1 << 16,
        )
        .unwrap();
        assert_eq!(e.ticket_id, "T1");
        let Body::Created(c) = e.body else { panic!() };
        assert_eq!(
            (c.kind, c.status, c.opened_by_agent, c.group),
            (Kind::Request, Status::New, false, None)
        );
    }

    #[test]
    fn decodes_escaped_strings_and_null_clears_group() {
        let e = decode(
            format!(r#"{{"type":"ticket.updated",{T},"group":null,"tags":["a\"b"]}}"#).as_bytes(),
            1 << 16,
        )
        .unwrap();
        let Body::Updated(u) = e.body else { panic!() };
        assert_eq!(u.group, Some(None));
        assert_eq!(u.tags, Some(vec![CompactString::from("a\"b")]));
    }

    #[test]
    fn reply_public_defaults_to_true() {
        let e = decode(
            format!(r#"{{"type":"reply.sent",{T},"author":"agent"}}"#).as_bytes(),
            1 << 16,
        )
        .unwrap();
        assert_eq!(
            e.body,
            Body::ReplySent {
                author: Author::Agent,
                public: true,
                agent: None,
            }
        );
    }

    #[test]
    fn decodes_ratings_and_reply_agents() {
        let body = |json: String| decode(json.as_bytes(), 1 << 16).unwrap().body;
        for score in 1..=5u8 {
            assert_eq!(
                body(format!(
                    r#"{{"type":"satisfaction.rated",{T},"score":{score},"comment":"ok"}}"#
                )),
                Body::Rated { score }
            );
        }
        assert_eq!(
            body(format!(
                r#"{{"type":"reply.sent",{T},"author":"agent","agent":"Ana \u00c1lvarez"}}"#
            )),
            Body::ReplySent {
                author: Author::Agent,
                public: true,
                agent: Some("Ana Álvarez".into()),
            }
        );
        let long_comment = "c".repeat(MAX_COMMENT);
        assert!(matches!(
            body(format!(
                r#"{{"type":"satisfaction.rated",{T},"score":2,"comment":"{long_comment}"}}"#
            )),
            Body::Rated { score: 2 }
        ));
    }

    #[test]
    fn dead_letter_reason_invalid_json() {
        assert_eq!(reason("{not json"), Reason::InvalidJson);
        assert_eq!(reason("[1,2]"), Reason::InvalidJson);
        assert_eq!(
            reason(r#"{"type":"reply.sent","type":"reply.sent"}"#),
            Reason::InvalidJson
        );
        assert_eq!(
            decode(b"{\"type\":\"\xff\"}", 100).unwrap_err().reason,
            Reason::InvalidJson
        );
    }

    #[test]
    fn dead_letter_reason_missing_field() {
        assert_eq!(reason(r#"{"ticket_id":"T1"}"#), Reason::MissingField);
        assert_eq!(reason(r#"{"type":null,"ticket_id":"T1"}"#), Reason::MissingField);
        assert_eq!(
            reason(&format!(r#"{{"type":"reply.sent",{T},"author":null}}"#)),
            Reason::MissingField
        );
        assert_eq!(
            reason(r#"{"type":"reply.sent","occurred_at":"2026-11-24T10:00:00Z","author":"agent"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(&format!(r#"{{"type":"ticket.created",{T},"channel":"chat"}}"#)),
            Reason::MissingField
        );
        assert_eq!(
            reason(&format!(r#"{{"type":"ticket.updated",{T}}}"#)),
            Reason::MissingField
        );
        assert_eq!(
            reason(&format!(r#"{{"type":"satisfaction.rated",{T},"score":null}}"#)),
            Reason::MissingField
        );
    }

    #[test]
    fn dead_letter_reason_invalid_field() {
        for bad in [
            format!(r#"{{"type":"reply.sent",{T},"author":"bot"}}"#),
            format!(r#"{{"type":"reply.sent",{T},"author":"agent","public":"yes"}}"#),
            format!(r#"{{"type":"reply.sent",{T},"author":"agent","public":1e999999}}"#),
            format!(r#"{{"type":"ticket.status_changed",{T},"status":"done"}}"#),
            format!(r#"{{"type":"ticket.created",{T},"priority":1,"channel":"chat"}}"#),
            format!(r#"{{"type":"ticket.created",{T},"priority":"low","channel":"chat","tags":[1]}}"#),
            format!(
                r#"{{"type":"ticket.created",{T},"priority":"low","channel":"chat","group":"{}"}}"#,
                "g".repeat(65)
            ),
            r#"{"type":"complaint.resolved","ticket_id":"","occurred_at":"2026-11-24T10:00:00Z"}"#.to_string(),
            r#"{"type":"complaint.resolved","ticket_id":"T","occurred_at":"2026-11-24 10:00"}"#.to_string(),
            r#"{"type":"complaint.resolved","ticket_id":"T","occurred_at":"2100-01-01T00:00:00Z"}"#.to_string(),
            r#"{"type":7,"ticket_id":"T","occurred_at":"2026-11-24T10:00:00Z"}"#.to_string(),
            format!(
                r#"{{"type":"reply.sent",{T},"author":"agent","agent":"{}"}}"#,
                "a".repeat(MAX_AGENT + 1)
            ),
            format!(r#"{{"type":"reply.sent",{T},"author":"agent","agent":7}}"#),
        ] {
            assert_eq!(reason(&bad), Reason::InvalidField, "{bad}");
        }
    }

    #[test]
    fn a_score_is_an_integer_from_1_to_5() {
        for score in ["0", "6", "-1", "4.0", "4e0", "45", "\"4\"", "true", "[4]"] {
            let json = format!(r#"{{"type":"satisfaction.rated",{T},"score":{score}}}"#);
            assert_eq!(reason(&json), Reason::InvalidField, "{json}");
        }
        let comment = "c".repeat(MAX_COMMENT + 1);
        for comment in [format!("{comment:?}"), "5".into()] {
            let json = format!(r#"{{"type":"satisfaction.rated",{T},"score":5,"comment":{comment}}}"#);
            assert_eq!(reason(&json), Reason::InvalidField);
        }
    }

    #[test]
    fn dead_letter_reason_unknown_type() {
        assert_eq!(
            reason(&format!(r#"{{"type":"ticket.deleted",{T}}}"#)),
            Reason::UnknownType
        );
    }

    #[test]
    fn dead_letter_reason_too_large() {
        let big = format!(
            r#"{{"type":"complaint.resolved",{T},"resolution":"{}"}}"#,
            "x".repeat(100)
        );
        assert_eq!(decode(big.as_bytes(), 64).unwrap_err().reason, Reason::TooLarge);
    }

    #[test]
    fn dead_letter_reason_future_timestamp() {
        let ev = decode(format!(r#"{{"type":"complaint.resolved",{T}}}"#).as_bytes(), 1 << 16).unwrap();
        let now = ev.occurred_at - 300_000;
        assert_eq!(
            check_clock_skew(&ev, now, 300_000),
            Ok(()),
            "exactly max_clock_skew ahead is accepted"
        );
        assert_eq!(
            check_clock_skew(&ev, now - 1, 300_000).unwrap_err().reason,
            Reason::FutureTimestamp
        );
    }

    #[test]
    fn irrelevant_fields_of_wrong_type_are_ignored() {
        assert!(
            decode(
                format!(r#"{{"type":"reply.sent",{T},"author":"agent","priority":5}}"#).as_bytes(),
                1 << 16
            )
            .is_ok()
        );
    }
}

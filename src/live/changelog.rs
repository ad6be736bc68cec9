//! The state store's record format: what a shard writes to its changelog partition and a
//! restore reads back (docs/ARCHITECTURE.md §5). Pure: bytes in, bytes out.
//!
//! A changelog partition (one per input partition number, compacted) holds, by key:
//!
//! - `t` + ticket id: one ticket's state ([`TicketState`]); a tombstone once it is forgotten;
//! - `h` + sequence number (8 bytes, big-endian): one held event, as its dead letter would
//!   copy the input record; a tombstone once released or expired;
//! - `p`: the partition's progress: input positions and frontiers by topic, the engine's
//!   frontier, and a fingerprint of the configuration the state was computed under.
//!
//! Every value is `version (1 byte) | body | checksum (4 bytes)`, the checksum covering key,
//! version and body. A value of an unknown version, with a wrong checksum, cut short or with
//! bytes left over is an error, never a guess: a restore stops rather than continue from a
//! state it cannot trust. Integers are LEB128 varints (signed ones zigzagged); a new layout
//! takes a new version number, and every version ever written stays readable (the tests keep
//! one record of each).

use compact_str::CompactString;
use xxhash_rust::xxh3::xxh3_64;

use super::shard::{Kept, Record};
use crate::engine::{Progress, SavedCycle, TicketState};
use crate::event::{Channel, Kind, Priority, Status};
use crate::time::Instant;

/// The layout this build writes.
pub const VERSION: u8 = 2;

const TICKET: u8 = b't';
const HELD: u8 = b'h';
const PARTITION: u8 = b'p';

/// A partition's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionState {
    /// Of the configuration's engine, policy and calendar sections ([`crate::policy::Rules`]).
    pub fingerprint: u64,
    pub progress: Progress,
    /// By input topic name: the next offset to apply and the topic's frontier.
    pub topics: Vec<(String, i64, Instant)>,
}

/// A held event: when its hold ends, and its input record, by topic name.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRecord {
    pub expiry: Instant,
    pub topic: String,
    pub record: Record,
}

/// One changelog record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Ticket(TicketState),
    Forgotten(CompactString),
    Held(u64, Option<HeldRecord>),
    Partition(PartitionState),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unknown key {0:?}")]
    Key(String),
    #[error("encoding version {0}, this build reads versions 1 to {VERSION}")]
    Version(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("record cut short")]
    Short,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} bytes left over")]
    Trailing(usize),
}

pub fn ticket_key(id: &str) -> Vec<u8> {
    [&[TICKET], id.as_bytes()].concat()
}

pub fn held_key(seq: u64) -> Vec<u8> {
    [&[HELD][..], &seq.to_be_bytes()].concat()
}

pub fn partition_key() -> Vec<u8> {
    vec![PARTITION]
}

pub fn encode_ticket(t: &TicketState, out: &mut Vec<u8>) {
    let mut w = Writer::start(out);
    w.int(t.applied_at);
    w.instant(t.due);
    w.instant(t.paused_since);
    w.uint(t.pauses.len() as u64);
    for &(a, b) in &t.pauses {
        w.int(a);
        w.int(b);
    }
    for v in [t.priority as u8, t.channel as u8, t.kind as u8, t.status as u8] {
        w.byte(v);
    }
    w.opt_str(t.group.as_deref());
    w.opt_str(t.tier.as_deref());
    w.uint(t.tags.len() as u64);
    for tag in &t.tags {
        w.str(tag);
    }
    for s in t.seen {
        w.0.extend_from_slice(&s.to_le_bytes());
    }
    w.byte(t.seen_next | u8::from(t.agent_replied) << 7);
    for c in [&t.response, &t.resolution] {
        w.int(c.start);
        w.uint(c.number.into());
        w.byte(c.flags);
        w.byte(c.escalated);
        w.byte(c.skipped);
        w.uint(c.warned.len() as u64);
        for f in &c.warned {
            w.0.extend_from_slice(&f.to_bits().to_le_bytes());
        }
    }
    w.finish(&ticket_key(&t.id));
}

pub fn encode_partition(p: &PartitionState, out: &mut Vec<u8>) {
    let mut w = Writer::start(out);
    w.0.extend_from_slice(&p.fingerprint.to_le_bytes());
    w.int(p.progress.frontier);
    w.int(p.progress.max_seen);
    w.uint(p.progress.next_held);
    w.uint(p.topics.len() as u64);
    for (name, position, frontier) in &p.topics {
        w.str(name);
        w.int(*position);
        w.int(*frontier);
    }
    w.finish(&partition_key());
}

pub fn encode_held(seq: u64, h: &HeldRecord, out: &mut Vec<u8>) {
    let mut w = Writer::start(out);
    w.int(h.expiry);
    w.str(&h.topic);
    w.int(h.record.partition.into());
    w.int(h.record.offset);
    for kept in [&h.record.key, &h.record.value] {
        match kept {
            None => w.byte(0),
            Some(k) => {
                w.byte(1);
                w.uint(k.len as u64);
                w.bytes(&k.bytes);
            }
        }
    }
    w.finish(&held_key(seq));
}

/// Decodes one changelog record; `value` is `None` for a tombstone. A held record's `topic`
/// index is left 0: the caller maps `HeldRecord::topic` onto the configured input topics.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Entry, DecodeError> {
    let bad_key = || DecodeError::Key(String::from_utf8_lossy(key).into_owned());
    let (&kind, rest) = key.split_first().ok_or_else(bad_key)?;
    match (kind, value) {
        (TICKET, None) => Ok(Entry::Forgotten(ticket_id(rest)?)),
        (TICKET, Some(v)) => {
            let id = ticket_id(rest)?;
            Reader::open(key, v)?.ticket(id).map(Entry::Ticket)
        }
        (HELD, _) => {
            let seq = u64::from_be_bytes(rest.try_into().map_err(|_| bad_key())?);
            match value {
                None => Ok(Entry::Held(seq, None)),
                Some(v) => Reader::open(key, v)?.held().map(|h| Entry::Held(seq, Some(h))),
            }
        }
        (PARTITION, Some(v)) if rest.is_empty() => Reader::open(key, v)?.partition().map(Entry::Partition),
        _ => Err(bad_key()),
    }
}

fn ticket_id(bytes: &[u8]) -> Result<CompactString, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(id) if !id.is_empty() => Ok(id.into()),
        _ => Err(DecodeError::Invalid("ticket id")),
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl<'a> Writer<'a> {
    fn start(out: &'a mut Vec<u8>) -> Writer<'a> {
        out.clear();
        out.push(VERSION);
        Writer(out)
    }

    fn finish(self, key: &[u8]) {
        let sum = checksum(key, self.0);
        self.0.extend_from_slice(&sum.to_le_bytes());
    }

    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// An instant or "never" (`Instant::MAX`), which takes one byte.
    fn instant(&mut self, v: Instant) {
        if v == Instant::MAX {
            self.uint(0);
        } else {
            self.uint((((v << 1) ^ (v >> 63)) as u64).wrapping_add(1));
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// `None` as length 0, a string as its length + 1.
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.uint(0),
            Some(s) => {
                self.uint(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }
}

fn checksum(key: &[u8], body: &[u8]) -> u32 {
    xxh3_64(&[key, body].concat()) as u32
}

struct Reader<'a> {
    version: u8,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks version and checksum; the reader then covers the body.
    fn open(key: &[u8], value: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        let (&version, _) = value.split_first().ok_or(DecodeError::Short)?;
        if version == 0 || version > VERSION {
            return Err(DecodeError::Version(version));
        }
        let body_end = value
            .len()
            .checked_sub(4)
            .filter(|&n| n >= 1)
            .ok_or(DecodeError::Short)?;
        let (body, sum) = value.split_at(body_end);
        if checksum(key, body).to_le_bytes() != sum {
            return Err(DecodeError::Checksum);
        }
        Ok(Reader {
            version,
            buf: body,
            pos: 1,
        })
    }

    fn done(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Short)?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn uint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid("varint"))
    }

    fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        // Every counted item takes at least one byte: a larger count is a corrupt record.
        let n = self.uint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or(DecodeError::Invalid(what))
    }

    fn int(&mut self) -> Result<i64, DecodeError> {
        let v = self.uint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn instant(&mut self) -> Result<Instant, DecodeError> {
        match self.uint()? {
            0 => Ok(Instant::MAX),
            v => {
                let v = v - 1;
                Ok((v >> 1) as i64 ^ -((v & 1) as i64))
            }
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count("length")?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Invalid("string"))
    }

    fn opt_str(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.count("length")? {
            0 => Ok(None),
            n => std::str::from_utf8(self.take(n - 1)?)
                .map(Some)
                .map_err(|_| DecodeError::Invalid("string")),
        }
    }

    fn word<T: Copy>(&mut self, all: &[T], what: &'static str) -> Result<T, DecodeError> {
        all.get(self.byte()? as usize)
            .copied()
            .ok_or(DecodeError::Invalid(what))
    }

    fn ticket(mut self, id: CompactString) -> Result<TicketState, DecodeError> {
        let applied_at = self.int()?;
        let due = self.instant()?;
        let paused_since = self.instant()?;
        let pauses = (0..self.count("pauses")?)
            .map(|_| Ok((self.int()?, self.int()?)))
            .collect::<Result<_, DecodeError>>()?;
        let priority = self.word(Priority::ALL, "priority")?;
        let channel = self.word(Channel::ALL, "channel")?;
        let kind = self.word(Kind::ALL, "kind")?;
        let status = self.word(Status::ALL, "status")?;
        let group = self.opt_str()?.map(Into::into);
        let tier = self.opt_str()?.map(Into::into);
        let tags = (0..self.count("tags")?)
            .map(|_| self.str().map(Into::into))
            .collect::<Result<_, _>>()?;
        let mut seen = [0; 4];
        for s in &mut seen {
            *s = u32::from_le_bytes(self.fixed()?);
        }
        let marks = self.byte()?;
        if marks & 0x7c != 0 {
            return Err(DecodeError::Invalid("flags"));
        }
        let mut cycle = || -> Result<SavedCycle, DecodeError> {
            Ok(SavedCycle {
                start: self.int()?,
                number: u16::try_from(self.uint()?).map_err(|_| DecodeError::Invalid("cycle number"))?,
                flags: self.byte()?,
                escalated: self.byte()?,
                // Version 1 recorded skipped alerts as done, so they stay final.
                skipped: if self.version >= 2 { self.byte()? } else { 0 },
                warned: (0..self.count("warnings")?)
                    .map(|_| Ok(f64::from_bits(u64::from_le_bytes(self.fixed()?))))
                    .collect::<Result<_, DecodeError>>()?,
            })
        };
        let (response, resolution) = (cycle()?, cycle()?);
        self.done()?;
        Ok(TicketState {
            id,
            applied_at,
            due,
            paused_since,
            pauses,
            priority,
            channel,
            kind,
            status,
            group,
            tier,
            tags,
            seen,
            seen_next: marks & 3,
            agent_replied: marks & 0x80 != 0,
            response,
            resolution,
        })
    }

    fn partition(mut self) -> Result<PartitionState, DecodeError> {
        let fingerprint = u64::from_le_bytes(self.fixed()?);
        let progress = Progress {
            frontier: self.int()?,
            max_seen: self.int()?,
            next_held: self.uint()?,
        };
        let topics = (0..self.count("topics")?)
            .map(|_| Ok((self.str()?.to_string(), self.int()?, self.int()?)))
            .collect::<Result<_, DecodeError>>()?;
        self.done()?;
        Ok(PartitionState {
            fingerprint,
            progress,
            topics,
        })
    }

    fn held(mut self) -> Result<HeldRecord, DecodeError> {
        let expiry = self.int()?;
        let topic = self.str()?.to_string();
        let partition = i32::try_from(self.int()?).map_err(|_| DecodeError::Invalid("partition"))?;
        let offset = self.int()?;
        let mut kept = || -> Result<Option<Kept>, DecodeError> {
            match self.byte()? {
                0 => Ok(None),
                1 => {
                    let len = usize::try_from(self.uint()?).map_err(|_| DecodeError::Invalid("length"))?;
                    let bytes = self.bytes()?.to_vec();
                    if len < bytes.len() {
                        return Err(DecodeError::Invalid("length"));
                    }
                    Ok(Some(Kept { bytes, len }))
                }
                _ => Err(DecodeError::Invalid("record")),
            }
        };
        let (key, value) = (kept()?, kept()?);
        self.done()?;
        Ok(HeldRecord {
            expiry,
            topic,
            record: Record {
                topic: 0,
                partition,
                offset,
                key,
                value,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ticket() -> TicketState {
        let cycle = |start, number, flags, warned: &[f64]| SavedCycle {
            start,
            number,
            flags,
            escalated: 0b10,
            warned: warned.to_vec(),
            skipped: 3,
        };
        TicketState {
            id: "T-1".into(),
            applied_at: 1_780_000_000_000,
            due: 1_780_000_900_000,
            paused_since: Instant::MAX,
            pauses: vec![(1_780_000_100_000, 1_780_000_200_000)],
            priority: Priority::High,
            channel: Channel::Chat,
            kind: Kind::Complaint,
            status: Status::Open,
            group: Some("billing".into()),
            tier: None,
            tags: vec!["vip".into(), "émoji ✓".into()],
            seen: [7, 0xdead_beef, 1, 0],
            seen_next: 3,
            agent_replied: true,
            response: cycle(1_780_000_000_000, 2, 17, &[0.5]),
            resolution: cycle(1_779_999_000_000, 1, 5, &[0.5, 0.75]),
        }
    }

    fn sample_partition() -> PartitionState {
        PartitionState {
            fingerprint: 0x0123_4567_89ab_cdef,
            progress: Progress {
                frontier: 1_780_000_500_000,
                max_seen: 1_780_000_600_000,
                next_held: 42,
            },
            topics: vec![
                ("ticket-events".into(), 1234, 1_780_000_500_000),
                ("replies".into(), 0, i64::MIN),
            ],
        }
    }

    fn sample_held() -> HeldRecord {
        HeldRecord {
            expiry: 1_780_000_560_000,
            topic: "replies".into(),
            record: Record {
                topic: 0,
                partition: 2,
                offset: 99,
                key: None,
                value: Some(Kept {
                    bytes: br#"{"type":"reply.sent"}"#.to_vec(),
                    len: 21,
                }),
            },
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn every_record_round_trips() {
        let mut buf = Vec::new();
        let t = sample_ticket();
        encode_ticket(&t, &mut buf);
        assert_eq!(decode(&ticket_key("T-1"), Some(&buf)), Ok(Entry::Ticket(t)));
        let p = sample_partition();
        encode_partition(&p, &mut buf);
        assert_eq!(decode(&partition_key(), Some(&buf)), Ok(Entry::Partition(p)));
        let h = sample_held();
        encode_held(7, &h, &mut buf);
        assert_eq!(decode(&held_key(7), Some(&buf)), Ok(Entry::Held(7, Some(h))));
        assert_eq!(decode(&ticket_key("T-1"), None), Ok(Entry::Forgotten("T-1".into())));
        assert_eq!(decode(&held_key(7), None), Ok(Entry::Held(7, None)));
    }

    /// Records as version 1 wrote them: every later build must read them the same. Version 1
    /// had no skipped alerts (they counted as done).
    #[test]
    fn version_1_records_stay_readable() {
        let ticket = "0180a0a484ce67c18e9285ce670001c0bab084ce6780d5bc84ce67010201010862696c6c696e67000203766970\
                      0ac3a96d6f6a6920e29c9307000000efbeadde01000000000000008380a0a484ce6702110201000000000000e03f\
                      8097aa83ce6701050202000000000000e03f000000000000e83fefa6e519";
        let partition = "01efcdab8967452301c0a4e184ce6780bfed84ce672a020d7469636b65742d6576656e7473a413c0a4e184ce67\
                         077265706c69657300ffffffffffffffffff01ca83c4c2";
        let held = "0180cee884ce67077265706c69657304c601000115157b2274797065223a227265706c792e73656e74227db91e14d2";
        let mut v1_ticket = sample_ticket();
        v1_ticket.response.skipped = 0;
        v1_ticket.resolution.skipped = 0;
        let entries = [
            (ticket_key("T-1"), ticket, Entry::Ticket(v1_ticket)),
            (partition_key(), partition, Entry::Partition(sample_partition())),
            (held_key(7), held, Entry::Held(7, Some(sample_held()))),
        ];
        for (key, bytes, expected) in entries {
            assert_eq!(decode(&key, Some(&unhex(bytes))), Ok(expected));
        }
    }

    /// Version 2 added the skipped position of each cycle.
    #[test]
    fn version_2_records_stay_readable() {
        let ticket = "0280a0a484ce67c18e9285ce670001c0bab084ce6780d5bc84ce67010201010862696c6c696e67000203766970\
                      0ac3a96d6f6a6920e29c9307000000efbeadde01000000000000008380a0a484ce670211020301000000000000e0\
                      3f8097aa83ce670105020302000000000000e03f000000000000e83f3fea1227";
        assert_eq!(
            decode(&ticket_key("T-1"), Some(&unhex(ticket))),
            Ok(Entry::Ticket(sample_ticket()))
        );
    }

    #[test]
    fn damaged_or_foreign_records_are_errors() {
        let mut buf = Vec::new();
        encode_ticket(&sample_ticket(), &mut buf);
        let key = ticket_key("T-1");
        let mut flipped = buf.clone();
        flipped[5] ^= 1;
        assert_eq!(decode(&key, Some(&flipped)), Err(DecodeError::Checksum));
        assert_eq!(decode(&ticket_key("T-2"), Some(&buf)), Err(DecodeError::Checksum));
        assert_eq!(decode(&key, Some(&buf[..3])), Err(DecodeError::Short));
        let mut newer = buf.clone();
        newer[0] = VERSION + 1;
        assert_eq!(decode(&key, Some(&newer)), Err(DecodeError::Version(VERSION + 1)));
        assert_eq!(decode(&key, Some(b"{\"json\":1}")), Err(DecodeError::Version(b'{')));
        assert_eq!(decode(b"x1", Some(&buf)), Err(DecodeError::Key("x1".into())));
        assert_eq!(decode(b"", None), Err(DecodeError::Key(String::new())));
        assert_eq!(decode(&partition_key(), None), Err(DecodeError::Key("p".into())));
        // A record whose checksum is right but whose body is not a ticket.
        let mut w = Writer::start(&mut buf);
        w.uint(u64::MAX);
        w.finish(&key);
        assert_eq!(decode(&key, Some(&buf)), Err(DecodeError::Short));
    }
}

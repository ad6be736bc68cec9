//! One assigned partition: its engine, and per input topic the read position and frontier.
//!
//! Pure bookkeeping around [`Engine`] (no Kafka, no clock): the monitor passes records and
//! wall-clock instants in and sends what comes out. Tested without a broker.
//!
//! With several input topics, events are merged in event-time order: an event waits until
//! the shard's frontier (the minimum over its topics) reaches it, so the engine sees the
//! same sequence as a replay of the merged stream, whatever order the topics were fetched in.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::{Applied, DeadLetter, Engine, Outbox, SlaEvent, Summary};
use crate::event::{self, Body, Event, Reason, Rejection};
use crate::partitioner::Partitioner;
use crate::policy::Rules;
use crate::time::Instant;

/// Most bytes of an input record's key and of its value a dead letter copies: with the headers,
/// well within Kafka's default record size limit (1 MiB), so a dead letter always fits.
pub const DEAD_LETTER_COPY: usize = 256 * 1024;

/// An input record, kept only when it has to be held (orphan) or dead-lettered, as its dead
/// letter will copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index into the configured input topics.
    pub topic: usize,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Kept>,
    /// `None` for a tombstone.
    pub value: Option<Kept>,
}

/// A key or value as a dead letter keeps it: its first [`DEAD_LETTER_COPY`] bytes, and its
/// length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl Kept {
    fn of(bytes: &[u8]) -> Kept {
        Kept {
            bytes: bytes[..bytes.len().min(DEAD_LETTER_COPY)].to_vec(),
            len: bytes.len(),
        }
    }

    /// Whether bytes were left out.
    pub fn cut(&self) -> bool {
        self.len > self.bytes.len()
    }
}

/// Which tickets a shard owns: those whose id maps to its partition under the producers'
/// partitioner.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub partition: i32,
    /// Partitions of each input topic.
    pub partitions: i32,
    pub partitioner: Partitioner,
}

impl Owner {
    /// `misrouted` unless the ticket belongs to this partition.
    fn check(&self, ticket_id: &str) -> Result<(), Rejection> {
        let home = self.partitioner.partition(ticket_id.as_bytes(), self.partitions);
        if home == self.partition {
            return Ok(());
        }
        Err(Rejection::new(
            Reason::Misrouted,
            format!(
                "ticket id maps to partition {home} of {} under the {} partitioner, not {}",
                self.partitions,
                self.partitioner.as_str(),
                self.partition
            ),
        ))
    }
}

/// Read position of one input topic in a shard.
#[derive(Debug, Clone, Copy)]
struct Topic {
    /// Next offset to read; `None` before the first record (reading starts at the beginning).
    next: Option<i64>,
    /// Offset committed when the shard was built: records below it were applied before (by
    /// this or another instance) and their outputs delivered, so re-applying them emits
    /// nothing.
    live_from: i64,
    /// Offset last committed by this shard.
    committed: i64,
    frontier: Instant,
}

/// What a shard applied since the counts were last taken (for the metrics).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Valid events by type ([`crate::event::TYPES`]) and outcome ([`crate::metrics::OUTCOMES`]).
    pub events: [[u64; 4]; 5],
    /// Tickets created, by kind ([`crate::event::Kind::ALL`]).
    pub created: [u64; 2],
}

/// Where an event waits in the merge: its release instant, then topic and offset.
type Key = (Instant, usize, i64);

pub struct Shard {
    pub engine: Engine<Record>,
    owner: Owner,
    topics: Vec<Topic>,
    /// Events read but not yet applied, waiting for the frontier (several input topics).
    waiting: BTreeMap<Key, (Event, Record)>,
    waiting_per_topic: Vec<usize>,
    /// The engine's frontier when the committed offsets were committed: alerts up to it were
    /// delivered before. Once the re-read reaches the committed offsets, the frontier moves
    /// there, so the rebuilt state knows those alerts as emitted.
    restore: Instant,
    /// The frontier last committed by this shard.
    committed_frontier: Instant,
    /// SLA events of the re-read that were published before it: not published again, but
    /// they restore which alerts are active (`crate::notify`). The caller drains them.
    pub replayed: Vec<SlaEvent>,
    /// Valid events applied since the last [`Shard::take_counts`]: by type and outcome
    /// ([`crate::metrics::OUTCOMES`]), and tickets created by kind.
    counts: Counts,
    /// Every topic has been caught up at least once.
    ready: bool,
    /// The ticket gauges, recounted in steps: the pass in progress and the last complete one.
    counting: (usize, Summary),
    counted: Summary,
    allowed_lateness: i64,
    idle_grace: i64,
    max_clock_skew: i64,
    max_event_bytes: usize,
}

impl Shard {
    /// A shard for partition number `owner.partition`, rebuilt by reading every input topic
    /// from the beginning; `committed[t]` is the committed offset of input topic `t` (0 if
    /// none), and `restore` the frontier committed with them (`Instant::MIN` if none).
    pub fn new(rules: Arc<Rules>, owner: Owner, committed: &[i64], restore: Instant) -> Shard {
        let e = &rules.engine;
        Shard {
            owner,
            topics: committed
                .iter()
                .map(|&c| Topic {
                    next: None,
                    live_from: c,
                    committed: c,
                    frontier: Instant::MIN,
                })
                .collect(),
            waiting: BTreeMap::new(),
            waiting_per_topic: vec![0; committed.len()],
            restore,
            committed_frontier: restore,
            replayed: Vec::new(),
            counts: Counts::default(),
            ready: false,
            counting: (0, Summary::default()),
            counted: Summary::default(),
            allowed_lateness: e.allowed_lateness,
            idle_grace: e.idle_grace,
            max_clock_skew: e.max_clock_skew,
            max_event_bytes: e.max_event_bytes,
            engine: Engine::new(rules),
        }
    }

    /// How many events of input topic `topic` wait for the frontier.
    pub fn waiting(&self, topic: usize) -> usize {
        self.waiting_per_topic[topic]
    }

    /// Whether every input topic of the shard has been read to its end at least once.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Recounts the next `n` ticket slots for the gauges.
    pub fn count_tickets(&mut self, n: usize) {
        let (next, partial) = &mut self.counting;
        let end = *next + n;
        self.engine.summarize(*next..end, partial);
        *next = end;
        if end >= self.engine.slots() {
            self.counted = std::mem::take(partial);
            *next = 0;
        }
    }

    /// The last complete count of the tickets, for the gauges.
    pub fn counted(&self) -> &Summary {
        &self.counted
    }

    /// The counts since the last call.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// Next offset to read of input topic `topic`, once known.
    pub fn next(&self, topic: usize) -> Option<i64> {
        self.topics[topic].next
    }

    /// Offset to commit for input topic `topic`: the first record not yet applied.
    pub fn position(&self, topic: usize) -> i64 {
        let t = &self.topics[topic];
        self.waiting
            .keys()
            .filter(|k| k.1 == topic)
            .map(|k| k.2)
            .chain(t.next)
            .min()
            .unwrap_or(t.live_from)
    }

    /// Whether something moved since the last commit: then the offsets of every topic, and the
    /// frontier to record with them.
    pub fn progress(&self) -> Option<(Vec<i64>, Instant)> {
        let positions: Vec<i64> = (0..self.topics.len()).map(|t| self.position(t)).collect();
        let frontier = self.engine.frontier();
        let moved =
            frontier > self.committed_frontier || positions.iter().zip(&self.topics).any(|(&p, t)| p > t.committed);
        moved.then_some((positions, frontier))
    }

    pub fn mark_committed(&mut self, positions: &[i64], frontier: Instant) {
        for (t, &p) in self.topics.iter_mut().zip(positions) {
            t.committed = p;
        }
        self.committed_frontier = frontier;
    }

    /// Decodes one record of input topic `topic` and applies it, or keeps it until the
    /// frontier reaches it. `written` is when the record was written (the earlier of its
    /// broker timestamp and the wall clock), for `max_clock_skew`. A record before the read
    /// position (delivered again by the client) is ignored.
    pub fn record(
        &mut self,
        topic: usize,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        written: Instant,
        out: &mut Outbox<Record>,
    ) {
        if self.topics[topic].next.is_some_and(|n| offset < n) {
            return;
        }
        self.topics[topic].next = Some(offset + 1);
        let partition = self.owner.partition;
        let record = || Record {
            topic,
            partition,
            offset,
            key: key.map(Kept::of),
            value: value.map(Kept::of),
        };
        let decoded = match value {
            None => Err(Rejection::new(
                Reason::InvalidJson,
                "tombstone (record without a value)",
            )),
            Some(bytes) => event::decode(bytes, self.max_event_bytes).and_then(|ev| {
                self.owner.check(&ev.ticket_id)?;
                event::check_clock_skew(&ev, written, self.max_clock_skew).map(|()| ev)
            }),
        };
        let ev = match decoded {
            Ok(ev) => ev,
            Err(rejection) => {
                if offset >= self.topics[topic].live_from {
                    out.dead.push(DeadLetter {
                        payload: record(),
                        rejection,
                    });
                }
                return;
            }
        };
        let at = ev.occurred_at.saturating_sub(self.allowed_lateness);
        let t = &mut self.topics[topic];
        t.frontier = t.frontier.max(at);
        if self.waiting.is_empty() && at <= self.frontier() {
            self.apply((at, topic, offset), &ev, record, out);
        } else {
            self.waiting.insert((at, topic, offset), (ev, record()));
            self.waiting_per_topic[topic] += 1;
        }
        self.release(out);
    }

    /// The live idle step (SPEC §6): every topic read to its end follows the wall clock minus
    /// `idle_grace`; the shard's frontier is the minimum over its topics.
    pub fn tick(&mut self, caught_up: impl Fn(usize) -> bool, now: Instant, out: &mut Outbox<Record>) {
        let idle = now.saturating_sub(self.idle_grace);
        let mut all = true;
        for (i, t) in self.topics.iter_mut().enumerate() {
            if caught_up(i) {
                t.frontier = t.frontier.max(idle);
            } else {
                all = false;
            }
        }
        self.ready |= all;
        self.release(out);
    }

    /// Applies the waiting events the frontier has reached, in order, then moves the engine
    /// to the frontier.
    fn release(&mut self, out: &mut Outbox<Record>) {
        let f = self.frontier();
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > f {
                break;
            }
            let (key, (ev, record)) = entry.remove_entry();
            self.waiting_per_topic[key.1] -= 1;
            self.apply(key, &ev, || record.clone(), out);
        }
        self.advance(f, out);
    }

    /// Advances to the event's instant, then applies it; what applying it emits goes to
    /// `replayed` if it was applied before the commit.
    fn apply(&mut self, (at, topic, offset): Key, ev: &Event, record: impl Fn() -> Record, out: &mut Outbox<Record>) {
        self.advance(at, out);
        let mark = (out.sla.len(), out.dead.len());
        let outcome = match self.engine.apply(ev, &record, out) {
            Applied::Rejected(rejection) => {
                out.dead.push(DeadLetter {
                    payload: record(),
                    rejection,
                });
                None
            }
            Applied::Applied => Some(0),
            Applied::Duplicate => Some(1),
            Applied::Ignored => Some(2),
            Applied::Held => Some(3),
        };
        if let Some(o) = outcome {
            self.counts.events[ev.body.type_index()][o] += 1;
            if let (Body::Created(c), 0) = (&ev.body, o) {
                self.counts.created[c.kind as usize] += 1;
            }
        }
        if offset < self.topics[topic].live_from {
            self.replayed.extend(out.sla.drain(mark.0..));
            out.dead.truncate(mark.1);
        }
    }

    /// Moves the engine's frontier to `f`. What falls due was delivered before, and is not
    /// published again, while the re-read has not reached the committed offsets (the original
    /// run had applied every event read so far, so its frontier was at least this far) and up
    /// to `restore`.
    fn advance(&mut self, f: Instant, out: &mut Outbox<Record>) {
        let quiet = if self.reached_commit() { f.min(self.restore) } else { f };
        if quiet > self.engine.frontier() {
            let mark = (out.sla.len(), out.dead.len());
            self.engine.advance(quiet, out);
            self.replayed.extend(out.sla.drain(mark.0..));
            out.dead.truncate(mark.1);
        }
        self.engine.advance(f, out);
    }

    /// Whether every topic is re-read up to its committed offset.
    fn reached_commit(&self) -> bool {
        self.topics.iter().all(|t| t.next.unwrap_or(0) >= t.live_from)
    }

    /// The minimum over the topics' frontiers; once the re-read reaches the committed offsets,
    /// at least the restored frontier.
    fn frontier(&self) -> Instant {
        let f = self.topics.iter().map(|t| t.frontier).min().unwrap_or(Instant::MIN);
        if self.reached_commit() { f.max(self.restore) } else { f }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::sim::{SimConfig, generate};
    use crate::time::parse_rfc3339;

    const RULES: &str = r#"
[engine]
idle_grace = "1s"
[[policy]]
name = "std"
warn_at = [0.5]
[policy.targets.first_response]
normal = "1h"
"#;

    /// The only partition of the input topics: the shard owns every ticket.
    const ONLY: Owner = Owner {
        partition: 0,
        partitions: 1,
        partitioner: Partitioner::Murmur2,
    };

    fn rules(config: &str) -> Arc<Rules> {
        from_toml(config).unwrap_or_else(|e| panic!("{e}")).rules
    }

    fn ids(out: &Outbox<Record>) -> Vec<String> {
        out.sla.iter().map(|e| e.id()).collect()
    }

    /// Feeds `(topic, json)` records in the given order, offsets counted per topic.
    fn feed(shard: &mut Shard, records: &[(usize, &str)], offsets: &mut [i64], out: &mut Outbox<Record>) {
        for &(topic, json) in records {
            shard.record(topic, offsets[topic], None, Some(json.as_bytes()), i64::MAX, out);
            offsets[topic] += 1;
        }
    }

    fn at(t: &str) -> Instant {
        parse_rfc3339(&format!("2026-11-24T{t}:00Z")).unwrap()
    }

    fn created(id: &str, t: &str) -> String {
        format!(
            r#"{{"type":"ticket.created","ticket_id":"{id}","occurred_at":"2026-11-24T{t}:00Z","priority":"normal","channel":"email","kind":"request","status":"new","opened_by":"customer"}}"#
        )
    }

    fn reply(id: &str, t: &str) -> String {
        format!(
            r#"{{"type":"reply.sent","ticket_id":"{id}","occurred_at":"2026-11-24T{t}:00Z","author":"agent","public":true}}"#
        )
    }

    /// Two topics read in any interleaving give what the engine makes of the merged stream.
    #[test]
    fn several_topics_are_merged_in_event_time_order() {
        let rules = rules(&std::fs::read_to_string("config/example.toml").unwrap());
        let cfg = SimConfig::new(7, 300, 1_780_300_800_000, 400.0);
        let events: Vec<String> = generate(&cfg).map(|e| e.json).collect();
        let until = 1_782_000_000_000; // after the last event

        let mut engine = Engine::new(rules.clone());
        let mut expected = Outbox::default();
        for json in &events {
            let ev = event::decode(json.as_bytes(), 65_536).unwrap();
            engine.handle(&ev, || 0, &mut expected);
        }
        engine.advance(until, &mut expected);

        // Creations on topic 0, everything else on topic 1; topic 1 is read far ahead.
        let (created, activity): (Vec<&String>, Vec<&String>) =
            events.iter().partition(|j| j.contains("ticket.created"));
        let mut order: Vec<(usize, &str)> = Vec::new();
        let mut c = created.iter();
        for chunk in activity.chunks(50) {
            order.extend(chunk.iter().map(|j| (1, j.as_str())));
            order.extend(c.by_ref().take(5).map(|j| (0, j.as_str())));
        }
        order.extend(c.map(|j| (0, j.as_str())));

        let mut shard = Shard::new(rules, ONLY, &[0, 0], Instant::MIN);
        let mut out = Outbox::default();
        feed(&mut shard, &order, &mut [0, 0], &mut out);
        shard.tick(|t| t == 0, until, &mut out);
        assert!(!shard.ready(), "ready only once every topic was caught up");
        shard.tick(|_| true, until + shard.idle_grace, &mut out);
        assert!(shard.ready());
        assert!(expected.sla.len() > 1_000, "{}", expected.sla.len());
        let first_difference = out.sla.iter().zip(&expected.sla).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "{:#?}",
            first_difference.map(|i| (&out.sla[i], &expected.sla[i]))
        );
        assert_eq!(
            out.sla.len(),
            expected.sla.len(),
            "{:#?}",
            &expected.sla[out.sla.len()..]
        );
        assert!(out.dead.is_empty() && shard.waiting.is_empty());
    }

    /// What a shard rebuilt from a commit emits after it equals what the shard that committed
    /// would have emitted, including the retraction of a breach a tick had fired.
    #[test]
    fn a_rebuilt_shard_continues_where_the_commit_left_off() {
        let rules = rules(RULES);
        let records = [
            created("T-1", "10:00"),
            created("T-2", "10:05"),
            reply("T-1", "10:40"),
            reply("T-2", "11:30"),
        ];
        let first: Vec<(usize, &str)> = records[..2].iter().map(|j| (0, j.as_str())).collect();
        let rest: Vec<(usize, &str)> = records[2..].iter().map(|j| (0, j.as_str())).collect();

        let mut original = Shard::new(rules.clone(), ONLY, &[0], Instant::MIN);
        let mut out = Outbox::default();
        feed(&mut original, &first, &mut [0], &mut out);
        // Caught up at 11:20: both tickets breach (T-1's reply of 10:40 comes late).
        original.tick(|_| true, at("11:20") + 1_000, &mut out);
        assert_eq!(
            ids(&out),
            [
                "warning:first_response:1:0.5:T-1",
                "warning:first_response:1:0.5:T-2",
                "breached:first_response:1:T-1",
                "breached:first_response:1:T-2",
            ]
        );
        let (positions, frontier) = original.progress().unwrap();
        assert_eq!((positions.as_slice(), frontier), (&[2][..], at("11:20")));
        original.mark_committed(&positions, frontier);
        assert!(original.progress().is_none());

        let mut after = Outbox::default();
        feed(&mut original, &rest, &mut [2], &mut after);

        // Without the committed frontier (a broker that drops offset metadata), re-reading the
        // committed records still emits nothing: the original had applied them all.
        let mut blind = Shard::new(rules.clone(), ONLY, &positions, Instant::MIN);
        let mut nothing = Outbox::default();
        feed(&mut blind, &first, &mut [0], &mut nothing);
        assert!(nothing.sla.is_empty() && nothing.dead.is_empty());

        let mut rebuilt = Shard::new(rules, ONLY, &positions, frontier);
        let mut again = Outbox::default();
        let all: Vec<(usize, &str)> = first.iter().chain(&rest).copied().collect();
        feed(&mut rebuilt, &all, &mut [0], &mut again);
        assert_eq!(again.sla, after.sla);
        // What was published before the commit is re-derived, not published again.
        assert_eq!(rebuilt.replayed, out.sla);
        assert_eq!(
            ids(&again),
            [
                "breach_retracted:first_response:1:T-1",
                "fulfilled:first_response:1:T-1",
                "fulfilled:first_response:1:T-2",
            ]
        );
    }

    /// A record whose ticket id maps to another partition is a `misrouted` dead letter and
    /// changes nothing: no ticket, no frontier move.
    #[test]
    fn a_record_of_another_partitions_ticket_is_misrouted() {
        let owner = |partition| Owner {
            partition,
            partitions: 3,
            partitioner: Partitioner::Murmur2,
        };
        let home = Partitioner::Murmur2.partition(b"T-1", 3);
        let mut away = Shard::new(rules(RULES), owner((home + 1) % 3), &[0], Instant::MIN);
        let mut out = Outbox::default();
        feed(&mut away, &[(0, &created("T-1", "10:00"))], &mut [0], &mut out);
        let rejected: Vec<Reason> = out.dead.iter().map(|d| d.rejection.reason).collect();
        assert_eq!(rejected, [Reason::Misrouted]);
        assert!(out.dead[0].rejection.detail.contains(&format!("partition {home} of 3")));
        assert!(away.engine.ticket("T-1").is_none());
        assert_eq!(away.engine.frontier(), Instant::MIN);

        let mut own = Shard::new(rules(RULES), owner(home), &[0], Instant::MIN);
        let mut out = Outbox::default();
        feed(&mut own, &[(0, &created("T-1", "10:00"))], &mut [0], &mut out);
        assert!(out.dead.is_empty() && own.engine.ticket("T-1").is_some());
    }
}

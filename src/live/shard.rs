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

use super::changelog::{self, Entry, HeldRecord, PartitionState};
use crate::engine::{Applied, DeadLetter, Engine, Held, Outbox, SlaEvent, Summary};
use crate::event::{self, Body, Channel, Event, Reason, Rejection};
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
#[derive(Debug, Default)]
pub struct Counts {
    /// Valid events by type ([`crate::event::TYPES`]) and outcome ([`crate::metrics::OUTCOMES`]).
    pub events: [[u64; 4]; event::TYPES.len()],
    /// Tickets created, by kind ([`crate::event::Kind::ALL`]).
    pub created: [u64; 2],
    /// Satisfaction ratings applied: score, the ticket's policy (index) and channel.
    pub ratings: Vec<(u8, Option<usize>, Channel)>,
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
        let moved = frontier > self.committed_frontier
            || positions.iter().zip(&self.topics).any(|(&p, t)| p > t.committed)
            || self.engine.has_changes();
        moved.then_some((positions, frontier))
    }

    /// Starts recording what changes, for [`Shard::save`].
    pub fn track_changes(&mut self) {
        self.engine.track_changes();
    }

    /// Hands `emit` the changelog records (key, value or `None` for a tombstone) of what
    /// changed since the last call, one at a time, the partition record last: with
    /// [`Shard::progress`] taken just before, they are the state at those positions. `topics`
    /// are the input topic names.
    pub fn save(&mut self, topics: &[String], fingerprint: u64, mut emit: impl FnMut(&[u8], Option<&[u8]>)) {
        let changed = self.engine.take_changes();
        let mut value = Vec::with_capacity(128);
        for id in &changed.forgotten {
            emit(&changelog::ticket_key(id), None);
        }
        for t in changed.slots.iter().filter_map(|&slot| self.engine.saved_ticket(slot)) {
            changelog::encode_ticket(&t, &mut value);
            emit(&changelog::ticket_key(&t.id), Some(&value));
        }
        for seq in changed.held {
            let held = self.engine.saved_held(seq).map(|(expiry, record)| HeldRecord {
                expiry,
                topic: topics[record.topic].clone(),
                record: record.clone(),
            });
            match held {
                Some(h) => {
                    changelog::encode_held(seq, &h, &mut value);
                    emit(&changelog::held_key(seq), Some(&value));
                }
                None => emit(&changelog::held_key(seq), None),
            }
        }
        let state = PartitionState {
            fingerprint,
            progress: self.engine.progress(),
            topics: (self.topics.iter().enumerate())
                .map(|(i, t)| (topics[i].clone(), self.position(i), t.frontier))
                .collect(),
        };
        changelog::encode_partition(&state, &mut value);
        emit(&changelog::partition_key(), Some(&value));
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
            match (&ev.body, o) {
                (Body::Created(c), 0) => self.counts.created[c.kind as usize] += 1,
                (&Body::Rated { score }, 0) => {
                    let t = self
                        .engine
                        .ticket(&ev.ticket_id)
                        .expect("a rating applies to a known ticket");
                    self.counts.ratings.push((score, t.policy(), t.channel));
                }
                _ => {}
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

/// A shard read back from its changelog partition, record by record (last one wins).
pub struct Restoring {
    engine: Engine<Record>,
    held: BTreeMap<u64, HeldRecord>,
    partition: Option<PartitionState>,
}

impl Restoring {
    pub fn new(rules: Arc<Rules>) -> Restoring {
        let mut engine = Engine::new(rules);
        engine.track_changes();
        Restoring {
            engine,
            held: BTreeMap::new(),
            partition: None,
        }
    }

    pub fn apply(&mut self, entry: Entry) -> Result<(), String> {
        match entry {
            Entry::Ticket(t) => {
                return self
                    .engine
                    .restore_ticket(&t)
                    .map_err(|e| format!("ticket {:?}: {e}", t.id));
            }
            Entry::Forgotten(id) => self.engine.forget_restored(&id),
            Entry::Held(seq, Some(h)) => drop(self.held.insert(seq, h)),
            Entry::Held(seq, None) => drop(self.held.remove(&seq)),
            Entry::Partition(p) => self.partition = Some(p),
        }
        Ok(())
    }

    /// The restored shard, or `None` if the changelog held no state for it (a new group, or one
    /// that ran with `at_least_once` before): then it is rebuilt from the input. `topics` are
    /// the input topic names, `committed` the group's offsets (used for an input topic the saved
    /// state does not know). Outputs of a re-evaluation under changed rules, and held events
    /// that no longer decode under them, go to `out`.
    pub fn finish(
        self,
        owner: Owner,
        topics: &[String],
        committed: &[i64],
        out: &mut Outbox<Record>,
    ) -> Result<Option<Shard>, String> {
        let Restoring {
            mut engine,
            held,
            partition,
            ..
        } = self;
        let Some(saved) = partition else {
            if engine.open_tickets() > 0 || !held.is_empty() {
                return Err("ticket or held-event records without a partition record".into());
            }
            return Ok(None);
        };
        let rules = engine.rules().clone();
        let saved_topic = |name: &str| saved.topics.iter().find(|t| t.0 == name);
        let positions: Vec<i64> = (topics.iter().zip(committed))
            .map(|(name, &c)| saved_topic(name).map_or(c, |t| t.1))
            .collect();
        let mut shard = Shard::new(rules.clone(), owner, &positions, saved.progress.frontier);
        for (t, name) in shard.topics.iter_mut().zip(topics) {
            t.next = Some(t.live_from);
            t.frontier = saved_topic(name).map_or(Instant::MIN, |s| s.2);
        }
        for (seq, h) in held {
            let topic = topics
                .iter()
                .position(|t| *t == h.topic)
                .ok_or_else(|| format!("held event from {:?}, no longer an input topic", h.topic))?;
            let record = Record { topic, ..h.record };
            let value = record.value.as_ref().map_or(&[][..], |v| &v.bytes);
            match event::decode(value, shard.max_event_bytes) {
                Ok(event) => engine.restore_held(
                    seq,
                    Held {
                        expiry: h.expiry,
                        event,
                        payload: record,
                    },
                ),
                Err(rejection) => out.dead.push(DeadLetter {
                    payload: record,
                    rejection,
                }),
            }
        }
        engine.restored(saved.progress, saved.fingerprint != rules.fingerprint, out);
        shard.replayed = engine.active_alerts();
        shard.engine = engine;
        Ok(Some(shard))
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

    /// The changelog of one shard: every save's records, in order.
    type Log = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    /// Feeds chunks `range` to a shard of one topic, ticking after each chunk up to the next
    /// chunk's first instant and saving to `log` as a commit would.
    fn drive(
        shard: &mut Shard,
        chunks: &[Vec<String>],
        range: std::ops::Range<usize>,
        log: &mut Log,
        out: &mut Outbox<Record>,
    ) {
        let names = ["in".to_string()];
        let mut offset: i64 = chunks[..range.start].iter().map(|c| c.len() as i64).sum();
        for (i, chunk) in chunks.iter().enumerate().take(range.end).skip(range.start) {
            for json in chunk {
                shard.record(0, offset, Some(b"k"), Some(json.as_bytes()), i64::MAX, out);
                offset += 1;
            }
            let next = chunks.get(i + 1).map_or(i64::MAX / 2, |c| {
                event::decode(c[0].as_bytes(), 65_536).unwrap().occurred_at
            });
            shard.tick(|_| true, next, out);
            let (positions, frontier) = shard.progress().expect("moved");
            let fingerprint = shard.engine.rules().fingerprint;
            shard.save(&names, fingerprint, |k, v| {
                log.push((k.to_vec(), v.map(<[u8]>::to_vec)))
            });
            shard.mark_committed(&positions, frontier);
        }
    }

    fn saved(shard: &mut Shard, fingerprint: u64) -> Log {
        let mut log = Log::new();
        shard.save(&["in".to_string()], fingerprint, |k, v| {
            log.push((k.to_vec(), v.map(<[u8]>::to_vec)))
        });
        log
    }

    fn restore(rules: &Arc<Rules>, log: &[(Vec<u8>, Option<Vec<u8>>)], out: &mut Outbox<Record>) -> Shard {
        let mut r = Restoring::new(rules.clone());
        for (k, v) in log {
            r.apply(changelog::decode(k, v.as_deref()).unwrap()).unwrap();
        }
        r.finish(ONLY, &["in".to_string()], &[0], out)
            .unwrap()
            .expect("saved state")
    }

    fn dead(out: &Outbox<Record>) -> Vec<(Record, Reason)> {
        out.dead
            .iter()
            .map(|d| (d.payload.clone(), d.rejection.reason))
            .collect()
    }

    /// A shard restored from its changelog at any commit emits from there on exactly what the
    /// shard that saved it emits: SLA events, the expiry of a held event, in the same order.
    #[test]
    fn a_shard_restored_from_its_changelog_continues_exactly() {
        let rules = rules(&std::fs::read_to_string("config/example.toml").unwrap());
        let cfg = SimConfig::new(11, 400, 1_780_300_800_000, 300.0);
        let mut events: Vec<String> = generate(&cfg).map(|e| e.json).collect();
        // An event for a ticket never created: held across a commit, then dead-lettered.
        let early = event::decode(events[248].as_bytes(), 65_536).unwrap().occurred_at;
        let orphan = format!(
            r#"{{"type":"reply.sent","ticket_id":"ghost","occurred_at":"{}","author":"agent","public":true}}"#,
            crate::time::Rfc3339(early)
        );
        events.insert(249, orphan);
        let chunks: Vec<Vec<String>> = events.chunks(250).map(<[String]>::to_vec).collect();
        assert!(chunks.len() > 5);

        let mut original = Shard::new(rules.clone(), ONLY, &[0], Instant::MIN);
        original.track_changes();
        let (mut log, mut out) = (Log::new(), Outbox::default());
        let mut marks = Vec::new();
        for i in 0..chunks.len() {
            drive(&mut original, &chunks, i..i + 1, &mut log, &mut out);
            marks.push((i + 1, log.len(), out.sla.len(), out.dead.len()));
        }
        assert!(out.sla.len() > 500, "{}", out.sla.len());
        assert_eq!(
            dead(&out).iter().map(|d| d.1).collect::<Vec<_>>(),
            [Reason::UnknownTicket],
            "the held event expires"
        );
        assert_eq!((marks[0].3, marks[0].0), (0, 1), "held across the first commit");
        for &(chunk, logged, sla, dead_letters) in [marks[0], marks[2], marks[chunks.len() - 2]].iter() {
            let mut restored_out = Outbox::default();
            let mut restored = restore(&rules, &log[..logged], &mut restored_out);
            assert!(restored_out.sla.is_empty() && restored_out.dead.is_empty());
            drive(
                &mut restored,
                &chunks,
                chunk..chunks.len(),
                &mut Log::new(),
                &mut restored_out,
            );
            assert_eq!(restored_out.sla, out.sla[sla..], "restored after chunk {chunk}");
            assert_eq!(dead(&restored_out), dead(&out)[dead_letters..]);
        }
        // Compaction keeps the last record per key: the same state.
        let mut compacted: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (k, v) in log.iter().rev() {
            if !compacted.iter().any(|(c, _)| c == k) {
                compacted.push((k.clone(), v.clone()));
            }
        }
        compacted.reverse();
        let restored = restore(&rules, &compacted, &mut Outbox::default());
        assert_eq!(restored.engine.open_tickets(), original.engine.open_tickets());
        assert_eq!(restored.engine.frontier(), original.engine.frontier());
    }

    /// Restored under changed rules (a tighter target), running cycles are re-evaluated: a
    /// breach now past is emitted at once, and the alerts the saved state had emitted are
    /// active again for the alert outputs.
    #[test]
    fn a_restore_under_changed_rules_re_evaluates_running_cycles() {
        let before = rules(RULES);
        let mut shard = Shard::new(before.clone(), ONLY, &[0], Instant::MIN);
        shard.track_changes();
        let mut out = Outbox::default();
        feed(
            &mut shard,
            &[(0, &created("T-1", "10:00")), (0, &created("T-2", "10:40"))],
            &mut [0],
            &mut out,
        );
        assert_eq!(ids(&out), ["warning:first_response:1:0.5:T-1"]);
        shard.progress().unwrap();
        let log = saved(&mut shard, before.fingerprint);

        let same = restore(&before, &log, &mut Outbox::default());
        let active: Vec<String> = same.replayed.iter().map(SlaEvent::id).collect();
        assert_eq!(active, ["warning:first_response:1:0.5:T-1"]);

        let tighter = rules(&RULES.replace("normal = \"1h\"", "normal = \"30m\""));
        assert_ne!(tighter.fingerprint, before.fingerprint);
        let mut out = Outbox::default();
        let changed = restore(&tighter, &log, &mut out);
        assert_eq!(ids(&out), ["breached:first_response:1:T-1"]);
        assert_eq!(out.sla[0].at, at("10:30"));
        assert!(changed.engine.has_changes(), "the re-evaluated state is saved again");
    }

    /// A changelog with ticket records but no partition record is not a state to continue from.
    #[test]
    fn ticket_records_without_a_partition_record_are_refused() {
        let mut shard = Shard::new(rules(RULES), ONLY, &[0], Instant::MIN);
        shard.track_changes();
        feed(
            &mut shard,
            &[(0, &created("T-1", "10:00"))],
            &mut [0],
            &mut Outbox::default(),
        );
        let mut log = saved(&mut shard, 0);
        log.pop();
        let mut r = Restoring::new(rules(RULES));
        for (k, v) in &log {
            r.apply(changelog::decode(k, v.as_deref()).unwrap()).unwrap();
        }
        let e = r
            .finish(ONLY, &["in".to_string()], &[0], &mut Outbox::default())
            .err()
            .unwrap();
        assert!(e.contains("without a partition record"), "{e}");
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

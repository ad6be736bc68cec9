//! One assigned partition: its engine, and per input topic the read position and frontier.
//!
//! Pure bookkeeping around [`Engine`] (no Kafka, no clock): the monitor passes records and
//! wall-clock instants in and sends what comes out. Tested without a broker.

use std::sync::Arc;

use crate::engine::{Applied, DeadLetter, Engine, Outbox};
use crate::event::{self, Reason, Rejection};
use crate::policy::Rules;
use crate::time::Instant;

/// An input record, kept only when it has to be held (orphan) or dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index into the configured input topics.
    pub topic: usize,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Read position of one input topic in a shard.
#[derive(Debug, Clone, Copy)]
struct Topic {
    /// Next offset to read; `None` before the first record (reading starts at the beginning).
    next: Option<i64>,
    /// Offset committed when the shard was built: records below it were applied before (by
    /// this or another instance) and their outputs acknowledged, so re-reading them emits
    /// nothing.
    live_from: i64,
    /// Offset last committed by this shard.
    committed: i64,
    frontier: Instant,
}

pub struct Shard {
    pub engine: Engine<Record>,
    partition: i32,
    topics: Vec<Topic>,
    allowed_lateness: i64,
    idle_grace: i64,
    max_clock_skew: i64,
    max_event_bytes: usize,
}

impl Shard {
    /// A shard for partition number `partition`, rebuilt by reading every input topic from the
    /// beginning; `committed[t]` is the committed offset of input topic `t` (0 if none).
    pub fn new(rules: Arc<Rules>, partition: i32, committed: &[i64]) -> Shard {
        let e = &rules.engine;
        Shard {
            partition,
            topics: committed
                .iter()
                .map(|&c| Topic {
                    next: None,
                    live_from: c,
                    committed: c,
                    frontier: Instant::MIN,
                })
                .collect(),
            allowed_lateness: e.allowed_lateness,
            idle_grace: e.idle_grace,
            max_clock_skew: e.max_clock_skew,
            max_event_bytes: e.max_event_bytes,
            engine: Engine::new(rules),
        }
    }

    /// Next offset to read of input topic `topic`, once known.
    pub fn next(&self, topic: usize) -> Option<i64> {
        self.topics[topic].next
    }

    /// Topics read past their last commit, with the offset to commit.
    pub fn progress(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.topics
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.next.filter(|&n| n > t.committed).map(|n| (i, n)))
    }

    pub fn mark_committed(&mut self, topic: usize, offset: i64) {
        self.topics[topic].committed = offset;
    }

    /// Whether the state is still within what was committed for every topic while reading
    /// `offset` of `topic`: its outputs were delivered before, by this or another instance.
    fn rebuilding(&self, topic: usize, offset: i64) -> bool {
        offset < self.topics[topic].live_from
            && self
                .topics
                .iter()
                .enumerate()
                .all(|(i, t)| i == topic || t.next.is_none_or(|n| n <= t.live_from))
    }

    /// Decodes and applies one record of input topic `topic`. `written` is when the record was
    /// written (the earlier of its broker timestamp and the wall clock), for `max_clock_skew`.
    /// Returns whether its outputs must be suppressed (re-read after a restart or move).
    pub fn record(
        &mut self,
        topic: usize,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        written: Instant,
        out: &mut Outbox<Record>,
    ) -> bool {
        let suppress = self.rebuilding(topic, offset);
        self.topics[topic].next = Some(offset + 1);
        let partition = self.partition;
        let record = || Record {
            topic,
            partition,
            offset,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
        };
        let decoded = match value {
            None => Err(Rejection::new(
                Reason::InvalidJson,
                "tombstone (record without a value)",
            )),
            Some(bytes) => event::decode(bytes, self.max_event_bytes)
                .and_then(|ev| event::check_clock_skew(&ev, written, self.max_clock_skew).map(|()| ev)),
        };
        let ev = match decoded {
            Ok(ev) => ev,
            Err(rejection) => {
                out.dead.push(DeadLetter {
                    payload: record(),
                    rejection,
                });
                return suppress;
            }
        };
        let t = &mut self.topics[topic];
        t.frontier = t.frontier.max(ev.occurred_at.saturating_sub(self.allowed_lateness));
        self.engine.advance(self.frontier(), out);
        if let Applied::Rejected(rejection) = self.engine.apply(&ev, record, out) {
            out.dead.push(DeadLetter {
                payload: record(),
                rejection,
            });
        }
        suppress
    }

    /// The live idle step (SPEC §6): every topic read to its end follows the wall clock minus
    /// `idle_grace`; the shard's frontier is the minimum over its topics.
    pub fn tick(&mut self, caught_up: impl Fn(usize) -> bool, now: Instant, out: &mut Outbox<Record>) {
        let idle = now.saturating_sub(self.idle_grace);
        for (i, t) in self.topics.iter_mut().enumerate() {
            if caught_up(i) {
                t.frontier = t.frontier.max(idle);
            }
        }
        self.engine.advance(self.frontier(), out);
    }

    fn frontier(&self) -> Instant {
        self.topics.iter().map(|t| t.frontier).min().unwrap_or(Instant::MIN)
    }
}

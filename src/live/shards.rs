//! The shards of the assigned partitions, by partition number, and what happens to them:
//! assignment (keep or rebuild given the committed offsets), records, ticks and the metrics they
//! update, merge back-pressure, and the progress to commit.
//!
//! No Kafka types: the adapter ([`super::kafka`]) passes plain partitions, offsets, keys and
//! values in, and carries out what comes back (where to read from, which topic-partitions to
//! pause or resume, the outbox to produce). Everything here is reached under one lock, taken by
//! the consumer loop, its rebalance callbacks and the HTTP API's views.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::{info, warn};

use super::probe::Ends;
use super::shard::{Owner, Record, Restoring, Shard};
use super::{Guarantee, Settings};
use crate::engine::{Outbox, SlaEvent};
use crate::event::{self, Kind};
use crate::metrics::{Metrics, OUTCOMES};
use crate::notify::Notifier;
use crate::policy::Rules;
use crate::time::Instant;

/// Tickets per shard recounted for the gauges (open tickets, cycles by state, at risk) at each
/// tick, and scanned per lock by the at-risk API: about 8 ms of work on business calendars.
pub const STEP: usize = 50_000;

/// An input record as the consumer delivered it.
pub struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The broker's timestamp, if the record has one.
    pub timestamp: Option<Instant>,
}

/// What the group committed for one input topic-partition.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// 0 if nothing was committed.
    pub offset: i64,
    /// The frontier committed as the offset's metadata, if any.
    pub frontier: Option<Instant>,
}

/// The shards, and what the consumer loop knows of their input topic-partitions.
pub struct Shards {
    pub settings: Arc<Settings>,
    pub rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    /// Partitions were assigned at least once (readiness).
    assigned: bool,
    ends: Arc<Ends>,
    /// Partitions of each input topic.
    partitions: i32,
    pub by_partition: HashMap<i32, Shard>,
    topic_index: HashMap<String, usize>,
    /// What the shards emitted, for the adapter to produce.
    pub outbox: Outbox<Record>,
    /// Topic-partitions paused because too many of their events wait in a merge.
    paused: Vec<(usize, i32)>,
    /// Topic-partitions whose end the consumer reached with no record since (partition EOF).
    at_eof: HashSet<(usize, i32)>,
    notifier: Notifier,
}

impl Shards {
    /// No shards until the first assignment; `partitions` is the input topics' partition count.
    pub fn new(
        settings: Arc<Settings>,
        rules: Arc<Rules>,
        metrics: Arc<Metrics>,
        ends: Arc<Ends>,
        partitions: i32,
        notifier: Notifier,
    ) -> Shards {
        let topic_index = settings
            .input_topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Shards {
            settings,
            rules,
            metrics,
            assigned: false,
            ends,
            partitions,
            by_partition: HashMap::new(),
            topic_index,
            outbox: Outbox::default(),
            paused: Vec::new(),
            at_eof: HashSet::new(),
            notifier,
        }
    }

    /// The assigned partitions (`committed`, see [`Shards::assign`]) that this instance does
    /// not hold a shard for at the committed position: their shards must be restored.
    pub fn to_build(&self, committed: &[(i32, Vec<Committed>)]) -> Vec<i32> {
        committed
            .iter()
            .filter(|(p, c)| {
                let shard = self.by_partition.get(p);
                !shard.is_some_and(|s| c.iter().enumerate().all(|(t, c)| s.position(t) == c.offset))
            })
            .map(|(p, _)| *p)
            .collect()
    }

    /// Keeps shards whose commit position equals the committed offsets (this instance had the
    /// partition and committed everything before the rebalance); the others come from
    /// `restored` (read from the changelog), or without saved state are rebuilt from the
    /// beginning of the log, suppressing what was delivered before the commit. `committed`
    /// has, for each assigned partition number in ascending order, what was committed for each
    /// input topic. Returns where to read each input topic-partition from: its shard's next
    /// offset, or `None` for the beginning.
    pub fn assign(
        &mut self,
        committed: &[(i32, Vec<Committed>)],
        mut restored: HashMap<i32, Restoring>,
    ) -> Result<Vec<(usize, i32, Option<i64>)>, String> {
        let topics = self.settings.input_topics.len();
        let partitions: Vec<i32> = committed.iter().map(|&(p, _)| p).collect();
        let build = self.to_build(committed);
        let (mut rebuilt, mut from_changelog) = (Vec::new(), Vec::new());
        let mut starts = Vec::new();
        for (p, committed) in committed {
            let p = *p;
            if build.contains(&p) {
                let owner = Owner {
                    partition: p,
                    partitions: self.partitions,
                    partitioner: self.settings.partitioner,
                };
                let offsets: Vec<i64> = committed.iter().map(|c| c.offset).collect();
                let saved = match restored.remove(&p) {
                    Some(r) => r
                        .finish(owner, &self.settings.input_topics, &offsets, &mut self.outbox)
                        .map_err(|e| format!("partition {p}: {e}"))?,
                    None => None,
                };
                let mut shard = match saved {
                    Some(shard) => {
                        from_changelog.push((p, shard.engine.open_tickets()));
                        shard
                    }
                    None => {
                        let restore = committed
                            .iter()
                            .map(|c| c.frontier.unwrap_or(Instant::MIN))
                            .fold(Instant::MAX, Instant::min);
                        rebuilt.push(p);
                        Shard::new(self.rules.clone(), owner, &offsets, restore)
                    }
                };
                if self.settings.guarantee == Guarantee::ExactlyOnce {
                    shard.track_changes();
                }
                self.by_partition.insert(p, shard);
            }
            let shard = &self.by_partition[&p];
            starts.extend((0..topics).map(|t| (t, p, shard.next(t))));
        }
        for (_, mut gone) in self.by_partition.extract_if(|p, _| !partitions.contains(p)) {
            count_events(&self.metrics, &mut gone);
        }
        let shards = &self.by_partition;
        self.notifier
            .forget(|id| shards.values().any(|s| s.engine.ticket(id).is_some()));
        self.assigned = true;
        self.at_eof.clear();
        let m = &self.metrics;
        m.frontier_lag.reset();
        m.consumer_lag.reset();
        m.caught_up.reset();
        *self.ends.assigned.lock().expect("probe lock") = partitions
            .iter()
            .flat_map(|&p| (0..topics).map(move |t| (t, p)))
            .collect();
        info!(assigned = ?partitions, rebuilding = ?rebuilt, restored = ?from_changelog, "partitions assigned");
        Ok(starts)
    }

    /// Forgets every shard (a transaction was aborted: they are ahead of the last commit).
    pub fn drop_all(&mut self) {
        self.by_partition.clear();
        self.outbox.sla.clear();
        self.outbox.dead.clear();
    }

    /// Hands `emit` the changelog records of shard `p` since its last save (see
    /// [`Shard::save`]).
    pub fn save(&mut self, p: i32, emit: impl FnMut(&[u8], Option<&[u8]>)) {
        let fingerprint = self.rules.fingerprint;
        if let Some(s) = self.by_partition.get_mut(&p) {
            s.save(&self.settings.input_topics, fingerprint, emit);
        }
    }

    /// The partitions are being revoked: the paused topic-partitions, to resume.
    pub fn take_paused(&mut self) -> Vec<(usize, i32)> {
        std::mem::take(&mut self.paused)
    }

    /// The partitions were given up: the probe stops watching them.
    pub fn unassigned(&self) {
        self.ends.assigned.lock().expect("probe lock").clear();
    }

    /// Applies one record; returns its topic-partition, to pause, when too many of its events
    /// wait.
    pub fn record(&mut self, rec: &Input<'_>, wall: Instant) -> Option<(usize, i32)> {
        let &topic = self.topic_index.get(rec.topic)?;
        let Some(shard) = self.by_partition.get_mut(&rec.partition) else {
            warn!(
                topic = rec.topic,
                partition = rec.partition,
                "record of an unassigned partition"
            );
            return None;
        };
        let written = rec.timestamp.map_or(wall, |t| t.min(wall));
        self.at_eof.remove(&(topic, rec.partition));
        shard.record(topic, rec.offset, rec.key, rec.value, written, &mut self.outbox);
        self.notifier.replayed(&mut shard.replayed, wall);
        let paused = (topic, rec.partition);
        if shard.waiting(topic) >= self.settings.merge_buffer && !self.paused.contains(&paused) {
            self.paused.push(paused);
            return Some(paused);
        }
        None
    }

    /// The consumer reached the end of partition `p` of an input topic. librdkafka does not
    /// say which; it is one whose shard has read everything fetched, and any other is cleared
    /// again by its next record.
    pub fn end_of_partition(&mut self, p: i32) {
        self.at_eof
            .extend((0..self.settings.input_topics.len()).map(|t| (t, p)));
    }

    /// Idle step of every shard, then the partition metrics and merge back-pressure: returns
    /// the paused topic-partitions whose merge is down to half of `merge_buffer`, to resume.
    /// `position(topic, partition)` is the consumer's read position, if known: past the
    /// records delivered and past transaction markers, which are never delivered.
    pub fn tick(&mut self, wall: Instant, position: impl Fn(usize, i32) -> Option<i64>) -> Vec<(usize, i32)> {
        // A partition counts as caught up only after the consumer delivered its end-of-partition
        // event, with no record since (librdkafka queues it after the last record fetched), and
        // a recent `ListOffsets` answer agrees (the broker is reachable and the end recent).
        let window = self.settings.caught_up_window;
        let topics = &self.settings.input_topics;
        let m = &self.metrics;
        for (&p, shard) in &mut self.by_partition {
            let partition = p.to_string();
            let ends: Vec<bool> = (0..topics.len())
                .map(|t| {
                    let next = position(t, p).or(shard.next(t));
                    let caught_up = self.at_eof.contains(&(t, p)) && self.ends.at_end(t, p, next, window);
                    let labels = [topics[t].as_str(), &partition];
                    m.caught_up.with_label_values(&labels).set(i64::from(caught_up));
                    if let Some(lag) = self.ends.lag(t, p, next) {
                        m.consumer_lag.with_label_values(&labels).set(lag);
                    }
                    caught_up
                })
                .collect();
            shard.tick(|t| ends[t], wall, &mut self.outbox);
            self.notifier.replayed(&mut shard.replayed, wall);
            let frontier = shard.engine.frontier();
            if frontier > Instant::MIN {
                m.frontier_lag
                    .with_label_values(&[&partition])
                    .set((wall - frontier) as f64 / 1000.0);
            }
            count_events(m, shard);
            shard.count_tickets(STEP);
        }
        m.tickets(self.by_partition.values().map(Shard::counted));
        let ready = self.assigned && self.by_partition.values().all(Shard::ready);
        m.ready.set(i64::from(ready));
        self.notifier.tick(wall, ready);
        let (shards, limit) = (&self.by_partition, self.settings.merge_buffer);
        let (resume, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.paused)
            .into_iter()
            .partition(|(t, p)| shards.get(p).is_none_or(|s| s.waiting(*t) <= limit / 2));
        self.paused = keep;
        resume
    }

    /// An SLA event on its way to the output topic: counted, and handed to the alert outputs;
    /// `now` is the wall clock, for alert latency.
    pub fn published(&mut self, ev: &SlaEvent, now: Instant) {
        self.metrics.sla_event(ev, now);
        self.notifier.observe(ev, now);
    }

    /// The shards whose progress moved since their last commit: by partition, the offsets of
    /// every input topic and the frontier to record with them.
    pub fn progress(&self) -> Vec<(i32, Vec<i64>, Instant)> {
        self.by_partition
            .iter()
            .filter_map(|(&p, shard)| shard.progress().map(|(positions, f)| (p, positions, f)))
            .collect()
    }

    /// The `progress` taken before was committed.
    pub fn mark_committed(&mut self, progress: Vec<(i32, Vec<i64>, Instant)>) {
        for (p, positions, frontier) in progress {
            if let Some(shard) = self.by_partition.get_mut(&p) {
                shard.mark_committed(&positions, frontier);
            }
        }
    }
}

/// Adds a shard's event counts to the metrics.
fn count_events(metrics: &Metrics, shard: &mut Shard) {
    let counts = shard.take_counts();
    for (ty, by_outcome) in event::TYPES.iter().zip(counts.events) {
        for (outcome, n) in OUTCOMES.iter().zip(by_outcome) {
            if n > 0 {
                metrics.events.with_label_values(&[ty, outcome]).inc_by(n);
            }
        }
    }
    for (kind, n) in Kind::ALL.iter().zip(counts.created) {
        metrics.created.with_label_values(&[kind.as_str()]).inc_by(n);
    }
    for (score, policy, channel) in counts.ratings {
        metrics.rated(score, policy.map(|p| &*shard.engine.rules().policies[p].name), channel);
    }
}

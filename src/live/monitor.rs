//! The consumer loop: records → shards → output topics, ticks, commits and rebalances.
//!
//! One thread polls the group consumer and owns the shards (behind a mutex that only the
//! rebalance callback, running inside `poll` on the same thread, also takes). Outputs go to an
//! idempotent producer whose own thread handles acknowledgements. Offsets are committed only
//! after a flush has confirmed every output produced before the snapshot of positions
//! (docs/ARCHITECTURE.md).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant as WallInstant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tracing::{debug, error, info, warn};

use super::probe::{self, Ends};
use super::shard::{Record, Shard};
use super::{LiveError, Settings};
use crate::engine::{CycleState, CycleView, DeadLetter, Outbox, SlaEvent};
use crate::event::{self, Kind};
use crate::http::{Api, AtRisk};
use crate::metrics::{Metrics, OUTCOMES, SINKS};
use crate::notify::{self, Notifier};
use crate::policy::Rules;
use crate::time::Instant;

/// How often idle partitions re-check the wall clock (SPEC §6: at least every second).
const TICK: Duration = Duration::from_millis(250);
/// Tickets per shard recounted for the gauges (open tickets, cycles by state, at risk) at each
/// tick, and scanned per lock by the at-risk API: about 8 ms of work on business calendars.
const STEP: usize = 50_000;
/// Longest wait for output acknowledgements before a periodic commit is put off.
const COMMIT_FLUSH: Duration = Duration::from_millis(500);

/// Producer side: counts deliveries and remembers the first that failed for good.
pub struct Deliveries {
    failed: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
    output_topic: String,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let topic = match result {
            Ok(msg) => msg.topic(),
            Err((_, msg)) => msg.topic(),
        };
        let sink = if topic == self.output_topic { SINKS[0] } else { SINKS[1] };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.deliveries.with_label_values(&[sink, outcome]).inc();
        if let Err((e, msg)) = result {
            error!(topic = msg.topic(), "output delivery failed: {e}");
            self.failed
                .lock()
                .expect("delivery lock")
                .get_or_insert_with(|| format!("to topic {}: {e}", msg.topic()));
        }
    }
}

/// Consumer side: the shards, reached from the loop and from rebalance callbacks.
pub struct Ctx {
    state: Arc<Mutex<State>>,
}

struct State {
    settings: Arc<Settings>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    /// Partitions were assigned at least once (readiness).
    assigned: bool,
    producer: ThreadedProducer<Deliveries>,
    ends: Arc<Ends>,
    shards: HashMap<i32, Shard>,
    topic_index: HashMap<String, usize>,
    outbox: Outbox<Record>,
    /// Topic-partitions paused because too many of their events wait in a merge.
    paused: Vec<(usize, i32)>,
    /// Topic-partitions whose end the consumer reached with no record since (partition EOF).
    at_eof: HashSet<(usize, i32)>,
    notifier: Notifier,
    buf: Vec<u8>,
    fatal: Option<LiveError>,
}

impl ClientContext for Ctx {
    /// librdkafka also reports each end of partition as an error; it is not one here.
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) => debug!("{reason}"),
            e => error!("librdkafka: {e}: {reason}"),
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut state = self.lock();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = state.assign(consumer, tpl) {
                    state.error("rebalance", e);
                    return;
                }
                if let Err(e) = consumer.assign(tpl) {
                    state.error("rebalance", e.into());
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = tpl.count(), "partitions revoked");
                let grace = state.settings.shutdown_grace;
                state.commit(consumer, CommitMode::Sync, grace);
                for (t, p) in std::mem::take(&mut state.paused) {
                    state.pause(consumer, t, p, false);
                }
                if let Err(e) = consumer.unassign() {
                    warn!("unassigning partitions: {e}");
                }
                state.ends.assigned.lock().expect("probe lock").clear();
            }
            other => {
                state.metrics.errors.with_label_values(&["rebalance"]).inc();
                warn!("rebalance error: {other:?}");
            }
        }
    }
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("shard lock")
    }
}

impl State {
    /// Keeps shards whose commit position equals the committed offsets (this instance had the
    /// partition and committed everything before the rebalance); rebuilds the others from the
    /// beginning of the log, suppressing what was delivered before the commit.
    fn assign(&mut self, consumer: &BaseConsumer<Ctx>, tpl: &mut TopicPartitionList) -> Result<(), LiveError> {
        let committed = consumer.committed_offsets(tpl.clone(), self.settings.shutdown_grace)?;
        let topics = &self.settings.input_topics;
        let mut partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let mut fresh = Vec::new();
        for &p in &partitions {
            let mut restore = Instant::MAX;
            let offsets: Vec<i64> = topics
                .iter()
                .map(|t| {
                    let entry = committed.find_partition(t, p);
                    let committed_frontier = entry.as_ref().and_then(|e| e.metadata().parse().ok());
                    restore = restore.min(committed_frontier.unwrap_or(Instant::MIN));
                    match entry.map(|e| e.offset()) {
                        Some(Offset::Offset(n)) => n,
                        _ => 0,
                    }
                })
                .collect();
            let keep = self.settings.keep_shards
                && self
                    .shards
                    .get(&p)
                    .is_some_and(|s| (0..topics.len()).all(|t| s.position(t) == offsets[t]));
            if !keep {
                let shard = Shard::new(self.rules.clone(), p, &offsets, restore);
                self.shards.insert(p, shard);
                fresh.push(p);
            }
            let shard = &self.shards[&p];
            for (t, topic) in topics.iter().enumerate() {
                let start = shard.next(t).map_or(Offset::Beginning, Offset::Offset);
                if tpl.find_partition(topic, p).is_some() {
                    tpl.set_partition_offset(topic, p, start)?;
                }
            }
        }
        for (_, mut gone) in self.shards.extract_if(|p, _| !partitions.contains(p)) {
            count_events(&self.metrics, &mut gone);
        }
        let shards = &self.shards;
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
            .flat_map(|&p| (0..topics.len()).map(move |t| (t, p)))
            .collect();
        info!(assigned = ?partitions, rebuilding = ?fresh, "partitions assigned");
        Ok(())
    }

    /// Applies one record; pauses its topic-partition when too many of its events wait.
    fn record(&mut self, consumer: &BaseConsumer<Ctx>, msg: &rdkafka::message::BorrowedMessage<'_>, wall: Instant) {
        let Some(&topic) = self.topic_index.get(msg.topic()) else {
            return;
        };
        let Some(shard) = self.shards.get_mut(&msg.partition()) else {
            warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                "record of an unassigned partition"
            );
            return;
        };
        let written = msg.timestamp().to_millis().map_or(wall, |t| t.min(wall));
        self.at_eof.remove(&(topic, msg.partition()));
        shard.record(topic, msg.offset(), msg.key(), msg.payload(), written, &mut self.outbox);
        self.notifier.replayed(&mut shard.replayed, wall);
        if shard.waiting(topic) >= self.settings.merge_buffer && !self.paused.contains(&(topic, msg.partition())) {
            self.paused.push((topic, msg.partition()));
            self.pause(consumer, topic, msg.partition(), true);
        }
        self.send(wall);
    }

    /// The consumer reached the end of partition `p` of an input topic. librdkafka does not
    /// say which; it is one whose shard has read everything fetched, and any other is cleared
    /// again by its next record.
    fn end_of_partition(&mut self, p: i32) {
        self.at_eof
            .extend((0..self.settings.input_topics.len()).map(|t| (t, p)));
    }

    /// Pauses or resumes fetching one input topic-partition (librdkafka resumes at the last
    /// record it delivered).
    fn pause(&self, consumer: &BaseConsumer<Ctx>, topic: usize, partition: i32, pause: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.input_topics[topic], partition);
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) => debug!(topic = %self.settings.input_topics[topic], partition, pause, "merge back-pressure"),
            Err(e) => warn!("pausing or resuming a partition: {e}"),
        }
    }

    /// Idle step of every shard, then the partition metrics and merge back-pressure.
    fn tick(&mut self, consumer: &BaseConsumer<Ctx>, wall: Instant) {
        // A partition counts as caught up only after the consumer delivered its end-of-partition
        // event, with no record since, and a recent `ListOffsets` answer agrees. The event comes
        // after the last record fetched, whatever the broker says the high watermark is
        // (tansu 0.6 answers the last batch's base offset plus one).
        let window = self.settings.caught_up_window;
        let topics = &self.settings.input_topics;
        let m = &self.metrics;
        for (&p, shard) in &mut self.shards {
            let partition = p.to_string();
            let ends: Vec<bool> = (0..topics.len())
                .map(|t| {
                    let caught_up = self.at_eof.contains(&(t, p)) && self.ends.at_end(t, p, shard.next(t), window);
                    let labels = [topics[t].as_str(), &partition];
                    m.caught_up.with_label_values(&labels).set(i64::from(caught_up));
                    if let Some(lag) = self.ends.lag(t, p, shard.next(t)) {
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
        m.tickets(self.shards.values().map(Shard::counted));
        let ready = self.assigned && self.shards.values().all(Shard::ready);
        m.ready.set(i64::from(ready));
        self.notifier.tick(wall, ready);
        let (shards, limit) = (&self.shards, self.settings.merge_buffer);
        let (resume, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.paused)
            .into_iter()
            .partition(|(t, p)| shards.get(p).is_none_or(|s| s.waiting(*t) <= limit / 2));
        self.paused = keep;
        for (t, p) in resume {
            self.pause(consumer, t, p, false);
        }
        self.send(wall);
    }

    /// Counts an error of `stage` and stops the monitor with it.
    fn error(&mut self, stage: &str, e: LiveError) {
        self.metrics.errors.with_label_values(&[stage]).inc();
        self.fatal.get_or_insert(e);
    }

    /// Hands the outbox to the producer; `now` is the wall clock, for alert latency.
    fn send(&mut self, now: Instant) {
        let sla = std::mem::take(&mut self.outbox.sla);
        for ev in &sla {
            log_sla(ev);
            self.metrics.sla_event(ev, now);
            self.notifier.observe(ev, now);
            self.buf.clear();
            ev.write_json(&mut self.buf);
            let record = BaseRecord::to(&self.settings.output_topic)
                .key(ev.ticket_id.as_bytes())
                .payload(self.buf.strip_suffix(b"\n").unwrap_or(&self.buf));
            if let Err(e) = super::send(&self.producer, record) {
                self.error("produce", LiveError::Delivery(e.to_string()));
            }
        }
        self.outbox.sla = sla;
        self.outbox.sla.clear();
        for dead in std::mem::take(&mut self.outbox.dead) {
            self.dead_letter(&dead);
        }
    }

    fn dead_letter(&mut self, dead: &DeadLetter<Record>) {
        let rec = &dead.payload;
        let topic = &self.settings.input_topics[rec.topic];
        warn!(
            reason = %dead.rejection.reason,
            topic = %topic,
            partition = rec.partition,
            offset = rec.offset,
            "dead letter: {}",
            dead.rejection.detail
        );
        self.metrics
            .dead_letters
            .with_label_values(&[dead.rejection.reason.as_str()])
            .inc();
        let (partition, offset) = (rec.partition.to_string(), rec.offset.to_string());
        let headers = OwnedHeaders::new()
            .insert(header("slawatch.reason", dead.rejection.reason.as_str()))
            .insert(header("slawatch.detail", &dead.rejection.detail))
            .insert(header("slawatch.source.topic", topic))
            .insert(header("slawatch.source.partition", &partition))
            .insert(header("slawatch.source.offset", &offset));
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.settings.dead_letter_topic).headers(headers);
        if let Some(key) = &rec.key {
            record = record.key(&key[..]);
        }
        if let Some(value) = &rec.value {
            record = record.payload(&value[..]);
        }
        if let Err(e) = super::send(&self.producer, record) {
            self.error("produce", LiveError::Delivery(e.to_string()));
        }
    }

    /// Commits every shard's progress, with its frontier as the offsets' metadata, once all
    /// outputs produced so far are acknowledged.
    fn commit(&mut self, consumer: &BaseConsumer<Ctx>, mode: CommitMode, wait: Duration) {
        let progress: Vec<(i32, Vec<i64>, Instant)> = self
            .shards
            .iter()
            .filter_map(|(&p, shard)| shard.progress().map(|(positions, f)| (p, positions, f)))
            .collect();
        if progress.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, positions, frontier) in &progress {
            for (topic, &offset) in self.settings.input_topics.iter().zip(positions) {
                let mut e = tpl.add_partition(topic, *p);
                e.set_offset(Offset::Offset(offset)).expect("a valid offset");
                e.set_metadata(frontier.to_string());
            }
        }
        if let Err(e) = self.producer.flush(wait) {
            debug!("outputs not yet acknowledged, commit put off: {e}");
            return;
        }
        if let Some(failed) = self.producer.context().failed.lock().expect("delivery lock").clone() {
            self.fatal.get_or_insert(LiveError::Delivery(failed));
            return;
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                for (p, positions, frontier) in progress {
                    if let Some(shard) = self.shards.get_mut(&p) {
                        shard.mark_committed(&positions, frontier);
                    }
                }
            }
            Err(e) => {
                self.metrics.errors.with_label_values(&["commit"]).inc();
                warn!("committing offsets: {e}");
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
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

fn log_sla(ev: &SlaEvent) {
    info!(
        ticket = %ev.ticket_id,
        clock = %ev.clock.as_str(),
        cycle = ev.cycle,
        policy = %ev.policy,
        priority = %ev.priority.as_str(),
        at = %crate::time::Rfc3339(ev.at),
        "{}",
        ev.kind.as_str()
    );
}

/// Consumes until `stop` is set, then drains and commits within the shutdown grace period.
pub fn run(
    settings: Arc<Settings>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    bootstrap: &str,
    stop: Arc<AtomicBool>,
) -> Result<(), LiveError> {
    let producer: ThreadedProducer<Deliveries> = super::producer_config(&settings, bootstrap)
        .create_with_context(Deliveries {
            failed: Mutex::default(),
            metrics: metrics.clone(),
            output_topic: settings.output_topic.clone(),
        })
        .map_err(LiveError::Client)?;
    let (notifier, notify_thread) = notify::start(
        &settings.alerting,
        metrics.clone(),
        stop.clone(),
        settings.shutdown_grace,
    )
    .map_err(LiveError::Notify)?;
    let ends = Arc::new(Ends::default());
    let topic_index = settings
        .input_topics
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i))
        .collect();
    let state = State {
        settings: settings.clone(),
        rules,
        metrics: metrics.clone(),
        assigned: false,
        producer,
        ends: ends.clone(),
        shards: HashMap::new(),
        topic_index,
        outbox: Outbox::default(),
        paused: Vec::new(),
        at_eof: HashSet::new(),
        notifier,
        buf: Vec::with_capacity(1024),
        fatal: None,
    };
    let state = Arc::new(Mutex::new(state));
    let api = Arc::new(Shards(state.clone()));
    let token = settings.api_token.as_deref();
    let (_, http) = crate::http::spawn(settings.http_listen, metrics.clone(), api, token, stop.clone())
        .map_err(|e| LiveError::Http(settings.http_listen, e))?;
    let ctx = Ctx { state };
    let consumer: BaseConsumer<Ctx> = super::consumer_config(&settings, bootstrap)
        .create_with_context(ctx)
        .map_err(LiveError::Client)?;
    let probe_client = super::client_config(bootstrap, &settings.client, &[], &[]);
    let probe_check: BaseConsumer = probe_client.create().map_err(LiveError::Client)?;
    let partitions = probe::partition_counts(&probe_check, &settings.input_topics)?;
    drop(probe_check);
    let probe = probe::spawn(&probe_client, settings.input_topics.clone(), ends.clone(), stop.clone())
        .map_err(LiveError::Client)?;
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    info!(topics = ?topics, partitions, group = %settings.group_id, "consuming");

    let ctx = consumer.context().clone();
    let (mut last_tick, mut last_commit) = (WallInstant::now(), WallInstant::now());
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Some(e) = ends.fatal.lock().expect("probe lock").take() {
            break Err(LiveError::Topology(e));
        }
        if let Some(e) = ctx.lock().fatal.take() {
            break Err(e);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => ctx.lock().record(&consumer, &msg, super::wall_now()),
            Some(Err(KafkaError::PartitionEOF(p))) => ctx.lock().end_of_partition(p),
            Some(Err(e)) => {
                ctx.lock().metrics.errors.with_label_values(&["consume"]).inc();
                warn!("consumer: {e}");
            }
            None => {}
        }
        if last_tick.elapsed() >= TICK {
            last_tick = WallInstant::now();
            ctx.lock().tick(&consumer, super::wall_now());
        }
        if last_commit.elapsed() >= settings.commit_interval {
            last_commit = WallInstant::now();
            ctx.lock().commit(&consumer, CommitMode::Async, COMMIT_FLUSH);
        }
    };
    info!("stopping: draining outputs and committing");
    {
        let mut state = ctx.lock();
        let grace = settings.shutdown_grace;
        state.commit(&consumer, CommitMode::Sync, grace);
    }
    stop.store(true, Ordering::Relaxed);
    drop(consumer);
    let _ = probe.join();
    let _ = http.join();
    if let Some(thread) = notify_thread {
        let _ = thread.join();
    }
    result
}

/// The shards as the HTTP API reads them: each call takes the loop's lock once.
struct Shards(Arc<Mutex<State>>);

impl Shards {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("shard lock")
    }
}

impl Api for Shards {
    fn ticket(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        state.shards.iter().find_map(|(&p, shard)| {
            let e = &shard.engine;
            let t = e.ticket(id)?;
            let cycles: Vec<Value> = e.cycles(t).map(|c| cycle_json(&c)).collect();
            Some(json!({
                "ticket_id": t.id.as_str(),
                "partition": p,
                "status": t.status.as_str(),
                "priority": t.priority.as_str(),
                "channel": t.channel.as_str(),
                "kind": t.kind.as_str(),
                "group": e.group_name(t),
                "customer_tier": e.tier_name(t),
                "policy": t.policy().map(|i| state.rules.policies[i].name.as_ref()),
                "frontier": rfc3339(e.frontier()),
                "cycles": cycles,
            }))
        })
    }

    /// Scans each shard in steps of [`STEP`] tickets, taking the lock for one step at a time,
    /// and keeps the `limit` soonest.
    fn at_risk(&self, q: &AtRisk) -> Vec<Value> {
        let (partitions, policy) = {
            let state = self.lock();
            let policy = q
                .policy
                .as_deref()
                .map(|name| state.rules.policies.iter().position(|p| &*p.name == name));
            (state.shards.keys().copied().collect::<Vec<i32>>(), policy)
        };
        if policy == Some(None) {
            return Vec::new();
        }
        let mut found: Vec<(Instant, String, Value)> = Vec::new();
        for p in partitions {
            let mut next = 0;
            loop {
                let state = self.lock();
                let Some(shard) = state.shards.get(&p) else { break };
                let e = &shard.engine;
                let horizon = e.frontier().saturating_add(q.within_ms);
                for t in e.tickets(next..next + STEP) {
                    if policy.is_some_and(|want| want != t.policy()) {
                        continue;
                    }
                    for c in e.cycles(t) {
                        let due = c.deadline.filter(|&d| d <= horizon && c.elapsed_ms.is_some());
                        let Some(deadline) = due.filter(|_| q.clock.is_none_or(|k| k == c.clock)) else {
                            continue;
                        };
                        let mut v = cycle_json(&c);
                        v["ticket_id"] = json!(t.id.as_str());
                        v["partition"] = json!(p);
                        v["policy"] = json!(t.policy().map(|i| state.rules.policies[i].name.as_ref()));
                        v["breached"] = json!(c.state == CycleState::Breached);
                        found.push((deadline, t.id.to_string(), v));
                    }
                }
                next += STEP;
                if found.len() > 4 * q.limit {
                    soonest(&mut found, q.limit);
                }
                if next >= e.slots() {
                    break;
                }
            }
        }
        soonest(&mut found, q.limit);
        found.into_iter().map(|(_, _, v)| v).collect()
    }

    fn policies(&self) -> Value {
        self.lock().settings.catalogue.clone()
    }
}

/// Keeps the `limit` soonest, in order (ties by ticket id).
fn soonest(found: &mut Vec<(Instant, String, Value)>, limit: usize) {
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    found.truncate(limit);
}

fn rfc3339(t: Instant) -> Option<String> {
    (t > Instant::MIN).then(|| crate::time::Rfc3339(t).to_string())
}

fn cycle_json(c: &CycleView) -> Value {
    json!({
        "clock": c.clock.as_str(),
        "cycle": c.number,
        "state": c.state.as_str(),
        "started_at": rfc3339(c.start),
        "deadline": c.deadline.and_then(rfc3339),
        "target_ms": c.target_ms,
        "elapsed_ms": c.elapsed_ms,
    })
}

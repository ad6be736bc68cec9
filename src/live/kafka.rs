//! The Kafka adapter: client configurations, the consumer loop and its rebalances, the output
//! and dead-letter records, and the commits.
//!
//! One thread polls the group consumer and drives the shards (behind a mutex that only the
//! rebalance callback, running inside `poll` on the same thread, and the HTTP API's views also
//! take). Outputs go to an idempotent producer whose own thread handles acknowledgements.
//!
//! Exactly-once: the producer is transactional and one transaction spans the time between two
//! commits; a commit writes the changed shard state to the changelog, adds the input offsets to
//! the transaction with the consumer's group metadata (a member fenced out of the group cannot
//! commit), and commits it. At-least-once: offsets are committed only after a flush has
//! confirmed every output produced before the snapshot of positions (docs/ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant as WallInstant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Message, OwnedHeaders, ToBytes};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::probe::Ends;
use super::shard::Record;
use super::shards::{Committed, Input, Shards};
use super::{Guarantee, LiveError, Settings, store};
use crate::engine::{DeadLetter, SlaEvent};
use crate::metrics::{Metrics, SINKS};
use crate::time::{Instant, wall_now};

/// How often idle partitions re-check the wall clock (SPEC §6: at least every second).
const TICK: Duration = Duration::from_millis(250);
/// Longest wait for output acknowledgements before a periodic commit is put off.
const COMMIT_FLUSH: Duration = Duration::from_millis(500);

/// A client configuration: `defaults`, then the bootstrap servers and the configured
/// properties (`[kafka.client]`), which may override them, then `forced`, which slawatch relies
/// on.
pub fn client_config(
    bootstrap: &str,
    client: &BTreeMap<String, String>,
    defaults: &[(&str, &str)],
    forced: &[(&str, &str)],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    let configured = client.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in defaults
        .iter()
        .copied()
        .chain([("bootstrap.servers", bootstrap)])
        .chain(configured)
        .chain(forced.iter().copied())
    {
        c.set(k, v);
    }
    c
}

/// The group consumer. Offsets are committed by the monitor only; range assignment keeps
/// co-partitioned topics' partitions of one number on one instance. During a catch-up the
/// prefetch queue is full most of the time, and librdkafka then postpones the next fetch by
/// `fetch.queue.backoff.ms` (default 1 s), long enough for the loop to drain the queue and
/// wait: 10 ms keeps it fed (2.4 times the catch-up rate on the benchmark).
fn consumer_config(s: &Settings, bootstrap: &str) -> ClientConfig {
    client_config(
        bootstrap,
        &s.client,
        &[("auto.offset.reset", "earliest"), ("fetch.queue.backoff.ms", "10")],
        &[
            ("group.id", &s.group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("partition.assignment.strategy", "range"),
        ],
    )
}

/// The output producer: idempotent, keys hashed as the input's producers do; transactional
/// (exactly-once), or retrying until delivered (at-least-once). A transaction bounds how long a
/// message may wait (`transaction.timeout.ms`, librdkafka's default 60 s): one that times out
/// aborts the transaction, which is then done again.
fn producer_config(s: &Settings, bootstrap: &str) -> ClientConfig {
    let defaults = [("linger.ms", "5"), ("partitioner", s.partitioner.librdkafka())];
    match s.guarantee {
        Guarantee::ExactlyOnce => client_config(
            bootstrap,
            &s.client,
            &defaults,
            &[
                ("enable.idempotence", "true"),
                ("transactional.id", &transactional_id(s)),
            ],
        ),
        Guarantee::AtLeastOnce => client_config(
            bootstrap,
            &s.client,
            &defaults,
            &[("enable.idempotence", "true"), ("message.timeout.ms", "0")],
        ),
    }
}

/// `kafka.transactional_id`, by default `{group_id}-{host name}`: stable across restarts of one
/// instance (a restart fences its predecessor and aborts what it left open at once), distinct
/// between instances on different hosts.
pub fn transactional_id(s: &Settings) -> String {
    s.transactional_id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{}-{host}", s.group_id)
    })
}

/// Produces one record, waiting while the producer's bounded queue is full.
pub fn send<C, K, P>(producer: &ThreadedProducer<C>, mut record: BaseRecord<'_, K, P>) -> Result<(), KafkaError>
where
    C: ProducerContext<DeliveryOpaque = ()>,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Producer side: counts deliveries and remembers the first output that failed for good, which
/// no commit may pass.
pub struct Deliveries {
    failed: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
    output_topic: String,
    changelog_topic: String,
    /// In a transaction, a message that timed out or was purged by an abort is done again.
    transactional: bool,
}

impl Deliveries {
    fn failed(&self, what: impl FnOnce() -> String) {
        self.failed.lock().expect("delivery lock").get_or_insert_with(what);
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let topic = match result {
            Ok(msg) => msg.topic(),
            Err((_, msg)) => msg.topic(),
        };
        if topic != self.changelog_topic {
            let sink = if topic == self.output_topic { SINKS[0] } else { SINKS[1] };
            let outcome = if result.is_ok() { "ok" } else { "error" };
            self.metrics.deliveries.with_label_values(&[sink, outcome]).inc();
        }
        if let Err((e, msg)) = result {
            let redone = self.transactional
                && matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::MessageTimedOut
                            | RDKafkaErrorCode::PurgeQueue
                            | RDKafkaErrorCode::PurgeInflight
                    )
                );
            if redone {
                debug!(
                    topic = msg.topic(),
                    "output not delivered, the transaction will be done again: {e}"
                );
            } else {
                error!(topic = msg.topic(), "output delivery failed: {e}");
                self.failed(|| format!("to topic {}: {e}", msg.topic()));
            }
        }
    }
}

/// The output producer, counting its deliveries; with exactly-once, its transactions are
/// initialised (fencing an earlier instance with the same transactional id) and the first one
/// is begun.
pub fn producer(
    s: &Settings,
    bootstrap: &str,
    metrics: Arc<Metrics>,
) -> Result<ThreadedProducer<Deliveries>, LiveError> {
    let transactional = s.guarantee == Guarantee::ExactlyOnce;
    let producer: ThreadedProducer<Deliveries> = producer_config(s, bootstrap)
        .create_with_context(Deliveries {
            failed: Mutex::default(),
            metrics,
            output_topic: s.output_topic.clone(),
            changelog_topic: s.changelog_topic.clone(),
            transactional,
        })
        .map_err(LiveError::Client)?;
    if transactional {
        producer.init_transactions(s.shutdown_grace.max(TXN_INIT))?;
        producer.begin_transaction()?;
        info!(transactional_id = %transactional_id(s), "transactional producer ready");
    }
    Ok(producer)
}

/// Least time allowed for `init_transactions`, which waits for an earlier instance's open
/// transaction to be aborted.
const TXN_INIT: Duration = Duration::from_secs(30);

/// Consumer side: the shards, reached from the loop and from rebalance callbacks, and the
/// producer their outputs go to.
pub struct Ctx {
    settings: Arc<Settings>,
    /// For restores from the changelog.
    bootstrap: String,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    shards: Arc<Mutex<Shards>>,
    producer: ThreadedProducer<Deliveries>,
    /// Output records are encoded into it (taken only while the shards are locked).
    buf: Mutex<Vec<u8>>,
    /// The error that stops the monitor.
    fatal: Mutex<Option<LiveError>>,
    /// A transaction was aborted: the shards must be restored from the last commit.
    redo: AtomicBool,
}

/// The group consumer, driving `shards` and producing their outputs with `producer`.
pub fn consumer(
    s: &Arc<Settings>,
    bootstrap: &str,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    shards: Arc<Mutex<Shards>>,
    producer: ThreadedProducer<Deliveries>,
) -> Result<BaseConsumer<Ctx>, LiveError> {
    let ctx = Ctx {
        settings: s.clone(),
        bootstrap: bootstrap.to_string(),
        stop,
        metrics,
        shards,
        producer,
        buf: Mutex::new(Vec::with_capacity(1024)),
        fatal: Mutex::default(),
        redo: AtomicBool::new(false),
    };
    consumer_config(s, bootstrap)
        .create_with_context(ctx)
        .map_err(LiveError::Client)
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        client_error(error, reason);
    }
}

/// Logs a librdkafka error; it also reports each end of partition as a global error, which is
/// not one for consumers that ask for them.
pub fn client_error(error: KafkaError, reason: &str) {
    match error {
        KafkaError::Global(RDKafkaErrorCode::PartitionEOF) | KafkaError::PartitionEOF(_) => debug!("{reason}"),
        e => error!("librdkafka: {e}: {reason}"),
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut shards = self.lock();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = self.assign(&mut shards, consumer, tpl) {
                    self.fail("rebalance", e);
                    return;
                }
                if let Err(e) = consumer.assign(tpl) {
                    self.fail("rebalance", e.into());
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = tpl.count(), "partitions revoked");
                let grace = self.settings.shutdown_grace;
                self.commit(&mut shards, consumer, CommitMode::Sync, grace);
                for (t, p) in shards.take_paused() {
                    self.pause(consumer, t, p, false);
                }
                if let Err(e) = consumer.unassign() {
                    warn!("unassigning partitions: {e}");
                }
                shards.unassigned();
            }
            other => {
                self.metrics.errors.with_label_values(&["rebalance"]).inc();
                warn!("rebalance error: {other:?}");
            }
        }
    }
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shards> {
        self.shards.lock().expect("shard lock")
    }

    /// Reads the committed offsets of the assigned partitions, hands them to the shards, and
    /// sets each topic-partition's start to where its shard reads next.
    fn assign(
        &self,
        shards: &mut Shards,
        consumer: &BaseConsumer<Ctx>,
        tpl: &mut TopicPartitionList,
    ) -> Result<(), LiveError> {
        let committed = self.committed(consumer, tpl)?;
        let topics = &self.settings.input_topics;
        let mut partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let committed: Vec<(i32, Vec<Committed>)> = partitions
            .iter()
            .map(|&p| {
                let by_topic = topics
                    .iter()
                    .map(|t| {
                        let entry = committed.find_partition(t, p);
                        Committed {
                            frontier: entry.as_ref().and_then(|e| e.metadata().parse().ok()),
                            offset: match entry.map(|e| e.offset()) {
                                Some(Offset::Offset(n)) => n,
                                _ => 0,
                            },
                        }
                    })
                    .collect();
                (p, by_topic)
            })
            .collect();
        let restored = match self.settings.guarantee {
            Guarantee::ExactlyOnce => {
                let build = shards.to_build(&committed);
                store::restore(&self.settings, &self.bootstrap, &shards.rules, &build, &self.stop)?
            }
            Guarantee::AtLeastOnce => Default::default(),
        };
        for (t, p, next) in shards.assign(&committed, restored).map_err(LiveError::Changelog)? {
            let topic = &topics[t];
            if tpl.find_partition(topic, p).is_some() {
                tpl.set_partition_offset(topic, p, next.map_or(Offset::Beginning, Offset::Offset))?;
            }
        }
        Ok(())
    }

    /// The committed offsets of `tpl`. With exactly-once they must be stable: offsets that an
    /// open transaction (of an instance that crashed) is committing are not answered until the
    /// transaction ends, at the latest after `transaction.timeout.ms`, so this waits for them.
    fn committed(
        &self,
        consumer: &BaseConsumer<Ctx>,
        tpl: &TopicPartitionList,
    ) -> Result<TopicPartitionList, LiveError> {
        loop {
            match consumer.committed_offsets(tpl.clone(), self.settings.shutdown_grace) {
                Err(e)
                    if self.settings.guarantee == Guarantee::ExactlyOnce
                        && !self.stop.load(Ordering::Relaxed)
                        && e.rdkafka_error_code().is_some_and(|c| {
                            matches!(
                                c,
                                RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::UnstableOffsetCommit
                            )
                        }) =>
                {
                    warn!("committed offsets not yet stable (an earlier owner's transaction is open): {e}");
                }
                result => return result.map_err(LiveError::from),
            }
        }
    }

    /// After an aborted transaction: every shard is dropped and restored from the last commit,
    /// and consumption resumes at the committed offsets.
    fn redo(&self, consumer: &BaseConsumer<Ctx>) {
        let mut shards = self.lock();
        for (t, p) in shards.take_paused() {
            self.pause(consumer, t, p, false);
        }
        shards.drop_all();
        let result = consumer.assignment().map_err(LiveError::from).and_then(|mut tpl| {
            self.assign(&mut shards, consumer, &mut tpl)?;
            consumer.assign(&tpl)?;
            Ok(())
        });
        match result {
            Ok(()) => info!("transaction aborted; shards restored from the last commit"),
            Err(e) => self.fail("restore", e),
        }
    }

    /// Applies one record; pauses its topic-partition when too many of its events wait.
    fn record(&self, consumer: &BaseConsumer<Ctx>, msg: &BorrowedMessage<'_>, wall: Instant) {
        let mut shards = self.lock();
        let input = Input {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            value: msg.payload(),
            timestamp: msg.timestamp().to_millis(),
        };
        if let Some((topic, partition)) = shards.record(&input, wall) {
            self.pause(consumer, topic, partition, true);
        }
        self.send(&mut shards, wall);
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

    /// Idle step of every shard; resumes the topic-partitions whose merge drained. Returns
    /// whether it emitted SLA events.
    fn tick(&self, consumer: &BaseConsumer<Ctx>, wall: Instant) -> bool {
        let positions = consumer.position().unwrap_or_default();
        let topics = &self.settings.input_topics;
        let position = |t: usize, p: i32| match positions.find_partition(&topics[t], p)?.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        let mut shards = self.lock();
        for (t, p) in shards.tick(wall, position) {
            self.pause(consumer, t, p, false);
        }
        let emitted = !shards.outbox.sla.is_empty();
        self.send(&mut shards, wall);
        emitted
    }

    /// Counts an error of `stage` and stops the monitor with it.
    fn fail(&self, stage: &str, e: LiveError) {
        self.metrics.errors.with_label_values(&[stage]).inc();
        self.fatal.lock().expect("fatal lock").get_or_insert(e);
    }

    /// Hands the outbox to the producer; `now` is the wall clock, for alert latency.
    fn send(&self, shards: &mut Shards, now: Instant) {
        let mut guard = self.buf.lock().expect("output buffer lock");
        let buf: &mut Vec<u8> = &mut guard;
        let sla = std::mem::take(&mut shards.outbox.sla);
        for ev in &sla {
            if let Some(level) = self.settings.sla_event_level {
                log_sla(ev, level);
            }
            shards.published(ev, now);
            buf.clear();
            ev.write_json(buf);
            let record = BaseRecord::to(&self.settings.output_topic)
                .key(ev.ticket_id.as_bytes())
                .payload(buf.strip_suffix(b"\n").unwrap_or(buf));
            self.produce(record);
        }
        shards.outbox.sla = sla;
        shards.outbox.sla.clear();
        for dead in std::mem::take(&mut shards.outbox.dead) {
            self.dead_letter(&dead);
        }
    }

    fn dead_letter(&self, dead: &DeadLetter<Record>) {
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
        let mut headers = OwnedHeaders::new()
            .insert(header("slawatch.reason", dead.rejection.reason.as_str()))
            .insert(header("slawatch.detail", &dead.rejection.detail))
            .insert(header("slawatch.source.topic", topic))
            .insert(header("slawatch.source.partition", &partition))
            .insert(header("slawatch.source.offset", &offset));
        let cut: Vec<String> = [("key", &rec.key), ("value", &rec.value)]
            .into_iter()
            .filter_map(|(what, kept)| kept.as_ref().filter(|k| k.cut()).map(|k| format!("{what}:{}", k.len)))
            .collect();
        if !cut.is_empty() {
            headers = headers.insert(header("slawatch.truncated", &cut.join(",")));
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.settings.dead_letter_topic).headers(headers);
        if let Some(key) = &rec.key {
            record = record.key(&key.bytes[..]);
        }
        if let Some(value) = &rec.value {
            record = record.payload(&value.bytes[..]);
        }
        self.produce(record);
    }

    /// Hands one output record to the producer. A record it refuses is an output lost: no
    /// later commit may pass it, and the monitor stops.
    fn produce(&self, record: BaseRecord<'_, [u8], [u8]>) {
        let topic = record.topic;
        if let Err(e) = send(&self.producer, record) {
            error!(topic = %topic, "producing an output failed: {e}");
            let what = format!("to topic {topic}: {e}");
            self.producer.context().failed(|| what.clone());
            self.fail("produce", LiveError::Delivery(what));
        }
    }

    /// Commits every shard's progress, with its frontier as the offsets' metadata, once all
    /// outputs produced so far are acknowledged; with exactly-once, together with the changed
    /// state, in the open transaction, and begins the next one.
    fn commit(&self, shards: &mut Shards, consumer: &BaseConsumer<Ctx>, mode: CommitMode, wait: Duration) {
        let progress = shards.progress();
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
        let transactional = self.settings.guarantee == Guarantee::ExactlyOnce;
        if transactional {
            for &(p, _, _) in &progress {
                shards.save(p, |key, value| {
                    let mut record = BaseRecord::to(&self.settings.changelog_topic).key(key).partition(p);
                    if let Some(v) = value {
                        record = record.payload(v);
                    }
                    self.produce(record);
                });
            }
        }
        if let Err(e) = self.producer.flush(wait) {
            debug!("outputs not yet acknowledged, commit put off: {e}");
            return;
        }
        if let Some(failed) = self.producer.context().failed.lock().expect("delivery lock").clone() {
            self.fatal
                .lock()
                .expect("fatal lock")
                .get_or_insert(LiveError::Delivery(failed));
            return;
        }
        if !transactional {
            match consumer.commit(&tpl, mode) {
                Ok(()) => shards.mark_committed(progress),
                Err(e) => {
                    self.metrics.errors.with_label_values(&["commit"]).inc();
                    warn!("committing offsets: {e}");
                }
            }
            return;
        }
        match self.commit_transaction(consumer, &tpl, wait) {
            Ok(true) => shards.mark_committed(progress),
            Ok(false) => self.metrics.errors.with_label_values(&["commit"]).inc(),
            Err(e) => {
                error!("transactions cannot continue, stopping: {e}");
                self.fail("commit", LiveError::Transaction(e));
            }
        }
    }

    /// Adds `offsets` to the open transaction, commits it and begins the next: `Ok(true)`. A
    /// request that times out is retried for up to `run.shutdown_grace`; an abortable error
    /// aborts, and the loop then restores the shards from the last commit (the aborted outputs
    /// are produced again): `Ok(false)`. Any other error (fenced by another instance with the
    /// same transactional id, say) ends the transactions.
    fn commit_transaction(
        &self,
        consumer: &BaseConsumer<Ctx>,
        offsets: &TopicPartitionList,
        wait: Duration,
    ) -> Result<bool, KafkaError> {
        let wait = wait.max(COMMIT_FLUSH);
        let group = consumer.group_metadata().expect("a consumer with a group id");
        let retrying = |op: &dyn Fn() -> Result<(), KafkaError>| {
            let started = WallInstant::now();
            loop {
                match op() {
                    Err(KafkaError::Transaction(e))
                        if e.is_retriable() && started.elapsed() < self.settings.shutdown_grace =>
                    {
                        debug!("transaction request retried: {e}");
                    }
                    result => return result,
                }
            }
        };
        let result = retrying(&|| self.producer.send_offsets_to_transaction(offsets, &group, wait))
            .and_then(|()| retrying(&|| self.producer.commit_transaction(wait)));
        match result {
            Ok(()) => self.producer.begin_transaction().map(|()| true),
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                warn!("transaction aborted: {e}");
                self.producer.abort_transaction(self.settings.shutdown_grace)?;
                self.producer.begin_transaction()?;
                // The loop restores the shards once their lock is released.
                self.redo.store(true, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

fn log_sla(ev: &SlaEvent, level: tracing::Level) {
    // tracing's macros take their level as a constant.
    macro_rules! line {
        ($macro:ident) => {
            $macro!(
                ticket = %ev.ticket_id,
                clock = %ev.clock.as_str(),
                cycle = ev.cycle,
                policy = %ev.policy,
                priority = %ev.priority.as_str(),
                at = %crate::time::Rfc3339(ev.at),
                "{}",
                ev.kind.as_str()
            )
        };
    }
    if level == tracing::Level::INFO {
        line!(info)
    } else {
        line!(debug)
    }
}

/// Consumes until `stop` is set (or `ends` or an output reports a fatal error), then drains and
/// commits within the shutdown grace period.
pub fn run(consumer: &BaseConsumer<Ctx>, ends: &Ends, stop: &AtomicBool) -> Result<(), LiveError> {
    let ctx = consumer.context();
    let settings = &ctx.settings;
    let (mut last_tick, mut last_commit) = (WallInstant::now(), WallInstant::now());
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Some(e) = ends.fatal.lock().expect("probe lock").take() {
            break Err(LiveError::Topology(e));
        }
        if let Some(e) = ctx.fatal.lock().expect("fatal lock").take() {
            break Err(e);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => ctx.record(consumer, &msg, wall_now()),
            Some(Err(KafkaError::PartitionEOF(p))) => ctx.lock().end_of_partition(p),
            Some(Err(e)) => {
                ctx.metrics.errors.with_label_values(&["consume"]).inc();
                warn!("consumer: {e}");
            }
            None => {}
        }
        let now = WallInstant::now();
        // With transactions, alerts are visible once committed: a tick that raised some
        // commits at once.
        let mut alerts = false;
        if now - last_tick >= TICK {
            last_tick = now;
            alerts = ctx.tick(consumer, wall_now()) && settings.guarantee == Guarantee::ExactlyOnce;
        }
        if alerts || now - last_commit >= settings.commit_interval {
            last_commit = now;
            ctx.commit(&mut ctx.lock(), consumer, CommitMode::Async, COMMIT_FLUSH);
        }
        if ctx.redo.swap(false, Ordering::Relaxed) {
            ctx.redo(consumer);
        }
    };
    info!("stopping: draining outputs and committing");
    ctx.commit(&mut ctx.lock(), consumer, CommitMode::Sync, settings.shutdown_grace);
    result
}

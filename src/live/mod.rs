//! Live monitoring (`slawatch run`): the engine fed from Kafka, one shard per partition.
//!
//! - [`monitor`]: the consumer loop, outputs, commits and rebalances;
//! - [`shard`]: per-partition frontier and read positions around the engine (pure);
//! - [`probe`]: end-of-log confirmations and the co-partitioning check;
//! - [`feed`]: the simulator publishing to a topic.
//!
//! With `brokers = "embedded"` an in-process Kafka-protocol broker (librdkafka's mock
//! cluster) is started first. How restarts and partition moves keep every ticket and alert is
//! in docs/ARCHITECTURE.md.

mod feed;
mod monitor;
mod probe;
mod shard;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use tracing::info;

pub use feed::{Feed, feed};
pub use shard::{Record, Shard};

use crate::metrics::Metrics;
use crate::policy::Rules;
use crate::time::Instant;

/// The `[kafka]`, `[run]` and `[simulator]` settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bootstrap servers, or `None` for the embedded broker.
    pub brokers: Option<String>,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dead_letter_topic: String,
    /// librdkafka properties for every client (security, tuning).
    pub client: BTreeMap<String, String>,
    /// Partitions of each topic the embedded broker creates.
    pub embedded_partitions: i32,
    pub commit_interval: Duration,
    pub shutdown_grace: Duration,
    /// How recent an end-of-log confirmation must be for a partition to count as caught up.
    pub caught_up_window: Duration,
    /// Events of one input topic-partition that may wait in a shard's event-time merge before
    /// its fetching pauses (it resumes at half).
    pub merge_buffer: usize,
    /// Keep a shard whose partition comes back to this instance (else rebuild it).
    pub keep_shards: bool,
    /// Address of the HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub http_listen: std::net::SocketAddr,
    /// Bearer token that `/api/*` requests must present, if set.
    pub api_token: Option<String>,
    /// The configured policies and calendars, for `GET /api/v1/policies`.
    pub catalogue: serde_json::Value,
    /// Alertmanager and webhook outputs.
    pub alerting: crate::notify::Settings,
    pub simulator: Option<SimSettings>,
}

/// The built-in traffic simulator of the demo.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Ticket arrivals per minute at the daily peak.
    pub rate: f64,
    /// Simulated seconds per second.
    pub speed: f64,
    pub seed: u64,
    /// Topic to publish to (default: the first input topic).
    pub topic: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A client could not be created from the configuration (exit 2).
    #[error("kafka.client: {0}")]
    Client(KafkaError),
    /// The input topics cannot be consumed together (exit 2).
    #[error("{0}")]
    Topology(String),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("output delivery failed {0}; offsets after the last commit were not committed")]
    Delivery(String),
    /// The HTTP listener cannot bind its address (exit 2).
    #[error("http.listen: cannot listen on {0}: {1}")]
    Http(std::net::SocketAddr, std::io::Error),
    /// The alert delivery thread or its HTTP client could not start.
    #[error("alerting: {0}")]
    Notify(std::io::Error),
}

impl From<probe::TopologyError> for LiveError {
    fn from(e: probe::TopologyError) -> Self {
        LiveError::Topology(e.to_string())
    }
}

impl LiveError {
    /// Whether the configuration (not the environment) is at fault.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            LiveError::Client(_) | LiveError::Topology(_) | LiveError::Http(..)
        )
    }
}

/// A client configuration: `defaults`, then the bootstrap servers and the configured
/// properties (`[kafka.client]`), which may override them, then `forced`, which slawatch relies
/// on.
fn client_config(
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
/// co-partitioned topics' partitions of one number on one instance.
fn consumer_config(s: &Settings, bootstrap: &str) -> ClientConfig {
    client_config(
        bootstrap,
        &s.client,
        &[("auto.offset.reset", "earliest")],
        &[
            ("group.id", &s.group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("partition.assignment.strategy", "range"),
        ],
    )
}

/// The output producer: idempotent, retrying until delivered, keys hashed as Java clients do.
fn producer_config(s: &Settings, bootstrap: &str) -> ClientConfig {
    client_config(
        bootstrap,
        &s.client,
        &[("linger.ms", "5"), ("partitioner", "murmur2_random")],
        &[("enable.idempotence", "true"), ("message.timeout.ms", "0")],
    )
}

/// Runs the monitor (and, if configured, the embedded broker and the simulator) until `stop`.
pub fn run(settings: Settings, rules: Arc<Rules>, stop: Arc<AtomicBool>) -> Result<(), LiveError> {
    let settings = Arc::new(settings);
    let metrics = Arc::new(Metrics::new(&rules));
    // The embedded broker lives until the monitor returns.
    let (_embedded, bootstrap) = match &settings.brokers {
        Some(b) => (None, b.clone()),
        None => {
            let cluster = embedded_broker(&settings)?;
            let bootstrap = cluster.bootstrap_servers();
            (Some(cluster), bootstrap)
        }
    };
    let simulator = match &settings.simulator {
        Some(sim) => {
            let f = Feed {
                bootstrap: bootstrap.clone(),
                client: settings.client.clone(),
                topic: sim.topic.clone(),
                sim: Feed::live_sim(sim.seed, u64::MAX, sim.rate, sim.speed, wall_now()),
                paced: true,
            };
            let stop = stop.clone();
            Some(std::thread::spawn(move || feed(&f, &stop)))
        }
        None => None,
    };
    let result = monitor::run(settings, rules, metrics, &bootstrap, stop.clone());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(Ok(Err(e))) = simulator.map(|sim| sim.join()) {
        tracing::warn!("simulator: {e}");
    }
    result
}

/// Produces one record, waiting while the producer's bounded queue is full.
fn send<C, K, P>(producer: &ThreadedProducer<C>, mut record: BaseRecord<'_, K, P>) -> Result<(), KafkaError>
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

/// The wall clock, in the engine's unit (ms since the Unix epoch).
pub fn wall_now() -> Instant {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Starts the in-process broker with the configured topics and says where it listens.
fn embedded_broker(s: &Settings) -> Result<MockCluster<'static, rdkafka::producer::DefaultProducerContext>, LiveError> {
    let cluster = MockCluster::new(1)?;
    for topic in s.input_topics.iter().chain([&s.output_topic, &s.dead_letter_topic]) {
        cluster.create_topic(topic, s.embedded_partitions, 1)?;
    }
    let bootstrap = cluster.bootstrap_servers();
    info!(
        bootstrap = %bootstrap,
        "embedded Kafka-protocol broker (in-process, memory only); produce ticket events to {:?}, read SLA events from {:?}",
        s.input_topics.join(","),
        s.output_topic
    );
    println!("embedded broker: {bootstrap}");
    Ok(cluster)
}

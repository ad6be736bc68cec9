//! Live monitoring (`slawatch run`): the engine fed from Kafka, one shard per partition.
//!
//! - [`start`]: start-up and shutdown: embedded broker, simulator, producer, alert outputs,
//!   HTTP listener, consumer and probe;
//! - [`kafka`]: the Kafka adapter: client configurations, the consumer loop, rebalances,
//!   outputs and commits;
//! - [`shards`]: the assigned partitions' shards: assignment, records, ticks and their metrics,
//!   merge back-pressure, progress to commit (no Kafka types);
//! - [`shard`]: per-partition frontier and read positions around the engine (pure);
//! - [`views`]: the HTTP API's JSON views of the shards;
//! - [`probe`]: end-of-log confirmations and the co-partitioning check;
//! - [`feed`]: the simulator publishing to a topic.
//!
//! Dependencies run one way: `start` → `kafka` → `shards` → `shard` → engine; `views` reads
//! `shards`.
//!
//! With `brokers = "embedded"` an in-process Kafka-protocol broker (librdkafka's mock
//! cluster) is started first. How restarts and partition moves keep every ticket and alert is
//! in docs/ARCHITECTURE.md.

mod changelog;
mod feed;
mod kafka;
mod probe;
mod shard;
mod shards;
mod start;
mod store;
mod views;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::error::KafkaError;

pub use feed::{Feed, feed};
pub use shard::{DEAD_LETTER_COPY, Record, Shard};
pub use start::run;

/// `kafka.brokers`.
#[derive(Debug, Clone, PartialEq)]
pub enum Brokers {
    /// Not configured: `run` refuses to start, `replay` does not need it.
    Unset,
    /// The in-process demo broker.
    Embedded,
    /// Bootstrap servers.
    Servers(String),
}

/// What `run` says when `kafka.brokers` is missing, and `check-config` as a warning.
pub const BROKERS_UNSET: &str =
    "kafka.brokers: not set; `run` needs the bootstrap servers (or \"embedded\" for the in-process demo broker)";

/// The `[kafka]`, `[run]` and `[simulator]` settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub brokers: Brokers,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dead_letter_topic: String,
    /// Compacted topic of the shards' state (exactly-once).
    pub changelog_topic: String,
    /// The output producer's transactional id, if configured (else `{group_id}-{host name}`).
    pub transactional_id: Option<String>,
    pub guarantee: Guarantee,
    /// librdkafka properties for every client (security, tuning).
    pub client: BTreeMap<String, String>,
    /// Partitions of each topic the embedded broker creates.
    pub embedded_partitions: i32,
    /// How producers map ticket ids to input partitions: which tickets a shard owns.
    pub partitioner: crate::partitioner::Partitioner,
    pub commit_interval: Duration,
    pub shutdown_grace: Duration,
    /// How recent an end-of-log confirmation must be for a partition to count as caught up.
    pub caught_up_window: Duration,
    /// Events of one input topic-partition that may wait in a shard's event-time merge before
    /// its fetching pauses (it resumes at half).
    pub merge_buffer: usize,
    /// The level of the log line per published SLA event; `None`: no line.
    pub sla_event_level: Option<tracing::Level>,
    /// Address of the HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub http_listen: std::net::SocketAddr,
    /// Timeouts and connection limit of the HTTP listener.
    pub http_limits: crate::http::Limits,
    /// Bearer token that `/api/*` requests must present, if set.
    pub api_token: Option<String>,
    /// The configured policies and calendars, for `GET /api/v1/policies`.
    pub catalogue: serde_json::Value,
    /// Alertmanager and webhook outputs.
    pub alerting: crate::notify::Settings,
    pub simulator: Option<SimSettings>,
}

/// What a reader of the output topics can rely on (`run.guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Transactions: outputs, changelog and input offsets commit together; a `read_committed`
    /// reader sees every output once. The shards' state is restored from the changelog.
    ExactlyOnce,
    /// Outputs acknowledged before offsets are committed; after a crash, those produced since
    /// the last commit come again. Shards are rebuilt from the retained input.
    AtLeastOnce,
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
    /// `kafka.brokers` is not set (exit 2).
    #[error("{}", BROKERS_UNSET)]
    BrokersUnset,
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
    /// The changelog topic exists with another partition count or cleanup policy, or cannot
    /// be created (exit 2).
    #[error("{0}")]
    ChangelogTopic(String),
    /// A changelog record cannot be restored (exit 1).
    #[error("changelog: {0}")]
    Changelog(String),
    /// Fatal for the transactional producer (fenced, or the broker refuses transactions).
    #[error("transactions: {0}; nothing after the last commit was committed")]
    Transaction(KafkaError),
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
            LiveError::BrokersUnset
                | LiveError::Client(_)
                | LiveError::Topology(_)
                | LiveError::Http(..)
                | LiveError::ChangelogTopic(_)
        )
    }
}

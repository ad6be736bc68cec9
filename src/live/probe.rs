//! End-of-log confirmations and the co-partitioning check, from a thread of their own.
//!
//! A partition counts as caught up only while a recent `ListOffsets` answer says the monitor
//! has read to its end (SPEC §6), besides the consumer's own end-of-partition event. Asking on a separate client every [`PROBE_EVERY`] keeps the
//! consumer loop free of blocking requests; when the broker cannot be reached no answer
//! arrives, the confirmation ages past `caught_up_window`, and frontiers stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as WallInstant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, ClientContext};
use tracing::debug;

use super::kafka::client_error;

pub const PROBE_EVERY: Duration = Duration::from_millis(500);
const METADATA_EVERY: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Low and high watermark of a partition, and when the broker said so.
type Marks = (i64, i64, WallInstant);

/// What the probe knows, shared with the consumer loop.
#[derive(Default)]
pub struct Ends {
    /// (input topic index, partition) pairs to watch; set on every assignment.
    pub assigned: Mutex<Vec<(usize, i32)>>,
    /// Low and high watermark of each, and when the broker said so.
    marks: Mutex<HashMap<(usize, i32), Marks>>,
    /// Set when the input topics stop being co-partitioned.
    pub fatal: Mutex<Option<String>>,
}

impl Ends {
    /// Whether a `ListOffsets` answer no older than `window` puts `next` (the next offset to
    /// read, `None` before the first record) at or past the high watermark. The recent answer
    /// also proves the broker reachable.
    pub fn at_end(&self, topic: usize, partition: i32, next: Option<i64>, window: Duration) -> bool {
        let marks = self.marks.lock().expect("probe lock");
        marks
            .get(&(topic, partition))
            .is_some_and(|&(low, high, at)| at.elapsed() <= window && next.unwrap_or(low) >= high)
    }

    /// Records between `next` and the last known high watermark.
    pub fn lag(&self, topic: usize, partition: i32, next: Option<i64>) -> Option<i64> {
        let marks = self.marks.lock().expect("probe lock");
        let &(low, high, _) = marks.get(&(topic, partition))?;
        Some((high - next.unwrap_or(low)).max(0))
    }
}

/// Why the input topics cannot be consumed as one set of shards.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Possibly transient: the broker did not answer or the topic is missing.
    #[error("{0}")]
    Metadata(String),
    #[error("input topics must be co-partitioned by ticket id, but their partition counts differ ({0})")]
    NotCoPartitioned(String),
    #[error("cannot connect to the brokers: {0} (see kafka.client's security.protocol, sasl.* and ssl.* settings)")]
    Security(String),
}

/// The start-up client's context: remembers an authentication or TLS failure, which a
/// metadata request reports only as a timeout.
#[derive(Default)]
struct Startup(Mutex<Option<String>>);

impl ClientContext for Startup {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
        ) {
            *self.0.lock().expect("startup lock") = Some(reason.to_owned());
        }
        client_error(error, reason);
    }
}

impl ConsumerContext for Startup {}

/// [`partition_counts`] at start, on a client of its own: a broker that refuses the
/// credentials or the TLS handshake is named as such.
pub fn partition_counts_at_start(config: &ClientConfig, topics: &[String]) -> Result<usize, super::LiveError> {
    let client: BaseConsumer<Startup> = config
        .create_with_context(Startup::default())
        .map_err(super::LiveError::Client)?;
    partition_counts(&client, topics).map_err(|e| {
        if !matches!(e, TopologyError::Metadata(_)) {
            return e.into();
        }
        // Serves the error events that came with the failure.
        let _ = client.poll(Duration::from_millis(200));
        let reason = client.context().0.lock().expect("startup lock").take();
        reason.map_or(e, TopologyError::Security).into()
    })
}

/// The common partition count of `topics`.
pub fn partition_counts<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topics: &[String],
) -> Result<usize, TopologyError> {
    let mut counts = Vec::new();
    for topic in topics {
        let md = client
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| TopologyError::Metadata(format!("reading metadata of topic {topic:?}: {e}")))?;
        let n = md
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if n == 0 {
            return Err(TopologyError::Metadata(format!(
                "input topic {topic:?} does not exist or has no partitions"
            )));
        }
        counts.push((topic, n));
    }
    let first = counts[0].1;
    if counts.iter().any(|&(_, n)| n != first) {
        let list: Vec<String> = counts.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        return Err(TopologyError::NotCoPartitioned(list.join(", ")));
    }
    Ok(first)
}

/// Starts the probe thread. `partitions` is the input topics' partition count at start: shards
/// own tickets by it, so a change (partitions added to every topic) stops the monitor too.
pub fn spawn(
    config: &ClientConfig,
    topics: Vec<String>,
    partitions: usize,
    ends: Arc<Ends>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, rdkafka::error::KafkaError> {
    let client: BaseConsumer = config.create()?;
    Ok(std::thread::Builder::new()
        .name("slawatch-probe".into())
        .spawn(move || {
            let mut metadata_at = WallInstant::now();
            while !stop.load(Ordering::Relaxed) {
                let started = WallInstant::now();
                let assigned = ends.assigned.lock().expect("probe lock").clone();
                for (t, p) in assigned {
                    match client.fetch_watermarks(&topics[t], p, REQUEST_TIMEOUT) {
                        Ok((low, high)) => {
                            ends.marks
                                .lock()
                                .expect("probe lock")
                                .insert((t, p), (low, high, started));
                        }
                        Err(e) => debug!(topic = %topics[t], partition = p, "end of log unknown: {e}"),
                    }
                }
                if metadata_at.elapsed() >= METADATA_EVERY {
                    metadata_at = WallInstant::now();
                    match partition_counts(&client, &topics) {
                        Err(e @ TopologyError::NotCoPartitioned(_)) => {
                            *ends.fatal.lock().expect("probe lock") = Some(e.to_string());
                        }
                        Err(e) => debug!("{e}"),
                        Ok(n) if n != partitions => {
                            *ends.fatal.lock().expect("probe lock") = Some(format!(
                                "the input topics now have {n} partitions, not {partitions}: tickets \
                                 belong to partitions by that count, restart slawatch"
                            ));
                        }
                        Ok(_) => {}
                    }
                }
                std::thread::sleep(PROBE_EVERY.saturating_sub(started.elapsed()));
            }
        })
        .expect("spawning a thread"))
}

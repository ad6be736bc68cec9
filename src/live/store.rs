//! The changelog topic on Kafka (exactly-once): its check or creation at start, and the restore
//! of assigned shards by reading their changelog partitions to the end. What the records mean
//! is [`super::changelog`]'s; how they are written, in the commit's transaction, is
//! [`super::kafka`]'s.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as WallInstant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, info};

use super::kafka::{client_config, client_error};
use super::shard::Restoring;
use super::{LiveError, Settings, changelog};
use crate::policy::Rules;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the changelog topic (compacted, `partitions` partitions, the broker's default
/// replication) if it is missing; an existing one must have that partition count and
/// `cleanup.policy=compact`.
pub fn ensure_topic(s: &Settings, bootstrap: &str, partitions: i32) -> Result<(), LiveError> {
    let topic = &s.changelog_topic;
    let wrong = |why: String| LiveError::ChangelogTopic(format!("kafka.changelog_topic {topic:?}: {why}"));
    let metadata: BaseConsumer = client_config(bootstrap, &s.client, &[], &[])
        .create()
        .map_err(LiveError::Client)?;
    let md = metadata.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let found = md
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len());
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, &s.client, &[], &[])
        .create()
        .map_err(LiveError::Client)?;
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    match found {
        None | Some(0) => {
            let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
            for result in block_on(admin.create_topics(&[new], &options))? {
                match result {
                    Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((_, code)) => return Err(wrong(format!("cannot be created: {code}"))),
                }
            }
            info!(topic = %topic, partitions, "changelog topic created");
            Ok(())
        }
        Some(n) if n as i32 != partitions => Err(wrong(format!(
            "has {n} partitions, the input topics {partitions}; delete it or name another"
        ))),
        Some(_) => {
            let configs = block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options))?;
            let policy = configs
                .into_iter()
                .flatten()
                .flat_map(|r| r.entries)
                .find(|e| e.name == "cleanup.policy")
                .and_then(|e| e.value);
            match policy.as_deref() {
                Some(p) if p.split(',').any(|p| p.trim() == "compact") && !p.contains("delete") => Ok(()),
                other => Err(wrong(format!(
                    "cleanup.policy is {other:?}; it must be \"compact\" (deletion would lose tickets)"
                ))),
            }
        }
    }
}

fn block_on<F: std::future::Future>(request: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(request)
}

/// Reads changelog partitions `partitions` to their end (`read_committed`: the state of the
/// last committed transaction), each into a [`Restoring`] shard. A record that does not decode
/// stops the monitor: continuing would publish from a state that is not the one saved.
pub fn restore(
    s: &Settings,
    bootstrap: &str,
    rules: &Arc<Rules>,
    partitions: &[i32],
    stop: &AtomicBool,
) -> Result<HashMap<i32, Restoring>, LiveError> {
    let started = WallInstant::now();
    let topic = &s.changelog_topic;
    // An empty partition's end is known after one fetch, which would wait up to 500 ms for data.
    let consumer: BaseConsumer<Reader> = client_config(
        bootstrap,
        &s.client,
        &[("fetch.queue.backoff.ms", "10"), ("fetch.wait.max.ms", "10")],
        &[
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            ("enable.auto.commit", "false"),
            // librdkafka assigns partitions only to a consumer with a group id; this one never
            // joins the group or commits.
            ("group.id", &s.group_id),
        ],
    )
    .create_with_context(Reader)
    .map_err(LiveError::Client)?;
    let mut restoring: HashMap<i32, Restoring> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        restoring.insert(p, Restoring::new(rules.clone()));
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    // Every partition, empty ones included, ends with an end-of-partition event; while the
    // broker cannot be reached, the restore waits for it.
    let mut left: BTreeSet<i32> = partitions.iter().copied().collect();
    consumer.assign(&tpl)?;
    let mut records = 0u64;
    while !left.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return Err(LiveError::Changelog("stopped during the restore".into()));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                let at = || format!("topic {topic:?} partition {} offset {}", m.partition(), m.offset());
                let entry = changelog::decode(m.key().unwrap_or_default(), m.payload())
                    .map_err(|e| LiveError::Changelog(format!("{}: cannot decode: {e}", at())))?;
                let shard = restoring.get_mut(&m.partition()).expect("an assigned partition");
                shard
                    .apply(entry)
                    .map_err(|e| LiveError::Changelog(format!("{}: {e}", at())))?;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => drop(left.remove(&p)),
            Some(Err(e)) if !e.rdkafka_error_code().is_some_and(is_fatal) => debug!("restore: {e}"),
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    info!(
        topic = %topic,
        partitions = ?partitions,
        records,
        ms = started.elapsed().as_millis() as u64,
        "changelog read"
    );
    Ok(restoring)
}

/// Errors after which reading the changelog cannot go on (others, such as a broker that
/// cannot be reached, pass).
fn is_fatal(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::TopicAuthorizationFailed
            | C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::OffsetOutOfRange
    )
}

/// The restore's consumer, which asks for ends of partitions.
struct Reader;

impl ClientContext for Reader {
    fn error(&self, error: KafkaError, reason: &str) {
        client_error(error, reason);
    }
}

impl ConsumerContext for Reader {}

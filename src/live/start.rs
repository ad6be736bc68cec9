//! Start-up and shutdown of live monitoring: the embedded broker and the simulator if
//! configured, then the producer, the alert outputs, the shards, the HTTP listener, the consumer
//! and the probe, with the co-partitioning check, before the consumer loop takes over; once it
//! returns, every thread is stopped and joined.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::Consumer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tracing::{info, warn};

use super::feed::{Feed, feed};
use super::probe::{self, Ends};
use super::shards::Shards;
use super::views::View;
use super::{Brokers, Guarantee, LiveError, Settings, kafka, store};
use crate::metrics::Metrics;
use crate::notify;
use crate::policy::Rules;
use crate::time::wall_now;

/// Runs the monitor (and, if configured, the embedded broker and the simulator) until `stop`.
pub fn run(settings: Settings, rules: Arc<Rules>, stop: Arc<AtomicBool>) -> Result<(), LiveError> {
    let settings = Arc::new(settings);
    let metrics = Arc::new(Metrics::new(&rules));
    // The embedded broker lives until the monitor returns.
    let (_embedded, bootstrap) = match &settings.brokers {
        Brokers::Servers(b) => (None, b.clone()),
        Brokers::Embedded => {
            let cluster = embedded_broker(&settings)?;
            let bootstrap = cluster.bootstrap_servers();
            (Some(cluster), bootstrap)
        }
        Brokers::Unset => return Err(LiveError::BrokersUnset),
    };
    let simulator = match &settings.simulator {
        Some(sim) => {
            let f = Feed {
                bootstrap: bootstrap.clone(),
                client: settings.client.clone(),
                topic: sim.topic.clone(),
                partitioner: settings.partitioner,
                sim: Feed::live_sim(sim.seed, u64::MAX, sim.rate, sim.speed, wall_now()),
                paced: true,
            };
            let stop = stop.clone();
            Some(std::thread::spawn(move || feed(&f, &stop)))
        }
        None => None,
    };
    let result = monitor(settings, rules, metrics, &bootstrap, stop.clone());
    stop.store(true, Ordering::Relaxed);
    if let Some(Ok(Err(e))) = simulator.map(|sim| sim.join()) {
        tracing::warn!("simulator: {e}");
    }
    result
}

/// Starts the monitor's clients and threads, consumes until `stop` is set, then stops and
/// joins them.
fn monitor(
    settings: Arc<Settings>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    bootstrap: &str,
    stop: Arc<AtomicBool>,
) -> Result<(), LiveError> {
    // First a metadata request: a broker that cannot be reached or refuses the credentials
    // is reported as such, not as the transactional producer's timeout.
    let probe_client = kafka::client_config(bootstrap, &settings.client, &[], &[]);
    let partitions = probe::partition_counts_at_start(&probe_client, &settings.input_topics)?;
    let producer = kafka::producer(&settings, bootstrap, metrics.clone())?;
    let (notifier, notify_thread) = notify::start(
        &settings.alerting,
        metrics.clone(),
        stop.clone(),
        settings.shutdown_grace,
    )
    .map_err(LiveError::Notify)?;
    if settings.guarantee == Guarantee::ExactlyOnce && settings.brokers != Brokers::Embedded {
        store::ensure_topic(&settings, bootstrap, partitions as i32)?;
    }
    let ends = Arc::new(Ends::default());
    let shards = Shards::new(
        settings.clone(),
        rules,
        metrics.clone(),
        ends.clone(),
        partitions as i32,
        notifier,
    );
    let shards = Arc::new(Mutex::new(shards));
    let api = Arc::new(View(shards.clone()));
    let token = settings.api_token.as_deref();
    let (_, http) = crate::http::spawn(
        settings.http_listen,
        settings.http_limits,
        metrics.clone(),
        api,
        token,
        settings.brokers == Brokers::Embedded,
        stop.clone(),
    )
    .map_err(|e| LiveError::Http(settings.http_listen, e))?;
    let consumer = kafka::consumer(&settings, bootstrap, stop.clone(), metrics, shards, producer)?;
    let probe = probe::spawn(
        &probe_client,
        settings.input_topics.clone(),
        partitions,
        ends.clone(),
        stop.clone(),
    )
    .map_err(LiveError::Client)?;
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    info!(topics = ?topics, partitions, group = %settings.group_id, "consuming");

    let result = kafka::run(&consumer, &ends, &stop);
    stop.store(true, Ordering::Relaxed);
    // Closing the consumer revokes its partitions; its context, with the producer and the
    // shards, is kept until the other threads have stopped.
    let ctx = consumer.context().clone();
    drop(consumer);
    let _ = probe.join();
    let _ = http.join();
    if let Some(thread) = notify_thread {
        let _ = thread.join();
    }
    drop(ctx);
    result
}

/// Starts the in-process broker with the configured topics and says where it listens.
fn embedded_broker(s: &Settings) -> Result<MockCluster<'static, DefaultProducerContext>, LiveError> {
    let cluster = MockCluster::new(1)?;
    for topic in s
        .input_topics
        .iter()
        .chain([&s.output_topic, &s.dead_letter_topic, &s.changelog_topic])
    {
        cluster.create_topic(topic, s.embedded_partitions, 1)?;
    }
    let bootstrap = cluster.bootstrap_servers();
    warn!(
        bootstrap = %bootstrap,
        "kafka.brokers = \"embedded\": an in-process DEMO broker, memory only, NOT FOR PRODUCTION; produce ticket events to {:?}, read SLA events from {:?}",
        s.input_topics.join(","),
        s.output_topic
    );
    println!("embedded broker: {bootstrap}");
    Ok(cluster)
}

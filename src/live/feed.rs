//! The simulator publishing to a topic: historic traffic as fast as the broker takes it, or
//! live traffic paced by the wall clock (the demo).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tracing::info;

use crate::partitioner::Partitioner;
use crate::sim::{SimConfig, generate};
use crate::time::{Instant, wall_now};

/// Monday 2026-01-05 08:00 Berlin: paced simulations start at the beginning of a working day
/// whatever the hour, so the demo shows traffic at once.
const WORKDAY_START: Instant = 1_767_596_400_000;

pub struct Feed {
    pub bootstrap: String,
    pub client: std::collections::BTreeMap<String, String>,
    pub topic: String,
    /// How ticket ids are mapped to the topic's partitions.
    pub partitioner: Partitioner,
    pub sim: SimConfig,
    /// Publish each event when the wall clock reaches its timestamp.
    pub paced: bool,
}

impl Feed {
    /// Live traffic from `now`: a working day replayed at `speed` simulated seconds per second,
    /// `rate` ticket arrivals per minute at the daily peak.
    pub fn live_sim(seed: u64, tickets: u64, rate: f64, speed: f64, now: Instant) -> SimConfig {
        SimConfig {
            origin_ms: now,
            time_scale: speed,
            ..SimConfig::new(seed, tickets, WORKDAY_START, rate * 60.0 / speed)
        }
    }
}

/// Publishes the simulation keyed by ticket id until it ends or `stop` is set; returns the
/// number of events published.
pub fn feed(f: &Feed, stop: &AtomicBool) -> Result<u64, KafkaError> {
    let defaults = [("linger.ms", "20"), ("partitioner", f.partitioner.librdkafka())];
    let producer: ThreadedProducer<DefaultProducerContext> =
        super::kafka::client_config(&f.bootstrap, &f.client, &defaults, &[]).create()?;
    info!(topic = %f.topic, paced = f.paced, "simulator publishing");
    let mut sent = 0u64;
    for ev in generate(&f.sim) {
        if f.paced {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return finish(&producer, sent);
                }
                let wait = ev.at_ms - wall_now();
                if wait <= 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(wait.min(200) as u64));
            }
        } else if stop.load(Ordering::Relaxed) {
            break;
        }
        super::kafka::send(&producer, BaseRecord::to(&f.topic).key(&ev.ticket_id).payload(&ev.json))?;
        sent += 1;
    }
    finish(&producer, sent)
}

fn finish(producer: &ThreadedProducer<DefaultProducerContext>, sent: u64) -> Result<u64, KafkaError> {
    producer.flush(Duration::from_secs(30))?;
    info!(events = sent, "simulator done");
    Ok(sent)
}

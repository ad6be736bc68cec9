//! Catch-up throughput of `slawatch run` against a bare rdkafka consumer, on one tansu broker
//! in the same run (issue: "at least 70% of a bare consumer").
//!
//! `cargo bench --bench kafka` (needs tansu: `scripts/setup.sh`). `SLAWATCH_BENCH_EVENTS`
//! sets the number of events (default 2,000,000). Rates are measured from the first record
//! consumed (bare) or the first commit (slawatch) to the last, so group joins do not count;
//! slawatch commits every second, which bounds its timing error to about a second.

#[path = "../tests/kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use support::*;

const PARTITIONS: i32 = 3;

fn main() {
    let wanted: usize = std::env::var("SLAWATCH_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let broker = Broker::start();
    broker.create_topics(&[
        ("ticket-events", PARTITIONS),
        ("sla-events", PARTITIONS),
        ("dead-letters", 1),
    ]);
    let mut events = simulated(7, (wanted / 10 + 1000) as u64, PARTITIONS);
    events.truncate(wanted);
    let n = events.len() as i64;
    let started = Instant::now();
    produce(&broker.bootstrap, "ticket-events", &as_records(&events));
    drop(events);
    println!("produced {n} events in {:.1} s", started.elapsed().as_secs_f64());

    let bare = bare_consumer_rate(&broker.bootstrap, n);
    println!("bare rdkafka consumer: {bare:.0} msg/s");

    let cfg = config(broker.dir.path(), &broker.bootstrap, "bench", &["ticket-events"], "");
    let monitor = Monitor::start(&cfg, "monitor");
    let (mut first, mut last) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while last.is_none() && Instant::now() < deadline {
        let done: i64 = committed(&broker.bootstrap, "bench", "ticket-events", PARTITIONS)
            .iter()
            .map(|&c| c.max(0))
            .sum();
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), done));
        }
        if done == n {
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ((t1, c1), t2) = (first.expect("slawatch committed"), last.expect("slawatch caught up"));
    let rate = (n - c1) as f64 / (t2 - t1).as_secs_f64();
    println!(
        "slawatch run: {rate:.0} events/s ({:.0}% of the bare consumer)",
        100.0 * rate / bare
    );
    println!("slawatch peak RSS: {} MiB", peak_rss_mib(&monitor));
}

fn bare_consumer_rate(bootstrap: &str, n: i64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-bare")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["ticket-events"]).unwrap();
    let (mut count, mut first) = (0i64, None);
    while count < n {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap();
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    (n - 1) as f64 / first.unwrap().elapsed().as_secs_f64()
}

fn peak_rss_mib(monitor: &Monitor) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", monitor.child.id())).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

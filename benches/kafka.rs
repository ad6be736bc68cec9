//! `slawatch run` on a real Apache Kafka broker (KRaft, single node, jars installed by
//! `scripts/setup.sh`), two parts:
//!
//! - `throughput`: catch-up rate against a bare rdkafka consumer reading the same topic in the
//!   same run (target: at least 70%), with the default configuration (exactly-once), with
//!   `run.log_sla_events = false`, and at-least-once. `SLAWATCH_BENCH_EVENTS` sets the number
//!   of events (default 2,000,000). Rates are measured from the first record consumed (bare)
//!   or the first commit (slawatch) to the last, so group joins do not count; slawatch commits
//!   every second, which bounds its timing error to about a second.
//! - `latency`: with 1,000,000 open tickets (`SLAWATCH_BENCH_OPEN`), the delay from each
//!   alert's instant to its arrival at a `read_committed` reader of the output topic (target
//!   p99: `idle_grace` + 1 s), and the monitor's resident memory; then a graceful restart: the
//!   time from the new process's start to ready (`/readyz`), its shards restored from the
//!   changelog (target: 10 s), and the changelog's size on the broker's disk per ticket.
//!
//! `cargo bench --bench kafka` runs both; `cargo bench --bench kafka -- latency` one.

#[path = "../tests/kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use slawatch::time::wall_now;
use slawatch::time::{Rfc3339, parse_rfc3339};
use support::*;

const PARTITIONS: i32 = 3;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if run("throughput") {
        throughput(env("SLAWATCH_BENCH_EVENTS", 2_000_000));
    }
    if run("latency") {
        latency(env("SLAWATCH_BENCH_OPEN", 1_000_000));
    }
}

fn throughput(wanted: usize) {
    let broker = Broker::start();
    broker.create_topics(&[("ticket-events", PARTITIONS)]);
    let mut events = simulated(7, (wanted / 10 + 1000) as u64, PARTITIONS);
    events.truncate(wanted);
    let n = events.len() as i64;
    let started = Instant::now();
    produce(&broker.bootstrap, "ticket-events", &as_records(&events));
    drop(events);
    println!("produced {n} events in {:.1} s", started.elapsed().as_secs_f64());

    let bare = bare_consumer_rate(&broker.bootstrap, n);
    println!("bare rdkafka consumer: {bare:.0} msg/s");
    let runs = [
        ("bench", "defaults: exactly_once", ""),
        (
            "bench-quiet",
            "exactly_once, log_sla_events = false",
            "[run]\nlog_sla_events = false",
        ),
        ("bench-alo", "at_least_once", "[run]\nguarantee = \"at_least_once\""),
        (
            "bench-alo-quiet",
            "at_least_once, log_sla_events = false",
            "[run]\nguarantee = \"at_least_once\"\nlog_sla_events = false",
        ),
    ];
    for (group, label, extra) in runs {
        let (rate, peak) = catch_up(&broker, group, extra, n);
        println!(
            "slawatch run ({label}): {rate:.0} events/s ({:.0}% of the bare consumer), peak RSS {peak} MiB",
            100.0 * rate / bare
        );
    }
}

/// A monitor of consumer group `group` (configuration `config/example.toml` and `extra`)
/// reads all `n` records of `ticket-events`: its rate, and its peak RSS.
fn catch_up(broker: &Broker, group: &str, extra: &str, n: i64) -> (f64, u64) {
    let (sla, dead) = (format!("{group}-sla"), format!("{group}-dead"));
    broker.create_topics(&[(&sla, PARTITIONS), (&dead, 1)]);
    let cfg = config(broker.dir(), &broker.bootstrap, group, &["ticket-events"], extra);
    let monitor = Monitor::start(&cfg, "monitor");
    let (mut first, mut last) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while last.is_none() && Instant::now() < deadline {
        let done: i64 = committed(&broker.bootstrap, group, "ticket-events", PARTITIONS)
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
    ((n - c1) as f64 / (t2 - t1).as_secs_f64(), memory_mib(&monitor, "VmHWM"))
}

/// 24x7 targets: urgent tickets answer in 10 minutes, low ones in 30 days.
const LATENCY_POLICY: &str = "[[policy]]\nname = \"bench\"\nwarn_at = []\n\
    [policy.targets.first_response]\nurgent = \"10m\"\nlow = \"30d\"\n";
const TARGET_MS: i64 = 600_000;
/// Time to load the tickets and let the monitor catch up before the first deadline.
const LEAD_MS: i64 = 150_000;
/// Deadlines fall evenly over this window.
const WINDOW_MS: i64 = 60_000;
const ALERTS: usize = 12_000;

fn latency(open: usize) {
    let broker = Broker::start();
    broker.create_topics(&[
        ("ticket-events", PARTITIONS),
        ("sla-events", PARTITIONS),
        ("dead-letters", 1),
    ]);
    let cfg = broker.dir().join("latency.toml");
    std::fs::write(
        &cfg,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = {:?}\ngroup_id = \"latency\"\n\
             dead_letter_topic = \"dead-letters\"\n{LATENCY_POLICY}",
            broker.bootstrap
        ),
    )
    .unwrap();
    let monitor = Monitor::start(&cfg, "monitor");
    let start = wall_now();
    let first_deadline = start + LEAD_MS;
    let created = |id: String, priority: &str, at: i64| {
        let json = format!(
            r#"{{"type":"ticket.created","ticket_id":"{id}","occurred_at":"{}","priority":"{priority}","channel":"email","kind":"request","status":"new","opened_by":"customer"}}"#,
            Rfc3339(at)
        );
        (
            partition_of(&id, PARTITIONS),
            Some(id.into_bytes()),
            Some(json.into_bytes()),
        )
    };
    // Urgent tickets first, dated so that their deadlines fall in the window; then the rest,
    // open for a month, created now.
    let mut records: Vec<Rec> = (0..ALERTS)
        .map(|i| {
            let deadline = first_deadline + WINDOW_MS * i as i64 / ALERTS as i64;
            created(format!("U-{i:06}"), "urgent", deadline - TARGET_MS)
        })
        .collect();
    records.extend((ALERTS..open).map(|i| created(format!("L-{i:07}"), "low", start)));
    produce(&broker.bootstrap, "ticket-events", &records);
    drop(records);
    println!(
        "loaded {open} open tickets in {:.1} s",
        (wall_now() - start) as f64 / 1000.0
    );

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "latency-reader")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("sla-events", p, Offset::Beginning).unwrap();
    }
    reader.assign(&tpl).unwrap();
    let mut delays = Vec::with_capacity(ALERTS);
    let until = Instant::now() + Duration::from_millis((first_deadline + WINDOW_MS - wall_now()) as u64 + 30_000);
    while delays.len() < ALERTS && Instant::now() < until {
        let Some(msg) = reader.poll(Duration::from_millis(100)) else {
            continue;
        };
        let received = wall_now();
        let v: serde_json::Value = serde_json::from_slice(msg.unwrap().payload().unwrap()).unwrap();
        if v["type"] == "sla.breached" {
            delays.push(received - parse_rfc3339(v["at"].as_str().unwrap()).unwrap());
        }
    }
    let rss = memory_mib(&monitor, "VmRSS");
    delays.sort_unstable();
    let q = |f: f64| delays[((delays.len() - 1) as f64 * f) as usize] as f64 / 1000.0;
    println!(
        "{} breaches of {ALERTS} received; delay from the breach instant: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        delays.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    println!("slawatch RSS with {open} open tickets: {rss} MiB");
    restart(&broker, monitor, &cfg, open);
}

/// A graceful stop and a start on the same group: time to ready, the restore's share of it,
/// memory afterwards and the changelog's size per ticket.
fn restart(broker: &Broker, mut monitor: Monitor, cfg: &std::path::Path, open: usize) {
    monitor.signal("-TERM");
    assert!(
        monitor.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        monitor.log_text()
    );
    let started = Instant::now();
    let again = Monitor::start(cfg, "restarted");
    while again.http_get("/readyz").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(120), "{}", again.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed().as_secs_f64();
    let log = again.log_text();
    let read = log
        .lines()
        .find(|l| l.contains("changelog read"))
        .map_or(serde_json::Value::Null, |l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["fields"].clone()
        });
    let bytes = dir_bytes(&broker.dir().join("data"), "latency-changelog-");
    println!(
        "restart to ready with {open} open tickets: {ready:.2} s (changelog read: {} records in {} ms); RSS after: {} MiB",
        read["records"],
        read["ms"],
        memory_mib(&again, "VmRSS")
    );
    println!(
        "changelog on disk: {bytes} bytes, {:.1} bytes per ticket (before compaction)",
        bytes as f64 / open as f64
    );
}

/// Bytes of the log segments in the subdirectories of `dir` whose names start with `prefix`.
fn dir_bytes(dir: &std::path::Path, prefix: &str) -> u64 {
    let entries = std::fs::read_dir(dir).unwrap();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten())
        .filter(|f| f.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
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

/// A memory figure of the monitor process (`VmRSS`, `VmHWM`) from /proc, in MiB.
fn memory_mib(monitor: &Monitor, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", monitor.child.id())).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

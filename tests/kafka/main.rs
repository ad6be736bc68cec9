//! Black-box tests of `slawatch run` against a real Apache Kafka broker (KRaft, jars installed
//! by `scripts/setup.sh`), one shared by the tests of this binary, each test with topics and a
//! consumer group of its own; and, where a test needs fault injection (a broker outage),
//! librdkafka's mock cluster.

// Shared with tests/observability.rs and tests/alertmanager.rs, which use other parts of it.
#[allow(dead_code)]
mod support;

mod exactly_once;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use slawatch::time::Rfc3339;
use slawatch::time::wall_now;
use support::*;

const SEC: Duration = Duration::from_secs(1);

fn until_now() -> String {
    Rfc3339(wall_now()).to_string()
}

/// Reads `topic` (SLA events) until at least `n` distinct ids arrived and it went quiet.
fn read_sla(bootstrap: &str, topic: &str, n: usize) -> Vec<String> {
    let msgs = read_topic(bootstrap, topic, 3 * SEC, 180 * SEC, |out| {
        by_id(out.iter().map(text)).len() >= n
    });
    for m in &msgs {
        let v: serde_json::Value = serde_json::from_str(&text(m)).unwrap();
        assert_eq!(
            m.key(),
            Some(v["ticket_id"].as_str().unwrap().as_bytes()),
            "keyed by ticket id"
        );
    }
    msgs.iter().map(text).collect()
}

/// The shared broker with topics `{group}-in` (`partitions` partitions, holding a simulation
/// of `tickets` tickets), `{group}-sla` and `{group}-dead`; a configuration for consumer group
/// `group` (and `extra` TOML); and what `replay` makes of each partition's events.
fn loaded(
    group: &str,
    partitions: i32,
    seed: u64,
    tickets: u64,
    extra: &str,
) -> (&'static Broker, Events, PathBuf, BTreeMap<String, String>) {
    let broker = Broker::shared();
    let input = format!("{group}-in");
    create_group_topics(broker, group, &[&input], partitions);
    let events = simulated(seed, tickets, partitions);
    produce(&broker.bootstrap, &input, &as_records(&events));
    let cfg = config(broker.dir(), &broker.bootstrap, group, &[&input], extra);
    let expected = by_id(replay_by_partition(&cfg, &events, &until_now()));
    (broker, events, cfg, expected)
}

/// Creates `inputs` with `partitions` partitions, and `{group}-sla` (as many) and
/// `{group}-dead` (one).
fn create_group_topics(broker: &Broker, group: &str, inputs: &[&str], partitions: i32) {
    let (sla, dead) = (format!("{group}-sla"), format!("{group}-dead"));
    let mut topics: Vec<(&str, i32)> = inputs.iter().map(|t| (*t, partitions)).collect();
    topics.extend([(sla.as_str(), partitions), (dead.as_str(), 1)]);
    broker.create_topics(&topics);
}

#[test]
fn events_through_kafka_give_the_sla_events_of_replay() {
    let (broker, events, cfg, expected) = loaded("equal", 3, 1, 2_000, "");
    assert!(
        expected.len() > 5_000,
        "a meaningful amount of output ({})",
        expected.len()
    );

    let monitor = Monitor::start(&cfg, "monitor");
    let lines = read_sla(&broker.bootstrap, "equal-sla", expected.len());
    assert_eq!(lines.len(), expected.len(), "no SLA event twice");

    // The metrics agree with what was published.
    assert_eq!(monitor.http_get("/healthz").0, 200);
    assert_eq!(monitor.http_get("/readyz"), (200, "ready\n".into()));
    let metrics = monitor.http_get("/metrics").1;
    for ty in [
        "warning",
        "breached",
        "escalated",
        "fulfilled",
        "cancelled",
        "breach_retracted",
    ] {
        let published = lines
            .iter()
            .filter(|l| l.contains(&format!("\"type\":\"sla.{ty}\"")))
            .count();
        let counted = sum(&metrics, "slawatch_sla_events_total", &format!("type=\"{ty}\""));
        assert_eq!(counted, published as f64, "sla.{ty}");
    }
    let fulfilled = lines.iter().filter(|l| l.contains("sla.fulfilled")).count() as f64;
    assert_eq!(sum(&metrics, "slawatch_fulfilments_total", ""), fulfilled);
    assert_eq!(
        sum(&metrics, "slawatch_fulfilment_business_seconds_count", ""),
        fulfilled
    );
    let consumed = sum(&metrics, "slawatch_events_total", "") + sum(&metrics, "slawatch_dead_letters_total", "");
    assert!(
        consumed >= events.len() as f64,
        "{consumed} of {} events counted",
        events.len()
    );
    let rated = sum(&metrics, "slawatch_satisfaction_ratings_total", "");
    let applied = r#"outcome="applied",type="satisfaction.rated""#;
    assert!(rated > 0.0, "the simulation rates tickets");
    assert_eq!(rated, sum(&metrics, "slawatch_events_total", applied));
    assert_eq!(sum(&metrics, "slawatch_caught_up", ""), 3.0, "3 partitions caught up");
    assert_eq!(sum(&metrics, "slawatch_consumer_lag_messages", ""), 0.0);
    let delivered = sum(
        &metrics,
        "slawatch_output_deliveries_total",
        r#"result="ok",sink="sla_events""#,
    );
    assert_eq!(delivered, lines.len() as f64);
    assert_eq!(sum(&metrics, "slawatch_ready", ""), 1.0);
    assert!(metrics.contains("slawatch_build_info{version="));
    assert_same(&by_id(lines), &expected);
}

#[test]
fn every_bad_record_becomes_a_dead_letter_with_its_bytes_key_and_source() {
    let broker = Broker::shared();
    create_group_topics(broker, "dead", &["dead-in"], 1);
    let t = "2026-06-01T10:00:00Z";
    let created = |id: &str, eid: &str| {
        format!(
            r#"{{"type":"ticket.created","ticket_id":"{id}","occurred_at":"{t}","event_id":"{eid}","priority":"high","channel":"email","kind":"request","status":"new","opened_by":"customer"}}"#
        )
    };
    let cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("invalid_json", None), // tombstone
        ("invalid_json", Some(b"\xff\xfe{\"type\"".to_vec())),
        (
            "too_large",
            Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(3000)).into_bytes()),
        ),
        ("invalid_json", Some(b"{\"type\":".to_vec())),
        (
            "missing_field",
            Some(format!(r#"{{"type":"ticket.created","occurred_at":"{t}"}}"#).into_bytes()),
        ),
        (
            "unknown_type",
            Some(format!(r#"{{"type":"ticket.exploded","ticket_id":"T-1","occurred_at":"{t}"}}"#).into_bytes()),
        ),
        (
            "future_timestamp",
            Some(created("T-3", "e3").replace(t, "2099-01-01T00:00:00Z").into_bytes()),
        ),
        ("", Some(created("T-2", "e1").into_bytes())),
        ("duplicate_ticket", Some(created("T-2", "e2").into_bytes())),
        (
            "unknown_ticket",
            Some(
                format!(
                    r#"{{"type":"reply.sent","ticket_id":"T-9","occurred_at":"{t}","author":"agent","public":true}}"#
                )
                .into_bytes(),
            ),
        ),
    ];
    let records: Vec<Rec> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, value))| (0, Some(format!("key-{i}").into_bytes()), value.clone()))
        .collect();
    produce(&broker.bootstrap, "dead-in", &records);
    let cfg = config(broker.dir(), &broker.bootstrap, "dead", &["dead-in"], "");
    let _monitor = Monitor::start_with(
        &cfg,
        "monitor",
        &[
            ("SLAWATCH__ENGINE__MAX_EVENT_BYTES", "2048"),
            ("SLAWATCH__ENGINE__ORPHAN_HOLD", "1s"),
        ],
    );
    let expected: Vec<usize> = (0..cases.len()).filter(|&i| !cases[i].0.is_empty()).collect();
    let dead = read_topic(&broker.bootstrap, "dead-dead", 2 * SEC, 60 * SEC, |out| {
        out.len() >= expected.len()
    });
    assert_eq!(dead.len(), expected.len());
    let mut by_offset = BTreeMap::new();
    for m in &dead {
        let offset: usize = header(m, "slawatch.source.offset").unwrap().parse().unwrap();
        by_offset.insert(offset, m);
    }
    for i in expected {
        let m = by_offset
            .get(&i)
            .unwrap_or_else(|| panic!("no dead letter for record {i}"));
        assert_eq!(header(m, "slawatch.reason").as_deref(), Some(cases[i].0), "record {i}");
        assert!(!header(m, "slawatch.detail").unwrap().is_empty());
        assert_eq!(header(m, "slawatch.source.topic").as_deref(), Some("dead-in"));
        assert_eq!(header(m, "slawatch.source.partition").as_deref(), Some("0"));
        assert_eq!(m.key(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(m.payload(), cases[i].1.as_deref(), "original bytes of record {i}");
    }
}

/// ticket.created on one topic, everything else on another. History read together gives the
/// result of the merged stream; a live reply that overtakes its ticket's creation is held
/// until the creation arrives.
#[test]
fn several_input_topics_hold_orphans_and_give_the_merged_result() {
    let broker = Broker::shared();
    let (cfg, events) = two_topics(broker, "multi", "");
    let expected = by_id(replay_by_partition(&cfg, &events, &until_now()));
    let monitor = Monitor::start(&cfg, "monitor");
    let lines = read_sla(&broker.bootstrap, "multi-sla", expected.len());
    assert_same(&by_id(lines), &expected);

    let t0 = wall_now();
    let id = "T-live";
    let p = partition_of(id, 2);
    let reply = format!(
        r#"{{"type":"reply.sent","ticket_id":"{id}","occurred_at":"{}","author":"agent","public":true}}"#,
        Rfc3339(t0)
    );
    produce(
        &broker.bootstrap,
        "multi-activity",
        &[(p, Some(id.into()), Some(reply.into_bytes()))],
    );
    std::thread::sleep(2 * SEC);
    let created = format!(
        r#"{{"type":"ticket.created","ticket_id":"{id}","occurred_at":"{}","priority":"urgent","channel":"chat","kind":"request","status":"new","opened_by":"customer"}}"#,
        Rfc3339(t0 - 1_000)
    );
    produce(
        &broker.bootstrap,
        "multi-tickets",
        &[(p, Some(id.into()), Some(created.into_bytes()))],
    );
    let out = read_topic(&broker.bootstrap, "multi-sla", 2 * SEC, 30 * SEC, |out| {
        out.iter().map(text).any(|l| l.contains(id))
    });
    let live: Vec<String> = out.iter().map(text).filter(|l| l.contains(id)).collect();
    assert!(
        live.iter()
            .any(|l| l.contains("\"id\":\"fulfilled:first_response:1:T-live\"") && l.contains("\"outcome\":\"met\"")),
        "{live:#?}\n{}",
        monitor.log_text()
    );
    let dead = read_topic(&broker.bootstrap, "multi-dead", SEC, 2 * SEC, |_| true);
    assert!(dead.is_empty(), "no orphan expired: {} dead letters", dead.len());
}

/// Topics `{group}-tickets` (ticket creations of a simulation) and `{group}-activity`
/// (everything else), two partitions each, the activity produced first; a configuration
/// reading both (and `extra` TOML); and the simulated events.
fn two_topics(broker: &Broker, group: &str, extra: &str) -> (PathBuf, Events) {
    let (tickets, activity_topic) = (format!("{group}-tickets"), format!("{group}-activity"));
    create_group_topics(broker, group, &[&tickets, &activity_topic], 2);
    let events = simulated(2, 1_000, 2);
    let (created, activity): (Vec<_>, Vec<_>) = events.iter().cloned().partition(|e| e.2.contains("ticket.created"));
    produce(&broker.bootstrap, &activity_topic, &as_records(&activity));
    produce(&broker.bootstrap, &tickets, &as_records(&created));
    let cfg = config(
        broker.dir(),
        &broker.bootstrap,
        group,
        &[&tickets, &activity_topic],
        extra,
    );
    (cfg, events)
}

/// The same two topics with a merge buffer of 20 events: the consumer pauses the topic ahead
/// and resumes it (inside a record batch) again and again, and the result stays that of the
/// merged stream.
#[test]
fn a_small_merge_buffer_pauses_the_topic_ahead_and_changes_nothing() {
    let broker = Broker::shared();
    let (cfg, events) = two_topics(broker, "merge", "[run]\nmerge_buffer = 20");
    let expected = by_id(replay_by_partition(&cfg, &events, &until_now()));
    let monitor = Monitor::start_with(&cfg, "monitor", &[("RUST_LOG", "info,slawatch=debug")]);
    let lines = read_sla(&broker.bootstrap, "merge-sla", expected.len());
    assert_same(&by_id(lines), &expected);
    let log = monitor.log_text();
    assert!(
        log.contains(r#""pause":true"#) && log.contains(r#""pause":false"#),
        "no back-pressure:\n{log}"
    );
}

#[test]
fn input_topics_with_different_partition_counts_are_refused() {
    let broker = Broker::shared();
    broker.create_topics(&[("mismatch-a", 2), ("mismatch-b", 3)]);
    create_group_topics(broker, "mismatch", &[], 1);
    let cfg = config(
        broker.dir(),
        &broker.bootstrap,
        "mismatch",
        &["mismatch-a", "mismatch-b"],
        "",
    );
    let mut monitor = Monitor::start(&cfg, "monitor");
    let status = monitor.wait_exit(30 * SEC);
    assert_eq!(status.code(), Some(2));
    let log = monitor.log_text();
    assert!(
        log.contains("co-partitioned") && log.contains("mismatch-a: 2, mismatch-b: 3"),
        "{log}"
    );
}

/// Partitions added to the input topic change which partition each ticket belongs to: the
/// monitor stops (exit code 2) rather than judge records by the old count.
#[test]
fn partitions_added_to_the_input_stop_the_monitor() {
    let broker = Broker::shared();
    create_group_topics(broker, "grown", &["grown-in"], 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), &broker.bootstrap, "grown", "");
    let mut monitor = Monitor::start(&cfg, "monitor");
    monitor.wait_for("partitions assigned", 30 * SEC);
    add_partitions(&broker.bootstrap, "grown-in", 2);
    let status = monitor.wait_exit(30 * SEC);
    let log = monitor.log_text();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("now have 2 partitions, not 1"), "{log}");
}

/// Waits until `group` has committed something on `topic`, then returns the sum.
fn first_commit(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    for _ in 0..600 {
        let sum: i64 = committed(bootstrap, group, topic, partitions)
            .iter()
            .map(|&o| o.max(0))
            .sum();
        if sum > 0 {
            return sum;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{group} committed nothing in 30 s");
}

#[test]
fn kill_9_and_restart_lose_no_alert_and_forget_no_ticket() {
    let (broker, events, cfg, expected) = loaded("crash", 3, 3, 40_000, "");

    let first = Monitor::start(&cfg, "first");
    let done = first_commit(&broker.bootstrap, "crash", "crash-in", 3);
    drop(first); // SIGKILL
    assert!(
        done < events.len() as i64,
        "the kill came after everything was read ({done} of {}); the test needs more data",
        events.len()
    );
    let second = Monitor::start(&cfg, "second");
    let lines = read_sla(&broker.bootstrap, "crash-sla", expected.len());
    assert_same(&by_id(lines), &expected);
    let log = second.log_text();
    let restored = log.lines().any(|l| {
        l.contains("partitions assigned") && l.contains(r#""rebuilding":"[]""#) && !l.contains(r#""restored":"[]""#)
    });
    assert!(restored, "the restart restored its shards from the changelog:\n{log}");
}

/// One of several instances on this host: each needs a transactional id of its own (the
/// default is per host).
fn member(cfg: &Path, name: &str) -> Monitor {
    let stem = cfg.file_stem().unwrap().to_string_lossy();
    Monitor::start_with(
        cfg,
        name,
        &[("SLAWATCH__KAFKA__TRANSACTIONAL_ID", &format!("{stem}-{name}"))],
    )
}

#[test]
fn a_second_instance_joining_and_leaving_under_load_changes_nothing() {
    let (broker, _, cfg, expected) = loaded("pair", 4, 4, 40_000, "");
    let a = member(&cfg, "a");
    a.wait_for("partitions assigned", 30 * SEC);
    let mut b = member(&cfg, "b");
    b.wait_for("partitions assigned", 60 * SEC);
    std::thread::sleep(SEC);
    b.signal("-INT");
    assert!(b.wait_exit(30 * SEC).success(), "{}", b.log_text());
    let lines = read_sla(&broker.bootstrap, "pair-sla", expected.len());
    assert_same(&by_id(lines), &expected);
    let shared = b
        .log_text()
        .lines()
        .any(|l| l.contains("partitions assigned") && !l.contains(r#""assigned":"[]""#));
    assert!(shared, "the second instance took partitions:\n{}", b.log_text());
}

/// With everything read, a second instance joins and leaves: the first keeps the shards that
/// stay with it, and no SLA event is lost or new.
#[test]
fn a_second_instance_joining_an_idle_group_keeps_the_shards_that_stay() {
    let (broker, _, cfg, expected) = loaded("idle", 4, 6, 2_000, "");
    let a = member(&cfg, "a");
    let lines = read_sla(&broker.bootstrap, "idle-sla", expected.len());
    let mut b = member(&cfg, "b");
    b.wait_for("partitions assigned", 60 * SEC);
    b.signal("-INT");
    assert!(b.wait_exit(30 * SEC).success(), "{}", b.log_text());
    let assigned = || a.log_text().matches("partitions assigned").count();
    let start = std::time::Instant::now();
    while assigned() < 3 && start.elapsed() < 60 * SEC {
        std::thread::sleep(SEC / 10);
    }
    let again = read_sla(&broker.bootstrap, "idle-sla", expected.len());
    assert_eq!(again.len(), lines.len(), "published nothing twice");
    assert_eq!(by_id(again), by_id(lines), "published nothing new");
    let log = a.log_text();
    let kept = log.lines().any(|l| {
        l.contains("partitions assigned") && l.contains(r#""rebuilding":"[]""#) && !l.contains(r#""assigned":"[]""#)
    });
    assert!(kept, "the first instance kept its shards:\n{log}");
}

#[test]
fn graceful_shutdown_commits_everything_and_a_restart_adds_nothing_new() {
    let (broker, events, cfg, expected) = loaded("calm", 2, 5, 1_000, "");

    let mut first = Monitor::start(&cfg, "first");
    let lines = read_sla(&broker.bootstrap, "calm-sla", expected.len());
    first.signal("-TERM");
    assert!(first.wait_exit(15 * SEC).success(), "{}", first.log_text());
    let per_partition: Vec<i64> = (0..2)
        .map(|p| events.iter().filter(|e| e.0 == p).count() as i64)
        .collect();
    assert_eq!(committed(&broker.bootstrap, "calm", "calm-in", 2), per_partition);

    let second = Monitor::start(&cfg, "second");
    second.wait_for("partitions assigned", 30 * SEC);
    std::thread::sleep(5 * SEC);
    let again: Vec<String> = read_topic(&broker.bootstrap, "calm-sla", 2 * SEC, 10 * SEC, |_| true)
        .iter()
        .map(text)
        .collect();
    // Not even the alerts the first run emitted from wall-clock ticks come again: the frontier
    // is committed with the offsets.
    assert_eq!(again.len(), lines.len(), "published nothing twice");
    assert_same(&by_id(again), &by_id(lines));
}

/// A configuration for consumer group `group` on topics `{group}-in`, `{group}-sla` and
/// `{group}-dead` (created with one partition each on a real broker; the mock cluster is given
/// them by [`mock_cluster`]): first response due 20 s after creation, `idle_grace` 1 s, and
/// `extra` TOML right after the `[http]` header (keys of that section, then other tables).
fn small_config(dir: &Path, bootstrap: &str, group: &str, extra: &str) -> PathBuf {
    let cfg = dir.join(format!("{group}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[engine]\nidle_grace = \"1s\"\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}\n\
             [kafka]\nbrokers = {bootstrap:?}\ngroup_id = {group:?}\ninput_topics = [\"{group}-in\"]\n\
             output_topic = \"{group}-sla\"\ndead_letter_topic = \"{group}-dead\"\n\
             [[policy]]\nname = \"fast\"\n[policy.targets.first_response]\nnormal = \"20s\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// The shared broker with one-partition topics for `group`, and its [`small_config`].
fn small(dir: &Path, group: &str, http: &str) -> (&'static Broker, PathBuf) {
    let broker = Broker::shared();
    create_group_topics(broker, group, &[&format!("{group}-in")], 1);
    (broker, small_config(dir, &broker.bootstrap, group, http))
}

/// librdkafka's mock cluster with the topics of [`small_config`], for fault injection. It has
/// transactions but not the admin requests that check the changelog topic: at-least-once.
fn mock_cluster(
    dir: &Path,
    group: &str,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    PathBuf,
) {
    let cluster = MockCluster::new(1).unwrap();
    for suffix in ["in", "sla", "dead"] {
        cluster.create_topic(&format!("{group}-{suffix}"), 1, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let cfg = small_config(dir, &bootstrap, group, "[run]\nguarantee = \"at_least_once\"");
    (cluster, bootstrap, cfg)
}

fn sla_lines(bootstrap: &str, topic: &str, quiet: Duration, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
    let out = read_topic(bootstrap, topic, quiet, 120 * SEC, |out| {
        enough(&out.iter().map(text).collect::<Vec<_>>())
    });
    out.iter().map(text).collect()
}

/// A 30 s broker outage: the frontier stops, so a ticket answered (by event time) before its
/// deadline, whose reply only arrives after the outage, is not reported breached.
#[test]
fn a_broker_outage_fakes_no_breach() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, bootstrap, cfg) = mock_cluster(dir.path(), "outage");
    let monitor = Monitor::start(&cfg, "monitor");
    monitor.wait_for("partitions assigned", 30 * SEC);
    let t0 = wall_now();
    produce(
        &bootstrap,
        "outage-in",
        &[
            event("ticket.created", "T-answered", t0, CREATED),
            event("ticket.created", "T-ignored", t0, CREATED),
        ],
    );
    std::thread::sleep(3 * SEC);
    cluster.broker_down(1).unwrap();
    std::thread::sleep(30 * SEC);
    cluster.broker_up(1).unwrap();
    produce(
        &bootstrap,
        "outage-in",
        &[event("reply.sent", "T-answered", t0 + 10_000, REPLY)],
    );
    let lines = sla_lines(&bootstrap, "outage-sla", 3 * SEC, |lines| {
        lines
            .iter()
            .any(|l| l.contains("T-ignored") && l.contains("sla.breached"))
            && lines
                .iter()
                .any(|l| l.contains("T-answered") && l.contains("sla.fulfilled"))
    });
    let answered: Vec<&String> = lines.iter().filter(|l| l.contains("T-answered")).collect();
    assert!(
        answered.iter().all(|l| !l.contains("sla.breached")),
        "breach faked during the outage: {answered:#?}"
    );
    assert!(
        answered
            .iter()
            .any(|l| l.contains("sla.fulfilled") && l.contains("\"outcome\":\"met\"")),
        "{answered:#?}\n{}",
        monitor.log_text()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("T-ignored") && l.contains("sla.breached"))
    );
}

/// A breach the wall clock fired, a graceful stop, then a reply dated before the deadline:
/// the restarted monitor retracts the breach, as an uninterrupted one would, and sends it no
/// second time. The frontier travels as commit metadata.
#[test]
fn a_restart_remembers_the_breaches_the_clock_fired() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, cfg) = small(dir.path(), "remember", "");
    let bootstrap = &broker.bootstrap;
    let mut first = Monitor::start(&cfg, "first");
    let t0 = wall_now() - 60_000;
    produce(
        bootstrap,
        "remember-in",
        &[event("ticket.created", "T-late", t0, CREATED)],
    );
    sla_lines(bootstrap, "remember-sla", SEC, |lines| {
        lines.iter().any(|l| l.contains("sla.breached"))
    });
    first.signal("-TERM");
    assert!(first.wait_exit(15 * SEC).success(), "{}", first.log_text());

    produce(
        bootstrap,
        "remember-in",
        &[event("reply.sent", "T-late", t0 + 10_000, REPLY)],
    );
    let second = Monitor::start(&cfg, "second");
    let lines = sla_lines(bootstrap, "remember-sla", 3 * SEC, |lines| {
        lines.iter().any(|l| l.contains("sla.fulfilled"))
    });
    let kinds: Vec<&str> = lines.iter().map(|l| l.split('"').nth(3).unwrap()).collect();
    assert_eq!(
        kinds,
        ["sla.breached", "sla.breach_retracted", "sla.fulfilled"],
        "{lines:#?}\n{}",
        second.log_text()
    );
    assert!(lines[2].contains("\"outcome\":\"met\""), "{}", lines[2]);
    let metrics = second.http_get("/metrics").1;
    assert_eq!(sum(&metrics, "slawatch_open_tickets", ""), 1.0);
    assert_eq!(
        sum(&metrics, "slawatch_sla_events_total", r#"type="breach_retracted""#),
        1.0
    );
}

/// The read-only API: a ticket with its cycles, cycles at risk soonest first (breached ones
/// flagged), the policies; bearer token, JSON errors; and the ticket gauges.
#[test]
fn the_http_api_shows_tickets_cycles_at_risk_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, cfg) = small(dir.path(), "api", "api_token = \"s3cret\"");
    let bootstrap = &broker.bootstrap;
    let monitor = Monitor::start(&cfg, "monitor");
    monitor.wait_for("partitions assigned", 30 * SEC);
    let now = wall_now();
    produce(
        bootstrap,
        "api-in",
        &[
            event("ticket.created", "T-late", now - 60_000, CREATED),
            event("ticket.created", "T-soon", now - 5_000, CREATED),
        ],
    );
    sla_lines(bootstrap, "api-sla", SEC, |lines| {
        lines.iter().any(|l| l.contains("sla.breached"))
    });
    let auth = "Authorization: Bearer s3cret\r\n";
    let get = |path: &str| {
        let (status, body) = monitor.http_get_with(path, auth);
        (status, serde_json::from_str::<serde_json::Value>(&body).unwrap())
    };

    let (status, denied) = monitor.http_get("/api/v1/tickets/T-soon");
    assert_eq!(status, 401);
    assert!(denied.contains("\"error\""), "{denied}");
    let (status, t) = get("/api/v1/tickets/T-soon");
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["status"].as_str(), t["policy"].as_str()),
        (Some("new"), Some("fast"))
    );
    let c = &t["cycles"][0];
    assert_eq!(
        (c["clock"].as_str(), c["state"].as_str()),
        (Some("first_response"), Some("on_track"))
    );
    assert_eq!(c["deadline"].as_str(), Some(Rfc3339(now + 15_000).to_string().as_str()));
    assert!(c["elapsed_ms"].as_i64().unwrap() >= 0);
    assert_eq!(get("/api/v1/tickets/T-none").0, 404);

    let (status, risk) = get("/api/v1/at-risk?within=1m&clock=first_response");
    assert_eq!(status, 200, "{risk}");
    let ids: Vec<(&str, bool)> = risk["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["ticket_id"].as_str().unwrap(), c["breached"].as_bool().unwrap()))
        .collect();
    assert_eq!(ids, [("T-late", true), ("T-soon", false)]);
    assert_eq!(
        get("/api/v1/at-risk?within=1m&limit=1").1["cycles"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get("/api/v1/at-risk?clock=resolution").1["cycles"],
        serde_json::json!([])
    );
    assert_eq!(get("/api/v1/at-risk?policy=other").1["cycles"], serde_json::json!([]));
    let (status, bad) = get("/api/v1/at-risk?within=soon");
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("within"), "{bad}");
    assert_eq!(get("/api/v1/at-risk?limit=0").0, 400);

    let (status, policies) = get("/api/v1/policies");
    assert_eq!(status, 200);
    assert_eq!(policies["policies"][0]["name"].as_str(), Some("fast"));
    assert_eq!(
        policies["policies"][0]["targets"]["first_response"]["normal"].as_str(),
        Some("20s")
    );

    // The ticket gauges are recounted at every tick; T-soon (due 15 s after start) may have
    // breached by now.
    std::thread::sleep(SEC);
    let metrics = monitor.http_get("/metrics").1;
    let first = |state: &str| {
        sum(
            &metrics,
            "slawatch_cycles",
            &format!(r#"clock="first_response",state="{state}""#),
        )
    };
    assert_eq!(first("breached") + first("on_track"), 2.0, "{metrics}");
    assert!(first("breached") >= 1.0);
    assert_eq!(sum(&metrics, "slawatch_open_tickets", ""), 2.0);
}

/// Records around Kafka's record size limit: one just under the broker's default
/// `message.max.bytes` (1 MiB) and, on an input topic that allows them, one of 5 MB and one
/// with a 2 MB key. Each becomes a `too_large` dead letter that fits the dead-letter topic's
/// default limit (a 256 KiB prefix, what was cut named in a header), and the monitor carries
/// on: the ticket after them is monitored and everything is committed.
#[test]
fn oversized_records_become_dead_letters_that_fit() {
    let broker = Broker::shared();
    let big = [("max.message.bytes", "10000000")];
    create_topics_with(&broker.bootstrap, &[("huge-in", 1, &big[..])]);
    create_group_topics(broker, "huge", &[], 1);
    let padded = |n: usize| format!("{{\"pad\":\"{}\"}}", "x".repeat(n - 10)).into_bytes();
    let t0 = wall_now();
    let records: Vec<Rec> = vec![
        (0, Some(b"under".to_vec()), Some(padded(1_040_000))),
        (0, Some(b"over".to_vec()), Some(padded(5_000_000))),
        (0, Some(vec![b'k'; 2_000_000]), Some(padded(300))),
        event("ticket.created", "T-after", t0 - 60_000, CREATED),
    ];
    produce(&broker.bootstrap, "huge-in", &records);
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), &broker.bootstrap, "huge", "");
    let mut monitor = Monitor::start(&cfg, "monitor");
    let dead = read_topic(&broker.bootstrap, "huge-dead", 2 * SEC, 60 * SEC, |out| out.len() >= 3);
    assert_eq!(dead.len(), 3, "{}", monitor.log_text());
    let cut = 256 * 1024;
    for (i, m) in dead.iter().enumerate() {
        assert_eq!(header(m, "slawatch.source.offset"), Some(i.to_string()));
        let (key, value) = (records[i].1.as_deref().unwrap(), records[i].2.as_deref().unwrap());
        let expected_cut = match i {
            0 => "value:1040000",
            1 => "value:5000000",
            _ => "key:2000000",
        };
        assert_eq!(
            header(m, "slawatch.truncated").as_deref(),
            Some(expected_cut),
            "record {i}"
        );
        assert_eq!(m.payload(), Some(&value[..value.len().min(cut)]), "record {i}");
        assert_eq!(m.key(), Some(&key[..key.len().min(cut)]), "record {i}");
    }
    assert_eq!(header(&dead[0], "slawatch.reason").as_deref(), Some("too_large"));
    sla_lines(&broker.bootstrap, "huge-sla", SEC, |lines| {
        lines.iter().any(|l| l.contains("breached:first_response:1:T-after"))
    });
    monitor.signal("-TERM");
    assert!(monitor.wait_exit(15 * SEC).success(), "{}", monitor.log_text());
    assert_eq!(committed(&broker.bootstrap, "huge", "huge-in", 1), [4]);
}

/// A dead letter that cannot be written stops the monitor with exit code 1 before any offset
/// past its record is committed: refused by the producer itself (its `message.max.bytes`, set
/// to 2,000 bytes) or by the broker (the dead-letter topic takes records of at most 1,000
/// bytes). Once the topic takes it, a restart delivers the dead letter and goes on.
#[test]
fn a_dead_letter_that_cannot_be_written_is_never_committed_past() {
    let broker = Broker::shared();
    let small_records = [("max.message.bytes", "1000")];
    create_topics_with(
        &broker.bootstrap,
        &[
            ("refused-in", 1, &[][..]),
            ("refused-sla", 1, &[][..]),
            ("refused-dead", 1, &small_records[..]),
        ],
    );
    let t0 = wall_now();
    produce(
        &broker.bootstrap,
        "refused-in",
        &[
            event("ticket.created", "T-1", t0, CREATED),
            event(&"x".repeat(2_500), "T-3", t0, CREATED),
            event("ticket.created", "T-2", t0, CREATED),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let producer_limit = "[kafka.client]\n\"message.max.bytes\" = \"2000\"";
    for (name, extra) in [("by-producer", producer_limit), ("by-broker", "")] {
        let cfg = small_config(dir.path(), &broker.bootstrap, "refused", extra);
        let mut monitor = Monitor::start(&cfg, name);
        let status = monitor.wait_exit(60 * SEC);
        let log = monitor.log_text();
        assert_eq!(status.code(), Some(1), "{name}: {log}");
        assert!(log.contains("failed"), "{name}: {log}");
        let done = committed(&broker.bootstrap, "refused", "refused-in", 1)[0];
        assert!(
            done <= 1,
            "{name}: committed {done}, past the record whose dead letter failed"
        );
    }

    alter_topic(&broker.bootstrap, "refused-dead", &[("max.message.bytes", "1048588")]);
    let cfg = small_config(dir.path(), &broker.bootstrap, "refused", "");
    let _monitor = Monitor::start(&cfg, "after");
    let dead = read_topic(&broker.bootstrap, "refused-dead", 2 * SEC, 60 * SEC, |out| {
        !out.is_empty()
    });
    assert_eq!(dead.len(), 1);
    assert_eq!(header(&dead[0], "slawatch.source.offset").as_deref(), Some("1"));
    assert_eq!(header(&dead[0], "slawatch.reason").as_deref(), Some("unknown_type"));
    sla_lines(&broker.bootstrap, "refused-sla", SEC, |lines| {
        lines.iter().any(|l| l.contains("T-2"))
    });
}

/// A keyless record and a mis-keyed one (produced to a partition its ticket id does not map to
/// under Kafka's default partitioner) are `misrouted` dead letters; the ticket keeps one set of
/// SLA events, on the shard that owns it. A record whose key is not the ticket id but which
/// sits on the ticket's partition is applied (the ticket id comes from the payload).
#[test]
fn records_on_another_partition_than_their_ticket_are_misrouted() {
    let broker = Broker::shared();
    let input = "route-in";
    create_group_topics(broker, "route", &[input], 3);
    let id = "T-owned";
    let home = partition_of(id, 3);
    let away = (home + 1) % 3;
    let t0 = wall_now() - 60_000;
    let created = event("ticket.created", id, t0, CREATED);
    let json = |ty: &str, at: i64, rest: &str| event(ty, id, at, rest).2;
    let records: Vec<Rec> = vec![
        (home, Some(id.into()), created.2.clone()),
        (away, None, created.2.clone()),
        (away, Some(id.into()), json("reply.sent", t0 + 1_000, REPLY)),
        (
            home,
            Some(b"another-key".to_vec()),
            json("ticket.updated", t0 + 2_000, r#""group":"billing""#),
        ),
    ];
    produce(&broker.bootstrap, input, &records);
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), &broker.bootstrap, "route", "");
    let monitor = Monitor::start(&cfg, "monitor");
    let dead = read_topic(&broker.bootstrap, "route-dead", 2 * SEC, 60 * SEC, |out| out.len() >= 2);
    let reasons: Vec<(Option<String>, Option<String>)> = dead
        .iter()
        .map(|m| (header(m, "slawatch.reason"), header(m, "slawatch.source.partition")))
        .collect();
    let misrouted = (Some("misrouted".to_string()), Some(away.to_string()));
    assert_eq!(reasons, [misrouted.clone(), misrouted], "{}", monitor.log_text());
    let detail = header(&dead[0], "slawatch.detail").unwrap();
    assert!(detail.contains(&format!("partition {home}")), "{detail}");
    let lines = sla_lines(&broker.bootstrap, "route-sla", 2 * SEC, |lines| {
        lines.iter().any(|l| l.contains("sla.breached"))
    });
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["breached:first_response:1:T-owned"]);
    assert!(lines[0].contains("\"group\":\"billing\""), "{}", lines[0]);
    let metrics = monitor.http_get("/metrics").1;
    assert_eq!(
        sum(&metrics, "slawatch_dead_letters_total", r#"reason="misrouted""#),
        2.0
    );
}

/// The README's first command, for a while: simulated traffic gives SLA events (breaches
/// among them), and a healthy
/// system logs no WARN or ERROR line but the one saying it runs on the demo broker, which
/// `/readyz` says too; the human format has no colour codes on a file.
#[test]
fn the_demo_logs_no_warning_or_error_while_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_slawatch"))
        .args(["run", "--config"])
        .arg(repo("config/demo.toml"))
        .env("SLAWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // At least 45 s, and until the first breach (an hour of simulated time is a minute).
    std::thread::sleep(45 * SEC);
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("sla.breached") && start.elapsed() < 90 * SEC {
        std::thread::sleep(SEC);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let address = text
        .lines()
        .find_map(|l| {
            l.split_once("http listening address=")
                .map(|(_, a)| a.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no http address in {text}"));
    assert_eq!(
        http_get(&address, "/readyz", ""),
        (
            200,
            "ready, on the EMBEDDED DEMO BROKER (in-process, memory only): not for production\n".into()
        )
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status();
    let status = demo.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(
        text.contains("sla.breached") && text.contains("sla.fulfilled"),
        "{text}"
    );
    let (demo_notice, bad): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .partition(|l| l.contains(" WARN ") && l.contains("NOT FOR PRODUCTION"));
    assert_eq!(demo_notice.len(), 1, "{text}");
    assert!(
        bad.is_empty(),
        "{} WARN or ERROR lines, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(!text.contains('\u{1b}'), "colour codes in a log file");
}

/// `kill -9` of the broker while the monitor works through a backlog, then a start on the same
/// log directory: the monitor reconnects by itself and publishes exactly the SLA events of
/// `replay`, in its order, none twice.
#[test]
fn a_broker_killed_and_restarted_loses_nothing() {
    let mut broker = Broker::start();
    create_group_topics(&broker, "bounce", &["bounce-in"], 3);
    let events = simulated(8, 40_000, 3);
    produce(&broker.bootstrap, "bounce-in", &as_records(&events));
    let cfg = config(broker.dir(), &broker.bootstrap, "bounce", &["bounce-in"], "");
    let expected = replay_partitions(&cfg, &events, Some(&until_now()));
    let total = expected.sla.values().map(Vec::len).sum();
    let mut monitor = Monitor::start(&cfg, "monitor");
    let done = first_commit(&broker.bootstrap, "bounce", "bounce-in", 3);
    broker.kill();
    assert!(
        done < events.len() as i64,
        "the kill came after everything was read ({done} of {}); the test needs more data",
        events.len()
    );
    std::thread::sleep(5 * SEC);
    broker.restart();
    let sla = read_topic(&broker.bootstrap, "bounce-sla", 3 * SEC, 180 * SEC, |m| {
        m.len() >= total
    });
    assert_exact(&by_partition(&sla), &expected.sla);
    assert!(monitor.child.try_wait().unwrap().is_none(), "{}", monitor.log_text());
}

/// Input written in a transaction ends with a commit marker, which takes an offset of its own:
/// the partition still counts as read to its end, so the wall clock moves the frontier and the
/// ticket's breach fires without waiting for another record.
#[test]
fn a_partition_whose_last_records_were_written_in_a_transaction_is_caught_up() {
    let broker = Broker::shared();
    create_group_topics(broker, "txn", &["txn-in"], 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), &broker.bootstrap, "txn", "");
    let monitor = Monitor::start(&cfg, "monitor");
    monitor.wait_for("partitions assigned", 30 * SEC);
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("transactional.id", "txn-test")
        .create()
        .unwrap();
    use rdkafka::producer::Producer;
    producer.init_transactions(10 * SEC).unwrap();
    producer.begin_transaction().unwrap();
    let (_, key, value) = event("ticket.created", "T-txn", wall_now() - 60_000, CREATED);
    let record = rdkafka::producer::BaseRecord::to("txn-in")
        .key(key.as_deref().unwrap())
        .payload(value.as_deref().unwrap());
    producer.send(record).map_err(|(e, _)| e).unwrap();
    producer.commit_transaction(10 * SEC).unwrap();
    let lines = sla_lines(&broker.bootstrap, "txn-sla", SEC, |lines| {
        lines.iter().any(|l| l.contains("sla.breached"))
    });
    assert!(
        lines.iter().any(|l| l.contains("breached:first_response:1:T-txn")),
        "{}",
        monitor.log_text()
    );
}

/// A configuration for group `group` on the broker's `SASL_SSL` listener (SCRAM-SHA-512, the
/// broker's certificate trusted), the password left to the environment.
fn secure_config(broker: &Broker, group: &str) -> PathBuf {
    let extra = format!(
        "[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
         \"sasl.username\" = {:?}\n\"ssl.ca.location\" = {:?}\n",
        SCRAM_USER.0,
        broker.ca().display().to_string()
    );
    config(broker.dir(), &broker.secure, group, &[&format!("{group}-in")], &extra)
}

#[test]
fn tls_and_scram_with_the_password_from_a_file_give_the_sla_events_of_replay() {
    let broker = Broker::shared();
    create_group_topics(broker, "secure", &["secure-in"], 2);
    let events = simulated(7, 300, 2);
    produce(&broker.bootstrap, "secure-in", &as_records(&events));
    let cfg = secure_config(broker, "secure");
    let expected = by_id(replay_by_partition(&cfg, &events, &until_now()));
    let password = broker.dir().join("secure-password");
    std::fs::write(&password, format!("{}\n", SCRAM_USER.1)).unwrap();

    // Only the SASL_SSL listener is named, and its metadata advertises only itself.
    let monitor = Monitor::start_with(
        &cfg,
        "monitor",
        &[(
            "SLAWATCH__KAFKA__CLIENT__SASL_PASSWORD_FILE",
            password.to_str().unwrap(),
        )],
    );
    let lines = read_sla(&broker.bootstrap, "secure-sla", expected.len());
    assert_same(&by_id(lines), &expected);
    assert_eq!(monitor.http_get("/readyz"), (200, "ready\n".into()));
    assert!(
        !monitor.log_text().contains("\"level\":\"ERROR\""),
        "{}",
        monitor.log_text()
    );
}

#[test]
fn a_refused_password_or_an_untrusted_certificate_stops_the_start_naming_the_cause() {
    let broker = Broker::shared();
    create_group_topics(broker, "untrusted", &["untrusted-in"], 1);
    let cfg = secure_config(broker, "untrusted");
    let password = "SLAWATCH__KAFKA__CLIENT__SASL_PASSWORD";
    let system_cas = ("SLAWATCH__KAFKA__CLIENT__SSL_CA_LOCATION", "/etc/ssl/certs");
    for (name, env, cause) in [
        (
            "password",
            &[(password, "wrong")][..],
            "invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
        (
            "certificate",
            &[(password, SCRAM_USER.1), system_cas][..],
            "certificate verify failed",
        ),
    ] {
        let mut monitor = Monitor::start_with(&cfg, name, env);
        let status = monitor.wait_exit(30 * SEC);
        let log = monitor.log_text();
        assert_eq!(status.code(), Some(2), "{log}");
        let last = log.lines().last().unwrap_or_default();
        assert!(
            last.contains("cannot connect to the brokers") && last.contains(cause),
            "{name}: {log}"
        );
    }
}

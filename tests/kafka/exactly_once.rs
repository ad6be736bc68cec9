//! Exactly-once on the real broker: a `read_committed` reader of the output topic receives, per
//! partition, exactly what `replay` of that partition emits, in the same order, whatever
//! happens to the monitors and the broker; shard state survives the input's retention.
//!
//! Input arrives while the monitors run ("under load"), so `engine.idle_grace` is ten years:
//! the frontier then moves only by events, and the comparison with `replay` is deterministic
//! (replay ends its frontier at each partition's last event, as the monitors do).

use std::thread::JoinHandle;

use rdkafka::message::Message;

use rand::{Rng, SeedableRng};

use super::*;

/// Engine time never follows the wall clock in these tests (see the module header).
const EVENT_TIME_ONLY: (&str, &str) = ("SLAWATCH__ENGINE__IDLE_GRACE", "3650d");

/// Records that are not events, one every `every` input records, on the partition of the
/// ticket they are keyed by.
fn with_bad_records(events: &Events, every: usize) -> (Vec<Rec>, usize) {
    let mut records = Vec::new();
    let mut bad = 0;
    for (i, rec) in as_records(events).into_iter().enumerate() {
        if i % every == every - 1 {
            records.push((rec.0, rec.1.clone(), Some(format!("not json {i}").into_bytes())));
            bad += 1;
        }
        records.push(rec);
    }
    (records, bad)
}

/// Produces `records` to `topic` in slices over about `seconds`, from a thread.
fn steady_load(bootstrap: &str, topic: &str, records: Vec<Rec>, seconds: u64) -> JoinHandle<()> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || {
        let slices = 4 * seconds as usize;
        for slice in records.chunks(records.len().div_ceil(slices)) {
            produce(&bootstrap, &topic, slice);
            std::thread::sleep(SEC / 4);
        }
    })
}

/// Reads the output and dead-letter topics of `group` once everything expected arrived and
/// both went quiet, and checks them: the SLA events exactly as `expected`, and the dead letters
/// of replay and of the `bad` records, each once.
fn assert_exactly_once(bootstrap: &str, group: &str, expected: &Replayed, bad: usize) {
    let total: usize = expected.sla.values().map(Vec::len).sum();
    let sla = read_topic(bootstrap, &format!("{group}-sla"), 5 * SEC, 240 * SEC, |m| {
        m.len() >= total
    });
    assert_exact(&by_partition(&sla), &expected.sla);
    let want = bad + expected.dead;
    let dead = read_topic(bootstrap, &format!("{group}-dead"), 2 * SEC, 60 * SEC, |m| {
        m.len() >= want
    });
    let mut sources: Vec<(String, String)> = dead
        .iter()
        .map(|m| {
            let at = |h| header(m, h).unwrap();
            let expected_reason = if text(m).starts_with("not json") {
                "invalid_json"
            } else {
                "unknown_ticket"
            };
            assert_eq!(at("slawatch.reason"), expected_reason, "{}", text(m));
            (at("slawatch.source.partition"), at("slawatch.source.offset"))
        })
        .collect();
    sources.sort();
    sources.dedup();
    assert_eq!((dead.len(), sources.len()), (want, want), "each dead letter once");
}

/// The input of `group`'s tests: `tickets` simulated tickets on `partitions` partitions, a
/// bad record every 997 records; the configuration; what replay makes of it.
fn scenario(
    group: &str,
    partitions: i32,
    tickets: u64,
    client: &str,
) -> (&'static Broker, Vec<Rec>, usize, PathBuf, Replayed) {
    let broker = Broker::shared();
    let input = format!("{group}-in");
    create_group_topics(broker, group, &[&input], partitions);
    let events = simulated(31, tickets, partitions);
    let (records, bad) = with_bad_records(&events, 997);
    let extra = format!("[kafka.client]\n{client}\n");
    let cfg = config(broker.dir(), &broker.bootstrap, group, &[&input], &extra);
    let expected = replay_partitions(&cfg, &events, None);
    assert!(
        expected.sla.values().all(|v| v.len() > 1_000),
        "a meaningful amount of output"
    );
    (broker, records, bad, cfg, expected)
}

#[test]
fn twenty_kill_9s_under_load_publish_exactly_what_replay_does() {
    // Static membership: a restarted instance takes its predecessor's place in the group at
    // once, without waiting for its session to time out.
    let client = r#""group.instance.id" = "loop-1"
"session.timeout.ms" = "10000""#;
    let (broker, records, bad, cfg, expected) = scenario("loop", 3, 12_000, client);
    let load = steady_load(&broker.bootstrap, "loop-in", records, 30);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(20);
    for run in 0..20 {
        let monitor = Monitor::start_with(&cfg, &format!("run{run}"), &[EVENT_TIME_ONLY]);
        std::thread::sleep(Duration::from_millis(rng.random_range(500..3_000)));
        drop(monitor); // SIGKILL
    }
    load.join().unwrap();
    let last = Monitor::start_with(&cfg, "last", &[EVENT_TIME_ONLY]);
    assert_exactly_once(&broker.bootstrap, "loop", &expected, bad);
    let restored = (0..20).any(|run| {
        let log = std::fs::read_to_string(cfg.with_file_name(format!("loop-run{run}.log"))).unwrap();
        log.lines()
            .any(|l| l.contains("partitions assigned") && !l.contains(r#""restored":"[]""#))
    });
    assert!(restored, "the restarts restored shards from the changelog");
    assert_no_errors(&last);
}

#[test]
fn a_group_of_three_with_members_leaving_and_joining_publishes_exactly_what_replay_does() {
    let client = r#""session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"transaction.timeout.ms" = "10000""#;
    let (broker, records, bad, cfg, expected) = scenario("trio", 6, 12_000, client);
    let load = steady_load(&broker.bootstrap, "trio-in", records, 40);
    let member = |name: &str| member(&cfg, "trio", name);
    let (a, mut b) = (member("a"), member("b"));
    let c = member("c");
    a.wait_for("partitions assigned", 60 * SEC);
    std::thread::sleep(4 * SEC);
    drop(a); // kill -9
    std::thread::sleep(4 * SEC);
    let d = member("d");
    std::thread::sleep(6 * SEC);
    b.signal("-TERM");
    assert!(b.wait_exit(30 * SEC).success(), "{}", b.log_text());
    std::thread::sleep(4 * SEC);
    drop(c); // kill -9
    let a = member("a"); // the same transactional id as the first `a`
    load.join().unwrap();
    assert_exactly_once(&broker.bootstrap, "trio", &expected, bad);
    for m in [&a, &d] {
        assert_no_errors(m);
    }
}

/// Member `name` of `group`, with a transactional id of its own (several on this host).
fn member(cfg: &Path, group: &str, name: &str) -> Monitor {
    let id = format!("{group}-{name}");
    Monitor::start_with(
        cfg,
        name,
        &[EVENT_TIME_ONLY, ("SLAWATCH__KAFKA__TRANSACTIONAL_ID", &id)],
    )
}

fn assert_no_errors(m: &Monitor) {
    let log = m.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(r#""level":"ERROR""#)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A zombie: a member stopped (SIGSTOP) past its session timeout and its transaction's timeout
/// while the group gives its partitions to the other, then let go on. The broker has aborted
/// its transaction and fenced its producer: it stops (exit 1) without committing anything,
/// and the outputs stay exactly once.
#[test]
fn a_zombie_member_is_fenced_and_commits_nothing() {
    let client = r#""session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"transaction.timeout.ms" = "10000""#;
    let (broker, records, bad, cfg, expected) = scenario("zombie", 4, 8_000, client);
    let load = steady_load(&broker.bootstrap, "zombie-in", records, 30);
    let member = |name: &str| member(&cfg, "zombie", name);
    let mut a = member("a");
    a.wait_for("partitions assigned", 60 * SEC);
    let b = member("b");
    b.wait_for("partitions assigned", 60 * SEC);
    std::thread::sleep(3 * SEC);
    a.signal("-STOP");
    std::thread::sleep(15 * SEC);
    a.signal("-CONT");
    assert_eq!(a.wait_exit(60 * SEC).code(), Some(1), "{}", a.log_text());
    // The fence shows at the next produce or at the commit, whichever comes first; or the
    // transaction has timed out while stopped, and librdkafka refuses to produce in it.
    let log = a.log_text();
    assert!(
        log.contains("fenced by a newer instance") || log.contains("Erroneous state"),
        "{log}"
    );
    load.join().unwrap();
    assert_exactly_once(&broker.bootstrap, "zombie", &expected, bad);
    let took_over = b.log_text().matches("partitions assigned").count() >= 2;
    assert!(took_over, "b took a's partitions:\n{}", b.log_text());
}

/// The input's retention deletes everything the group committed: a restart still knows every
/// open ticket, its breach fires, its reply fulfils it, and no `unknown_ticket` appears.
#[test]
fn tickets_outlive_the_input_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, cfg) = small(dir.path(), "kept", "");
    let t0 = wall_now();
    let ids: Vec<String> = (0..50).map(|i| format!("T-{i}")).collect();
    let created: Vec<Rec> = ids.iter().map(|id| event("ticket.created", id, t0, CREATED)).collect();
    produce(&broker.bootstrap, "kept-in", &created);
    let mut first = Monitor::start(&cfg, "first");
    first.wait_for("partitions assigned", 30 * SEC);
    while committed(&broker.bootstrap, "kept", "kept-in", 1)[0] < 50 {
        std::thread::sleep(SEC / 10);
    }
    first.signal("-TERM");
    assert!(first.wait_exit(30 * SEC).success(), "{}", first.log_text());
    delete_records(&broker.bootstrap, "kept-in", 0, 50);

    let second = Monitor::start(&cfg, "second");
    second.wait_for("partitions assigned", 30 * SEC);
    let answered: Vec<Rec> = ids[..25]
        .iter()
        .map(|id| event("reply.sent", id, t0 + 5_000, REPLY))
        .collect();
    produce(&broker.bootstrap, "kept-in", &answered);
    let lines = sla_lines(&broker.bootstrap, "kept-sla", 2 * SEC, |lines| {
        lines.iter().filter(|l| l.contains("sla.breached")).count() >= 25
    });
    for (i, id) in ids.iter().enumerate() {
        let of = |kind: &str| {
            lines
                .iter()
                .filter(|l| l.contains(kind) && l.contains(&format!("\"{id}\"")))
                .count()
        };
        let expected = if i < 25 { (1, 0) } else { (0, 1) };
        assert_eq!((of("sla.fulfilled"), of("sla.breached")), expected, "{id}");
    }
    let log = second.log_text();
    assert!(log.contains(r#""restored":"[(0, 50)]""#), "{log}");
    assert!(!log.contains("unknown_ticket"), "{log}");
    let dead = read_topic(&broker.bootstrap, "kept-dead", SEC, 2 * SEC, |_| true);
    assert!(dead.is_empty(), "{} dead letters", dead.len());
}

/// A changelog topic that would lose state (deleting cleanup policy) or does not match the
/// input's partitions stops the start as a configuration error, naming it.
#[test]
fn an_unfit_changelog_topic_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (group, partitions, policy, why) in [
        ("unfit-policy", 1, "delete", r#"cleanup.policy is Some("delete")"#),
        ("unfit-count", 2, "compact", "has 2 partitions, the input topics 1"),
    ] {
        let (broker, cfg) = small(dir.path(), group, "");
        let changelog = format!("{group}-changelog");
        create_topics_with(
            &broker.bootstrap,
            &[(&changelog, partitions, &[("cleanup.policy", policy)])],
        );
        let mut monitor = Monitor::start(&cfg, "monitor");
        assert_eq!(monitor.wait_exit(30 * SEC).code(), Some(2), "{}", monitor.log_text());
        let named = format!("kafka.changelog_topic \"{changelog}\": {why}");
        assert!(
            monitor.log_text().contains(&json_text(&named)),
            "{}",
            monitor.log_text()
        );
    }
}

/// A record in the changelog that is not the monitor's: the restart refuses to continue from
/// a state it cannot read, and says where the record is.
#[test]
fn an_undecodable_changelog_record_stops_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, cfg) = small(dir.path(), "rot", "");
    produce(
        &broker.bootstrap,
        "rot-in",
        &[event("ticket.created", "T-1", wall_now(), CREATED)],
    );
    let mut first = Monitor::start(&cfg, "first");
    first.wait_for("partitions assigned", 30 * SEC);
    while committed(&broker.bootstrap, "rot", "rot-in", 1)[0] < 1 {
        std::thread::sleep(SEC / 10);
    }
    first.signal("-TERM");
    assert!(first.wait_exit(30 * SEC).success(), "{}", first.log_text());
    let foreign = b"{\"id\":1}".to_vec();
    produce(
        &broker.bootstrap,
        "rot-changelog",
        &[(0, Some(b"tT-1".to_vec()), Some(foreign.clone()))],
    );
    let records = read_topic(&broker.bootstrap, "rot-changelog", SEC, 10 * SEC, |m| m.len() >= 3);
    assert!(records.len() >= 3, "a ticket, a partition and the foreign record");
    let offset = records
        .iter()
        .find(|m| m.payload() == Some(&foreign[..]))
        .unwrap()
        .offset();

    let mut second = Monitor::start(&cfg, "second");
    let status = second.wait_exit(60 * SEC);
    assert_eq!(status.code(), Some(1), "{}", second.log_text());
    let log = second.log_text();
    let named = format!("topic \"rot-changelog\" partition 0 offset {offset}: cannot decode: encoding version 123");
    assert!(log.contains(&json_text(&named)), "{log}");
}

/// The outputs are transactional: a monitor killed with a transaction open leaves records that
/// a `read_uncommitted` reader sees and a `read_committed` reader never does.
#[test]
fn outputs_are_written_in_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, cfg) = small(dir.path(), "open", "[run]\ncommit_interval = \"1h\"\n");
    let monitor = Monitor::start(&cfg, "monitor");
    monitor.wait_for("partitions assigned", 30 * SEC);
    // Applying the reply emits `sla.fulfilled`; no tick emits an alert, so nothing commits
    // the transaction before the kill.
    let t0 = wall_now();
    produce(
        &broker.bootstrap,
        "open-in",
        &[event("ticket.created", "T-1", t0, CREATED)],
    );
    produce(
        &broker.bootstrap,
        "open-in",
        &[event("reply.sent", "T-1", t0 + 1_000, REPLY)],
    );
    let uncommitted = read_uncommitted(&broker.bootstrap, "open-sla", |lines| {
        lines.iter().any(|l| l.contains("sla.fulfilled"))
    });
    assert!(uncommitted, "the output reached the broker:\n{}", monitor.log_text());
    drop(monitor);
    let committed = read_topic(&broker.bootstrap, "open-sla", SEC, 3 * SEC, |_| true);
    assert!(
        committed.is_empty(),
        "{:?}",
        committed.iter().map(text).collect::<Vec<_>>()
    );
}

/// Whether a `read_uncommitted` reader of `topic` sees lines for which `enough` holds within
/// 30 s.
fn read_uncommitted(bootstrap: &str, topic: &str, enough: impl Fn(&[String]) -> bool) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "slawatch-test-uncommitted")
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let start = std::time::Instant::now();
    let mut lines = Vec::new();
    while start.elapsed() < 30 * SEC {
        if let Some(Ok(m)) = consumer.poll(SEC / 10) {
            lines.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            if enough(&lines) {
                return true;
            }
        }
    }
    false
}

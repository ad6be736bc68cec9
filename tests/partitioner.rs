//! `Partitioner` against the real librdkafka (bundled with the rdkafka crate): every key
//! produced to a mock cluster must be delivered to the partition `Partitioner::partition`
//! predicts, for each of librdkafka's keyed partitioners.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use slawatch::partitioner::Partitioner;

const TOPIC: &str = "tickets";
const PARTITIONS: i32 = 7;

/// A delivery report as (key, partition), or the error text: the callback runs inside
/// librdkafka, where a panic would abort instead of failing the test.
type Report = Result<(Vec<u8>, i32), String>;

#[derive(Default)]
struct Deliveries(Mutex<Vec<Report>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let report = match result {
            Ok(m) => Ok((m.key().unwrap_or_default().to_vec(), m.partition())),
            Err((e, m)) => Err(format!("{e} for key {:?}", m.key())),
        };
        self.0.lock().unwrap().push(report);
    }
}

/// Realistic ticket ids: several systems' formats, non-ASCII, and every length from 1 to
/// 128 bytes so that each murmur2 tail length and many word counts occur.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..250).map(|i| format!("T-{:06}", i * 7 + 123)).collect();
    keys.extend((0..80).map(|i| format!("ZD-{}", 4711 + i * 37)));
    keys.extend((0..40).map(|i| format!("INC{:07}", 1_000_000 + i * 1013)));
    keys.extend(["JIRA-SUP-1", "チケット-42", "Störung-Ä-ß", "工单#9", "🎫-77", "x"].map(String::from));
    let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    keys.extend((1..=128).map(|len| alphabet.chars().cycle().skip(len % alphabet.len()).take(len).collect()));
    // Multi-byte characters at and just under the 128-byte limit.
    keys.push("é".repeat(64));
    keys.push(format!("T-{}", "ü€".repeat(25)));
    keys
}

fn produce(bootstrap: &str, partitioner: &str, keys: &[String]) -> Vec<(Vec<u8>, i32)> {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", partitioner)
        .set("message.timeout.ms", "10000")
        .create_with_context(Deliveries::default())
        .expect("producer");
    for key in keys {
        producer
            .send(BaseRecord::to(TOPIC).key(key.as_bytes()).payload("{}"))
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let reports = std::mem::take(&mut *producer.context().0.lock().unwrap());
    assert_eq!(
        reports.len(),
        keys.len(),
        "{partitioner}: one delivery report per record"
    );
    reports
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{partitioner}: {e}")))
        .collect()
}

#[test]
fn agrees_with_librdkafka() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let keys = keys();
    assert!(
        keys.iter().all(|k| (1..=128).contains(&k.len())),
        "ticket ids are 1 to 128 bytes"
    );

    let mut placements = Vec::new();
    for partitioner in [Partitioner::Murmur2, Partitioner::Consistent, Partitioner::Fnv1a] {
        // The setting slawatch gives its own producers, so this pins that mapping too.
        let name = partitioner.librdkafka();
        let delivered = produce(&bootstrap, name, &keys);
        let mismatches: Vec<_> = delivered
            .iter()
            .filter(|(key, p)| partitioner.partition(key, PARTITIONS) != *p)
            .map(|(key, p)| (String::from_utf8_lossy(key).into_owned(), *p))
            .collect();
        assert!(
            mismatches.is_empty(),
            "{name}: librdkafka placed differently: {mismatches:?}"
        );
        let used: BTreeSet<i32> = delivered.iter().map(|&(_, p)| p).collect();
        assert_eq!(
            used.len(),
            PARTITIONS as usize,
            "{name}: keys should reach every partition"
        );
        let mut by_key = delivered;
        by_key.sort();
        placements.push(by_key);
    }
    // Agreement means something only if the three hashes would tell a mix-up apart.
    assert_ne!(placements[0], placements[1]);
    assert_ne!(placements[0], placements[2]);
    assert_ne!(placements[1], placements[2]);
}

//! Test harness: a real Apache Kafka broker (shared by a test binary, or one's own), `slawatch run` processes, producing, reading
//! topics back, per-partition `replay` expectations, plain HTTP requests, and the Debian
//! Prometheus tools. Also included by tests/observability.rs and tests/alertmanager.rs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A tool of Debian's Prometheus packages (`prometheus`, `promtool`, `prometheus-alertmanager`,
/// `amtool`): in `/usr/bin`, or in `$SLAWATCH_PROMETHEUS_BIN`. Missing is a failure, not a skip:
/// `scripts/setup.sh` installs them.
pub fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLAWATCH_PROMETHEUS_BIN").map_or_else(|| PathBuf::from("/usr/bin"), PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not installed (run scripts/setup.sh)",
        path.display()
    );
    path
}

/// `POST path` of a JSON body to `address` (HTTP/1.0): status code and body.
pub fn http_post(address: &str, path: &str, json: &str) -> (u16, String) {
    let headers = format!("Content-Type: application/json\r\nContent-Length: {}\r\n", json.len());
    request(address, "POST", path, &headers, json)
}

/// The shell a server runs under: it `kill -9`s the server when its standard input closes, then
/// removes the directories named on the lines of that input.
const WRAPPER: &str = "\"$@\" & pid=$!\nremove=$(cat)\nkill -9 $pid\nwait $pid\n\
                       printf '%s\\n' \"$remove\" | while read -r dir; do [ -n \"$dir\" ] && rm -rf -- \"$dir\"; done";

/// A server process on a free loopback port, with a directory of its own that also holds its
/// log. It runs under a shell that `kill -9`s it when the shell's standard input closes: on
/// drop, and when the test process dies however it dies (a server shared by a test binary
/// lives in a static, which is never dropped).
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `127.0.0.1:PORT`.
    pub address: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `program` with the arguments `args` makes of the address and the directory, then
    /// waits until `ready` holds for the address.
    pub fn start(
        program: &Path,
        args: impl FnOnce(&str, &Path) -> Vec<String>,
        ready: impl Fn(&str) -> bool,
    ) -> Server {
        Server::start_on(&format!("127.0.0.1:{}", free_port()), program, args, ready)
    }

    /// As [`Server::start`], on a given address (a server started again where it was).
    pub fn start_on(
        address: &str,
        program: &Path,
        args: impl FnOnce(&str, &Path) -> Vec<String>,
        ready: impl Fn(&str) -> bool,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let address = address.to_string();
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).unwrap();
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "server"])
            .arg(program)
            .args(args(&address, dir.path()))
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let server = Server {
            child,
            stdin,
            address,
            dir,
        };
        let start = Instant::now();
        while !ready(&server.address) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} did not get ready on {}:\n{}",
                program.display(),
                server.address,
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Once the server is gone, its directory and `dir` are removed too (for servers in a
    /// static, whose temporary directories are never dropped).
    fn remove_on_exit(&mut self, dir: &Path) {
        let stdin = self.stdin.as_mut().expect("the server runs");
        writeln!(stdin, "{}\n{}", self.dir.path().display(), dir.display()).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Whether a Prometheus-style server at `address` answers `GET /-/ready` with 200.
/// A server still starting may refuse or reset the connection: that is "not ready".
pub fn http_ready(address: &str) -> bool {
    try_request(address, "GET", "/-/ready", "", "").is_ok_and(|(status, _)| status == 200)
}

/// Alertmanager with `config`, clustering off, on `address` or a free port.
pub fn start_alertmanager(config: &Path, address: Option<&str>) -> Server {
    let program = tool("prometheus-alertmanager");
    let args = |address: &str, dir: &Path| {
        vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.display()),
            format!("--web.listen-address={address}"),
            "--cluster.listen-address=".into(),
        ]
    };
    match address {
        Some(a) => Server::start_on(a, &program, args, http_ready),
        None => Server::start(&program, args, http_ready),
    }
}

/// The jars of Apache Kafka's broker: `SLAWATCH_KAFKA_LIBS`, else the cache directory
/// `scripts/setup.sh` fills from Maven Central. Missing is a failure, not a skip.
fn kafka_libs() -> PathBuf {
    let path = std::env::var_os("SLAWATCH_KAFKA_LIBS").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/slawatch/kafka/libs"),
        PathBuf::from,
    );
    let has_broker = std::fs::read_dir(&path).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-"))
    });
    assert!(
        has_broker,
        "Apache Kafka's jars are not in {} (run scripts/setup.sh)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The SCRAM-SHA-512 user of the broker's `SASL_SSL` listener.
pub const SCRAM_USER: (&str, &str) = ("slawatch", "scram-secret-7");

/// A single-node Apache Kafka broker in KRaft mode (broker and controller in one JVM) on free
/// loopback ports, its log directory in a temporary directory. Stopped on drop.
pub struct Broker {
    process: Option<Server>,
    /// The `PLAINTEXT` listener.
    pub bootstrap: String,
    /// The `SASL_SSL` listener: SCRAM-SHA-512 for [`SCRAM_USER`], TLS with a self-signed
    /// certificate for 127.0.0.1 ([`Broker::ca`]).
    pub secure: String,
    controller: String,
    /// Configuration, data and the test's own files.
    dir: tempfile::TempDir,
}

impl Broker {
    /// A broker of one's own: for tests that kill or restart it.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let (bootstrap, secure, controller) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let keystore = self_signed_keystore(dir.path());
        let props = dir.path().join("server.properties");
        std::fs::write(
            &props,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@{controller}\n\
                 listeners=PLAINTEXT://{bootstrap},SECURE://{secure},CONTROLLER://{controller}\n\
                 advertised.listeners=PLAINTEXT://{bootstrap},SECURE://{secure}\n\
                 controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL,CONTROLLER:PLAINTEXT\n\
                 sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                 listener.name.secure.scram-sha-512.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
                 ssl.keystore.type=PEM\nssl.keystore.location={}\n\
                 log.dirs={}\n\
                 num.partitions=1\n\
                 offsets.topic.replication.factor=1\noffsets.topic.num.partitions=3\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
                 transaction.state.log.num.partitions=3\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\ngroup.min.session.timeout.ms=1000\n\
                 transaction.abort.timed.out.transaction.cleanup.interval.ms=1000\n",
                keystore.display(),
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let format = Command::new("java")
            .arg("-cp")
            .arg(kafka_libs().join("*"))
            .args([
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                "c2xhd2F0Y2gtdGVzdHMtMQ",
                "--add-scram",
                &format!("SCRAM-SHA-512=[name={},password={}]", SCRAM_USER.0, SCRAM_USER.1),
                "--config",
            ])
            .arg(&props)
            .output()
            .expect("running java (Java 17 is on the project's machines)");
        assert!(
            format.status.success(),
            "formatting the KRaft log directory: {}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        let mut broker = Broker {
            process: None,
            bootstrap,
            secure,
            controller,
            dir,
        };
        broker.run();
        broker
    }

    /// The broker shared by the tests of one test binary, which use topic names of their own.
    /// Stopped, and its directory removed, when the test process exits (however it exits).
    pub fn shared() -> &'static Broker {
        static SHARED: std::sync::OnceLock<Broker> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let mut broker = Broker::start();
            let dir = broker.dir.path().to_path_buf();
            broker.process.as_mut().expect("started").remove_on_exit(&dir);
            broker
        })
    }

    /// Starts the JVM on the broker's configuration and waits until it answers metadata
    /// requests.
    fn run(&mut self) {
        let props = self.dir.path().join("server.properties");
        let bootstrap = self.bootstrap.clone();
        let server = Server::start_on(
            &self.controller,
            Path::new("java"),
            |_, _| {
                let classpath = kafka_libs().join("*").display().to_string();
                let props = props.display().to_string();
                ["-Xms256m", "-Xmx1g", "-cp", &classpath, "kafka.Kafka", &props]
                    .map(String::from)
                    .to_vec()
            },
            |_| metadata_ready(&bootstrap),
        );
        self.process = Some(server);
    }

    /// `kill -9` of the broker process; its log directory stays.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Starts the broker again on the same ports and log directory.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "kill the broker first");
        self.run();
    }

    /// The certificate a client of [`Broker::secure`] trusts (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    /// A directory for the test's files, removed with the broker.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn create_topics(&self, topics: &[(&str, i32)]) {
        create_topics(&self.bootstrap, topics);
    }
}

/// A key and a self-signed certificate for 127.0.0.1 in `dir/tls/`: `cert.pem`, and
/// `keystore.pem` (key and certificate, a PEM keystore for the broker), whose path is returned.
fn self_signed_keystore(dir: &Path) -> PathBuf {
    let tls = dir.join("tls");
    std::fs::create_dir(&tls).unwrap();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(&tls)
        .output()
        .expect("running openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keystore = tls.join("keystore.pem");
    let pem = [tls.join("key.pem"), tls.join("cert.pem")].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&keystore, pem.concat()).unwrap();
    keystore
}

/// Whether a broker at `bootstrap` answers a metadata request naming at least one broker.
fn metadata_ready(bootstrap: &str) -> bool {
    let Ok(consumer) = client(bootstrap).create::<BaseConsumer>() else {
        return false;
    };
    consumer
        .fetch_metadata(None, Duration::from_millis(500))
        .is_ok_and(|md| !md.brokers().is_empty())
}

/// A topic to create: name, partitions and topic configuration.
pub type NewTopicSpec<'a> = (&'a str, i32, &'a [(&'a str, &'a str)]);

pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let with: Vec<NewTopicSpec<'_>> = topics.iter().map(|&(name, n)| (name, n, &[][..])).collect();
    create_topics_with(bootstrap, &with);
}

/// Creates topics with a partition count and topic configuration each.
pub fn create_topics_with(bootstrap: &str, topics: &[NewTopicSpec<'_>]) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|&(name, n, settings)| {
            settings
                .iter()
                .fold(NewTopic::new(name, n, TopicReplication::Fixed(1)), |t, (k, v)| {
                    t.set(k, v)
                })
        })
        .collect();
    for result in block_on(admin.create_topics(&new, &AdminOptions::new())).unwrap() {
        result.unwrap();
    }
}

/// Waits for an admin request.
fn block_on<F: std::future::Future>(request: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(request)
}

/// Gives `topic` `partitions` partitions in all.
pub fn add_partitions(bootstrap: &str, topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let new = NewPartitions::new(topic, partitions);
    for result in block_on(admin.create_partitions(&[new], &AdminOptions::new())).unwrap() {
        result.unwrap();
    }
}

/// Changes settings of an existing topic.
pub fn alter_topic(bootstrap: &str, topic: &str, settings: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let alter = settings
        .iter()
        .fold(AlterConfig::new(ResourceSpecifier::Topic(topic)), |a, (k, v)| {
            a.set(k, v)
        });
    for result in block_on(admin.alter_configs(&[alter], &AdminOptions::new())).unwrap() {
        result.unwrap();
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// One record to produce: partition, key, value (None: tombstone).
pub type Rec = (i32, Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces `records` to `topic` and waits until the broker has them all. Records up to 10 MB
/// (the topic decides what it takes).
pub fn produce(bootstrap: &str, topic: &str, records: &[Rec]) {
    let producer: ThreadedProducer<DefaultProducerContext> = client(bootstrap)
        .set("linger.ms", "20")
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    for (p, key, value) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(*p);
        if let Some(k) = key {
            r = r.key(&k[..]);
        }
        if let Some(v) = value {
            r = r.payload(&v[..]);
        }
        let mut r = r;
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// An input record of partition 0: event `ty` of ticket `id` at `at`, with fields `rest`.
pub fn event(ty: &str, id: &str, at: i64, rest: &str) -> Rec {
    let json = format!(
        r#"{{"type":"{ty}","ticket_id":"{id}","occurred_at":"{}",{rest}}}"#,
        slawatch::time::Rfc3339(at)
    );
    (0, Some(id.as_bytes().to_vec()), Some(json.into_bytes()))
}

pub const CREATED: &str =
    r#""priority":"normal","channel":"email","kind":"request","status":"new","opened_by":"customer""#;
pub const REPLY: &str = r#""author":"agent","public":true"#;

/// The sum of the samples of `name` whose labels contain `label`, in a Prometheus text scrape.
pub fn sum(scrape: &str, name: &str, label: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Which of `n` partitions a ticket's events go to: Kafka's default partitioner, which
/// slawatch expects of producers by default.
pub fn partition_of(ticket_id: &str, n: i32) -> i32 {
    slawatch::partitioner::Partitioner::Murmur2.partition(ticket_id.as_bytes(), n)
}

/// Simulated events: partition, ticket id, JSON.
pub type Events = Vec<(i32, String, String)>;

/// Events of a historic simulation, each with its partition among `n`.
pub fn simulated(seed: u64, tickets: u64, n: i32) -> Events {
    let cfg = slawatch::sim::SimConfig::new(seed, tickets, 1_780_300_800_000, 400.0); // 2026-06-01
    slawatch::sim::generate(&cfg)
        .map(|e| (partition_of(&e.ticket_id, n), e.ticket_id, e.json))
        .collect()
}

pub fn as_records(events: &[(i32, String, String)]) -> Vec<Rec> {
    events
        .iter()
        .map(|(p, id, json)| (*p, Some(id.clone().into_bytes()), Some(json.clone().into_bytes())))
        .collect()
}

/// Every record of `topic`, read with a group-less consumer until `enough` holds for the
/// records read and nothing new came for `quiet`, or `limit` passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
    limit: Duration,
    enough: impl Fn(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "slawatch-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (start, mut last) = (Instant::now(), Instant::now());
    let mut out = Vec::new();
    while start.elapsed() < limit {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.push(m.detach());
                last = Instant::now();
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None if last.elapsed() >= quiet && enough(&out) => break,
            None => {}
        }
    }
    out
}

pub fn text(m: &OwnedMessage) -> String {
    String::from_utf8(m.payload().expect("a value").to_vec()).unwrap()
}

pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    let h = m.headers()?;
    h.iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// SLA events by id (the last copy wins; copies of one id are identical in these tests).
pub fn by_id(lines: impl IntoIterator<Item = String>) -> BTreeMap<String, String> {
    lines
        .into_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            (v["id"].as_str().unwrap().to_string(), l)
        })
        .collect()
}

/// What `replay` makes of each partition's events on its own (the live monitor keeps one
/// frontier per partition), with the frontier finally at `until`.
pub fn replay_by_partition(config: &Path, events: &[(i32, String, String)], until: &str) -> Vec<String> {
    replay_partitions(config, events, Some(until))
        .sla
        .into_values()
        .flatten()
        .collect()
}

/// What `replay` made of each partition's events.
pub struct Replayed {
    /// SLA events by partition, in emission order.
    pub sla: BTreeMap<i32, Vec<String>>,
    /// Dead letters, over all partitions.
    pub dead: usize,
}

/// What `replay` makes of each partition's events; with `--until` if given, else the frontier
/// ends at the partition's last event.
pub fn replay_partitions(config: &Path, events: &[(i32, String, String)], until: Option<&str>) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let mut partitions: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for (p, _, json) in events {
        partitions.entry(*p).or_default().push(json);
    }
    let mut out = Replayed {
        sla: BTreeMap::new(),
        dead: 0,
    };
    for (p, evs) in partitions {
        let input = dir.path().join(format!("p{p}.ndjson"));
        let dead = dir.path().join(format!("p{p}.dead"));
        std::fs::write(&input, evs.join("\n") + "\n").unwrap();
        let mut replay = Command::new(env!("CARGO_BIN_EXE_slawatch"));
        replay
            .args(["replay", "--config"])
            .arg(config)
            .arg("--input")
            .arg(&input);
        replay.arg("--dead-letter").arg(&dead);
        if let Some(until) = until {
            replay.args(["--until", until]);
        }
        let done = replay.output().unwrap();
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
        let lines = String::from_utf8(done.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        out.sla.insert(p, lines);
        out.dead += std::fs::read_to_string(&dead).unwrap().lines().count();
    }
    out
}

/// The values of `msgs` by partition, in offset order.
pub fn by_partition(msgs: &[OwnedMessage]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for m in msgs {
        out.entry(m.partition()).or_default().push((m.offset(), text(m)));
    }
    out.into_iter()
        .map(|(p, mut v)| {
            v.sort();
            (p, v.into_iter().map(|(_, t)| t).collect())
        })
        .collect()
}

/// Asserts that every partition holds exactly the expected lines, in order: no gap, no
/// duplicate, no reordering. Reports the first difference.
pub fn assert_exact(got: &BTreeMap<i32, Vec<String>>, expected: &BTreeMap<i32, Vec<String>>) {
    for (p, want) in expected {
        let have = got.get(p).map_or(&[][..], Vec::as_slice);
        let first = have.iter().zip(want).position(|(a, b)| a != b);
        assert!(
            first.is_none() && have.len() == want.len(),
            "partition {p}: {} lines, {} expected; first difference at {:?}: got {:?}, expected {:?}",
            have.len(),
            want.len(),
            first,
            first.or(Some(have.len().min(want.len()))).and_then(|i| have.get(i)),
            first.or(Some(have.len().min(want.len()))).and_then(|i| want.get(i)),
        );
    }
    let extra: Vec<&i32> = got.keys().filter(|p| !expected.contains_key(p)).collect();
    assert!(extra.is_empty(), "output on unexpected partitions {extra:?}");
}

/// Deletes the records of `topic` partition `partition` before offset `before` (Kafka's
/// DeleteRecords), as retention would.
pub fn delete_records(bootstrap: &str, topic: &str, partition: i32, before: i64) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before))
        .unwrap();
    let deleted = block_on(admin.delete_records(&tpl, &AdminOptions::new())).unwrap();
    for e in deleted.elements() {
        assert!(e.error().is_ok(), "deleting records of {topic}: {:?}", e.error());
    }
}

/// The example configuration with a `[kafka]` section (and `extra` TOML) appended: consumer
/// group `group`, output topics `{group}-sla` and `{group}-dead`.
pub fn config(dir: &Path, bootstrap: &str, group: &str, inputs: &[&str], extra: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(repo("config/example.toml")).unwrap();
    let inputs: Vec<String> = inputs.iter().map(|t| format!("{t:?}")).collect();
    text.push_str(&format!(
        "\n[kafka]\nbrokers = {bootstrap:?}\ngroup_id = {group:?}\ninput_topics = [{}]\n\
         output_topic = \"{group}-sla\"\ndead_letter_topic = \"{group}-dead\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
        inputs.join(", ")
    ));
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A configuration for paging tests on a broker with the topics `ticket-events`, `sla-events`
/// and `dead-letters`: policy "fast" (first response due 4 s after creation, escalation 3 s
/// later), `idle_grace` 1 s, a short group session (a killed instance's partitions are free
/// again soon), and `extra` TOML.
pub fn fast_config(dir: &Path, bootstrap: &str, group: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[engine]
idle_grace = "1s"
[[policy]]
name = "fast"
escalate_after = ["3s"]
[policy.targets.first_response]
normal = "4s"
[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
dead_letter_topic = "dead-letters"
client = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "1000" }}
[http]
listen = "127.0.0.1:0"
{extra}
"#
    );
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A `slawatch run` process with its log; killed on drop.
pub struct Monitor {
    pub child: Child,
    pub log: PathBuf,
}

impl Monitor {
    pub fn start(config: &Path, name: &str) -> Monitor {
        Monitor::start_with(config, name, &[])
    }

    /// Its log is `{config file stem}-{name}.log` beside the configuration.
    pub fn start_with(config: &Path, name: &str, env: &[(&str, &str)]) -> Monitor {
        let stem = config.file_stem().unwrap().to_string_lossy();
        let log = config.with_file_name(format!("{stem}-{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_slawatch"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Monitor { child, log }
    }

    /// `GET path` on the monitor's HTTP listener: status code and body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        self.http_get_with(path, "")
    }

    /// `GET path` with extra header lines (each ending in `\r\n`).
    pub fn http_get_with(&self, path: &str, headers: &str) -> (u16, String) {
        http_get(&self.http_address(), path, headers)
    }

    /// The address the monitor's HTTP listener bound.
    pub fn http_address(&self) -> String {
        self.wait_for("http listening", Duration::from_secs(30));
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains("http listening")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["fields"]["address"].as_str().unwrap().to_string()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the monitor's log within {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "monitor still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` as it appears inside a JSON string of the monitor's log (quotes escaped).
pub fn json_text(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_string()
}

/// `GET path` from `address` (HTTP/1.0: no chunked answer), with extra header lines (each
/// ending in `\r\n`): status code and body.
pub fn http_get(address: &str, path: &str, headers: &str) -> (u16, String) {
    request(address, "GET", path, headers, "")
}

fn request(address: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    try_request(address, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path} on {address}: {e}"))
}

fn try_request(address: &str, method: &str, path: &str, headers: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n{headers}\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let malformed = || std::io::Error::other(format!("malformed response: {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    Ok((status, body.to_string()))
}

/// Committed offsets of `group` for every partition of `topic`.
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    // A broker just started may not have loaded the group's coordinator yet: ask again.
    let start = Instant::now();
    let c = loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => break c,
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                eprintln!("committed offsets of {group}: {e}; asking again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("committed offsets of {group}: {e}"),
        }
    };
    (0..partitions)
        .map(|p| match c.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(n) => n,
            _ => -1,
        })
        .collect()
}

/// Asserts two id → line maps are equal, reporting a few differences rather than both maps.
pub fn assert_same(got: &BTreeMap<String, String>, expected: &BTreeMap<String, String>) {
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    let differ: Vec<(&String, &String)> = expected
        .iter()
        .filter_map(|(k, v)| got.get(k).filter(|g| *g != v).map(|g| (v, g)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{} expected, {} got: {} missing (e.g. {:?}), {} unexpected (e.g. {:?}), {} differ (e.g. {:#?})",
        expected.len(),
        got.len(),
        missing.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)],
        differ.len(),
        &differ[..differ.len().min(2)]
    );
}

//! Engine and replay benchmarks; results go to docs/PERFORMANCE.md.
//!
//! `cargo bench --bench engine [-- memory|engine|replay|report|calendar|hostile|config]` (default: all, memory first so
//! its RSS reading is not blurred by the others). Sizes: `SLAWATCH_BENCH_TICKETS` (default
//! 1,000,000 tickets, about 10 million events). Input is the built-in simulator's realistic
//! traffic at a large desk's rate, measured against `config/example.toml` (business-hours
//! calendars, warnings, escalations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use slawatch::engine::{Engine, Outbox, Summary, Ticket};
use slawatch::event::{Body, Status, decode};
use slawatch::policy::Rules;
use slawatch::sim::{SimConfig, generate};

/// Counts live heap bytes, so state size is measured exactly (requested bytes, without the
/// allocator's own overhead, which the RSS figure includes).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn rss_bytes() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<isize>().ok())
        .unwrap_or(0)
        * 4096
}

fn rules() -> Arc<Rules> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    slawatch::config::load(Some(&path))
        .unwrap_or_else(|e| panic!("{e}"))
        .rules
}

/// Arrivals per hour at the daily peak: `SLAWATCH_BENCH_PEAK`, default 5000 (a very large
/// desk: about 55,000 tickets a day, half a million tickets in memory at once with the example
/// configuration's 7-day retention).
fn sim(tickets: u64) -> SimConfig {
    let peak = std::env::var("SLAWATCH_BENCH_PEAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000.0);
    SimConfig {
        id_prefix: "T".into(),
        ..SimConfig::new(42, tickets, 1_767_600_000_000, peak) // 2026-01-05, a Monday
    }
}

fn main() {
    let tickets: u64 = std::env::var("SLAWATCH_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    if run("memory") {
        memory(tickets);
    }
    if run("engine") {
        engine_only(tickets);
    }
    if run("replay") {
        replay_end_to_end(tickets);
    }
    if run("report") {
        report_vs_replay(tickets);
    }
    if run("calendar") {
        calendar();
    }
    if run("hostile") {
        hostile();
    }
    if run("config") {
        config_size();
    }
}

/// `slawatch check-config` on configurations of growing size: time should double with the size.
fn config_size() {
    println!("check-config by number of policies (16 calendars, 12 targets, own group and tier each):");
    let mut text = String::new();
    for c in 0..16 {
        text += &format!(
            "[[calendar]]\nname = \"c{c}\"\ntimezone = \"Europe/Berlin\"\n[calendar.hours]\nmon = [\"08:00-18:00\"]\n"
        );
    }
    let mut policies = 0;
    for n in [1_250, 2_500, 5_000, 10_000] {
        while policies < n {
            let i = policies;
            text += &format!(
                "[[policy]]\nname = \"p{i}\"\ncalendar = \"c{}\"\nwarn_at = [0.5, 0.75]\nescalate_after = [\"30m\", \"2h\"]\n\
                 [policy.match]\ngroup = [\"g{i}\"]\ncustomer_tier = [\"t{i}\"]\n",
                i % 16
            );
            for clock in ["first_response", "next_response", "resolution"] {
                text += &format!(
                    "[policy.targets.{clock}]\nurgent = \"1h\"\nhigh = \"4h\"\nnormal = \"8h\"\nlow = \"24h\"\n"
                );
            }
            policies += 1;
        }
        let path = std::env::temp_dir().join("slawatch-bench-config.toml");
        std::fs::write(&path, &text).unwrap();
        let started = Instant::now();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_slawatch"))
            .args(["check-config", "--config"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let rss = wait_peak_rss_mib(child);
        println!(
            "  {n:>6} policies, {:.1} MiB: {:.2} s, peak RSS {rss:.0} MiB",
            text.len() as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );
    }
}

/// Peak memory of the `slawatch replay` process on the worst inputs the limits allow: every
/// event held as an orphan at the largest size, and one line of 200 MB.
fn hostile() {
    const PAD: usize = 65_536 - 120;
    let config = |extra: &str| {
        let path = std::env::temp_dir().join(format!("slawatch-hostile-{}.toml", extra.len()));
        let body = format!(
            "[engine]\norphan_hold = \"30d\"\n{extra}\n[[policy]]\nname = \"p\"\n[policy.targets.resolution]\nlow = \"1d\"\n"
        );
        std::fs::write(&path, body).unwrap();
        path
    };
    let orphans = |w: &mut dyn Write| {
        let pad = "x".repeat(PAD);
        for i in 0..100_000 {
            writeln!(
                w,
                r#"{{"type":"reply.sent","ticket_id":"O{i}","occurred_at":"2026-11-24T09:00:00Z","author":"agent","pad":"{pad}"}}"#
            )?;
        }
        Ok(())
    };
    println!("hostile input (peak RSS of the replay process):");
    for (what, extra) in [
        ("100,000 orphans of 64 KiB, default max_orphan_bytes (64 MiB)", ""),
        (
            "same, max_orphan_bytes = 8 GiB (no byte budget)",
            "max_orphan_bytes = 8589934592",
        ),
    ] {
        println!("  {what}: {:.0} MiB", peak_rss_mib(&config(extra), orphans));
    }
    let long_line = |w: &mut dyn Write| {
        let chunk = vec![b'x'; 1 << 20];
        w.write_all(br#"{"type":"reply.sent","pad":""#)?;
        for _ in 0..200 {
            w.write_all(&chunk)?;
        }
        w.write_all(b"\"}\n")
    };
    println!("  one line of 200 MB: {:.0} MiB", peak_rss_mib(&config(""), long_line));
}

/// Runs `slawatch replay` on what `feed` writes to its stdin; returns its peak RSS.
fn peak_rss_mib(config: &Path, feed: impl Fn(&mut dyn Write) -> std::io::Result<()>) -> f64 {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slawatch"))
        .args(["replay", "--dead-letter", "/dev/null", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    feed(&mut stdin).unwrap();
    drop(stdin);
    wait_peak_rss_mib(child)
}

/// Waits for `child`, which must succeed; returns its peak RSS.
fn wait_peak_rss_mib(child: std::process::Child) -> f64 {
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert_eq!(status, 0, "slawatch failed");
    usage.ru_maxrss as f64 / 1024.0
}

/// `between` and `add` on the example's office calendar, random instants within a year.
fn calendar() {
    let started = Instant::now();
    let rules = rules();
    let office = &rules
        .calendars
        .iter()
        .find(|c| &*c.name == "berlin-office")
        .expect("example calendar")
        .calendar;
    println!(
        "\n## calendar: built in {:.1} ms (with the rest of the configuration)",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let year = 365 * 86_400_000u64;
    let pairs: Vec<(i64, i64)> = (0..1_000_000)
        .map(|_| {
            (
                1_767_600_000_000 + (next() % year) as i64,
                (next() % (40 * 3_600_000)) as i64,
            )
        })
        .collect();
    let started = Instant::now();
    let sum: i64 = pairs.iter().map(|&(a, d)| office.between(a, a + d)).sum();
    let between = started.elapsed().as_nanos() as f64 / pairs.len() as f64;
    let started = Instant::now();
    let last: i64 = pairs
        .iter()
        .filter_map(|&(a, d)| office.add(a, d))
        .fold(0, |acc, t| acc ^ t);
    let add = started.elapsed().as_nanos() as f64 / pairs.len() as f64;
    std::hint::black_box((sum, last));
    println!("between: {between:.0} ns, add: {add:.0} ns (durations up to 40 business hours)");
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Bytes per open ticket at `tickets` open tickets: the simulator's traffic with every event
/// that would solve or close a ticket left out, so all tickets stay open in realistic states
/// (replied, waiting, paused, reopened, escalated).
fn memory(tickets: u64) {
    let rules = rules();
    let (live0, rss0) = (live(), rss_bytes());
    let mut engine: Engine<()> = Engine::new(rules);
    let mut out = Outbox::default();
    let mut fed = 0u64;
    for e in generate(&sim(tickets)) {
        let ev = decode(e.json.as_bytes(), 65_536).expect("simulated events are valid");
        if matches!(
            ev.body,
            Body::StatusChanged(Status::Solved | Status::Closed) | Body::ComplaintResolved
        ) {
            continue;
        }
        engine.handle(&ev, || (), &mut out);
        out.sla.clear();
        fed += 1;
    }
    let (bytes, rss) = (live() - live0, rss_bytes() - rss0);
    let open = engine.open_tickets() as f64;
    println!("\n## memory: {} open tickets after {fed} events", engine.open_tickets());
    println!("Ticket record: {} bytes", size_of::<Ticket>());
    println!(
        "engine state (counted heap bytes): {:.1} bytes/ticket",
        bytes as f64 / open
    );
    println!(
        "process RSS growth:                {:.1} bytes/ticket",
        rss as f64 / open
    );
    // One pass over every ticket, as the ticket gauges (every 5 s) and `GET /api/v1/at-risk` do.
    let started = Instant::now();
    let mut summary = Summary::default();
    engine.summarize(0..engine.slots(), &mut summary);
    println!(
        "summary of {} open tickets, one pass (the gauges and at-risk take it in steps): {:.0} ms",
        summary.open,
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(engine);

    // The layout the engine does not use, for comparison: records in a DashMap keyed by id,
    // plus the same deadline index.
    let live1 = live();
    let map: dashmap::DashMap<compact_str::CompactString, [u8; size_of::<Ticket>() - 24]> = dashmap::DashMap::new();
    let mut index = std::collections::BTreeSet::new();
    for i in 0..tickets {
        map.insert(compact_str::format_compact!("T{i:06}"), [0; size_of::<Ticket>() - 24]);
        index.insert((1_767_600_000_000i64 + (i as i64 * 7919) % 86_400_000, i as u32));
    }
    println!(
        "alternative DashMap<id, record> + index: {:.1} bytes/ticket",
        (live() - live1) as f64 / tickets as f64
    );
}

/// Engine alone: events decoded beforehand, then applied on one core.
fn engine_only(tickets: u64) {
    let rules = rules();
    let started = Instant::now();
    let events: Vec<_> = generate(&sim(tickets))
        .map(|e| decode(e.json.as_bytes(), 65_536).expect("valid"))
        .collect();
    println!(
        "\n## engine only: {} events, {tickets} tickets (decoded in {:.1} s)",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    let n = events.len();
    let mut engine: Engine<()> = Engine::new(rules);
    let mut out = Outbox::default();
    let (mut sla, mut peak_open) = (0usize, 0usize);
    let started = Instant::now();
    for (i, ev) in events.iter().enumerate() {
        if let Some(next) = events.get(i + 2) {
            engine.prefetch_lookup(&next.ticket_id);
        }
        if let Some(next) = events.get(i + 1) {
            engine.prefetch_ticket(&next.ticket_id);
        }
        engine.handle(ev, || (), &mut out);
        sla += out.sla.len();
        out.sla.clear();
        if i % 65_536 == 0 {
            peak_open = peak_open.max(engine.open_tickets());
        }
    }
    engine.finish(None, &mut out);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:.2} M events/s ({n} events in {secs:.2} s, {sla} SLA events, peak ~{peak_open} tickets held)",
        n as f64 / secs / 1e6
    );
}

/// The same events as an NDJSON file: serde_json parsing alone versus `replay` end to end.
fn replay_end_to_end(tickets: u64) {
    let (dir, input, lines) = events_file(tickets);
    let size = std::fs::metadata(&input).unwrap().len();
    println!("\n## replay: {lines} events, {:.0} MB of NDJSON", size as f64 / 1e6);
    // Output to a file on disk, and to /dev/null (the same work without the kernel's cost of
    // storing gigabytes of output).
    let targets = [dir.join("sla.ndjson"), PathBuf::from("/dev/null")];
    let (mut parse, mut ours, mut replays) = (f64::MAX, f64::MAX, [f64::MAX; 2]);
    for _ in 0..2 {
        let serde_only = |line: &[u8]| serde_json::from_slice::<RawEvent>(line).expect("valid").ticket_id.len();
        parse = parse.min(read_lines(&input, lines, serde_only));
        let decoded = |line: &[u8]| decode(line, 65_536).expect("valid").ticket_id.len();
        ours = ours.min(read_lines(&input, lines, decoded));
        for (best, output) in replays.iter_mut().zip(&targets) {
            *best = best.min(replay(&input, output));
        }
    }
    let rate = |secs: f64| lines as f64 / secs / 1e6;
    println!(
        "serde_json parse only:     {:.2} M events/s ({parse:.2} s)",
        rate(parse)
    );
    println!("slawatch decode only:      {:.2} M events/s ({ours:.2} s)", rate(ours));
    for (secs, output) in replays.iter().zip(&targets) {
        let ratio = parse / secs * 100.0;
        println!(
            "replay to {:<16} {:.2} M events/s ({secs:.2} s): {ratio:.0}% of serde",
            output.display(),
            rate(*secs)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The simulated traffic of `tickets` tickets as an NDJSON file in a new directory: the
/// directory, the file and its number of lines.
fn events_file(tickets: u64) -> (PathBuf, PathBuf, u64) {
    let dir = std::env::temp_dir().join(format!("slawatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("events.ndjson");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&input).unwrap());
    let mut lines = 0u64;
    for e in generate(&sim(tickets)) {
        w.write_all(e.json.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        lines += 1;
    }
    w.flush().unwrap();
    (dir, input, lines)
}

/// `slawatch report` against `replay` on the same file, in the same run (best of two each),
/// alone and with `--compare` (the same configuration twice: the work of two reviews), and
/// the peak RSS of the `report` process.
fn report_vs_replay(tickets: u64) {
    let (dir, input, lines) = events_file(tickets);
    println!("\n## report: {lines} events");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let review = |compare: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slawatch"));
        cmd.args(["report", "--format", "json", "--output", "/dev/null", "--config"])
            .arg(&config);
        if compare {
            cmd.arg("--compare").arg(&config);
        }
        let started = Instant::now();
        let child = cmd.arg("--input").arg(&input).spawn().unwrap();
        let rss = wait_peak_rss_mib(child);
        (started.elapsed().as_secs_f64(), rss)
    };
    let (mut replayed, mut one, mut two) = (f64::MAX, (f64::MAX, 0.0), (f64::MAX, 0.0));
    for _ in 0..2 {
        replayed = replayed.min(replay(&input, Path::new("/dev/null")));
        let best = |a: (f64, f64), b: (f64, f64)| if b.0 < a.0 { b } else { a };
        one = best(one, review(false));
        two = best(two, review(true));
    }
    let rate = |events: u64, secs: f64| events as f64 / secs / 1e6;
    println!(
        "replay to /dev/null:       {:.2} M events/s ({replayed:.2} s)",
        rate(lines, replayed)
    );
    println!(
        "report:                    {:.2} M events/s ({:.2} s): {:.0}% of replay, peak RSS {:.0} MiB",
        rate(lines, one.0),
        one.0,
        replayed / one.0 * 100.0,
        one.1
    );
    println!(
        "report --compare:          {:.2} M events/s per configuration ({:.2} s): {:.0}% of two replays, peak RSS {:.0} MiB",
        rate(lines, two.0),
        two.0,
        2.0 * replayed / two.0 * 100.0,
        two.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every field of every event type, as plain serde types.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    priority: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    opened_by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer_tier: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tags: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    author: Option<Cow<'a, str>>,
    public: Option<bool>,
    #[serde(borrow)]
    resolution: Option<Cow<'a, str>>,
}

/// Reads the file line by line through `parse`; returns the seconds taken.
fn read_lines(input: &PathBuf, lines: u64, parse: impl Fn(&[u8]) -> usize) -> f64 {
    let started = Instant::now();
    let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(input).unwrap());
    let (mut line, mut n) = (Vec::new(), 0u64);
    while r.read_until(b'\n', &mut line).unwrap() > 0 {
        n += (std::hint::black_box(parse(&line)) / 1_000_000) as u64 + 1;
        line.clear();
    }
    assert_eq!(n, lines);
    started.elapsed().as_secs_f64()
}

fn replay(input: &Path, output: &Path) -> f64 {
    let opts = slawatch::replay::Options {
        input: Some(input.to_path_buf()),
        output: Some(output.to_path_buf()),
        dead_letter: None,
        until: None,
        progress: false,
    };
    let started = Instant::now();
    let summary = slawatch::replay::run(rules(), &opts).expect("replay");
    let secs = started.elapsed().as_secs_f64();
    println!("  {summary}");
    secs
}

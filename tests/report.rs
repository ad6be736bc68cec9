//! `slawatch report` from outside: its JSON totals agree with counting `replay`'s output for
//! the same input, a what-if lists exactly the cycles whose outcome differs between two
//! replays, and usage errors exit as `replay`'s do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn slawatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slawatch"))
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn replay(config: &str) -> Vec<Value> {
    let out = slawatch(&["replay", "--config", config, "--input", "examples/events.ndjson"]);
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `report` of `input` under the example configuration, with `extra` arguments.
fn review(input: &str, extra: &[&str]) -> Output {
    let mut all = vec!["report", "--config", "config/example.toml", "--input", input];
    all.extend(extra);
    slawatch(&all)
}

/// The example day's report as JSON.
fn report(args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend(args);
    serde_json::from_str(&stdout(&review("examples/events.ndjson", &all))).unwrap()
}

/// The example configuration with tighter first-response targets, in `dir`.
fn tighter_candidate(dir: &Path) -> PathBuf {
    let current = std::fs::read_to_string(repo("config/example.toml")).unwrap();
    let tighter = current.replace("normal = \"4h\"\nlow = \"8h\"", "normal = \"1h\"\nlow = \"2h\"");
    assert_ne!(tighter, current);
    let candidate = dir.join("candidate.toml");
    std::fs::write(&candidate, tighter).unwrap();
    candidate
}

#[test]
fn json_totals_agree_with_counting_replays_output() {
    let sla = replay("config/example.toml");
    let report = report(&[]);
    assert_eq!(report["schema"], "slawatch.report/1");
    let overall = &report["configurations"][0]["overall"];
    let count =
        |clock: &str, f: &dyn Fn(&Value) -> bool| sla.iter().filter(|e| e["clock"] == clock && f(e)).count() as u64;
    let mut checked = 0;
    for clock in ["first_response", "next_response", "resolution"] {
        let c = &overall["clocks"][clock];
        let is = |ty: &'static str| move |e: &Value| e["type"] == ty;
        let met = |e: &Value| e["type"] == "sla.fulfilled" && e["outcome"] == "met";
        assert_eq!(c["fulfilled"], count(clock, &is("sla.fulfilled")), "{clock}");
        assert_eq!(c["met"], count(clock, &met), "{clock}");
        assert_eq!(c["warnings"], count(clock, &is("sla.warning")), "{clock}");
        assert_eq!(c["breaches"], count(clock, &is("sla.breached")), "{clock}");
        assert_eq!(c["cancellations"], count(clock, &is("sla.cancelled")), "{clock}");
        assert_eq!(
            c["breach_retractions"],
            count(clock, &is("sla.breach_retracted")),
            "{clock}"
        );
        let escalations: Vec<u64> = c["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        for (i, n) in escalations.iter().enumerate() {
            let level = |e: &Value| e["type"] == "sla.escalated" && e["level"] == i as u64 + 1;
            assert_eq!(*n, count(clock, &level), "{clock} level {}", i + 1);
        }
        assert_eq!(escalations.iter().sum::<u64>(), count(clock, &is("sla.escalated")));
        checked += c["fulfilled"].as_u64().unwrap();
    }
    assert!(checked > 500, "a meaningful amount of output ({checked} fulfilments)");

    // The input side: tickets, complaints and ratings as in the events file.
    let events: Vec<Value> = std::fs::read_to_string(repo("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created = events.iter().filter(|e| e["type"] == "ticket.created");
    assert_eq!(overall["tickets_created"], created.clone().count());
    assert_eq!(
        overall["complaints_created"],
        created.filter(|e| e["kind"] == "complaint").count()
    );
    let scores: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "satisfaction.rated")
        .map(|e| e["score"].as_u64().unwrap())
        .collect();
    let s = &overall["satisfaction"];
    assert_eq!(s["ratings"], scores.len());
    let satisfied = scores.iter().filter(|&&s| s >= 4).count() as f64;
    assert_eq!(s["csat"].as_f64().unwrap(), satisfied / scores.len() as f64);
    let met = s["first_response_met"]["ratings"].as_u64().unwrap();
    let breached = s["first_response_breached"]["ratings"].as_u64().unwrap();
    assert!(met > 0 && breached > 0 && met + breached <= scores.len() as u64);

    // The days add up to the whole, and each has its backlog.
    let daily = report["configurations"][0]["daily"].as_array().unwrap();
    let per_day: u64 = daily.iter().map(|d| d["tickets_created"].as_u64().unwrap()).sum();
    assert_eq!(per_day, overall["tickets_created"].as_u64().unwrap());
    assert!(daily.iter().all(|d| d["backlog"]["open_tickets"].is_u64()), "{daily:?}");
    let agents = report["configurations"][0]["agents"].as_array().unwrap();
    let replies = events
        .iter()
        .filter(|e| e["type"] == "reply.sent" && e["author"] == "agent" && e["public"] == true);
    let by_agents: u64 = agents.iter().map(|a| a["public_replies"].as_u64().unwrap()).sum();
    assert_eq!(by_agents, replies.count() as u64);
}

/// `(ticket, clock, cycle)` → outcome of each fulfilled cycle in a replay's output.
fn outcomes(sla: &[Value]) -> BTreeMap<(String, String, u64), String> {
    sla.iter()
        .filter(|e| e["type"] == "sla.fulfilled")
        .map(|e| {
            let key = (
                e["ticket_id"].as_str().unwrap().into(),
                e["clock"].as_str().unwrap().into(),
                e["cycle"].as_u64().unwrap(),
            );
            (key, e["outcome"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn a_tighter_candidate_breaches_more_and_lists_exactly_the_changed_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = tighter_candidate(dir.path());
    let candidate = candidate.to_str().unwrap();

    let report = report(&["--compare", candidate]);
    let [a, b] = [0, 1].map(|i| &report["configurations"][i]["overall"]["clocks"]["first_response"]);
    assert!(b["breaches"].as_u64() > a["breaches"].as_u64(), "{a} {b}");
    assert!(b["execution_rate"].as_f64() < a["execution_rate"].as_f64());

    let (now, then) = (outcomes(&replay("config/example.toml")), outcomes(&replay(candidate)));
    let changed: Vec<_> = now
        .iter()
        .filter(|(k, o)| then.get(*k).is_some_and(|p| p != *o))
        .collect();
    let w = &report["what_if"];
    assert_eq!(w["changed"], changed.len());
    let to_breached = changed.iter().filter(|(_, o)| *o == "met").count();
    assert_eq!(w["met_to_breached"], to_breached);
    assert!(to_breached > 10, "{to_breached}");
    let sample = w["sample"].as_array().unwrap();
    assert_eq!(sample.len(), changed.len().min(20));
    for s in sample {
        let key = (
            s["ticket_id"].as_str().unwrap().to_string(),
            s["clock"].as_str().unwrap().to_string(),
            s["cycle"].as_u64().unwrap(),
        );
        assert_eq!(
            (now[&key].as_str(), then[&key].as_str()),
            (s["current"].as_str().unwrap(), s["candidate"].as_str().unwrap())
        );
    }
    let diff = &w["difference"]["clocks"]["first_response"]["breaches"];
    assert_eq!(
        diff.as_i64(),
        Some(b["breaches"].as_i64().unwrap() - a["breaches"].as_i64().unwrap())
    );
}

#[test]
fn a_period_counts_only_what_happens_in_it() {
    let whole = report(&[]);
    let part = report(&["--from", "2026-11-25T00:00:00Z", "--until", "2026-11-26T00:00:00Z"]);
    let daily = part["configurations"][0]["daily"].as_array().unwrap();
    let dates: Vec<&str> = daily.iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2026-11-25"]);
    let same_day = whole["configurations"][0]["daily"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2026-11-25")
        .unwrap();
    assert_eq!(
        daily[0], *same_day,
        "the day counts the same whether or not the period is cut"
    );
    assert_eq!(
        part["configurations"][0]["overall"]["tickets_created"],
        same_day["tickets_created"]
    );
}

#[test]
fn markdown_is_the_default_and_usage_errors_exit_as_replays_do() {
    let md = stdout(&review("examples/events.ndjson", &[]));
    for section in [
        "# Service-standard review",
        "## Execution of the standard",
        "## By channel",
        "## Daily",
        "## Agents",
        "## Longest breaches",
    ] {
        assert!(md.contains(section), "{section}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[policy]]\nname = \"x\"\nwarn_at = [2]\n").unwrap();
    let out = review("examples/events.ndjson", &["--compare", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy[0].warn_at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = review("/nonexistent/events.ndjson", &[]);
    assert_eq!(out.status.code(), Some(1));

    // Bad lines are dead letters, counted, never fatal.
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{oops\n{\"type\":\"satisfaction.rated\",\"ticket_id\":\"X\",\"occurred_at\":\"2026-11-24T10:00:00Z\",\"score\":9}\n").unwrap();
    let out = review(input.to_str().unwrap(), &["--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let dead = &v["configurations"][0]["dead_letters"];
    assert_eq!(
        (
            dead["total"].as_u64(),
            dead["by_reason"]["invalid_json"].as_u64(),
            dead["by_reason"]["invalid_field"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
}

/// Debian's `chromium`, installed by `scripts/setup.sh`; missing is a failure, not a skip.
fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("SLAWATCH_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} is not installed (run scripts/setup.sh)",
        path.display()
    );
    path
}

#[test]
fn the_html_report_renders_offline_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = tighter_candidate(dir.path());
    let page = dir.path().join("review.html");
    let args = [
        "--compare",
        candidate.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        page.to_str().unwrap(),
    ];
    stdout(&review("examples/events.ndjson", &args));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains(" src=") && !html.contains(" href=") && !html.contains("url("),
        "nothing loaded from elsewhere"
    );

    let shot = dir.path().join("review.png");
    let url = format!("file://{}", page.display());
    let browse = |extra: &[&str]| {
        let out = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg("--window-size=1200,2400")
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let loaded = browse(&["--dump-dom"]);
    let console: Vec<String> = String::from_utf8_lossy(&loaded.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let dom = String::from_utf8(loaded.stdout).unwrap();
    // Six charts (the what-if's included), each with axes, text and drawn data.
    let figures: Vec<&str> = dom
        .split("<figure>")
        .skip(1)
        .map(|f| f.split("</figure>").next().unwrap())
        .collect();
    assert_eq!(figures.len(), 6, "{dom}");
    for (i, f) in figures.iter().enumerate() {
        assert!(f.contains("<svg") && f.contains("<text"), "figure {i}");
        let marks = f.matches("<polyline").count() + f.matches("<rect").count() + f.matches("<circle").count();
        assert!(marks > 10, "figure {i} has {marks} marks");
    }
    let tables = stdout(&review("examples/events.ndjson", &args[..2]))
        .matches("\n## ")
        .count();
    assert!(tables > 20, "both configurations' tables ({tables})");
    assert_eq!(
        dom.matches("<table>").count(),
        tables,
        "every table of the Markdown report"
    );
    browse(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "a screenshot with content: {} bytes",
        png.len()
    );
}

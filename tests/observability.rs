//! The observability files proven against a real Prometheus (Debian's package, installed by
//! `scripts/setup.sh`): it scrapes a `slawatch run` of the demo (embedded broker, simulated
//! traffic), then every dashboard panel query and every recording rule must return data,
//! every rule must evaluate cleanly, and `promtool` must accept the configuration, the rules,
//! their unit tests and a scrape of `/metrics`.

#[path = "kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Monitor, Server, http_get, http_ready, repo, start_alertmanager, tool};

const SEC: Duration = Duration::from_secs(1);

fn promtool(args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(tool("promtool"))
        .args(args)
        .current_dir(repo("deploy/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Prometheus(Server);

impl Prometheus {
    /// The shipped configuration and rules, scraping `target` every second.
    fn start(target: &str) -> Prometheus {
        let shipped = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap();
        let config = shipped
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("127.0.0.1:9797", target);
        assert_ne!(config, shipped, "the shipped configuration changed shape");
        let server = Server::start(
            &tool("prometheus"),
            |address, dir| {
                std::fs::write(dir.join("prometheus.yml"), config).unwrap();
                std::fs::create_dir(dir.join("rules")).unwrap();
                std::fs::copy(
                    repo("deploy/prometheus/rules/slawatch.rules.yml"),
                    dir.join("rules/slawatch.rules.yml"),
                )
                .unwrap();
                vec![
                    format!("--config.file={}", dir.join("prometheus.yml").display()),
                    format!("--storage.tsdb.path={}", dir.join("data").display()),
                    format!("--web.listen-address={address}"),
                ]
            },
            http_ready,
        );
        Prometheus(server)
    }

    fn wait(&self, what: &str, limit: Duration, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < limit, "prometheus: not {what} within {limit:?}");
            std::thread::sleep(SEC / 2);
        }
    }

    /// `GET /api/v1/...` and its `data`.
    fn api(&self, path: &str) -> Value {
        let (status, body) = http_get(&self.0.address, &format!("/api/v1/{path}"), "");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!((status, v["status"].as_str()), (200, Some("success")), "{path}: {body}");
        v["data"].clone()
    }

    /// The samples of an instant query.
    fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("query?query={}", encode(expr)));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    fn value(&self, expr: &str) -> f64 {
        self.query(expr)
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every panel query of a dashboard, with Grafana's interval variables filled in.
fn panel_queries(file: &Path) -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__range", "10m");
            out.push((p["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

#[test]
fn dashboards_and_rules_work_on_a_real_prometheus() {
    promtool(&["check", "config", "prometheus.yml"], None);
    promtool(&["check", "rules", "rules/slawatch.rules.yml"], None);
    promtool(&["test", "rules", "rules/slawatch.tests.yml"], None);

    // The demo, paging a real Alertmanager, an address where nothing listens (failures, a
    // queue) and a webhook that Alertmanager refuses with 405 (drops): every paging panel
    // has data.
    let dir = tempfile::tempdir().unwrap();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(&am_config, "route:\n  receiver: all\nreceivers:\n  - name: all\n").unwrap();
    let am = start_alertmanager(&am_config, None);
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
    let cfg = dir.path().join("demo.toml");
    let paging = format!(
        "[[alerting.alertmanager]]\nname = \"oncall\"\nurls = [\"http://{}\", \"http://{nobody}\"]\n\
         delivery = {{ timeout = \"1s\", retry_initial = \"1s\", retry_max = \"2s\" }}\n\
         [[alerting.webhook]]\nname = \"refused\"\nurl = \"http://{}/api/v2/status\"\nsecret = \"s\"\n",
        am.address, am.address
    );
    std::fs::write(&cfg, demo.replace("127.0.0.1:9797", "127.0.0.1:0") + "\n" + &paging).unwrap();
    let monitor = Monitor::start(&cfg, "demo");
    let target = monitor.http_address();
    let scrape = monitor.http_get("/metrics").1;
    promtool(&["check", "metrics"], Some(&scrape));

    let prometheus = Prometheus::start(&target);
    prometheus.wait("fed with warnings, breaches and fulfilments", 180 * SEC, || {
        ["warning", "breached"]
            .iter()
            .all(|t| prometheus.value(&format!(r#"sum(slawatch_sla_events_total{{type="{t}"}})"#)) > 0.0)
            && prometheus.value("sum(slawatch_fulfilments_total)") > 0.0
            && prometheus.value("sum(slawatch_tickets_created_total)") > 0.0
            && prometheus.value("sum(slawatch_notifications_sent_total)") > 0.0
            && prometheus.value("sum(slawatch_notification_failures_total)") > 0.0
            && prometheus.value("sum(slawatch_notifications_dropped_total)") > 0.0
            && prometheus.value("sum(slawatch_satisfaction_ratings_total)") > 0.0
    });
    std::thread::sleep(5 * SEC); // a few more samples for the rates

    let mut empty = Vec::new();
    for file in [
        "grafana/dashboards/sla-overview.json",
        "grafana/dashboards/slawatch-internals.json",
    ] {
        let queries = panel_queries(&repo(file));
        assert!(queries.len() >= 10, "{file}: {} queries", queries.len());
        for (panel, expr) in queries {
            if prometheus.query(&expr).is_empty() {
                empty.push(format!("{file}: {panel}: {expr}"));
            }
        }
    }
    let rules = std::fs::read_to_string(repo("deploy/prometheus/rules/slawatch.rules.yml")).unwrap();
    let recorded: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .collect();
    assert!(recorded.len() >= 5);
    for name in &recorded {
        if prometheus.query(name).is_empty() {
            empty.push(format!("recording rule {name}"));
        }
    }
    assert!(empty.is_empty(), "queries without data:\n{}", empty.join("\n"));

    let groups = prometheus.api("rules");
    let rules: Vec<&Value> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(rules.len() >= 10, "{} rules loaded", rules.len());
    for rule in rules {
        assert_eq!(rule["health"].as_str(), Some("ok"), "{rule}");
    }
}

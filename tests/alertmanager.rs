//! Paging through Debian's `prometheus-alertmanager` (installed by `scripts/setup.sh`):
//! `slawatch run` on a tansu broker pushes breaches and escalations, resolves them on
//! fulfilment, retries while Alertmanager is down and re-sends what is active after a restart;
//! and the example configuration (`deploy/alertmanager/alertmanager.yml`) passes `amtool`,
//! routes SLA alerts by severity and team, and inhibits the warning of a breached cycle.

#[path = "kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use slawatch::time::parse_rfc3339;
use slawatch::time::wall_now;
use support::{
    Broker, CREATED, Monitor, REPLY, event, fast_config, http_get, http_post, produce, repo, start_alertmanager, sum,
    tool,
};

fn amtool(args: &[&str]) -> String {
    let out = Command::new(tool("amtool")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "amtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_example_configuration_routes_by_severity_and_team() {
    let config = repo("deploy/alertmanager/alertmanager.yml");
    let config = config.to_str().unwrap();
    amtool(&["check-config", config]);
    for (labels, receiver) in [
        ("alertname=SLABreached severity=page group=billing", "oncall-billing"),
        (
            "alertname=SLAEscalated severity=page group=technical",
            "oncall-technical",
        ),
        ("alertname=SLABreached severity=page group=returns", "oncall-default"),
        ("alertname=SLAWarning severity=warning group=billing", "chat-billing"),
        ("alertname=SLABreached severity=ticket", "chat-default"),
        ("alertname=SlawatchFrontierLagging severity=page", "platform"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file", config];
        args.extend(labels.split(' '));
        let got = amtool(&args);
        assert_eq!(got.trim(), receiver, "{labels}");
    }
}

/// The alerts Alertmanager holds (resolved ones are not listed).
fn alerts(am: &str) -> Vec<Value> {
    let (status, body) = http_get(am, "/api/v2/alerts", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `done` holds for Alertmanager's alerts, and returns them.
fn alerts_when(am: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let listed = alerts(am);
        if done(&listed) {
            return listed;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "{what}: {listed:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The (alertname, ticket) pairs among `alerts`, sorted.
fn names(alerts: &[Value]) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let l = &a["labels"];
            (
                l["alertname"].as_str().unwrap().into(),
                l["ticket_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    names.sort();
    names
}

fn pair(name: &str, ticket: &str) -> (String, String) {
    (name.to_string(), ticket.to_string())
}

/// A ticket breaches and escalates: both alerts reach Alertmanager with their labels and
/// annotations, and are resolved when the ticket is answered. With Alertmanager down, the next
/// ticket's alerts are retried until it is back; after a restart of slawatch (and of an
/// Alertmanager that forgot everything), the alerts still active are sent again and the
/// resolved ones are not.
#[test]
fn slawatch_pages_through_alertmanager_and_resolves_on_fulfilment() {
    let dir = tempfile::tempdir().unwrap();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: sla\n  group_by: [ticket_id]\nreceivers:\n  - name: sla\n",
    )
    .unwrap();
    let am = start_alertmanager(&am_config, None);
    let address = am.address.clone();
    let broker = Broker::start();
    broker.create_topics(&[("ticket-events", 1), ("sla-events", 1), ("dead-letters", 1)]);
    let alerting = format!(
        r#"
[[alerting.alertmanager]]
name = "oncall"
urls = ["http://{address}"]
ticket_url = "https://helpdesk.example.com/tickets/{{ticket_id}}"
labels = {{ team = "support" }}
severity = {{ escalated = ["critical"] }}
delivery = {{ timeout = "2s", retry_initial = "1s", retry_max = "2s" }}
"#
    );
    let config = fast_config(dir.path(), &broker.bootstrap, "paging", &alerting);
    let mut monitor = Monitor::start(&config, "first");
    monitor.wait_for("partitions assigned", Duration::from_secs(30));
    let with_group = format!(r#"{CREATED},"group":"billing""#);

    let t1 = wall_now();
    produce(
        &broker.bootstrap,
        "ticket-events",
        &[event("ticket.created", "T-1", t1, &with_group)],
    );
    let fired = alerts_when(&address, "breach and escalation of T-1", |a| names(a).len() == 2);
    assert_eq!(names(&fired), [pair("SLABreached", "T-1"), pair("SLAEscalated", "T-1")]);
    for alert in &fired {
        let labels = &alert["labels"];
        let escalated = labels["alertname"] == "SLAEscalated";
        let mut expected = json!({
            "alertname": labels["alertname"], "severity": if escalated { "critical" } else { "page" },
            "ticket_id": "T-1", "clock": "first_response", "cycle": "1", "policy": "fast",
            "priority": "normal", "channel": "email", "kind": "request", "group": "billing",
            "team": "support",
        });
        if escalated {
            expected["level"] = json!("1");
        }
        assert_eq!(labels, &expected);
        let starts = parse_rfc3339(alert["startsAt"].as_str().unwrap()).unwrap();
        assert_eq!(starts, t1 + if escalated { 7_000 } else { 4_000 }, "{alert:#}");
        let a = &alert["annotations"];
        assert_eq!(a["ticket_url"], "https://helpdesk.example.com/tickets/T-1");
        assert_eq!(a["target"], "4s");
        let summary = a["summary"].as_str().unwrap();
        let description = a["description"].as_str().unwrap();
        assert!(summary.starts_with("Ticket T-1: first response"), "{summary}");
        assert!(
            description.contains("deadline ") && description.contains("elapsed "),
            "{description}"
        );
    }

    produce(
        &broker.bootstrap,
        "ticket-events",
        &[event("reply.sent", "T-1", wall_now(), REPLY)],
    );
    alerts_when(&address, "T-1 resolved", |a| a.is_empty());
    // Two alerts fired and resolved; the delay from each instant to Alertmanager's answer is
    // reported for docs/PERFORMANCE.md, not asserted.
    let scrape = monitor.http_get("/metrics").1;
    let delays = sum(&scrape, "slawatch_notification_delay_seconds_count", "");
    assert_eq!(delays, 4.0);
    let mean = sum(&scrape, "slawatch_notification_delay_seconds_sum", "") / delays;
    eprintln!("notification delay: mean {mean:.3} s over {delays} alerts and resolutions");

    drop(am);
    let t2 = wall_now();
    produce(
        &broker.bootstrap,
        "ticket-events",
        &[event("ticket.created", "T-2", t2, CREATED)],
    );
    let start = Instant::now();
    let failures = loop {
        let scrape = monitor.http_get("/metrics").1;
        let n = sum(&scrape, "slawatch_notification_failures_total", r#"output="oncall""#);
        if n >= 2.0 || start.elapsed() > Duration::from_secs(30) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(failures >= 2.0, "{}", monitor.log_text());
    let am = start_alertmanager(&am_config, Some(&address));
    let retried = alerts_when(&address, "T-2 retried", |a| names(a).len() == 2);
    assert_eq!(
        names(&retried),
        [pair("SLABreached", "T-2"), pair("SLAEscalated", "T-2")]
    );

    // A ticket created and answered after T-2's escalation: re-reading it after the restart
    // moves the frontier past T-2's alerts, which are then re-derived, not emitted again.
    let t3 = wall_now();
    produce(
        &broker.bootstrap,
        "ticket-events",
        &[
            event("ticket.created", "T-3", t3, CREATED),
            event("reply.sent", "T-3", t3 + 1, REPLY),
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    monitor.signal("-KILL");
    monitor.wait_exit(Duration::from_secs(10));
    drop(am);
    let _am = start_alertmanager(&am_config, Some(&address));
    let second = Monitor::start(&config, "second");
    let resent = alerts_when(&address, "T-2 sent again", |a| names(a).len() == 2);
    assert_eq!(
        names(&resent),
        [pair("SLABreached", "T-2"), pair("SLAEscalated", "T-2")]
    );
    let scrape = second.http_get("/metrics").1;
    assert_eq!(sum(&scrape, "slawatch_alerts_active", ""), 2.0, "{}", second.log_text());
    assert!(
        !second.log_text().contains("sla.breached"),
        "re-derived, not emitted again"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names(&alerts(&address)).len(), 2, "nothing resolved comes back");
}

fn alert(name: &str, ticket: &str, severity: &str) -> Value {
    json!({
        "labels": {
            "alertname": name, "severity": severity, "ticket_id": ticket, "clock": "first_response",
            "cycle": "1", "policy": "std", "priority": "high", "channel": "email", "group": "billing",
            "kind": "request",
        },
        "annotations": { "summary": format!("{name} {ticket}") },
    })
}

#[test]
fn a_breach_inhibits_the_warning_of_its_cycle() {
    let am = start_alertmanager(&repo("deploy/alertmanager/alertmanager.yml"), None);
    let alerts = json!([
        alert("SLABreached", "T-1", "page"),
        alert("SLAWarning", "T-1", "warning"),
        alert("SLAWarning", "T-2", "warning"),
    ]);
    let (status, body) = http_post(&am.address, "/api/v2/alerts", &alerts.to_string());
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    let states = loop {
        let listed: Value = serde_json::from_str(&http_get(&am.address, "/api/v2/alerts", "").1).unwrap();
        let states: Vec<(String, String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let l = &a["labels"];
                let s = |v: &Value| v.as_str().unwrap().to_string();
                (s(&l["alertname"]), s(&l["ticket_id"]), s(&a["status"]["state"]))
            })
            .collect();
        if states.len() == 3 && states.iter().any(|s| s.2 == "suppressed") || start.elapsed() > Duration::from_secs(20)
        {
            break states;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let state = |name: &str, ticket: &str| {
        states
            .iter()
            .find(|s| s.0 == name && s.1 == ticket)
            .map(|s| s.2.as_str())
    };
    assert_eq!(state("SLABreached", "T-1"), Some("active"), "{states:?}");
    assert_eq!(state("SLAWarning", "T-1"), Some("suppressed"), "{states:?}");
    assert_eq!(state("SLAWarning", "T-2"), Some("active"), "{states:?}");
}

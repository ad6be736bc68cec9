//! The example Alertmanager configuration (`deploy/alertmanager/alertmanager.yml`) proven with
//! Debian's `prometheus-alertmanager` (installed by `scripts/setup.sh`): `amtool` accepts it and
//! routes SLA alerts by severity and team, and a running Alertmanager inhibits the warning of a
//! cycle whose breach is active.

#[path = "kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, http_get, http_post, http_ready, repo, tool};

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

/// The example configuration, clustering off.
fn start_alertmanager() -> Server {
    Server::start(
        &tool("prometheus-alertmanager"),
        |address, dir| {
            vec![
                format!(
                    "--config.file={}",
                    repo("deploy/alertmanager/alertmanager.yml").display()
                ),
                format!("--storage.path={}", dir.display()),
                format!("--web.listen-address={address}"),
                "--cluster.listen-address=".into(),
            ]
        },
        http_ready,
    )
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
    let am = start_alertmanager();
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

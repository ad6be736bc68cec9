//! The example Alertmanager configuration (`deploy/alertmanager/alertmanager.yml`) proven with
//! Debian's `prometheus-alertmanager` (installed by `scripts/setup.sh`): `amtool` accepts it and
//! routes SLA alerts by severity and team, and a running Alertmanager inhibits the warning of a
//! cycle whose breach is active.

#[path = "kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{http_get, http_post, repo, tool};

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

struct Alertmanager {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
    let child = Command::new(tool("prometheus-alertmanager"))
        .arg(format!(
            "--config.file={}",
            repo("deploy/alertmanager/alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address={address}"))
        .arg("--cluster.listen-address=")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting alertmanager");
    let am = Alertmanager {
        child,
        address,
        _dir: dir,
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(&am.address).is_err() || http_get(&am.address, "/-/ready", "").0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "alertmanager did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    am
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

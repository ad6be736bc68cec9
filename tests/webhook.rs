//! The signed webhook output of `slawatch run` on a tansu broker, against a local receiver that
//! verifies each request as README ("Webhooks") tells receivers to, and refuses the first one
//! with 503 so that it is retried.

#[path = "kafka/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use slawatch::time::wall_now;
use support::{Broker, CREATED, Monitor, REPLY, event, fast_config, produce, sum};

const SECRET: &str = "s3cr3t-for-tests";

/// One request the receiver got: lower-case header names and values, and the raw body.
struct Request {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Accepts requests on a free port; answers the first with 503, the others with 204.
fn receiver() -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or_default().to_string();
            let mut headers = BTreeMap::new();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let Some((k, v)) = line.trim_end().split_once(':') else {
                    break;
                };
                headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
            }
            let length = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut seen = seen.lock().unwrap();
            let status = if seen.is_empty() {
                "503 Service Unavailable"
            } else {
                "204 No Content"
            };
            seen.push(Request { path, headers, body });
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
        }
    });
    (address, got)
}

/// A receiver's check: the signature over "{timestamp}.{body}" with the shared secret, in
/// constant time, and a timestamp within five minutes of its own clock.
fn verify(r: &Request) -> Result<(), String> {
    let timestamp = &r.headers["x-slawatch-timestamp"];
    let age = wall_now() / 1000 - timestamp.parse::<i64>().map_err(|e| e.to_string())?;
    if age.abs() > 300 {
        return Err(format!("timestamp {timestamp} is {age} s off"));
    }
    let signature = r.headers["x-slawatch-signature"]
        .strip_prefix("sha256=")
        .ok_or("no sha256= prefix")?;
    let bytes: Vec<u8> = (0..signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&bytes).map_err(|_| "signature mismatch".to_string())
}

#[test]
fn webhook_requests_are_signed_filtered_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (address, got) = receiver();
    let broker = Broker::start();
    broker.create_topics(&[("ticket-events", 1), ("sla-events", 1), ("dead-letters", 1)]);
    let alerting = format!(
        r#"
[[alerting.webhook]]
name = "chat"
url = "http://{address}/hooks/sla"
secret_env = "SLAWATCH_TEST_WEBHOOK_SECRET"
match = {{ types = ["sla.breached", "sla.fulfilled"] }}
delivery = {{ retry_initial = "1s", retry_max = "2s" }}
"#
    );
    let config = fast_config(dir.path(), &broker.bootstrap, "hooks", &alerting);
    let monitor = Monitor::start_with(&config, "monitor", &[("SLAWATCH_TEST_WEBHOOK_SECRET", SECRET)]);
    monitor.wait_for("partitions assigned", Duration::from_secs(30));

    let t0 = wall_now();
    produce(
        &broker.bootstrap,
        "ticket-events",
        &[event("ticket.created", "T-1", t0, CREATED)],
    );
    monitor.wait_for("sla.escalated", Duration::from_secs(30));
    produce(
        &broker.bootstrap,
        "ticket-events",
        &[event("reply.sent", "T-1", wall_now(), REPLY)],
    );

    let start = Instant::now();
    while got.lock().unwrap().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", monitor.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = got.lock().unwrap();
    let events: Vec<Value> = got.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    // The breach refused with 503 and retried; no warning or escalation (filtered out).
    assert_eq!(types, ["sla.breached", "sla.breached", "sla.fulfilled"]);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(events[2]["outcome"], "breached");
    assert_eq!(events[0]["id"], "breached:first_response:1:T-1");
    for r in got.iter() {
        assert_eq!(r.path, "/hooks/sla");
        assert_eq!(r.headers["content-type"], "application/json");
        verify(r).unwrap_or_else(|e| panic!("{e}: {:?}", r.headers));
    }
    let mut forged = Request {
        path: got[2].path.clone(),
        headers: got[2].headers.clone(),
        body: got[2].body.clone(),
    };
    forged.body[2] ^= 1;
    assert_eq!(verify(&forged), Err("signature mismatch".into()));

    let scrape = monitor.http_get("/metrics").1;
    let target = format!(r#"target="{address}""#);
    assert_eq!(sum(&scrape, "slawatch_notifications_sent_total", &target), 2.0);
    let failed = format!(r#"output="chat",reason="status",{target}"#);
    assert_eq!(sum(&scrape, "slawatch_notification_failures_total", &failed), 1.0);
}

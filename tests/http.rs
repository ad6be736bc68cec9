//! The HTTP listener against a stub engine, over raw TCP: every error is `{"error": ...}`,
//! query parameters are given or left out (never empty), and a connection that idles, dribbles
//! its request head or waits beyond the connection limit is bounded by the configured limits.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use slawatch::http::{self, Api, AtRisk, Limits};
use slawatch::metrics::Metrics;

/// Tickets `T-1` and `T-slow` (whose lookup takes 3 s); at-risk answers with its query.
struct Stub;

impl Api for Stub {
    fn ticket(&self, id: &str) -> Option<Value> {
        if id == "T-slow" {
            std::thread::sleep(Duration::from_secs(3));
        }
        ["T-1", "T-slow"].contains(&id).then(|| json!({ "ticket_id": id }))
    }

    fn at_risk(&self, q: &AtRisk) -> Vec<Value> {
        vec![json!({
            "within_ms": q.within_ms,
            "clock": q.clock.map(|c| c.as_str()),
            "policy": q.policy,
            "limit": q.limit,
        })]
    }

    fn policies(&self) -> Value {
        json!({ "policies": [] })
    }
}

const LIMITS: Limits = Limits {
    header_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(10),
    max_connections: 64,
};

/// A listener on a free port, stopped (and joined) when dropped.
struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(limits: Limits, token: Option<&str>) -> Server {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let rules = slawatch::config::load(Some(&path)).unwrap().rules;
        let stop = Arc::new(AtomicBool::new(false));
        let (address, thread) = http::spawn(
            "127.0.0.1:0".parse().unwrap(),
            limits,
            Arc::new(Metrics::new(&rules)),
            Arc::new(Stub),
            token,
            false,
            stop.clone(),
        )
        .unwrap();
        Server {
            address,
            stop,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        // A bound on every read, so that a server that never closes fails the test, not hangs it.
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
    }

    /// Sends `request` (HTTP/1.0: the server closes after answering) and reads the answer.
    fn send(&self, request: &str) -> Answer {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).unwrap();
        Answer::read(&mut stream)
    }

    fn get(&self, path: &str) -> Answer {
        self.send(&format!("GET {path} HTTP/1.0\r\n\r\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().unwrap().join();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// Reads until the server closes the connection.
    fn read(stream: &mut TcpStream) -> Answer {
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no answer: {text:?}"));
        Answer {
            status: head.split(' ').nth(1).unwrap().parse().unwrap(),
            head: head.to_ascii_lowercase(),
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.head.lines().find_map(|l| l.strip_prefix(&prefix))
    }

    /// The message of an error answer, asserting its shape.
    fn error(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let v: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"));
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{self:?}");
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text: {self:?}"))
            .to_string()
    }

    fn json(&self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        serde_json::from_str(&self.body).unwrap()
    }
}

#[test]
fn a_malformed_path_is_a_json_400() {
    let server = Server::start(LIMITS, None);
    let a = server.get("/api/v1/tickets/%ff");
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.error().contains("UTF-8"), "{a:?}");
    assert_eq!(server.get("/api/v1/tickets/T-1").json(), json!({ "ticket_id": "T-1" }));
}

#[test]
fn a_wrong_method_is_a_json_405_with_allow() {
    let server = Server::start(LIMITS, None);
    for path in ["/api/v1/at-risk", "/metrics", "/api/v1/tickets/T-1"] {
        let a = server.send(&format!("POST {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(a.status, 405, "{a:?}");
        assert_eq!(a.error(), "method not allowed");
        assert_eq!(a.header("allow"), Some("get,head"), "{a:?}");
    }
}

#[test]
fn unknown_paths_and_tickets_are_json_404s() {
    let server = Server::start(LIMITS, None);
    for path in ["/nowhere", "/api/v1/tickets/", "/api/v2/policies"] {
        let a = server.get(path);
        assert_eq!((a.status, a.error().as_str()), (404, "no such endpoint"), "{path}");
    }
    let a = server.get("/api/v1/tickets/T-2");
    assert_eq!(a.status, 404);
    assert!(a.error().contains("no such ticket"), "{a:?}");
}

#[test]
fn without_the_token_the_api_is_a_json_401_even_for_a_bad_request() {
    let server = Server::start(LIMITS, Some("s3cret"));
    for path in [
        "/api/v1/tickets/T-1",
        "/api/v1/tickets/%ff",
        "/api/v1/at-risk?within=",
        "/api/v1/policies",
    ] {
        let a = server.get(path);
        assert_eq!(a.status, 401, "{path}: {a:?}");
        assert!(a.error().contains("bearer token"), "{a:?}");
    }
    let a = server.send("GET /api/v1/policies HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n");
    assert_eq!(a.json(), json!({ "policies": [] }));
}

#[test]
fn an_empty_query_parameter_is_a_400_naming_it() {
    let server = Server::start(LIMITS, None);
    for name in ["within", "clock", "policy", "limit"] {
        let a = server.get(&format!("/api/v1/at-risk?{name}="));
        assert_eq!(a.status, 400, "{a:?}");
        assert_eq!(
            a.error(),
            format!("{name}: must not be empty (leave it out for the default)")
        );
    }
}

#[test]
fn bad_query_parameters_are_400s_naming_them() {
    let server = Server::start(LIMITS, None);
    for (query, named) in [
        ("within=soon", "within"),
        ("clock=response", "clock"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("within=1h&within=2h", "within"),
        ("withn=1h", "withn"),
    ] {
        let a = server.get(&format!("/api/v1/at-risk?{query}"));
        assert_eq!(a.status, 400, "{query}: {a:?}");
        assert!(a.error().contains(named), "{query}: {a:?}");
    }
}

#[test]
fn left_out_parameters_take_their_defaults_and_given_ones_count() {
    let server = Server::start(LIMITS, None);
    assert_eq!(
        server.get("/api/v1/at-risk").json(),
        json!({ "cycles": [{ "within_ms": 1_800_000, "clock": null, "policy": null, "limit": 100 }] })
    );
    assert_eq!(
        server
            .get("/api/v1/at-risk?within=2h&clock=resolution&policy=vip&limit=5")
            .json(),
        json!({ "cycles": [{ "within_ms": 7_200_000, "clock": "resolution", "policy": "vip", "limit": 5 }] })
    );
}

/// Asserts the server closes `stream` (end of file or a reset) without answering.
fn assert_closed_unanswered(mut stream: TcpStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "answered: {:?}", String::from_utf8_lossy(&rest)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

const SHORT: Limits = Limits {
    header_timeout: Duration::from_millis(300),
    ..LIMITS
};

#[test]
fn an_idle_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(SHORT, None);
    assert_closed_unanswered(server.connect());
}

#[test]
fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let server = Server::start(SHORT, None);
    let mut stream = server.connect();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert_closed_unanswered(stream);
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(SHORT, None);
    let mut stream = server.connect();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    // Read the whole answer ("ok\n"), then the server must close the idle connection.
    while !answer.ends_with(b"\r\n\r\nok\n") {
        let mut buf = [0; 512];
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_closed_unanswered(stream);
}

#[test]
fn a_slow_answer_is_a_json_503_after_the_request_timeout() {
    let server = Server::start(
        Limits {
            request_timeout: Duration::from_millis(300),
            ..LIMITS
        },
        None,
    );
    let a = server.get("/api/v1/tickets/T-slow");
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(a.error(), "no answer within 300ms");
}

#[test]
fn beyond_the_connection_limit_a_connection_waits_for_a_free_slot() {
    let server = Server::start(
        Limits {
            max_connections: 2,
            ..LIMITS
        },
        None,
    );
    let held: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
    // The kernel completes the handshake; the server does not read the request yet.
    let mut waiting = server.connect();
    waiting.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0; 64];
    let early = waiting.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "served beyond the limit: {early:?}"
    );
    drop(held);
    waiting.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let a = Answer::read(&mut waiting);
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
}

//! The HTTP listener of `slawatch run`: metrics, health, readiness and the read-only API
//! (README: "HTTP endpoints", docs/openapi.yaml).
//!
//! It runs on a thread of its own with a single-threaded tokio runtime. `/metrics`,
//! `/healthz` and `/readyz` read only the metrics registry; the API reads engine state
//! through [`Api`], which holds the consumer loop's lock for one lookup or one scan.
//!
//! The accept loop is hyper's HTTP/1 server rather than `axum::serve`, which has no header
//! timeout: [`Limits`] bound how long a connection may idle or dribble a request head, how long
//! an answer may take, and how many connections are served at once. Every error the router
//! answers, rejections of the path or query, unknown paths and methods included, is
//! `{"error": "..."}`.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::policy::Clock;

/// Engine state as the API shows it.
pub trait Api: Send + Sync {
    /// The ticket, if some assigned partition holds it.
    fn ticket(&self, id: &str) -> Option<Value>;
    /// Running cycles due within `within_ms` of their partition's frontier (breached ones
    /// included), soonest first.
    fn at_risk(&self, query: &AtRisk) -> Vec<Value>;
    /// The configured policies and calendars.
    fn policies(&self) -> Value;
}

/// A validated `GET /api/v1/at-risk` query.
#[derive(Debug, Clone)]
pub struct AtRisk {
    pub within_ms: i64,
    pub clock: Option<Clock>,
    pub policy: Option<String>,
    pub limit: usize,
}

/// Longest `limit` of an at-risk query.
const MAX_LIMIT: usize = 1000;

/// What one client may hold of the listener (`[http]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection may take to deliver a request head, counted from its start or,
    /// kept alive, from the previous answer: this is also the idle timeout. Then it is closed.
    pub header_timeout: Duration,
    /// How long an answer may take; then it is a 503.
    pub request_timeout: Duration,
    /// Connections served at once. At the limit no more are accepted: new ones wait in the
    /// kernel's listen backlog until a connection ends.
    pub max_connections: usize,
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    api: Arc<dyn Api>,
    token: Option<Arc<str>>,
    /// The monitor runs on the embedded demo broker: `/readyz` says so.
    embedded: bool,
}

/// Binds `addr` and serves until `stop` is set. Returns the bound address (port 0 picks one).
pub fn spawn(
    addr: SocketAddr,
    limits: Limits,
    metrics: Arc<Metrics>,
    api: Arc<dyn Api>,
    token: Option<&str>,
    embedded: bool,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "http listening");
    let shared = Shared {
        metrics,
        api,
        token: token.map(Arc::from),
        embedded,
    };
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/api/v1/tickets/{id}", get(ticket))
        .route("/api/v1/at-risk", get(at_risk))
        .route("/api/v1/policies", get(policies))
        // Axum adds the Allow header to this answer.
        .method_not_allowed_fallback(|| async { error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            answer_within(limits.request_timeout, request, next)
        }))
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = std::thread::Builder::new()
        .name("slawatch-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a non-blocking listener");
                serve(listener, app, limits, &stop).await;
            });
        })?;
    Ok((bound, handle))
}

/// Accepts and serves connections until `stop` is set, then lets those open finish their
/// current request (bounded by the timeouts) before returning.
async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: &AtomicBool) {
    let mut http = http1::Builder::new();
    // Hyper starts this timer whenever it waits for a request head, so it also ends idle
    // kept-alive connections.
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let stopped = async {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::pin!(stopped);
    loop {
        let next = async {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (slot, listener.accept().await)
        };
        let (slot, accepted) = tokio::select! {
            () = &mut stopped => break,
            next = next => next,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // A connection reset before it was accepted costs nothing; anything else (out of
            // file descriptors) would fail again at once.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) => continue,
            Err(e) => {
                warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("http connection: {e}");
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
}

/// Answers 503 when the handler takes longer than `limit`.
async fn answer_within(limit: Duration, request: Request, next: Next) -> Response {
    tokio::time::timeout(limit, next.run(request))
        .await
        .unwrap_or_else(|_| error(StatusCode::SERVICE_UNAVAILABLE, &format!("no answer within {limit:?}")))
}

async fn render(State(s): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn ready(State(s): State<Shared>) -> impl IntoResponse {
    if s.metrics.ready.get() == 1 {
        let text = if s.embedded {
            "ready, on the EMBEDDED DEMO BROKER (in-process, memory only): not for production\n"
        } else {
            "ready\n"
        };
        (StatusCode::OK, text)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "catching up\n")
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A 401 answer unless the request carries the configured bearer token.
fn denied(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = s.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = given.is_some_and(|g| same(g.as_bytes(), token.as_bytes()));
    (!valid).then(|| error(StatusCode::UNAUTHORIZED, "a valid bearer token is required"))
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs a blocking engine read off the runtime's only thread.
async fn read<T: Send + 'static>(s: &Shared, f: impl FnOnce(&dyn Api) -> T + Send + 'static) -> Result<T, Response> {
    let api = s.api.clone();
    tokio::task::spawn_blocking(move || f(&*api))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"))
}

async fn ticket(State(s): State<Shared>, headers: HeaderMap, id: Result<Path<String>, PathRejection>) -> Response {
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let found = read(&s, move |api| api.ticket(&id)).await;
    match found {
        Ok(Some(t)) => axum::Json(t).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such ticket in the assigned partitions"),
        Err(e) => e,
    }
}

/// The query as given: a misspelt or repeated parameter is rejected (by serde), and so is an
/// empty one, which is more likely a template's unfilled variable than a wish for the default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtRiskParams {
    within: Option<String>,
    clock: Option<String>,
    policy: Option<String>,
    limit: Option<String>,
}

impl AtRiskParams {
    fn validate(self) -> Result<AtRisk, String> {
        let within_ms = match given("within", self.within)? {
            None => 30 * 60_000,
            Some(w) => crate::time::parse_duration(&w)
                .filter(|&ms| ms >= 0)
                .ok_or_else(|| format!("within: {w:?} is not a duration like 30m or 2h"))?,
        };
        let clock = match given("clock", self.clock)? {
            None => None,
            Some(c) => Some(
                Clock::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c)
                    .ok_or_else(|| format!("clock: {c:?} is not first_response, next_response or resolution"))?,
            ),
        };
        let limit = match given("limit", self.limit)? {
            None => 100,
            Some(l) => l
                .parse()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("limit: {l:?} is not a number from 1 to {MAX_LIMIT}"))?,
        };
        Ok(AtRisk {
            within_ms,
            clock,
            policy: given("policy", self.policy)?,
            limit,
        })
    }
}

/// A parameter's value, if given; given empty is an error.
fn given(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.is_empty() => Err(format!("{name}: must not be empty (leave it out for the default)")),
        v => Ok(v),
    }
}

async fn at_risk(
    State(s): State<Shared>,
    headers: HeaderMap,
    params: Result<Query<AtRiskParams>, QueryRejection>,
) -> Response {
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let query = match params.map_err(|e| e.body_text()).and_then(|Query(p)| p.validate()) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match read(&s, move |api| api.at_risk(&query)).await {
        Ok(cycles) => axum::Json(json!({ "cycles": cycles })).into_response(),
        Err(e) => e,
    }
}

async fn policies(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    match read(&s, |api| api.policies()).await {
        Ok(policies) => axum::Json(policies).into_response(),
        Err(e) => e,
    }
}

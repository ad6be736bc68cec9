//! The HTTP listener of `slawatch run`: metrics, health, readiness and the read-only API
//! (README: "HTTP endpoints", docs/openapi.yaml).
//!
//! It runs on a thread of its own with a single-threaded tokio runtime. `/metrics`,
//! `/healthz` and `/readyz` read only the metrics registry; the API reads engine state
//! through [`Api`], which holds the consumer loop's lock for one lookup or one scan.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

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

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    api: Arc<dyn Api>,
    token: Option<Arc<str>>,
}

/// Binds `addr` and serves until `stop` is set. Returns the bound address (port 0 picks one).
pub fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    api: Arc<dyn Api>,
    token: Option<&str>,
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
    };
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/api/v1/tickets/{id}", get(ticket))
        .route("/api/v1/at-risk", get(at_risk))
        .route("/api/v1/policies", get(policies))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = std::thread::Builder::new()
        .name("slawatch-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a non-blocking listener");
                let stopped = async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                    tracing::error!("http listener: {e}");
                }
            });
        })?;
    Ok((bound, handle))
}

async fn render(State(s): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn ready(State(s): State<Shared>) -> impl IntoResponse {
    if s.metrics.ready.get() == 1 {
        (StatusCode::OK, "ready\n")
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

async fn ticket(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let found = read(&s, move |api| api.ticket(&id)).await;
    match found {
        Ok(Some(t)) => axum::Json(t).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such ticket in the assigned partitions"),
        Err(e) => e,
    }
}

#[derive(Deserialize)]
struct AtRiskParams {
    within: Option<String>,
    clock: Option<String>,
    policy: Option<String>,
    limit: Option<usize>,
}

impl AtRiskParams {
    fn validate(self) -> Result<AtRisk, String> {
        let within_ms = match self.within.as_deref().filter(|w| !w.is_empty()) {
            None => 30 * 60_000,
            Some(w) => crate::time::parse_duration(w)
                .filter(|&ms| ms >= 0)
                .ok_or_else(|| format!("within: {w:?} is not a duration like 30m or 2h"))?,
        };
        let clock = match self.clock.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                Clock::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c)
                    .ok_or_else(|| format!("clock: {c:?} is not first_response, next_response or resolution"))?,
            ),
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("limit: must be 1 to {MAX_LIMIT}"));
        }
        Ok(AtRisk {
            within_ms,
            clock,
            policy: self.policy.filter(|p| !p.is_empty()),
            limit,
        })
    }
}

async fn at_risk(
    State(s): State<Shared>,
    headers: HeaderMap,
    params: Result<Query<AtRiskParams>, axum::extract::rejection::QueryRejection>,
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

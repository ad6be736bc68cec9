//! Delivery to one HTTP target: a bounded queue that the monitor fills without waiting, and a
//! task that drains it in batches, retrying failed requests with exponential backoff and jitter,
//! each request under a timeout.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntGauge};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use tokio::sync::Notify;
use tracing::{error, warn};

use super::webhook;
use crate::metrics::Metrics;
use crate::time::{Instant, wall_now};

/// How one target is delivered to (`[alerting.*.delivery]`).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub timeout: Duration,
    /// Notifications that may wait; beyond it the oldest non-urgent one is dropped.
    pub queue: usize,
    /// Notifications per request.
    pub batch: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// Where requests go and how their body is made.
#[derive(Debug, Clone)]
pub enum Target {
    /// `POST {url}/api/v2/alerts` with the batch as a JSON array of alerts.
    Alertmanager(Url),
    /// `POST url` with one SLA event, signed.
    Webhook { url: Url, secret: Arc<[u8]> },
}

impl Target {
    /// The `target` label: host and port, never the path or credentials (webhook URLs often
    /// carry a secret).
    pub fn label(&self) -> String {
        let url = match self {
            Target::Alertmanager(url) | Target::Webhook { url, .. } => url,
        };
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        )
    }

    fn request(&self, client: &reqwest::Client, batch: &[Item]) -> reqwest::RequestBuilder {
        match self {
            Target::Alertmanager(url) => {
                let mut body = String::from("[");
                for (i, item) in batch.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&item.body);
                }
                body.push(']');
                let url = url.join("api/v2/alerts").expect("a base URL ending in '/'");
                client.post(url).header(CONTENT_TYPE, "application/json").body(body)
            }
            Target::Webhook { url, secret } => {
                let body = batch[0].body.to_string();
                let timestamp = wall_now() / 1000;
                client
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .header(webhook::TIMESTAMP_HEADER, timestamp.to_string())
                    .header(
                        webhook::SIGNATURE_HEADER,
                        webhook::sign(secret, timestamp, body.as_bytes()),
                    )
                    .body(body)
            }
        }
    }
}

/// One notification: an Alertmanager alert or a webhook body, already serialized.
#[derive(Debug, Clone)]
pub struct Item {
    pub body: Arc<str>,
    /// Escalations are dropped last when the queue is full.
    pub urgent: bool,
    /// The instant the notification is about, for the delay metric; `None` for re-sends.
    pub at: Option<Instant>,
}

/// The notifications waiting for one target.
pub struct Queue {
    inner: Mutex<Waiting>,
    wake: Notify,
    capacity: usize,
    counters: Counters,
}

#[derive(Default)]
struct Waiting {
    fresh: VecDeque<Item>,
    /// The latest snapshot of active alerts to re-send, sent when nothing fresh waits; a newer
    /// snapshot replaces what is left of an older one.
    resend: Vec<Item>,
    /// Taken by the task and not yet sent or given up.
    in_flight: usize,
}

/// The metrics of one output and target.
struct Counters {
    sent: IntCounter,
    queue_full: IntCounter,
    rejected: IntCounter,
    failures: [IntCounter; 3],
    queued: IntGauge,
    delay: Histogram,
}

/// Why a request failed; every one but `Rejected` is retried.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Timeout,
    Connection,
    /// 5xx, 408 or 429.
    Status,
    /// Any other 4xx: the receiver will not take this batch, ever.
    Rejected,
}

/// Labels of `slawatch_notification_failures_total`, by [`Failure`] (rejections are counted
/// as dropped notifications).
const FAILURES: [&str; 3] = ["timeout", "connection", "status"];

impl Queue {
    pub fn new(output: &str, target: &Target, capacity: usize, metrics: &Metrics) -> Queue {
        let target = target.label();
        let labels = [output, target.as_str()];
        let dropped = |reason: &str| {
            metrics
                .notifications_dropped
                .with_label_values(&[output, &target, reason])
        };
        let failure = |reason: &str| {
            metrics
                .notification_failures
                .with_label_values(&[output, &target, reason])
        };
        Queue {
            inner: Mutex::default(),
            wake: Notify::new(),
            capacity,
            counters: Counters {
                sent: metrics.notifications_sent.with_label_values(&labels),
                queue_full: dropped("queue_full"),
                rejected: dropped("rejected"),
                failures: FAILURES.map(failure),
                queued: metrics.notification_queue.with_label_values(&labels),
                delay: metrics.notification_delay.with_label_values(&labels),
            },
        }
    }

    /// Queues `item`; when the queue is full, first drops its oldest non-urgent notification
    /// (or, if all are urgent, its oldest).
    pub fn push(&self, item: Item) {
        let mut w = self.lock();
        if w.fresh.len() >= self.capacity {
            let oldest = w.fresh.iter().position(|i| !i.urgent).unwrap_or(0);
            w.fresh.remove(oldest);
            self.counters.queue_full.inc();
        }
        w.fresh.push_back(item);
        self.counters.queued.set((w.fresh.len() + w.resend.len()) as i64);
        drop(w);
        self.wake.notify_one();
    }

    /// Replaces the re-send snapshot.
    pub fn resend(&self, items: Vec<Item>) {
        let mut w = self.lock();
        w.resend = items;
        self.counters.queued.set((w.fresh.len() + w.resend.len()) as i64);
        drop(w);
        self.wake.notify_one();
    }

    /// Notifications queued or being sent.
    pub fn pending(&self) -> usize {
        let w = self.lock();
        w.fresh.len() + w.resend.len() + w.in_flight
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.inner.lock().expect("notification queue lock")
    }

    /// Up to `n` notifications, fresh ones first.
    pub(super) fn take(&self, n: usize) -> Vec<Item> {
        let mut w = self.lock();
        let fresh = n.min(w.fresh.len());
        let mut batch: Vec<Item> = w.fresh.drain(..fresh).collect();
        let resend = (n - fresh).min(w.resend.len());
        let from = w.resend.len() - resend;
        batch.extend(w.resend.drain(from..));
        w.in_flight = batch.len();
        self.counters.queued.set((w.fresh.len() + w.resend.len()) as i64);
        batch
    }

    pub(super) fn done(&self) {
        self.lock().in_flight = 0;
    }

    /// Delivers until the runtime is dropped.
    pub async fn run(self: Arc<Queue>, target: Target, client: reqwest::Client, d: Delivery, output: String) {
        let label = target.label();
        let mut rng = SmallRng::seed_from_u64(wall_now() as u64 ^ label.len() as u64);
        loop {
            let batch = self.take(d.batch);
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let mut wait = d.retry_initial;
            loop {
                let result = target.request(&client, &batch).timeout(d.timeout).send().await;
                match classify(result).await {
                    Ok(()) => {
                        self.counters.sent.inc_by(batch.len() as u64);
                        let now = wall_now();
                        for at in batch.iter().filter_map(|i| i.at) {
                            self.counters.delay.observe((now - at).max(0) as f64 / 1000.0);
                        }
                        break;
                    }
                    Err((Failure::Rejected, detail)) => {
                        self.counters.rejected.inc_by(batch.len() as u64);
                        error!(output, target = %label, notifications = batch.len(), "rejected, dropped: {detail}");
                        break;
                    }
                    Err((failure, detail)) => {
                        self.counters.failures[failure as usize].inc();
                        // Equal jitter: half the backoff, plus up to the other half at random.
                        let pause = wait / 2 + wait.mul_f64(rng.random::<f64>() / 2.0);
                        warn!(output, target = %label, retry_in = ?pause, "delivery failed: {detail}");
                        tokio::time::sleep(pause).await;
                        wait = (wait * 2).min(d.retry_max);
                    }
                }
            }
            self.done();
        }
    }
}

/// Success, or why not and a detail for the log (without the URL).
async fn classify(result: reqwest::Result<reqwest::Response>) -> Result<(), (Failure, String)> {
    let response = match result {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err((Failure::Timeout, e.without_url().to_string())),
        Err(e) => return Err((Failure::Connection, e.without_url().to_string())),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
    let detail = format!("HTTP {status}: {}", body.trim());
    let retry =
        status.is_server_error() || matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS);
    Err((if retry { Failure::Status } else { Failure::Rejected }, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(body: &str, urgent: bool) -> Item {
        Item {
            body: Arc::from(body),
            urgent,
            at: None,
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_non_urgent_notification_first() {
        let metrics = Metrics::new(&crate::config::from_toml("").unwrap().rules);
        let target = Target::Alertmanager(Url::parse("http://127.0.0.1:9093/").unwrap());
        let q = Queue::new("oncall", &target, 3, &metrics);
        for (body, urgent) in [("a", false), ("b", true), ("c", false), ("d", false), ("e", true)] {
            q.push(item(body, urgent));
        }
        q.resend(vec![item("r1", false), item("r2", false)]);
        assert_eq!(q.pending(), 5);
        let bodies = |batch: Vec<Item>| batch.iter().map(|i| i.body.to_string()).collect::<Vec<_>>();
        assert_eq!(bodies(q.take(4)), ["b", "d", "e", "r2"]);
        assert_eq!(q.pending(), 5, "the batch in flight counts until done");
        q.done();
        assert_eq!(bodies(q.take(4)), ["r1"]);
        let dropped = metrics
            .notifications_dropped
            .with_label_values(&["oncall", "127.0.0.1:9093", "queue_full"]);
        assert_eq!(dropped.get(), 2);
    }
}

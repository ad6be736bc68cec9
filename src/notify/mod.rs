//! On-call outputs of `slawatch run`: alerts pushed to Prometheus Alertmanager and SLA events
//! posted to signed webhooks (README: "Alerting").
//!
//! - [`alertmanager`]: which alerts are active, their labels and annotations;
//! - [`webhook`]: the signature;
//! - [`delivery`]: one bounded queue and one delivery task per target.
//!
//! The monitor thread hands every SLA event to the [`Notifier`], which only queues: deliveries
//! run on a thread of their own and never hold up the engine or the offset commits.

pub mod alertmanager;
mod delivery;
mod settings;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use delivery::{Delivery, Target};
pub use settings::AlertingSection;

use crate::engine::{SlaEvent, SlaKind};
use crate::event::Priority;
use crate::metrics::Metrics;
use crate::policy::Clock;
use crate::time::Instant;
use delivery::{Item, Queue};

/// The `[alerting]` settings, validated.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub alertmanager: Vec<alertmanager::Output>,
    pub webhook: Vec<WebhookOutput>,
    /// How often active alerts are sent again (ms).
    pub resend_interval: i64,
    /// How long after each send Alertmanager keeps an alert that is not sent again (ms).
    pub expire_after: i64,
}

/// A `[[alerting.webhook]]` output, validated.
#[derive(Debug, Clone)]
pub struct WebhookOutput {
    pub name: String,
    pub target: Target,
    pub filter: Filter,
    pub delivery: Delivery,
}

/// Which SLA events an output takes: the types, and optionally policies, priorities, clocks.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<SlaKind>,
    pub policies: Option<Vec<String>>,
    pub priorities: Option<Vec<Priority>>,
    pub clocks: Option<Vec<Clock>>,
}

impl Filter {
    pub fn matches(&self, ev: &SlaEvent) -> bool {
        self.types.contains(&ev.kind)
            && self
                .policies
                .as_ref()
                .is_none_or(|p| p.iter().any(|p| **p == *ev.policy))
            && self.priorities.as_ref().is_none_or(|p| p.contains(&ev.priority))
            && self.clocks.as_ref().is_none_or(|c| c.contains(&ev.clock))
    }
}

/// A link to the ticket in the helpdesk, from a template such as
/// `https://helpdesk.example.com/tickets/{ticket_id}`.
#[derive(Debug, Clone)]
pub struct Link(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy)]
enum Field {
    TicketId,
    Clock,
    Cycle,
    Policy,
    Priority,
    Channel,
    Kind,
    Group,
}

const FIELDS: [(&str, Field); 8] = [
    ("ticket_id", Field::TicketId),
    ("clock", Field::Clock),
    ("cycle", Field::Cycle),
    ("policy", Field::Policy),
    ("priority", Field::Priority),
    ("channel", Field::Channel),
    ("kind", Field::Kind),
    ("group", Field::Group),
];

impl Link {
    /// Parses a template; `{name}` is a field of the SLA event, `{{` and `}}` are braces.
    pub fn parse(template: &str) -> Result<Link, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                text.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err("unmatched '}' (write '}}' for a brace)".into());
            }
            let Some(end) = tail.find('}') else {
                return Err("unclosed '{' (write '{{' for a brace)".into());
            };
            let name = &tail[1..end];
            let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                return Err(format!("unknown field {{{name}}} (one of {})", names.join(", ")));
            };
            parts.push(Part::Text(std::mem::take(&mut text)));
            parts.push(Part::Field(field));
            rest = &tail[end + 1..];
        }
        text.push_str(rest);
        parts.push(Part::Text(text));
        Ok(Link(parts))
    }

    /// The link for `ev`, each field percent-encoded.
    pub fn expand(&self, ev: &SlaEvent) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let cycle = ev.cycle.to_string();
                    let value = match f {
                        Field::TicketId => &ev.ticket_id,
                        Field::Clock => ev.clock.as_str(),
                        Field::Cycle => &cycle,
                        Field::Policy => &ev.policy,
                        Field::Priority => ev.priority.as_str(),
                        Field::Channel => ev.channel.as_str(),
                        Field::Kind => ev.ticket_kind.as_str(),
                        Field::Group => ev.group.as_deref().unwrap_or_default(),
                    };
                    percent_encode(value, &mut out);
                }
            }
        }
        out
    }
}

/// RFC 3986: unreserved characters stay, every other byte becomes `%XX`.
fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// What the monitor thread holds: the pagers' state and every target's queue.
pub struct Notifier {
    pagers: Vec<alertmanager::Pager>,
    webhooks: Vec<(Filter, Arc<Queue>)>,
    resend_interval: i64,
    /// When active alerts are next sent again; `None` until the monitor is first ready.
    next_resend: Option<Instant>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Hands a published SLA event to every output.
    pub fn observe(&mut self, ev: &SlaEvent, now: Instant) {
        for pager in &mut self.pagers {
            pager.observe(ev, true, now);
        }
        let mut body: Option<Arc<str>> = None;
        for (filter, queue) in &self.webhooks {
            if filter.matches(ev) {
                let body = body.get_or_insert_with(|| {
                    let mut json = Vec::with_capacity(512);
                    ev.write_json(&mut json);
                    json.pop();
                    Arc::from(String::from_utf8(json).expect("SLA events are UTF-8 JSON"))
                });
                queue.push(Item {
                    body: body.clone(),
                    urgent: ev.kind == SlaKind::Escalated,
                    at: Some(ev.at),
                });
            }
        }
    }

    /// Takes the SLA events a rebuilding shard re-derived (published before the restart): they
    /// only restore the active alerts.
    pub fn replayed(&mut self, events: &mut Vec<SlaEvent>, now: Instant) {
        for ev in events.drain(..) {
            for pager in &mut self.pagers {
                pager.observe(&ev, false, now);
            }
        }
    }

    /// Sends every active alert again when due, and as soon as the monitor is first ready
    /// (after a restart, once every shard has re-read its log); not while a shard rebuilds, since
    /// an alert it has re-derived may have been resolved later in the log.
    pub fn tick(&mut self, now: Instant, ready: bool) {
        if !ready || self.next_resend.is_some_and(|t| now < t) {
            return;
        }
        self.next_resend = Some(now + self.resend_interval);
        let mut active = 0;
        for pager in &self.pagers {
            pager.resend(now);
            active += pager.active();
        }
        self.metrics.active_alerts.set(active as i64);
    }

    /// Forgets the alerts of tickets no longer (or not yet again) in this instance's shards.
    pub fn forget(&mut self, keep: impl Fn(&str) -> bool) {
        for pager in &mut self.pagers {
            pager.forget(&keep);
        }
    }
}

/// Starts one delivery task per target, on a thread of its own that stops once `stop` is set
/// and every queue is empty, or `grace` after `stop`.
pub fn start(
    s: &Settings,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    grace: Duration,
) -> std::io::Result<(Notifier, Option<JoinHandle<()>>)> {
    let mut tasks = Vec::new();
    let mut queue = |name: &str, target: &Target, d: &Delivery| {
        let q = Arc::new(Queue::new(name, target, d.queue, &metrics));
        tasks.push((q.clone(), target.clone(), d.clone(), name.to_string()));
        q
    };
    let pagers: Vec<alertmanager::Pager> = s
        .alertmanager
        .iter()
        .map(|out| {
            let queues = out.targets.iter().map(|t| queue(&out.name, t, &out.delivery)).collect();
            alertmanager::Pager::new(out.clone(), queues, s.expire_after)
        })
        .collect();
    let webhooks: Vec<(Filter, Arc<Queue>)> = s
        .webhook
        .iter()
        .map(|w| (w.filter.clone(), queue(&w.name, &w.target, &w.delivery)))
        .collect();
    let queues: Vec<Arc<Queue>> = tasks.iter().map(|t| t.0.clone()).collect();
    let notifier = Notifier {
        pagers,
        webhooks,
        resend_interval: s.resend_interval,
        next_resend: None,
        metrics,
    };
    if tasks.is_empty() {
        return Ok((notifier, None));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("slawatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(std::io::Error::other)?;
    let thread = std::thread::Builder::new()
        .name("slawatch-notify".into())
        .spawn(move || {
            runtime.block_on(async move {
                for (q, target, d, name) in tasks {
                    tokio::spawn(q.run(target, client.clone(), d, name));
                }
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let deadline = tokio::time::Instant::now() + grace;
                while queues.iter().any(|q| q.pending() > 0) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        })?;
    Ok((notifier, Some(thread)))
}

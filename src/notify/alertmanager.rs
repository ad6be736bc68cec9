//! Alerts for Prometheus Alertmanager: one per paged cycle and alert type, kept while the cycle
//! runs, re-sent with a fresh expiry, and resolved when the cycle ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use compact_str::CompactString;
use serde_json::{Map, Value, json};

use super::delivery::{Item, Queue};
use super::{Filter, Link};
use crate::engine::{Detail, SlaEvent, SlaKind};
use crate::policy::Clock;
use crate::time::{Instant, Rfc3339, human_duration};

/// An `[[alerting.alertmanager]]` output, validated.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub targets: Vec<super::delivery::Target>,
    pub filter: Filter,
    pub severity: Severity,
    /// Added to every alert's labels.
    pub labels: BTreeMap<String, String>,
    pub link: Option<Link>,
    pub delivery: super::delivery::Delivery,
}

/// The `severity` label by alert type; escalation level n takes `escalated[n - 1]`, or the last.
#[derive(Debug, Clone)]
pub struct Severity {
    pub warning: String,
    pub breached: String,
    pub escalated: Vec<String>,
}

impl Severity {
    fn of(&self, ev: &SlaEvent) -> &str {
        match (ev.kind, ev.detail) {
            (SlaKind::Warning, _) => &self.warning,
            (SlaKind::Escalated, Detail::Level(l)) => {
                let i = usize::from(l.max(1) - 1).min(self.escalated.len() - 1);
                &self.escalated[i]
            }
            _ => &self.breached,
        }
    }
}

/// A cycle's alerts: the latest warning, the breach, the latest escalation.
type Slots = [Option<SlaEvent>; 3];

pub struct Pager {
    out: Output,
    queues: Vec<Arc<Queue>>,
    active: HashMap<(CompactString, Clock, u16), Slots>,
    /// How long after each (re-)send Alertmanager may consider a firing alert gone.
    expire_after: i64,
}

impl Pager {
    pub fn new(out: Output, queues: Vec<Arc<Queue>>, expire_after: i64) -> Pager {
        Pager {
            out,
            queues,
            active: HashMap::new(),
            expire_after,
        }
    }

    /// Tracks `ev`; if `live` (not re-derived after a restart), sends what changed: the new
    /// alert, the one it replaces when their labels differ (a higher escalation level, changed
    /// ticket attributes), or the resolution of every alert of an ended cycle.
    pub fn observe(&mut self, ev: &SlaEvent, live: bool, now: Instant) {
        let key = (ev.ticket_id.clone(), ev.clock, ev.cycle);
        let slot = match ev.kind {
            SlaKind::Warning => 0,
            SlaKind::Breached => 1,
            SlaKind::Escalated => 2,
            SlaKind::Fulfilled | SlaKind::Cancelled | SlaKind::BreachRetracted => {
                if let Some(slots) = self.active.remove(&key).filter(|_| live) {
                    for fired in slots.iter().flatten() {
                        self.push(fired, Some(ev.at), now);
                    }
                }
                return;
            }
        };
        if !self.out.filter.matches(ev) {
            return;
        }
        let before = self.active.entry(key).or_default()[slot].replace(ev.clone());
        if !live {
            return;
        }
        if let Some(before) = before.filter(|b| self.labels(b) != self.labels(ev)) {
            self.push(&before, Some(ev.at), now);
        }
        self.push(ev, None, now);
    }

    /// Forgets the alerts of tickets that `keep` rejects (their partition moved away or is
    /// being rebuilt), without resolving them.
    pub fn forget(&mut self, keep: &impl Fn(&str) -> bool) {
        self.active.retain(|(ticket, _, _), _| keep(ticket));
    }

    /// Queues every active alert again, with a fresh expiry.
    pub fn resend(&self, now: Instant) {
        let items: Vec<Item> = self
            .active
            .values()
            .flatten()
            .flatten()
            .map(|ev| self.item(ev, None, now))
            .collect();
        for q in &self.queues {
            q.resend(items.clone());
        }
    }

    pub fn active(&self) -> usize {
        self.active.values().flatten().flatten().count()
    }

    fn push(&self, ev: &SlaEvent, resolved_at: Option<Instant>, now: Instant) {
        let item = self.item(ev, resolved_at, now);
        for q in &self.queues {
            q.push(item.clone());
        }
    }

    /// The alert as Alertmanager's API takes it: firing until `now` + `expire_after`, or
    /// resolved at `resolved_at` (never in the future: Alertmanager would keep it firing).
    fn item(&self, ev: &SlaEvent, resolved_at: Option<Instant>, now: Instant) -> Item {
        let starts = ev.at.min(now);
        let ends = resolved_at.map_or(now + self.expire_after, |at| at.clamp(starts, now));
        let link = self.out.link.as_ref().map(|l| l.expand(ev));
        let mut alert = json!({
            "labels": self.labels(ev),
            "annotations": annotations(ev, link.as_deref()),
            "startsAt": Rfc3339(starts).to_string(),
            "endsAt": Rfc3339(ends).to_string(),
        });
        if let Some(link) = link {
            alert["generatorURL"] = json!(link);
        }
        Item {
            body: Arc::from(alert.to_string()),
            urgent: ev.kind == SlaKind::Escalated,
        }
    }

    fn labels(&self, ev: &SlaEvent) -> Map<String, Value> {
        let alertname = match ev.kind {
            SlaKind::Warning => "SLAWarning",
            SlaKind::Escalated => "SLAEscalated",
            _ => "SLABreached",
        };
        let mut labels: Map<String, Value> = self.out.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        for (k, v) in [
            ("alertname", alertname),
            ("severity", self.out.severity.of(ev)),
            ("ticket_id", &ev.ticket_id),
            ("clock", ev.clock.as_str()),
            ("policy", &ev.policy),
            ("priority", ev.priority.as_str()),
            ("channel", ev.channel.as_str()),
            ("kind", ev.ticket_kind.as_str()),
        ] {
            labels.insert(k.into(), json!(v));
        }
        labels.insert("cycle".into(), json!(ev.cycle.to_string()));
        if let Some(group) = &ev.group {
            labels.insert("group".into(), json!(&**group));
        }
        if let Detail::Level(level) = ev.detail {
            labels.insert("level".into(), json!(level.to_string()));
        }
        labels
    }
}

/// Summary, description, and the deadline, elapsed and target times on their own.
fn annotations(ev: &SlaEvent, link: Option<&str>) -> Value {
    let clock = ev.clock.as_str().replace('_', " ");
    let (target, elapsed) = (human_duration(ev.target_ms), human_duration(ev.elapsed_ms));
    let deadline = ev.deadline.map_or("none while paused".to_string(), |d| Rfc3339(d).to_string());
    let summary = match ev.detail {
        Detail::Fraction(f) => format!(
            "Ticket {}: {clock} at {}% of its {target} target",
            ev.ticket_id,
            (f * 100.0).round()
        ),
        Detail::Level(level) => format!(
            "Ticket {}: {clock} escalated to level {level}, {} past its {target} target",
            ev.ticket_id,
            human_duration(ev.elapsed_ms - ev.target_ms)
        ),
        _ => format!("Ticket {}: {clock} target of {target} breached", ev.ticket_id),
    };
    let group = ev.group.as_deref().map_or(String::new(), |g| format!(", group {g}"));
    let description = format!(
        "{summary}. Policy {}, priority {}, channel {}, kind {}{group}. Cycle {} started {}; \
         deadline {deadline}; elapsed {elapsed} of business time at {}.",
        ev.policy,
        ev.priority.as_str(),
        ev.channel.as_str(),
        ev.ticket_kind.as_str(),
        ev.cycle,
        Rfc3339(ev.started_at),
        Rfc3339(ev.at),
    );
    let mut a = json!({
        "summary": summary,
        "description": description,
        "deadline": deadline,
        "elapsed": elapsed,
        "target": target,
    });
    if let Some(link) = link {
        a["ticket_url"] = json!(link);
    }
    a
}

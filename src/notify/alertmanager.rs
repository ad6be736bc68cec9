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
        let key = || (ev.ticket_id.clone(), ev.clock, ev.cycle);
        let slot = match ev.kind {
            SlaKind::Warning => 0,
            SlaKind::Breached => 1,
            SlaKind::Escalated => 2,
            SlaKind::Fulfilled | SlaKind::Cancelled | SlaKind::BreachRetracted => {
                if let Some(slots) = self.active.remove(&key()).filter(|_| live) {
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
        let before = self.active.entry(key()).or_default()[slot].replace(ev.clone());
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
            .map(|ev| Item {
                at: None,
                ..self.item(ev, None, now)
            })
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
            at: Some(resolved_at.unwrap_or(ev.at)),
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
    let deadline = ev
        .deadline
        .map_or("none while paused".to_string(), |d| Rfc3339(d).to_string());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Channel, Kind, Priority};
    use crate::notify::delivery::{Delivery, Target};

    const T0: Instant = 1_700_000_000_000;

    fn event(kind: SlaKind, detail: Detail, at: Instant) -> SlaEvent {
        SlaEvent {
            kind,
            ticket_id: "T-1".into(),
            clock: Clock::FirstResponse,
            cycle: 1,
            policy: Arc::from("fast"),
            priority: Priority::High,
            channel: Channel::Email,
            ticket_kind: Kind::Request,
            group: Some(Arc::from("billing")),
            started_at: T0,
            deadline: Some(T0 + 900_000),
            target_ms: 900_000,
            at,
            elapsed_ms: at - T0,
            detail,
        }
    }

    fn pager() -> (Pager, Arc<Queue>) {
        let metrics = crate::metrics::Metrics::new(&crate::config::from_toml("").unwrap().rules);
        let target = Target::Alertmanager(reqwest::Url::parse("http://127.0.0.1:9093/").unwrap());
        let queue = Arc::new(Queue::new("oncall", &target, 100, &metrics));
        let link = Link::parse("https://helpdesk.example.com/t/{ticket_id}?c={clock}").unwrap();
        let out = Output {
            name: "oncall".into(),
            targets: vec![target],
            filter: Filter {
                types: vec![SlaKind::Breached, SlaKind::Escalated],
                ..Filter::default()
            },
            severity: Severity {
                warning: "warning".into(),
                breached: "page".into(),
                escalated: vec!["page".into(), "critical".into()],
            },
            labels: [("team".to_string(), "support".to_string())].into(),
            link: Some(link),
            delivery: Delivery {
                timeout: std::time::Duration::from_secs(1),
                queue: 100,
                batch: 10,
                retry_initial: std::time::Duration::from_secs(1),
                retry_max: std::time::Duration::from_secs(1),
            },
        };
        (Pager::new(out, vec![queue.clone()], 300_000), queue)
    }

    /// (alertname, level, startsAt, endsAt) of each alert queued.
    fn sent(q: &Queue) -> Vec<(String, Option<String>, String, String)> {
        let batch = q.take(100);
        q.done();
        batch
            .iter()
            .map(|i| {
                let a: Value = serde_json::from_str(&i.body).unwrap();
                let s = |v: &Value| v.as_str().map(String::from);
                (
                    s(&a["labels"]["alertname"]).unwrap(),
                    s(&a["labels"]["level"]),
                    s(&a["startsAt"]).unwrap(),
                    s(&a["endsAt"]).unwrap(),
                )
            })
            .collect()
    }

    fn t(ms: Instant) -> String {
        Rfc3339(ms).to_string()
    }

    #[test]
    fn an_alert_per_cycle_and_type_resolved_when_the_cycle_ends() {
        let (mut pager, q) = pager();
        let now = T0 + 2_000_000;
        let (breach, esc1, esc2, done) = (T0 + 900_000, T0 + 1_800_000, T0 + 1_900_000, T0 + 1_950_000);
        pager.observe(&event(SlaKind::Warning, Detail::Fraction(0.5), T0 + 450_000), true, now);
        assert_eq!(sent(&q), [], "warnings do not page by default");

        pager.observe(&event(SlaKind::Breached, Detail::None, breach), true, now);
        let fired = q.take(1);
        q.done();
        let alert: Value = serde_json::from_str(&fired[0].body).unwrap();
        assert_eq!(
            alert["labels"],
            serde_json::json!({
                "alertname": "SLABreached", "severity": "page", "ticket_id": "T-1",
                "clock": "first_response", "cycle": "1", "policy": "fast", "priority": "high",
                "channel": "email", "kind": "request", "group": "billing", "team": "support",
            })
        );
        let a = &alert["annotations"];
        assert_eq!(a["summary"], "Ticket T-1: first response target of 15m breached");
        assert_eq!(
            (&a["target"], &a["elapsed"]),
            (&Value::from("15m"), &Value::from("15m"))
        );
        assert_eq!(a["deadline"], t(T0 + 900_000));
        assert_eq!(a["ticket_url"], "https://helpdesk.example.com/t/T-1?c=first_response");
        assert_eq!(alert["generatorURL"], a["ticket_url"]);
        assert_eq!(
            (alert["startsAt"].as_str(), alert["endsAt"].as_str()),
            (Some(&*t(breach)), Some(&*t(now + 300_000)))
        );

        pager.observe(&event(SlaKind::Escalated, Detail::Level(1), esc1), true, now);
        let level1 = (
            "SLAEscalated".to_string(),
            Some("1".to_string()),
            t(esc1),
            t(now + 300_000),
        );
        assert_eq!(sent(&q), [level1]);
        // A higher level replaces the alert of the lower one, which is resolved.
        pager.observe(&event(SlaKind::Escalated, Detail::Level(2), esc2), true, now);
        assert_eq!(
            sent(&q),
            [
                ("SLAEscalated".into(), Some("1".into()), t(esc1), t(esc2)),
                ("SLAEscalated".into(), Some("2".into()), t(esc2), t(now + 300_000)),
            ]
        );
        assert_eq!(pager.active(), 2);

        pager.observe(&event(SlaKind::Fulfilled, Detail::None, done), true, now);
        let mut resolved = sent(&q);
        resolved.sort();
        assert_eq!(
            resolved,
            [
                ("SLABreached".into(), None, t(breach), t(done)),
                ("SLAEscalated".into(), Some("2".into()), t(esc2), t(done)),
            ]
        );
        assert_eq!(pager.active(), 0);
    }

    /// After a restart the re-read restores the active alerts without sending them; they go
    /// out with the next re-send, and another instance's tickets are forgotten unresolved.
    #[test]
    fn replayed_events_restore_the_active_alerts_silently() {
        let (mut pager, q) = pager();
        let now = T0 + 2_000_000;
        pager.observe(&event(SlaKind::Breached, Detail::None, T0 + 900_000), false, now);
        let mut other = event(SlaKind::Breached, Detail::None, T0 + 900_000);
        other.ticket_id = "T-2".into();
        pager.observe(&other, false, now);
        assert_eq!(sent(&q), []);
        pager.forget(&|id| id == "T-1");
        pager.resend(now);
        assert_eq!(
            sent(&q),
            [("SLABreached".into(), None, t(T0 + 900_000), t(now + 300_000))]
        );
        pager.observe(&event(SlaKind::Cancelled, Detail::None, T0 + 950_000), false, now);
        assert_eq!((sent(&q), pager.active()), (vec![], 0));
    }

    #[test]
    fn link_templates_encode_fields_and_name_unknown_ones() {
        let link = Link::parse("https://desk.example.com/{{x}}/tickets/{ticket_id}?p={policy}").unwrap();
        let mut ev = event(SlaKind::Breached, Detail::None, T0);
        ev.ticket_id = "AB 12/ü".into();
        assert_eq!(
            link.expand(&ev),
            "https://desk.example.com/{x}/tickets/AB%2012%2F%C3%BC?p=fast"
        );
        let unknown = Link::parse("https://x/{ticket}").unwrap_err();
        assert!(
            unknown.starts_with("unknown field {ticket} (one of ticket_id, clock"),
            "{unknown}"
        );
        assert!(Link::parse("https://x/}").unwrap_err().starts_with("unmatched '}'"));
        assert!(
            Link::parse("https://x/{ticket_id")
                .unwrap_err()
                .starts_with("unclosed '{'")
        );
    }
}

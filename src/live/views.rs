//! The HTTP API's JSON views of the shards: a ticket with its cycles, the cycles at risk, the
//! configured policies.
//!
//! Read-only: each call takes the consumer loop's lock; the at-risk scan takes it for one step
//! of [`STEP`] tickets at a time, so the loop is not held up for a whole shard.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::shards::{STEP, Shards};
use crate::engine::{CycleState, CycleView};
use crate::http::{Api, AtRisk};
use crate::time::Instant;

/// The shards as the HTTP API reads them: each call takes the loop's lock once.
pub struct View(pub Arc<Mutex<Shards>>);

impl View {
    fn lock(&self) -> MutexGuard<'_, Shards> {
        self.0.lock().expect("shard lock")
    }
}

impl Api for View {
    fn ticket(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        state.by_partition.iter().find_map(|(&p, shard)| {
            let e = &shard.engine;
            let t = e.ticket(id)?;
            let cycles: Vec<Value> = e.cycles(t).map(|c| cycle_json(&c)).collect();
            Some(json!({
                "ticket_id": t.id.as_str(),
                "partition": p,
                "status": t.status.as_str(),
                "priority": t.priority.as_str(),
                "channel": t.channel.as_str(),
                "kind": t.kind.as_str(),
                "group": e.group_name(t),
                "customer_tier": e.tier_name(t),
                "policy": t.policy().map(|i| state.rules.policies[i].name.as_ref()),
                "frontier": rfc3339(e.frontier()),
                "cycles": cycles,
            }))
        })
    }

    /// Scans each shard in steps of [`STEP`] tickets, taking the lock for one step at a time,
    /// and keeps the `limit` soonest.
    fn at_risk(&self, q: &AtRisk) -> Vec<Value> {
        let (partitions, policy) = {
            let state = self.lock();
            let policy = q
                .policy
                .as_deref()
                .map(|name| state.rules.policies.iter().position(|p| &*p.name == name));
            (state.by_partition.keys().copied().collect::<Vec<i32>>(), policy)
        };
        if policy == Some(None) {
            return Vec::new();
        }
        let mut found: Vec<(Instant, String, Value)> = Vec::new();
        for p in partitions {
            let mut next = 0;
            loop {
                let state = self.lock();
                let Some(shard) = state.by_partition.get(&p) else { break };
                let e = &shard.engine;
                let horizon = e.frontier().saturating_add(q.within_ms);
                for t in e.tickets(next..next + STEP) {
                    if policy.is_some_and(|want| want != t.policy()) {
                        continue;
                    }
                    for c in e.cycles(t) {
                        let due = c.deadline.filter(|&d| d <= horizon && c.elapsed_ms.is_some());
                        let Some(deadline) = due.filter(|_| q.clock.is_none_or(|k| k == c.clock)) else {
                            continue;
                        };
                        let mut v = cycle_json(&c);
                        v["ticket_id"] = json!(t.id.as_str());
                        v["partition"] = json!(p);
                        v["policy"] = json!(t.policy().map(|i| state.rules.policies[i].name.as_ref()));
                        v["breached"] = json!(c.state == CycleState::Breached);
                        found.push((deadline, t.id.to_string(), v));
                    }
                }
                next += STEP;
                if found.len() > 4 * q.limit {
                    soonest(&mut found, q.limit);
                }
                if next >= e.slots() {
                    break;
                }
            }
        }
        soonest(&mut found, q.limit);
        found.into_iter().map(|(_, _, v)| v).collect()
    }

    fn policies(&self) -> Value {
        self.lock().settings.catalogue.clone()
    }
}

/// Keeps the `limit` soonest, in order (ties by ticket id).
fn soonest(found: &mut Vec<(Instant, String, Value)>, limit: usize) {
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    found.truncate(limit);
}

fn rfc3339(t: Instant) -> Option<String> {
    (t > Instant::MIN).then(|| crate::time::Rfc3339(t).to_string())
}

fn cycle_json(c: &CycleView) -> Value {
    json!({
        "clock": c.clock.as_str(),
        "cycle": c.number,
        "state": c.state.as_str(),
        "started_at": rfc3339(c.start),
        "deadline": c.deadline.and_then(rfc3339),
        "target_ms": c.target_ms,
        "elapsed_ms": c.elapsed_ms,
    })
}

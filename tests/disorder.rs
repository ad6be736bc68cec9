//! Shuffling events across tickets within `allowed_lateness` changes no breach and no
//! fulfilment: alerts follow event time, not arrival order.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use slawatch::config::from_toml;
use slawatch::engine::{Detail, Engine, Outbox, SlaKind};
use slawatch::event::decode;
use slawatch::sim::{SimConfig, SimEvent, generate};

const LATENESS_MS: i64 = 10 * 60_000;

/// Breach ids and fulfilment ids with their outcomes.
fn breaches_and_fulfilments(events: &[SimEvent]) -> (BTreeSet<String>, BTreeSet<String>) {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml")).unwrap();
    let config = example.replace("allowed_lateness = \"0s\"", "allowed_lateness = \"10m\"");
    let rules = from_toml(&config).unwrap().rules;
    assert_eq!(rules.engine.allowed_lateness, LATENESS_MS);
    let mut engine: Engine<()> = Engine::new(rules);
    let mut out = Outbox::default();
    for e in events {
        let ev = decode(e.json.as_bytes(), 65_536).unwrap();
        assert!(ev.occurred_at >= engine.frontier(), "the shuffle made an event late");
        engine.handle(&ev, || (), &mut out);
    }
    engine.finish(None, &mut out);
    let (mut breaches, mut fulfilments) = (BTreeSet::new(), BTreeSet::new());
    for e in out.sla {
        match (e.kind, e.detail) {
            (SlaKind::Breached, _) => breaches.insert(format!("{} at {}", e.id(), e.at)),
            (SlaKind::Fulfilled, Detail::Outcome(o)) => fulfilments.insert(format!("{} {}", e.id(), o.as_str())),
            _ => false,
        };
    }
    (breaches, fulfilments)
}

/// Reorders by `occurred_at` plus a random delay below the lateness, never overtaking an
/// earlier event of the same ticket: every event stays within the lateness of all before it.
fn shuffle(events: &[SimEvent], seed: u64) -> Vec<SimEvent> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut last_key = std::collections::HashMap::new();
    let mut keyed: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = e.at_ms + rng.random_range(0..LATENESS_MS);
            let key = key.max(*last_key.get(&e.ticket_id).unwrap_or(&i64::MIN));
            last_key.insert(e.ticket_id.clone(), key);
            (key, i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| events[i].clone()).collect()
}

#[test]
fn shuffling_within_allowed_lateness_changes_no_breach_and_no_fulfilment() {
    for seed in [1, 2, 3, 4] {
        let cfg = SimConfig {
            id_prefix: "T".into(),
            ..SimConfig::new(seed, 2_000, 1_795_500_000_000, 120.0)
        };
        let events: Vec<SimEvent> = generate(&cfg).collect();
        let shuffled = shuffle(&events, seed);
        let moved = events.iter().zip(&shuffled).filter(|(a, b)| a.json != b.json).count();
        assert!(
            moved > events.len() / 2,
            "the shuffle should move most events ({moved})"
        );
        let (b1, f1) = breaches_and_fulfilments(&events);
        let (b2, f2) = breaches_and_fulfilments(&shuffled);
        assert!(b1.len() > 100 && f1.len() > 1_000, "seed {seed}: too little to compare");
        for (what, a, b) in [("breaches", &b1, &b2), ("fulfilments", &f1, &f2)] {
            let only_in_order: Vec<_> = a.difference(b).take(5).collect();
            let only_shuffled: Vec<_> = b.difference(a).take(5).collect();
            assert!(
                a == b,
                "seed {seed}: {what} differ: in order only {only_in_order:?}, shuffled only {only_shuffled:?}"
            );
        }
    }
}

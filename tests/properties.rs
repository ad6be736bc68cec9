//! The fuzz targets' checks (`fuzz/src/lib.rs`) under plain `cargo test`:
//!
//! - on every checked-in fuzz input: the seed corpora (`fuzz/corpus/<target>/`) and the crash
//!   inputs found so far (`fuzz/regressions/<target>/`);
//! - on random configurations that `validate()` accepts, each running the engine on a random
//!   event program: no panic, and the engine invariants of the fuzz checks.
//!
//! Running the fuzzers themselves: docs/TESTING.md.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use slawatch::config::{CalendarSection, EngineSection, FileConfig, MatchSection, PolicySection};

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        inputs.extend(entries.map(|e| e.expect("a directory entry").path()));
    }
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs for {target}");
    for path in &inputs {
        let data = std::fs::read(path).expect("readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails the {target} checks", path.display());
        }
    }
}

#[test]
fn fuzz_inputs_of_the_event_decoder() {
    replay("event", fuzz::event);
}

#[test]
fn fuzz_inputs_of_the_config_loader() {
    replay("config", fuzz::config);
}

#[test]
fn fuzz_inputs_of_the_engine() {
    replay("engine", fuzz::engine);
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A non-empty subset of `words`, in their order.
fn some_of(words: &[&str]) -> impl Strategy<Value = Vec<String>> + use<> {
    subsequence(strings(words), 1..=words.len())
}

fn duration() -> impl Strategy<Value = String> {
    (1u32..100, select(&["s", "m", "h", "d"][..])).prop_map(|(n, unit)| format!("{n}{unit}"))
}

fn zero_or_duration() -> impl Strategy<Value = String> {
    prop_oneof![Just("0s".to_string()), duration()]
}

fn engine_section() -> impl Strategy<Value = EngineSection> {
    (
        zero_or_duration(),
        zero_or_duration(),
        0usize..5,
        1usize..6,
        zero_or_duration(),
    )
        .prop_map(
            |(allowed_lateness, orphan_hold, max_orphans, max_tickets, ticket_retention)| EngineSection {
                allowed_lateness,
                orphan_hold,
                max_orphans,
                max_tickets,
                ticket_retention,
                ..EngineSection::default()
            },
        )
}

/// Windows of one day from a strictly increasing set of quarter hours, paired off.
fn windows() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set(0u32..=96, 0..7).prop_map(|bounds| {
        let hm = |q: u32| format!("{:02}:{:02}", q / 4, q % 4 * 15);
        let bounds: Vec<u32> = bounds.into_iter().collect();
        bounds
            .chunks_exact(2)
            .map(|w| format!("{}-{}", hm(w[0]), hm(w[1])))
            .collect()
    })
}

fn calendar(i: usize) -> impl Strategy<Value = CalendarSection> {
    let zones = vec![
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/St_Johns",
    ];
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    (
        select(zones),
        // Around the event programs' start (2026-10-23), so holidays are reached.
        vec(
            prop_oneof![
                (20u32..=31).prop_map(|d| format!("2026-10-{d}")),
                (1u32..=9).prop_map(|d| format!("2026-11-0{d}")),
            ],
            0..4,
        ),
        vec(windows(), 7),
    )
        .prop_map(move |(timezone, holidays, week)| CalendarSection {
            name: format!("c{i}"),
            timezone: timezone.to_string(),
            holidays,
            hours: days
                .iter()
                .map(|d| d.to_string())
                .zip(week)
                .filter(|(_, w)| !w.is_empty())
                .collect(),
        })
}

fn matcher() -> impl Strategy<Value = MatchSection> {
    (
        proptest::option::of(some_of(&["urgent", "high", "normal", "low"])),
        proptest::option::of(some_of(&["email", "phone", "chat", "social", "web", "other"])),
        proptest::option::of(some_of(&["request", "complaint"])),
        proptest::option::of(some_of(&fuzz::GROUPS[..3])),
        proptest::option::of(some_of(&fuzz::TIERS[..3])),
        proptest::option::of(some_of(&fuzz::TAGS)),
    )
        .prop_map(
            |(priority, channel, kind, group, customer_tier, tags_any)| MatchSection {
                priority,
                channel,
                kind,
                group,
                customer_tier,
                tags_any,
            },
        )
}

fn targets() -> impl Strategy<Value = BTreeMap<String, BTreeMap<String, String>>> {
    let per_priority = proptest::collection::btree_map(
        select(&["urgent", "high", "normal", "low"][..]).prop_map(String::from),
        duration(),
        1..4,
    );
    proptest::collection::btree_map(
        select(&["first_response", "next_response", "resolution"][..]).prop_map(String::from),
        per_priority,
        1..3,
    )
}

fn policy(i: usize, calendars: usize) -> impl Strategy<Value = PolicySection> {
    (
        (0..=calendars).prop_map(|c| {
            if c == 0 {
                "24x7".to_string()
            } else {
                format!("c{}", c - 1)
            }
        }),
        proptest::option::of(subsequence(strings(&["new", "open", "pending", "on_hold"]), 0..=4)),
        subsequence(vec![0.1, 0.25, 0.5, 0.75, 0.9], 0..=5),
        subsequence(vec![1u32, 10, 30, 60, 120, 480, 1440], 0..=4),
        matcher(),
        targets(),
    )
        .prop_map(
            move |(calendar, pause_statuses, warn_at, minutes, matcher, targets)| PolicySection {
                name: format!("p{i}"),
                calendar,
                pause_statuses,
                warn_at,
                escalate_after: minutes.iter().map(|m| format!("{m}m")).collect(),
                matcher,
                targets,
            },
        )
}

fn file_config() -> impl Strategy<Value = FileConfig> {
    (0usize..3, 1usize..5)
        .prop_flat_map(|(calendars, policies)| {
            (
                engine_section(),
                (0..calendars).map(calendar).collect::<Vec<_>>(),
                (0..policies).map(|i| policy(i, calendars)).collect::<Vec<_>>(),
            )
        })
        .prop_map(|(engine, calendar, policy)| FileConfig {
            engine,
            calendar,
            policy,
            ..FileConfig::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_configurations_never_make_the_engine_panic(
        config in file_config(),
        program in vec(any::<u8>(), 0..600),
        far_end in any::<bool>(),
    ) {
        // Rejected configurations are not counted; proptest fails if most are.
        let rules = config.validate().map_err(|e| TestCaseError::reject(e.to_string()))?.rules;
        fuzz::program(&rules, &program, far_end);
    }
}

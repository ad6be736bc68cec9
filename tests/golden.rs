//! Golden tests: `replay` output on checked-in inputs must match checked-in outputs byte for
//! byte. After an intended change of behaviour, regenerate with `UPDATE_GOLDEN=1 cargo test
//! --test golden` and review the diff like code.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Replays `input` with `config` (and `--until`), then compares SLA events and dead letters
/// with the golden files.
fn check(config: &str, input: &str, until: Option<&str>, golden_sla: &str, golden_dead: &str) {
    let dir = std::env::temp_dir().join(format!(
        "slawatch-golden-{}-{}",
        std::process::id(),
        golden_sla.replace('/', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (sla, dead) = (dir.join("sla.ndjson"), dir.join("dead.ndjson"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slawatch"));
    cmd.arg("replay")
        .arg("--config")
        .arg(repo(config))
        .arg("--input")
        .arg(repo(input));
    cmd.arg("--output").arg(&sla).arg("--dead-letter").arg(&dead);
    if let Some(until) = until {
        cmd.args(["--until", until]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (actual, golden) in [(sla, golden_sla), (dead, golden_dead)] {
        let actual = std::fs::read_to_string(actual).unwrap();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(repo(golden), &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(repo(golden)).unwrap();
        if actual != expected {
            let first = actual.lines().zip(expected.lines()).position(|(a, e)| a != e);
            panic!(
                "{golden} differs (first differing line: {:?}; {} vs {} lines)\nactual:   {:?}\nexpected: {:?}",
                first.map(|i| i + 1),
                actual.lines().count(),
                expected.lines().count(),
                first.and_then(|i| actual.lines().nth(i)),
                first.and_then(|i| expected.lines().nth(i)),
            );
        }
    }
}

#[test]
fn example_day_matches_golden_output() {
    check(
        "config/example.toml",
        "examples/events.ndjson",
        None,
        "tests/golden/example.sla.ndjson",
        "tests/golden/example.dead.ndjson",
    );
}

#[test]
fn edge_cases_match_golden_output() {
    check(
        "tests/golden/edge-cases.toml",
        "tests/golden/edge-cases.ndjson",
        Some("2026-11-30T12:00:00Z"),
        "tests/golden/edge-cases.sla.ndjson",
        "tests/golden/edge-cases.dead.ndjson",
    );
}

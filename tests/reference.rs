//! Cross-check `slawatch replay` against the independent Python reference implementation
//! (`tests/reference/slaref.py`, written only from SPEC.md and docs/SEMANTICS.md).
//!
//! For each case both run on the same config and input; the SLA events must be equal line by
//! line (as JSON values) and the dead letters must have the same (reason, source.line) sequence.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn tmp_dir(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slawatch-reference-{}-{case}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn dead_keys(path: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_lines(&text)
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().unwrap().to_owned(),
                d["source"]["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn python_available() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "python3 is required by tests/reference.rs (the reference implementation is Python 3.11+)"
    );
}

fn compare(case: &str, config: &Path, input: &Path, until: Option<&str>) {
    python_available();
    let dir = tmp_dir(case);
    let (rust_dead, ref_dead) = (dir.join("rust.dead.ndjson"), dir.join("ref.dead.ndjson"));

    let mut rust = Command::new(env!("CARGO_BIN_EXE_slawatch"));
    rust.arg("replay").arg("--config").arg(config).arg("--input").arg(input);
    rust.arg("--dead-letter").arg(&rust_dead);
    let mut reference = Command::new("python3");
    reference.arg(Path::new(ROOT).join("tests/reference/slaref.py"));
    reference.arg("--config").arg(config).arg("--input").arg(input);
    reference.arg("--dead-letter").arg(&ref_dead);
    if let Some(u) = until {
        rust.args(["--until", u]);
        reference.args(["--until", u]);
    }
    let rust_out = parse_lines(&run(&mut rust, "slawatch replay"));
    let ref_out = parse_lines(&run(&mut reference, "python3 slaref.py"));

    let first_diff = (0..rust_out.len().max(ref_out.len())).find(|&i| rust_out.get(i) != ref_out.get(i));
    if let Some(i) = first_diff {
        let show = |v: Option<&Value>| v.map_or("<no line>".to_owned(), Value::to_string);
        panic!(
            "case {case}: SLA output differs at line {} (slawatch {} lines, reference {} lines)\n\
             slawatch:  {}\nreference: {}",
            i + 1,
            rust_out.len(),
            ref_out.len(),
            show(rust_out.get(i)),
            show(ref_out.get(i)),
        );
    }
    let (rd, fd) = (dead_keys(&rust_dead), dead_keys(&ref_dead));
    assert_eq!(
        rd, fd,
        "case {case}: dead letters (reason, line) differ: slawatch vs reference"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn simulated(dir: &Path) -> PathBuf {
    let path = dir.join("sim.ndjson");
    run(
        Command::new(env!("CARGO_BIN_EXE_slawatch"))
            .args(["simulate", "--tickets", "1500", "--seed", "7", "--output"])
            .arg(&path),
        "slawatch simulate",
    );
    path
}

#[test]
fn edge_cases_match_reference() {
    let root = Path::new(ROOT);
    compare(
        "edge",
        &root.join("tests/golden/edge-cases.toml"),
        &root.join("tests/golden/edge-cases.ndjson"),
        Some("2026-11-30T12:00:00Z"),
    );
}

#[test]
fn example_matches_reference() {
    let root = Path::new(ROOT);
    compare(
        "example",
        &root.join("config/example.toml"),
        &root.join("examples/events.ndjson"),
        None,
    );
}

#[test]
fn simulated_stream_matches_reference() {
    let dir = tmp_dir("sim-input");
    let input = simulated(&dir);
    compare("simulated", &Path::new(ROOT).join("config/example.toml"), &input, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulated_stream_with_lateness_matches_reference() {
    let dir = tmp_dir("sim-late-input");
    let input = simulated(&dir);
    let text = std::fs::read_to_string(Path::new(ROOT).join("config/example.toml")).unwrap();
    assert!(
        text.contains("allowed_lateness = \"0s\""),
        "config/example.toml changed shape"
    );
    let config = dir.join("late.toml");
    std::fs::write(
        &config,
        text.replace("allowed_lateness = \"0s\"", "allowed_lateness = \"2m\""),
    )
    .unwrap();
    compare("simulated-lateness", &config, &input, None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Many small random configurations and streams (`tests/reference/cases.py`), dense in the
/// corner cases: business hours across a DST change, pauses, reopens, re-selected policies,
/// late and out-of-order events, duplicates, orphans, retention.
#[test]
fn random_small_cases_match_reference() {
    let dir = tmp_dir("random");
    run(
        Command::new("python3")
            .arg(Path::new(ROOT).join("tests/reference/cases.py"))
            .args(["--seed", "1", "--count", "150", "--out"])
            .arg(&dir),
        "python3 cases.py",
    );
    for seed in 1..=150 {
        let case = dir.join(seed.to_string());
        let until = std::fs::read_to_string(case.join("until")).unwrap();
        let until = (!until.is_empty()).then_some(until.as_str());
        compare(
            &format!("random-{seed}"),
            &case.join("config.toml"),
            &case.join("events.ndjson"),
            until,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

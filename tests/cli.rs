//! Black-box tests of the `slawatch` binary: `replay` and `check-config` as SPEC §8 says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn slawatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slawatch"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A fresh scratch directory per test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slawatch-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading: a broken pipe here is the child's answer, not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

const CONFIG: &str = r#"
[[policy]]
name = "std"
[policy.targets.first_response]
urgent = "30m"
"#;

const EVENTS: &str = concat!(
    r#"{"type":"ticket.created","ticket_id":"T1","occurred_at":"2026-11-24T09:00:00Z","priority":"urgent","channel":"chat"}"#,
    "\n\n",
    "{oops\n",
    r#"{"type":"reply.sent","ticket_id":"T2","occurred_at":"2026-11-24T09:01:00+01:00","author":"agent"}"#,
    "\r\n",
    r#"{"type":"ticket.created","ticket_id":"T3","occurred_at":"2026-11-24T09:10:00Z","priority":"urgent","channel":"chat"}"#,
    "\n"
);

#[test]
fn replay_reads_stdin_writes_stdout_and_summarises_on_stderr() {
    let dir = scratch("stdio");
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    let out = run_with_stdin(slawatch().args(["replay", "--config"]).arg(dir.join("c.toml")), EVENTS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "no alert is due yet at F = 09:10");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("5 lines") && stderr.contains("2 dead letters"),
        "{stderr}"
    );
}

#[test]
fn replay_until_emits_alerts_due_by_then_and_dead_letters_keep_the_line() {
    let dir = scratch("until");
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    std::fs::write(dir.join("in.ndjson"), EVENTS).unwrap();
    let out = slawatch()
        .args(["replay", "--until", "2026-11-24T10:00:00Z", "--config"])
        .arg(dir.join("c.toml"))
        .arg("--input")
        .arg(dir.join("in.ndjson"))
        .arg("--output")
        .arg(dir.join("out.ndjson"))
        .arg("--dead-letter")
        .arg(dir.join("dead.ndjson"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sla = std::fs::read_to_string(dir.join("out.ndjson")).unwrap();
    let kinds: Vec<String> = sla
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| format!("{} {}", v["type"].as_str().unwrap(), v["ticket_id"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, ["sla.breached T1", "sla.breached T3"]);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("dead.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (dead[0]["reason"].as_str(), dead[0]["source"]["line"].as_u64()),
        (Some("invalid_json"), Some(3))
    );
    assert_eq!(dead[0]["raw"], "{oops");
    assert_eq!(
        (dead[1]["reason"].as_str(), dead[1]["source"]["line"].as_u64()),
        (Some("unknown_ticket"), Some(4))
    );
}

#[test]
fn replay_output_is_byte_identical_across_runs() {
    let dir = scratch("identical");
    let run = |name: &str| {
        let out = slawatch()
            .args(["replay", "--config"])
            .arg(repo("config/example.toml"))
            .arg("--input")
            .arg(repo("examples/events.ndjson"))
            .arg("--output")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::read(dir.join(name)).unwrap()
    };
    let (a, b) = (run("a"), run("b"));
    assert!(!a.is_empty());
    assert!(a == b, "two replays differ");
}

#[test]
fn replay_with_invalid_config_exits_2_naming_the_key() {
    let dir = scratch("badconfig");
    std::fs::write(
        dir.join("c.toml"),
        "[[policy]]\nname = \"p\"\n[policy.targets.resolution]\nurgent = \"4x\"\n",
    )
    .unwrap();
    let out = run_with_stdin(slawatch().args(["replay", "--config"]).arg(dir.join("c.toml")), "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("policy[0].targets.resolution.urgent: invalid duration \"4x\""),
        "{stderr}"
    );
}

#[test]
fn replay_io_failure_exits_1() {
    let out = slawatch()
        .args(["replay", "--config"])
        .arg(repo("config/example.toml"))
        .args(["--input", "/nonexistent/events.ndjson"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/events.ndjson"));
}

#[test]
fn check_config_exits_0_on_the_example_and_2_on_problems() {
    let ok = slawatch()
        .args(["check-config", "--config"])
        .arg(repo("config/example.toml"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let dir = scratch("check");
    std::fs::write(dir.join("c.toml"), "[engine]\nidle_grace = \"soon\"\nsurprise = 1\n").unwrap();
    let bad = slawatch()
        .args(["check-config", "--config"])
        .arg(dir.join("c.toml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("surprise"));
}

fn check_config(path: &Path) -> (Option<i32>, String) {
    let out = slawatch()
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_config_names_a_file_it_cannot_read_and_warns_on_an_empty_one() {
    let dir = scratch("unreadable");
    let none = dir.join("none.toml");
    assert_eq!(
        check_config(&none),
        (
            Some(2),
            format!(
                "slawatch: cannot read config file {}: No such file or directory (os error 2)\n",
                none.display()
            )
        )
    );
    assert_eq!(
        check_config(&dir),
        (
            Some(2),
            format!(
                "slawatch: cannot read config file {}: Is a directory (os error 21)\n",
                dir.display()
            )
        )
    );
    let huge = dir.join("huge.toml");
    std::fs::write(&huge, "#".repeat(9 << 20)).unwrap();
    assert_eq!(
        check_config(&huge),
        (
            Some(2),
            format!(
                "slawatch: cannot read config file {}: larger than the limit of 8 MiB\n",
                huge.display()
            )
        )
    );
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "# nothing yet\n\n").unwrap();
    assert_eq!(
        check_config(&empty),
        (
            Some(0),
            format!(
                "warning: config file {} is empty: every setting takes its default\n\
                 warning: policy: there are no policies, so no ticket gets an SLA clock\n\
                 warning: {BROKERS_UNSET}\n\
                 {}: ok\n",
                empty.display(),
                empty.display()
            )
        )
    );
}

#[test]
fn environment_overrides_the_file() {
    let dir = scratch("env");
    let config = dir.join("c.toml");
    std::fs::write(&config, "[engine]\nidle_grace = \"5s\"\n").unwrap();
    for (var, value, expected) in [
        (
            "SLAWATCH__ENGINE__IDLE_GRACE",
            "soon",
            "engine.idle_grace: invalid duration \"soon\"",
        ),
        (
            "SLAWATCH__ENGINE__MAX_ORPHANS",
            "many",
            "engine.max_orphans (from SLAWATCH__ENGINE__MAX_ORPHANS): invalid type: found string \"many\", expected usize",
        ),
    ] {
        let out = slawatch()
            .args(["check-config", "--config"])
            .arg(&config)
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn check_config_warns_but_accepts_days_in_business_calendars() {
    let dir = scratch("warn");
    let config = r#"
[[calendar]]
name = "office"
timezone = "Europe/Berlin"
[calendar.hours]
mon = ["09:00-17:00"]
[[policy]]
name = "p"
calendar = "office"
[policy.targets.resolution]
low = "2d"
"#;
    std::fs::write(dir.join("c.toml"), config).unwrap();
    let out = slawatch()
        .args(["check-config", "--config"])
        .arg(dir.join("c.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy[0].targets.resolution.low"));
}

/// `replay --config CONFIG` with the given extra arguments and stdin.
fn replay_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    run_with_stdin(
        slawatch()
            .args(["replay", "--config"])
            .arg(dir.join("c.toml"))
            .args(args),
        stdin,
    )
}

#[test]
fn replay_to_a_closed_stdout_exits_1() {
    let dir = scratch("closed");
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    std::fs::write(dir.join("in.ndjson"), EVENTS).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" replay --until 2026-11-24T10:00:00Z --config "$1" --input "$2" >&-"#)
        .arg(env!("CARGO_BIN_EXE_slawatch"))
        .arg(dir.join("c.toml"))
        .arg(dir.join("in.ndjson"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output is closed"));
}

#[test]
fn replay_to_a_full_device_exits_1() {
    let dir = scratch("full");
    let out = replay_stdin(
        &dir,
        &["--until", "2026-11-24T10:00:00Z", "--output", "/dev/full"],
        EVENTS,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/full"));
}

#[test]
fn replay_refuses_to_write_over_its_input() {
    let dir = scratch("same");
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    std::fs::write(dir.join("in.ndjson"), EVENTS).unwrap();
    std::fs::hard_link(dir.join("in.ndjson"), dir.join("alias.ndjson")).unwrap();
    for flag in ["--output", "--dead-letter"] {
        let out = slawatch()
            .args(["replay", "--config"])
            .arg(dir.join("c.toml"))
            .arg("--input")
            .arg(dir.join("in.ndjson"))
            .arg(flag)
            .arg(dir.join("alias.ndjson"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("alias.ndjson"), "{flag}");
        assert_eq!(
            std::fs::read_to_string(dir.join("in.ndjson")).unwrap(),
            EVENTS,
            "{flag}"
        );
    }
}

#[test]
fn replay_skips_a_byte_order_mark() {
    let dir = scratch("bom");
    let out = replay_stdin(&dir, &[], &format!("\u{feff}{EVENTS}"));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 dead letters"),
        "as without a BOM"
    );
}

#[test]
fn replay_until_outside_the_supported_instants_is_a_usage_error() {
    let dir = scratch("range");
    for until in ["2100-01-01T00:00:00Z", "1969-12-31T23:59:59Z"] {
        let out = replay_stdin(&dir, &["--until", until], EVENTS);
        assert_eq!(out.status.code(), Some(2), "{until}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--until"), "{until}");
    }
}

#[test]
fn replay_dead_letters_an_overlong_line_with_a_truncated_copy() {
    let dir = scratch("long");
    let long = format!(r#"{{"type":"reply.sent","note":"{}"}}"#, "x".repeat(200_000));
    let stdin = format!("{long}\n{EVENTS}");
    let out = replay_stdin(&dir, &["--dead-letter", dir.join("dead").to_str().unwrap()], &stdin);
    assert!(out.status.success());
    let dead = std::fs::read_to_string(dir.join("dead")).unwrap();
    let first: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(first["reason"], "too_large");
    assert_eq!(first["source"]["line"], 1);
    assert_eq!(
        first["raw"].as_str().unwrap().len(),
        65_536,
        "the default max_event_bytes"
    );
    assert!(
        first["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} bytes", long.len()))
    );
    assert_eq!(dead.lines().count(), 3, "the line after it is read as usual");
}

const BROKERS_UNSET: &str =
    "kafka.brokers: not set; `run` needs the bootstrap servers (or \"embedded\" for the in-process demo broker)";

#[test]
fn run_without_kafka_brokers_exits_2_and_check_config_warns() {
    let dir = scratch("brokers");
    let config = dir.join("c.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = slawatch()
        .args(["run", "--config"])
        .arg(&config)
        .env("SLAWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(BROKERS_UNSET), "{stderr}");
    let (code, stderr) = check_config(&config);
    assert_eq!(
        (code, stderr),
        (Some(0), format!("warning: {BROKERS_UNSET}\n{}: ok\n", config.display()))
    );
    // The same configuration replays without a word about Kafka.
    let out = replay_stdin(&dir, &[], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kafka"));
}

#[test]
fn the_config_file_can_come_from_slawatch_config() {
    let out = slawatch()
        .arg("check-config")
        .env("SLAWATCH_CONFIG", repo("config/example.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn run_reports_configuration_problems_in_its_log_format() {
    let dir = scratch("jsonlog");
    let config = dir.join("c.toml");
    std::fs::write(&config, "[[policy]]\nname = \"p\"\nwarn_at = [0.5, \"x\"]\n").unwrap();
    let out = slawatch()
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(
        lines[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("policy[0].warn_at[1]"),
        "{stderr}"
    );
}

//! `slawatch replay`: NDJSON events in, SLA events out, through the live engine as one
//! partition (SPEC §8).
//!
//! Streaming: one reused line buffer in, one reused output buffer flushed in large writes, so
//! memory stays flat whatever the input size. Output is byte-identical for the same input and
//! configuration because the engine is deterministic and nothing here reads the clock except
//! the progress display and the summary's duration.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use base64::Engine as _;

use crate::engine::{Applied, DeadLetter, Engine, Outbox, SlaKind};
use crate::event::{Reason, Rejection, decode};
use crate::policy::Rules;
use crate::time::{Instant, Rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: io::Error },
}

pub struct Options {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub until: Option<Instant>,
    pub progress: bool,
}

/// Where a held input line came from, kept to dead-letter it later.
struct Line {
    number: u64,
    raw: Vec<u8>,
}

#[derive(Default)]
pub struct Summary {
    pub lines: u64,
    pub dead: [u64; Reason::ALL.len()],
    pub engine: crate::engine::Stats,
    pub frontier: Instant,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.engine;
        let dead: u64 = self.dead.iter().sum();
        let sla: u64 = e.sla.iter().sum();
        write!(
            f,
            "replay: {} lines, {} applied, {} duplicate, {} ignored, {dead} dead letters",
            self.lines, e.applied, e.duplicates, e.ignored
        )?;
        let by_reason: Vec<String> = Reason::ALL
            .iter()
            .zip(self.dead)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !by_reason.is_empty() {
            write!(f, " ({})", by_reason.join(", "))?;
        }
        write!(f, ", {sla} SLA events")?;
        let by_kind: Vec<String> = SlaKind::ALL
            .iter()
            .zip(e.sla)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{} {n}", &k.as_str()[4..]))
            .collect();
        if !by_kind.is_empty() {
            write!(f, " ({})", by_kind.join(", "))?;
        }
        if self.frontier != Instant::MIN {
            write!(f, ", frontier {}", Rfc3339(self.frontier))?;
        }
        write!(f, ", {:.2} s", self.elapsed.as_secs_f64())
    }
}

/// Runs a replay. I/O failures are errors; bad input lines are dead letters.
pub fn run(rules: Arc<Rules>, opts: &Options) -> Result<Summary, ReplayError> {
    let started = WallInstant::now();
    let name = |p: &Option<PathBuf>| p.as_ref().map_or("-".to_string(), |p| p.display().to_string());
    let (in_name, out_name, dl_name) = (name(&opts.input), name(&opts.output), name(&opts.dead_letter));
    let read_err = |source| ReplayError::Read {
        path: in_name.clone(),
        source,
    };
    let mut input: Box<dyn BufRead> = match &opts.input {
        Some(p) if p.as_os_str() != "-" => Box::new(io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(p).map_err(read_err)?,
        )),
        _ => Box::new(io::BufReader::with_capacity(1 << 20, io::stdin().lock())),
    };
    let mut output = Sink::open(opts.output.as_ref(), true, &out_name)?;
    let mut dead_out = match &opts.dead_letter {
        Some(p) => Some(Sink::open(Some(p), false, &dl_name)?),
        None => None,
    };
    let max_bytes = rules.engine.max_event_bytes;
    let mut engine: Engine<Line> = Engine::new(rules);
    let mut outbox = Outbox::default();
    let mut summary = Summary::default();
    let mut progress = Progress::new(opts.progress && io::stderr().is_terminal());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(read_err)? == 0 {
            break;
        }
        summary.lines += 1;
        let number = summary.lines;
        let text = trim_line(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outcome = match decode(text, max_bytes) {
            Ok(ev) => engine.handle(
                &ev,
                || Line {
                    number,
                    raw: text.to_vec(),
                },
                &mut outbox,
            ),
            Err(rejection) => Applied::Rejected(rejection),
        };
        if let Applied::Rejected(rejection) = outcome {
            outbox.dead.push(DeadLetter {
                payload: Line {
                    number,
                    raw: text.to_vec(),
                },
                rejection,
            });
        }
        drain(&mut outbox, &mut output, dead_out.as_mut(), &mut summary)?;
        progress.tick(summary.lines);
    }
    engine.finish(opts.until, &mut outbox);
    drain(&mut outbox, &mut output, dead_out.as_mut(), &mut summary)?;
    output.finish()?;
    if let Some(d) = dead_out {
        d.finish()?;
    }
    progress.clear();
    summary.engine = engine.stats.clone();
    summary.frontier = engine.frontier();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Drops the line terminator (`\n` or `\r\n`).
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn drain(
    outbox: &mut Outbox<Line>,
    output: &mut Sink,
    mut dead_out: Option<&mut Sink>,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    for ev in outbox.sla.drain(..) {
        ev.write_json(&mut output.buf);
    }
    output.maybe_flush()?;
    for dl in outbox.dead.drain(..) {
        summary.dead[dl.rejection.reason as usize] += 1;
        tracing::debug!(line = dl.payload.number, reason = %dl.rejection.reason, detail = %dl.rejection.detail, "dead letter");
        if let Some(out) = dead_out.as_deref_mut() {
            write_dead_letter(&dl.payload, &dl.rejection, &mut out.buf);
            out.maybe_flush()?;
        }
    }
    Ok(())
}

/// A dead letter as one JSON line: reason, detail, source line and the original bytes
/// (as text when they are UTF-8, else base64).
fn write_dead_letter(line: &Line, rejection: &Rejection, out: &mut Vec<u8>) {
    #[derive(serde::Serialize)]
    struct Record<'a> {
        reason: Reason,
        detail: &'a str,
        source: Source,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_base64: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct Source {
        line: u64,
    }
    let text = std::str::from_utf8(&line.raw).ok();
    let record = Record {
        reason: rejection.reason,
        detail: &rejection.detail,
        source: Source { line: line.number },
        raw: text,
        raw_base64: text
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&line.raw)),
    };
    serde_json::to_writer(&mut *out, &record).expect("writing to a Vec");
    out.push(b'\n');
}

/// A buffered output file or stdout, flushed in large writes.
struct Sink {
    buf: Vec<u8>,
    writer: Box<dyn Write>,
    path: String,
}

const FLUSH_AT: usize = 1 << 20;

impl Sink {
    fn open(path: Option<&PathBuf>, dash_is_stdout: bool, name: &str) -> Result<Sink, ReplayError> {
        let writer: Box<dyn Write> = match path {
            Some(p) if !(dash_is_stdout && p.as_os_str() == "-") => {
                Box::new(std::fs::File::create(p).map_err(|source| ReplayError::Write {
                    path: name.to_string(),
                    source,
                })?)
            }
            _ => Box::new(io::stdout().lock()),
        };
        Ok(Sink {
            buf: Vec::with_capacity(FLUSH_AT * 2),
            writer,
            path: name.to_string(),
        })
    }

    fn maybe_flush(&mut self) -> Result<(), ReplayError> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), ReplayError> {
        self.writer.write_all(&self.buf).map_err(|source| ReplayError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(), ReplayError> {
        self.flush()?;
        self.writer.flush().map_err(|source| ReplayError::Write {
            path: self.path,
            source,
        })
    }
}

/// Lines-per-second display on a terminal, at most once a second.
struct Progress {
    enabled: bool,
    started: WallInstant,
    last: WallInstant,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = WallInstant::now();
        Progress {
            enabled,
            started: now,
            last: now,
        }
    }

    fn tick(&mut self, lines: u64) {
        if !self.enabled || lines % 65_536 != 0 || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = WallInstant::now();
        let rate = lines as f64 / self.started.elapsed().as_secs_f64();
        eprint!("\r\x1b[Kreplay: {lines} lines, {rate:.0} lines/s");
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

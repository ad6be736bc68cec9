//! `slawatch replay`: NDJSON events in, SLA events out, through the live engine as one
//! partition (SPEC §8).
//!
//! Streaming through three threads (read and decode, engine, format and write) joined by
//! bounded channels of batches, so memory stays flat whatever the input size. Output is
//! byte-identical for the same input and configuration: the engine is deterministic, the
//! channels keep order, and nothing here reads the clock except the progress display and the
//! summary's duration.

use std::io::{self, BufRead, IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant as WallInstant};

use base64::Engine as _;

use crate::engine::{Applied, DeadLetter, Engine, Outbox, SlaKind};
use crate::event::{Event, Reason, Rejection, decode};
use crate::policy::Rules;
use crate::time::{Instant, Rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: io::Error },
    /// A usage error: writing there would destroy the input or mix two outputs.
    #[error("{output} is the same file as {other}")]
    SameFile { output: String, other: String },
}

pub struct Options {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub until: Option<Instant>,
    pub progress: bool,
}

/// Where a dead letter came from: its line number and original bytes.
struct Origin {
    line: u64,
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

/// Lines per batch handed between the threads, and the text after which a batch is full.
const BATCH_LINES: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;
/// Batches in flight per channel: bounds memory whatever the input size.
pub(crate) const BATCHES_IN_FLIGHT: usize = 4;

/// Decoded input lines, their text kept in one buffer.
pub(crate) struct Batch {
    text: Vec<u8>,
    pub(crate) lines: Vec<Decoded>,
    /// Number of the last line read (blank lines included).
    pub(crate) last_line: u64,
}

pub(crate) struct Decoded {
    line: u64,
    span: Range<usize>,
    pub(crate) event: Result<Event, Rejection>,
}

/// What the engine emitted for one batch, and the batch's last line (for progress).
struct Emitted {
    outbox: Outbox<Origin>,
    last_line: u64,
}

/// Runs a replay. I/O failures are errors; bad input lines are dead letters.
///
/// Three threads in a pipeline: reading and decoding, the engine, formatting and writing.
/// Batches travel through bounded FIFO channels, so the output order (and so the bytes) is
/// exactly that of a single thread, and memory stays flat whatever the input size.
pub fn run(rules: Arc<Rules>, opts: &Options) -> Result<Summary, ReplayError> {
    let started = WallInstant::now();
    let (in_name, input) = open_input(opts.input.as_deref())?;
    refuse_same_files(opts)?;
    let output = Sink::open(opts.output.as_deref())?;
    let dead_out = opts.dead_letter.as_deref().map(|p| Sink::open(Some(p))).transpose()?;
    let progress = Progress::new("replay", opts.progress && io::stderr().is_terminal());
    let max_bytes = rules.engine.max_event_bytes;
    let (batch_tx, batch_rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let (out_tx, out_rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let mut engine: Engine<Origin> = Engine::new(rules);
    let mut summary = Summary::default();
    thread::scope(|scope| {
        let reader = scope.spawn(move || read_batches(input, max_bytes, batch_tx));
        let writer = scope.spawn(move || write_outputs(out_rx, output, dead_out, progress));
        let mut last_line = 0;
        for batch in batch_rx {
            let mut outbox = Outbox {
                sla: Vec::with_capacity(BATCH_LINES),
                dead: Vec::new(),
            };
            apply(&mut engine, &batch, &mut outbox);
            last_line = batch.last_line;
            if out_tx.send(Emitted { outbox, last_line }).is_err() {
                break; // the writer failed; its error is reported below
            }
        }
        let read = reader.join().expect("reader thread panicked");
        if read.is_ok() {
            let mut outbox = Outbox::default();
            engine.finish(opts.until, &mut outbox);
            let _ = out_tx.send(Emitted { outbox, last_line });
        }
        drop(out_tx);
        summary.dead = writer.join().expect("writer thread panicked")?;
        summary.lines = last_line;
        read.map_err(|source| ReplayError::Read {
            path: in_name.clone(),
            source,
        })
    })?;
    summary.engine = engine.stats.clone();
    summary.frontier = engine.frontier();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The input's name for messages, and a reader of it (`-` or none: stdin).
pub(crate) fn open_input(path: Option<&Path>) -> Result<(String, Box<dyn BufRead + Send>), ReplayError> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => {
            let name = p.display().to_string();
            match std::fs::File::open(p) {
                Ok(file) => Ok((name, Box::new(io::BufReader::with_capacity(1 << 20, file)))),
                Err(source) => Err(ReplayError::Read { path: name, source }),
            }
        }
        None => Ok(("-".into(), Box::new(io::BufReader::with_capacity(1 << 20, io::stdin())))),
    }
}

/// Refuses an output that is the input file or the other output (the same regular file),
/// which would truncate the input or interleave the outputs.
fn refuse_same_files(opts: &Options) -> Result<(), ReplayError> {
    use std::os::unix::fs::MetadataExt;
    let file = |path: Option<&Path>, std: &str| {
        let path = path.filter(|p| p.as_os_str() != "-");
        let name = path.map_or_else(|| "-".to_string(), |p| p.display().to_string());
        let meta = std::fs::metadata(path.unwrap_or(Path::new(std))).ok();
        (name, meta.filter(|m| m.is_file()).map(|m| (m.dev(), m.ino())))
    };
    let input = file(opts.input.as_deref(), "/dev/stdin");
    let mut outputs = vec![file(opts.output.as_deref(), "/dev/stdout")];
    outputs.extend(opts.dead_letter.as_deref().map(|p| file(Some(p), "/dev/stdout")));
    for (i, (name, id)) in outputs.iter().enumerate() {
        let mut earlier = std::iter::once(&input).chain(&outputs[..i]);
        if let Some((other, _)) = earlier.find(|(_, other)| id.is_some() && other == id) {
            return Err(ReplayError::SameFile {
                output: name.clone(),
                other: other.clone(),
            });
        }
    }
    Ok(())
}

/// Reader thread: lines into decoded batches, until end of input, an error, or the engine
/// hanging up. A line longer than `max_bytes` is not read whole: its first `max_bytes` bytes
/// are kept for the dead letter and the rest is skipped, so memory stays bounded.
pub(crate) fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    max_bytes: usize,
    tx: SyncSender<Batch>,
) -> io::Result<()> {
    let mut line = 0u64;
    loop {
        let mut batch = Batch {
            text: Vec::with_capacity(BATCH_LINES * 256),
            lines: Vec::with_capacity(BATCH_LINES),
            last_line: 0,
        };
        let mut at_end = false;
        while batch.lines.len() < BATCH_LINES && batch.text.len() < BATCH_BYTES {
            let start = batch.text.len();
            let Some(len) = read_line(&mut input, &mut batch.text, max_bytes)? else {
                at_end = true;
                break;
            };
            line += 1;
            let mut len = len;
            if line == 1 && batch.text.starts_with(BOM) {
                batch.text.drain(..BOM.len());
                len -= BOM.len();
            }
            let raw = &batch.text[start..];
            if raw.iter().all(u8::is_ascii_whitespace) {
                batch.text.truncate(start);
                continue;
            }
            let event = if len > max_bytes {
                Err(Rejection::new(
                    Reason::TooLarge,
                    format!(
                        "{len} bytes exceeds the limit of {max_bytes} (the dead letter keeps the first {max_bytes})"
                    ),
                ))
            } else {
                decode(raw, max_bytes)
            };
            batch.lines.push(Decoded {
                line,
                span: start..batch.text.len(),
                event,
            });
        }
        batch.last_line = line;
        if tx.send(batch).is_err() || at_end {
            return Ok(());
        }
    }
}

/// A UTF-8 byte order mark, skipped at the start of the input.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads one line and appends at most `keep` bytes of it, without its terminator (`\n` or
/// `\r\n`), to `buf`. Returns the line's length without terminator, or `None` at the end
/// of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, keep: usize) -> io::Result<Option<usize>> {
    let start = buf.len();
    let mut len = 0;
    // The line's last byte so far, kept or not: a `\r` before the `\n` is not counted.
    let mut last = None;
    loop {
        let chunk = match input.fill_buf() {
            Ok([]) if last.is_none() && len == 0 => return Ok(None),
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let newline = memchr::memchr(b'\n', chunk);
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = keep.saturating_sub(buf.len() - start);
        buf.extend_from_slice(&part[..part.len().min(room)]);
        len += part.len();
        last = part.last().copied().or(last);
        let (used, at_end) = (newline.map_or(chunk.len(), |i| i + 1), chunk.is_empty());
        input.consume(used);
        if newline.is_some() || at_end {
            break;
        }
    }
    if last == Some(b'\r') {
        len -= 1;
        buf.truncate(start + len.min(keep));
    }
    Ok(Some(len))
}

/// Engine thread: applies a batch, looking two events ahead so that the memory each event
/// needs is being loaded while the previous ones are applied.
fn apply(engine: &mut Engine<Origin>, batch: &Batch, outbox: &mut Outbox<Origin>) {
    let ticket_of = |i: usize| {
        batch
            .lines
            .get(i)
            .and_then(|d| d.event.as_ref().ok())
            .map(|e| e.ticket_id.as_str())
    };
    for (i, d) in batch.lines.iter().enumerate() {
        if let Some(id) = ticket_of(i + 2) {
            engine.prefetch_lookup(id);
        }
        if let Some(id) = ticket_of(i + 1) {
            engine.prefetch_ticket(id);
        }
        let origin = || Origin {
            line: d.line,
            raw: batch.text[d.span.clone()].to_vec(),
        };
        let outcome = match &d.event {
            Ok(ev) => engine.handle(ev, origin, outbox),
            Err(rejection) => Applied::Rejected(rejection.clone()),
        };
        if let Applied::Rejected(rejection) = outcome {
            outbox.dead.push(DeadLetter {
                payload: origin(),
                rejection,
            });
        }
    }
}

/// Writer thread: formats and writes SLA events and dead letters; returns dead letters by
/// reason.
fn write_outputs(
    rx: Receiver<Emitted>,
    mut output: Sink,
    mut dead_out: Option<Sink>,
    mut progress: Progress,
) -> Result<[u64; Reason::ALL.len()], ReplayError> {
    let mut dead = [0; Reason::ALL.len()];
    for emitted in rx {
        for ev in &emitted.outbox.sla {
            ev.write_json(&mut output.buf);
        }
        output.maybe_flush()?;
        for dl in emitted.outbox.dead {
            dead[dl.rejection.reason as usize] += 1;
            tracing::debug!(line = dl.payload.line, reason = %dl.rejection.reason, detail = %dl.rejection.detail, "dead letter");
            if let Some(out) = dead_out.as_mut() {
                write_dead_letter(&dl.payload, &dl.rejection, &mut out.buf);
                out.maybe_flush()?;
            }
        }
        progress.tick(emitted.last_line);
    }
    output.finish()?;
    if let Some(d) = dead_out {
        d.finish()?;
    }
    progress.clear();
    Ok(dead)
}

/// A dead letter as one JSON line: reason, detail, source line and the original bytes
/// (as text when they are UTF-8, else base64).
fn write_dead_letter(origin: &Origin, rejection: &Rejection, out: &mut Vec<u8>) {
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
    let text = std::str::from_utf8(&origin.raw).ok();
    let record = Record {
        reason: rejection.reason,
        detail: &rejection.detail,
        source: Source { line: origin.line },
        raw: text,
        raw_base64: text
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&origin.raw)),
    };
    serde_json::to_writer(&mut *out, &record).expect("writing to a Vec");
    out.push(b'\n');
}

/// A buffered output file or stdout, flushed in large writes.
struct Sink {
    buf: Vec<u8>,
    writer: Box<dyn Write + Send>,
    path: String,
}

const FLUSH_AT: usize = 1 << 20;

impl Sink {
    /// A file, or stdout for `None` and `-`.
    fn open(path: Option<&Path>) -> Result<Sink, ReplayError> {
        let name = path.map_or_else(|| "-".to_string(), |p| p.display().to_string());
        let writer: Box<dyn Write + Send> = match path {
            Some(p) if p.as_os_str() != "-" => {
                Box::new(std::fs::File::create(p).map_err(|source| ReplayError::Write {
                    path: name.clone(),
                    source,
                })?)
            }
            _ => Box::new(io::stdout()),
        };
        Ok(Sink {
            buf: Vec::with_capacity(FLUSH_AT * 2),
            writer,
            path: name,
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
pub(crate) struct Progress {
    what: &'static str,
    enabled: bool,
    started: WallInstant,
    last: WallInstant,
}

impl Progress {
    /// Progress of command `what`, shown only if `enabled` (stderr is a terminal).
    pub(crate) fn new(what: &'static str, enabled: bool) -> Self {
        let now = WallInstant::now();
        Progress {
            what,
            enabled,
            started: now,
            last: now,
        }
    }

    pub(crate) fn tick(&mut self, lines: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = WallInstant::now();
        let rate = lines as f64 / self.started.elapsed().as_secs_f64();
        eprint!("\r\x1b[K{}: {lines} lines, {rate:.0} lines/s", self.what);
    }

    pub(crate) fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

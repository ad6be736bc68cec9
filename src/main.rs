//! The `slawatch` command: CLI → tracing → config → command → exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use slawatch::calendar::{RANGE_END, RANGE_START};
use slawatch::config::{self, ConfigError};
use slawatch::time::{Instant, parse_rfc3339, wall_now};
use slawatch::{live, replay, report};

/// Real-time customer-service SLA monitoring: clocks per ticket in business time, warnings,
/// breaches, escalations and fulfilments.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run NDJSON ticket events through the engine and write the SLA events they cause.
    Replay {
        /// Configuration file (TOML): engine settings, calendars, policies.
        #[arg(long, env = "SLAWATCH_CONFIG")]
        config: PathBuf,
        /// Input events, one JSON object per line; `-` is stdin.
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// Where SLA events go, one JSON object per line; `-` is stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Where dead letters go (one JSON object per line with reason, detail, line and the
        /// original text); without it they are only counted.
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// At end of input, move the frontier to this instant (RFC 3339) instead of the
        /// largest occurred_at seen, emitting the alerts due by then.
        #[arg(long, value_parser = parse_instant)]
        until: Option<Instant>,
    },
    /// Review the standards over recorded events: execution rate, breaches, response times,
    /// complaints, satisfaction, by day and attribute; with --compare, what a candidate
    /// configuration would have changed.
    Report {
        /// Configuration in force (TOML).
        #[arg(long, env = "SLAWATCH_CONFIG")]
        config: PathBuf,
        /// Input events, one JSON object per line; `-` is stdin.
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// A candidate configuration to run the same events under, side by side.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Count only what happens from this instant (RFC 3339); earlier events still run.
        #[arg(long, value_parser = parse_instant)]
        from: Option<Instant>,
        /// Count only what happens before this instant, and move the frontier there at the
        /// end (as `replay --until`).
        #[arg(long, value_parser = parse_instant)]
        until: Option<Instant>,
        /// Time zone of the days (IANA name).
        #[arg(long, default_value = "UTC", value_parser = parse_time_zone)]
        time_zone: chrono_tz::Tz,
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// Where the report goes; `-` is stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
    },
    /// Monitor live: consume ticket events from Kafka (or the embedded broker), publish SLA
    /// events and dead letters, until SIGINT or SIGTERM.
    Run {
        /// Configuration file (TOML): [kafka], [run], [simulator], engine, calendars, policies.
        #[arg(long, env = "SLAWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Generate realistic, deterministic ticket traffic: NDJSON (the input format of `replay`),
    /// or records on a Kafka topic with --brokers.
    Simulate {
        /// Number of tickets; every ticket's lifecycle is written to its end. Default: 300, or
        /// no end when publishing at a --rate.
        #[arg(long)]
        tickets: Option<u64>,
        /// Seed: the same seed and options give the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First arrival (RFC 3339).
        #[arg(long, value_parser = parse_instant, default_value = "2026-11-24T06:00:00Z")]
        start: Instant,
        /// Mean arrivals per hour at the daily peak.
        #[arg(long, default_value_t = 40.0)]
        peak_per_hour: f64,
        /// Ticket id prefix.
        #[arg(long, default_value = "T-")]
        prefix: String,
        /// Where to write; `-` is stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Publish to this Kafka bootstrap list instead of writing a file, keyed by ticket id.
        #[arg(long)]
        brokers: Option<String>,
        /// Topic to publish to.
        #[arg(long, default_value = "ticket-events", requires = "brokers")]
        topic: String,
        /// Publish live: a working day from now on, this many ticket arrivals per minute at the
        /// daily peak, each event when the wall clock reaches its timestamp (ignores --start
        /// and --peak-per-hour). Without it, events are historic and sent as fast as possible.
        #[arg(long, requires = "brokers")]
        rate: Option<f64>,
        /// With --rate: simulated seconds per second.
        #[arg(long, default_value_t = 60.0, requires = "rate")]
        speed: f64,
    },
    /// Validate a configuration: exit 0 if usable (printing warnings), 2 if not.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, env = "SLAWATCH_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Html,
    Json,
    Markdown,
}

fn parse_time_zone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse().map_err(|_| format!("{s:?} is not an IANA time zone name"))
}

fn parse_instant(s: &str) -> Result<Instant, String> {
    let t = parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 timestamp with offset"))?;
    if !(RANGE_START..RANGE_END).contains(&t) {
        return Err(format!("{s:?} is outside the supported range 1970-01-01 to 2099-12-31"));
    }
    Ok(t)
}

/// Whether standard output was closed when the process started (`slawatch replay >&-`).
/// Rust's runtime puts `/dev/null` in place of a closed standard descriptor before `main`,
/// which would make every write succeed; this constructor runs before that.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = {
    extern "C" fn note() {
        // SAFETY: fcntl(F_GETFD) only queries the descriptor.
        let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
        STDOUT_CLOSED.store(closed, Ordering::Relaxed);
    }
    note
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::CheckConfig { config } => match load(&config, false) {
            Ok(loaded) => {
                // Only `run` needs Kafka: a warning here, an error there.
                if loaded.live.brokers == slawatch::live::Brokers::Unset {
                    eprintln!("warning: {}", slawatch::live::BROKERS_UNSET);
                }
                eprintln!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config } => {
            let loaded = match load(&config, true) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            run(loaded)
        }
        Command::Simulate {
            tickets,
            seed,
            start,
            peak_per_hour,
            prefix,
            output,
            brokers,
            topic,
            rate,
            speed,
        } => {
            let mut cfg = match rate {
                Some(rate) => live::Feed::live_sim(seed, tickets.unwrap_or(u64::MAX), rate, speed, wall_now()),
                None => slawatch::sim::SimConfig::new(seed, tickets.unwrap_or(300), start, peak_per_hour),
            };
            cfg.id_prefix = prefix;
            if let Some(bootstrap) = brokers {
                let feed = live::Feed {
                    bootstrap,
                    client: Default::default(),
                    topic,
                    partitioner: slawatch::partitioner::Partitioner::Murmur2,
                    sim: cfg,
                    paced: rate.is_some(),
                };
                let stop = stop_on_signal();
                return match live::feed(&feed, &stop) {
                    Ok(n) => {
                        eprintln!("slawatch: published {n} events to {}", feed.topic);
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("slawatch: publishing to {}: {e}", feed.topic);
                        ExitCode::from(1)
                    }
                };
            }
            match write_simulation(&cfg, &output) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slawatch: writing {}: {e}", output.display());
                    ExitCode::from(1)
                }
            }
        }
        Command::Report {
            config,
            input,
            compare,
            from,
            until,
            time_zone,
            format,
            output,
        } => {
            let rules = match load(&config, false) {
                Ok(loaded) => loaded.rules,
                Err(code) => return code,
            };
            let candidate = match compare.as_deref().map(|c| load(c, false)).transpose() {
                Ok(loaded) => loaded.map(|l| l.rules),
                Err(code) => return code,
            };
            let opts = report::Options {
                input: Some(&input),
                from,
                until,
                time_zone,
                progress: true,
            };
            let report = match report::run(rules, candidate, &opts) {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("slawatch: {e}");
                    return ExitCode::from(1);
                }
            };
            let names: Vec<String> = std::iter::once(&config)
                .chain(&compare)
                .map(|p| p.display().to_string())
                .collect();
            let files: Vec<&str> = names.iter().map(String::as_str).collect();
            let text = match format {
                ReportFormat::Json => report::render::to_json(&report, &files).to_string() + "\n",
                ReportFormat::Markdown => report::render::to_markdown(&report, &files),
                ReportFormat::Html => report::html::to_html(&report, &files),
            };
            match write_text(&output, &text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slawatch: writing {}: {e}", output.display());
                    ExitCode::from(1)
                }
            }
        }
        Command::Replay {
            config,
            input,
            output,
            dead_letter,
            until,
        } => {
            let rules = match load(&config, false) {
                Ok(loaded) => loaded.rules,
                Err(code) => return code,
            };
            let to_stdout = |p: &std::path::Path| p.as_os_str() == "-";
            if STDOUT_CLOSED.load(Ordering::Relaxed)
                && (to_stdout(&output) || dead_letter.as_deref().is_some_and(to_stdout))
            {
                eprintln!("slawatch: writing -: standard output is closed");
                return ExitCode::from(1);
            }
            let opts = replay::Options {
                input: Some(input),
                output: Some(output),
                dead_letter,
                until,
                progress: true,
            };
            match replay::run(rules, &opts) {
                Ok(summary) => {
                    eprintln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("slawatch: {e}");
                    ExitCode::from(if matches!(e, replay::ReplayError::SameFile { .. }) {
                        2
                    } else {
                        1
                    })
                }
            }
        }
    }
}

/// Standard output for `-` (an error if it was closed), else the file, created.
fn open_output(output: &std::path::Path) -> std::io::Result<Box<dyn std::io::Write>> {
    if output.as_os_str() != "-" {
        return Ok(Box::new(std::fs::File::create(output)?));
    }
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "standard output is closed",
        ));
    }
    Ok(Box::new(std::io::stdout().lock()))
}

fn write_text(output: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut out = open_output(output)?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn write_simulation(cfg: &slawatch::sim::SimConfig, output: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, open_output(output)?);
    for ev in slawatch::sim::generate(cfg) {
        out.write_all(ev.json.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// `slawatch run`: exit 0 after a clean stop, 2 for configuration problems, 1 otherwise.
fn run(loaded: config::Loaded) -> ExitCode {
    let stop = stop_on_signal();
    let grace = loaded.live.shutdown_grace;
    let watchdog = stop.clone();
    std::thread::spawn(move || {
        while !watchdog.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Draining and committing must not outlast the grace period (plus a margin to log).
        std::thread::sleep(grace + Duration::from_secs(1));
        tracing::error!("shutdown grace period exceeded; exiting without a final commit");
        std::process::exit(1);
    });
    match live::run(loaded.live, loaded.rules, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(if e.is_config() { 2 } else { 1 })
        }
    }
}

/// A flag set on the first SIGINT or SIGTERM.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a signal runtime");
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        tracing::info!("signal received: stopping");
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// Loads and validates the configuration, printing warnings; a problem exits with 2. The
/// service (`to_log`) says so in its log format, so a JSON log holds only JSON lines; the
/// commands a person runs print plain lines.
fn load(path: &std::path::Path, to_log: bool) -> Result<config::Loaded, ExitCode> {
    match config::load(Some(path)) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                if to_log {
                    tracing::warn!("configuration: {w}");
                } else {
                    eprintln!("warning: {w}");
                }
            }
            Ok(loaded)
        }
        Err(e) => {
            let text = match e {
                ConfigError::Read { .. } => e.to_string(),
                ConfigError::Load(_) => format!("cannot load configuration {}:\n{e}", path.display()),
                ConfigError::Invalid(_) => format!("invalid configuration {}:\n{e}", path.display()),
            };
            if to_log {
                tracing::error!("{text}");
            } else {
                eprintln!("slawatch: {text}");
            }
            Err(ExitCode::from(2))
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal, never in a file or a log pipeline.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        // Input strings (ticket ids, error texts) with their control characters escaped.
        LogFormat::Human => builder.fmt_fields(slawatch::logging::EscapedFields).init(),
        LogFormat::Json => builder.json().init(),
    }
}

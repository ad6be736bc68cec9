//! The `slawatch` command: CLI → tracing → config → command → exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use slawatch::config::{self, ConfigError};
use slawatch::replay;
use slawatch::time::{Instant, parse_rfc3339};

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
        #[arg(long)]
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
    /// Write realistic, deterministic ticket traffic as NDJSON (the input format of `replay`).
    Simulate {
        /// Number of tickets; every ticket's lifecycle is written to its end.
        #[arg(long, default_value_t = 300)]
        tickets: u64,
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
    },
    /// Validate a configuration: exit 0 if usable (printing warnings), 2 if not.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
}

fn parse_instant(s: &str) -> Result<Instant, String> {
    parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 timestamp with offset"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                eprintln!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Simulate {
            tickets,
            seed,
            start,
            peak_per_hour,
            prefix,
            output,
        } => {
            let cfg = slawatch::sim::SimConfig {
                seed,
                tickets,
                start_ms: start,
                peak_per_hour,
                id_prefix: prefix,
            };
            match write_simulation(&cfg, &output) {
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
            let rules = match load(&config) {
                Ok(rules) => rules,
                Err(code) => return code,
            };
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
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn write_simulation(cfg: &slawatch::sim::SimConfig, output: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut out: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(output)?)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut out);
    for ev in slawatch::sim::generate(cfg) {
        out.write_all(ev.json.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Loads and validates the configuration, printing warnings; a problem exits with 2.
fn load(path: &std::path::Path) -> Result<std::sync::Arc<slawatch::policy::Rules>, ExitCode> {
    match config::load(Some(path)) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded.rules)
        }
        Err(e) => {
            let what = match e {
                ConfigError::Load(_) => "cannot load",
                ConfigError::Invalid(_) => "invalid",
            };
            eprintln!("slawatch: {what} configuration {}:\n{e}", path.display());
            Err(ExitCode::from(2))
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

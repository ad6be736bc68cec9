//! Configuration: the serde tree of the TOML file, layering, and validation into [`Rules`].
//!
//! Layers, later wins: built-in defaults → the file → environment variables
//! `SLAWATCH__SECTION__KEY` (e.g. `SLAWATCH__ENGINE__ORPHAN_HOLD=2m`). Unknown keys are
//! rejected. [`FileConfig::validate`] reports every problem at once, each with the key path
//! that caused it (`policy[2].targets.resolution.urgent: invalid duration "4x"`), and collects
//! warnings for settings that are legal but probably not meant.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, RANGE_START};
use crate::event::{Channel, Kind, Priority, Status, Vocabulary};
use crate::live::{self, Guarantee};
use crate::notify::AlertingSection;
use crate::partitioner::Partitioner;
use crate::policy::{Clock, EngineSettings, Matcher, NamedCalendar, Policy, Rules, Warning};
use crate::time::{parse_duration, uses_days};

/// A configuration that cannot be used; `Display` lists every problem, one per line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not TOML, or a value does not fit its key's type.
    #[error("{}", load_problems(.0))]
    Load(#[source] Box<figment::Error>),
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A validated configuration and the warnings found while validating it.
pub struct Loaded {
    pub rules: Arc<Rules>,
    /// Settings of `slawatch run`.
    pub live: live::Settings,
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub calendar: Vec<CalendarSection>,
    #[serde(default)]
    pub policy: Vec<PolicySection>,
    #[serde(default)]
    pub kafka: KafkaSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub simulator: SimulatorSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub alerting: AlertingSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub listen: String,
    pub api_token: Option<String>,
    pub api_token_file: Option<String>,
    pub header_timeout: String,
    pub request_timeout: String,
    pub max_connections: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "127.0.0.1:9797".into(),
            api_token: None,
            api_token_file: None,
            header_timeout: "10s".into(),
            request_timeout: "30s".into(),
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// Bootstrap servers, or "embedded"; no default, so a production instance never starts
    /// on the demo broker by accident.
    pub brokers: Option<String>,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dead_letter_topic: String,
    /// The shards' state (exactly-once); default `{group_id}-changelog`.
    pub changelog_topic: Option<String>,
    /// The output producer's transactional id (exactly-once); default `{group_id}-{host name}`.
    pub transactional_id: Option<String>,
    pub embedded_partitions: i32,
    /// How producers map ticket ids to input partitions.
    pub partitioner: Partitioner,
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            brokers: None,
            group_id: "slawatch".into(),
            input_topics: vec!["ticket-events".into()],
            output_topic: "sla-events".into(),
            dead_letter_topic: "slawatch-dead-letters".into(),
            changelog_topic: None,
            transactional_id: None,
            embedded_partitions: 3,
            partitioner: Partitioner::Murmur2,
            client: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    pub guarantee: Guarantee,
    pub commit_interval: String,
    pub shutdown_grace: String,
    pub caught_up_window: String,
    pub merge_buffer: usize,
    pub log_sla_events: LogSlaEvents,
}

/// `run.log_sla_events`: `true` (INFO), `false`, or the level as a word.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum LogSlaEvents {
    On(bool),
    Level(String),
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            guarantee: Guarantee::ExactlyOnce,
            commit_interval: "1s".into(),
            shutdown_grace: "10s".into(),
            caught_up_window: "3s".into(),
            merge_buffer: 10_000,
            log_sla_events: LogSlaEvents::On(true),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorSection {
    pub enabled: bool,
    pub rate: f64,
    pub speed: f64,
    pub seed: u64,
    pub topic: Option<String>,
}

impl Default for SimulatorSection {
    fn default() -> Self {
        SimulatorSection {
            enabled: false,
            rate: 20.0,
            speed: 60.0,
            seed: 1,
            topic: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    pub allowed_lateness: String,
    pub idle_grace: String,
    pub max_clock_skew: String,
    pub orphan_hold: String,
    pub max_orphans: usize,
    pub max_orphan_bytes: usize,
    pub max_tickets: usize,
    pub max_event_bytes: usize,
    pub ticket_retention: String,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            allowed_lateness: "0s".into(),
            idle_grace: "5s".into(),
            max_clock_skew: "5m".into(),
            orphan_hold: "1m".into(),
            max_orphans: 100_000,
            max_orphan_bytes: 64 << 20,
            max_tickets: 10_000_000,
            max_event_bytes: 64 * 1024,
            ticket_retention: "7d".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSection {
    pub name: String,
    pub timezone: String,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub hours: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub name: String,
    #[serde(default = "default_calendar")]
    pub calendar: String,
    pub pause_statuses: Option<Vec<String>>,
    #[serde(default)]
    pub warn_at: Vec<f64>,
    #[serde(default)]
    pub escalate_after: Vec<String>,
    #[serde(default, rename = "match")]
    pub matcher: MatchSection,
    #[serde(default)]
    pub targets: BTreeMap<String, BTreeMap<String, String>>,
}

fn default_calendar() -> String {
    "24x7".into()
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MatchSection {
    pub priority: Option<Vec<String>>,
    pub channel: Option<Vec<String>>,
    pub kind: Option<Vec<String>>,
    pub group: Option<Vec<String>>,
    pub customer_tier: Option<Vec<String>>,
    pub tags_any: Option<Vec<String>>,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Limits that keep per-ticket state compact (README, Configuration).
const MAX_FRACTIONS: usize = 16;
const MAX_TAGS_ANY: usize = 64;
const MAX_ESCALATIONS: usize = 8;

/// Files larger than this are refused before parsing: 10,000 policies with all twelve targets
/// take about 4 MiB.
const MAX_CONFIG_BYTES: u64 = 8 << 20;
const MAX_POLICIES: usize = 10_000;
const MAX_CALENDARS: usize = 256;
/// Weekly windows across all calendars: each takes about 110 KB of tables for 1970–2099.
const MAX_WEEKLY_WINDOWS: usize = 4_096;

/// Reads `path` (if given), applies the environment layer and validates.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let mut figment = Figment::new();
    let mut empty_file = None;
    if let Some(path) = path {
        let text = read_limited(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            empty_file = Some(format!(
                "config file {} is empty: every setting takes its default",
                path.display()
            ));
        }
        figment = figment.merge(Toml::string(&text));
    }
    figment = figment.merge(Env::prefixed("SLAWATCH__").split("__"));
    let file: FileConfig = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
    let mut loaded = file.validate()?;
    loaded.warnings.splice(0..0, empty_file);
    Ok(loaded)
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than the limit of {} MiB",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    Ok(text)
}

/// One line per loader problem, its key in the form validation uses (`policy[0].warn_at[0]`),
/// and the environment variable when the value came from one.
fn load_problems(e: &figment::Error) -> String {
    let lines: Vec<String> = e
        .clone()
        .into_iter()
        .map(|e| {
            let mut key = String::new();
            for part in &e.path {
                if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                    key.push_str(&format!("[{part}]"));
                } else {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(part);
                }
            }
            let from_env = e.metadata.as_ref().is_some_and(|md| md.name.contains("environment"));
            match (key.is_empty(), from_env) {
                (true, _) => e.kind.to_string(),
                (false, false) => format!("{key}: {}", e.kind),
                (false, true) => format!(
                    "{key} (from SLAWATCH__{}): {}",
                    e.path.join("__").to_ascii_uppercase(),
                    e.kind
                ),
            }
        })
        .collect();
    lines.join("\n")
}

/// Parses a configuration from TOML text (no environment layer); for tests and tools.
pub fn from_toml(text: &str) -> Result<Loaded, ConfigError> {
    let file: FileConfig = Figment::from(Toml::string(text))
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))?;
    file.validate()
}

/// Collects problems and warnings while compiling.
#[derive(Default)]
pub(crate) struct Report {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Report {
    pub(crate) fn problem(&mut self, key: impl std::fmt::Display, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    pub(crate) fn duration(&mut self, key: &str, text: &str) -> i64 {
        parse_duration(text).unwrap_or_else(|| {
            self.problem(
                key,
                format_args!("invalid duration {text:?} (use e.g. 90s, 15m, 4h, 1h30m, 2d)"),
            );
            0
        })
    }

    pub(crate) fn positive_duration(&mut self, key: &str, text: &str) -> i64 {
        let d = self.duration(key, text);
        if d == 0 && parse_duration(text).is_some() {
            self.problem(key, "must be greater than zero");
        }
        d
    }

    pub(crate) fn words<T: Vocabulary>(&mut self, key: &str, values: &[String]) -> Vec<T> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let parsed = T::parse(v);
                if parsed.is_none() {
                    self.problem(
                        format_args!("{key}[{i}]"),
                        format_args!("{v:?} is not one of {}", T::WORDS.join(", ")),
                    );
                }
                parsed
            })
            .collect()
    }
}

impl FileConfig {
    /// Compiles the file into [`Rules`], reporting every problem with its key.
    pub fn validate(&self) -> Result<Loaded, ConfigError> {
        let mut r = Report::default();
        let windows = self.calendar.iter().flat_map(|c| c.hours.values()).map(Vec::len).sum();
        for (key, len, max, what) in [
            ("policy", self.policy.len(), MAX_POLICIES, "policies"),
            ("calendar", self.calendar.len(), MAX_CALENDARS, "calendars"),
            ("calendar[*].hours", windows, MAX_WEEKLY_WINDOWS, "windows a week"),
        ] {
            if len > max {
                r.problem(key, format_args!("{len} {what}, more than the limit of {max}"));
            }
        }
        if !r.problems.is_empty() {
            return Err(ConfigError::Invalid(r.problems));
        }
        let engine = self.engine(&mut r);
        let live = self.live(&mut r);
        let calendars = self.calendars(&mut r);
        let by_name: HashMap<&str, usize> = calendars.iter().enumerate().rev().map(|(i, c)| (&*c.name, i)).collect();
        let mut interned = Interned::default();
        let policies: Vec<Policy> = self
            .policy
            .iter()
            .enumerate()
            .map(|(i, p)| p.compile(i, &calendars, &by_name, &mut interned, &mut r))
            .collect();
        let mut seen = HashMap::new();
        for (i, p) in self.policy.iter().enumerate() {
            if let Some(first) = seen.insert(p.name.as_str(), i) {
                r.problem(
                    format_args!("policy[{i}].name"),
                    format_args!("{:?} is already the name of policy[{first}]", p.name),
                );
            }
        }
        if self.policy.is_empty() {
            r.warnings
                .push("policy: there are no policies, so no ticket gets an SLA clock".into());
        }
        if interned.fractions.len() > MAX_FRACTIONS {
            r.problem(
                "policy[*].warn_at",
                format_args!("more than {MAX_FRACTIONS} distinct fractions across all policies"),
            );
        }
        if interned.tags.len() > MAX_TAGS_ANY {
            r.problem(
                "policy[*].match.tags_any",
                format_args!("more than {MAX_TAGS_ANY} distinct tags across all policies"),
            );
        }
        if !r.problems.is_empty() {
            return Err(ConfigError::Invalid(r.problems));
        }
        let rules = Rules {
            engine,
            calendars,
            policies,
            fractions: interned.fractions,
            tag_bits: interned.tags,
            groups: interned.groups.list,
            tiers: interned.tiers.list,
            fingerprint: self.rules_fingerprint(),
        };
        Ok(Loaded {
            rules: Arc::new(rules),
            live,
            warnings: r.warnings,
        })
    }

    fn rules_fingerprint(&self) -> u64 {
        let sections = serde_json::json!({"engine": self.engine, "calendars": self.calendar, "policies": self.policy});
        xxhash_rust::xxh3::xxh3_64(sections.to_string().as_bytes())
    }

    fn engine(&self, r: &mut Report) -> EngineSettings {
        let e = &self.engine;
        let settings = EngineSettings {
            allowed_lateness: r.duration("engine.allowed_lateness", &e.allowed_lateness),
            idle_grace: r.duration("engine.idle_grace", &e.idle_grace),
            max_clock_skew: r.duration("engine.max_clock_skew", &e.max_clock_skew),
            orphan_hold: r.duration("engine.orphan_hold", &e.orphan_hold),
            max_orphans: e.max_orphans,
            max_orphan_bytes: e.max_orphan_bytes,
            max_tickets: e.max_tickets,
            max_event_bytes: e.max_event_bytes,
            ticket_retention: r.duration("engine.ticket_retention", &e.ticket_retention),
        };
        for (key, v) in [
            ("engine.max_tickets", e.max_tickets),
            ("engine.max_event_bytes", e.max_event_bytes),
        ] {
            if v == 0 {
                r.problem(key, "must be greater than zero");
            }
        }
        if e.max_tickets > u32::MAX as usize - 1 {
            r.problem("engine.max_tickets", format_args!("must be at most {}", u32::MAX - 1));
        }
        // A held event is kept (and saved to the changelog) as its dead letter copies it.
        if e.max_event_bytes > live::DEAD_LETTER_COPY {
            r.problem(
                "engine.max_event_bytes",
                format_args!("must be at most {}", live::DEAD_LETTER_COPY),
            );
        }
        if e.max_orphan_bytes < e.max_event_bytes {
            r.problem(
                "engine.max_orphan_bytes",
                format_args!("must be at least engine.max_event_bytes ({})", e.max_event_bytes),
            );
        }
        settings
    }

    fn live(&self, r: &mut Report) -> live::Settings {
        let k = &self.kafka;
        let policies: Vec<&str> = self.policy.iter().map(|p| p.name.as_str()).collect();
        let mut wall = |key: &str, text: &str| std::time::Duration::from_millis(r.positive_duration(key, text) as u64);
        let commit_interval = wall("run.commit_interval", &self.run.commit_interval);
        let shutdown_grace = wall("run.shutdown_grace", &self.run.shutdown_grace);
        let caught_up_window = wall("run.caught_up_window", &self.run.caught_up_window);
        let http_limits = crate::http::Limits {
            header_timeout: wall("http.header_timeout", &self.http.header_timeout),
            request_timeout: wall("http.request_timeout", &self.http.request_timeout),
            max_connections: self.http.max_connections,
        };
        let changelog_topic = k
            .changelog_topic
            .clone()
            .unwrap_or_else(|| format!("{}-changelog", k.group_id));
        let mut names = HashMap::new();
        for (key, topic) in k
            .input_topics
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("kafka.input_topics[{i}]"), t))
            .chain([
                ("kafka.output_topic".to_string(), &k.output_topic),
                ("kafka.dead_letter_topic".to_string(), &k.dead_letter_topic),
                ("kafka.changelog_topic".to_string(), &changelog_topic),
            ])
        {
            if topic.is_empty() {
                r.problem(&key, "must not be empty");
            } else if let Some(first) = names.insert(topic.as_str(), key.clone()) {
                r.problem(&key, format_args!("topic {topic:?} is already {first}"));
            }
        }
        if k.input_topics.is_empty() {
            r.problem("kafka.input_topics", "needs at least one topic");
        }
        for (key, empty) in [
            ("kafka.brokers", k.brokers.as_ref().is_some_and(String::is_empty)),
            ("kafka.group_id", k.group_id.is_empty()),
            (
                "kafka.transactional_id",
                k.transactional_id.as_ref().is_some_and(String::is_empty),
            ),
        ] {
            if empty {
                r.problem(key, "must not be empty");
            }
        }
        if self.run.merge_buffer < 1 {
            r.problem("run.merge_buffer", "must be at least 1");
        }
        if k.embedded_partitions < 1 {
            r.problem("kafka.embedded_partitions", "must be at least 1");
        }
        let http_listen = self.http.listen.parse().unwrap_or_else(|_| {
            r.problem("http.listen", "must be IP:PORT, e.g. \"127.0.0.1:9797\"");
            std::net::SocketAddr::from(([127, 0, 0, 1], 0))
        });
        if !(1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&self.http.max_connections) {
            r.problem("http.max_connections", "must be at least 1 (and below 2^61)");
        }
        let s = &self.simulator;
        for (key, v) in [("simulator.rate", s.rate), ("simulator.speed", s.speed)] {
            if !(v > 0.0 && v.is_finite()) {
                r.problem(key, "must be a positive number");
            }
        }
        let topic = s
            .topic
            .clone()
            .unwrap_or_else(|| k.input_topics.first().cloned().unwrap_or_default());
        if s.enabled && !k.input_topics.contains(&topic) {
            r.problem(
                "simulator.topic",
                format_args!("{topic:?} is not one of kafka.input_topics"),
            );
        }
        live::Settings {
            brokers: match k.brokers.as_deref() {
                None => live::Brokers::Unset,
                Some("embedded") => live::Brokers::Embedded,
                Some(servers) => live::Brokers::Servers(servers.to_owned()),
            },
            group_id: k.group_id.clone(),
            input_topics: k.input_topics.clone(),
            output_topic: k.output_topic.clone(),
            dead_letter_topic: k.dead_letter_topic.clone(),
            changelog_topic,
            transactional_id: k.transactional_id.clone(),
            guarantee: self.run.guarantee,
            client: client_properties(&k.client, r),
            embedded_partitions: k.embedded_partitions,
            partitioner: k.partitioner,
            commit_interval,
            shutdown_grace,
            caught_up_window,
            merge_buffer: self.run.merge_buffer,
            sla_event_level: match &self.run.log_sla_events {
                LogSlaEvents::On(on) => on.then_some(tracing::Level::INFO),
                LogSlaEvents::Level(word) => match word.as_str() {
                    "info" => Some(tracing::Level::INFO),
                    "debug" => Some(tracing::Level::DEBUG),
                    "off" => None,
                    _ => {
                        r.problem(
                            "run.log_sla_events",
                            format_args!("{word:?} is not one of true, false, info, debug, off"),
                        );
                        None
                    }
                },
            },
            http_listen,
            http_limits,
            api_token: match (&self.http.api_token, &self.http.api_token_file) {
                (token, None) => token.clone().filter(|t| !t.is_empty()),
                (None, Some(path)) => Some(read_secret("http.api_token_file", path, r)),
                (Some(_), Some(_)) => {
                    r.problem("http.api_token_file", "set either http.api_token or this, not both");
                    None
                }
            },
            catalogue: serde_json::json!({"policies": self.policy, "calendars": self.calendar}),
            alerting: self.alerting.validate(&policies, r),
            simulator: s.enabled.then_some(live::SimSettings {
                rate: s.rate,
                speed: s.speed,
                seed: s.seed,
                topic,
            }),
        }
    }

    fn calendars(&self, r: &mut Report) -> Vec<NamedCalendar> {
        let mut out = vec![NamedCalendar {
            name: "24x7".into(),
            calendar: Arc::new(Calendar::always()),
        }];
        for (i, c) in self.calendar.iter().enumerate() {
            let key = format!("calendar[{i}]");
            if c.name.is_empty() {
                r.problem(format_args!("{key}.name"), "must not be empty");
            } else if c.name == "24x7" {
                r.problem(
                    format_args!("{key}.name"),
                    "\"24x7\" is built in and cannot be redefined",
                );
            } else if out.iter().any(|o| *o.name == c.name) {
                r.problem(
                    format_args!("{key}.name"),
                    format_args!("duplicate calendar name {:?}", c.name),
                );
            }
            // A bad zone is reported here alone: UTC stands in, so that the policies naming
            // this calendar do not also report it as unknown.
            let tz = c.timezone.parse().unwrap_or_else(|_| {
                r.problem(
                    format_args!("{key}.timezone"),
                    format_args!("unknown IANA time zone {:?}", c.timezone),
                );
                chrono_tz::UTC
            });
            let holidays: Vec<NaiveDate> = c
                .holidays
                .iter()
                .enumerate()
                .filter_map(|(h, d)| {
                    let parsed = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
                    if parsed.is_none() {
                        r.problem(
                            format_args!("{key}.holidays[{h}]"),
                            format_args!("{d:?} is not a date YYYY-MM-DD"),
                        );
                    }
                    parsed
                })
                .collect();
            let mut week: [Vec<(u32, u32)>; 7] = Default::default();
            for (day, windows) in &c.hours {
                let Some(w) = WEEKDAYS.iter().position(|d| d == day) else {
                    r.problem(
                        format_args!("{key}.hours.{day}"),
                        "unknown weekday (use mon, tue, wed, thu, fri, sat, sun)",
                    );
                    continue;
                };
                week[w] = windows
                    .iter()
                    .enumerate()
                    .filter_map(|(j, text)| parse_window(&format!("{key}.hours.{day}[{j}]"), text, r))
                    .collect();
                week[w].sort_unstable();
                if week[w].windows(2).any(|pair| pair[0].1 > pair[1].0) {
                    r.problem(format_args!("{key}.hours.{day}"), "windows overlap");
                }
            }
            if c.hours.values().all(Vec::is_empty) {
                r.problem(format_args!("{key}.hours"), "a calendar needs at least one window");
            }
            out.push(NamedCalendar {
                name: c.name.as_str().into(),
                calendar: Arc::new(Calendar::new(tz, week, &holidays)),
            });
        }
        out
    }
}

/// The content of the secret file `path` named by `key`, without its trailing line break.
pub(crate) fn read_secret(key: &str, path: &str, r: &mut Report) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.is_empty() {
                r.problem(key, format_args!("{path:?} is empty"));
            }
            secret.to_owned()
        }
        Err(e) => {
            r.problem(key, format_args!("cannot read {path:?}: {e}"));
            String::new()
        }
    }
}

/// `[kafka.client]` as librdkafka properties. Their names have dots and never underscores, so
/// an underscore stands for a dot: `SLAWATCH__KAFKA__CLIENT__SASL_PASSWORD` sets
/// `sasl.password` (an environment variable cannot name a dotted key). A name ending in `_file`
/// names a file holding the value: `sasl.password_file`, `SLAWATCH__KAFKA__CLIENT__SASL_PASSWORD_FILE`.
fn client_properties(client: &BTreeMap<String, String>, r: &mut Report) -> BTreeMap<String, String> {
    client
        .iter()
        .map(|(name, value)| match name.strip_suffix("_file") {
            Some(property) => (
                property.replace('_', "."),
                read_secret(&format!("kafka.client.{name}"), value, r),
            ),
            None => (name.replace('_', "."), value.clone()),
        })
        .collect()
}

/// `HH:MM-HH:MM`, local wall-clock, `24:00` allowed as an end. Milliseconds since midnight.
fn parse_window(key: &str, text: &str, r: &mut Report) -> Option<(u32, u32)> {
    let hm = |s: &str| -> Option<u32> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some((h * 60 + m) * 60_000)
    };
    let parsed = text
        .split_once('-')
        .and_then(|(a, b)| Some((hm(a.trim())?, hm(b.trim())?)));
    match parsed {
        Some((start, end)) if start < end && start < 86_400_000 => {
            if text.trim_end().ends_with("23:59") {
                r.warnings.push(format!(
                    "{key}: ends at 23:59, which leaves out the day's last minute; use 24:00"
                ));
            }
            Some((start, end))
        }
        Some(_) => {
            r.problem(
                key,
                format_args!("{text:?}: a window must start before it ends, within one day"),
            );
            None
        }
        None => {
            r.problem(key, format_args!("{text:?} is not a window HH:MM-HH:MM"));
            None
        }
    }
}

/// Values that policies compare against, given small stable numbers.
#[derive(Default)]
struct Interned {
    fractions: Vec<f64>,
    tags: HashMap<String, u32>,
    groups: Numbered,
    tiers: Numbered,
}

/// Strings numbered in order of first appearance, from 1: id 0 means "none" on a ticket.
#[derive(Default)]
struct Numbered {
    list: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Numbered {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let s: Arc<str> = s.into();
        self.list.push(s.clone());
        let id = self.list.len() as u32;
        self.ids.insert(s, id);
        id
    }
}

impl PolicySection {
    fn compile(
        &self,
        i: usize,
        calendars: &[NamedCalendar],
        by_name: &HashMap<&str, usize>,
        interned: &mut Interned,
        r: &mut Report,
    ) -> Policy {
        let key = format!("policy[{i}]");
        if self.name.is_empty() {
            r.problem(format_args!("{key}.name"), "must not be empty");
        }
        let calendar = by_name.get(self.calendar.as_str()).copied().unwrap_or_else(|| {
            r.problem(
                format_args!("{key}.calendar"),
                format_args!("unknown calendar {:?}", self.calendar),
            );
            0
        });
        let pause = match &self.pause_statuses {
            None => Status::Pending.bit() | Status::OnHold.bit(),
            Some(list) => {
                let statuses = r.words::<Status>(&format!("{key}.pause_statuses"), list);
                if statuses.iter().any(|s| matches!(s, Status::Solved | Status::Closed)) {
                    r.problem(
                        format_args!("{key}.pause_statuses"),
                        "solved and closed end the clock; they cannot pause it",
                    );
                }
                statuses.iter().fold(0, |acc, s| acc | s.bit())
            }
        };
        let mut warnings = Vec::new();
        for (j, &f) in self.warn_at.iter().enumerate() {
            if !(f > 0.0 && f < 1.0) {
                r.problem(
                    format_args!("{key}.warn_at[{j}]"),
                    format_args!("{f} is not a fraction in (0, 1)"),
                );
            } else if warnings.last().is_some_and(|w: &Warning| f <= w.fraction) {
                r.problem(
                    format_args!("{key}.warn_at[{j}]"),
                    "fractions must be strictly increasing",
                );
            } else {
                let bit = interned.fractions.iter().position(|&x| x == f).unwrap_or_else(|| {
                    interned.fractions.push(f);
                    interned.fractions.len() - 1
                });
                warnings.push(Warning {
                    fraction: f,
                    bit: bit.min(MAX_FRACTIONS - 1) as u8,
                });
            }
        }
        let before = r.problems.len();
        let escalate: Vec<i64> = self
            .escalate_after
            .iter()
            .enumerate()
            .map(|(j, text)| r.positive_duration(&format!("{key}.escalate_after[{j}]"), text))
            .collect();
        // The order is checked only when every duration is valid: a bad one stands in as 0.
        if r.problems.len() == before && escalate.windows(2).any(|w| w[0] >= w[1]) {
            r.problem(
                format_args!("{key}.escalate_after"),
                "durations must be strictly increasing",
            );
        }
        if escalate.len() > MAX_ESCALATIONS {
            r.problem(
                format_args!("{key}.escalate_after"),
                format_args!("at most {MAX_ESCALATIONS} levels"),
            );
        }
        let mut targets = [[None; 4]; 3];
        for (clock_name, per_priority) in &self.targets {
            let Some(clock) = Clock::ALL.iter().find(|c| c.as_str() == clock_name) else {
                r.problem(
                    format_args!("{key}.targets.{clock_name}"),
                    "unknown clock (use first_response, next_response, resolution)",
                );
                continue;
            };
            for (priority_name, text) in per_priority {
                let tkey = format!("{key}.targets.{clock_name}.{priority_name}");
                let Some(priority) = Priority::parse(priority_name) else {
                    r.problem(
                        &tkey,
                        format_args!("unknown priority (use {})", Priority::WORDS.join(", ")),
                    );
                    continue;
                };
                let target = r.positive_duration(&tkey, text);
                targets[*clock as usize][priority as usize] = Some(target);
                let named = &calendars[calendar];
                if named.calendar.add(RANGE_START, target).is_none() {
                    r.problem(
                        &tkey,
                        format_args!(
                            "{text:?} is more business time than calendar {:?} has before 2100, so no deadline exists",
                            named.name
                        ),
                    );
                }
                if uses_days(text) && calendar != 0 {
                    r.warnings.push(format!(
                        "{tkey}: {text:?} uses d, which is 24 hours of business time in calendar {:?}, not a working day",
                        self.calendar
                    ));
                }
            }
        }
        if targets.iter().flatten().all(Option::is_none) {
            r.warnings.push(format!(
                "{key}.targets: none, so the tickets this policy matches get no SLA clock"
            ));
        }
        let m = &self.matcher;
        let mkey = format!("{key}.match");
        for (name, list) in [
            ("priority", &m.priority),
            ("channel", &m.channel),
            ("kind", &m.kind),
            ("group", &m.group),
            ("customer_tier", &m.customer_tier),
            ("tags_any", &m.tags_any),
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                r.problem(
                    format_args!("{mkey}.{name}"),
                    "an empty list matches no ticket; leave the key out to match every value",
                );
            }
        }
        let mask = |bits: Option<u8>| bits.unwrap_or(u8::MAX);
        let matcher = Matcher {
            priority: mask(
                m.priority
                    .as_ref()
                    .map(|v| bits(&r.words::<Priority>(&format!("{mkey}.priority"), v))),
            ),
            channel: mask(
                m.channel
                    .as_ref()
                    .map(|v| bits(&r.words::<Channel>(&format!("{mkey}.channel"), v))),
            ),
            kind: mask(
                m.kind
                    .as_ref()
                    .map(|v| bits(&r.words::<Kind>(&format!("{mkey}.kind"), v))),
            ),
            groups: m
                .group
                .as_ref()
                .map(|v| v.iter().map(|g| interned.groups.id(g)).collect()),
            tiers: m
                .customer_tier
                .as_ref()
                .map(|v| v.iter().map(|t| interned.tiers.id(t)).collect()),
            tags_any: m.tags_any.as_ref().map(|v| {
                v.iter().fold(0u64, |acc, t| {
                    let next = interned.tags.len() as u32;
                    let bit = *interned.tags.entry(t.clone()).or_insert(next);
                    acc | 1u64.checked_shl(bit).unwrap_or(0)
                })
            }),
        };
        Policy {
            name: self.name.as_str().into(),
            calendar,
            pause,
            warnings,
            escalate,
            matcher,
            targets,
        }
    }
}

fn bits<T: Vocabulary + Copy>(values: &[T]) -> u8 {
    values.iter().fold(0, |acc, v| acc | v.bit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that each of `expected` begins one of the problems `p`.
    fn assert_reported(p: &[String], expected: &[&str]) {
        for e in expected {
            assert!(p.iter().any(|l| l.starts_with(e)), "missing {e:?} in {p:#?}");
        }
    }

    fn problems(text: &str) -> Vec<String> {
        match from_toml(text) {
            Err(ConfigError::Invalid(p)) => p,
            Err(e) => vec![e.to_string()],
            Ok(_) => vec![],
        }
    }

    #[test]
    fn empty_config_is_valid_with_spec_defaults() {
        let loaded = from_toml("").unwrap();
        let e = &loaded.rules.engine;
        assert_eq!(
            (e.allowed_lateness, e.idle_grace, e.max_clock_skew, e.orphan_hold),
            (0, 5_000, 300_000, 60_000)
        );
        assert_eq!(e.max_event_bytes, 65_536);
        assert_eq!(
            loaded.warnings,
            ["policy: there are no policies, so no ticket gets an SLA clock"]
        );
    }

    #[test]
    fn loader_problems_name_keys_as_validation_does() {
        let p = problems("[[policy]]\nname = \"p\"\nwarn_at = [0.5, \"x\"]\n");
        assert_eq!(
            p,
            ["policy[0].warn_at[1]: invalid type: found string \"x\", expected f64"]
        );
        let p = problems("[engine]\nidle_grace = 5\n");
        assert_eq!(
            p,
            ["engine.idle_grace: invalid type: found signed int `5`, expected a string"]
        );
    }

    #[test]
    fn a_root_cause_is_reported_once() {
        let p = problems(
            r#"
            [[calendar]]
            name = "office"
            timezone = "Europe/Berlln"
            [calendar.hours]
            mon = ["09:00-17:00"]
            [[calendar]]
            name = "shop"
            timezone = "UTC"
            [calendar.hours]
            mon = ["9:00-17:00"]
            [[policy]]
            name = "p"
            calendar = "office"
            warn_at = [0.5, 2.0, 0.75]
            escalate_after = ["1h", "2x"]
            [policy.targets.resolution]
            high = "8h"
            "#,
        );
        assert_eq!(
            p,
            [
                "calendar[0].timezone: unknown IANA time zone \"Europe/Berlln\"",
                "calendar[1].hours.mon[0]: \"9:00-17:00\" is not a window HH:MM-HH:MM",
                "policy[0].warn_at[1]: 2 is not a fraction in (0, 1)",
                "policy[0].escalate_after[1]: invalid duration \"2x\" (use e.g. 90s, 15m, 4h, 1h30m, 2d)",
            ]
        );
    }

    #[test]
    fn rules_that_match_nothing_or_name_nothing_are_errors() {
        let p = problems(
            r#"
            [[calendar]]
            name = ""
            timezone = "UTC"
            [calendar.hours]
            mon = ["09:00-10:00"]
            [[calendar]]
            name = "hour"
            timezone = "UTC"
            [calendar.hours]
            mon = ["09:00-10:00"]
            [[calendar]]
            name = "hour"
            timezone = "UTC"
            [calendar.hours]
            tue = ["09:00-10:00"]
            [[policy]]
            name = ""
            [policy.match]
            priority = []
            channel = []
            kind = []
            group = []
            customer_tier = []
            tags_any = []
            [policy.targets.resolution]
            high = "8h"
            [[policy]]
            name = "p"
            [policy.targets.resolution]
            high = "47500d"
            [[policy]]
            name = "p"
            calendar = "hour"
            [policy.targets.resolution]
            high = "6700h"
            normal = "6800h"
            "#,
        );
        let empty = "an empty list matches no ticket; leave the key out to match every value";
        assert_eq!(
            p,
            [
                "calendar[0].name: must not be empty".to_string(),
                "calendar[2].name: duplicate calendar name \"hour\"".into(),
                "policy[0].name: must not be empty".into(),
                format!("policy[0].match.priority: {empty}"),
                format!("policy[0].match.channel: {empty}"),
                format!("policy[0].match.kind: {empty}"),
                format!("policy[0].match.group: {empty}"),
                format!("policy[0].match.customer_tier: {empty}"),
                format!("policy[0].match.tags_any: {empty}"),
                "policy[1].targets.resolution.high: \"47500d\" is more business time than calendar \"24x7\" has before 2100, so no deadline exists".into(),
                "policy[2].targets.resolution.normal: \"6800h\" is more business time than calendar \"hour\" has before 2100, so no deadline exists".into(),
                "policy[2].name: \"p\" is already the name of policy[1]".into(),
            ]
        );
    }

    #[test]
    fn secrets_come_from_files_and_client_properties_from_underscored_names() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let secret = secret.display();
        let loaded = from_toml(&format!(
            r#"
            [kafka.client]
            "security.protocol" = "SASL_SSL"
            sasl_username = "slawatch"
            "sasl.password_file" = "{secret}"
            [http]
            api_token_file = "{secret}"
            [[alerting.webhook]]
            name = "chat"
            url = "https://hooks.example.com/sla"
            secret_file = "{secret}"
            "#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let live = &loaded.live;
        let client: Vec<(&str, &str)> = live.client.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            client,
            [
                ("sasl.password", "s3cret"),
                ("sasl.username", "slawatch"),
                ("security.protocol", "SASL_SSL")
            ]
        );
        assert_eq!(live.api_token.as_deref(), Some("s3cret"));
        let p = problems(&format!(
            r#"
            [kafka.client]
            "sasl.password_file" = "/nonexistent/secret"
            [http]
            api_token = "t"
            api_token_file = "{secret}"
            [[alerting.webhook]]
            name = "chat"
            url = "https://hooks.example.com/sla"
            secret = "a"
            secret_file = "{secret}"
            "#
        ));
        assert_reported(
            &p,
            &[
                "kafka.client.sasl.password_file: cannot read \"/nonexistent/secret\": No such file",
                "http.api_token_file: set either http.api_token or this, not both",
                "alerting.webhook[0]: needs exactly one of secret, secret_env and secret_file",
            ],
        );
    }

    #[test]
    fn sla_event_lines_take_a_level_or_a_switch() {
        for (value, level) in [
            ("true", Some(tracing::Level::INFO)),
            ("false", None),
            ("\"info\"", Some(tracing::Level::INFO)),
            ("\"debug\"", Some(tracing::Level::DEBUG)),
            ("\"off\"", None),
        ] {
            let loaded = from_toml(&format!("[run]\nlog_sla_events = {value}\n")).unwrap();
            assert_eq!(loaded.live.sla_event_level, level, "{value}");
        }
        assert_eq!(
            problems("[run]\nlog_sla_events = \"loud\"\n"),
            ["run.log_sla_events: \"loud\" is not one of true, false, info, debug, off"]
        );
    }

    #[test]
    fn a_policy_without_targets_is_a_warning() {
        let loaded = from_toml("[[policy]]\nname = \"requests\"\n[policy.match]\nkind = [\"request\"]\n").unwrap();
        assert_eq!(
            loaded.warnings,
            ["policy[0].targets: none, so the tickets this policy matches get no SLA clock"]
        );
    }

    #[test]
    fn policies_and_calendars_are_limited_in_number() {
        let policies = "[[policy]]\nname = \"p\"\n".repeat(MAX_POLICIES + 1);
        let calendars =
            "[[calendar]]\nname = \"c\"\ntimezone = \"UTC\"\nhours.mon = [\"09:00-10:00\"]\n".repeat(MAX_CALENDARS + 1);
        assert_eq!(
            problems(&format!("{policies}{calendars}")),
            [
                "policy: 10001 policies, more than the limit of 10000",
                "calendar: 257 calendars, more than the limit of 256"
            ]
        );
        let windows: Vec<String> = (0..1440)
            .map(|m| format!("\"{:02}:{:02}-24:00\"", m / 60, m % 60))
            .collect();
        let calendars: String = (0..3)
            .map(|i| {
                format!(
                    "[[calendar]]\nname = \"c{i}\"\ntimezone = \"UTC\"\nhours.mon = [{}]\n",
                    windows.join(", ")
                )
            })
            .collect();
        assert_eq!(
            problems(&calendars),
            ["calendar[*].hours: 4320 windows a week, more than the limit of 4096"]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let p = problems(
            r#"
            [[calendar]]
            name = "office"
            timezone = "Mars/Olympus"
            holidays = ["2026-13-01"]
            [calendar.hours]
            mon = ["09:00-12:00", "11:00-13:00"]
            tue = ["17:00-09:00"]
            [[policy]]
            name = "p"
            calendar = "nowhere"
            warn_at = [0.5, 1.5]
            escalate_after = ["2h", "1h"]
            pause_statuses = ["pending", "solved"]
            [policy.match]
            priority = ["urgent", "asap"]
            [policy.targets.resolution]
            urgent = "4x"
            [policy.targets.first_response]
            soon = "1h"
            "#,
        );
        assert_reported(
            &p,
            &[
                "calendar[0].timezone:",
                "calendar[0].holidays[0]:",
                "calendar[0].hours.mon: windows overlap",
                "calendar[0].hours.tue[0]:",
                "policy[0].calendar: unknown calendar",
                "policy[0].warn_at[1]:",
                "policy[0].escalate_after:",
                "policy[0].pause_statuses:",
                "policy[0].match.priority[1]:",
                "policy[0].targets.resolution.urgent: invalid duration \"4x\"",
                "policy[0].targets.first_response.soon:",
            ],
        );
    }

    #[test]
    fn live_mode_problems_name_their_keys() {
        let p = problems(
            r#"
            [kafka]
            brokers = ""
            input_topics = ["events", "events"]
            output_topic = ""
            embedded_partitions = 0
            [run]
            commit_interval = "0s"
            caught_up_window = "soon"
            merge_buffer = 0
            [http]
            listen = "localhost"
            [simulator]
            rate = -1
            "#,
        );
        assert_reported(
            &p,
            &[
                "kafka.brokers: must not be empty",
                "kafka.input_topics[1]: topic \"events\" is already kafka.input_topics[0]",
                "kafka.output_topic: must not be empty",
                "kafka.embedded_partitions:",
                "run.commit_interval: must be greater than zero",
                "run.caught_up_window:",
                "run.merge_buffer:",
                "http.listen:",
                "simulator.rate:",
            ],
        );
    }

    #[test]
    fn exactly_once_settings_default_from_the_group_and_are_checked() {
        let loaded = from_toml("[kafka]\ngroup_id = \"desk\"").unwrap();
        let live = &loaded.live;
        assert_eq!(live.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(
            (live.changelog_topic.as_str(), live.transactional_id.as_deref()),
            ("desk-changelog", None)
        );
        let p = problems("[kafka]\noutput_topic = \"slawatch-changelog\"\ntransactional_id = \"\"\n");
        assert_reported(
            &p,
            &[
                "kafka.changelog_topic: topic \"slawatch-changelog\" is already kafka.output_topic",
                "kafka.transactional_id: must not be empty",
            ],
        );
        let p = problems("[run]\nguarantee = \"twice\"");
        assert!(
            p.iter()
                .any(|e| e.contains("run.guarantee") && e.contains("exactly_once")),
            "{p:?}"
        );
        assert_reported(
            &problems("[engine]\nmax_event_bytes = 300000"),
            &["engine.max_event_bytes: must be at most 262144"],
        );
    }

    #[test]
    fn alerting_problems_name_their_keys() {
        let p = problems(
            r#"
            [[policy]]
            name = "std"
            [alerting]
            resend_interval = "5m"
            expire_after = "1m"
            [[alerting.alertmanager]]
            name = "oncall"
            urls = ["http://am-1:9093", "ftp://am-2", "not a url", "http://am-1:9093/again"]
            ticket_url = "https://desk/{ticket}"
            labels = { alertname = "x", "bad-name" = "y", team = "ok" }
            severity = { escalated = [] }
            match = { types = ["sla.fulfilled"], policy = ["gold"], priority = ["asap"], clock = ["reply"] }
            delivery = { timeout = "0s", queue = 0, retry_initial = "1m", retry_max = "1s" }
            [[alerting.webhook]]
            name = "oncall"
            url = "https://hooks.example.com/sla"
            secret_env = "SLAWATCH_TEST_NO_SUCH_VARIABLE"
            delivery = { batch = 10 }
            [[alerting.webhook]]
            name = "chat"
            url = "https://hooks.example.com/chat"
            "#,
        );
        assert_reported(
            &p,
            &[
                "alerting.expire_after: must be longer than alerting.resend_interval",
                "alerting.alertmanager[0].urls[1]: \"ftp://am-2\" is not an http or https URL",
                "alerting.alertmanager[0].urls[2]: \"not a url\" is not a URL",
                "alerting.alertmanager[0].urls[3]: names an Alertmanager already listed",
                "alerting.alertmanager[0].ticket_url: unknown field {ticket}",
                "alerting.alertmanager[0].labels.alertname: is set by slawatch",
                "alerting.alertmanager[0].labels.bad-name: is not a label name",
                "alerting.alertmanager[0].severity.escalated: needs at least one severity",
                "alerting.alertmanager[0].match.types[0]: \"sla.fulfilled\" is not one of sla.warning, sla.breached, sla.escalated",
                "alerting.alertmanager[0].match.policy[0]: no policy is named \"gold\"",
                "alerting.alertmanager[0].match.priority[0]: \"asap\" is not one of",
                "alerting.alertmanager[0].match.clock[0]: \"reply\" is not one of first_response",
                "alerting.alertmanager[0].delivery.timeout: must be greater than zero",
                "alerting.alertmanager[0].delivery.queue: must be at least 1",
                "alerting.alertmanager[0].delivery.retry_max: must be at least retry_initial",
                "alerting.webhook[0].name: \"oncall\" names another output too",
                "alerting.webhook[0].secret_env: environment variable SLAWATCH_TEST_NO_SUCH_VARIABLE is not set",
                "alerting.webhook[0].delivery.batch: webhooks send one event per request",
                "alerting.webhook[1]: needs exactly one of secret, secret_env and secret_file",
            ],
        );
        assert_eq!(p.len(), 19, "{p:#?}");
    }

    #[test]
    fn distinct_fractions_are_limited_to_what_a_cycle_records() {
        let policy = |i: usize| format!("[[policy]]\nname = \"p{i}\"\nwarn_at = [{}]\n", (i + 1) as f64 / 100.0);
        let ok: String = (0..MAX_FRACTIONS).map(policy).collect();
        assert!(from_toml(&ok).is_ok());
        let too_many: String = (0..=MAX_FRACTIONS).map(policy).collect();
        assert_eq!(
            problems(&too_many),
            vec![format!(
                "policy[*].warn_at: more than {MAX_FRACTIONS} distinct fractions across all policies"
            )]
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let p = problems("[engine]\norphan_hould = \"1m\"\n");
        assert!(p[0].contains("orphan_hould"), "{p:?}");
    }

    #[test]
    fn calendar_without_windows_is_an_error() {
        let p = problems("[[calendar]]\nname = \"c\"\ntimezone = \"UTC\"\n");
        assert_eq!(
            p,
            vec!["calendar[0].hours: a calendar needs at least one window".to_string()]
        );
    }

    #[test]
    fn check_config_warns_on_days_in_business_calendars_and_2359() {
        let loaded = from_toml(
            r#"
            [[calendar]]
            name = "office"
            timezone = "Europe/Berlin"
            [calendar.hours]
            mon = ["09:00-23:59"]
            [[policy]]
            name = "p"
            calendar = "office"
            [policy.targets.resolution]
            low = "2d"
            "#,
        )
        .unwrap();
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml")).unwrap();
        let loaded = from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.rules.policies.len() >= 4);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(loaded.live.alerting.alertmanager.is_empty(), "outputs are opt-in");

        // The commented alerting block, uncommented (its secret's variable is not set here).
        let (_, block) = text.split_once("# --- alerting ---\n").unwrap();
        let block: String = block
            .lines()
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
            .collect();
        let block = block.replace(r#"secret_env = "SLAWATCH_CHAT_SECRET""#, r#"secret = "test""#);
        let loaded = from_toml(&format!("{text}\n{block}")).unwrap_or_else(|e| panic!("{e}"));
        let alerting = &loaded.live.alerting;
        assert_eq!((alerting.alertmanager.len(), alerting.webhook.len()), (1, 1));
    }
}

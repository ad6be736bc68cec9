//! The `[alerting]` section of the configuration file and its validation.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::alertmanager::{Output, Severity};
use super::{Delivery, Filter, Link, Settings, Target, WebhookOutput};
use crate::config::{Report, read_secret};
use crate::engine::SlaKind;
use crate::event::Priority;
use crate::policy::Clock;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingSection {
    pub resend_interval: String,
    pub expire_after: String,
    pub alertmanager: Vec<AlertmanagerSection>,
    pub webhook: Vec<WebhookSection>,
}

impl Default for AlertingSection {
    fn default() -> Self {
        AlertingSection {
            resend_interval: "1m".into(),
            expire_after: "5m".into(),
            alertmanager: Vec::new(),
            webhook: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSection {
    pub name: String,
    /// Every URL gets every alert (an HA pair, or a cluster's members).
    pub urls: Vec<String>,
    pub ticket_url: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub severity: SeveritySection,
    #[serde(default, rename = "match")]
    pub matcher: MatchSection,
    #[serde(default)]
    pub delivery: DeliverySection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub name: String,
    pub url: String,
    pub secret: Option<String>,
    /// The environment variable holding the secret.
    pub secret_env: Option<String>,
    /// A file holding the secret (a mounted Kubernetes Secret, a systemd credential).
    pub secret_file: Option<String>,
    #[serde(default, rename = "match")]
    pub matcher: MatchSection,
    #[serde(default)]
    pub delivery: DeliverySection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeveritySection {
    pub warning: String,
    pub breached: String,
    /// By escalation level; the last one applies to higher levels.
    pub escalated: Vec<String>,
}

impl Default for SeveritySection {
    fn default() -> Self {
        SeveritySection {
            warning: "warning".into(),
            breached: "page".into(),
            escalated: vec!["page".into()],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchSection {
    pub types: Vec<String>,
    pub policy: Option<Vec<String>>,
    pub priority: Option<Vec<String>>,
    pub clock: Option<Vec<String>>,
}

impl Default for MatchSection {
    fn default() -> Self {
        MatchSection {
            types: vec![SlaKind::Breached.as_str().into(), SlaKind::Escalated.as_str().into()],
            policy: None,
            priority: None,
            clock: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    pub timeout: String,
    pub queue: usize,
    /// Alerts per request (Alertmanager only: a webhook request carries one event).
    pub batch: Option<usize>,
    pub retry_initial: String,
    pub retry_max: String,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            timeout: "10s".into(),
            queue: 10_000,
            batch: None,
            retry_initial: "1s".into(),
            retry_max: "1m".into(),
        }
    }
}

/// Labels every alert has; `[alerting.alertmanager.labels]` may not set them.
const OWN_LABELS: [&str; 11] = [
    "alertname",
    "severity",
    "ticket_id",
    "clock",
    "cycle",
    "policy",
    "priority",
    "channel",
    "group",
    "kind",
    "level",
];
/// Alert types Alertmanager outputs page for; the other SLA events resolve alerts.
const PAGED: [SlaKind; 3] = [SlaKind::Warning, SlaKind::Breached, SlaKind::Escalated];

impl AlertingSection {
    /// Validates against the configured policy names.
    pub(crate) fn validate(&self, policies: &[&str], r: &mut Report) -> Settings {
        let resend_interval = r.positive_duration("alerting.resend_interval", &self.resend_interval);
        let expire_after = r.positive_duration("alerting.expire_after", &self.expire_after);
        if expire_after <= resend_interval && resend_interval > 0 {
            r.problem(
                "alerting.expire_after",
                "must be longer than alerting.resend_interval, or alerts expire between re-sends",
            );
        }
        let am_key = |i: usize| format!("alerting.alertmanager[{i}]");
        let hook_key = |i: usize| format!("alerting.webhook[{i}]");
        let mut names = HashSet::new();
        let outputs = (self.alertmanager.iter().enumerate().map(|(i, a)| (am_key(i), &a.name)))
            .chain(self.webhook.iter().enumerate().map(|(i, w)| (hook_key(i), &w.name)));
        for (key, name) in outputs {
            if name.is_empty() {
                r.problem(format_args!("{key}.name"), "must not be empty");
            } else if !names.insert(name) {
                r.problem(
                    format_args!("{key}.name"),
                    format_args!("{name:?} names another output too"),
                );
            }
        }
        let alertmanager = (self.alertmanager.iter().enumerate())
            .map(|(i, a)| a.validate(&am_key(i), policies, r))
            .collect();
        let webhook = (self.webhook.iter().enumerate())
            .map(|(i, w)| w.validate(&hook_key(i), policies, r))
            .collect();
        Settings {
            alertmanager,
            webhook,
            resend_interval,
            expire_after,
        }
    }
}

impl AlertmanagerSection {
    fn validate(&self, key: &str, policies: &[&str], r: &mut Report) -> Output {
        if self.urls.is_empty() {
            r.problem(format_args!("{key}.urls"), "needs at least one Alertmanager URL");
        }
        let mut targets: Vec<Target> = Vec::new();
        for (j, text) in self.urls.iter().enumerate() {
            let Some(mut url) = http_url(r, &format!("{key}.urls[{j}]"), text) else {
                continue;
            };
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            let target = Target::Alertmanager(url);
            if targets.iter().any(|t| t.label() == target.label()) {
                r.problem(format_args!("{key}.urls[{j}]"), "names an Alertmanager already listed");
            }
            targets.push(target);
        }
        for label in self.labels.keys() {
            let valid = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                r.problem(
                    format_args!("{key}.labels.{label}"),
                    "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            } else if OWN_LABELS.contains(&label.as_str()) {
                r.problem(format_args!("{key}.labels.{label}"), "is set by slawatch");
            }
        }
        let s = &self.severity;
        for (k, v) in [("warning", &s.warning), ("breached", &s.breached)]
            .into_iter()
            .chain(s.escalated.iter().map(|v| ("escalated", v)))
        {
            if v.is_empty() {
                r.problem(format_args!("{key}.severity.{k}"), "must not be empty");
            }
        }
        if s.escalated.is_empty() {
            r.problem(format_args!("{key}.severity.escalated"), "needs at least one severity");
        }
        let link = self.ticket_url.as_ref().and_then(|t| {
            Link::parse(t)
                .map_err(|e| r.problem(format_args!("{key}.ticket_url"), e))
                .ok()
        });
        Output {
            name: self.name.clone(),
            targets,
            filter: self.matcher.validate(key, &PAGED, policies, r),
            severity: Severity {
                warning: s.warning.clone(),
                breached: s.breached.clone(),
                escalated: s.escalated.clone(),
            },
            labels: self.labels.clone(),
            link,
            delivery: self.delivery.validate(key, 64, r),
        }
    }
}

impl WebhookSection {
    fn validate(&self, key: &str, policies: &[&str], r: &mut Report) -> WebhookOutput {
        let url = http_url(r, &format!("{key}.url"), &self.url);
        let secret = match (&self.secret, &self.secret_env, &self.secret_file) {
            (Some(s), None, None) => {
                if s.is_empty() {
                    r.problem(format_args!("{key}.secret"), "must not be empty");
                }
                s.clone()
            }
            (None, Some(var), None) => {
                let secret = std::env::var(var).unwrap_or_default();
                if secret.is_empty() {
                    r.problem(
                        format_args!("{key}.secret_env"),
                        format_args!("environment variable {var} is not set or empty"),
                    );
                }
                secret
            }
            (None, None, Some(path)) => read_secret(&format!("{key}.secret_file"), path, r),
            _ => {
                r.problem(key, "needs exactly one of secret, secret_env and secret_file");
                String::new()
            }
        };
        if self.delivery.batch.is_some() {
            r.problem(
                format_args!("{key}.delivery.batch"),
                "webhooks send one event per request",
            );
        }
        WebhookOutput {
            name: self.name.clone(),
            target: Target::Webhook {
                url: url.unwrap_or_else(|| Url::parse("http://invalid/").expect("a URL")),
                secret: Arc::from(secret.into_bytes()),
            },
            filter: self.matcher.validate(key, &SlaKind::ALL, policies, r),
            delivery: self.delivery.validate(key, 1, r),
        }
    }
}

impl MatchSection {
    fn validate(&self, key: &str, allowed: &[SlaKind], policies: &[&str], r: &mut Report) -> Filter {
        let types = named(r, &format!("{key}.match.types"), &self.types, allowed, |k| k.as_str());
        if self.types.is_empty() {
            r.problem(format_args!("{key}.match.types"), "needs at least one SLA event type");
        }
        if let Some(names) = &self.policy {
            for (i, p) in names.iter().enumerate() {
                if !policies.contains(&p.as_str()) {
                    r.problem(
                        format_args!("{key}.match.policy[{i}]"),
                        format_args!("no policy is named {p:?}"),
                    );
                }
            }
        }
        Filter {
            types,
            policies: self.policy.clone(),
            priorities: self
                .priority
                .as_ref()
                .map(|p| r.words::<Priority>(&format!("{key}.match.priority"), p)),
            clocks: self
                .clock
                .as_ref()
                .map(|c| named(r, &format!("{key}.match.clock"), c, &Clock::ALL, |c| c.as_str())),
        }
    }
}

impl DeliverySection {
    fn validate(&self, key: &str, batch: usize, r: &mut Report) -> Delivery {
        let mut wall = |k: &str, text: &str| {
            Duration::from_millis(r.positive_duration(&format!("{key}.delivery.{k}"), text) as u64)
        };
        let d = Delivery {
            timeout: wall("timeout", &self.timeout),
            retry_initial: wall("retry_initial", &self.retry_initial),
            retry_max: wall("retry_max", &self.retry_max),
            queue: self.queue,
            batch: self.batch.unwrap_or(batch),
        };
        for (k, v) in [("queue", d.queue), ("batch", d.batch)] {
            if v == 0 {
                r.problem(format_args!("{key}.delivery.{k}"), "must be at least 1");
            }
        }
        if d.retry_max < d.retry_initial {
            r.problem(
                format_args!("{key}.delivery.retry_max"),
                "must be at least retry_initial",
            );
        }
        d
    }
}

/// An `http` or `https` URL.
fn http_url(r: &mut Report, key: &str, text: &str) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Some(url),
        Ok(_) => {
            r.problem(key, format_args!("{text:?} is not an http or https URL"));
            None
        }
        Err(e) => {
            r.problem(key, format_args!("{text:?} is not a URL: {e}"));
            None
        }
    }
}

/// The values of `all` that `values` name, reporting the others.
fn named<T: Copy>(r: &mut Report, key: &str, values: &[String], all: &[T], name: fn(T) -> &'static str) -> Vec<T> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let found = all.iter().copied().find(|&t| name(t) == v);
            if found.is_none() {
                let words: Vec<&str> = all.iter().map(|&t| name(t)).collect();
                r.problem(
                    format_args!("{key}[{i}]"),
                    format_args!("{v:?} is not one of {}", words.join(", ")),
                );
            }
            found
        })
        .collect()
}

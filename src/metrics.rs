//! Every Prometheus metric of `slawatch run`, defined in one place (README: "Metrics").
//!
//! Labels come from small fixed sets (event types, reasons, clocks, the configured policies,
//! priorities, channels, partitions), never from ticket ids. Combinations known at start are
//! created at zero, so rates and ratios have data before the first event.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::engine::{AT_RISK, CycleState, Detail, SlaEvent, SlaKind, Summary};
use crate::event::{self, Channel, Kind, Priority, Reason};
use crate::policy::{Clock, Rules};

/// What became of a valid event (rejected ones are counted as dead letters), in the order of
/// [`crate::engine::Applied`].
pub const OUTCOMES: [&str; 4] = ["applied", "duplicate", "ignored", "held"];
/// The `score` label of a satisfaction rating, from 1.
const SCORES: [&str; 5] = ["1", "2", "3", "4", "5"];
/// Business time from a cycle's start to its fulfilment: 1 minute to 5 days.
const FULFILMENT_BUCKETS: [f64; 12] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0, 432000.0,
];
/// Wall-clock delay from an alert's instant to its emission: `idle_grace` plus a tick.
const LATENCY_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 15.0, 60.0];
/// Output sinks.
pub const SINKS: [&str; 2] = ["sla_events", "dead_letters"];
/// Stages whose errors are counted.
pub const STAGES: [&str; 5] = ["consume", "produce", "commit", "rebalance", "restore"];

pub struct Metrics {
    pub registry: Registry,
    pub events: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub created: IntCounterVec,
    ratings: IntCounterVec,
    pub sla_events: IntCounterVec,
    pub fulfilments: IntCounterVec,
    pub fulfilment_seconds: HistogramVec,
    pub alert_latency: Histogram,
    pub open_tickets: IntGauge,
    pub complaints_open: IntGauge,
    pub cycles: IntGaugeVec,
    pub at_risk: IntGaugeVec,
    pub frontier_lag: GaugeVec,
    pub consumer_lag: IntGaugeVec,
    pub caught_up: IntGaugeVec,
    pub deliveries: IntCounterVec,
    pub notifications_sent: IntCounterVec,
    pub notification_failures: IntCounterVec,
    pub notifications_dropped: IntCounterVec,
    pub notification_queue: IntGaugeVec,
    pub notification_delay: HistogramVec,
    pub active_alerts: IntGauge,
    pub errors: IntCounterVec,
    pub ready: IntGauge,
}

const SLA_LABELS: [&str; 4] = ["clock", "policy", "priority", "channel"];

impl Metrics {
    pub fn new(rules: &Rules) -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            register(&registry, HistogramVec::new(opts, labels))
        };
        let sla_labels: Vec<&str> = ["type"].into_iter().chain(SLA_LABELS).collect();
        let outcome_labels: Vec<&str> = ["outcome"].into_iter().chain(SLA_LABELS).collect();
        let m = Metrics {
            events: counter(
                "slawatch_events_total",
                "Valid input events by type and what became of them.",
                &["type", "outcome"],
            ),
            dead_letters: counter(
                "slawatch_dead_letters_total",
                "Input records dead-lettered, by reason.",
                &["reason"],
            ),
            created: counter(
                "slawatch_tickets_created_total",
                "Tickets created, by kind (request, complaint).",
                &["kind"],
            ),
            ratings: counter(
                "slawatch_satisfaction_ratings_total",
                "Satisfaction ratings, by score (1-5), the ticket's policy (empty: none) and channel.",
                &["score", "policy", "channel"],
            ),
            sla_events: counter(
                "slawatch_sla_events_total",
                "SLA events emitted, by type, clock, policy, priority and channel.",
                &sla_labels,
            ),
            fulfilments: counter(
                "slawatch_fulfilments_total",
                "Cycles fulfilled, by outcome (met, breached), clock, policy, priority and channel.",
                &outcome_labels,
            ),
            fulfilment_seconds: histogram(
                "slawatch_fulfilment_business_seconds",
                "Business time from a cycle's start to its fulfilment (response and resolution times).",
                &FULFILMENT_BUCKETS,
                &SLA_LABELS,
            ),
            alert_latency: histogram(
                "slawatch_alert_latency_seconds",
                "Wall-clock seconds from an alert's instant (warning, breach, escalation) to its emission.",
                &LATENCY_BUCKETS,
                &[],
            )
            .with_label_values::<&str>(&[]),
            open_tickets: int_gauge("slawatch_open_tickets", "Tickets neither solved nor closed.", &[])
                .with_label_values::<&str>(&[]),
            complaints_open: int_gauge("slawatch_complaints_open", "Open tickets of kind complaint.", &[])
                .with_label_values::<&str>(&[]),
            cycles: int_gauge(
                "slawatch_cycles",
                "Running cycles by clock and state (on_track, warned, breached, paused).",
                &["clock", "state"],
            ),
            at_risk: int_gauge(
                "slawatch_cycles_at_risk",
                "Running cycles, not yet breached, due within 15m or 1h of the frontier.",
                &["clock", "within"],
            ),
            frontier_lag: register(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "slawatch_frontier_lag_seconds",
                        "Wall clock minus the partition's frontier.",
                    ),
                    &["partition"],
                ),
            ),
            consumer_lag: int_gauge(
                "slawatch_consumer_lag_messages",
                "Records between the read position and the end of the log, per input topic-partition.",
                &["topic", "partition"],
            ),
            caught_up: int_gauge(
                "slawatch_caught_up",
                "1 while the input topic-partition is read to its end and confirmed so.",
                &["topic", "partition"],
            ),
            deliveries: counter(
                "slawatch_output_deliveries_total",
                "Output records acknowledged (ok) or failed for good (error), per sink.",
                &["sink", "result"],
            ),
            notifications_sent: counter(
                "slawatch_notifications_sent_total",
                "Alerts and webhook events the receiver accepted, per output and target (host:port).",
                &["output", "target"],
            ),
            notification_failures: counter(
                "slawatch_notification_failures_total",
                "Requests to a receiver that failed and will be retried (timeout, connection, status).",
                &["output", "target", "reason"],
            ),
            notifications_dropped: counter(
                "slawatch_notifications_dropped_total",
                "Notifications given up: the queue was full (queue_full) or the receiver refused them (rejected).",
                &["output", "target", "reason"],
            ),
            notification_queue: int_gauge(
                "slawatch_notification_queue_length",
                "Notifications waiting for a target, new ones and re-sends of active alerts.",
                &["output", "target"],
            ),
            notification_delay: histogram(
                "slawatch_notification_delay_seconds",
                "Wall-clock seconds from the instant a notification is about (alert, fulfilment) to its acceptance by the receiver; re-sends not counted.",
                &LATENCY_BUCKETS,
                &["output", "target"],
            ),
            active_alerts: int_gauge(
                "slawatch_alerts_active",
                "Alerts this instance keeps firing in Alertmanager, summed over outputs.",
                &[],
            )
            .with_label_values::<&str>(&[]),
            errors: counter(
                "slawatch_processing_errors_total",
                "Errors by stage (consume, produce, commit, rebalance, restore).",
                &["stage"],
            ),
            ready: int_gauge(
                "slawatch_ready",
                "1 once every assigned partition has caught up (the /readyz answer).",
                &[],
            )
            .with_label_values::<&str>(&[]),
            registry,
        };
        let build = Opts::new("slawatch_build_info", "Always 1; the version as a label.")
            .const_label("version", env!("CARGO_PKG_VERSION"));
        register(&m.registry, Gauge::with_opts(build)).set(1.0);
        m.registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        m.start_at_zero(rules);
        m
    }

    /// Counts a satisfaction rating of a ticket with `policy` (name) and `channel`.
    pub fn rated(&self, score: u8, policy: Option<&str>, channel: Channel) {
        let score = SCORES[usize::from(score) - 1];
        self.ratings
            .with_label_values(&[score, policy.unwrap_or(""), channel.as_str()])
            .inc();
    }

    /// Creates every label combination known at start.
    fn start_at_zero(&self, rules: &Rules) {
        for ty in event::TYPES {
            for outcome in OUTCOMES {
                self.events.with_label_values(&[ty, outcome]);
            }
        }
        for kind in Kind::ALL {
            self.created.with_label_values(&[kind.as_str()]);
        }
        for reason in Reason::ALL {
            self.dead_letters.with_label_values(&[reason.as_str()]);
        }
        let policies = rules.policies.iter().map(|p| &*p.name);
        for policy in policies.chain([""]) {
            for channel in Channel::ALL {
                for score in SCORES {
                    self.ratings.with_label_values(&[score, policy, channel.as_str()]);
                }
            }
        }
        for clock in Clock::ALL {
            for policy in &rules.policies {
                for priority in Priority::ALL {
                    for channel in Channel::ALL {
                        let labels = [clock.as_str(), &policy.name, priority.as_str(), channel.as_str()];
                        for kind in SlaKind::ALL {
                            self.sla_events.with_label_values(&with(kind_label(kind), &labels));
                        }
                        for outcome in ["met", "breached"] {
                            self.fulfilments.with_label_values(&with(outcome, &labels));
                        }
                        self.fulfilment_seconds.with_label_values(&labels);
                    }
                }
            }
        }
        for clock in Clock::ALL {
            for state in CycleState::RUNNING {
                self.cycles.with_label_values(&[clock.as_str(), state.as_str()]);
            }
            for (within, _) in AT_RISK {
                self.at_risk.with_label_values(&[clock.as_str(), within]);
            }
        }
        for sink in SINKS {
            for result in ["ok", "error"] {
                self.deliveries.with_label_values(&[sink, result]);
            }
        }
        for stage in STAGES {
            self.errors.with_label_values(&[stage]);
        }
    }

    /// Counts one emitted SLA event; `now` is the wall clock, for alert latency.
    pub fn sla_event(&self, ev: &SlaEvent, now: i64) {
        let labels = [ev.clock.as_str(), &ev.policy, ev.priority.as_str(), ev.channel.as_str()];
        self.sla_events
            .with_label_values(&with(kind_label(ev.kind), &labels))
            .inc();
        match (ev.kind, ev.detail) {
            (SlaKind::Fulfilled, Detail::Outcome(o)) => {
                self.fulfilments.with_label_values(&with(o.as_str(), &labels)).inc();
                self.fulfilment_seconds
                    .with_label_values(&labels)
                    .observe(ev.elapsed_ms as f64 / 1000.0);
            }
            (SlaKind::Warning | SlaKind::Breached | SlaKind::Escalated, _) => {
                self.alert_latency.observe((now - ev.at).max(0) as f64 / 1000.0);
            }
            _ => {}
        }
    }

    /// Sets the ticket gauges from the summaries of every shard.
    pub fn tickets<'a>(&self, summaries: impl Iterator<Item = &'a Summary>) {
        let mut total = Summary::default();
        for s in summaries {
            total += s;
        }
        self.open_tickets.set(total.open as i64);
        self.complaints_open.set(total.complaints_open as i64);
        for clock in Clock::ALL {
            let c = clock as usize;
            for (state, n) in CycleState::RUNNING.iter().zip(total.running[c]) {
                self.cycles
                    .with_label_values(&[clock.as_str(), state.as_str()])
                    .set(n as i64);
            }
            for ((within, _), n) in AT_RISK.iter().zip(total.at_risk[c]) {
                self.at_risk.with_label_values(&[clock.as_str(), within]).set(n as i64);
            }
        }
    }

    /// The Prometheus text format of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec");
        out
    }
}

/// Registers a metric built from the constants above (so neither step can fail).
fn register<T: Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<T>) -> T {
    let metric = metric.expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

/// The `type` label of an SLA event: its type without the `sla.` prefix.
fn kind_label(kind: SlaKind) -> &'static str {
    &kind.as_str()[4..]
}

fn with<'a>(first: &'a str, rest: &[&'a str; 4]) -> [&'a str; 5] {
    [first, rest[0], rest[1], rest[2], rest[3]]
}

//! The review written out: JSON for machines (schema `slawatch.report/1`, docs/REPORT.md)
//! and Markdown for a chat post or a ticket. Both come from the same [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

use super::tally::{Agent, DIMENSIONS, Day, Histogram, Overrun, Ratings, Review, Tally};
use super::{Changes, Report};
use crate::engine::Outcome;
use crate::event::Reason;
use crate::policy::Clock;
use crate::time::{Instant, Rfc3339, human_duration};

/// The names of the configurations, as the report calls them.
pub const NAMES: [&str; 2] = ["current", "candidate"];

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn time(t: Option<Instant>) -> Value {
    t.map_or(Value::Null, |t| Rfc3339(t).to_string().into())
}

fn quantiles(h: &Histogram) -> Value {
    json!({
        "count": h.count(),
        "p50": h.quantile(0.5),
        "p90": h.quantile(0.9),
        "p99": h.quantile(0.99),
    })
}

fn ratings(r: &Ratings) -> Value {
    json!({
        "ratings": r.count,
        "csat": ratio(r.satisfied, r.count),
        "mean": ratio(r.score_sum, r.count),
    })
}

fn tally(t: &Tally) -> Value {
    let clocks: serde_json::Map<String, Value> = Clock::ALL
        .iter()
        .zip(&t.clocks)
        .map(|(clock, c)| {
            let v = json!({
                "fulfilled": c.fulfilled,
                "met": c.met,
                "execution_rate": ratio(c.met, c.fulfilled),
                "warnings": c.warnings,
                "breaches": c.breaches,
                "escalations": c.escalations,
                "breach_retractions": c.retractions,
                "cancellations": c.cancellations,
                "business_ms": quantiles(&c.times),
            });
            (clock.as_str().to_string(), v)
        })
        .collect();
    let mut satisfaction = ratings(&t.ratings);
    satisfaction["first_response_met"] = ratings(&t.ratings_by_first_response[1]);
    satisfaction["first_response_breached"] = ratings(&t.ratings_by_first_response[2]);
    json!({
        "tickets_created": t.tickets,
        "complaints_created": t.complaints,
        "complaint_rate": ratio(t.complaints, t.tickets),
        "clocks": clocks,
        "complaint_resolution_ms": quantiles(&t.complaint_resolution),
        "satisfaction": satisfaction,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(key.into(), value);
    map.append(v.as_object_mut().expect("a tally is an object"));
    Value::Object(map)
}

/// ISO weeks of the days, merged.
fn weeks(days: &BTreeMap<NaiveDate, Day>) -> BTreeMap<String, Tally> {
    let mut weeks: BTreeMap<String, Tally> = BTreeMap::new();
    for (date, day) in days {
        let w = date.iso_week();
        weeks
            .entry(format!("{}-W{:02}", w.year(), w.week()))
            .or_default()
            .merge(&day.tally);
    }
    weeks
}

fn overruns(list: &[Overrun]) -> Value {
    list.iter()
        .map(|o| {
            json!({
                "ticket_id": o.ticket_id,
                "clock": o.clock.as_str(),
                "cycle": o.cycle,
                "policy": o.policy,
                "overrun_ms": o.overrun_ms,
            })
        })
        .collect()
}

fn agent(a: &Agent) -> Value {
    let response = |i: usize| {
        let (n, met, h) = &a.responses[i];
        json!({"fulfilled": n, "met": met, "execution_rate": ratio(*met, *n), "business_ms": quantiles(h)})
    };
    json!({"public_replies": a.public_replies, "first_response": response(0), "next_response": response(1)})
}

fn review(r: &Review, dead: &[u64; Reason::ALL.len()], name: &str, file: &str) -> Value {
    let by: serde_json::Map<String, Value> = DIMENSIONS
        .iter()
        .zip(&r.by)
        .map(|(dim, values)| {
            let values: serde_json::Map<String, Value> = values.iter().map(|(v, t)| (v.clone(), tally(t))).collect();
            (dim.to_string(), Value::Object(values))
        })
        .collect();
    let daily: Vec<Value> = r
        .days
        .iter()
        .map(|(date, day)| {
            let backlog = day.backlog.map_or(Value::Null, |b| {
                let running: serde_json::Map<String, Value> = Clock::ALL
                    .iter()
                    .zip(b.breached_running)
                    .map(|(c, n)| (c.as_str().into(), n.into()))
                    .collect();
                json!({"open_tickets": b.open, "breached_running": running})
            });
            let mut v = with(tally(&day.tally), "date", date.to_string().into());
            v["backlog"] = backlog;
            v
        })
        .collect();
    let weekly: Vec<Value> = weeks(&r.days)
        .iter()
        .map(|(w, t)| with(tally(t), "week", w.clone().into()))
        .collect();
    let agents: Vec<Value> = r
        .agents
        .iter()
        .map(|(n, a)| with(agent(a), "agent", n.clone().into()))
        .collect();
    let by_reason: serde_json::Map<String, Value> = Reason::ALL
        .iter()
        .zip(dead)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.as_str().into(), (*n).into()))
        .collect();
    json!({
        "name": name,
        "file": file,
        "dead_letters": {"total": dead.iter().sum::<u64>(), "by_reason": by_reason},
        "overall": tally(&r.overall()),
        "by": by,
        "daily": daily,
        "weekly": weekly,
        "agents": agents,
        "worst": {"breaches": overruns(&r.worst_breaches), "open_overdue": overruns(&r.open_overdue)},
    })
}

/// Per clock, the candidate's number minus the current one's.
fn difference(current: &Tally, candidate: &Tally) -> Value {
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let clocks: serde_json::Map<String, Value> = Clock::ALL
        .iter()
        .zip(current.clocks.iter().zip(&candidate.clocks))
        .map(|(clock, (a, b))| {
            let escalations = |c: &super::tally::ClockTally| c.escalations.iter().sum::<u64>() as i64;
            let q = |h: &Histogram, p| h.quantile(p).map(|v| v as f64);
            let v = json!({
                "execution_rate": diff(ratio(a.met, a.fulfilled), ratio(b.met, b.fulfilled)),
                "met": b.met as i64 - a.met as i64,
                "breaches": b.breaches as i64 - a.breaches as i64,
                "escalations": escalations(b) - escalations(a),
                "business_ms_p50": diff(q(&a.times, 0.5), q(&b.times, 0.5)),
                "business_ms_p90": diff(q(&a.times, 0.9), q(&b.times, 0.9)),
            });
            (clock.as_str().to_string(), v)
        })
        .collect();
    json!({"clocks": clocks})
}

fn what_if(c: &Changes, current: &Tally, candidate: &Tally) -> Value {
    let other = |o: Outcome| match o {
        Outcome::Met => Outcome::Breached,
        Outcome::Breached => Outcome::Met,
    };
    let sample: Vec<Value> = c
        .sample
        .iter()
        .map(|ch| {
            json!({
                "ticket_id": ch.ticket_id.as_str(),
                "clock": ch.clock.as_str(),
                "cycle": ch.cycle,
                "current": ch.current.as_str(),
                "candidate": other(ch.current).as_str(),
            })
        })
        .collect();
    json!({
        "changed": c.met_to_breached + c.breached_to_met,
        "met_to_breached": c.met_to_breached,
        "breached_to_met": c.breached_to_met,
        "sample": sample,
        "difference": difference(current, candidate),
    })
}

/// The report as one JSON document; `files` names the configurations.
pub fn to_json(report: &Report, files: &[&str]) -> Value {
    let overall: Vec<Tally> = report.reviews.iter().map(Review::overall).collect();
    let configurations: Vec<Value> = report
        .reviews
        .iter()
        .zip(&report.dead)
        .zip(NAMES.iter().zip(files))
        .map(|((r, dead), (name, file))| review(r, dead, name, file))
        .collect();
    let what_if = match (&report.changes, &overall[..]) {
        (Some(c), [a, b]) => what_if(c, a, b),
        _ => Value::Null,
    };
    json!({
        "schema": "slawatch.report/1",
        "input": {"file": report.input, "lines": report.lines},
        "period": {
            "from": time(report.from),
            "until": time(report.until),
            "first_event": time(report.span.map(|s| s.0)),
            "last_event": time(report.span.map(|s| s.1)),
            "time_zone": report.reviews[0].time_zone().name(),
        },
        "configurations": configurations,
        "what_if": what_if,
    })
}

fn percent(part: u64, whole: u64) -> String {
    ratio(part, whole).map_or_else(|| "–".into(), |r| format!("{:.1}%", 100.0 * r))
}

fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "–".into(), human_duration)
}

fn mean(r: &Ratings) -> String {
    ratio(r.score_sum, r.count).map_or_else(|| "–".into(), |m| format!("{m:.2}"))
}

/// A table of the review, as every format writes it.
pub struct Table {
    pub title: String,
    /// A sentence before the table.
    pub note: Option<String>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(title: impl Into<String>, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
        Table {
            title: title.into(),
            note: None,
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: rows.into_iter().collect(),
        }
    }
}

/// The headline numbers of one tally per clock.
fn clock_rows(name: &str, t: &Tally) -> Vec<Vec<String>> {
    Clock::ALL
        .iter()
        .zip(&t.clocks)
        .map(|(clock, c)| {
            vec![
                name.to_string(),
                clock.as_str().to_string(),
                percent(c.met, c.fulfilled),
                c.fulfilled.to_string(),
                c.breaches.to_string(),
                c.escalations.iter().sum::<u64>().to_string(),
                duration(c.times.quantile(0.5)),
                duration(c.times.quantile(0.9)),
                duration(c.times.quantile(0.99)),
            ]
        })
        .collect()
}

/// A breakdown row: the value and the numbers a reviewer compares across values.
fn summary_row(value: &str, t: &Tally) -> Vec<String> {
    let [fr, nr, res] = &t.clocks;
    vec![
        if value.is_empty() {
            "(none)".into()
        } else {
            value.to_string()
        },
        t.tickets.to_string(),
        percent(fr.met, fr.fulfilled),
        percent(nr.met, nr.fulfilled),
        percent(res.met, res.fulfilled),
        t.clocks.iter().map(|c| c.breaches).sum::<u64>().to_string(),
        percent(t.complaints, t.tickets),
        percent(t.ratings.satisfied, t.ratings.count),
    ]
}

const SUMMARY_HEADER: [&str; 8] = [
    "",
    "tickets",
    "first response met",
    "next response met",
    "resolution met",
    "breaches",
    "complaints",
    "CSAT",
];

/// The line under the title: input, period, time zone, configurations.
pub fn intro(report: &Report, files: &[&str]) -> String {
    let span = report.span.map_or_else(
        || "no events".to_string(),
        |(a, b)| format!("events from {} to {}", Rfc3339(a), Rfc3339(b)),
    );
    format!(
        "Input {} ({} lines, {span}), days in {}. Configuration: {}.",
        report.input,
        report.lines,
        report.reviews[0].time_zone().name(),
        NAMES
            .iter()
            .zip(files)
            .map(|(n, f)| format!("{n} {f}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The tables of the review, in order.
pub fn tables(report: &Report) -> Vec<Table> {
    let overall: Vec<Tally> = report.reviews.iter().map(Review::overall).collect();
    let mut out = Vec::new();
    let header = [
        "configuration",
        "clock",
        "met",
        "fulfilled",
        "breaches",
        "escalations",
        "p50",
        "p90",
        "p99",
    ];
    out.push(Table::new(
        "Execution of the standard",
        &header,
        NAMES.iter().zip(&overall).flat_map(|(n, t)| clock_rows(n, t)),
    ));
    if let Some(c) = &report.changes {
        let rows = c.sample.iter().map(|ch| {
            vec![
                ch.ticket_id.to_string(),
                ch.clock.as_str().into(),
                ch.cycle.to_string(),
                ch.current.as_str().into(),
            ]
        });
        let mut t = Table::new("What-if", &["ticket", "clock", "cycle", "current outcome"], rows);
        t.note = Some(format!(
            "{} cycles change outcome under the candidate: {} met → breached, {} breached → met.",
            c.met_to_breached + c.breached_to_met,
            c.met_to_breached,
            c.breached_to_met
        ));
        out.push(t);
    }
    let compared = report.reviews.len() > 1;
    for ((name, r), t) in NAMES.iter().zip(&report.reviews).zip(&overall) {
        let suffix = if compared { format!(" ({name})") } else { String::new() };
        review_tables(&mut out, r, t, &suffix);
    }
    out
}

/// The tables of one configuration's review; `suffix` goes after each title.
fn review_tables(out: &mut Vec<Table>, r: &Review, t: &Tally, suffix: &str) {
    let by = &t.ratings_by_first_response;
    out.push(Table::new(
        format!("Complaints and satisfaction{suffix}"),
        &[
            "tickets",
            "complaints",
            "complaint resolution p50",
            "p90",
            "ratings",
            "CSAT",
            "mean",
            "CSAT, first response met",
            "CSAT, first response breached",
        ],
        [vec![
            t.tickets.to_string(),
            format!("{} ({})", t.complaints, percent(t.complaints, t.tickets)),
            duration(t.complaint_resolution.quantile(0.5)),
            duration(t.complaint_resolution.quantile(0.9)),
            t.ratings.count.to_string(),
            percent(t.ratings.satisfied, t.ratings.count),
            mean(&t.ratings),
            percent(by[1].satisfied, by[1].count),
            percent(by[2].satisfied, by[2].count),
        ]],
    ));
    for (dim, values) in DIMENSIONS.iter().zip(&r.by) {
        let mut header = SUMMARY_HEADER;
        header[0] = dim;
        out.push(Table::new(
            format!("By {dim}{suffix}"),
            &header,
            values.iter().map(|(v, t)| summary_row(v, t)),
        ));
    }
    let rows = r.days.iter().map(|(date, day)| {
        let mut row = summary_row(&date.to_string(), &day.tally);
        let backlog = day.backlog.unwrap_or_default();
        row.push(backlog.open.to_string());
        row.push(backlog.breached_running.iter().sum::<u64>().to_string());
        row
    });
    let mut header = SUMMARY_HEADER.to_vec();
    header[0] = "date";
    header.extend(["open at end", "breached running at end"]);
    out.push(Table::new(format!("Daily{suffix}"), &header, rows));
    let weeks = weeks(&r.days);
    if weeks.len() > 1 {
        let mut header = SUMMARY_HEADER;
        header[0] = "week";
        out.push(Table::new(
            format!("Weekly{suffix}"),
            &header,
            weeks.iter().map(|(w, t)| summary_row(w, t)),
        ));
    }
    if !r.agents.is_empty() {
        let rows = r.agents.iter().map(|(name, a)| {
            let (n, met, h) = &a.responses[0];
            let (n2, met2, h2) = &a.responses[1];
            vec![
                name.clone(),
                a.public_replies.to_string(),
                format!("{n} ({})", percent(*met, *n)),
                duration(h.quantile(0.5)),
                format!("{n2} ({})", percent(*met2, *n2)),
                duration(h2.quantile(0.5)),
            ]
        });
        let header = [
            "agent",
            "public replies",
            "first responses (met)",
            "p50",
            "next responses (met)",
            "p50",
        ];
        out.push(Table::new(format!("Agents{suffix}"), &header, rows));
    }
    for (title, list) in [
        ("Longest breaches", &r.worst_breaches),
        ("Longest overdue, still open", &r.open_overdue),
    ] {
        let rows = list.iter().map(|o| {
            vec![
                o.ticket_id.clone(),
                o.clock.as_str().into(),
                o.cycle.to_string(),
                o.policy.clone(),
                human_duration(o.overrun_ms),
            ]
        });
        out.push(Table::new(
            format!("{title}{suffix}"),
            &["ticket", "clock", "cycle", "policy", "past target (business time)"],
            rows,
        ));
    }
}

/// The report as Markdown.
pub fn to_markdown(report: &Report, files: &[&str]) -> String {
    let mut out = format!("# Service-standard review\n\n{}\n\n", intro(report, files));
    // Input strings (ids, names) may hold the cell separator.
    let cell = |c: &String| c.replace('|', "\\|");
    for t in tables(report) {
        let _ = writeln!(out, "## {}\n", t.title);
        if let Some(note) = &t.note {
            let _ = writeln!(out, "{note}\n");
        }
        if t.rows.is_empty() {
            out.push_str("(none)\n\n");
            continue;
        }
        let _ = writeln!(out, "| {} |", t.header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(t.header.len()));
        for row in &t.rows {
            let _ = writeln!(out, "| {} |", row.iter().map(cell).collect::<Vec<_>>().join(" | "));
        }
        out.push('\n');
    }
    out
}

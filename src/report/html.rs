//! The review as one self-contained HTML page: inline CSS, charts as inline SVG drawn with
//! plotters, the tables of [`render::tables`] sortable by a few lines of inline JavaScript.
//! Nothing is loaded from elsewhere: the file opens offline.

use std::fmt::Write;

use plotters::prelude::*;

use super::Report;
use super::render::{self, NAMES};
use super::tally::{Histogram, Review, Tally};
use crate::policy::Clock;

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The series' names, in a box in the upper right corner.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>) {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .expect("in memory");
}

/// A line of the daily charts: label, a value per day (`None`: nothing that day), colour
/// index, and whether it is dashed (the candidate's).
type Line = (String, Vec<Option<f64>>, usize, bool);

/// A line per series over the days, y from 0 to `y_max`.
fn lines(title: &str, days: &[String], series: &[Line], y_max: f64) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).expect("in memory");
        let n = days.len().max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0..n - 1, 0.0..y_max)
            .expect("in memory");
        chart
            .configure_mesh()
            .x_labels(days.len().min(10))
            .x_label_formatter(&|i| days.get(*i).cloned().unwrap_or_default())
            .draw()
            .expect("in memory");
        for (name, values, colour, dashed) in series {
            let colour = COLOURS[colour % COLOURS.len()];
            let points: Vec<(usize, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i, v)))
                .collect();
            let style = colour.stroke_width(2);
            let drawn = if *dashed {
                chart.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(points.iter().copied(), style))
            };
            drawn
                .expect("in memory")
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, colour.filled())))
                .expect("in memory");
        }
        legend(&mut chart);
        root.present().expect("in memory");
    }
    svg
}

/// Bars per category, one per series side by side.
fn bars(title: &str, categories: &[String], series: &[(String, Vec<f64>)]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).expect("in memory");
        let top = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..categories.len() as f64, 0.0..top)
            .expect("in memory");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 {
                    categories.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .expect("in memory");
        let width = 0.8 / series.len().max(1) as f64;
        for (k, (name, values)) in series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let rects = values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64 + 0.1 + k as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, v)], colour.filled())
            });
            chart
                .draw_series(rects)
                .expect("in memory")
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        if series.len() > 1 {
            legend(&mut chart);
        }
        root.present().expect("in memory");
    }
    svg
}

/// Business-time ranges of the response-time chart: upper bounds in ms.
const RANGES: [(i64, &str); 8] = [
    (15 * 60_000, "< 15m"),
    (3_600_000, "15m–1h"),
    (4 * 3_600_000, "1–4h"),
    (8 * 3_600_000, "4–8h"),
    (24 * 3_600_000, "8h–1d"),
    (3 * 86_400_000, "1–3d"),
    (7 * 86_400_000, "3–7d"),
    (i64::MAX, "≥ 7d"),
];

/// Shares (%) of a histogram's values in each of [`RANGES`], by bucket value.
fn distribution(h: &Histogram) -> Vec<f64> {
    let mut counts = [0u64; RANGES.len()];
    h.for_each(|value, n| counts[RANGES.iter().position(|&(max, _)| value < max).expect("last is open")] += n);
    let total = h.count().max(1) as f64;
    counts.iter().map(|&n| 100.0 * n as f64 / total).collect()
}

fn percent_of(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

/// The charts: daily execution rate per clock (each configuration), response-time
/// distributions, breaches by channel and priority, complaint rate and CSAT per day, and the
/// what-if's execution rates side by side.
fn charts(report: &Report) -> Vec<String> {
    let current = &report.reviews[0];
    let days: Vec<String> = current.days.keys().map(|d| d.format("%m-%d").to_string()).collect();
    let mut daily = Vec::new();
    for (n, (name, review)) in NAMES.iter().zip(&report.reviews).enumerate() {
        for (k, clock) in Clock::ALL.iter().enumerate() {
            let values = review
                .days
                .values()
                .map(|d| percent_of(d.tally.clocks[k].met, d.tally.clocks[k].fulfilled))
                .collect();
            let label = if report.reviews.len() > 1 {
                format!("{} ({name})", clock.as_str())
            } else {
                clock.as_str().into()
            };
            daily.push((label, values, k, n == 1));
        }
    }
    let overall = current.overall();
    let mut out = vec![lines(
        "Execution rate per day (% of fulfilled cycles met)",
        &days,
        &daily,
        100.0,
    )];
    let ranges: Vec<String> = RANGES.iter().map(|(_, l)| l.to_string()).collect();
    let times = Clock::ALL
        .iter()
        .zip(&overall.clocks)
        .map(|(c, t)| (c.as_str().to_string(), distribution(&t.times)))
        .collect::<Vec<_>>();
    out.push(bars(
        "Response times in business time (% of fulfilled cycles)",
        &ranges,
        &times,
    ));
    for (dim, title) in [(1, "Breaches by channel"), (2, "Breaches by priority")] {
        let values = &current.by[dim];
        let categories: Vec<String> = values.keys().cloned().collect();
        let breaches = |t: &Tally| t.clocks.iter().map(|c| c.breaches as f64).sum::<f64>();
        out.push(bars(
            title,
            &categories,
            &[("breaches".into(), values.values().map(breaches).collect())],
        ));
    }
    let complaints = current
        .days
        .values()
        .map(|d| percent_of(d.tally.complaints, d.tally.tickets))
        .collect();
    let csat = current
        .days
        .values()
        .map(|d| percent_of(d.tally.ratings.satisfied, d.tally.ratings.count))
        .collect();
    out.push(lines(
        "Complaint rate and CSAT per day (%)",
        &days,
        &[
            ("complaint rate".into(), complaints, 3, false),
            ("CSAT".into(), csat, 2, false),
        ],
        100.0,
    ));
    if let [a, b] = &report.reviews[..] {
        let clocks: Vec<String> = Clock::ALL.iter().map(|c| c.as_str().to_string()).collect();
        let rates = |r: &Review| {
            r.overall()
                .clocks
                .iter()
                .map(|c| percent_of(c.met, c.fulfilled).unwrap_or(0.0))
                .collect()
        };
        out.push(bars(
            "What-if: execution rate (%)",
            &clocks,
            &[(NAMES[0].into(), rates(a)), (NAMES[1].into(), rates(b))],
        ));
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:0 0 2em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th{background:#f0f0f0;cursor:pointer}td:first-child,th:first-child{text-align:left}\
figure{display:inline-block;margin:0 1em 1em 0}.cards{display:flex;flex-wrap:wrap;gap:1em;margin-bottom:2em}\
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}.card b{display:block;font-size:1.6em}";

/// Sorts a table by the clicked column: numbers (the leading number of a cell) as numbers.
const SORT: &str = "document.querySelectorAll('table').forEach(function(t){\
t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){\
var rows=Array.from(t.tBodies[0].rows),up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';\
var key=function(r){var s=r.cells[i].textContent,n=parseFloat(s);return isNaN(n)?s:n;};\
rows.sort(function(a,b){var x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*(up?1:-1);});\
rows.forEach(function(r){t.tBodies[0].appendChild(r);});});});});";

/// The report as a self-contained HTML page.
pub fn to_html(report: &Report, files: &[&str]) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        out,
        "<title>Service-standard review</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        out,
        "<h1>Service-standard review</h1><p>{}</p>",
        escape(&render::intro(report, files))
    );
    for (name, review) in NAMES.iter().zip(&report.reviews) {
        out.push_str("<section class=\"cards\">");
        let t = review.overall();
        for (clock, c) in Clock::ALL.iter().zip(&t.clocks) {
            let rate = percent_of(c.met, c.fulfilled).map_or_else(|| "–".into(), |r| format!("{r:.1}%"));
            let _ = write!(
                out,
                "<div class=\"card\">{name}: {} met<b>{rate}</b>{} breaches</div>",
                clock.as_str(),
                c.breaches
            );
        }
        let csat = percent_of(t.ratings.satisfied, t.ratings.count).map_or_else(|| "–".into(), |r| format!("{r:.1}%"));
        let complaints = percent_of(t.complaints, t.tickets).map_or_else(|| "–".into(), |r| format!("{r:.1}%"));
        let _ = write!(
            out,
            "<div class=\"card\">{name}: CSAT<b>{csat}</b>{} ratings</div>",
            t.ratings.count
        );
        let _ = write!(
            out,
            "<div class=\"card\">{name}: complaints<b>{complaints}</b>of {} tickets</div>",
            t.tickets
        );
        out.push_str("</section>");
    }
    out.push_str("<section class=\"charts\">");
    for svg in charts(report) {
        let _ = write!(out, "<figure>{svg}</figure>");
    }
    out.push_str("</section>");
    for t in render::tables(report) {
        let _ = write!(out, "<h2>{}</h2>", escape(&t.title));
        if let Some(note) = &t.note {
            let _ = write!(out, "<p>{}</p>", escape(note));
        }
        out.push_str("<table><thead><tr>");
        for h in &t.header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(out, "<script>{SORT}</script></body></html>\n");
    out
}

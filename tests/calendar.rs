//! Property tests of `Calendar` against a brute-force reference that applies the spec's rule
//! directly: convert each UTC minute to local time with chrono-tz, then check the holiday list
//! and the weekday's windows. The calendars cross the changed hour of every DST change
//! (Sundays 01:00–04:00), join windows across midnight, and have holidays, and the instants are
//! biased towards the 2026 and 2027 DST changes of Europe/Berlin and America/New_York.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use chrono_tz::Tz;
use proptest::prelude::*;
use slawatch::calendar::{Calendar, RANGE_END, RANGE_START};
use std::sync::LazyLock;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

struct Fixture {
    tz: Tz,
    week: [Vec<(u32, u32)>; 7],
    holidays: Vec<NaiveDate>,
    cal: Calendar,
}

fn hm(h: u32, m: u32) -> u32 {
    (h * 60 + m) * 60_000
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Midnight UTC of a date, in ms.
fn utc_midnight(d: &str) -> i64 {
    date(d).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

impl Fixture {
    fn new(tz: Tz) -> Fixture {
        let office = vec![(hm(9, 0), hm(12, 30)), (hm(13, 30), hm(17, 0))];
        let week = [
            // Monday's first hour continues Sunday's late window across midnight.
            vec![(0, hm(1, 0)), (hm(9, 0), hm(12, 30)), (hm(13, 30), hm(17, 0))],
            office.clone(),
            office.clone(),
            office.clone(),
            office,
            vec![(0, hm(24, 0))],
            vec![(hm(1, 0), hm(4, 0)), (hm(22, 0), hm(24, 0))],
        ];
        // Includes a Berlin (2027-03-28) and a New York (2027-11-07) DST Sunday, and the
        // Saturday before Berlin's 2026 autumn change.
        let holidays = ["2026-10-24", "2026-12-25", "2027-01-01", "2027-03-28", "2027-11-07"]
            .map(date)
            .to_vec();
        let cal = Calendar::new(tz, week.clone(), &holidays);
        Fixture {
            tz,
            week,
            holidays,
            cal,
        }
    }

    fn reference_is_business(&self, t: i64) -> bool {
        let local = DateTime::from_timestamp_millis(t).unwrap().with_timezone(&self.tz);
        let day = local.date_naive();
        let ms = local.num_seconds_from_midnight() * 1000 + local.timestamp_subsec_millis();
        !self.holidays.contains(&day)
            && self.week[day.weekday().num_days_from_monday() as usize]
                .iter()
                .any(|&(s, e)| s <= ms && ms < e)
    }

    /// Business ms in `[a, b)` for minute-aligned `a` and `b`, one minute at a time.
    fn reference_between(&self, a: i64, b: i64) -> i64 {
        (a..b)
            .step_by(MIN as usize)
            .filter(|&m| self.reference_is_business(m))
            .count() as i64
            * MIN
    }

    /// End of the minute that completes `d / MIN` business minutes from minute-aligned `a`.
    fn reference_add(&self, a: i64, d: i64) -> Option<i64> {
        let mut left = d;
        let mut t = a;
        while left > 0 {
            if t >= RANGE_END {
                return None;
            }
            if self.reference_is_business(t) {
                left -= MIN;
            }
            t += MIN;
        }
        (t < RANGE_END).then_some(t)
    }
}

static FIXTURES: LazyLock<[Fixture; 2]> = LazyLock::new(|| {
    [
        Fixture::new(chrono_tz::Europe::Berlin),
        Fixture::new(chrono_tz::America::New_York),
    ]
});

const DST_DAYS: [&str; 8] = [
    // Europe/Berlin
    "2026-03-29",
    "2026-10-25",
    "2027-03-28",
    "2027-10-31",
    // America/New_York
    "2026-03-08",
    "2026-11-01",
    "2027-03-14",
    "2027-11-07",
];
const ORDINARY_DAYS: [&str; 6] = [
    "1970-01-01",
    "1999-12-31",
    "2026-06-15",
    "2026-12-24",
    "2048-02-29",
    "2099-12-30",
];

/// A minute-aligned instant within two days of a DST change day (mostly) or an ordinary day,
/// clamped to the supported range.
fn minute() -> impl Strategy<Value = i64> {
    let day = prop_oneof![
        3 => prop::sample::select(&DST_DAYS[..]),
        1 => prop::sample::select(&ORDINARY_DAYS[..]),
    ];
    (day, -2 * 1440..2 * 1440i64).prop_map(|(d, m)| (utc_midnight(d) + m * MIN).clamp(RANGE_START, RANGE_END - MIN))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn between_matches_reference(zone in 0..2usize, a in minute(), span in 1..10 * 1440i64) {
        let f = &FIXTURES[zone];
        let b = (a + span * MIN).min(RANGE_END);
        prop_assert_eq!(f.cal.between(a, b), f.reference_between(a, b));
        prop_assert_eq!(f.cal.between(b, a), 0);
    }

    #[test]
    fn add_is_minimal_and_matches_reference(
        zone in 0..2usize,
        a in minute(),
        d in 0..3 * 1440i64,
    ) {
        let f = &FIXTURES[zone];
        let d = d * MIN;
        let t = f.cal.add(a, d);
        prop_assert_eq!(t, f.reference_add(a, d));
        if let Some(t) = t {
            prop_assert_eq!(f.cal.between(a, t), d);
            if d == 0 {
                prop_assert_eq!(t, a);
            } else {
                prop_assert!(f.cal.between(a, t - MIN) < d);
                prop_assert!(f.cal.between(a, t - 1) < d);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn between_is_additive(
        zone in 0..2usize,
        points in [(minute(), 0..MIN), (minute(), 0..MIN), (minute(), 0..MIN)],
    ) {
        let f = &FIXTURES[zone];
        let mut p = points.map(|(m, ms)| (m + ms).min(RANGE_END - 1));
        p.sort_unstable();
        let [a, b, c] = p;
        prop_assert_eq!(f.cal.between(a, b) + f.cal.between(b, c), f.cal.between(a, c));
    }

    #[test]
    fn add_is_exact_to_the_millisecond(
        zone in 0..2usize,
        a in minute(),
        a_ms in 0..MIN,
        d in 1..3 * DAY,
    ) {
        let f = &FIXTURES[zone];
        let a = a + a_ms;
        if let Some(t) = f.cal.add(a, d) {
            prop_assert_eq!(f.cal.between(a, t), d);
            prop_assert_eq!(f.cal.between(a, t - 1), d - 1);
        }
    }

    #[test]
    fn is_business_matches_reference(zone in 0..2usize, m in minute(), ms in 0..MIN) {
        let f = &FIXTURES[zone];
        let t = m + ms;
        prop_assert_eq!(f.cal.is_business(t), f.reference_is_business(t), "at {}", t);
    }
}

/// Every minute of the three UTC days around each DST change day, in both zones.
#[test]
fn is_business_matches_reference_every_minute_around_dst_changes() {
    for f in FIXTURES.iter() {
        for day in DST_DAYS {
            let mid = utc_midnight(day);
            for t in (mid - DAY..mid + 2 * DAY).step_by(MIN as usize) {
                assert_eq!(f.cal.is_business(t), f.reference_is_business(t), "{} at {t}", f.tz);
            }
        }
    }
}

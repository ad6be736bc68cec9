//! Business-time calendars: which instants count towards an SLA clock.
//!
//! An instant is business time iff its local date (in the calendar's IANA zone) is not a holiday
//! and its local wall-clock time lies in one of that weekday's windows `[start, end)`. Because
//! every UTC instant has exactly one local time, a window across a skipped hour is shorter and a
//! repeated hour inside a window counts twice.
//!
//! `new` turns that rule, once, into the sorted list of disjoint, non-adjacent UTC business
//! intervals covering `[RANGE_START, RANGE_END)`, plus the business milliseconds before each
//! interval, plus the first interval of every UTC day. Every query is then a jump to the day
//! and a search among that day's few intervals (plus a short forward gallop for `add`); no
//! time-zone arithmetic happens on the hot path.
//!
//! Invariants: `starts` is strictly increasing; `cum.len() == starts.len() + 1`, `cum[0] == 0`
//! and interval `i` is `[starts[i], starts[i] + cum[i + 1] - cum[i])`, so interval ends need no
//! storage of their own. Each interval ends strictly before the next one starts and no later
//! than `RANGE_END`.

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use std::fmt;

/// First supported instant: 1970-01-01T00:00:00Z.
pub const RANGE_START: i64 = 0;
/// End (exclusive) of the supported instants: 2100-01-01T00:00:00Z.
pub const RANGE_END: i64 = 4_102_444_800_000;

const MS_PER_DAY: i64 = 86_400_000;

/// Spacing of the offset samples that locate a zone's offset changes. A pair of changes closer
/// together than this that returns to the original offset would go unnoticed; since 1970 the
/// tz database's closest pair of changes is a week apart (Brazil 2000; Gaza's projected Ramadan
/// changes, 2040–2072). Sampling costs about two thirds of `new`'s few milliseconds.
const OFFSET_SAMPLE_MS: i64 = 6 * 3_600_000;

pub struct Calendar {
    /// Start of each business interval (UTC ms), strictly increasing.
    starts: Box<[i64]>,
    /// `cum[i]`: business ms in `[RANGE_START, starts[i])`; the last entry is the total.
    cum: Box<[i64]>,
    /// `day_first[d]`: the number of intervals starting before UTC day `d` (days since 1970).
    day_first: Box<[u32]>,
}

impl Calendar {
    /// Every instant is business time.
    pub fn always() -> Calendar {
        Calendar::from_intervals(vec![(RANGE_START, RANGE_END)])
    }

    /// `week[0]` = Monday … `week[6]` = Sunday: sorted, non-overlapping local windows
    /// `(start_ms, end_ms)` with `0 <= start < end <= 86_400_000` (ms since local midnight).
    /// `holidays`: local dates. Inputs are already validated by the caller.
    pub fn new(tz: Tz, week: [Vec<(u32, u32)>; 7], holidays: &[NaiveDate]) -> Calendar {
        let mut holidays: Vec<i64> = holidays.iter().map(|d| i64::from(d.to_epoch_days())).collect();
        holidays.sort_unstable();

        let mut intervals: Vec<(i64, i64)> = Vec::new();
        for (u0, u1, offset) in offset_segments(tz) {
            // Local dates that overlap this segment's local time [u0 + offset, u1 + offset).
            let first_day = (u0 + offset).div_euclid(MS_PER_DAY);
            let last_day = (u1 + offset - 1).div_euclid(MS_PER_DAY);
            for day in first_day..=last_day {
                if holidays.binary_search(&day).is_ok() {
                    continue;
                }
                // 1970-01-01 (day 0) was a Thursday, index 3 counting from Monday.
                let weekday = (day + 3).rem_euclid(7) as usize;
                let midnight_utc = day * MS_PER_DAY - offset;
                for &(s, e) in &week[weekday] {
                    let lo = (midnight_utc + i64::from(s)).max(u0);
                    let hi = (midnight_utc + i64::from(e)).min(u1);
                    if lo >= hi {
                        continue;
                    }
                    match intervals.last_mut() {
                        // Touching intervals (24:00 then 00:00, or a window spanning an offset
                        // change) merge, keeping the table small.
                        Some(last) if last.1 == lo => last.1 = hi,
                        _ => intervals.push((lo, hi)),
                    }
                }
            }
        }
        Calendar::from_intervals(intervals)
    }

    /// `intervals` must be sorted, disjoint and non-touching, within the supported range.
    fn from_intervals(intervals: Vec<(i64, i64)>) -> Calendar {
        let starts: Box<[i64]> = intervals.iter().map(|&(s, _)| s).collect();
        let days = (RANGE_END / MS_PER_DAY) as usize + 1;
        let day_first = (0..=days)
            .map(|d| starts.partition_point(|&s| s < d as i64 * MS_PER_DAY) as u32)
            .collect();
        let cum = std::iter::once(0)
            .chain(intervals.iter().scan(0, |total, &(s, e)| {
                *total += e - s;
                Some(*total)
            }))
            .collect();
        Calendar { starts, cum, day_first }
    }

    /// Business milliseconds in `[a, b)`; 0 when `b <= a`.
    pub fn between(&self, a: i64, b: i64) -> i64 {
        if b <= a {
            return 0;
        }
        self.locate(b).1 - self.locate(a).1
    }

    /// The earliest instant `t >= start` with `between(start, t) == d` (`d >= 0`).
    /// `d == 0` gives `Some(start)`; a duration used up exactly at the end of a business window
    /// gives that window's end. `None` if `t` would be at or beyond `RANGE_END`.
    pub fn add(&self, start: i64, d: i64) -> Option<i64> {
        debug_assert!(d >= 0, "negative business duration {d}");
        if d <= 0 {
            return Some(start);
        }
        let (first, before) = self.locate(start);
        let target = before.saturating_add(d);
        // ends[k]: business ms up to the end of interval k. Intervals before the one holding
        // `start` end below the target, and the answer is usually a few intervals further, so
        // gallop forward from there rather than search the whole table again.
        let ends = &self.cum[1..];
        let lo = first.saturating_sub(1);
        let mut reach = 1;
        while lo + reach < ends.len() && ends[lo + reach] < target {
            reach *= 2;
        }
        let window = &ends[lo..(lo + reach + 1).min(ends.len())];
        let i = lo + window.partition_point(|&c| c < target);
        if i == self.starts.len() {
            return None;
        }
        let t = self.starts[i] + (target - self.cum[i]);
        (t < RANGE_END).then_some(t)
    }

    /// Whether instant `t` is business time.
    pub fn is_business(&self, t: i64) -> bool {
        let i = self.rank(t);
        i > 0 && t - self.starts[i - 1] < self.cum[i] - self.cum[i - 1]
    }

    /// The number of intervals starting at or before `t`, and the business milliseconds in
    /// `[RANGE_START, t)`.
    fn locate(&self, t: i64) -> (usize, i64) {
        let i = self.rank(t);
        if i == 0 {
            return (0, 0);
        }
        let len = self.cum[i] - self.cum[i - 1];
        (i, self.cum[i - 1] + (t - self.starts[i - 1]).min(len))
    }
}

impl Calendar {
    /// The number of intervals starting at or before `t`.
    fn rank(&self, t: i64) -> usize {
        // Instants outside the range clamp to the first or last day, whose bounds still hold.
        let day = t.div_euclid(MS_PER_DAY).clamp(0, self.day_first.len() as i64 - 2) as usize;
        let (lo, hi) = (self.day_first[day] as usize, self.day_first[day + 1] as usize);
        lo + self.starts[lo..hi].partition_point(|&s| s <= t)
    }
}

/// Summarises instead of dumping the (tens of thousands of) intervals.
impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("intervals", &self.starts.len())
            .field("business_ms", &self.cum[self.cum.len() - 1])
            .finish()
    }
}

/// Splits `[RANGE_START, RANGE_END)` into maximal UTC segments `(u0, u1, offset_ms)` of constant
/// UTC offset, each offset change located to the millisecond.
fn offset_segments(tz: Tz) -> Vec<(i64, i64, i64)> {
    let offset_at = |t: i64| {
        let utc = DateTime::from_timestamp_millis(t).expect("instant in supported range");
        i64::from(tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc()) * 1000
    };
    let mut segments = Vec::new();
    let (mut seg_start, mut offset) = (RANGE_START, offset_at(RANGE_START));
    let mut lo = RANGE_START;
    while lo < RANGE_END - 1 {
        let mut hi = (lo + OFFSET_SAMPLE_MS).min(RANGE_END - 1);
        if offset_at(hi) == offset {
            lo = hi;
            continue;
        }
        // offset_at(lo) == offset != offset_at(hi): narrow down to the first changed instant.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(mid) == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        segments.push((seg_start, hi, offset));
        (seg_start, offset, lo) = (hi, offset_at(hi), hi);
    }
    segments.push((seg_start, RANGE_END, offset));
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    /// UTC instant from `YYYY-MM-DDTHH:MM:SSZ`.
    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn hm(h: u32, m: u32) -> u32 {
        (h * 60 + m) * 60_000
    }

    /// Mon–Fri 09:00–12:30 and 13:30–17:00.
    fn office_week() -> [Vec<(u32, u32)>; 7] {
        let day = vec![(hm(9, 0), hm(12, 30)), (hm(13, 30), hm(17, 0))];
        [day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]]
    }

    /// Only Sundays 01:00–04:00, a window across both of Europe's and the US's changed hours.
    fn sunday_night(tz: Tz, holidays: &[NaiveDate]) -> Calendar {
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        week[6] = vec![(hm(1, 0), hm(4, 0))];
        Calendar::new(tz, week, holidays)
    }

    #[test]
    fn windows_and_holidays() {
        // 2026-04-03 (Good Friday) is a holiday; Berlin is UTC+2 then.
        let cal = Calendar::new(Berlin, office_week(), &[date("2026-04-03")]);
        let thu = utc("2026-04-02T00:00:00Z");
        assert_eq!(cal.between(thu, thu + 24 * H), 7 * H);
        assert!(cal.is_business(utc("2026-04-02T07:00:00Z")));
        assert!(!cal.is_business(utc("2026-04-02T06:59:59.999Z")));
        assert!(!cal.is_business(utc("2026-04-02T10:30:00Z")), "lunch break");
        assert!(!cal.is_business(utc("2026-04-03T09:00:00Z")), "holiday");
        // Thursday's last half hour, then nothing until Monday 09:00 local.
        let t = cal.add(utc("2026-04-02T14:30:00Z"), H).unwrap();
        assert_eq!(t, utc("2026-04-06T07:30:00Z"));
        assert_eq!(cal.between(thu, utc("2026-04-07T00:00:00Z")), 14 * H);
    }

    #[test]
    fn window_ending_at_midnight_joins_the_next_day() {
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        week[0] = vec![(hm(22, 0), 86_400_000)];
        week[1] = vec![(0, hm(2, 0))];
        let cal = Calendar::new(Tz::UTC, week, &[]);
        let mon = utc("2026-06-01T00:00:00Z");
        assert!(cal.is_business(mon + 24 * H - 1));
        assert!(cal.is_business(mon + 24 * H));
        assert!(!cal.is_business(mon + 26 * H));
        assert_eq!(cal.between(mon, mon + 48 * H), 4 * H);
        assert_eq!(cal.add(mon + 23 * H, 2 * H), Some(mon + 25 * H));
    }

    #[test]
    fn add_used_up_at_window_end_returns_the_end() {
        let cal = Calendar::new(Tz::UTC, office_week(), &[]);
        let mon_9 = utc("2026-06-01T09:00:00Z");
        assert_eq!(cal.add(mon_9, 3 * H + 30 * M), Some(utc("2026-06-01T12:30:00Z")));
        assert_eq!(cal.add(mon_9, 7 * H), Some(utc("2026-06-01T17:00:00Z")));
        assert_eq!(cal.add(mon_9, 7 * H + 1), Some(utc("2026-06-02T09:00:00.001Z")));
    }

    #[test]
    fn add_zero_returns_start_even_outside_business_time() {
        let cal = Calendar::new(Tz::UTC, office_week(), &[]);
        let sat = utc("2026-06-06T12:00:00Z");
        assert_eq!(cal.add(sat, 0), Some(sat));
        assert_eq!(cal.add(sat, 1), Some(utc("2026-06-08T09:00:00.001Z")));
    }

    #[test]
    fn berlin_spring_forward_window_is_an_hour_shorter() {
        // 2026-03-29 local 02:00–03:00 does not exist: 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z.
        let cal = sunday_night(Berlin, &[]);
        let day = utc("2026-03-28T12:00:00Z");
        assert_eq!(cal.between(day, day + 24 * H), 2 * H);
        assert_eq!(cal.add(day, 2 * H), Some(utc("2026-03-29T02:00:00Z")));
        assert!(cal.is_business(utc("2026-03-29T01:00:00Z")), "03:00 CEST");
    }

    #[test]
    fn berlin_fall_back_repeated_hour_counts_twice() {
        // 2026-10-25 local 02:00–03:00 happens twice: 01:00 CEST = 23:00Z, 04:00 CET = 03:00Z.
        let cal = sunday_night(Berlin, &[]);
        let day = utc("2026-10-24T12:00:00Z");
        assert_eq!(cal.between(day, day + 24 * H), 4 * H);
        assert_eq!(cal.add(day, 4 * H), Some(utc("2026-10-25T03:00:00Z")));
        assert!(cal.is_business(utc("2026-10-25T00:30:00Z")), "first 02:30");
        assert!(cal.is_business(utc("2026-10-25T01:30:00Z")), "second 02:30");
    }

    #[test]
    fn new_york_spring_forward_window_is_an_hour_shorter() {
        // 2026-03-08 local 02:00–03:00 does not exist: 01:00 EST = 06:00Z, 04:00 EDT = 08:00Z.
        let cal = sunday_night(New_York, &[]);
        let day = utc("2026-03-07T18:00:00Z");
        assert_eq!(cal.between(day, day + 24 * H), 2 * H);
        assert_eq!(cal.add(day, 2 * H), Some(utc("2026-03-08T08:00:00Z")));
    }

    #[test]
    fn new_york_fall_back_repeated_hour_counts_twice() {
        // 2026-11-01 local 01:00–02:00 happens twice: 01:00 EDT = 05:00Z, 04:00 EST = 09:00Z.
        let cal = sunday_night(New_York, &[]);
        let day = utc("2026-10-31T18:00:00Z");
        assert_eq!(cal.between(day, day + 24 * H), 4 * H);
        assert_eq!(cal.add(day, 4 * H), Some(utc("2026-11-01T09:00:00Z")));
        assert!(cal.is_business(utc("2026-11-01T05:30:00Z")), "first 01:30");
        assert!(cal.is_business(utc("2026-11-01T06:30:00Z")), "second 01:30");
    }

    #[test]
    fn holiday_on_a_dst_day_removes_the_whole_local_day() {
        let cal = sunday_night(Berlin, &[date("2026-10-25")]);
        let day = utc("2026-10-24T12:00:00Z");
        assert_eq!(cal.between(day, day + 24 * H), 0);
        // The next Sunday (CET) is untouched: 01:00–04:00 = 00:00Z–03:00Z.
        assert_eq!(cal.add(day, 3 * H), Some(utc("2026-11-01T03:00:00Z")));
    }

    #[test]
    fn always_counts_every_millisecond() {
        let cal = Calendar::always();
        assert_eq!(cal.between(RANGE_START, RANGE_END), RANGE_END - RANGE_START);
        assert_eq!(cal.between(5, 12), 7);
        assert_eq!(cal.between(12, 5), 0);
        assert_eq!(cal.add(1_000, 234), Some(1_234));
        assert!(cal.is_business(RANGE_START) && cal.is_business(RANGE_END - 1));
    }

    #[test]
    fn add_past_range_end_is_none() {
        let cal = Calendar::always();
        assert_eq!(cal.add(RANGE_END - 10, 9), Some(RANGE_END - 1));
        assert_eq!(cal.add(RANGE_END - 10, 10), None);
        assert_eq!(cal.add(RANGE_START, i64::MAX), None);
        let office = Calendar::new(Berlin, office_week(), &[]);
        let last_thursday = utc("2099-12-31T08:00:00Z");
        assert_eq!(office.add(last_thursday, 7 * H), Some(utc("2099-12-31T16:00:00Z")));
        assert_eq!(office.add(last_thursday, 7 * H + 1), None);
    }

    #[test]
    fn calendar_without_windows_has_no_business_time() {
        let cal = Calendar::new(Berlin, Default::default(), &[]);
        assert_eq!(cal.between(RANGE_START, RANGE_END), 0);
        assert_eq!(cal.add(RANGE_START, 1), None);
        assert!(!cal.is_business(RANGE_START));
    }

    #[test]
    fn calendar_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Calendar>();
    }

    #[test]
    fn offset_changes_are_found_to_the_millisecond() {
        let segments = offset_segments(Berlin);
        let spring = segments.iter().find(|s| s.0 == utc("2026-03-29T01:00:00Z"));
        assert_eq!(spring.map(|s| s.2), Some(2 * H));
        assert!(segments.windows(2).all(|w| w[0].1 == w[1].0 && w[0].2 != w[1].2));
        assert_eq!(segments.last().map(|s| s.1), Some(RANGE_END));
    }
}

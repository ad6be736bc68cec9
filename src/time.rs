//! Instants and durations as plain integers.
//!
//! An instant is `i64` milliseconds since the Unix epoch (UTC); a duration is `i64`
//! milliseconds. Parsing and formatting are hand-written because they sit on the replay hot
//! path (one parse per event, several formats per SLA event) and the formats are fixed:
//! RFC 3339 with an offset in, `YYYY-MM-DDTHH:MM:SS.sssZ` out. [`wall_now`] is the one read
//! of the wall clock, for the adapters around the pure core.

use std::fmt;
use std::time::SystemTime;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Instant = i64;

const MS_PER_DAY: i64 = 86_400_000;

/// The wall clock, in the engine's unit (ms since the Unix epoch).
///
/// The one wall-clock read, for the adapters (live monitoring, alert delivery, the simulator);
/// never called by the pure engine, which is handed "now" as an argument.
pub fn wall_now() -> Instant {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Parses an RFC 3339 timestamp with offset (`Z` or `±HH:MM`), truncating fractions of a
/// second to milliseconds. Returns `None` for anything else, including leap seconds.
pub fn parse_rfc3339(s: &str) -> Option<Instant> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - frac_start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - frac_start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_ms = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (digits(&b[i + 1..i + 3])?, digits(&b[i + 4..i + 6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60_000;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms)
}

/// An instant as `YYYY-MM-DDTHH:MM:SS.sssZ`, the one output format of slawatch.
pub struct Rfc3339(pub Instant);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        f.write_str(format_into(self.0, &mut buf))
    }
}

/// Formats into a fixed buffer without allocating; years outside 0..=9999 are clamped.
pub fn format_into(t: Instant, buf: &mut [u8; 24]) -> &str {
    let days = t.div_euclid(MS_PER_DAY);
    let ms = t.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999);
    let put = |buf: &mut [u8; 24], at: usize, v: i64, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            buf[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(buf, 0, y, 4);
    buf[4] = b'-';
    put(buf, 5, m, 2);
    buf[7] = b'-';
    put(buf, 8, d, 2);
    buf[10] = b'T';
    put(buf, 11, ms / 3_600_000, 2);
    buf[13] = b':';
    put(buf, 14, ms / 60_000 % 60, 2);
    buf[16] = b':';
    put(buf, 17, ms / 1000 % 60, 2);
    buf[19] = b'.';
    put(buf, 20, ms % 1000, 3);
    buf[23] = b'Z';
    std::str::from_utf8(buf).expect("ASCII digits")
}

/// Parses `90s`, `15m`, `4h`, `1h30m`, `2d`: units `d`, `h`, `m`, `s`, each at most once and
/// in that order; `d` is 24 hours. Returns milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    const UNITS: [(u8, i64); 4] = [(b'd', 86_400_000), (b'h', 3_600_000), (b'm', 60_000), (b's', 1000)];
    let b = s.as_bytes();
    let (mut i, mut next_unit, mut total) = (0, 0, 0i64);
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i == b.len() || i - start > 12 {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let k = next_unit + UNITS[next_unit..].iter().position(|(u, _)| *u == b[i])?;
        total = total.checked_add(n.checked_mul(UNITS[k].1)?)?;
        next_unit = k + 1;
        i += 1;
    }
    Some(total)
}

/// Does a duration string use the `d` unit? (`check-config` warns: `d` is 24 business hours.)
pub fn uses_days(s: &str) -> bool {
    s.contains('d')
}

/// A duration for people, in the units of [`parse_duration`]: its largest unit and the next,
/// rounded down (`1h30m`, `2d4h`, `1h` for 1h0m59s, `45s`; `0s` below a second).
pub fn human_duration(ms: i64) -> String {
    const UNITS: [(char, i64); 4] = [('d', 86_400_000), ('h', 3_600_000), ('m', 60_000), ('s', 1000)];
    let ms = ms.max(0);
    let Some(first) = UNITS.iter().position(|&(_, size)| ms >= size) else {
        return "0s".into();
    };
    let mut out = String::new();
    for i in first..UNITS.len().min(first + 2) {
        let (unit, size) = UNITS[i];
        let n = if i == first {
            ms / size
        } else {
            ms % UNITS[i - 1].1 / size
        };
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn human_durations_keep_the_two_largest_units() {
        let cases = [
            (0, "0s"),
            (999, "0s"),
            (45_000, "45s"),
            (5_400_000, "1h30m"),
            (3_659_000, "1h"),
            (3_661_000, "1h1m"),
            (187_200_000, "2d4h"),
            (60 * 86_400_000, "60d"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_duration(ms), text, "{ms} ms");
            if text != "0s" || ms == 0 {
                assert!(parse_duration(text).is_some_and(|back| back <= ms));
            }
        }
    }

    #[test]
    fn parses_offsets_and_truncates_to_millis() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T19:00:00.0009-05:00"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-24T10:00:00.123456789Z"),
            parse_rfc3339("2026-11-24T10:00:00.123Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-24t10:00:00.5z"),
            Some(parse_rfc3339("2026-11-24T10:00:00Z").unwrap() + 500)
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:00+0100",
            "2026-02-30T10:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:60Z",
            "2026-11-24T10:00:00.Z",
            "2026-11-24T10:00:00Zjunk",
            "２026-11-24T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_with_milliseconds() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Rfc3339(4_102_444_799_999).to_string(), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("2d"), Some(172_800_000));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in ["", "4x", "30", "m", "1m1h", "1h1h", "-1h", "1.5h", "1h 30m"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_roundtrips(t in 0i64..4_102_444_800_000) {
            prop_assert_eq!(parse_rfc3339(&Rfc3339(t).to_string()), Some(t));
        }

        #[test]
        fn agrees_with_chrono(t in 0i64..4_102_444_800_000, off in -14i32 * 60..=14 * 60) {
            use chrono::{FixedOffset, TimeZone, SecondsFormat};
            let tz = FixedOffset::east_opt(off * 60).unwrap();
            let s = tz.timestamp_millis_opt(t).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true);
            prop_assert_eq!(parse_rfc3339(&s), Some(t));
        }
    }
}

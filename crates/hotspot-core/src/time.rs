//! Event time: parsing the timestamps that complaint records carry, writing
//! the timestamps that alerts carry, and the durations that rules are written
//! in.
//!
//! Every instant inside hotspot is an `i64` of Unix epoch milliseconds. We
//! parse RFC 3339 by hand rather than through a date library because the
//! contract (section 5.10) is narrower than what general parsers accept: a
//! `T` separator, seconds, an optional fraction truncated to milliseconds and
//! a `Z` or `±hh:mm` offset — nothing else. Hand-written parsing is also a
//! few nanoseconds per record, which matters when every record carries one.
//!
//! Instants are limited to what can be written back in `+08:00` with a
//! four-digit year ([`MIN_MS`], [`MAX_MS`]); anything outside is `bad_ts`.
//! That bound also keeps all window arithmetic far away from `i64` overflow.

use std::fmt::Write as _;

/// China Standard Time, the offset every written timestamp uses (5.13).
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// `0000-01-01T00:00:00+08:00` in epoch milliseconds.
pub(crate) const MIN_MS: i64 = days_from_civil(0, 1, 1) * 86_400_000 - CST_OFFSET_MS;
/// `9999-12-31T23:59:59.999+08:00` in epoch milliseconds.
pub(crate) const MAX_MS: i64 = days_from_civil(10_000, 1, 1) * 86_400_000 - CST_OFFSET_MS - 1;

/// Wall clock, epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
pub const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

#[inline]
fn digits<const N: usize>(b: &[u8], at: usize) -> Option<i64> {
    let s = b.get(at..at + N)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Parses an RFC 3339 date-time (`2026-03-15T09:27:41.5+08:00`,
/// `...Z`) into epoch milliseconds, truncating fractions of a second.
///
/// Returns `None` for anything else: a space instead of `T`, no offset, an
/// impossible date or time (`2026-02-30`, `25:10`, `09:61`), a leap second,
/// or an instant outside [`MIN_MS`]..=[`MAX_MS`].
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_cached(s, &mut DateCache::default())
}

/// What [`parse_rfc3339_cached`] remembers of the timestamps it read.
///
/// A stream's records come in (roughly) time order, so nearly every
/// timestamp has the date, and most the very minute, of the one before
/// it, and all of them the same offset. Checking the date (month lengths,
/// leap years) and turning it into a day number was half the cost of a
/// parse; a comparison of sixteen bytes (`YYYY-MM-DDTHH:MM`) now replaces
/// the date, hour and minute, and one of six bytes the `+hh:mm` offset.
/// Only valid pieces are remembered, so the cache never changes a result.
#[derive(Debug, Clone, Default)]
pub(crate) struct DateCache {
    /// `YYYY-MM-DD` of the last valid date, once there is one.
    date: Option<[u8; 10]>,
    days: i64,
    /// `YYYY-MM-DDTHH:MM` of the last valid minute, and its minutes since
    /// the epoch (local time, before the offset).
    minute: Option<[u8; 16]>,
    minutes: i64,
    /// The last valid `±hh:mm` offset, and its value in minutes.
    offset: Option<[u8; 6]>,
    offset_min: i64,
}

/// The day number of a valid `YYYY-MM-DD` at the start of `b` (which holds
/// at least 10 bytes), or `None`.
#[inline]
fn parse_date(b: &[u8]) -> Option<i64> {
    let year = digits::<4>(b, 0)?;
    let month = digits::<2>(b, 5)?;
    let day = digits::<2>(b, 8)?;
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// [`parse_rfc3339`], remembering the date in `cache` (same results for
/// any cache contents).
#[inline]
pub(crate) fn parse_rfc3339_cached(s: &str, cache: &mut DateCache) -> Option<i64> {
    let b = s.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS` at 0..19, all in the first 20 bytes: one
    // fixed-size array, so no check below costs a bounds test.
    let t: &[u8; 20] = b.get(..20)?.try_into().ok()?;
    let two = |i: usize| -> Option<i64> {
        let (h, l) = (t[i].wrapping_sub(b'0'), t[i + 1].wrapping_sub(b'0'));
        (h < 10 && l < 10).then(|| (h * 10 + l) as i64)
    };
    let head: [u8; 16] = t[..16].try_into().ok()?;
    let minutes = if cache.minute == Some(head) {
        cache.minutes
    } else {
        let date: [u8; 10] = t[..10].try_into().ok()?;
        let days = if cache.date == Some(date) {
            cache.days
        } else {
            let days = parse_date(b)?;
            cache.date = Some(date);
            cache.days = days;
            days
        };
        if t[10] != b'T' || t[13] != b':' {
            return None;
        }
        let (hour, min) = (two(11)?, two(14)?);
        if hour > 23 || min > 59 {
            return None;
        }
        let minutes = (days * 24 + hour) * 60 + min;
        cache.minute = Some(head);
        cache.minutes = minutes;
        minutes
    };
    if t[16] != b':' {
        return None;
    }
    let sec = two(17)?;
    if sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let rest = &b[i..];
    let offset_min = if cache.offset.is_some_and(|o| o == rest) {
        cache.offset_min
    } else {
        match rest {
            [b'Z'] => 0,
            &[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let d = |c: u8| c.wrapping_sub(b'0') as i64;
                if [h1, h2, m1, m2].iter().any(|c| !c.is_ascii_digit()) {
                    return None;
                }
                let (oh, om) = (d(h1) * 10 + d(h2), d(m1) * 10 + d(m2));
                if oh > 23 || om > 59 {
                    return None;
                }
                let m = if sign == b'-' {
                    -(oh * 60 + om)
                } else {
                    oh * 60 + om
                };
                cache.offset = Some([sign, h1, h2, b':', m1, m2]);
                cache.offset_min = m;
                m
            }
            _ => return None,
        }
    };
    let ms = (minutes - offset_min) * 60_000 + sec * 1000 + millis;
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// Appends `ms` as RFC 3339 in `+08:00`, with milliseconds only when they are
/// not zero (5.13): `2026-03-15T09:27:41+08:00`, `2026-03-15T09:27:41.239+08:00`.
pub(crate) fn write_cst(out: &mut String, ms: i64) {
    let local = ms.clamp(MIN_MS, MAX_MS) + CST_OFFSET_MS;
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let secs = in_day / 1000;
    let frac = in_day % 1000;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m,
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
    out.push_str("+08:00");
}

/// `ms` as RFC 3339 in `+08:00` (see [`write_cst`]).
pub fn format_cst(ms: i64) -> String {
    let mut s = String::with_capacity(29);
    write_cst(&mut s, ms);
    s
}

/// An error in a duration such as `30m`, `1h30m`, `500ms`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {why} (write it like 30m, 90s, 1h30m or 500ms)")]
pub struct DurationError {
    text: String,
    why: &'static str,
}

/// Parses a duration written as one or more `<integer><unit>` parts, units
/// `ms`, `s`, `m`, `h`, `d` (`30m`, `90s`, `1h30m`, `500ms`), into
/// milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let err = |why| DurationError {
        text: text.to_owned(),
        why,
    };
    let b = text.trim().as_bytes();
    if b.is_empty() {
        return Err(err("it is empty"));
    }
    let mut total: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut n: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((b[i] - b'0') as i64))
                .ok_or_else(|| err("it is too large"))?;
            i += 1;
        }
        if i == start {
            return Err(err("expected a number"));
        }
        let unit_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let scale = match &b[unit_start..i] {
            b"ms" => 1,
            b"s" => 1_000,
            b"m" => 60_000,
            b"h" => 3_600_000,
            b"d" => 86_400_000,
            b"" => return Err(err("a number needs a unit")),
            _ => return Err(err("unknown unit")),
        };
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("it is too large"))?;
    }
    Ok(total)
}

/// Writes milliseconds back in the same notation (`1h30m`, `500ms`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut s = String::new();
    let mut rest = ms;
    if rest < 0 {
        s.push('-');
        rest = -rest;
    }
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= scale {
            let _ = write!(s, "{}{}", rest / scale, unit);
            rest %= scale;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        let base = 1_773_537_061_000; // 2026-03-15T09:11:01+08:00
        let cases: &[(&str, Option<i64>)] = &[
            ("2026-03-15T09:11:01+08:00", Some(base)),
            ("2026-03-15T01:11:01Z", Some(base)),
            ("2026-03-15T01:11:01.5Z", Some(base + 500)),
            ("2026-03-15T01:11:01.123456789Z", Some(base + 123)),
            ("2026-03-15T01:11:01.999Z", Some(base + 999)),
            ("2026-03-14T20:11:01-05:00", Some(base)),
            ("2026-03-15T01:11:01-00:00", Some(base)),
            ("2026-03-15 09:11:01+08:00", None),
            ("2026-03-15T09:11:01", None),
            ("2026-03-15t01:11:01Z", None),
            ("2026-03-15T01:11:01z", None),
            ("2026-03-15T01:11Z", None),
            ("2026-03-15T01:11:01.Z", None),
            ("2026-03-15T01:11:01+0800", None),
            ("2026-03-15T01:11:01+08", None),
            ("2026-03-15T01:11:01+24:00", None),
            ("2026-02-30T10:00:00+08:00", None),
            ("2026-03-32T09:00:00+08:00", None),
            ("2026-13-01T09:00:00+08:00", None),
            ("2026-03-15T25:10:00+08:00", None),
            ("2026-03-15T09:61:00+08:00", None),
            ("2026-03-15T09:00:60+08:00", None),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("2023-02-29T00:00:00Z", None),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            ("20260315092741", None),
            ("undefined", None),
            ("", None),
            ("2026-03-15T01:11:01Z ", None),
            ("+2026-03-15T01:11:01Z", None),
            ("２０２６-03-15T01:11:01Z", None),
            ("9999-12-31T15:59:59.999Z", Some(MAX_MS)),
            ("9999-12-31T16:00:00Z", None),
            ("0000-01-01T00:00:00+08:00", Some(MIN_MS)),
            ("0000-01-01T00:00:00+09:00", None),
            ("2026-03-15T09:11:59+08:00", Some(base + 58_000)),
            ("2026-03-15T09:11:01.5+08:00", Some(base + 500)),
            ("2026-03-15T09:11:01+08:60", None),
            ("2026-03-15T09:11:01+8:00", None),
            ("2026-03-15T09:11:01+08:00Z", None),
            ("2026-03-15T09:11:01+08:0", None),
            ("2026-03-15T09:11+01+08:00", None),
            ("2026-03-15T09:11:0x+08:00", None),
            ("2026-03-15T09:11:01+0a:00", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), *want, "{text:?}");
        }
        // One cache through every case, twice over and in both orders: the
        // date remembered from one timestamp never changes another's
        // result (a bad date is never remembered; a good one is re-checked
        // with the rest of each timestamp).
        let mut cache = DateCache::default();
        for (text, want) in cases.iter().chain(cases.iter().rev()).chain(cases) {
            assert_eq!(
                parse_rfc3339_cached(text, &mut cache),
                *want,
                "{text:?} cached"
            );
        }
    }

    #[test]
    fn a_cached_minute_or_offset_never_changes_another_result() {
        let texts = [
            "2026-03-15T09:11:01+08:00",
            "2026-03-15T09:11:30.250+08:00",
            "2026-03-15T09:11:01-05:00",
            "2026-03-15T09:11:01Z",
            "2026-03-15T09:11:60+08:00",
            "2026-03-15T09:11:01+08:61",
            "2026-03-15T09:11:01+24:00",
            "2026-03-15T09:11:01 08:00",
            "2026-03-15T09:12:01+08:00",
            "2026-03-15T24:11:01+08:00",
            "2026-03-15X09:11:01+08:00",
            "2026-02-30T09:11:01+08:00",
            "2026-03-16T09:11:01+08:00",
            "0000-01-01T00:00:00+08:00",
            "0000-01-01T00:00:00+08:01",
        ];
        for a in texts {
            for b in texts {
                let mut cache = DateCache::default();
                parse_rfc3339_cached(a, &mut cache);
                assert_eq!(
                    parse_rfc3339_cached(b, &mut cache),
                    parse_rfc3339(b),
                    "{b:?} after {a:?}"
                );
            }
        }
    }

    #[test]
    fn cst_formatting() {
        let cases: &[(i64, &str)] = &[
            (1_773_537_061_000, "2026-03-15T09:11:01+08:00"),
            (1_773_537_061_239, "2026-03-15T09:11:01.239+08:00"),
            (1_773_537_061_001, "2026-03-15T09:11:01.001+08:00"),
            (0, "1970-01-01T08:00:00+08:00"),
            (-1, "1970-01-01T07:59:59.999+08:00"),
            (-28_800_000, "1970-01-01T00:00:00+08:00"),
            (MAX_MS, "9999-12-31T23:59:59.999+08:00"),
            (MIN_MS, "0000-01-01T00:00:00+08:00"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_cst(*ms), *want);
            assert_eq!(parse_rfc3339(want), Some(*ms), "round trip of {want}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as i64, d as i64), days);
        }
    }

    #[test]
    fn durations_table() {
        let ok: &[(&str, i64)] = &[
            ("30m", 1_800_000),
            ("1m", 60_000),
            ("10m", 600_000),
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1d", 86_400_000),
            ("0s", 0),
            ("1m30s500ms", 90_500),
            (" 5m ", 300_000),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
        for bad in [
            "",
            "30",
            "m",
            "30 m",
            "1.5h",
            "-5m",
            "5y",
            "5M",
            "abc",
            "99999999999999999999h",
            "1h 30m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        for ms in [0, 500, 90_000, 5_400_000, 90_500, 86_400_000 + 1] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }
}

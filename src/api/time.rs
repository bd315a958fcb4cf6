//! RFC 3339 times as the API reads and writes them (RFC 3339 §5.6).
//!
//! Written in UTC with milliseconds (`2026-11-23T02:59:08.123Z`), the
//! precision the store keeps; read with any offset and up to nanosecond
//! fractions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::calendar::civil_from_days;

/// Why a query parameter is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 date-time such as 2026-11-23T00:00:00Z")]
pub struct TimeError(pub String);

/// `t` in UTC with milliseconds. Times before 1970 clamp to the epoch.
pub fn format_rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `date-time` of RFC 3339 §5.6: `full-date "T" full-time`, with
/// `Z` or a numeric offset. A lower-case `t`/`z` and a space for `T` are
/// accepted (§5.6 NOTE). Leap seconds (`:60`) count as the next second.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimeError> {
    let err = || TimeError(text.to_owned());
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(err());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, TimeError> {
        let part = text.get(range).ok_or_else(err)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let sep = |i: usize, allowed: &[u8]| {
        if allowed.contains(&b[i]) {
            Ok(())
        } else {
            Err(err())
        }
    };
    let year = i64::from(num(0..4)?);
    sep(4, b"-")?;
    let month = num(5..7)?;
    sep(7, b"-")?;
    let day = num(8..10)?;
    sep(10, b"Tt ")?;
    let hour = num(11..13)?;
    sep(13, b":")?;
    let minute = num(14..16)?;
    sep(16, b":")?;
    let second = num(17..19)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return Err(err());
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            sep(i + 3, b":")?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return Err(err());
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err(err()),
    };
    let local =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_secs;
    let secs = u64::try_from(utc).map_err(|_| err())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(format_rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(at(1_795_402_748, 123)),
            "2026-11-23T02:59:08.123Z"
        );
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for t in [at(0, 0), at(951_827_696, 7), at(1_795_402_748, 999)] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T03:59:08+01:00").unwrap(),
            at(1_795_402_748, 0)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22t21:29:08.5-05:30").unwrap(),
            at(1_795_402_748, 500)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29 12:34:56z").unwrap(),
            at(951_827_696, 0)
        );
        // Digits past nanoseconds are read and ignored.
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.1234567891Z").unwrap(),
            UNIX_EPOCH + Duration::from_nanos(123_456_789)
        );
    }

    #[test]
    fn rejects_what_is_not_a_date_time() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T00:00:00.Z",
            "2026-11-23T00:00:00+0100",
            "2026-11-23T00:00:00Zjunk",
            "+026-11-23T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-23T00:00:00ü",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn day_counts_agree_with_the_calendar() {
        for days in [-1, 0, 59, 60, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

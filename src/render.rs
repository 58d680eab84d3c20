//! How memtail shows an entry to people: the one renderer behind [`LogBuffer::dump`], the
//! [`on_error`](LogBuffer::on_error) printer, the HTTP snapshot and JSON streams, the viewer page
//! and `memtail tail`.
//!
//! An entry's bytes stay exactly what was written ([`LogBuffer::snapshot`] gives them as they
//! are). Where people read, an entry that has a time ([`Entry::time`]) is shown after it, in
//! RFC 3339 UTC with microseconds, unless its text begins with a time of its own (a date such as
//! `2026-12-04T14:39:53` or `2026-12-04 14:39:53`, or a clock time such as `14:39:53`, after any
//! colour codes and spaces), and ends with one line break:
//!
//! ```text
//! 2026-12-04T14:39:53.123456Z DEBUG request{id=42}: my_app::db: query done rows=3
//! ```
//!
//! Levels are not added: entries from memtail's [`Layer`](crate::Layer) and logger carry their
//! level in their text already (`DEBUG request{id=42}: ...`), as `fmt()`'s lines do, and the
//! viewer and `memtail tail` colour each line by [`Entry::level`]. Terminal escapes are never
//! added either.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let moment = UNIX_EPOCH + Duration::from_micros(1_764_859_193_123_456);
//! assert_eq!(memtail::render::time(moment).to_string(), "2025-12-04T14:39:53.123456Z");
//! assert!(memtail::render::starts_with_time(b"2025-12-04 14:39:53 ready"));
//! assert!(!memtail::render::starts_with_time(b"INFO ready"));
//! ```
//!
//! [`LogBuffer::dump`]: crate::LogBuffer::dump
//! [`LogBuffer::snapshot`]: crate::LogBuffer::snapshot
//! [`Entry::time`]: crate::Entry::time
//! [`Entry::level`]: crate::Entry::level

use std::fmt;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Entry;
#[cfg(doc)]
use crate::LogBuffer;

/// `time` as RFC 3339 in UTC with microseconds (`2026-12-04T14:39:53.123456Z`), for `Display`.
/// A time before the Unix epoch (which no entry has) shows as the epoch.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let shown = memtail::render::time(UNIX_EPOCH + Duration::from_nanos(1_500)).to_string();
/// assert_eq!(shown, "1970-01-01T00:00:00.000001Z");
/// ```
pub fn time(time: SystemTime) -> Rfc3339 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Rfc3339 {
        seconds: since.as_secs(),
        micros: since.subsec_micros(),
    }
}

/// A time shown as RFC 3339 in UTC with microseconds; see [`time`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339 {
    seconds: u64,
    micros: u32,
}

/// The length of a time as [`Rfc3339`] shows it (for years up to 9999).
const RFC3339_LEN: usize = 27;

impl Rfc3339 {
    /// The 27 bytes of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    fn bytes(self) -> [u8; RFC3339_LEN] {
        let days = self.seconds / 86_400;
        let of_day = self.seconds % 86_400;
        let (year, month, day) = civil(days);
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        // Years past 9999 (the year 2554 is as far as an entry's time goes) keep their last
        // four digits: never reached.
        digits(&mut out[0..4], year % 10_000);
        digits(&mut out[5..7], month);
        digits(&mut out[8..10], day);
        digits(&mut out[11..13], of_day / 3600);
        digits(&mut out[14..16], of_day / 60 % 60);
        digits(&mut out[17..19], of_day % 60);
        digits(&mut out[20..26], u64::from(self.micros));
        out
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.bytes();
        f.pad(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

/// Writes `n` in decimal into all of `out`, with leading zeros.
fn digits(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The proleptic Gregorian date of the day `days` after 1970-01-01: Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch.
fn civil(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so that the leap day ends a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` begins with a time of its own: after any SGR colour codes (`\x1b[...m`) and
/// white space, a date (`2026-12-04T` or `2026-12-04 `) or a clock time (`14:39:53`). Such a line
/// is shown without the entry's time before it. The viewer page applies the same rule.
///
/// # Examples
///
/// ```
/// use memtail::render::starts_with_time;
///
/// assert!(starts_with_time(b"2026-12-04T14:39:53.123Z  INFO ready"));
/// assert!(starts_with_time(b"\x1b[2m14:39:53\x1b[0m ready"));
/// assert!(!starts_with_time(b"ready at 14:39:53"));
/// ```
pub fn starts_with_time(text: &[u8]) -> bool {
    let rest = skip_space_and_colours(text);
    let shape = |pattern: &[u8]| {
        rest.len() >= pattern.len()
            && pattern.iter().zip(rest).all(|(&want, &got)| match want {
                b'9' => got.is_ascii_digit(),
                b'T' => got == b'T' || got == b' ',
                other => got == other,
            })
    };
    shape(b"9999-99-99T") || shape(b"99:99:99")
}

/// `text` after the spaces, tabs and SGR colour codes (`\x1b[32m`) it starts with.
pub(crate) fn skip_space_and_colours(mut text: &[u8]) -> &[u8] {
    loop {
        match text {
            [b' ' | b'\t', rest @ ..] => text = rest,
            [0x1b, b'[', rest @ ..] => {
                let codes = rest
                    .iter()
                    .take_while(|b| b.is_ascii_digit() || **b == b';')
                    .count();
                match rest.get(codes) {
                    Some(b'm') => text = &rest[codes + 1..],
                    _ => return text,
                }
            }
            _ => return text,
        }
    }
}

/// Writes `entry` as a line, as people read it: its time first when it has one and its text
/// does not begin with a time, then its bytes, then a line break unless they end with one.
pub(crate) fn write_line(
    out: &mut impl Write,
    time: Option<SystemTime>,
    text: &[u8],
) -> io::Result<()> {
    if let Some(time) = time.filter(|_| !starts_with_time(text)) {
        let mut stamp = [0; RFC3339_LEN + 1];
        stamp[..RFC3339_LEN].copy_from_slice(&self::time(time).bytes());
        stamp[RFC3339_LEN] = b' ';
        out.write_all(&stamp)?;
    }
    out.write_all(text)?;
    if text.ends_with(b"\n") {
        Ok(())
    } else {
        out.write_all(b"\n")
    }
}

impl Entry {
    /// The entry as memtail shows it to people (see [`render`](crate::render)): its time
    /// in RFC 3339 UTC with microseconds when it has one (and its text has none of its own),
    /// then its text as UTF-8 (invalid bytes as U+FFFD), ending with one line break.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"no time here");
    /// assert_eq!(buf.entries()[0].rendered().to_string(), "no time here\n");
    ///
    /// let timed = memtail::LogBuffer::builder().timestamps(true).build();
    /// timed.append(b"ready\n");
    /// let line = timed.entries()[0].rendered().to_string();
    /// // 2026-12-04T14:39:53.123456Z ready
    /// assert_eq!((line.len(), &line[26..]), (34, "Z ready\n"));
    /// ```
    pub fn rendered(&self) -> Rendered<'_> {
        Rendered(self)
    }
}

/// An [`Entry`] as people read it, for `Display`; see [`Entry::rendered`].
#[derive(Debug)]
pub struct Rendered<'a>(&'a Entry);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = Vec::with_capacity(self.0.len() + RFC3339_LEN + 2);
        write_line(&mut line, self.0.time(), self.0).map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn shown(nanos: u64) -> String {
        time(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string()
    }

    #[test]
    fn dates_across_leap_years_and_centuries() {
        assert_eq!(shown(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day of a century divisible by 400), 23:59:59.999999999.
        assert_eq!(
            shown(951_868_799_999_999_999),
            "2000-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            shown(951_868_800_000_000_000),
            "2000-03-01T00:00:00.000000Z"
        );
        // 2100 is not a leap year: 2100-02-28 is followed by 2100-03-01.
        assert_eq!(
            shown(4_107_542_400_000_000_000),
            "2100-03-01T00:00:00.000000Z"
        );
        assert_eq!(
            shown(1_798_761_599_000_001_000),
            "2026-12-31T23:59:59.000001Z"
        );
        assert_eq!(shown(u64::MAX), "2554-07-21T23:34:33.709551Z");
        assert_eq!(
            time(UNIX_EPOCH - Duration::from_secs(1)).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        // Every day for 1000 years follows the one before, by the calendar's rules.
        let leap = |y: u64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let next = |(y, m, d): (u64, u64, u64)| {
            let days = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            match (d < days, m < 12) {
                (true, _) => (y, m, d + 1),
                (false, true) => (y, m + 1, 1),
                (false, false) => (y + 1, 1, 1),
            }
        };
        let mut last = (1969, 12, 31);
        for day in 0..365_250 {
            let date = civil(day);
            assert_eq!(date, next(last), "day {day}");
            last = date;
        }
        assert_eq!(last, (2970, 1, 7));
    }

    #[test]
    fn lines_get_a_time_unless_they_have_one() {
        let at = Some(UNIX_EPOCH + Duration::from_micros(1_500_000));
        let line = |time, text: &[u8]| {
            let mut out = Vec::new();
            write_line(&mut out, time, text).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(line(at, b"ready"), "1970-01-01T00:00:01.500000Z ready\n");
        assert_eq!(line(at, b"ready\n"), "1970-01-01T00:00:01.500000Z ready\n");
        assert_eq!(line(None, b"ready"), "ready\n");
        assert_eq!(line(at, b"12:00:01 ready\n"), "12:00:01 ready\n");
        assert_eq!(
            line(at, b"  \x1b[2m2026-01-01 12:00:01\x1b[0m ready"),
            "  \x1b[2m2026-01-01 12:00:01\x1b[0m ready\n"
        );
        for other in [
            &b"12:00 ready"[..],
            b"2026-1-01 x",
            b"\x1b[2J12:00:01",
            b"",
            b"1",
        ] {
            assert!(!starts_with_time(other), "{other:?}");
        }
    }
}

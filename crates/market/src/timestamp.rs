//! Timestamps as market data files write them, read into UTC.
//!
//! Files come from brokers, exchanges, pandas and spreadsheets, each with its own habit, and a column never
//! says which one it follows. [`TimeParser`] tries the accepted shapes in turn and remembers the one that
//! worked, so a long file costs one hand-written parse per row instead of a chrono format search.
//!
//! Accepted, all read as UTC unless they carry an offset:
//! - RFC 3339 / ISO 8601: `2017-01-03T09:30:00Z`, `2017-01-03T11:30:00.250+02:00`
//! - `YYYY-MM-DD HH:MM[:SS[.fff]]` with an optional zone (`Z`, `UTC`, `+00:00`), and `YYYY-MM-DD`
//! - `YYYYMMDD HH:MM[:SS]`, `YYYYMMDD HHMMSS` and `YYYYMMDD` (QuantConnect Lean)
//! - `DD.MM.YYYY HH:MM:SS.fff` (Dukascopy and MetaTrader exports)
//! - `M/D/YYYY [H:MM[:SS] [AM|PM]]` (US spreadsheets)
//! - integer Unix time in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude

use chrono::{DateTime, NaiveDate, Utc};

/// Parses one timestamp in any accepted shape. For many rows, [`TimeParser`] is faster.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    TimeParser::default().parse(text.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Iso,
    Compact,
    Dotted,
    Slashed,
    Epoch,
}

// Compact goes before Epoch so that an eight-digit `20070101` is a date, not a second in 1970.
const SHAPES: [Shape; 5] = [Shape::Iso, Shape::Compact, Shape::Dotted, Shape::Slashed, Shape::Epoch];

/// Parses a column of timestamps, trying the shape of the previous row first.
#[derive(Debug, Default, Clone)]
pub struct TimeParser {
    last: Option<Shape>,
}

impl TimeParser {
    pub fn parse(&mut self, raw: &[u8]) -> Option<DateTime<Utc>> {
        let text = raw.trim_ascii();
        if let Some(shape) = self.last
            && let Some(t) = parse_shape(shape, text)
        {
            return Some(t);
        }
        for shape in SHAPES {
            if Some(shape) == self.last {
                continue;
            }
            if let Some(t) = parse_shape(shape, text) {
                self.last = Some(shape);
                return Some(t);
            }
        }
        None
    }
}

fn parse_shape(shape: Shape, text: &[u8]) -> Option<DateTime<Utc>> {
    let mut c = Cursor { b: text, i: 0 };
    let t = match shape {
        Shape::Iso => iso(&mut c)?,
        Shape::Compact => compact(&mut c)?,
        Shape::Dotted => dotted(&mut c)?,
        Shape::Slashed => slashed(&mut c)?,
        Shape::Epoch => return epoch(text),
    };
    c.done().then_some(t)
}

/// A calendar time plus the UTC offset it was written in.
#[derive(Default)]
struct Parts {
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_secs: i64,
}

fn build(year: u32, month: u32, day: u32, p: &Parts) -> Option<DateTime<Utc>> {
    let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(p.hour, p.minute, p.second, p.nanos)?
        .and_utc();
    local.checked_sub_signed(chrono::Duration::seconds(p.offset_secs))
}

fn iso(c: &mut Cursor) -> Option<DateTime<Utc>> {
    let year = c.digits(4)?;
    c.expect(b'-')?;
    let month = c.digits(2)?;
    c.expect(b'-')?;
    let day = c.digits(2)?;
    let mut parts = Parts::default();
    if !c.done() {
        match c.next()? {
            b'T' | b't' | b' ' => {}
            _ => return None,
        }
        clock(c, &mut parts)?;
        zone(c, &mut parts)?;
    }
    build(year, month, day, &parts)
}

fn compact(c: &mut Cursor) -> Option<DateTime<Utc>> {
    let year = c.digits(4)?;
    let month = c.digits(2)?;
    let day = c.digits(2)?;
    let mut parts = Parts::default();
    if !c.done() {
        match c.next()? {
            b'T' | b' ' => {}
            _ => return None,
        }
        parts.hour = c.digits(2)?;
        if c.eat(b':') {
            parts.minute = c.digits(2)?;
            if c.eat(b':') {
                parts.second = c.digits(2)?;
                fraction(c, &mut parts)?;
            }
        } else {
            parts.minute = c.digits(2)?;
            if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                parts.second = c.digits(2)?;
            }
        }
        zone(c, &mut parts)?;
    }
    build(year, month, day, &parts)
}

fn dotted(c: &mut Cursor) -> Option<DateTime<Utc>> {
    let day = c.digits_between(1, 2)?;
    c.expect(b'.')?;
    let month = c.digits_between(1, 2)?;
    c.expect(b'.')?;
    let year = c.digits(4)?;
    let mut parts = Parts::default();
    if !c.done() {
        c.expect(b' ')?;
        clock(c, &mut parts)?;
        zone(c, &mut parts)?;
    }
    build(year, month, day, &parts)
}

fn slashed(c: &mut Cursor) -> Option<DateTime<Utc>> {
    let month = c.digits_between(1, 2)?;
    c.expect(b'/')?;
    let day = c.digits_between(1, 2)?;
    c.expect(b'/')?;
    let year = c.digits(4)?;
    let mut parts = Parts::default();
    if !c.done() {
        c.expect(b' ')?;
        parts.hour = c.digits_between(1, 2)?;
        c.expect(b':')?;
        parts.minute = c.digits(2)?;
        if c.eat(b':') {
            parts.second = c.digits(2)?;
            fraction(c, &mut parts)?;
        }
        c.eat(b' ');
        let meridiem = match (c.peek().map(|b| b.to_ascii_uppercase()), c.peek_at(1)) {
            (Some(b'A'), Some(b'M' | b'm')) => Some(false),
            (Some(b'P'), Some(b'M' | b'm')) => Some(true),
            _ => None,
        };
        if let Some(pm) = meridiem {
            c.i += 2;
            if !(1..=12).contains(&parts.hour) {
                return None;
            }
            parts.hour = parts.hour % 12 + if pm { 12 } else { 0 };
        }
        zone(c, &mut parts)?;
    }
    build(year, month, day, &parts)
}

fn epoch(text: &[u8]) -> Option<DateTime<Utc>> {
    // Nine digits at least: a small integer in a time column is far likelier a row index than a 1970 date.
    if !(9..=19).contains(&text.len()) || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    // Seconds run to 1e11 in the year 5138, milliseconds pass 1e11 in 1973: magnitude tells them apart.
    let nanos = if value < 100_000_000_000 {
        value.checked_mul(1_000_000_000)?
    } else if value < 100_000_000_000_000 {
        value.checked_mul(1_000_000)?
    } else if value < 100_000_000_000_000_000 {
        value.checked_mul(1_000)?
    } else {
        value
    };
    Some(DateTime::from_timestamp_nanos(nanos))
}

/// `HH:MM[:SS[.fff]]`
fn clock(c: &mut Cursor, parts: &mut Parts) -> Option<()> {
    parts.hour = c.digits(2)?;
    c.expect(b':')?;
    parts.minute = c.digits(2)?;
    if c.eat(b':') {
        parts.second = c.digits(2)?;
        fraction(c, parts)?;
    }
    Some(())
}

fn fraction(c: &mut Cursor, parts: &mut Parts) -> Option<()> {
    if !(c.eat(b'.') || c.eat(b',')) {
        return Some(());
    }
    let start = c.i;
    let mut nanos: u32 = 0;
    let mut places = 0;
    while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
        // Digits past nanoseconds carry nothing a candle or tick can use.
        if places < 9 {
            nanos = nanos * 10 + u32::from(b - b'0');
            places += 1;
        }
        c.i += 1;
    }
    if c.i == start {
        return None;
    }
    parts.nanos = nanos * 10u32.pow(9 - places);
    Some(())
}

/// An optional zone: `Z`, `UTC`, `GMT`, `+HH:MM`, `+HHMM` or `+HH`, possibly after one space.
fn zone(c: &mut Cursor, parts: &mut Parts) -> Option<()> {
    if c.done() {
        return Some(());
    }
    c.eat(b' ');
    let rest = &c.b[c.i..];
    if rest.eq_ignore_ascii_case(b"z") {
        c.i += 1;
        return Some(());
    }
    if rest.eq_ignore_ascii_case(b"utc") || rest.eq_ignore_ascii_case(b"gmt") {
        c.i += 3;
        return Some(());
    }
    let sign: i64 = match c.next()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = c.digits(2)?;
    let minutes = if c.done() {
        0
    } else {
        c.eat(b':');
        c.digits(2)?
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    parts.offset_secs = sign * i64::from(hours * 3600 + minutes * 60);
    Some(())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> bool {
        if self.peek() == Some(want) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        self.eat(want).then_some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let bytes = self.b.get(self.i..self.i + n)?;
        let mut value = 0u32;
        for &b in bytes {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.i += n;
        Some(value)
    }

    /// Between `min` and `max` ASCII digits, as many as there are.
    fn digits_between(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.i += 1;
                    n += 1;
                }
                _ => break,
            }
        }
        (n >= min).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn every_documented_shape() {
        let t = utc(2017, 1, 3, 9, 30, 0);
        for text in [
            "2017-01-03T09:30:00Z",
            "2017-01-03t09:30:00z",
            "2017-01-03T11:30:00+02:00",
            "2017-01-03T04:30:00-0500",
            "2017-01-03T10:30:00+01",
            "2017-01-03 09:30:00",
            "2017-01-03 09:30",
            "2017-01-03 09:30:00 UTC",
            "2017-01-03 09:30:00+00:00",
            "20170103 09:30",
            "20170103 09:30:00",
            "20170103 093000",
            "03.01.2017 09:30:00",
            "03.01.2017 09:30",
            "3.1.2017 09:30:00",
            "1/3/2017 9:30",
            "01/03/2017 09:30:00",
            "1/3/2017 9:30 AM",
            "1/3/2017 9:30:00am",
            "1483435800",
            "1483435800000",
            "1483435800000000",
            "1483435800000000000",
            "  2017-01-03T09:30:00Z  ",
        ] {
            assert_eq!(parse_timestamp(text), Some(t), "{text}");
        }
        for text in ["2017-01-03", "20170103", "03.01.2017", "1/3/2017"] {
            assert_eq!(parse_timestamp(text), Some(utc(2017, 1, 3, 0, 0, 0)), "{text}");
        }
        assert_eq!(parse_timestamp("1/3/2017 12:05 PM"), Some(utc(2017, 1, 3, 12, 5, 0)));
        assert_eq!(parse_timestamp("1/3/2017 12:05 AM"), Some(utc(2017, 1, 3, 0, 5, 0)));
        assert_eq!(parse_timestamp("1/3/2017 1:05 PM"), Some(utc(2017, 1, 3, 13, 5, 0)));
    }

    #[test]
    fn fractions_keep_their_precision() {
        let t = parse_timestamp("01.01.2017 22:00:00.123").unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 123);
        let t = parse_timestamp("2013-01-01 22:00:00.295000+00:00").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 295_000_000);
        let t = parse_timestamp("2013-01-01T22:00:00.1234567891Z").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(parse_timestamp("1483435800123").unwrap().timestamp_subsec_millis(), 123);
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for text in [
            "",
            "abc",
            "2017-13-01",
            "2017-02-30",
            "2017-01-03 25:00",
            "2017-01-03T09:30:00+25:00",
            "2017-01-03 09:30:00 EST",
            "20171301 00:00",
            "32.01.2017",
            "13/32/2017",
            "1/3/17",
            "1/3/2017 13:00 PM",
            "12345",
            "12345678",
            "1.5e9",
            "-1483435800",
            "2017-01-03T09:30:00Zjunk",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text:?}");
        }
    }

    #[test]
    fn parser_recovers_when_the_shape_changes() {
        let mut p = TimeParser::default();
        assert!(p.parse(b"20170103 09:30").is_some());
        assert_eq!(p.last, Some(Shape::Compact));
        assert_eq!(p.parse(b"2017-01-03T09:31:00Z"), Some(utc(2017, 1, 3, 9, 31, 0)));
        assert_eq!(p.last, Some(Shape::Iso));
        assert!(p.parse(b"nonsense").is_none());
        assert_eq!(p.last, Some(Shape::Iso));
    }
}

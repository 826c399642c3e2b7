//! The statsd line protocol, parsed in place: `name:value|type[|@rate][|#tags]`, several lines
//! per datagram or stream chunk separated by `\n`.
//!
//! | type | meaning | value |
//! |---|---|---|
//! | `c` | counter, scaled by `1 / rate` | a number (may be negative or fractional) |
//! | `ms`, `h` | timer (`h`: DogStatsD histogram, aggregated as a timer) | a number |
//! | `g` | gauge: a plain number sets it, a signed one (`+3`, `-2`) moves it | a number |
//! | `s` | set: counts distinct values per interval | any token |
//!
//! `|@rate` is a sample rate in (0, 1]; `|#tag:v,tag2` are DogStatsD tags, kept raw for the
//! caller. Blank lines and trailing `\r`, spaces or tabs are ignored. Nothing is copied and
//! nothing allocates: a [`Metric`] borrows the line. A malformed line is a [`ParseError`] that
//! says why; the other lines of the datagram are unaffected ([`Lines`] yields each line's
//! result).

use std::fmt;

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `c`: added up over the interval.
    Counter,
    /// `ms` or `h`: every sample kept for the interval's statistics.
    Timer,
    /// `g`: the last value; `delta` when the value was signed (`+n` / `-n`) and moves the gauge.
    Gauge {
        /// The value is added to the current gauge instead of replacing it.
        delta: bool,
    },
    /// `s`: the number of distinct values seen in the interval.
    Set,
}

/// One parsed statsd line, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// The bucket name (non-empty, UTF-8, no whitespace).
    pub name: &'a str,
    /// The kind.
    pub kind: Kind,
    /// The numeric value (0 for sets).
    pub value: f64,
    /// The value as sent (a set's member).
    pub raw_value: &'a [u8],
    /// The sample rate, 1 when absent.
    pub sample_rate: f64,
    /// DogStatsD tags as sent (`tag:v,tag2`), empty when absent.
    pub tags: &'a str,
}

/// Why a line is not a statsd metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// No `:` between name and value.
    NoColon,
    /// Nothing before the `:`.
    EmptyName,
    /// The name is not UTF-8 or holds whitespace or control characters.
    BadName,
    /// No `|type` after the value.
    NoType,
    /// The type is none of `c`, `ms`, `h`, `g`, `s`.
    BadType,
    /// The value is not a finite number (counters, timers, gauges) or is empty.
    BadValue,
    /// `@rate` is not a number in (0, 1].
    BadSampleRate,
    /// The tags are not UTF-8.
    BadTags,
    /// A `|` section after the type that is neither `@rate` nor `#tags`.
    UnknownSection,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::NoColon => "no ':' between name and value",
            ParseError::EmptyName => "empty name",
            ParseError::BadName => "the name is not UTF-8 or holds whitespace",
            ParseError::NoType => "no '|type' after the value",
            ParseError::BadType => "unknown type (c, ms, h, g or s)",
            ParseError::BadValue => "the value is not a finite number",
            ParseError::BadSampleRate => "the sample rate is not a number in (0, 1]",
            ParseError::BadTags => "the tags are not UTF-8",
            ParseError::UnknownSection => "unknown section after the type (only @rate and #tags)",
        })
    }
}

impl std::error::Error for ParseError {}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

fn number(s: &[u8]) -> Option<f64> {
    // `str::parse` would also take "inf", "NaN" and "infinity": a statsd value is digits, a
    // sign, a point and an exponent only.
    if s.is_empty()
        || !s
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    // SAFETY: every byte was just checked to be ASCII.
    let text = unsafe { std::str::from_utf8_unchecked(s) };
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses one line (no `\n` inside; surrounding whitespace is ignored).
pub fn parse_line(line: &[u8]) -> Result<Metric<'_>, ParseError> {
    let line = trim(line);
    let colon = memchr::memchr(b':', line).ok_or(ParseError::NoColon)?;
    let name = &line[..colon];
    if name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    if name
        .iter()
        .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ParseError::BadName);
    }
    let name = if name.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        unsafe { std::str::from_utf8_unchecked(name) }
    } else {
        std::str::from_utf8(name).map_err(|_| ParseError::BadName)?
    };
    let rest = &line[colon + 1..];
    let pipe = memchr::memchr(b'|', rest).ok_or(ParseError::NoType)?;
    let raw_value = &rest[..pipe];
    let rest = &rest[pipe + 1..];
    let (ty, mut sections) = match memchr::memchr(b'|', rest) {
        Some(p) => (&rest[..p], Some(&rest[p + 1..])),
        None => (rest, None),
    };
    let kind = match ty {
        b"c" => Kind::Counter,
        b"ms" | b"h" => Kind::Timer,
        b"g" => Kind::Gauge {
            delta: matches!(raw_value.first(), Some(b'+' | b'-')),
        },
        b"s" => Kind::Set,
        _ => return Err(ParseError::BadType),
    };
    let value = match kind {
        Kind::Set => {
            if raw_value.is_empty() {
                return Err(ParseError::BadValue);
            }
            0.0
        }
        _ => number(raw_value).ok_or(ParseError::BadValue)?,
    };
    let mut sample_rate = 1.0;
    let mut tags = "";
    while let Some(s) = sections {
        let (section, next) = match memchr::memchr(b'|', s) {
            Some(p) => (&s[..p], Some(&s[p + 1..])),
            None => (s, None),
        };
        match section.first() {
            Some(b'@') => {
                sample_rate = number(&section[1..])
                    .filter(|r| *r > 0.0 && *r <= 1.0)
                    .ok_or(ParseError::BadSampleRate)?;
            }
            Some(b'#') => {
                tags = std::str::from_utf8(&section[1..]).map_err(|_| ParseError::BadTags)?;
            }
            _ => return Err(ParseError::UnknownSection),
        }
        sections = next;
    }
    Ok(Metric {
        name,
        kind,
        value,
        raw_value,
        sample_rate,
        tags,
    })
}

/// The lines of a datagram or stream chunk, each parsed; blank lines are skipped.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

/// Iterates over the statsd lines of `data`.
pub fn lines(data: &[u8]) -> Lines<'_> {
    Lines { rest: data }
}

impl<'a> Iterator for Lines<'a> {
    /// The parsed metric, or the error with the offending line.
    type Item = Result<Metric<'a>, (ParseError, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, rest) = match memchr::memchr(b'\n', self.rest) {
                Some(p) => (&self.rest[..p], &self.rest[p + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if trim(line).is_empty() {
                continue;
            }
            return Some(parse_line(line).map_err(|e| (e, line)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_timers_gauges_sets_and_rates() {
        let m = parse_line(b"gorets:1|c").unwrap();
        assert_eq!(
            (m.name, m.kind, m.value, m.sample_rate),
            ("gorets", Kind::Counter, 1.0, 1.0)
        );
        let m = parse_line(b"gorets:2|c|@0.1").unwrap();
        assert_eq!((m.value, m.sample_rate), (2.0, 0.1));
        let m = parse_line(b"glork:320.5|ms").unwrap();
        assert_eq!((m.kind, m.value), (Kind::Timer, 320.5));
        assert_eq!(parse_line(b"h:3|h").unwrap().kind, Kind::Timer);
        let m = parse_line(b"gaugor:333|g").unwrap();
        assert_eq!((m.kind, m.value), (Kind::Gauge { delta: false }, 333.0));
        let m = parse_line(b"gaugor:-10|g").unwrap();
        assert_eq!((m.kind, m.value), (Kind::Gauge { delta: true }, -10.0));
        let m = parse_line(b"gaugor:+4|g").unwrap();
        assert_eq!((m.kind, m.value), (Kind::Gauge { delta: true }, 4.0));
        let m = parse_line(b"uniques:765|s").unwrap();
        assert_eq!((m.kind, m.raw_value), (Kind::Set, &b"765"[..]));
        let m = parse_line(b"page.views:1|c|@0.5|#env:prod,canary\r").unwrap();
        assert_eq!((m.sample_rate, m.tags), (0.5, "env:prod,canary"));
        let m = parse_line(b"t:1|ms|#a:b|@0.25").unwrap();
        assert_eq!((m.sample_rate, m.tags), (0.25, "a:b"));
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, err) in [
            (&b"a:b|c"[..], ParseError::BadValue),
            (b":1|c", ParseError::EmptyName),
            (b"x:1|zz", ParseError::BadType),
            (b"x:1|c|@abc", ParseError::BadSampleRate),
            (b"x:1|c|@0", ParseError::BadSampleRate),
            (b"x:1|c|@1.5", ParseError::BadSampleRate),
            (b"x:1", ParseError::NoType),
            (b"x", ParseError::NoColon),
            (b"x:|c", ParseError::BadValue),
            (b"x:inf|c", ParseError::BadValue),
            (b"x:NaN|ms", ParseError::BadValue),
            (b"a b:1|c", ParseError::BadName),
            (b"\xff:1|c", ParseError::BadName),
            (b"x:1|c|zz", ParseError::UnknownSection),
            (b"x:1|c|", ParseError::UnknownSection),
            (b"x:|s", ParseError::BadValue),
        ] {
            assert_eq!(
                parse_line(line),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn several_lines_per_datagram_each_on_its_own() {
        let data = b"a:1|c\n\nb:x|c\r\n  c:2|g  \nd:1|zz\ne:5|ms";
        let got: Vec<_> = lines(data)
            .map(|r| r.map(|m| m.name).map_err(|(e, _)| e))
            .collect();
        assert_eq!(
            got,
            [
                Ok("a"),
                Err(ParseError::BadValue),
                Ok("c"),
                Err(ParseError::BadType),
                Ok("e")
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_names_come_from_the_input(data: Vec<u8>) {
            for m in lines(&data).flatten() {
                proptest::prop_assert!(!m.name.is_empty());
                proptest::prop_assert!(m.value.is_finite());
                proptest::prop_assert!(m.sample_rate > 0.0 && m.sample_rate <= 1.0);
            }
        }

        #[test]
        fn well_formed_lines_round_trip(
            name in "[a-z][a-z0-9_.]{0,20}",
            value in -1.0e9f64..1.0e9,
            ty in proptest::sample::select(vec!["c", "ms", "g", "h"]),
            rate in 0.01f64..=1.0,
        ) {
            let line = format!("{name}:{value}|{ty}|@{rate}");
            let m = parse_line(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(m.name, name.as_str());
            proptest::prop_assert_eq!(m.value, value);
            proptest::prop_assert_eq!(m.sample_rate, rate);
        }
    }
}

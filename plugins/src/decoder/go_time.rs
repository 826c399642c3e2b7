//! Go's time layouts (`02/Jan/2006:15:04:05 -0700`), parsed as Go's `time.ParseInLocation` reads
//! them, and Heka's `ForgivingTimeParse` around it: the `Epoch*` layouts, and Go's standard
//! layouts tried in turn when the configured one does not match. Calendar and time-zone
//! arithmetic is jiff's.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// One element of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    Literal(String),
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TzName,
    /// A numeric offset: `Z` allowed, colons, whether minutes and seconds are written.
    Offset {
        z: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    /// `.000` (exactly n digits) or `.999` (optional, any digits); `,` works as `.`.
    Fraction {
        digits: usize,
        optional: bool,
    },
}

/// A parsed Go layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout(Vec<Chunk>);

const OFFSETS: [(&str, bool, bool, bool, bool); 10] = [
    ("Z07:00:00", true, true, true, true),
    ("-07:00:00", false, true, true, true),
    ("Z070000", true, false, true, true),
    ("-070000", false, false, true, true),
    ("Z07:00", true, true, true, false),
    ("-07:00", false, true, true, false),
    ("Z0700", true, false, true, false),
    ("-0700", false, false, true, false),
    ("Z07", true, false, false, false),
    ("-07", false, false, false, false),
];

impl Layout {
    /// Splits a layout into Go's elements, as Go's `nextStdChunk` finds them.
    pub(crate) fn new(layout: &str) -> Layout {
        let mut chunks = Vec::new();
        let mut literal = String::new();
        let mut rest = layout;
        while let Some(c) = rest.chars().next() {
            let (chunk, len) = std_chunk(rest);
            match chunk {
                Some(ch) => {
                    if !literal.is_empty() {
                        chunks.push(Chunk::Literal(std::mem::take(&mut literal)));
                    }
                    chunks.push(ch);
                    rest = &rest[len..];
                }
                None => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            chunks.push(Chunk::Literal(literal));
        }
        Layout(chunks)
    }
}

/// The element at the start of `s`, and its length.
fn std_chunk(s: &str) -> (Option<Chunk>, usize) {
    let b = s.as_bytes();
    let starts = |p: &str| s.starts_with(p);
    let fraction = |i: usize| -> Option<(Chunk, usize)> {
        // `.0`, `.00`, … or `.9`, … followed by a non-digit (Go's rule).
        let digit = *b.get(i + 1)?;
        if digit != b'0' && digit != b'9' {
            return None;
        }
        let mut j = i + 1;
        while j < b.len() && b[j] == digit {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return None;
        }
        Some((
            Chunk::Fraction {
                digits: j - i - 1,
                optional: digit == b'9',
            },
            j - i,
        ))
    };
    match b[0] {
        b'J' if starts("January") => (Some(Chunk::LongMonth), 7),
        b'J' if starts("Jan") => (Some(Chunk::Month), 3),
        b'M' if starts("Monday") => (Some(Chunk::LongWeekDay), 6),
        b'M' if starts("Mon") => (Some(Chunk::WeekDay), 3),
        b'M' if starts("MST") => (Some(Chunk::TzName), 3),
        b'0' if b.len() >= 2 && (b'1'..=b'6').contains(&b[1]) => {
            let c = match b[1] {
                b'1' => Chunk::ZeroMonth,
                b'2' => Chunk::ZeroDay,
                b'3' => Chunk::ZeroHour12,
                b'4' => Chunk::ZeroMinute,
                b'5' => Chunk::ZeroSecond,
                _ => Chunk::Year,
            };
            (Some(c), 2)
        }
        b'0' if starts("002") => (Some(Chunk::ZeroYearDay), 3),
        b'1' if starts("15") => (Some(Chunk::Hour), 2),
        b'1' => (Some(Chunk::NumMonth), 1),
        b'2' if starts("2006") => (Some(Chunk::LongYear), 4),
        b'2' => (Some(Chunk::Day), 1),
        b'_' if starts("_2006") => (Some(Chunk::Literal("_".into())), 1),
        b'_' if starts("__2") => (Some(Chunk::UnderYearDay), 3),
        b'_' if starts("_2") => (Some(Chunk::UnderDay), 2),
        b'3' => (Some(Chunk::Hour12), 1),
        b'4' => (Some(Chunk::Minute), 1),
        b'5' => (Some(Chunk::Second), 1),
        b'P' if starts("PM") => (Some(Chunk::PM), 2),
        b'p' if starts("pm") => (Some(Chunk::Pm), 2),
        b'-' | b'Z' => {
            for (p, z, colon, minutes, seconds) in OFFSETS {
                if starts(p) {
                    return (
                        Some(Chunk::Offset {
                            z,
                            colon,
                            minutes,
                            seconds,
                        }),
                        p.len(),
                    );
                }
            }
            (None, 0)
        }
        b'.' | b',' => match fraction(0) {
            Some((c, n)) => (Some(c), n),
            None => (None, 0),
        },
        _ => (None, 0),
    }
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The index of the name in `names` that `s` starts with (ASCII case-insensitively, as Go's
/// `lookup`), and the rest of `s`.
fn lookup<'s>(names: &[&str], short: bool, s: &'s str) -> Option<(usize, &'s str)> {
    for (i, name) in names.iter().enumerate() {
        let name = if short { &name[..3] } else { name };
        if s.len() >= name.len() && s.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return Some((i, &s[name.len()..]));
        }
    }
    None
}

/// A number of `min..=max` digits at the start of `s`.
fn digits(s: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// Go's `getnum`: one or two digits, exactly two when `fixed`.
fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    digits(s, if fixed { 2 } else { 1 }, 2)
}

/// Go's `skip`: the literal must follow, a run of spaces in it matching any run of spaces.
fn skip<'s>(mut value: &'s str, literal: &str) -> Option<&'s str> {
    let mut lit = literal;
    while let Some(c) = lit.chars().next() {
        if c == ' ' {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            lit = lit.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        if !value.starts_with(c) {
            return None;
        }
        lit = &lit[c.len_utf8()..];
        value = &value[c.len_utf8()..];
    }
    Some(value)
}

/// Nanoseconds of a fraction `.ddd` (the separator included in `s[..n]`; bytes, so that `n`
/// may end inside a character: then they are no digits).
fn nanos(s: &str, n: usize) -> Option<i64> {
    let digits = s.as_bytes().get(1..n)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut ns: i64 = 0;
    for (i, &d) in digits.iter().enumerate() {
        if i < 9 {
            ns = ns * 10 + i64::from(d - b'0');
        }
    }
    for _ in digits.len()..9 {
        ns *= 10;
    }
    Some(ns)
}

/// What a layout read from a text.
#[derive(Debug, Default)]
struct Parts {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    yday: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
    pm: Option<bool>,
    offset: Option<i32>,
    zone_name: Option<String>,
}

impl Layout {
    fn read(&self, text: &str) -> Option<Parts> {
        let mut p = Parts::default();
        let mut v = text;
        let chunks = &self.0;
        for (i, chunk) in chunks.iter().enumerate() {
            match chunk {
                Chunk::Literal(l) => v = skip(v, l)?,
                Chunk::LongYear => {
                    if v.len() < 4 || !v.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                    p.year = Some(v[..4].parse().ok()?);
                    v = &v[4..];
                }
                Chunk::Year => {
                    let (y, r) = digits(v, 2, 2)?;
                    p.year = Some(if y >= 69 { 1900 + y } else { 2000 + y });
                    v = r;
                }
                Chunk::LongMonth | Chunk::Month => {
                    let (m, r) = lookup(&LONG_MONTHS, *chunk == Chunk::Month, v)?;
                    p.month = Some(m as i64 + 1);
                    v = r;
                }
                Chunk::NumMonth | Chunk::ZeroMonth => {
                    let (m, r) = getnum(v, *chunk == Chunk::ZeroMonth)?;
                    if !(1..=12).contains(&m) {
                        return None;
                    }
                    p.month = Some(m);
                    v = r;
                }
                Chunk::LongWeekDay | Chunk::WeekDay => {
                    v = lookup(&LONG_DAYS, *chunk == Chunk::WeekDay, v)?.1;
                }
                Chunk::Day | Chunk::UnderDay | Chunk::ZeroDay => {
                    if *chunk == Chunk::UnderDay && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    let (d, r) = getnum(v, *chunk == Chunk::ZeroDay)?;
                    p.day = Some(d);
                    v = r;
                }
                Chunk::UnderYearDay | Chunk::ZeroYearDay => {
                    if *chunk == Chunk::UnderYearDay {
                        for _ in 0..2 {
                            if v.starts_with(' ') {
                                v = &v[1..];
                            }
                        }
                    }
                    let min = if *chunk == Chunk::ZeroYearDay { 3 } else { 1 };
                    let (d, r) = digits(v, min, 3)?;
                    if !(1..=366).contains(&d) {
                        return None;
                    }
                    p.yday = Some(d);
                    v = r;
                }
                Chunk::Hour => {
                    let (h, r) = getnum(v, false)?;
                    if h > 23 {
                        return None;
                    }
                    p.hour = h;
                    v = r;
                }
                Chunk::Hour12 | Chunk::ZeroHour12 => {
                    let (h, r) = getnum(v, *chunk == Chunk::ZeroHour12)?;
                    if h > 12 {
                        return None;
                    }
                    p.hour = h;
                    v = r;
                }
                Chunk::Minute | Chunk::ZeroMinute => {
                    let (m, r) = getnum(v, *chunk == Chunk::ZeroMinute)?;
                    if m > 59 {
                        return None;
                    }
                    p.minute = m;
                    v = r;
                }
                Chunk::Second | Chunk::ZeroSecond => {
                    let (s, r) = getnum(v, *chunk == Chunk::ZeroSecond)?;
                    if s > 59 {
                        return None;
                    }
                    p.second = s;
                    v = r;
                    // A fraction the layout does not ask for is read all the same.
                    let b = v.as_bytes();
                    let next_is_fraction =
                        matches!(chunks.get(i + 1), Some(Chunk::Fraction { .. }));
                    if !next_is_fraction
                        && b.len() >= 2
                        && (b[0] == b'.' || b[0] == b',')
                        && b[1].is_ascii_digit()
                    {
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        p.nanos = nanos(v, n)?;
                        v = &v[n..];
                    }
                }
                Chunk::Fraction { digits, optional } => {
                    let b = v.as_bytes();
                    if *optional {
                        if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !b[1].is_ascii_digit()
                        {
                            continue;
                        }
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        p.nanos = nanos(v, n)?;
                        v = &v[n..];
                    } else {
                        let n = 1 + digits;
                        if b.len() < n || !(b[0] == b'.' || b[0] == b',') {
                            return None;
                        }
                        p.nanos = nanos(v, n)?;
                        v = &v[n..];
                    }
                }
                Chunk::PM | Chunk::Pm => {
                    let (am, pm) = if *chunk == Chunk::PM {
                        ("AM", "PM")
                    } else {
                        ("am", "pm")
                    };
                    if v.starts_with(pm) {
                        p.pm = Some(true);
                    } else if v.starts_with(am) {
                        p.pm = Some(false);
                    } else {
                        return None;
                    }
                    v = &v[2..];
                }
                Chunk::Offset {
                    z,
                    colon,
                    minutes,
                    seconds,
                } => {
                    if *z && v.starts_with('Z') {
                        v = &v[1..];
                        p.offset = Some(0);
                        continue;
                    }
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => return None,
                    };
                    v = &v[1..];
                    let (hh, r) = digits(v, 2, 2)?;
                    v = r;
                    let mut secs = hh * 3600;
                    if *minutes {
                        if *colon {
                            v = v.strip_prefix(':')?;
                        }
                        let (mm, r) = digits(v, 2, 2)?;
                        v = r;
                        secs += mm * 60;
                    }
                    if *seconds {
                        if *colon {
                            v = v.strip_prefix(':')?;
                        }
                        let (ss, r) = digits(v, 2, 2)?;
                        v = r;
                        secs += ss;
                    }
                    if hh > 24 {
                        return None;
                    }
                    p.offset = Some(sign * secs as i32);
                }
                Chunk::TzName => {
                    // Go's parseTimeZone, its common cases: three to five upper-case letters
                    // (ending in T beyond three), or GMT with an hour offset.
                    if let Some(r) = v.strip_prefix("GMT") {
                        let n = r
                            .bytes()
                            .enumerate()
                            .take_while(|(i, c)| {
                                (*i == 0 && (*c == b'+' || *c == b'-'))
                                    || (*i > 0 && c.is_ascii_digit())
                            })
                            .count();
                        let hours = if n >= 2 {
                            r[..n].parse::<i32>().ok()?
                        } else {
                            0
                        };
                        // Go: GMT+h with at most 23 hours.
                        if !(-23..=23).contains(&hours) {
                            return None;
                        }
                        p.offset = Some(hours * 3600);
                        v = &r[if n >= 2 { n } else { 0 }..];
                        continue;
                    }
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    let ok = n == 3 || ((4..=5).contains(&n) && v.as_bytes()[n - 1] == b'T');
                    if !ok {
                        return None;
                    }
                    if &v[..n] == "UTC" {
                        p.offset = Some(0);
                    } else {
                        p.zone_name = Some(v[..n].to_string());
                    }
                    v = &v[n..];
                }
            }
        }
        if !v.is_empty() {
            return None;
        }
        if let Some(pm) = p.pm {
            if pm && p.hour < 12 {
                p.hour += 12;
            } else if !pm && p.hour == 12 {
                p.hour = 0;
            }
        }
        Some(p)
    }
}

/// Where Heka takes what a layout leaves out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Today {
    /// The current year and date, in the location.
    pub(crate) year: i16,
    pub(crate) month: i8,
    pub(crate) day: i8,
}

impl Today {
    /// Now, in `tz`.
    pub(crate) fn in_zone(tz: &TimeZone) -> Today {
        let dt = tz.to_datetime(jiff::Timestamp::now());
        Today {
            year: dt.year(),
            month: dt.month(),
            day: dt.day(),
        }
    }
}

/// `text` read with `layout` in `tz`, as nanoseconds since the epoch. A text without a year
/// takes the current one, a text with only a time today's date (Heka's rule: Go gives year 0).
fn parse_layout(layout: &Layout, text: &str, tz: &TimeZone, today: Option<Today>) -> Option<i64> {
    let p = layout.read(text)?;
    // The date of now in the zone, only looked up when the text has no year.
    let today = || today.unwrap_or_else(|| Today::in_zone(tz));
    let (year, month, day) = match (p.year, p.month, p.day, p.yday) {
        (None, None | Some(1), None | Some(1), None) => (
            i64::from(today().year),
            i64::from(today().month),
            i64::from(today().day),
        ),
        (None, m, d, _) => (i64::from(today().year), m.unwrap_or(1), d.unwrap_or(1)),
        (Some(y), m, d, _) => (y, m.unwrap_or(1), d.unwrap_or(1)),
    };
    let date = if let (Some(yd), None, None) = (p.yday, p.month, p.day) {
        jiff::civil::Date::new(i16::try_from(year).ok()?, 1, 1)
            .ok()?
            .with()
            .day_of_year(i16::try_from(yd).ok()?)
            .build()
            .ok()?
    } else {
        jiff::civil::Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?
    };
    let dt = DateTime::from_parts(
        date,
        jiff::civil::Time::new(p.hour as i8, p.minute as i8, p.second as i8, p.nanos as i32)
            .ok()?,
    );
    let ts = match (p.offset, &p.zone_name) {
        (Some(secs), _) => Offset::from_seconds(secs).ok()?.to_timestamp(dt).ok()?,
        (None, Some(name)) => {
            // Go: the location's offset when it uses this abbreviation then, else offset 0.
            let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            let info = tz.to_offset_info(ts);
            if info.abbreviation() == name {
                ts
            } else {
                Offset::UTC.to_timestamp(dt).ok()?
            }
        }
        (None, None) => tz.to_ambiguous_timestamp(dt).compatible().ok()?,
    };
    i64::try_from(ts.as_nanosecond()).ok()
}

/// Go's standard layouts, which Heka tries when the configured one fails.
const BASIC_LAYOUTS: [&str; 15] = [
    "Mon Jan _2 15:04:05 2006",
    "Mon Jan _2 15:04:05 MST 2006",
    "Mon Jan 02 15:04:05 -0700 2006",
    "02 Jan 06 15:04 MST",
    "02 Jan 06 15:04 -0700",
    "Monday, 02-Jan-06 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05 -0700",
    "2006-01-02T15:04:05Z07:00",
    "2006-01-02T15:04:05.999999999Z07:00",
    "3:04PM",
    "Jan _2 15:04:05",
    "Jan _2 15:04:05.000",
    "Jan _2 15:04:05.000000",
    "Jan _2 15:04:05.000000000",
];

/// A `timestamp_layout`: an `Epoch*` unit or a Go layout with Go's standard ones behind it.
#[derive(Debug, Clone)]
pub(crate) enum TimestampLayout {
    /// Seconds (9), milli- (6), micro- (3) or nanoseconds (0) since the epoch: the power of ten
    /// to nanoseconds.
    Epoch(u32),
    /// A Go layout.
    Go(Box<Layout>, Vec<Layout>),
}

impl TimestampLayout {
    /// The layout named by the option; `Err` for an `Epoch…` name Heka does not know.
    pub(crate) fn new(layout: &str) -> Result<TimestampLayout, String> {
        if let Some(unit) = layout.strip_prefix("Epoch") {
            let exp = match unit {
                "" => 9,
                "Milli" => 6,
                "Micro" => 3,
                "Nano" => 0,
                _ => {
                    return Err(format!(
                        "unrecognized `Epoch` time format {layout:?}: Epoch, EpochMilli, EpochMicro or EpochNano"
                    ));
                }
            };
            return Ok(TimestampLayout::Epoch(exp));
        }
        Ok(TimestampLayout::Go(
            Box::new(Layout::new(layout)),
            BASIC_LAYOUTS.iter().map(|l| Layout::new(l)).collect(),
        ))
    }

    /// `text` as nanoseconds since the epoch; `today` is the date of now in `tz` (looked up
    /// when `None` and needed).
    pub(crate) fn parse(&self, text: &str, tz: &TimeZone, today: Option<Today>) -> Option<i64> {
        match self {
            TimestampLayout::Epoch(exp) => epoch(text, *exp),
            TimestampLayout::Go(layout, basic) => parse_layout(layout, text, tz, today)
                .or_else(|| basic.iter().find_map(|l| parse_layout(l, text, tz, today))),
        }
    }
}

/// Heka's `Epoch` parsing: an unsigned decimal, a fraction no finer than a nanosecond.
fn epoch(text: &str, exp: u32) -> Option<i64> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_digits = u32::try_from(frac.len()).ok()?;
    if frac_digits > exp || (text.contains('.') && frac.is_empty() && exp == 0) {
        return None;
    }
    let mut n: u64 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    let n = n.checked_mul(10u64.checked_pow(exp - frac_digits)?)?;
    i64::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Today = Today {
        year: 2026,
        month: 12,
        day: 7,
    };

    fn ns(s: &str) -> i64 {
        let t: jiff::Timestamp = s.parse().unwrap();
        t.as_nanosecond() as i64
    }

    fn parse(layout: &str, text: &str) -> Option<i64> {
        TimestampLayout::new(layout)
            .unwrap()
            .parse(text, &TimeZone::UTC, Some(TODAY))
    }

    fn parse_in(layout: &str, text: &str, zone: &str) -> Option<i64> {
        let tz = jiff::tz::db().get(zone).unwrap();
        TimestampLayout::new(layout)
            .unwrap()
            .parse(text, &tz, Some(TODAY))
    }

    /// Heka's own test vectors (plugins/payload/payload_decoder_test.go).
    #[test]
    fn heka_vectors() {
        assert_eq!(
            parse("02/Jan/2006:15:04:05 -0700", "18/Apr/2013:14:00:28 -0700"),
            Some(1_366_318_828_000_000_000)
        );
        // Kitchen, by fallback: today's date.
        assert_eq!(
            parse("02/Jan/2006:15:04:05 -0700", "5:16PM"),
            Some(ns("2026-12-07T17:16:00Z"))
        );
        assert_eq!(
            parse_in(
                "02/Jan/2006:15:04:05",
                "18/Apr/2013:14:00:28",
                "America/Los_Angeles"
            ),
            Some(ns("2013-04-18T21:00:28Z"))
        );
        // PayloadJsonDecoder's default ISO 8601 by fallback (RFC3339Nano).
        assert_eq!(
            parse("", "2013-08-13T10:32:00.000Z"),
            Some(1_376_389_920_000_000_000)
        );
    }

    #[test]
    fn go_layout_elements() {
        assert_eq!(
            parse("2006-01-02 15:04:05.000", "2014-02-10 12:58:58.123"),
            Some(ns("2014-02-10T12:58:58.123Z"))
        );
        // A fraction the layout does not name is read too; `.999` is optional.
        assert_eq!(
            parse("2006-01-02 15:04:05", "2014-02-10 12:58:58.5"),
            Some(ns("2014-02-10T12:58:58.5Z"))
        );
        assert_eq!(
            parse("2006-01-02 15:04:05.999", "2014-02-10 12:58:58"),
            Some(ns("2014-02-10T12:58:58Z"))
        );
        assert_eq!(
            parse("2006-01-02 15:04:05.000", "2014-02-10 12:58:58"),
            None
        );
        assert_eq!(
            parse("2 Jan 06 3:04 MST", "18 Apr 81 3:01 GMT+3"),
            Some(ns("1981-04-18T00:01:00Z"))
        );
        // Found by the fuzz target: an hour offset that overflows, a fixed fraction that ends
        // inside a character.
        assert_eq!(
            parse("2 Jan 06 3:04 MST", "18 Apr 81 3:01 GMT+3100000"),
            None
        );
        assert_eq!(
            parse(
                "02/Jan/2006:15:04:05.000 -0700",
                "18/Apr/2013:14:00:28.07\u{e6}00"
            ),
            None
        );
        // Year without century, month names any case, weekday ignored, space-padded day.
        assert_eq!(
            parse("Mon, 2 Jan 06 3:04pm", "tue, 4 FEB 14 1:05pm"),
            Some(ns("2014-02-04T13:05:00Z"))
        );
        assert_eq!(
            parse("Jan _2 15:04:05", "Feb  4 01:02:03"),
            Some(ns("2026-02-04T01:02:03Z"))
        );
        assert_eq!(
            parse("January 2, 2006 15:04 MST", "March 9, 2015 08:00 UTC"),
            Some(ns("2015-03-09T08:00:00Z"))
        );
        // A zone name the location uses then gives its offset.
        assert_eq!(
            parse_in(
                "2006-01-02 15:04 MST",
                "2015-07-09 08:00 PDT",
                "America/Los_Angeles"
            ),
            Some(ns("2015-07-09T15:00:00Z"))
        );
        assert_eq!(
            parse("2006-01-02T15:04:05Z07:00", "2015-07-09T08:00:00+02:00"),
            Some(ns("2015-07-09T06:00:00Z"))
        );
        assert_eq!(
            parse("2006-01-02T15:04:05Z07:00", "2015-07-09T08:00:00Z"),
            Some(ns("2015-07-09T08:00:00Z"))
        );
        // `-07:00` takes no `Z`, but RFC3339 behind it does.
        let layout = Layout::new("2006-01-02T15:04:05-07:00");
        assert!(layout.read("2015-07-09T08:00:00Z").is_none());
        assert_eq!(
            parse("2006-01-02T15:04:05-07:00", "2015-07-09T08:00:00Z"),
            Some(ns("2015-07-09T08:00:00Z"))
        );
        assert_eq!(
            parse("2006.002 15:04", "2016.060 10:00"),
            Some(ns("2016-02-29T10:00:00Z"))
        );
        // Impossible dates and trailing text fail (and no standard layout takes them).
        assert_eq!(parse("2006-01-02", "2015-02-30"), None);
        assert_eq!(parse("2006-01-02", "2015-02-03 and more"), None);
        assert_eq!(parse("2006-01-02 15:04", "2015-02-03 24:00"), None);
    }

    #[test]
    fn epoch_layouts() {
        assert_eq!(
            parse("Epoch", "1366318828"),
            Some(1_366_318_828_000_000_000)
        );
        assert_eq!(
            parse("Epoch", "1366318828.25"),
            Some(1_366_318_828_250_000_000)
        );
        assert_eq!(
            parse("EpochMilli", "1366318828123"),
            Some(1_366_318_828_123_000_000)
        );
        assert_eq!(
            parse("EpochMilli", "1366318828123.5"),
            Some(1_366_318_828_123_500_000)
        );
        assert_eq!(
            parse("EpochMicro", "1366318828123456"),
            Some(1_366_318_828_123_456_000)
        );
        assert_eq!(
            parse("EpochNano", "1366318828123456789"),
            Some(1_366_318_828_123_456_789)
        );
        assert_eq!(parse("EpochNano", "1.5"), None, "no partial nanoseconds");
        assert_eq!(
            parse("EpochMilli", "1.1234567"),
            None,
            "finer than a nanosecond"
        );
        assert_eq!(parse("Epoch", "-5"), None);
        assert_eq!(parse("Epoch", "99999999999999999999"), None, "overflow");
        assert_eq!(parse("Epoch", ""), None);
        assert!(TimestampLayout::new("EpochSeconds").is_err());
    }
}

//! The syslog parser: one line in, borrowed slices out, no allocation. RFC 5424 strictly (a
//! malformed header or structured data is an error), RFC 3164 as real senders write it.
//!
//! RFC 3164 has no grammar to speak of; what is accepted, in order:
//!
//! 1. `<PRI>`, or nothing (then a timestamp must follow, or the line is not syslog);
//! 2. a Cisco sequence number (`123: `), and after it possibly the device name (`router1: `),
//!    when a timestamp follows;
//! 3. a timestamp, `Mmm dd hh:mm:ss` (day space-padded or not, `*` or `.` in front and
//!    `.mmm` fractions and a `YYYY ` before the time as Cisco writes them, a `:` after it) or
//!    ISO 8601 / RFC 3339 (`2026-11-24T21:33:12.123456+01:00`, rsyslog's high-precision
//!    format); without one the message has the time of reception;
//! 4. after a timestamp, the hostname — unless the next word is already shaped like a tag
//!    (local senders such as `logger` over `/dev/log` write none);
//! 5. a tag, `prog[pid]:`, `prog:` or `prog[pid]`; a word not shaped like one is the start of
//!    the message;
//! 6. the message: the rest, after the spaces that follow the tag.

use super::time::{Civil, Clock};

/// The syslog format of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Rfc5424,
    Rfc3164,
}

/// A parsed line: every part borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Syslog<'a> {
    pub format: Format,
    /// The PRI value (facility × 8 + severity), if the line has one.
    pub pri: Option<u8>,
    /// Nanoseconds since the epoch; `None` for NILVALUE or no timestamp.
    pub timestamp: Option<i64>,
    pub hostname: Option<&'a [u8]>,
    /// RFC 5424 APP-NAME, PROCID and MSGID (`None` for NILVALUE).
    pub app_name: Option<&'a [u8]>,
    pub procid: Option<&'a [u8]>,
    pub msgid: Option<&'a [u8]>,
    /// RFC 5424 STRUCTURED-DATA, checked (empty for NILVALUE); see [`sd_params`].
    pub structured_data: &'a [u8],
    /// RFC 3164 TAG as written (`sshd[42]:`).
    pub tag: Option<&'a [u8]>,
    /// The program: the tag without `[pid]` and `:`, or RFC 5424's APP-NAME.
    pub programname: Option<&'a [u8]>,
    /// The process id of the tag, or a numeric PROCID.
    pub pid: Option<i32>,
    /// The message, without a UTF-8 BOM and without the line end; `None` when there is none.
    pub msg: Option<&'a [u8]>,
}

/// Why a line is not syslog.
pub(super) type ParseError = &'static str;

/// Parses one line (a line end, `\r\n` or `\n`, and NULs at the end are ignored).
pub(super) fn parse<'a>(line: &'a [u8], clock: &mut Clock) -> Result<Syslog<'a>, ParseError> {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    let line = &line[..end];
    if line.is_empty() {
        return Err("empty line");
    }
    let (pri, rest) = if line[0] == b'<' {
        let (pri, n) = parse_pri(line).ok_or("invalid PRI")?;
        (Some(pri), &line[n..])
    } else {
        (None, line)
    };
    if pri.is_some()
        && let Some((version, after)) = rfc5424_version(rest)
    {
        if version != b"1" {
            return Err("unsupported syslog protocol version (RFC 5424 knows 1 only)");
        }
        return parse_5424(pri, after, clock);
    }
    parse_3164(pri, rest, clock)
}

/// `<N>` with 1 to 3 digits and N ≤ 191; the value and the length taken.
fn parse_pri(line: &[u8]) -> Option<(u8, usize)> {
    let mut v: u32 = 0;
    let mut i = 1;
    while i < line.len() && i <= 4 && line[i].is_ascii_digit() {
        v = v * 10 + u32::from(line[i] - b'0');
        i += 1;
    }
    let digits = i - 1;
    if !(1..=3).contains(&digits) || line.get(i) != Some(&b'>') || v > 191 {
        return None;
    }
    Some((v as u8, i + 1))
}

/// After the PRI: `VERSION SP` followed by a timestamp or NILVALUE marks RFC 5424 (a version
/// other than 1 too, so that it is refused rather than read as RFC 3164).
fn rfc5424_version(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let digits = rest
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || rest[0] == b'0' || rest.get(digits) != Some(&b' ') {
        return None;
    }
    let after = &rest[digits + 1..];
    match after.first() {
        Some(b'-') | Some(b'0'..=b'9') => Some((&rest[..digits], after)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 5424

/// A header field: PRINTUSASCII up to the next SP; NILVALUE is `None`. Returns the rest after
/// the SP.
fn header_field(s: &[u8], what: ParseError) -> Result<(Option<&[u8]>, &[u8]), ParseError> {
    // One pass that finds the SP and checks the bytes before it (fields are short: a loop
    // beats a memchr call and a second pass).
    let mut sp = 0;
    loop {
        match s.get(sp) {
            Some(b' ') if sp > 0 => break,
            Some(33..=126) => sp += 1,
            _ => return Err(what),
        }
    }
    let field = &s[..sp];
    let value = if field == b"-" { None } else { Some(field) };
    Ok((value, &s[sp + 1..]))
}

fn parse_5424<'a>(
    pri: Option<u8>,
    s: &'a [u8],
    clock: &mut Clock,
) -> Result<Syslog<'a>, ParseError> {
    let (timestamp, s) = if let Some(rest) = s.strip_prefix(b"- ") {
        (None, rest)
    } else {
        let (civil, offset, n) = parse_iso(s).ok_or("invalid RFC 5424 timestamp")?;
        let ns = to_ns(&civil, offset, clock).ok_or("invalid RFC 5424 timestamp")?;
        if s.get(n) != Some(&b' ') {
            return Err("invalid RFC 5424 timestamp");
        }
        (Some(ns), &s[n + 1..])
    };
    let (hostname, s) = header_field(s, "invalid RFC 5424 HOSTNAME")?;
    let (app_name, s) = header_field(s, "invalid RFC 5424 APP-NAME")?;
    let (procid, s) = header_field(s, "invalid RFC 5424 PROCID")?;
    let (msgid, s) = header_field(s, "invalid RFC 5424 MSGID")?;
    let (structured_data, sd_len) = if s.first() == Some(&b'-') {
        (&s[..0], 1)
    } else {
        let n = structured_data_len(s)?;
        (&s[..n], n)
    };
    let msg = match s.get(sd_len) {
        None => None,
        Some(b' ') => {
            let m = &s[sd_len + 1..];
            Some(m.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(m))
        }
        Some(_) => return Err("structured data not followed by a space"),
    };
    let pid = procid.and_then(parse_pid);
    Ok(Syslog {
        format: Format::Rfc5424,
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        tag: None,
        programname: app_name,
        pid,
        msg,
    })
}

fn parse_pid(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = v * 10 + i64::from(d - b'0');
    }
    i32::try_from(v).ok()
}

/// SD-NAME: 1 to 32 PRINTUSASCII except `=`, SP, `]` and `"`.
fn sd_name_len(s: &[u8]) -> usize {
    s.iter()
        .take(33)
        .take_while(|&&b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
        .count()
}

/// The length of the SD-ELEMENTs at the start of `s` (at least one), checked: names, quotes,
/// escapes. An unescaped `]` inside a value is an error, as RFC 5424 requires it escaped.
pub(super) fn structured_data_len(s: &[u8]) -> Result<usize, ParseError> {
    const TRUNCATED: ParseError = "truncated or malformed structured data";
    let mut i = 0;
    if s.first() != Some(&b'[') {
        return Err("structured data must be - or [id ...]");
    }
    while s.get(i) == Some(&b'[') {
        i += 1;
        let id = sd_name_len(&s[i..]);
        if id == 0 || id > 32 {
            return Err("invalid SD-ID in structured data");
        }
        i += id;
        loop {
            match s.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => {
                    i += 1;
                    let name = sd_name_len(&s[i..]);
                    if name == 0 || name > 32 {
                        return Err("invalid PARAM-NAME in structured data");
                    }
                    i += name;
                    if s.get(i..i + 2) != Some(b"=\"") {
                        return Err(TRUNCATED);
                    }
                    i += 2;
                    i += param_value_len(&s[i..])?;
                    // The closing quote.
                    i += 1;
                }
                _ => return Err(TRUNCATED),
            }
        }
    }
    Ok(i)
}

/// The length of an escaped PARAM-VALUE up to (not including) its closing quote.
fn param_value_len(s: &[u8]) -> Result<usize, ParseError> {
    const TRUNCATED: ParseError = "truncated or malformed structured data";
    // Values are short: a plain loop.
    let mut i = 0;
    loop {
        match s.get(i) {
            None => return Err(TRUNCATED),
            Some(b'"') => return Ok(i),
            Some(b']') => return Err("unescaped ] in a structured data value"),
            // A backslash escapes the next byte (RFC 5424 keeps a backslash before any other
            // byte as it is; either way the next byte is not special).
            Some(b'\\') if i + 1 < s.len() => i += 2,
            Some(b'\\') => return Err(TRUNCATED),
            Some(_) => i += 1,
        }
    }
}

/// One SD-PARAM (or a parameterless SD-ELEMENT, with `name` and `value` `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SdParam<'a> {
    pub id: &'a [u8],
    pub name: Option<&'a [u8]>,
    /// Still escaped: see [`unescape`].
    pub value: &'a [u8],
}

/// The parameters of STRUCTURED-DATA already checked by [`structured_data_len`], in order; an
/// element without parameters yields one entry without a name.
pub(super) fn sd_params(sd: &[u8]) -> impl Iterator<Item = SdParam<'_>> {
    let mut i = 0;
    let mut id: &[u8] = &[];
    let mut in_element = false;
    std::iter::from_fn(move || {
        loop {
            if !in_element {
                if sd.get(i) != Some(&b'[') {
                    return None;
                }
                i += 1;
                let n = sd_name_len(&sd[i..]);
                id = &sd[i..i + n];
                i += n;
                in_element = true;
                if sd.get(i) == Some(&b']') {
                    i += 1;
                    in_element = false;
                    return Some(SdParam {
                        id,
                        name: None,
                        value: &[],
                    });
                }
            }
            match sd.get(i) {
                Some(b' ') => {
                    i += 1;
                    let n = sd_name_len(&sd[i..]);
                    let name = &sd[i..i + n];
                    i += n + 2;
                    let len = param_value_len(&sd[i..]).unwrap_or(sd.len() - i);
                    let value = &sd[i..i + len];
                    i += len + 1;
                    return Some(SdParam {
                        id,
                        name: Some(name),
                        value,
                    });
                }
                Some(b']') => {
                    i += 1;
                    in_element = false;
                }
                _ => return None,
            }
        }
    })
}

/// Appends a PARAM-VALUE with its escapes (`\"`, `\\`, `\]`) resolved; a backslash before any
/// other byte stays, as RFC 5424 says.
pub(super) fn unescape(value: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &value[i..]) {
        out.extend_from_slice(&value[i..i + at]);
        i += at;
        match value.get(i + 1) {
            Some(&c @ (b'"' | b'\\' | b']')) => {
                out.push(c);
                i += 2;
            }
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out.extend_from_slice(&value[i..]);
}

// ---------------------------------------------------------------------------------------------
// Timestamps

fn digits_n(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// `.fraction` at `at`: (nanoseconds, length taken); digits past the ninth are read and dropped.
fn fraction(s: &[u8], at: usize) -> (u32, usize) {
    const SCALE: [u32; 10] = [
        1_000_000_000,
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1_000,
        100,
        10,
        1,
    ];
    if s.get(at) != Some(&b'.') {
        return (0, 0);
    }
    let mut ns = 0u32;
    let mut digits = 0;
    while let Some(&b) = s.get(at + 1 + digits) {
        if !b.is_ascii_digit() {
            break;
        }
        if digits < 9 {
            ns = ns * 10 + u32::from(b - b'0');
        }
        digits += 1;
    }
    if digits == 0 {
        return (0, 0);
    }
    (ns * SCALE[digits.min(9)], 1 + digits)
}

/// `hh:mm:ss` at `at`.
fn clock_time(s: &[u8], at: usize) -> Option<(u8, u8, u8)> {
    let h = digits_n(s, at, 2)?;
    let m = digits_n(s, at + 3, 2)?;
    let sec = digits_n(s, at + 6, 2)?;
    if s[at + 2] != b':' || s[at + 5] != b':' {
        return None;
    }
    Some((h as u8, m as u8, sec as u8))
}

/// RFC 3339 / ISO 8601 `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm|±hhmm]` at the start of `s`:
/// the date-time, its offset in seconds (`None`: written without one) and the length taken.
/// The year has exactly four digits.
fn parse_iso(s: &[u8]) -> Option<(Civil, Option<i32>, usize)> {
    // The fixed part, `YYYY-MM-DDThh:mm:ss`, checked at once.
    let b: &[u8; 19] = s.get(..19)?.try_into().ok()?;
    let d = |i: usize| b[i].wrapping_sub(b'0');
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if DIGITS.iter().any(|&i| d(i) > 9)
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] | 0x20) != b't'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let two = |i: usize| d(i) * 10 + d(i + 1);
    let year = u32::from(two(0)) * 100 + u32::from(two(2));
    let (month, day) = (two(5), two(8));
    let (hour, minute, second) = (two(11), two(14), two(17));
    let (nanos, frac) = fraction(s, 19);
    let mut n = 19 + frac;
    let offset = match s.get(n) {
        Some(b'Z' | b'z') => {
            n += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits_n(s, n + 1, 2)?;
            let (om, len) = if s.get(n + 3) == Some(&b':') {
                (digits_n(s, n + 4, 2)?, 6)
            } else {
                (digits_n(s, n + 3, 2)?, 5)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            n += len;
            let secs = (oh * 3600 + om * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };
    let civil = Civil {
        year: year as i32,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    civil.is_valid().then_some((civil, offset, n))
}

/// Nanoseconds of a date-time with an offset, or in the clock's zone without one.
fn to_ns(c: &Civil, offset: Option<i32>, clock: &mut Clock) -> Option<i64> {
    match offset {
        Some(secs) => c.as_utc_ns()?.checked_sub(i64::from(secs) * 1_000_000_000),
        None => clock.zone.local_to_ns(c),
    }
}

fn month_of(name: &[u8]) -> Option<u8> {
    let b = name.get(..3)?;
    // ASCII lower case, so that `JAN` and `jan` read as `Jan`.
    let key = [b[0] | 0x20, b[1] | 0x20, b[2] | 0x20];
    let m = match &key {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(m)
}

/// A BSD timestamp `Mmm dd hh:mm:ss` at the start of `s`, with Cisco's variants (`*` or `.`
/// in front, `YYYY ` before the time, `.mmm` after it). The date-time (year 0 when none is
/// written) and the length taken.
fn parse_bsd(s: &[u8]) -> Option<(Civil, usize)> {
    let lead = usize::from(matches!(s.first(), Some(b'*' | b'.')));
    let month = month_of(&s[lead..])?;
    let mut i = lead + 3;
    if s.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_digits = s[i..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day_digits) {
        return None;
    }
    let day = digits_n(s, i, day_digits)?;
    i += day_digits;
    if s.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let mut year = 0;
    if s.get(i + 4) == Some(&b' ')
        && let Some(y) = digits_n(s, i, 4)
    {
        year = y as i32;
        i += 5;
    }
    let (hour, minute, second) = clock_time(s, i)?;
    i += 8;
    let (nanos, frac) = fraction(s, i);
    i += frac;
    let civil = Civil {
        year,
        month,
        day: day as u8,
        hour,
        minute,
        second,
        nanos,
    };
    // Checked with a leap year, so that 29 February passes here; the year decides later.
    Civil {
        year: if year == 0 { 2000 } else { year },
        ..civil
    }
    .is_valid()
    .then_some((civil, i))
}

/// Any RFC 3164 timestamp at the start of `s`: (nanoseconds, length taken), `Err` for a
/// timestamp that is well-formed but out of range.
fn timestamp_3164(s: &[u8], clock: &mut Clock) -> Option<Result<(i64, usize), ParseError>> {
    const RANGE: ParseError = "timestamp out of range";
    if let Some((c, n)) = parse_bsd(s) {
        let ns = if c.year == 0 {
            clock.yearless_to_ns(&c)
        } else {
            clock.zone.local_to_ns(&c)
        };
        return Some(ns.map(|ns| (ns, n)).ok_or(RANGE));
    }
    if s.first().is_some_and(u8::is_ascii_digit)
        && let Some((c, offset, n)) = parse_iso(s)
    {
        return Some(to_ns(&c, offset, clock).map(|ns| (ns, n)).ok_or(RANGE));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// RFC 3164

/// The next word of `s` (up to a space or the end) and the rest after that one space.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', s) {
        Some(sp) => (&s[..sp], &s[sp + 1..]),
        None => (s, &s[s.len()..]),
    }
}

fn is_printable(w: &[u8]) -> bool {
    !w.is_empty() && w.iter().all(|&b| (33..=126).contains(&b))
}

/// The next word of a line and what it is shaped like, found in one pass.
struct Word<'a> {
    text: &'a [u8],
    /// After the word and the space that ends it.
    rest: &'a [u8],
    /// Non-empty printable ASCII.
    printable: bool,
    /// Shaped like a tag: (program name, pid).
    tag: Option<(&'a [u8], Option<i32>)>,
}

fn next_word(s: &[u8]) -> Word<'_> {
    let mut i = 0;
    let mut printable = true;
    let mut prog_len = None;
    while let Some(&b) = s.get(i) {
        match b {
            b' ' => break,
            b'[' | b':' if prog_len.is_none() => prog_len = Some(i),
            33..=126 => {}
            _ => printable = false,
        }
        i += 1;
    }
    let text = &s[..i];
    let rest = s.get(i + 1..).unwrap_or(&s[i..]);
    let printable = printable && i > 0;
    let tag = if printable {
        tag_shape(text, prog_len.unwrap_or(i))
    } else {
        None
    };
    Word {
        text,
        rest,
        printable,
        tag,
    }
}

/// A tag: `prog:`, `prog[pid]:` or `prog[pid]` with a program name (`w[..prog_len]`, up to the
/// first `[` or `:`). Returns (program name, pid).
fn tag_shape(w: &[u8], prog_len: usize) -> Option<(&[u8], Option<i32>)> {
    if prog_len == 0 {
        return None;
    }
    let prog = &w[..prog_len];
    let rest = &w[prog_len..];
    if rest == b":" {
        return Some((prog, None));
    }
    let inner = rest
        .strip_suffix(b"]:")
        .or_else(|| rest.strip_suffix(b"]"))?
        .strip_prefix(b"[")?;
    Some((prog, parse_pid(inner)))
}

/// `digits: ` (a Cisco sequence number) at the start: the rest after it.
fn cisco_sequence(s: &[u8]) -> Option<&[u8]> {
    let d = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if d == 0 {
        return None;
    }
    s[d..].strip_prefix(b": ")
}

fn parse_3164<'a>(
    pri: Option<u8>,
    rest: &'a [u8],
    clock: &mut Clock,
) -> Result<Syslog<'a>, ParseError> {
    let mut s = rest;
    let mut hostname = None;
    let mut stamp = timestamp_3164(s, clock);
    if stamp.is_none()
        && let Some(after) = cisco_sequence(s)
    {
        if let Some(t) = timestamp_3164(after, clock) {
            s = after;
            stamp = Some(t);
        } else {
            // `seq: device: timestamp`
            let (device, after_device) = word(after);
            if let Some(name) = device.strip_suffix(b":")
                && is_printable(name)
                && let Some(t) = timestamp_3164(after_device, clock)
            {
                hostname = Some(name);
                s = after_device;
                stamp = Some(t);
            }
        }
    }
    let timestamp = match stamp {
        Some(t) => {
            let (ns, n) = t?;
            s = &s[n..];
            // Cisco ends its timestamp with a colon.
            s = s.strip_prefix(b":").unwrap_or(s);
            match s.first() {
                None => {}
                Some(b' ') => s = &s[1..],
                Some(_) => return Err("no space after the timestamp"),
            }
            Some(ns)
        }
        None if pri.is_none() => return Err("not syslog: no <PRI> and no timestamp"),
        None => None,
    };
    // The hostname: only after a timestamp, and only when the word is not already the tag.
    let first = next_word(s);
    let candidate =
        if timestamp.is_some() && hostname.is_none() && first.tag.is_none() && first.printable {
            hostname = Some(first.text);
            s = first.rest;
            next_word(s)
        } else {
            first
        };
    let (tag, programname, pid) = match candidate.tag {
        Some((prog, pid)) => {
            s = candidate.rest;
            (Some(candidate.text), Some(prog), pid)
        }
        None => (None, None, None),
    };
    let start = s.iter().take_while(|&&b| b == b' ').count();
    let msg = &s[start..];
    Ok(Syslog {
        format: Format::Rfc3164,
        pri,
        timestamp,
        hostname,
        app_name: None,
        procid: None,
        msgid: None,
        structured_data: &[],
        tag,
        programname,
        pid,
        msg: Some(msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::time::Zone;
    use super::*;

    /// 2026-11-24T21:33:12Z
    const NOW: i64 = 1_795_555_992_000_000_000;

    fn clock() -> Clock {
        let mut c = Clock::new(Zone::Utc);
        c.fixed_now = Some(NOW);
        c
    }

    fn ok(line: &str) -> Syslog<'_> {
        parse(line.as_bytes(), &mut clock()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &[u8]) -> ParseError {
        match parse(line, &mut clock()) {
            Ok(s) => panic!("{:?} parsed: {s:?}", String::from_utf8_lossy(line)),
            Err(e) => e,
        }
    }

    fn utc(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, nanos: u32) -> i64 {
        Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            nanos,
        }
        .as_utc_ns()
        .unwrap()
    }

    fn text(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn pri_values() {
        assert_eq!(parse_pri(b"<0>"), Some((0, 3)));
        assert_eq!(parse_pri(b"<191>x"), Some((191, 5)));
        assert_eq!(parse_pri(b"<192>"), None);
        assert_eq!(parse_pri(b"<>"), None);
        assert_eq!(parse_pri(b"<1234>"), None);
        assert_eq!(parse_pri(b"<13"), None);
        assert_eq!(parse_pri(b"<a>"), None);
    }

    /// RFC 5424 §6.5, examples 1 to 4.
    #[test]
    fn rfc5424_examples() {
        let s = ok(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(s.format, Format::Rfc5424);
        assert_eq!(s.pri, Some(34));
        assert_eq!(s.timestamp, Some(utc(2003, 10, 11, 22, 14, 15, 3_000_000)));
        assert_eq!(text(s.hostname), Some("mymachine.example.com"));
        assert_eq!(text(s.app_name), Some("su"));
        assert_eq!(s.procid, None);
        assert_eq!(text(s.msgid), Some("ID47"));
        assert_eq!(s.structured_data, b"");
        assert_eq!(
            text(s.msg),
            Some("'su root' failed for lonvick on /dev/pts/8"),
            "the BOM is not part of the message"
        );

        let s = ok(
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        );
        assert_eq!(s.timestamp, Some(utc(2003, 8, 24, 12, 14, 15, 3_000)));
        assert_eq!(text(s.hostname), Some("192.0.2.1"));
        assert_eq!(text(s.procid), Some("8710"));
        assert_eq!(s.pid, Some(8710));
        assert_eq!(s.msgid, None);
        assert_eq!(text(s.msg), Some("%% It's time to make the do-nuts."));

        let s = ok(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        );
        let params: Vec<_> = sd_params(s.structured_data).collect();
        assert_eq!(params.len(), 3);
        assert_eq!(params[0].id, b"exampleSDID@32473");
        assert_eq!(params[1].name, Some(&b"eventSource"[..]));
        assert_eq!(params[1].value, b"Application");
        assert_eq!(text(s.msg), Some("An application event log entry..."));

        let s = ok(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        );
        assert_eq!(s.msg, None);
        let params: Vec<_> = sd_params(s.structured_data).collect();
        assert_eq!(params.len(), 4);
        assert_eq!(params[3].id, b"examplePriority@32473");
        assert_eq!(params[3].value, b"high");
    }

    #[test]
    fn rfc5424_nilvalues_and_zone_less_timestamps() {
        let s = ok("<13>1 - - - - - -");
        assert_eq!(s.timestamp, None);
        assert_eq!(s.hostname, None);
        assert_eq!(s.app_name, None);
        assert_eq!(s.msg, None);
        let mut berlin = Clock::new(Zone::named("Europe/Berlin").unwrap());
        let s = parse(b"<13>1 2026-07-01T12:00:00 h a - - - x", &mut berlin).unwrap();
        assert_eq!(s.timestamp, Some(utc(2026, 7, 1, 10, 0, 0, 0)));
        // Nine digits of fraction, and more (dropped).
        let s = ok("<13>1 2026-07-01T12:00:00.123456789123+00:00 h a - - - x");
        assert_eq!(s.timestamp, Some(utc(2026, 7, 1, 12, 0, 0, 123_456_789)));
        // An empty message after the SD.
        assert_eq!(ok("<13>1 - h a - - - ").msg, Some(&b""[..]));
    }

    #[test]
    fn rfc5424_escapes_and_parameterless_elements() {
        let s = ok(r#"<13>1 - h a - - [x@1 v="a\"b\\c\]d\e"][y@2] m"#);
        let params: Vec<_> = sd_params(s.structured_data).collect();
        assert_eq!(params.len(), 2);
        let mut out = Vec::new();
        unescape(params[0].value, &mut out);
        assert_eq!(out, br#"a"b\c]d\e"#);
        assert_eq!(params[1].id, b"y@2");
        assert_eq!(params[1].name, None);
        // A bracket inside quotes, escaped, does not end the element.
        let s = ok(r#"<13>1 - h a - - [x k="[\]"] m"#);
        assert_eq!(text(s.msg), Some("m"));
    }

    #[test]
    fn rfc5424_bad_input_is_refused() {
        for (line, why) in [
            (&b"<13>2 2026-01-01T00:00:00Z h a - - - m"[..], "version"),
            (b"<13>1 99999-01-01T00:00:00Z h a - - - m", "year 99999"),
            (b"<13>1 2026-13-01T00:00:00Z h a - - - m", "month 13"),
            (b"<13>1 2026-02-30T00:00:00Z h a - - - m", "30 February"),
            (b"<13>1 2026-01-01T25:00:00Z h a - - - m", "hour 25"),
            (b"<13>1 2026-01-01T00:00:00+24:00 h a - - - m", "offset"),
            (b"<13>1 2026-01-01T00:00:00Z h a - -", "no SD"),
            (
                b"<13>1 2026-01-01T00:00:00Z h a - - [x k=\"v\"",
                "truncated SD",
            ),
            (
                b"<13>1 2026-01-01T00:00:00Z h a - - [x k=\"v]\"] m",
                "unescaped ]",
            ),
            (b"<13>1 2026-01-01T00:00:00Z h a - - [x k=v] m", "unquoted"),
            (b"<13>1 2026-01-01T00:00:00Z h a - - [] m", "empty SD-ID"),
            (
                b"<13>1 2026-01-01T00:00:00Z h a - - [x]m",
                "no space after SD",
            ),
            (
                b"<13>1 2026-01-01T00:00:00Z h\0st a - - - m",
                "NUL in a header",
            ),
            (
                b"<13>1 2026-01-01T00:00:00Z \xff a - - - m",
                "non-ASCII hostname",
            ),
            (b"<200>1 - - - - - -", "PRI > 191"),
            (b"<13x>1 - - - - - -", "bad PRI"),
        ] {
            let e = err(line);
            assert!(!e.is_empty(), "{why}");
        }
        assert!(err(b"<13>2 - - - - - -").contains("version"));
        assert!(err(b"<13>1 - h a - - [x k=\"]\"] m").contains("unescaped ]"));
    }

    #[test]
    fn rfc3164_as_rsyslog_and_logger_write_it() {
        // rsyslog's RSYSLOG_TraditionalForwardFormat, single-digit day padded with a space.
        let s = ok(
            "<86>Feb  9 14:17:01 trink-x230 CRON[20758]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)\n",
        );
        assert_eq!(s.format, Format::Rfc3164);
        assert_eq!(s.pri, Some(86));
        assert_eq!(s.timestamp, Some(utc(2026, 2, 9, 14, 17, 1, 0)));
        assert_eq!(text(s.hostname), Some("trink-x230"));
        assert_eq!(text(s.tag), Some("CRON[20758]:"));
        assert_eq!(text(s.programname), Some("CRON"));
        assert_eq!(s.pid, Some(20758));
        assert_eq!(
            text(s.msg),
            Some("(root) CMD (   cd / && run-parts --report /etc/cron.hourly)")
        );
        // logger --rfc3164 over the network (util-linux 2.38).
        let s = ok("<13>Nov 24 21:33:12 web1 alice: hello world");
        assert_eq!(text(s.hostname), Some("web1"));
        assert_eq!(text(s.programname), Some("alice"));
        assert_eq!(s.pid, None);
        assert_eq!(text(s.msg), Some("hello world"));
        // Through /dev/log: no hostname.
        let s = ok("<30>Nov 24 21:33:12 systemd[1]: Started Session 4 of user alice.\r\n");
        assert_eq!(s.hostname, None);
        assert_eq!(text(s.programname), Some("systemd"));
        assert_eq!(s.pid, Some(1));
        assert_eq!(text(s.msg), Some("Started Session 4 of user alice."));
        // An unpadded single-digit day, and a tag with a slash.
        let s = ok("<22>Nov 4 01:02:03 mx postfix/smtpd[1234]: connect from unknown");
        assert_eq!(s.timestamp, Some(utc(2026, 11, 4, 1, 2, 3, 0)));
        assert_eq!(text(s.programname), Some("postfix/smtpd"));
        // A tag without the colon, and a message without any tag.
        let s = ok("<13>Nov 24 21:33:12 host sshd[7] Accepted publickey");
        assert_eq!(s.pid, Some(7));
        assert_eq!(text(s.msg), Some("Accepted publickey"));
        let s = ok("<13>Nov 24 21:33:12 host just some words");
        assert_eq!(s.tag, None);
        assert_eq!(text(s.msg), Some("just some words"));
    }

    #[test]
    fn rfc3164_years_and_iso_timestamps() {
        // More than a day ahead of now: last year.
        let s = ok("<13>Dec 24 10:00:00 h p: m");
        assert_eq!(s.timestamp, Some(utc(2025, 12, 24, 10, 0, 0, 0)));
        // rsyslog's RSYSLOG_ForwardFormat (high-precision timestamps).
        let s = ok("<13>2026-11-24T21:33:12.123456+01:00 web1 nginx[99]: GET /");
        assert_eq!(
            s.timestamp,
            Some(utc(2026, 11, 24, 20, 33, 12, 123_456_000))
        );
        assert_eq!(text(s.hostname), Some("web1"));
        assert_eq!(s.pid, Some(99));
        // Zone-less timestamps read in the clock's zone.
        let mut tokyo = Clock::new(Zone::named("Asia/Tokyo").unwrap());
        tokyo.fixed_now = Some(NOW);
        let s = parse(b"<13>Nov 24 21:33:12 h p: m", &mut tokyo).unwrap();
        assert_eq!(s.timestamp, Some(utc(2026, 11, 24, 12, 33, 12, 0)));
        // 29 February without a year, when none of the candidate years has one.
        assert_eq!(err(b"<13>Feb 29 00:00:00 h p: m"), "timestamp out of range");
    }

    #[test]
    fn cisco_lines() {
        let s =
            ok("<189>123: *Mar  1 00:00:03.123: %SYS-5-CONFIG_I: Configured from console by vty0");
        assert_eq!(s.pri, Some(189));
        assert_eq!(s.timestamp, Some(utc(2026, 3, 1, 0, 0, 3, 123_000_000)));
        assert_eq!(s.hostname, None);
        assert_eq!(text(s.programname), Some("%SYS-5-CONFIG_I"));
        assert_eq!(text(s.msg), Some("Configured from console by vty0"));
        // With the device name (logging origin-id hostname) and a year.
        let s = ok(
            "<187>000456: router1: Nov 20 2025 10:11:12: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        );
        assert_eq!(text(s.hostname), Some("router1"));
        assert_eq!(s.timestamp, Some(utc(2025, 11, 20, 10, 11, 12, 0)));
        assert_eq!(text(s.programname), Some("%LINK-3-UPDOWN"));
    }

    #[test]
    fn lines_without_pri_or_timestamp() {
        // No PRI, a timestamp: a file written by a syslog daemon.
        let s = ok("Nov 24 21:33:12 web1 kernel: [ 0.000000] Linux version 6.1");
        assert_eq!(s.pri, None);
        assert_eq!(text(s.hostname), Some("web1"));
        assert_eq!(text(s.programname), Some("kernel"));
        // A PRI and no timestamp: the time of reception, no hostname.
        let s = ok("<13>myprog: something happened");
        assert_eq!(s.timestamp, None);
        assert_eq!(s.hostname, None);
        assert_eq!(text(s.programname), Some("myprog"));
        let s = ok("<13>plain text");
        assert_eq!(text(s.msg), Some("plain text"));
        // Neither: not syslog.
        assert!(err(b"GET / HTTP/1.1").contains("not syslog"));
        assert_eq!(err(b"\r\n"), "empty line");
        // `<13>2 apples` is RFC 3164 text, not a version-2 header.
        assert_eq!(ok("<13>2 apples").format, Format::Rfc3164);
    }
}

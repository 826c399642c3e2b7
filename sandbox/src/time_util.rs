//! UTC calendar arithmetic: `os.date` / `os.time` (the sandbox's local time zone is UTC, as in
//! Heka) and the forgiving timestamp parse of `write_message("Timestamp", "...")`.

use mlua::{Lua, Value, Variadic};

use crate::lua_util::check_number;

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12; out-of-range months and days
/// are normalised like `mktime`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // normalise the month into 1..=12
    let y = y + (m - 1).div_euclid(12);
    let m = (m - 1).rem_euclid(12) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tm {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday
    pub wday: u32,
    /// 1-based day of the year
    pub yday: u32,
}

pub(crate) fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Tm {
        year,
        month,
        day,
        hour: (secs / 3600) as u32,
        min: (secs % 3600 / 60) as u32,
        sec: (secs % 60) as u32,
        wday: (days + 4).rem_euclid(7) as u32,
        yday: (days - days_from_civil(year, 1, 1) + 1) as u32,
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
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

/// ISO 8601 week-based year and week number.
fn iso_week(tm: &Tm) -> (i64, u32) {
    let wday = (tm.wday + 6) % 7; // Monday = 0
    let yday = tm.yday as i64 - 1;
    let mut year = tm.year;
    let mut week = (yday - wday as i64 + 10) / 7;
    let weeks_in = |y: i64| {
        let jan1 = (days_from_civil(y, 1, 1) + 4).rem_euclid(7); // 0 = Sunday
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if jan1 == 4 || (leap && jan1 == 3) {
            53
        } else {
            52
        }
    };
    if week < 1 {
        year -= 1;
        week = weeks_in(year);
    } else if week > weeks_in(year) {
        year += 1;
        week = 1;
    }
    (year, week as u32)
}

/// C `strftime` in the C locale, UTC.
pub(crate) fn strftime(fmt: &[u8], t: i64) -> Vec<u8> {
    let tm = gmtime(t);
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' || i + 1 == fmt.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let spec = fmt[i + 1];
        i += 2;
        let s = match spec {
            b'a' => DAYS[tm.wday as usize][..3].to_owned(),
            b'A' => DAYS[tm.wday as usize].to_owned(),
            b'b' | b'h' => MONTHS[tm.month as usize - 1][..3].to_owned(),
            b'B' => MONTHS[tm.month as usize - 1].to_owned(),
            b'c' => format!(
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &DAYS[tm.wday as usize][..3],
                &MONTHS[tm.month as usize - 1][..3],
                tm.day,
                tm.hour,
                tm.min,
                tm.sec,
                tm.year
            ),
            b'C' => format!("{:02}", tm.year.div_euclid(100)),
            b'd' => format!("{:02}", tm.day),
            b'D' | b'x' => format!(
                "{:02}/{:02}/{:02}",
                tm.month,
                tm.day,
                tm.year.rem_euclid(100)
            ),
            b'e' => format!("{:>2}", tm.day),
            b'F' => format!("{}-{:02}-{:02}", tm.year, tm.month, tm.day),
            b'g' => format!("{:02}", iso_week(&tm).0.rem_euclid(100)),
            b'G' => iso_week(&tm).0.to_string(),
            b'H' => format!("{:02}", tm.hour),
            b'I' => format!("{:02}", (tm.hour + 11) % 12 + 1),
            b'j' => format!("{:03}", tm.yday),
            b'k' => format!("{:>2}", tm.hour),
            b'l' => format!("{:>2}", (tm.hour + 11) % 12 + 1),
            b'm' => format!("{:02}", tm.month),
            b'M' => format!("{:02}", tm.min),
            b'n' => "\n".to_owned(),
            b'p' => if tm.hour < 12 { "AM" } else { "PM" }.to_owned(),
            b'P' => if tm.hour < 12 { "am" } else { "pm" }.to_owned(),
            b'r' => format!(
                "{:02}:{:02}:{:02} {}",
                (tm.hour + 11) % 12 + 1,
                tm.min,
                tm.sec,
                if tm.hour < 12 { "AM" } else { "PM" }
            ),
            b'R' => format!("{:02}:{:02}", tm.hour, tm.min),
            b's' => t.to_string(),
            b'S' => format!("{:02}", tm.sec),
            b't' => "\t".to_owned(),
            b'T' | b'X' => format!("{:02}:{:02}:{:02}", tm.hour, tm.min, tm.sec),
            b'u' => (if tm.wday == 0 { 7 } else { tm.wday }).to_string(),
            b'U' => format!("{:02}", (tm.yday as i64 - 1 + 7 - tm.wday as i64) / 7),
            b'V' => format!("{:02}", iso_week(&tm).1),
            b'w' => tm.wday.to_string(),
            b'W' => format!(
                "{:02}",
                (tm.yday as i64 - 1 + 7 - ((tm.wday as i64 + 6) % 7)) / 7
            ),
            b'y' => format!("{:02}", tm.year.rem_euclid(100)),
            b'Y' => tm.year.to_string(),
            b'z' => "+0000".to_owned(),
            b'Z' => "UTC".to_owned(),
            b'%' => "%".to_owned(),
            other => format!("%{}", other as char),
        };
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// `os.date([format[, time]])` in UTC.
pub(crate) fn os_date(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Value> {
    let fmt = match args.first() {
        None | Some(Value::Nil) => b"%c".to_vec(),
        Some(v) => crate::lua_util::check_bytes(v, 1, "date")?,
    };
    let t = match args.get(1) {
        None | Some(Value::Nil) => crate::host::system_now_ns().div_euclid(1_000_000_000),
        Some(v) => check_number(v, 2, "date")? as i64,
    };
    let fmt = fmt.strip_prefix(b"!").unwrap_or(&fmt);
    if fmt.starts_with(b"*t") {
        let tm = gmtime(t);
        let tbl = lua.create_table()?;
        tbl.set("year", tm.year as f64)?;
        tbl.set("month", tm.month as f64)?;
        tbl.set("day", tm.day as f64)?;
        tbl.set("hour", tm.hour as f64)?;
        tbl.set("min", tm.min as f64)?;
        tbl.set("sec", tm.sec as f64)?;
        tbl.set("wday", (tm.wday + 1) as f64)?;
        tbl.set("yday", tm.yday as f64)?;
        tbl.set("isdst", false)?;
        return Ok(Value::Table(tbl));
    }
    Ok(Value::String(lua.create_string(strftime(fmt, t))?))
}

/// `os.difftime(t2, t1)`.
pub(crate) fn os_difftime(_: &Lua, (a, b): (Value, Value)) -> mlua::Result<f64> {
    let t2 = check_number(&a, 1, "difftime")?;
    let t1 = match b {
        Value::Nil => 0.0,
        v => check_number(&v, 2, "difftime")?,
    };
    Ok(t2 - t1)
}

/// Parses a timestamp string into ns since the epoch: an integer (ns), RFC 3339 / ISO 8601
/// (`2006-01-02T15:04:05.999Z`, `2006-01-02 15:04:05 -0700`, date only), Apache/nginx
/// `02/Jan/2006:15:04:05 -0700`, or RFC 1123 `Mon, 02 Jan 2006 15:04:05 GMT`. No zone = UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(i);
    }
    parse_iso(s)
        .or_else(|| parse_clf(s))
        .or_else(|| parse_rfc1123(s))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_spaces(&mut self) {
        while self.b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn rest(&self) -> &[u8] {
        &self.b[self.i.min(self.b.len())..]
    }
    fn frac_ns(&mut self) -> i64 {
        if !(self.eat(b'.') || self.eat(b',')) {
            return 0;
        }
        let mut ns = 0i64;
        let mut digits = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            if digits < 9 {
                ns = ns * 10 + (c - b'0') as i64;
                digits += 1;
            }
            self.i += 1;
        }
        ns * 10i64.pow(9 - digits)
    }
    /// `Z`, `UTC`, `GMT`, `±HH:MM`, `±HHMM`, `±HH` or nothing → offset in seconds.
    fn zone(&mut self) -> Option<i64> {
        self.skip_spaces();
        let rest = self.rest();
        if rest.is_empty() {
            return Some(0);
        }
        if rest == b"Z" || rest == b"UTC" || rest == b"GMT" {
            self.i = self.b.len();
            return Some(0);
        }
        let sign = match rest[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let h = self.num(2, 2)?;
        self.eat(b':');
        let m = if self.rest().is_empty() {
            0
        } else {
            self.num(2, 2)?
        };
        if !self.rest().is_empty() {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    }
}

/// Date (y, mo, d), time (h, mi, s), fraction (ns) and zone offset (s) → ns since the epoch.
fn assemble(
    (y, mo, d): (i64, i64, i64),
    (h, mi, s): (i64, i64, i64),
    ns: i64,
    off: i64,
) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - off;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

fn parse_iso(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let y = c.num(4, 4)?;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.num(2, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.num(2, 2)?;
    if c.rest().is_empty() {
        return assemble((y, mo, d), (0, 0, 0), 0, 0);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let h = c.num(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let mi = c.num(2, 2)?;
    let sec = if c.eat(b':') { c.num(2, 2)? } else { 0 };
    let ns = c.frac_ns();
    let off = c.zone()?;
    assemble((y, mo, d), (h, mi, sec), ns, off)
}

fn month_number(b: &[u8]) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes()[..3].eq_ignore_ascii_case(b))
        .map(|p| p as i64 + 1)
}

fn parse_clf(s: &str) -> Option<i64> {
    // 02/Jan/2006:15:04:05 -0700
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let d = c.num(1, 2)?;
    if !c.eat(b'/') {
        return None;
    }
    let mo = month_number(c.b.get(c.i..c.i + 3)?)?;
    c.i += 3;
    if !c.eat(b'/') {
        return None;
    }
    let y = c.num(4, 4)?;
    if !c.eat(b':') {
        return None;
    }
    let h = c.num(2, 2)?;
    c.eat(b':');
    let mi = c.num(2, 2)?;
    c.eat(b':');
    let sec = c.num(2, 2)?;
    let ns = c.frac_ns();
    let off = c.zone()?;
    assemble((y, mo, d), (h, mi, sec), ns, off)
}

fn parse_rfc1123(s: &str) -> Option<i64> {
    // Mon, 02 Jan 2006 15:04:05 GMT
    let s = match s.find(", ") {
        Some(i) => &s[i + 2..],
        None => s,
    };
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let d = c.num(1, 2)?;
    c.skip_spaces();
    let mo = month_number(c.b.get(c.i..c.i + 3)?)?;
    c.i += 3;
    c.skip_spaces();
    let y = c.num(4, 4)?;
    c.skip_spaces();
    let h = c.num(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let mi = c.num(2, 2)?;
    let sec = if c.eat(b':') { c.num(2, 2)? } else { 0 };
    let ns = c.frac_ns();
    let off = c.zone()?;
    assemble((y, mo, d), (h, mi, sec), ns, off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-1000, 0, 59, 365, 11_017, 20_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m as i64, d as i64), z);
        }
    }

    #[test]
    fn strftime_utc() {
        assert_eq!(
            String::from_utf8(strftime(b"%Y-%m-%dT%H:%M:%SZ %a %b %j", 1_136_214_245)).unwrap(),
            "2006-01-02T15:04:05Z Mon Jan 002"
        );
        assert_eq!(
            String::from_utf8(strftime(b"%c", 0)).unwrap(),
            "Thu Jan  1 00:00:00 1970"
        );
    }

    #[test]
    fn timestamps() {
        let t = 1_136_214_245_000_000_000;
        assert_eq!(parse_timestamp("2006-01-02T15:04:05Z"), Some(t));
        assert_eq!(parse_timestamp("2006-01-02T08:04:05-07:00"), Some(t));
        assert_eq!(
            parse_timestamp("2006-01-02 15:04:05.5"),
            Some(t + 500_000_000)
        );
        assert_eq!(parse_timestamp("02/Jan/2006:08:04:05 -0700"), Some(t));
        assert_eq!(parse_timestamp("Mon, 02 Jan 2006 15:04:05 GMT"), Some(t));
        assert_eq!(parse_timestamp("12345"), Some(12345));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}

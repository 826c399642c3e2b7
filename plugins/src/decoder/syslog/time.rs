//! Syslog timestamps to Heka's nanoseconds: civil date-times, the zone of those that carry no
//! offset, and the year of RFC 3164 timestamps, which carry none.
//!
//! Offsets and UTC are plain arithmetic. A named zone is asked through jiff (the system's
//! zoneinfo, else the database bundled in) once per minute of wall-clock time: consecutive
//! messages fall in the same minute, and every zone changes its offset on a minute boundary.

use jiff::tz::TimeZone;

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
const NS_PER_DAY: i64 = SECS_PER_DAY * NS_PER_SEC;

/// A wall-clock date and time as written in a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// 0–60 (a leap second reads as the first second of the next minute).
    pub second: u8,
    pub nanos: u32,
}

/// Whether `year` is a leap year (proleptic Gregorian).
fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
pub(super) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day count since 1970-01-01 (the inverse of [`days_from_civil`], year only)
/// and its month.
fn year_month_of_days(days: i64) -> (i32, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8)
}

impl Civil {
    /// Whether every part is in range (the day for its month and year).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60
            && self.nanos < NS_PER_SEC as u32
    }

    /// Nanoseconds since the epoch of this wall-clock time read as UTC; `None` outside the range
    /// of Heka's timestamps (years 1678 to 2261).
    pub fn as_utc_ns(&self) -> Option<i64> {
        let secs = days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        secs.checked_mul(NS_PER_SEC)?
            .checked_add(i64::from(self.nanos))
    }
}

/// The zone of timestamps written without an offset (SyslogDecoder's `tz`).
#[derive(Debug, Clone)]
pub(super) enum Zone {
    /// UTC: no lookup at all.
    Utc,
    /// An IANA zone, with the offset of the last wall-clock minute asked for.
    Named {
        tz: TimeZone,
        /// Wall-clock minute (minutes since the epoch, read as UTC) of `offset_secs`.
        minute: i64,
        /// Wall-clock time minus UTC, in seconds, during `minute`.
        offset_secs: i64,
    },
}

impl Zone {
    /// `"UTC"` (or empty) for UTC, else an IANA zone name; `Err` says why the name is unknown.
    pub fn named(name: &str) -> Result<Zone, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Zone::Utc);
        }
        let tz = jiff::tz::db()
            .get(name)
            .map_err(|e| format!("unknown time zone {name:?}: {e}"))?;
        Ok(Zone::Named {
            tz,
            minute: i64::MIN,
            offset_secs: 0,
        })
    }

    /// Nanoseconds since the epoch of a wall-clock time in this zone. A time that a change to
    /// summer time skips is read as if the clock had not changed yet; a time that the change
    /// back repeats is read as the earlier of the two (jiff's "compatible" rule, as Go and
    /// JavaScript do).
    pub fn local_to_ns(&mut self, c: &Civil) -> Option<i64> {
        let naive = c.as_utc_ns()?;
        match self {
            Zone::Utc => Some(naive),
            Zone::Named {
                tz,
                minute,
                offset_secs,
            } => {
                let m = naive.div_euclid(60 * NS_PER_SEC);
                if m != *minute {
                    let dt = jiff::civil::DateTime::new(
                        i16::try_from(c.year).ok()?,
                        c.month as i8,
                        c.day as i8,
                        c.hour as i8,
                        c.minute as i8,
                        0,
                        0,
                    )
                    .ok()?;
                    let at = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
                    *offset_secs = m * 60 - at.as_second();
                    *minute = m;
                }
                naive.checked_sub(*offset_secs * NS_PER_SEC)
            }
        }
    }

    /// The wall-clock year and month of the instant `ns` in this zone.
    fn year_month_at(&self, ns: i64) -> (i32, u8) {
        let offset = match self {
            Zone::Utc => 0,
            Zone::Named { tz, .. } => jiff::Timestamp::from_nanosecond(i128::from(ns))
                .map(|t| i64::from(tz.to_offset(t).seconds()))
                .unwrap_or(0),
        };
        year_month_of_days((ns + offset * NS_PER_SEC).div_euclid(NS_PER_DAY))
    }
}

/// Converts timestamps for one decoder: the zone, and the current year for timestamps without
/// one (recomputed once a minute).
#[derive(Debug, Clone)]
pub(super) struct Clock {
    pub zone: Zone,
    /// A fixed "now" (tests); `None` reads the system clock.
    pub fixed_now: Option<i64>,
    /// (minute of `now` this was computed for, year and month then).
    year_cache: Option<(i64, i32, u8)>,
}

impl Clock {
    pub fn new(zone: Zone) -> Self {
        Clock {
            zone,
            fixed_now: None,
            year_cache: None,
        }
    }

    /// Nanoseconds since the epoch, now.
    pub fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(hekate_model::writer::now_ns)
    }

    /// The timestamp of an RFC 3164 date without a year (`c.year` is ignored): in the current
    /// year of the zone, or the previous one when that would put it more than a day in the
    /// future, or the next one when it is January and the year is about to turn (a sender whose
    /// clock is slightly ahead at New Year). `None` when the date exists in none of those years
    /// (29 February).
    pub fn yearless_to_ns(&mut self, c: &Civil) -> Option<i64> {
        let now = self.now();
        let minute = now.div_euclid(60 * NS_PER_SEC);
        let (year, month) = match self.year_cache {
            Some((m, y, mo)) if m == minute => (y, mo),
            _ => {
                let (y, mo) = self.zone.year_month_at(now);
                self.year_cache = Some((minute, y, mo));
                (y, mo)
            }
        };
        let horizon = now.saturating_add(NS_PER_DAY);
        let first = if month == 12 && c.month == 1 {
            year + 1
        } else {
            year
        };
        for y in (year - 1..=first).rev() {
            let candidate = Civil { year: y, ..*c };
            if !candidate.is_valid() {
                continue;
            }
            if let Some(ns) = self.zone.local_to_ns(&candidate)
                && ns <= horizon
            {
                return Some(ns);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos: 0,
        }
    }

    /// 2026-11-24T21:33:12Z
    const NOW: i64 = 1_795_555_992 * NS_PER_SEC;

    #[test]
    fn civil_dates_count_days_like_the_calendar() {
        assert_eq!(civil(1970, 1, 1, 0, 0, 0).as_utc_ns(), Some(0));
        assert_eq!(
            civil(2026, 11, 24, 21, 33, 12).as_utc_ns(),
            Some(NOW),
            "date -u -d 2026-11-24T21:33:12Z +%s"
        );
        assert_eq!(
            civil(2000, 2, 29, 0, 0, 0).as_utc_ns(),
            Some(951_782_400 * NS_PER_SEC)
        );
        assert_eq!(
            civil(1969, 12, 31, 23, 59, 59).as_utc_ns(),
            Some(-NS_PER_SEC)
        );
        assert!(civil(9999, 12, 31, 0, 0, 0).as_utc_ns().is_none());
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 100_000] {
            let (y, m) = year_month_of_days(days);
            let first = days_from_civil(y, m, 1);
            assert!(first <= days && days < first + i64::from(days_in_month(y, m)));
        }
    }

    #[test]
    fn validity_follows_the_calendar() {
        assert!(civil(2024, 2, 29, 23, 59, 60).is_valid());
        assert!(!civil(2023, 2, 29, 0, 0, 0).is_valid());
        assert!(!civil(2023, 4, 31, 0, 0, 0).is_valid());
        assert!(!civil(2023, 13, 1, 0, 0, 0).is_valid());
        assert!(!civil(2023, 1, 0, 0, 0, 0).is_valid());
        assert!(!civil(2023, 1, 1, 24, 0, 0).is_valid());
    }

    #[test]
    fn named_zones_apply_their_offset_and_summer_time() {
        let mut z = Zone::named("America/Los_Angeles").unwrap();
        // PST (UTC-8) in February, PDT (UTC-7) in July.
        let feb = z.local_to_ns(&civil(2014, 2, 10, 12, 58, 58)).unwrap();
        assert_eq!(feb, civil(2014, 2, 10, 20, 58, 58).as_utc_ns().unwrap());
        let jul = z.local_to_ns(&civil(2014, 7, 10, 12, 58, 58)).unwrap();
        assert_eq!(jul, civil(2014, 7, 10, 19, 58, 58).as_utc_ns().unwrap());
        // The cache is per minute: the next second of the same minute agrees.
        let next = z.local_to_ns(&civil(2014, 7, 10, 12, 58, 59)).unwrap();
        assert_eq!(next - jul, NS_PER_SEC);
        assert!(Zone::named("Mars/Olympus_Mons").is_err());
        assert!(matches!(Zone::named("UTC"), Ok(Zone::Utc)));
    }

    #[test]
    fn a_date_without_a_year_is_in_the_past_day_or_earlier() {
        let mut clock = Clock::new(Zone::Utc);
        clock.fixed_now = Some(NOW);
        // Earlier this year.
        let feb = clock.yearless_to_ns(&civil(0, 2, 9, 14, 17, 1)).unwrap();
        assert_eq!(feb, civil(2026, 2, 9, 14, 17, 1).as_utc_ns().unwrap());
        // Less than a day ahead (a sender whose clock is fast): this year.
        let tomorrow = clock.yearless_to_ns(&civil(0, 11, 25, 10, 0, 0)).unwrap();
        assert_eq!(tomorrow, civil(2026, 11, 25, 10, 0, 0).as_utc_ns().unwrap());
        // More than a day ahead: last year.
        let december = clock.yearless_to_ns(&civil(0, 12, 20, 0, 0, 0)).unwrap();
        assert_eq!(december, civil(2025, 12, 20, 0, 0, 0).as_utc_ns().unwrap());
        // 29 February: the last year that had one within reach, or none.
        assert!(clock.yearless_to_ns(&civil(0, 2, 29, 0, 0, 0)).is_none());
        // New Year's Eve: a January date is the coming January.
        let eve = civil(2026, 12, 31, 23, 59, 0).as_utc_ns().unwrap();
        clock.fixed_now = Some(eve);
        let jan = clock.yearless_to_ns(&civil(0, 1, 1, 0, 0, 5)).unwrap();
        assert_eq!(jan, civil(2027, 1, 1, 0, 0, 5).as_utc_ns().unwrap());
        // ... but a January date well in the past is this January.
        let mid = clock.yearless_to_ns(&civil(0, 1, 15, 0, 0, 0)).unwrap();
        assert_eq!(mid, civil(2026, 1, 15, 0, 0, 0).as_utc_ns().unwrap());
    }

    #[test]
    fn the_current_year_is_the_zones() {
        // 2026-12-31T20:00:00Z is already 2027 in Tokyo: a "Jan  1" date there is this
        // (Tokyo) year's, not last year's.
        let mut clock = Clock::new(Zone::named("Asia/Tokyo").unwrap());
        clock.fixed_now = Some(civil(2026, 12, 31, 20, 0, 0).as_utc_ns().unwrap());
        let jan = clock.yearless_to_ns(&civil(0, 1, 1, 4, 0, 0)).unwrap();
        assert_eq!(jan, civil(2026, 12, 31, 19, 0, 0).as_utc_ns().unwrap());
    }
}

//! hekate's own log lines: `YYYY/MM/DD HH:MM:SS message` on stderr, as Heka's default
//! `log_flags` print them, and a limiter so that a flood of bad input cannot flood the log.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes one log line to stderr.
pub fn log(message: std::fmt::Arguments<'_>) {
    let line = format!("{} {message}\n", timestamp());
    // One write per line keeps lines of different threads whole.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs one line: `hlog!("Input '{}': {}", name, err)`.
#[macro_export]
macro_rules! hlog {
    ($($arg:tt)*) => { $crate::runtime::log(format_args!($($arg)*)) };
}

/// The current UTC time as `YYYY/MM/DD HH:MM:SS`.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Lets through at most `burst` lines per second; says how many were held back.
#[derive(Debug)]
pub struct LogLimiter {
    burst: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter of `burst` lines per second.
    pub fn new(burst: u32) -> Self {
        Self {
            burst,
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// Logs the line if the budget allows, else counts it.
    pub fn log(&mut self, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return;
        }
        self.used += 1;
        if self.suppressed > 0 {
            let n = std::mem::take(&mut self.suppressed);
            log(format_args!("{message} ({n} similar lines suppressed)"));
        } else {
            log(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(timestamp().len(), 19);
    }
}

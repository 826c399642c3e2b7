//! hekate's own log lines go through [`tracing`]: `error!`, `warn!`, `info!`, `debug!`, one line
//! per event with the plugin's name in the message (`Input 'tcp': …`). The binary installs the
//! subscriber (stderr, level from `--log-level`, `RUST_LOG` or the config's `log_level`); a
//! library or test that installs none logs nothing.
//!
//! Bad input can repeat a warning thousands of times a second (a flood of truncated
//! connections). [`warn_limited!`](crate::plugin::log::warn_limited) lets a few lines per
//! second through from each call site and says on the next line let through how many were
//! held back: `… (… 1995 more suppressed)`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[doc(hidden)]
pub use tracing;

/// Lines let through per second by [`warn_limited!`](crate::plugin::log::warn_limited).
pub const LINES_PER_SECOND: u32 = 5;

/// A budget of log lines per second, shareable between threads (one per call site).
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    /// The current second (high 32 bits) and the lines let through in it (low 32 bits).
    window: AtomicU64,
    /// Lines held back since the last one let through.
    suppressed: AtomicU64,
}

impl RateLimit {
    /// A budget of `per_second` lines a second.
    pub const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether to write a line now: `Some(n)` to write it, `n` lines having been held back
    /// since the last one written; `None` to hold it back (and count it).
    pub fn admit(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.admit_at(now)
    }

    /// [`RateLimit::admit`] at second `now`.
    pub fn admit_at(&self, now: u64) -> Option<u64> {
        let second = now & u64::from(u32::MAX);
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (window, used) = (current >> 32, current & u64::from(u32::MAX));
            let next = if window == second {
                if used >= u64::from(self.per_second) {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(seen) => current = seen,
            }
        }
    }
}

/// `warn!` with a budget of [`LINES_PER_SECOND`] lines a second per call site; the next line
/// written after some were held back ends with `(… N more suppressed)`.
///
/// ```
/// # use hekate_engine::plugin::log::warn_limited;
/// let input = "tcp";
/// warn_limited!("Input '{input}': skipped {} bytes of data that is not a valid record", 12);
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __warn_limited {
    ($($arg:tt)+) => {{
        static LIMIT: $crate::plugin::log::RateLimit =
            $crate::plugin::log::RateLimit::new($crate::plugin::log::LINES_PER_SECOND);
        match LIMIT.admit() {
            Some(0) => $crate::plugin::log::tracing::warn!($($arg)+),
            Some(held) => $crate::plugin::log::tracing::warn!(
                "{} (… {held} more suppressed)",
                format_args!($($arg)+)
            ),
            None => {}
        }
    }};
}

pub use crate::__warn_limited as warn_limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_lets_a_few_lines_a_second_through() {
        let limit = RateLimit::new(5);
        let written: Vec<u64> = (0..2000).filter_map(|_| limit.admit_at(100)).collect();
        assert_eq!(written, [0, 0, 0, 0, 0]);
        // The next second: the first line says how many were held back.
        assert_eq!(limit.admit_at(101), Some(1995));
        assert_eq!(limit.admit_at(101), Some(0));
    }

    #[test]
    fn a_quiet_call_site_writes_every_line() {
        let limit = RateLimit::new(2);
        for second in 0..10 {
            assert_eq!(limit.admit_at(second), Some(0));
        }
    }

    #[test]
    fn threads_share_one_budget() {
        let limit = RateLimit::new(5);
        let written: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..100).filter(|_| limit.admit_at(7).is_some()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(written, 5);
        assert_eq!(limit.admit_at(8), Some(395));
    }

    #[test]
    fn the_macro_compiles_with_and_without_arguments() {
        let name = "tcp";
        for _ in 0..10 {
            warn_limited!("Input '{name}': a line");
            warn_limited!("Input '{}': {} bytes", name, 3);
        }
    }
}

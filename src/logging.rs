//! hekate's own log: every `tracing` event of the engine and the plugins as one line on stderr,
//! `YYYY/MM/DD HH:MM:SS LEVEL message` (UTC, as Heka's default `log_flags` date it).
//!
//! The least severe level written comes from, in this order: `hekate run --log-level`, the
//! `RUST_LOG` environment variable (any `tracing` filter, e.g. `hekate_plugins=debug,info`), the
//! `log_level` of the `[hekate]` section (default "info").

use std::fmt;

use hekate_config::LogLevel;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Heka's log date: `2006/01/02 15:04:05`, UTC.
struct HekaTime;

impl FormatTime for HekaTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{}", chrono::Utc::now().format("%Y/%m/%d %H:%M:%S"))
    }
}

/// The filter for a run: `flag` (`--log-level`) wins over `rust_log` (`RUST_LOG`), which wins
/// over `config` (`log_level`). A `RUST_LOG` that is not a valid filter is ignored, with the
/// sentence that says so.
pub fn filter(
    flag: Option<LogLevel>,
    rust_log: Option<&str>,
    config: LogLevel,
) -> (EnvFilter, Option<String>) {
    if let Some(level) = flag {
        return (EnvFilter::new(level.as_str()), None);
    }
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => match EnvFilter::try_new(directives) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new(config.as_str()),
                Some(format!(
                    "ignoring RUST_LOG={directives:?} ({e}); logging at level {config}"
                )),
            ),
        },
        None => (EnvFilter::new(config.as_str()), None),
    }
}

/// Writes log lines to stderr from now on, as `filter` says; the first call wins.
pub fn install(filter: EnvFilter) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(HekaTime)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Installs the log with `flag`, `RUST_LOG` and `config`, saying if `RUST_LOG` was ignored.
pub fn init(flag: Option<LogLevel>, config: LogLevel) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = filter(flag, rust_log.as_deref(), config);
    install(filter);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directives(flag: Option<LogLevel>, rust_log: Option<&str>, config: LogLevel) -> String {
        filter(flag, rust_log, config).0.to_string()
    }

    #[test]
    fn the_flag_wins_over_rust_log_and_the_config() {
        let got = directives(Some(LogLevel::Debug), Some("error"), LogLevel::Warn);
        assert_eq!(got, "debug");
    }

    #[test]
    fn rust_log_wins_over_the_config() {
        assert_eq!(directives(None, Some("error"), LogLevel::Debug), "error");
        let got = directives(None, Some("hekate_plugins=debug,warn"), LogLevel::Info);
        assert!(got.contains("hekate_plugins=debug"), "{got}");
    }

    #[test]
    fn the_config_level_applies_without_flag_or_rust_log() {
        assert_eq!(directives(None, None, LogLevel::Warn), "warn");
        assert_eq!(directives(None, Some("  "), LogLevel::Error), "error");
    }

    #[test]
    fn a_bad_rust_log_is_ignored_with_a_reason() {
        let (filter, warning) = filter(None, Some("hekate=loud"), LogLevel::Info);
        assert_eq!(filter.to_string(), "info");
        let warning = warning.unwrap();
        assert!(
            warning.starts_with("ignoring RUST_LOG=\"hekate=loud\""),
            "{warning}"
        );
    }
}

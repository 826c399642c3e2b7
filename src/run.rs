//! `hekate run`: the daemon.
//!
//! `hekate run -c CONFIG` starts the pipeline a TOML file (or a directory of them) describes and
//! runs until SIGINT or SIGTERM; `hekate run` without `-c` starts the **embedded default
//! configuration**, a working aggregator in one command:
//!
//! - **Input**: the Heka protocol on TCP `127.0.0.1:5565` (HekaFramingSplitter and
//!   ProtobufDecoder), as hekad, another hekate or any Heka client sends it.
//! - **FileOutput**: every message received — counter output and reports included — appended
//!   to `/var/cache/hekad/received.hekad` as a Heka stream; read it with
//!   `hekate cat /var/cache/hekad/received.hekad`.
//! - **CounterFilter**: counts the messages; every 5 seconds with traffic, a
//!   `heka.counter-output` message ("Got N messages. R msg/sec") is also printed on stdout.
//! - **Report**: a `heka.all-report` message with per-plugin counters every 60 seconds, and the
//!   text report on stdout on `kill -USR1 <pid>`.
//!
//! `base_dir` (`/var/cache/hekad`) is created if missing; if it cannot be written, hekate says so
//! and exits — run it as a user that may write there, or copy the default configuration (shown
//! by the README) and set another `base_dir`. Worker shards run on every core the process may
//! use; the coordinator shares the first one.
//!
//! Shutdown (SIGINT or SIGTERM) stops the inputs — what was read is routed — waits until every
//! ring has drained, stops the filters, then the outputs, which flush. It takes at most the
//! shutdown timeout (10 seconds; `HEKATE_SHUTDOWN_TIMEOUT` in seconds changes it); messages an
//! output could not deliver by then are counted on stderr, per output and core. A second SIGINT
//! or SIGTERM ends the wait at once.
//!
//! Log lines go to stderr, one per event (`YYYY/MM/DD HH:MM:SS LEVEL message`), from the level
//! `--log-level` names, else `RUST_LOG`, else the config's `log_level` ("info").
//!
//! Exit status: 0 after a shutdown, 1 when the configuration is refused or the pipeline cannot
//! start, with the reason.

use std::path::Path;
use std::process::ExitCode;

use hekate_config::{Config, LogLevel};
use hekate_engine::runtime::{self, Pipeline, check_matcher};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Where the embedded default configuration says it comes from in error messages.
const DEFAULT_ORIGIN: &str = "(embedded default configuration)";

/// Runs the daemon with the config at `config_path`, or the embedded default configuration,
/// logging at `log_level` (`--log-level`) when given.
pub fn run(config_path: Option<&Path>, log_level: Option<LogLevel>) -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask and only the
    // coordinator takes SIGINT, SIGTERM and SIGUSR1.
    runtime::block_signals();
    let registry = hekate_plugins::registry();
    let loaded = match config_path {
        Some(path) => Config::load_and_validate(path, &registry, &check_matcher),
        None => {
            Config::from_str_and_validate(DEFAULT_CONFIG, DEFAULT_ORIGIN, &registry, &check_matcher)
        }
    };
    let config = match loaded {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "hekate: the configuration has {} problem(s); nothing was started",
                errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init(log_level, config.global.log_level);
    let pipeline = match Pipeline::build(&config, &registry) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "hekate: the configuration has {} problem(s); nothing was started",
                errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let pid_file = match PidFile::create(config.global.pid_file.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hekate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut coordinator = match runtime::start(pipeline) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hekate: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SIGUSR2 aborts every Lua sandbox; the sandbox owns that switch.
    coordinator.on_sandbox_abort(hekate_sandbox::abort_all);
    if let Some(timeout) = shutdown_timeout_from_env() {
        coordinator.set_shutdown_timeout(timeout);
    }
    let outcome = coordinator.run();
    for line in &outcome.undelivered {
        eprintln!("hekate: {line}");
    }
    drop(pid_file);
    tracing::info!("Shutdown complete.");
    ExitCode::SUCCESS
}

/// `HEKATE_SHUTDOWN_TIMEOUT` (seconds, default 10): how long shutdown may wait for outputs.
fn shutdown_timeout_from_env() -> Option<std::time::Duration> {
    let value = std::env::var("HEKATE_SHUTDOWN_TIMEOUT").ok()?;
    match value.trim().parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => {
            Some(std::time::Duration::from_secs_f64(secs))
        }
        _ => {
            eprintln!(
                "hekate: ignoring HEKATE_SHUTDOWN_TIMEOUT={value:?}: not a number of seconds"
            );
            None
        }
    }
}

/// The `pid_file`: refused when it names a live process, removed at exit.
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn create(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && pid > 0
            && pid != std::process::id() as i32
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(format!(
                "pid_file {} names process {pid}, which is running; is hekate already started?",
                path.display()
            ));
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pid_file {}: {e}", path.display()))?;
        Ok(Self(Some(path.to_path_buf())))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        let registry = hekate_plugins::registry();
        let config = Config::from_str_and_validate(
            DEFAULT_CONFIG,
            DEFAULT_ORIGIN,
            &registry,
            &check_matcher,
        )
        .unwrap();
        let pipeline = Pipeline::build(&config, &registry).unwrap();
        let names: Vec<&str> = pipeline.plugins.iter().map(|p| p.name.as_str()).collect();
        for want in ["TcpInput", "FileOutput", "CounterFilter"] {
            assert!(names.contains(&want), "{names:?}");
        }
        assert_eq!(config.global.base_dir, Path::new("/var/cache/hekad"));
    }
}

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
//! With `http_address` in `[hekate]` (off by default; `":9110"` is loopback), hekate also serves
//! `/metrics` (Prometheus text format) and `/health` (503 naming each output that does not
//! deliver) — `hekate_engine::telemetry`.
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
//! SIGHUP reopens the outputs' files and reloads the configuration: read again from the same
//! path, built, and applied to the running pipeline or refused whole (the engine's
//! `coordinator::reload` says how; the README's "Reload" section what it does).
//!
//! Log lines go to stderr, one per event (`YYYY/MM/DD HH:MM:SS LEVEL message`), from the level
//! `--log-level` names, else `RUST_LOG`, else the config's `log_level` ("info").
//!
//! Exit status: 0 after a shutdown that delivered everything, 1 when the configuration is
//! refused, the pipeline cannot start, or hekate stopped on its own (a plugin that may not exit
//! terminated; an output with `full_action = "shutdown"` overflowed), with the reason; 2 after a
//! shutdown that had to drop messages an output could not deliver in time (each counted on
//! stderr).

use std::path::Path;
use std::process::ExitCode;

use hekate_config::{Config, ConfigErrors, LogLevel};
use hekate_engine::plugin::Registry;
use hekate_engine::runtime::{self, Pipeline, check_matcher};

use crate::pid_file::PidFile;

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Where the embedded default configuration says it comes from in error messages.
const DEFAULT_ORIGIN: &str = "(embedded default configuration)";

/// The configuration at `config_path` (or the embedded default) loaded, validated and every
/// plugin built, as `run` starts it and `check` checks it: every problem at once, each located.
pub fn load(
    config_path: Option<&Path>,
    registry: &Registry,
) -> Result<(Config, Pipeline), ConfigErrors> {
    let loaded = Config::load_and_validate_keeping(
        config_path,
        (DEFAULT_CONFIG, DEFAULT_ORIGIN),
        registry,
        &check_matcher,
    );
    match loaded {
        Ok(config) => {
            let pipeline = Pipeline::build(&config, registry)?;
            Ok((config, pipeline))
        }
        Err((invalid, None)) => Err(invalid),
        Err((invalid, Some(config))) => Err(with_build_errors(invalid, &config, registry)),
    }
}

/// Validation stops short of building; building the sections anyway finds what only a build
/// sees (a missing script, an address that does not resolve, a required encoder), so that
/// every problem is listed at once. A build error on a line that validation already flagged
/// is the same problem seen twice and is left out.
fn with_build_errors(invalid: ConfigErrors, config: &Config, registry: &Registry) -> ConfigErrors {
    let Err(built) = Pipeline::build(config, registry) else {
        return invalid;
    };
    let mut errors = invalid.into_vec();
    let flagged: Vec<(String, Option<usize>)> =
        errors.iter().map(|e| (e.file.clone(), e.line)).collect();
    errors.extend(
        built
            .into_vec()
            .into_iter()
            .filter(|e| e.line.is_some() && !flagged.contains(&(e.file.clone(), e.line))),
    );
    let order: Vec<&str> = config.sources().iter().map(|s| s.name()).collect();
    errors.sort_by_key(|e| {
        (
            order
                .iter()
                .position(|f| *f == e.file)
                .unwrap_or(usize::MAX),
            e.line.unwrap_or(0),
        )
    });
    ConfigErrors::new(errors)
}

/// The effective configuration as TOML (`run --print-config`): the file, directory or embedded
/// default after `%ENV` substitution and the merge, checked for syntax only.
pub fn effective_config(config_path: Option<&Path>) -> Result<String, ConfigErrors> {
    let config = match config_path {
        Some(path) => Config::load(path)?,
        None => Config::from_str(DEFAULT_CONFIG, DEFAULT_ORIGIN)?,
    };
    Ok(config.effective_toml())
}

/// Runs the daemon with the config at `config_path`, or the embedded default configuration,
/// logging at `log_level` (`--log-level`) when given.
pub fn run(config_path: Option<&Path>, log_level: Option<LogLevel>) -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask and only the
    // coordinator takes SIGINT, SIGTERM and SIGUSR1.
    runtime::block_signals();
    let registry = hekate_plugins::registry();
    let (config, pipeline) = match load(config_path, &registry) {
        Ok(loaded) => loaded,
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
    let pid_file = match config.global.pid_file.as_deref().map(PidFile::lock) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("hekate: {e}");
            return ExitCode::FAILURE;
        }
    };
    // What `check` checks beyond the build, with the same messages.
    if let Err(e) = pipeline.preflight() {
        eprintln!("hekate: {e}");
        return ExitCode::FAILURE;
    }
    let mut coordinator = match runtime::start(pipeline) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hekate: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SIGUSR2 aborts every Lua sandbox; the sandbox owns that switch.
    coordinator.on_sandbox_abort(hekate_sandbox::abort_all);
    // SIGHUP reads the configuration again and applies it, or refuses it.
    let reload_path = config_path.map(Path::to_path_buf);
    coordinator.on_reload(runtime::Reloader(Box::new(move || {
        load(reload_path.as_deref(), &registry)
            .map(|(_, pipeline)| pipeline)
            .map_err(|errors| {
                let lines: Vec<String> = errors.into_vec().iter().map(|e| e.to_string()).collect();
                format!("{} problem(s): {}", lines.len(), lines.join("; "))
            })
    })));
    if let Some(timeout) = shutdown_timeout_from_env() {
        coordinator.set_shutdown_timeout(timeout);
    }
    let outcome = coordinator.run();
    for line in &outcome.undelivered {
        eprintln!("hekate: {line}");
    }
    drop(pid_file);
    if let Some(why) = &outcome.failure {
        // Not asked to stop: a supervisor must restart it and hear why.
        eprintln!("hekate: stopped on its own: {why}; exit status 1");
        return ExitCode::FAILURE;
    }
    if outcome.undelivered.is_empty() {
        tracing::info!("Shutdown complete.");
        ExitCode::SUCCESS
    } else {
        // Messages were accepted and then dropped: a supervisor must hear about it.
        eprintln!("hekate: shutdown complete, but messages were lost (see above); exit status 2");
        ExitCode::from(2)
    }
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

//! Running hekate itself: whether `hekate run` exists, its configs in `bench/configs/`, start,
//! readiness, the SIGUSR1 report, and an orderly stop.
//!
//! The configs use Heka's `%ENV[NAME]` substitution for everything a run decides (ports, cores,
//! paths), so the same file runs by hand with the variables set — the page shows them in each
//! command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::Bench;
use super::proc::{Launch, Running, describe_exit};

/// Whether hekate can be measured.
#[derive(Clone, Debug)]
pub enum Availability {
    /// `hekate run --help` works.
    Ready(PathBuf),
    /// Why not.
    Unavailable(String),
}

impl Availability {
    /// Asks the binary whether it has a `run` subcommand.
    pub fn probe(bin: &Path, scratch: &Path) -> Availability {
        if !bin.is_file() {
            return Availability::Unavailable(format!(
                "hekate run not available ({} not built)",
                bin.display()
            ));
        }
        let out = Command::new(bin)
            .args(["run", "--help"])
            .current_dir(scratch)
            .output();
        match out {
            Ok(o) if o.status.success() => Availability::Ready(bin.to_owned()),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Availability::Unavailable(format!(
                    "hekate run not available (`hekate run --help`: {})",
                    first.trim()
                ))
            }
            Err(e) => Availability::Unavailable(format!("hekate run not available ({e})")),
        }
    }

    /// The reason rows are not run, if they cannot be.
    pub fn unavailable(&self) -> Option<&str> {
        match self {
            Availability::Ready(_) => None,
            Availability::Unavailable(why) => Some(why),
        }
    }
}

/// A hekate config of `bench/configs/` with the values for its `%ENV[…]` variables.
#[derive(Clone, Debug)]
pub struct HekateRun {
    /// The config file, relative to the workspace root.
    pub config: String,
    /// `%ENV` values.
    pub env: Vec<(String, String)>,
    /// Cores for taskset (the worker cores).
    pub cores: String,
}

impl HekateRun {
    /// A run of `bench/configs/<name>.toml` with the worker cores `cores` (e.g. `1` or `0,1`),
    /// the input on `input_port`, and state under `base_dir`.
    pub fn new(name: &str, cores: &str, input_port: u16, base_dir: &Path) -> Self {
        let coordinator = cores.split(',').next().unwrap_or("0").to_owned();
        HekateRun {
            config: format!("bench/configs/{name}.toml"),
            env: vec![
                ("BENCH_WORKER_CORES".into(), super::Cores::toml_list(cores)),
                ("BENCH_COORDINATOR_CORE".into(), coordinator),
                ("BENCH_INPUT_PORT".into(), input_port.to_string()),
                ("BENCH_BASE_DIR".into(), base_dir.display().to_string()),
            ],
            cores: cores.into(),
        }
    }

    /// Sets a further `%ENV` variable.
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn launch(&self, b: &Bench, name: &str, args: &[&str]) -> Launch {
        let mut l = b.launch(name, "hekate").args(args.iter().copied());
        if let super::hekate::Availability::Ready(bin) = &b.hekate {
            l.exe = Some(bin.clone());
        }
        for (k, v) in &self.env {
            l = l.env(k, v.clone());
        }
        l
    }

    /// `hekate check -c CONFIG`: `Err` with hekate's words when the config is refused.
    pub fn check(&self, b: &Bench) -> Result<(), String> {
        let mut p = self
            .launch(b, "hekate-check", &["check", "-c", &self.config])
            .spawn(&b.opts.run_dir)?;
        match p.wait(Duration::from_secs(20)) {
            Some(s) if s.success() => Ok(()),
            status => Err(format!(
                "`hekate check` refused {} ({}): {}",
                self.config,
                describe_exit(status),
                p.tail(4)
            )),
        }
    }

    /// The `hekate run` launch, pinned to the worker cores (for wrapping, e.g. in valgrind).
    pub fn run_launch(&self, b: &Bench, name: &str) -> Launch {
        self.launch(b, name, &["run", "-c", &self.config])
            .cores(&self.cores)
    }

    /// Starts `hekate run` and waits until its input accepts connections.
    pub fn start(&self, b: &Bench, name: &str, input_port: u16) -> Result<Running, String> {
        self.start_launch(
            b,
            self.run_launch(b, name),
            input_port,
            Duration::from_secs(20),
        )
    }

    /// Starts a prepared launch of hekate and waits for its TCP input.
    pub fn start_launch(
        &self,
        b: &Bench,
        launch: Launch,
        input_port: u16,
        patience: Duration,
    ) -> Result<Running, String> {
        let mut p = launch.spawn(&b.opts.run_dir)?;
        let deadline = Instant::now() + patience;
        loop {
            if let Some(s) = p.try_wait() {
                return Err(format!(
                    "hekate exited at start ({}): {}",
                    describe_exit(Some(s)),
                    p.tail(4)
                ));
            }
            // A connection that sends nothing and closes is harmless to a TcpInput.
            if std::net::TcpStream::connect(("127.0.0.1", input_port)).is_ok() {
                return Ok(p);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "hekate did not open 127.0.0.1:{input_port} within {} s: {}",
                    patience.as_secs(),
                    p.tail(4)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Adds what hekate last said on stderr to a failure `reason`.
pub fn explain(reason: String, hk: &Running) -> String {
    let said = hk.tail(3);
    if said.is_empty() {
        reason
    } else {
        format!("{reason}; hekate said: {said}")
    }
}

/// Stops hekate with SIGTERM; `Err` when it had to be killed or exited with an error.
pub fn stop(p: &mut Running, grace: Duration) -> Result<(), String> {
    let (status, killed) = p.stop(grace);
    if killed {
        return Err(format!(
            "hekate did not stop within {} s of SIGTERM: {}",
            grace.as_secs(),
            p.tail(3)
        ));
    }
    match status {
        Some(s) if s.success() => Ok(()),
        s => Err(format!(
            "hekate stopped with {}: {}",
            describe_exit(s),
            p.tail(3)
        )),
    }
}

/// The `ProcessMessageCount` of plugin `plugin` in the last Heka text report (reference §7.3)
/// printed to `stdout`.
pub fn report_count(stdout: &str, plugin: &str) -> Option<u64> {
    report_value(stdout, plugin, "ProcessMessageCount")?
        .parse()
        .ok()
}

/// The value of field `field` of plugin `plugin` in the last Heka text report printed to
/// `stdout`, as printed.
pub fn report_value<'a>(stdout: &'a str, plugin: &str, field: &str) -> Option<&'a str> {
    let report = stdout.rsplit("========[heka.all-report]========").next()?;
    if report.len() == stdout.len() {
        return None;
    }
    let mut in_plugin = false;
    for line in report.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            in_plugin = line.trim_end_matches(':') == plugin;
            continue;
        }
        if in_plugin {
            if let Some(v) = line
                .trim()
                .strip_prefix(field)
                .and_then(|v| v.strip_prefix(':'))
            {
                return Some(v.trim());
            }
        }
    }
    None
}

/// Asks hekate for its report (SIGUSR1) until plugin `plugin` counted `want` messages; returns
/// the last count seen, or why none could be read.
pub fn await_report_count(
    p: &mut Running,
    plugin: &str,
    want: u64,
    patience: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + patience;
    let mut last = None;
    loop {
        p.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(200));
        if let Some(s) = p.try_wait() {
            return Err(format!(
                "hekate exited on SIGUSR1 ({}): no report",
                describe_exit(Some(s))
            ));
        }
        last = report_count(&p.stdout(), plugin).or(last);
        match last {
            Some(n) if n >= want => return Ok(n),
            _ if Instant::now() >= deadline => {
                return last.ok_or_else(|| "hekate printed no SIGUSR1 report".to_owned());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count_of_one_plugin_from_the_last_report() {
        let out = "========[heka.all-report]========\n\n====Outputs====\nout:\n    ProcessMessageCount: 5\n========\n\
                   ========[heka.all-report]========\n\n====Filters====\nerrors_5xx:\n    MatchChanCapacity: 30\n    ProcessMessageCount: 7\n\
                   \n====Outputs====\nout:\n    InChanCapacity: 30\n    ProcessMessageCount: 1000\n========\n";
        assert_eq!(report_count(out, "out"), Some(1000));
        assert_eq!(report_count(out, "errors_5xx"), Some(7));
        assert_eq!(report_count(out, "missing"), None);
        assert_eq!(report_count("no report here", "out"), None);
        assert_eq!(
            report_value(out, "errors_5xx", "MatchChanCapacity"),
            Some("30")
        );
        assert_eq!(report_value(out, "out", "MatchChan"), None);
    }
}

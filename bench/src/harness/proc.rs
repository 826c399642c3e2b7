//! Spawning the processes of a run: pinned with `taskset`, output captured to files in the run
//! directory, stopped with SIGTERM (then SIGKILL) and never left behind.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How to start one process.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Short name, used for its log files.
    pub name: String,
    /// Cores for `taskset -c` (e.g. `0` or `0,1`); `None` = not pinned.
    pub cores: Option<String>,
    /// Program (looked up in `PATH`).
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The file to execute, when `program` is shown by its bare name but lives elsewhere.
    pub exe: Option<PathBuf>,
}

impl Launch {
    /// A process running `program`.
    pub fn new(name: &str, program: &str) -> Self {
        Launch {
            name: name.into(),
            program: program.into(),
            ..Default::default()
        }
    }

    /// Pins it to `cores`.
    pub fn cores(mut self, cores: &str) -> Self {
        self.cores = Some(cores.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line as a shell would run it, for the results page.
    pub fn command_line(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in &self.env {
            parts.push(format!("{k}={}", shell_quote(v)));
        }
        if let Some(c) = &self.cores {
            parts.push(format!("taskset -c {c}"));
        }
        parts.push(shell_quote(&self.program));
        parts.extend(self.args.iter().map(|a| shell_quote(a)));
        parts.join(" ")
    }

    /// Starts it, with stdout and stderr going to `<dir>/<name>.out` and `.err`.
    pub fn spawn(&self, dir: &Path) -> Result<Running, String> {
        let stdout = dir.join(format!("{}.out", self.name));
        let stderr = dir.join(format!("{}.err", self.name));
        let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut cmd = match &self.cores {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c")
                    .arg(c)
                    .arg(self.exe.as_deref().unwrap_or(Path::new(&self.program)));
                cmd
            }
            None => Command::new(self.exe.as_deref().unwrap_or(Path::new(&self.program))),
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        Ok(Running {
            name: self.name.clone(),
            command: self.command_line(),
            child,
            stdout,
            stderr,
            status: None,
        })
    }
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A started process. Dropping it kills the process if it still runs.
#[derive(Debug)]
pub struct Running {
    /// Its short name.
    pub name: String,
    /// How it was started.
    pub command: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Running {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends a signal.
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.try_wait().is_none() {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, sig);
            }
        }
    }

    /// Asks it to stop (SIGTERM); kills it after `grace`. Returns the exit status and whether it
    /// had to be killed.
    pub fn stop(&mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        if let Some(s) = self.try_wait() {
            return (Some(s), false);
        }
        self.signal(libc::SIGTERM);
        if let Some(s) = self.wait(grace) {
            return (Some(s), false);
        }
        let _ = self.child.kill();
        (self.child.wait().ok(), true)
    }

    /// What it wrote to stdout.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it wrote to stderr.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last `n` non-empty lines of stderr (or stdout when stderr is empty), joined by ` | `.
    pub fn tail(&self, n: usize) -> String {
        let mut text = self.stderr();
        if text.trim().is_empty() {
            text = self.stdout();
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }

    /// Waits until stdout or stderr contains `needle`; returns that line. `None` when it exited or
    /// `timeout` passed first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            for text in [self.stderr(), self.stdout()] {
                if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                    return Some(line.to_owned());
                }
            }
            if self.try_wait().is_some() || Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Describes an exit status in a few words.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "still running".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_copy_pasteable() {
        let l = Launch::new("x", "hekate-flood")
            .cores("0")
            .args(["--address", "127.0.0.1:5565", "--size", "200:70,1000:30"])
            .env("BENCH_WORKER_CORES", "[1]");
        assert_eq!(
            l.command_line(),
            "BENCH_WORKER_CORES='[1]' taskset -c 0 hekate-flood --address 127.0.0.1:5565 --size 200:70,1000:30"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn runs_waits_and_stops() {
        let dir = std::env::temp_dir().join(format!("hekate-bench-proc-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut p = Launch::new("echo", "sh")
            .args(["-c", "echo ready >&2; exec sleep 30"])
            .spawn(&dir)
            .unwrap();
        assert_eq!(
            p.wait_for_line("ready", Duration::from_secs(5)).as_deref(),
            Some("ready")
        );
        let (status, killed) = p.stop(Duration::from_secs(5));
        assert!(!killed);
        assert_eq!(describe_exit(status), "killed by signal 15");
        let _ = fs::remove_dir_all(&dir);
    }
}

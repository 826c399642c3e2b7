//! ProcessInput: runs a chain of commands every `ticker_interval` seconds (the standard output
//! of each piped into the next) and makes messages of what the last one writes, as Heka's does.
//!
//! Messages built from records have Type `ProcessInput`, Logger = the input's name, and the
//! field `ProcessInputName` = `<name>.stdout` (or `.stderr` with `stderr = true`). With a
//! `ticker_interval` above 0 each run's output is held until the chain has ended, so that its
//! messages carry the field `ExitStatus` (the last command's exit code; -1 when a signal ended
//! it) and, when a command failed, `SubcmdErrors` ("Subcommand[<i>] returned an error: <why>",
//! one per failed command, joined by "; "); a run's output is held up to 8 MiB, and what
//! comes beyond is read and dropped, with a warning. With `ticker_interval = 0` the chain is
//! started once and its output streamed as it comes (for long-running commands), without
//! those two fields; when it ends, it is not restarted.
//!
//! Children never hold up the shard: the chain is started by a thread of the input's own,
//! the last command writes into a socket the shard reads through io_uring, and exits are
//! collected without waiting. A command that writes faster than the pipeline takes is pushed
//! back (the shard stops reading its socket, so its writes block). `timeout` kills every
//! command of a run that takes longer. Children are killed when the input stops, and by the
//! kernel if hekate dies (`PR_SET_PDEATHSIG`). A command that cannot be started, exits with an
//! error or times out is counted (`ProcessErrorCount`) and warned about; the next tick runs the
//! chain again.
//!
//! ```toml
//! [disk_usage]
//! type = "ProcessInput"
//! ticker_interval = 60
//! timeout = 10
//! splitter = "TokenSplitter"
//!
//! [disk_usage.command.0]
//! bin = "/bin/df"
//! args = ["-P", "-k"]
//!
//! [disk_usage.command.1]
//! bin = "/usr/bin/tail"
//! args = ["-n", "+2"]
//! ```
//!
//! Options: `command` (required: `[name.command.<i>]` tables, numbered from 0, each with `bin`,
//! `args`, `env` (a list of "KEY=VALUE": the command's whole environment, as in Heka) and
//! `directory`), `ticker_interval` (15 s; 0 = run once and stream), `immediate_start` (false),
//! `stdout` (true), `stderr` (false), `timeout` (seconds; 0 = none), plus the common input
//! options (the default splitter is TokenSplitter: one message per line).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, future};
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlacement, InputPlugin, LocalBoxFuture,
    PluginError, PluginType, RecordStream, ReportSink as _, StreamSpec, options_of,
};
use hekate_model::writer::MessageWriter;
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "ProcessInput",
    source: include_str!("process.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The most of one run's output held until the chain ends (interval mode).
const MAX_RUN_OUTPUT: usize = 8 << 20;
/// How often exits are looked for once the output has ended.
const REAP_EVERY: Duration = Duration::from_millis(5);

fn default_true() -> bool {
    true
}

/// ProcessInput's own options (`ticker_interval` is a common input option).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// The chain: `[name.command.0]`, `[name.command.1]`, …; the standard output of each is
    /// the standard input of the next.
    pub(crate) command: BTreeMap<String, CommandOptions>,
    /// Run the chain at start, not one `ticker_interval` later.
    #[serde(default)]
    immediate_start: bool,
    /// Make messages of the last command's standard output.
    #[serde(default = "default_true")]
    stdout: bool,
    /// Make messages of the last command's standard error.
    #[serde(default)]
    stderr: bool,
    /// Seconds a run may take before every command of it is killed; 0 for no limit.
    #[serde(default)]
    timeout: u64,
}

/// One command of the chain.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandOptions {
    /// The program: a path, or a name looked up in `PATH`.
    bin: String,
    /// Its arguments.
    #[serde(default)]
    args: Vec<String>,
    /// Its whole environment, as "KEY=VALUE" strings (default: hekate's).
    #[serde(default)]
    env: Option<Vec<String>>,
    /// Its working directory (default: hekate's).
    #[serde(default)]
    directory: Option<String>,
}

#[derive(Debug)]
struct ProcessInput {
    job: Job,
    spec: StreamSpec,
}

/// The chain of `command`, checked: numbered from 0 without gaps, `env` entries KEY=VALUE.
pub(crate) fn steps_of(
    command: &BTreeMap<String, CommandOptions>,
    name: &str,
) -> Result<Vec<CommandOptions>, String> {
    let mut steps = Vec::with_capacity(command.len());
    for i in 0..command.len() {
        let Some(step) = command.get(&i.to_string()) else {
            return Err(format!(
                "`command` must be numbered from 0 without gaps: [{name}.command.{i}] is missing"
            ));
        };
        if let Some(bad) = step
            .env
            .iter()
            .flatten()
            .find(|kv| !kv.contains('=') || kv.starts_with('='))
        {
            return Err(format!(
                "[{name}.command.{i}] env entry \"{bad}\" is not KEY=VALUE"
            ));
        }
        steps.push(step.clone());
    }
    if steps.is_empty() {
        return Err(format!(
            "ProcessInput [{name}] needs at least [{name}.command.0]"
        ));
    }
    Ok(steps)
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let steps =
        steps_of(&opts.command, section.name()).map_err(|e| section.error_at_key("command", e))?;
    let every = section
        .input()
        .and_then(|i| i.ticker_interval)
        .unwrap_or(Duration::from_secs(15));
    let spec = ctx.stream_spec(section, "TokenSplitter", None)?;
    Ok(Built::Input(Arc::new(ProcessInput {
        job: Job::new(section.name(), steps, every, &opts),
        spec,
    })))
}

/// One chain and how it runs: a ProcessInput's, or one job file's of a ProcessDirectoryInput.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    /// The Logger of its messages.
    pub(crate) name: String,
    steps: Arc<Vec<CommandOptions>>,
    /// `None`: run once, streaming.
    every: Option<Duration>,
    immediate_start: bool,
    stdout: bool,
    stderr: bool,
    timeout: Option<Duration>,
}

impl Job {
    pub(crate) fn new(
        name: &str,
        steps: Vec<CommandOptions>,
        every: Duration,
        opts: &Options,
    ) -> Job {
        Job {
            name: name.to_string(),
            steps: Arc::new(steps),
            every: (!every.is_zero()).then_some(every),
            immediate_start: opts.immediate_start,
            stdout: opts.stdout,
            stderr: opts.stderr,
            timeout: (opts.timeout > 0).then(|| Duration::from_secs(opts.timeout)),
        }
    }
}

/// Runs `job` until the input stops (or the task running it is dropped: its children are
/// killed then too).
pub(crate) async fn run_job(
    ctx: InputContext,
    spec: Rc<StreamSpec>,
    job: Job,
    spawner: Rc<Spawner>,
    errors: Rc<Cell<u64>>,
) {
    let mut outputs = Outputs {
        stdout: job.stdout.then(|| origin(&ctx, &spec, &job.name, "stdout")),
        stderr: job.stderr.then(|| origin(&ctx, &spec, &job.name, "stderr")),
    };
    let runner = Runner {
        ctx,
        steps: Arc::clone(&job.steps),
        timeout: job.timeout,
        errors,
        spawner,
        name: job.name.clone(),
    };
    let Some(every) = job.every else {
        // Run once, streaming.
        runner.run(&mut outputs, None).await;
        runner.ctx.stopped().await;
        return;
    };
    let mut first = job.immediate_start;
    loop {
        if !first {
            let stopped = runner.ctx.sleep_unless_stopped(every).await;
            if stopped {
                return;
            }
        }
        first = false;
        runner.run(&mut outputs, Some(MAX_RUN_OUTPUT)).await;
        if runner.ctx.is_stopped() {
            return;
        }
    }
}

impl InputPlugin for ProcessInput {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("ProcessInput")))
    }

    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let spawner = Spawner::new(&ctx.name)
            .map_err(|e| PluginError::Other(format!("ProcessInput cannot start a thread: {e}")))?;
        let job = self.job.clone();
        let spec = Rc::new(self.spec.clone());
        Ok(Box::pin(async move {
            run_job(ctx, spec, job, Rc::new(spawner), Rc::default()).await;
            Ok(())
        }))
    }
}

/// The record streams of the last command's outputs, with their `ProcessInputName`.
struct Outputs {
    stdout: Option<(RecordStream, String)>,
    stderr: Option<(RecordStream, String)>,
}

fn origin(ctx: &InputContext, spec: &StreamSpec, job: &str, which: &str) -> (RecordStream, String) {
    let mut records = ctx.stream(spec, None);
    records.set_origin(job, Some("ProcessInput"));
    let name = format!("{job}.{which}");
    let mut fields = Vec::new();
    MessageWriter::new(&mut fields).field_string("ProcessInputName", &name);
    records.set_fields(&fields);
    (records, name)
}

struct Runner {
    ctx: InputContext,
    steps: Arc<Vec<CommandOptions>>,
    timeout: Option<Duration>,
    /// Failures of the input (every job of a ProcessDirectoryInput adds to one count).
    errors: Rc<Cell<u64>>,
    spawner: Rc<Spawner>,
    /// The job's name, in warnings.
    name: String,
}

/// What a started chain is: its children, or why it could not start.
type Started = Result<Vec<(usize, Child)>, String>;
/// Where the spawning thread leaves a chain it started.
type Slot = Arc<Mutex<Option<Started>>>;

/// The input's spawning thread. Children get SIGKILL when the thread that started them ends
/// (`PR_SET_PDEATHSIG`), so it lives as long as the input: when hekate dies, so do they.
pub(crate) struct Spawner {
    jobs: mpsc::Sender<(Arc<Vec<CommandOptions>>, OwnedFd, OwnedFd, Slot)>,
}

impl Spawner {
    pub(crate) fn new(name: &str) -> std::io::Result<Spawner> {
        let (jobs, rx) = mpsc::channel::<(Arc<Vec<CommandOptions>>, OwnedFd, OwnedFd, Slot)>();
        std::thread::Builder::new()
            .name(format!("hekate-proc-{name}"))
            .spawn(move || {
                while let Ok((steps, out, err, slot)) = rx.recv() {
                    let started = spawn_chain(&steps, out, err);
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(started);
                    }
                }
            })?;
        Ok(Spawner { jobs })
    }

    fn spawn(&self, steps: Arc<Vec<CommandOptions>>, out: OwnedFd, err: OwnedFd) -> Slot {
        let slot: Slot = Arc::new(Mutex::new(None));
        if self
            .jobs
            .send((steps, out, err, Arc::clone(&slot)))
            .is_err()
            && let Ok(mut s) = slot.lock()
        {
            *s = Some(Err("the spawning thread is gone".into()));
        }
        slot
    }
}

/// How a run ended.
#[derive(Debug, Default)]
struct Ended {
    /// The last command's exit code (-1: ended by a signal).
    exit_status: i64,
    /// One line per command that failed.
    errors: Vec<String>,
}

impl Runner {
    fn failed(&self, why: &str) {
        self.errors.set(self.errors.get() + 1);
        let mut fields = FieldCollector::default();
        fields.int("ProcessErrorCount", self.errors.get() as i64, "count");
        self.ctx.counters().set_extra(fields.fields);
        if self.name == *self.ctx.name {
            warn_limited!("Input '{}': {why}", self.ctx.name);
        } else {
            warn_limited!("Input '{}' ({}): {why}", self.ctx.name, self.name);
        }
    }

    /// One run of the chain. `hold`: keep the output (up to that many bytes) until the chain
    /// ends and add its exit to the messages; `None`: stream it as it comes.
    async fn run(&self, outputs: &mut Outputs, hold: Option<usize>) {
        let (ours_out, theirs_out) = match socket_pair() {
            Ok(p) => p,
            Err(e) => return self.failed(&format!("cannot make a socket for the output: {e}")),
        };
        let (ours_err, theirs_err) = match socket_pair() {
            Ok(p) => p,
            Err(e) => return self.failed(&format!("cannot make a socket for the output: {e}")),
        };
        // Started by the input's spawning thread: fork and exec never hold up the shard.
        let slot = self
            .spawner
            .spawn(Arc::clone(&self.steps), theirs_out, theirs_err);
        let started = loop {
            if let Some(r) = slot.lock().ok().and_then(|mut s| s.take()) {
                break r;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        };
        let mut chain = match started {
            Ok(children) => Chain(children),
            Err(e) => return self.failed(&e),
        };
        let children = &mut chain.0;
        let deadline = self.timeout.map(|t| Instant::now() + t);
        // SAFETY: the descriptors are ours alone, connected stream sockets.
        let out = unsafe { glommio::net::UnixStream::from_raw_fd(into_raw(ours_out)) };
        let err = unsafe { glommio::net::UnixStream::from_raw_fd(into_raw(ours_err)) };
        // Filled as the output is read, so that a run cut short keeps what it wrote.
        let held_out = RefCell::new(Vec::new());
        let held_err = RefCell::new(Vec::new());
        let reading = future::zip(
            read_output(self, out, outputs.stdout.as_mut(), hold, &held_out),
            read_output(self, err, outputs.stderr.as_mut(), hold, &held_err),
        );
        let timer = async {
            match deadline {
                Some(d) => glommio::timer::sleep(d.saturating_duration_since(Instant::now())).await,
                None => future::pending::<()>().await,
            }
        };
        let stopped = async {
            self.ctx.stopped().await;
        };
        let cut_short = future::or(
            async {
                reading.await;
                false
            },
            async {
                future::or(timer, stopped).await;
                true
            },
        )
        .await;
        if cut_short {
            kill_all(children);
        }
        let mut ended = reap(children, deadline, self).await;
        if cut_short && !self.ctx.is_stopped() {
            ended.errors.push(format!(
                "the run was killed after its timeout of {:?}",
                self.timeout.unwrap_or_default()
            ));
        }
        if !ended.errors.is_empty() {
            self.failed(&format!(
                "{} ({})",
                ended.errors.join("; "),
                self.steps[0].bin
            ));
        }
        if hold.is_none() || self.ctx.is_stopped() {
            return;
        }
        // The held output, with how the chain ended.
        for (stream, held) in [
            (outputs.stdout.as_mut(), held_out.take()),
            (outputs.stderr.as_mut(), held_err.take()),
        ] {
            let Some((records, name)) = stream else {
                continue;
            };
            let mut fields = Vec::new();
            let mut w = MessageWriter::new(&mut fields);
            w.field_string("ProcessInputName", name)
                .field_int("ExitStatus", ended.exit_status);
            if !ended.errors.is_empty() {
                w.field_string("SubcmdErrors", &ended.errors.join("; "));
            }
            records.set_fields(&fields);
            records.reserve(held.len());
            records.read_buf()[..held.len()].copy_from_slice(&held);
            records.feed(held.len()).await;
            records.finish().await;
        }
    }
}

/// Reads one output socket to its end: into `held` (up to `hold` bytes; the rest is dropped)
/// or, streaming, straight into `stream`; without a stream, read and dropped.
async fn read_output(
    runner: &Runner,
    mut socket: glommio::net::UnixStream,
    mut stream: Option<&mut (RecordStream, String)>,
    hold: Option<usize>,
    held: &RefCell<Vec<u8>>,
) {
    let mut scratch = vec![0u8; 16 * 1024];
    let mut warned = false;
    loop {
        let n = match (&mut stream, hold) {
            (Some((records, _)), None) => {
                records.reserve(16 * 1024);
                match socket.read(records.read_buf()).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        records.feed(n).await;
                        continue;
                    }
                }
            }
            _ => match socket.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        if let (Some(_), Some(limit)) = (&stream, hold) {
            let mut kept = held.borrow_mut();
            let room = limit.saturating_sub(kept.len());
            kept.extend_from_slice(&scratch[..n.min(room)]);
            if n > room && !warned {
                warned = true;
                warn_limited!(
                    "Input '{}': a run wrote more than {limit} bytes; the rest is dropped",
                    runner.ctx.name
                );
            }
        }
    }
    if let (Some((records, _)), None) = (stream, hold) {
        records.finish().await;
    }
}

/// Waits for every child without blocking the shard (killing them all past `deadline`).
async fn reap(
    children: &mut [(usize, Child)],
    deadline: Option<Instant>,
    runner: &Runner,
) -> Ended {
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    loop {
        for (slot, (_, child)) in statuses.iter_mut().zip(children.iter_mut()) {
            if slot.is_none() {
                *slot = child.try_wait().ok().flatten();
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || runner.ctx.is_stopped() {
            kill_all(children);
        }
        glommio::timer::sleep(REAP_EVERY).await;
    }
    let mut ended = Ended::default();
    for ((i, _), status) in children.iter().zip(&statuses) {
        let status = status.expect("every child was reaped");
        if !status.success() {
            let why = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => "failed".to_string(),
            };
            ended
                .errors
                .push(format!("Subcommand[{i}] returned an error: {why}"));
        }
    }
    if let Some(last) = statuses.last().copied().flatten() {
        ended.exit_status = last.code().map_or(-1, i64::from);
    }
    ended
}

/// A started chain; dropped with its run (the input stopped, or its job file was removed or
/// changed), it kills and reaps whatever still runs.
struct Chain(Vec<(usize, Child)>);

impl Drop for Chain {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn kill_all(children: &mut [(usize, Child)]) {
    for (_, c) in children {
        let _ = c.kill();
    }
}

/// A connected pair of unix stream sockets, close-on-exec: (ours, theirs).
fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    Ok((OwnedFd::from(a), OwnedFd::from(b)))
}

fn into_raw(fd: OwnedFd) -> std::os::fd::RawFd {
    use std::os::fd::IntoRawFd as _;
    fd.into_raw_fd()
}

/// Starts the chain: stdin of the first is empty, each stdout feeds the next, the last writes
/// into `stdout` and `stderr`. On failure, what was started is killed.
fn spawn_chain(
    steps: &[CommandOptions],
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Vec<(usize, Child)>, String> {
    let mut children: Vec<(usize, Child)> = Vec::with_capacity(steps.len());
    let mut previous: Option<std::process::ChildStdout> = None;
    let mut stdout = Some(stdout);
    let mut stderr = Some(stderr);
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let mut cmd = Command::new(&step.bin);
        cmd.args(&step.args);
        if let Some(env) = &step.env {
            cmd.env_clear();
            for kv in env {
                if let Some((k, v)) = kv.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        if let Some(dir) = &step.directory {
            cmd.current_dir(PathBuf::from(dir));
        }
        cmd.stdin(match previous.take() {
            Some(out) => Stdio::from(out),
            None => Stdio::null(),
        });
        if last {
            cmd.stdout(Stdio::from(stdout.take().expect("the last command")));
            cmd.stderr(Stdio::from(stderr.take().expect("the last command")));
        } else {
            cmd.stdout(Stdio::piped());
            cmd.stderr(Stdio::null());
        }
        // SAFETY: only prctl, which is async-signal-safe, runs between fork and exec. The child
        // is killed when the spawning thread ends, which lives as long as the input.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                previous = child.stdout.take();
                children.push((i, child));
            }
            Err(e) => {
                for (_, c) in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(format!("cannot start {} (command {i}): {e}", step.bin));
            }
        }
    }
    Ok(children)
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("process.rs"));
    }

    #[test]
    fn bad_chains_are_refused() {
        let e = build("[p]\ntype = \"ProcessInput\"\n[p.command.1]\nbin = \"/bin/true\"\n")
            .unwrap_err();
        assert!(e.contains("[p.command.0] is missing"), "{e}");
        let e = build(
            "[p]\ntype = \"ProcessInput\"\n[p.command.0]\nbin = \"/bin/true\"\nenv = [\"NOEQUALS\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("not KEY=VALUE"), "{e}");
    }
}

//! The rig every scenario runs on, and what is measured from outside hekate.
//!
//! `hekate-flood --reconnect` → hekate (`bench/configs/torture.toml`) → FileOutput file, and
//! disk queue → TcpOutput → `hekate-sink --arrivals`. The ports are fixed for a scenario, so a
//! restarted hekate finds its sink and the flood finds the restarted hekate. Outside hekate:
//! its memory, the queue's depth and the file's growth, sampled every 250 ms ([`Sampler`]); the
//! bytes in flight in the sink's TCP connections ([`tcp_in_flight`]); hekate's own
//! `heka.all-report` messages, which the config writes to a file ([`output_reports`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hekate_model::framing::{DEFAULT_MAX_MESSAGE_SIZE, HekaSplitter, SplitOutcome};
use hekate_model::message::{MessageAccess, MessageView};

use super::super::Bench;
use super::super::drive::json_report;
use super::super::hekate::HekateRun;
use super::super::proc::{Running, describe_exit};
use super::durable;
use crate::flood::{FloodReport, now_ns};
use crate::parse::heka_stamp;

/// The output whose disk queue is tortured (the section name in torture.toml).
pub const QUEUE_OUTPUT: &str = "upstream";
/// Connections of the flood.
pub const CONNECTIONS: u32 = 2;
/// Message size of the flood.
pub const MESSAGE_SIZE: &str = "300";
/// What a sink may have read from a connection and not logged yet: its read buffer
/// (`sink::pump`: 256 KiB plus the largest record).
pub const SINK_READ_BUFFER: u64 = 256 * 1024 + 64 * 1024 + 512;

/// The processes and paths of one scenario.
#[derive(Debug)]
pub struct Rig<'b> {
    /// The harness.
    pub b: &'b Bench,
    /// Scenario name: prefixes the log files.
    pub name: String,
    /// Scratch directory.
    pub dir: PathBuf,
    /// hekate's base_dir (the queue is under it).
    pub base_dir: PathBuf,
    /// The FileOutput's file.
    pub out_file: PathBuf,
    /// Where hekate's reports go.
    pub report_file: PathBuf,
    /// hekate's TcpInput.
    pub input_port: u16,
    /// The sink's port (hekate's upstream).
    pub sink_port: u16,
    /// Flood rate, messages per second.
    pub rate: f64,
    /// The first command line of each process, for the page.
    pub commands: Vec<String>,
    /// Before each start of hekate: how long a listener of a previous hekate was still in the
    /// kernel on the input port (see [`Rig::start_hekate`]).
    pub lingered: Vec<Duration>,
    hekate_starts: u32,
    sink_starts: u32,
}

impl<'b> Rig<'b> {
    /// A rig for scenario `name`, with hekate's base_dir at `base_dir` (default: in the scratch
    /// directory) and the flood at `rate`.
    pub fn new(b: &'b Bench, name: &str, base_dir: Option<PathBuf>, rate: f64) -> Self {
        let dir = b.scratch(name);
        Rig {
            b,
            name: name.into(),
            base_dir: base_dir.unwrap_or_else(|| dir.join("base")),
            out_file: dir.join("out.hekad"),
            report_file: dir.join("reports.hekad"),
            input_port: quiet_port(b),
            sink_port: quiet_port(b),
            rate,
            commands: Vec::new(),
            lingered: Vec::new(),
            hekate_starts: 0,
            sink_starts: 0,
            dir,
        }
    }

    /// The disk queue of the tortured output.
    pub fn queue_dir(&self) -> PathBuf {
        self.base_dir.join("output_queue").join(QUEUE_OUTPUT)
    }

    fn note(&mut self, command: &str) {
        let program = command.split_whitespace().find(|w| w.starts_with("hekate"));
        let seen = self
            .commands
            .iter()
            .any(|c| c.split_whitespace().find(|w| w.starts_with("hekate")) == program);
        if !seen {
            self.commands.push(command.to_owned());
        }
    }

    fn hekate_run(&self) -> HekateRun {
        let mut run = HekateRun::new(
            "torture",
            &self.b.cores.sut,
            self.input_port,
            &self.base_dir,
        )
        .var("BENCH_SINK_PORT", self.sink_port.to_string())
        .var("BENCH_OUTPUT_FILE", self.out_file.display().to_string())
        .var("BENCH_REPORT_FILE", self.report_file.display().to_string());
        // Run from elsewhere (a test): the config by its full path.
        if std::env::current_dir().ok().as_deref() != Some(self.b.opts.repo.as_path()) {
            run.config = self.b.opts.repo.join(&run.config).display().to_string();
        }
        run
    }

    /// `hekate check` on the config, with this rig's variables.
    pub fn check(&self) -> Result<(), String> {
        self.hekate_run().check(self.b)
    }

    /// Starts hekate and waits until its input accepts connections.
    ///
    /// First waits (up to 5 s) until nothing listens on the input port any more: after a kill -9
    /// the kernel releases the dead process's listener only when it tears down its io_uring,
    /// some milliseconds after the process was reaped; meanwhile that listener still accepts
    /// connections (which would pass for a started hekate) and a new hekate refuses to start
    /// ("in use by another process"). The wait is recorded in [`lingered`](Rig::lingered).
    pub fn start_hekate(&mut self) -> Result<Running, String> {
        let since = Instant::now();
        while listening(self.input_port) && since.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(1));
        }
        self.lingered.push(since.elapsed());
        self.hekate_starts += 1;
        let name = format!("{}-hekate-{}", self.name, self.hekate_starts);
        let hk = self
            .hekate_run()
            .start(self.b, &name, self.input_port)
            .map_err(|e| format!("start {} of hekate: {e}", self.hekate_starts))?;
        self.note(&hk.command);
        Ok(hk)
    }

    /// Starts a sink on the upstream port, logging arrivals; returns it and its arrival log.
    pub fn start_sink(&mut self) -> Result<(Running, PathBuf), String> {
        self.sink_starts += 1;
        let name = format!("{}-sink-{}", self.name, self.sink_starts);
        let log = self.dir.join(format!("{name}.arrivals"));
        let mut sink = self
            .b
            .launch(&name, "hekate-sink")
            .cores(&self.b.cores.sink)
            .args([
                "--listen".to_owned(),
                format!("tcp://127.0.0.1:{}", self.sink_port),
                "--arrivals".into(),
                log.display().to_string(),
                "--idle".into(),
                "600m".into(),
                "--timeout".into(),
                "600m".into(),
            ])
            .spawn(&self.b.opts.run_dir)?;
        if sink
            .wait_for_line("listening on", Duration::from_secs(10))
            .is_none()
        {
            return Err(format!("the sink did not start: {}", sink.tail(3)));
        }
        self.note(&sink.command);
        Ok((sink, log))
    }

    /// Starts the flood towards hekate's input: at the rig's rate, reconnecting, until stopped.
    pub fn start_flood(&mut self) -> Result<Running, String> {
        let name = format!("{}-flood", self.name);
        let flood = self
            .b
            .launch(&name, "hekate-flood")
            .cores(&self.b.cores.generator)
            .args([
                "--address".to_owned(),
                format!("127.0.0.1:{}", self.input_port),
                "--connections".into(),
                CONNECTIONS.to_string(),
                "--rate".into(),
                format!("{:.0}", self.rate),
                "--size".into(),
                MESSAGE_SIZE.into(),
                "--duration".into(),
                "600m".into(),
                "--reconnect".into(),
                "--connect-timeout".into(),
                "60s".into(),
                "--stall-timeout".into(),
                "60s".into(),
            ])
            .spawn(&self.b.opts.run_dir)?;
        self.note(&flood.command);
        Ok(flood)
    }
}

/// A free loopback port below the kernel's ephemeral range. Ports are taken again by restarted
/// processes, and a client reconnecting to a port of the ephemeral range while nobody listens
/// on it can be given that very port as its own and connect to itself (TCP simultaneous open),
/// which then holds the port: hekate's restart finds its address in use.
fn quiet_port(b: &Bench) -> u16 {
    let first_ephemeral = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = (10_000u16, first_ephemeral.max(10_001));
    let mut rng = Prng::new(now_ns() ^ u64::from(std::process::id()));
    for _ in 0..200 {
        let port = lo + (rng.next_u64() % u64::from(hi - lo)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    b.free_port()
}

/// Stops a flood (SIGTERM) and reads what it sent.
pub fn stop_flood(flood: &mut Running) -> Result<FloodReport, String> {
    flood.signal(libc::SIGTERM);
    if flood.wait(Duration::from_secs(20)).is_none() {
        flood.stop(Duration::from_secs(1));
        return Err("the flood did not stop within 20 s of SIGTERM".into());
    }
    json_report(flood)
}

/// Stops a sink once its arrival log has not grown for `quiet` (at most `patience`).
pub fn stop_sink_when_quiet(sink: &mut Running, log: &Path, quiet: Duration, patience: Duration) {
    wait_quiet(log, quiet, patience);
    sink.stop(Duration::from_secs(2));
}

/// Waits until `path` has not grown for `quiet`, at most `patience`; whether it went quiet.
pub fn wait_quiet(path: &Path, quiet: Duration, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    let len = || fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let (mut last, mut since) = (len(), Instant::now());
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = len();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return true;
        }
    }
    false
}

/// Stops hekate with SIGTERM: `Err` with what went wrong unless it exited 0 within 30 s.
pub fn stop_hekate(hk: &mut Running) -> Result<(), String> {
    let (status, killed) = hk.stop(Duration::from_secs(30));
    if killed {
        return Err(format!(
            "hekate did not stop within 30 s of SIGTERM: {}",
            hk.tail(3)
        ));
    }
    match status {
        Some(s) if s.success() => Ok(()),
        s => Err(format!(
            "hekate stopped with {}: {}",
            describe_exit(s),
            hk.tail(3)
        )),
    }
}

/// `Err` when hekate has exited (it should still be running).
pub fn still_running(hk: &mut Running, when: &str) -> Result<(), String> {
    match hk.try_wait() {
        None => Ok(()),
        Some(s) => Err(format!(
            "hekate exited {when} ({}): {}",
            describe_exit(Some(s)),
            hk.tail(3)
        )),
    }
}

/// A value of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
pub fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One look at hekate from outside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// When, ns since the epoch.
    pub at_ns: u64,
    /// Size of the FileOutput's file.
    pub file_bytes: u64,
    /// Bytes of the queue not yet acknowledged ([`durable::pending_bytes`]).
    pub queue_bytes: u64,
    /// hekate's resident memory, kB (0 when it is not running).
    pub rss_kb: u64,
}

/// Samples hekate every 250 ms on a thread until [`finish`](Sampler::finish) (or drop).
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    /// Starts sampling hekate `pid`, the file `out_file` and the queue in `queue_dir`.
    pub fn start(pid: u32, out_file: &Path, queue_dir: &Path) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, out_file, queue_dir) =
            (Arc::clone(&stop), out_file.to_owned(), queue_dir.to_owned());
        let handle = thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push(Sample {
                    at_ns: now_ns(),
                    file_bytes: fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0),
                    queue_bytes: durable::pending_bytes(&queue_dir),
                    rss_kb: proc_status_kb(pid, "VmRSS").unwrap_or(0),
                });
                thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling; the samples, oldest first.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The file's growth rate in bytes per second over `[from, to]`: the least-squares slope of its
/// sampled size (robust to the output's flush interval, unlike two samples).
pub fn file_growth(samples: &[Sample], from: u64, to: u64) -> f64 {
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at_ns >= from && s.at_ns <= to)
        .map(|s| ((s.at_ns - from) as f64 / 1e9, s.file_bytes as f64))
        .collect();
    if pts.len() < 2 {
        return 0.0;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// The longest time the file did not grow within `[from, to]`, in seconds.
pub fn longest_file_stall(samples: &[Sample], from: u64, to: u64) -> f64 {
    let mut longest = 0u64;
    let mut since: Option<Sample> = None;
    for s in samples.iter().filter(|s| s.at_ns >= from && s.at_ns <= to) {
        match since {
            Some(a) if s.file_bytes == a.file_bytes => longest = longest.max(s.at_ns - a.at_ns),
            _ => since = Some(*s),
        }
    }
    longest as f64 / 1e9
}

/// The sample closest to `at_ns`.
pub fn sample_at(samples: &[Sample], at_ns: u64) -> Option<Sample> {
    samples
        .iter()
        .copied()
        .min_by_key(|s| s.at_ns.abs_diff(at_ns))
}

/// Whether a TCP socket listens on `port` (of any process, or of none: a dead process's socket
/// the kernel has not released yet), from `/proc/net/tcp`.
pub fn listening(port: u16) -> bool {
    let Ok(text) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    text.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() > 3
            && cols[3] == "0A"
            && cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

/// Bytes in flight towards the sink on `port`: unread in the sink's established connections,
/// plus unsent in their peers' (hekate's), from `/proc/net/tcp`.
pub fn tcp_in_flight(port: u16) -> u64 {
    let Ok(text) = fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let port_of = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut total = 0;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[3] != "01" {
            continue; // not ESTABLISHED
        }
        let Some((tx, rx)) = cols[4].split_once(':') else {
            continue;
        };
        let (tx, rx) = (
            u64::from_str_radix(tx, 16).unwrap_or(0),
            u64::from_str_radix(rx, 16).unwrap_or(0),
        );
        if port_of(cols[1]) == Some(port) {
            total += rx;
        } else if port_of(cols[2]) == Some(port) {
            total += tx;
        }
    }
    total
}

/// The highest sequence number of each connection in the last `window` bytes of a Heka stream
/// file (the reader resynchronises at the first whole record).
pub fn tail_max_seqs(path: &Path, window: u64) -> io::Result<BTreeMap<u64, u64>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(window)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut splitter = HekaSplitter::new(DEFAULT_MAX_MESSAGE_SIZE).with_skip_authentication(true);
    let mut out = BTreeMap::new();
    let mut pos = 0;
    loop {
        let step = splitter.split(&bytes[pos..]);
        pos += step.consumed;
        match step.outcome {
            SplitOutcome::Record(r) => {
                if let Some(s) = heka_stamp(r.message) {
                    let m = out.entry(s.conn).or_insert(s.seq);
                    *m = (*m).max(s.seq);
                }
            }
            SplitOutcome::Rejected(_) => {}
            SplitOutcome::NeedData | SplitOutcome::End { .. } => break,
        }
    }
    Ok(out)
}

/// The integer fields of output `output` in each `heka.all-report` hekate wrote to `path`, in
/// order, with the report's timestamp (ns) as `Timestamp`.
pub fn output_reports(path: &Path, output: &str) -> Vec<BTreeMap<String, i64>> {
    let Ok(bytes) = fs::read(path) else {
        return Vec::new();
    };
    let mut splitter = HekaSplitter::new(DEFAULT_MAX_MESSAGE_SIZE).with_skip_authentication(true);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let step = splitter.finish(&bytes[pos..]);
        pos += step.consumed;
        let SplitOutcome::Record(r) = step.outcome else {
            if matches!(step.outcome, SplitOutcome::End { .. }) {
                break;
            }
            continue;
        };
        let Ok(view) = MessageView::new(r.message) else {
            continue;
        };
        if view.msg_type() != b"heka.all-report" {
            continue;
        }
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(view.payload()) else {
            continue;
        };
        let Some(entry) = json["outputs"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["Name"] == output))
        else {
            continue;
        };
        let mut fields = BTreeMap::new();
        fields.insert("Timestamp".to_owned(), view.timestamp());
        if let Some(map) = entry.as_object() {
            for (k, v) in map {
                if let Some(n) = v["value"].as_i64() {
                    fields.insert(k.clone(), n);
                }
            }
        }
        out.push(fields);
    }
    out
}

/// Waits until a report of the tortured output written after `after_ns` says its queue holds
/// at most `records`; the time it said so (ns), or `None` after `patience`.
pub fn await_queue_at_most(
    report_file: &Path,
    after_ns: u64,
    records: i64,
    patience: Duration,
    hk: &mut Running,
) -> Option<u64> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if hk.try_wait().is_some() {
            return None;
        }
        let reports = output_reports(report_file, QUEUE_OUTPUT);
        if let Some(r) = reports.iter().find(|r| {
            r.get("Timestamp").copied().unwrap_or(0) as u64 > after_ns
                && r.get("QueueRecords").is_some_and(|&q| q <= records)
        }) {
            return r.get("Timestamp").map(|&t| t as u64);
        }
        thread::sleep(Duration::from_millis(250));
    }
    None
}

/// Lines of `text` containing `needle`: how many, and the first.
pub fn log_lines(text: &str, needle: &str) -> (usize, Option<String>) {
    let mut lines = text.lines().filter(|l| l.contains(needle));
    let first = lines.next().map(str::to_owned);
    (first.iter().count() + lines.count(), first)
}

/// A small deterministic PRNG (xorshift64*), so a run can be repeated with its seed.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    /// Seeded; 0 is replaced by a constant.
    pub fn new(seed: u64) -> Self {
        Prng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_status_and_tcp_tables() {
        let me = std::process::id();
        assert!(proc_status_kb(me, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb(me, "NoSuchKey").is_none());
        // A connection with bytes the receiver has not read.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut client, &[7u8; 1000]).unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(tcp_in_flight(port), 1000);
        assert!(listening(port));
        drop(listener);
        assert!(!listening(port));
    }

    #[test]
    fn file_growth_is_a_slope_and_stalls_are_measured() {
        let s = |t: u64, bytes: u64| Sample {
            at_ns: t * 250_000_000,
            file_bytes: bytes,
            ..Sample::default()
        };
        // 1000 B/s written in 100 ms flushes, sampled every 250 ms; a stall from 2 s to 3 s.
        let samples: Vec<Sample> = (0..16)
            .map(|i| {
                let t = i as f64 * 0.25;
                let written = if t < 2.0 {
                    t
                } else if t < 3.0 {
                    2.0
                } else {
                    t - 1.0
                };
                s(i, ((written * 10.0).floor() * 100.0) as u64)
            })
            .collect();
        let rate = file_growth(&samples, 0, 1_750_000_000);
        assert!((rate - 1000.0).abs() < 60.0, "{rate}");
        let stall = longest_file_stall(&samples, 0, u64::MAX);
        assert!((stall - 1.0).abs() < 0.01, "{stall}");
    }

    #[test]
    fn log_lines_and_prng() {
        assert_eq!(log_lines("a x\nb\nc x\n", "x"), (2, Some("a x".to_owned())));
        assert_eq!(log_lines("", "x"), (0, None));
        let mut r = Prng::new(7);
        for _ in 0..1000 {
            let v = r.uniform(0.5, 3.0);
            assert!((0.5..3.0).contains(&v));
        }
    }
}

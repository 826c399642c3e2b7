//! `tail`: log files read by LogstreamerInput on one worker core (`bench/configs/tail.toml`):
//! lines of ~200 bytes → TokenSplitter, no decoder → FileOutput writing the payloads back, so
//! the output file is the input byte for byte once everything is through (checked by size and
//! by comparing the bytes).
//!
//! - one file of N lines, beside `cat FILE > /dev/null` on the same (cached) file: the ceiling;
//! - ten files of N/10 lines each, read at once (ten streams): the total rate vs one file's;
//! - 1,000 idle files watched for 10 s: hekate's CPU time, as a share of one core.
//!
//! Rates are taken between the moments the output holds 10% and 90% of the input ([`Progress`]),
//! the median of three runs; the whole run's rate is reported beside them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::hekate::{self, HekateRun};
use super::report::{Row, Section};
use super::{Bench, Workload, si};
use crate::load::{Format, LoadSpec, Ring};
use crate::sizes::SizeDist;

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "tail",
    about: "log files → LogstreamerInput → FileOutput on 1 core; 10 files at once; 1,000 idle",
    in_quick: false,
    run,
};

/// One line of the load, ~200 bytes with its newline.
fn line(n: u64) -> String {
    let head = format!(
        "2026-12-07T05:00:00.{:06}Z web-{:02} app[{}]: GET /api/v1/items/{n} status=200 bytes={} ",
        n % 1_000_000,
        n % 17,
        1000 + n % 50,
        n % 9000
    );
    let pad = 199usize.saturating_sub(head.len());
    format!("{head}{}\n", "x".repeat(pad))
}

/// Writes `files` files of `lines` lines each under `dir`; the total size.
fn write_files(dir: &Path, files: u64, lines: u64) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut total = 0;
    for f in 0..files {
        let path = dir.join(format!("lines-{f}.log"));
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for n in 0..lines {
            let l = line(f * lines + n);
            total += l.len() as u64;
            w.write_all(l.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        w.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(total)
}

/// `cat` over the files (after one warm-up pass) into `to` (`/dev/null`, or a file on the
/// output's file system): bytes per second.
fn cat_rate(b: &Bench, dir: &Path, to: &Path) -> Result<(f64, String), String> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    let cmd = format!(
        "taskset -c {} cat {} > {}",
        b.cores.sut,
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        to.display()
    );
    let run = || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .status()
            .map_err(|e| format!("cat: {e}"))
    };
    run()?;
    if to != Path::new("/dev/null") {
        let _ = std::fs::remove_file(to);
    }
    let started = Instant::now();
    run()?;
    let secs = started.elapsed().as_secs_f64();
    if to != Path::new("/dev/null") {
        let _ = std::fs::remove_file(to);
    }
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    Ok((bytes as f64 / secs, cmd))
}

struct Tailed {
    /// The rate while the files stream: from the moment the output holds 10% of the input to
    /// the moment it holds 90%.
    bytes_per_sec: f64,
    /// The rate over the whole run, from hekate's start to the last byte out (which FileOutput
    /// writes at its `flush_interval`, Heka's 1 s, once the rest is through).
    whole_bytes_per_sec: f64,
    commands: Vec<String>,
    /// The rate of every run, bytes per second, slowest first (this one is their median).
    runs: Vec<f64>,
}

/// When a run's output passed 10% and 90% of what it will hold: the rate between the two is
/// the pipeline's, without hekate's start and without the wait for the output's last flush
/// (up to FileOutput's `flush_interval`, 1 s, which on a run of a second or two measured
/// latency rather than throughput).
struct Progress {
    total: u64,
    low: Option<(Instant, u64)>,
    high: Option<(Instant, u64)>,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            low: None,
            high: None,
        }
    }

    /// The output holds `done` of `total` now.
    fn saw(&mut self, done: u64) {
        let now = Instant::now();
        if self.low.is_none() && done * 10 >= self.total {
            self.low = Some((now, done));
        }
        if self.high.is_none() && done * 10 >= self.total * 9 {
            self.high = Some((now, done));
        }
    }

    /// Units of output per second between the two marks.
    fn rate(&self) -> Option<f64> {
        let ((t0, d0), (t1, d1)) = (self.low?, self.high?);
        let secs = t1.duration_since(t0).as_secs_f64();
        (secs > 0.0 && d1 > d0).then(|| (d1 - d0) as f64 / secs)
    }
}

/// hekate reading every file of `dir` until the output holds `total` bytes.
fn tail_rate(b: &Bench, name: &str, dir: &Path, total: u64) -> Result<Tailed, String> {
    median_of_runs(b, name, |name| tail_run(b, name, dir, total))
}

/// Runs `run` [`RUNS`] times (each with its own scratch directory, so that no journal or
/// output of one is seen by the next) and keeps the run of the median rate: one run of a second
/// or two moves by ±20% on these machines (page-cache writeback, a busy neighbour).
fn median_of_runs(
    b: &Bench,
    name: &str,
    mut run: impl FnMut(&str) -> Result<Tailed, String>,
) -> Result<Tailed, String> {
    let runs = b.pick(1, RUNS);
    let mut done = Vec::new();
    for k in 1..=runs {
        let this = format!("{name}-{k}");
        let result = run(&this);
        // Each run leaves an output as large as its input: gone before the next starts.
        let _ = std::fs::remove_dir_all(b.scratch(&this));
        done.push(result?);
    }
    done.sort_by(|x, y| x.bytes_per_sec.total_cmp(&y.bytes_per_sec));
    let rates: Vec<f64> = done.iter().map(|t| t.bytes_per_sec).collect();
    let mut median = done.swap_remove(runs / 2);
    median.runs = rates;
    Ok(median)
}

/// Rates in bytes per second as GB/s, listed.
fn gbps(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| format!("{:.2}", r / 1e9))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs of each rate; the median is reported.
const RUNS: usize = 3;

fn tail_run(b: &Bench, name: &str, dir: &Path, total: u64) -> Result<Tailed, String> {
    let scratch = b.scratch(name);
    let out = scratch.join("out.log");
    let port = b.free_port();
    let run = HekateRun::new("tail", &b.cores.sut, port, &scratch.join("base"))
        .var("BENCH_LOG_DIR", dir.display().to_string())
        .var("BENCH_OUTPUT_FILE", out.display().to_string())
        .var("BENCH_RESCAN_INTERVAL", "1s".to_string());
    run.check(b)?;
    // The runs before this one left up to 2 GB of dirty pages (their outputs): written back now,
    // so that this run's writes are not throttled for them (the ten-file run came after the
    // one-file run and measured its writeback).
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let started = Instant::now();
    let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
    let timeout = Duration::from_secs(b.pick(60, 300));
    let mut progress = Progress::new(total);
    let done = loop {
        let size = std::fs::metadata(&out).map_or(0, |m| m.len());
        progress.saw(size);
        if size >= total {
            break Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            break Err(format!(
                "only {size} of {total} bytes out after {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stopped = hekate::stop(&mut hk, Duration::from_secs(15));
    let elapsed = done.map_err(|e| hekate::explain(e, &hk))?;
    stopped?;
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    if size != total {
        return Err(format!("the output has {size} bytes, the input {total}"));
    }
    let whole = total as f64 / elapsed.as_secs_f64();
    Ok(Tailed {
        bytes_per_sec: progress.rate().unwrap_or(whole),
        whole_bytes_per_sec: whole,
        commands: vec![hk.command.clone()],
        runs: Vec::new(),
    })
}

/// `lines` lines of hekate-flood's `format` (its generator's records, numbered) into
/// `dir/lines-0.log`; the total size.
fn write_generated(dir: &Path, format: Format, lines: u64) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let spec = LoadSpec {
        format,
        sizes: SizeDist::Fixed(250),
        ..LoadSpec::default()
    };
    let mut ring = Ring::build(&spec, 0, 1 << 20).map_err(|e| e.to_string())?;
    let path = dir.join("lines-0.log");
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut total = 0;
    for n in 0..lines {
        let i = (n % ring.len() as u64) as usize;
        ring.stamp(i, n, 0);
        let record = ring.record(i);
        total += record.len() as u64;
        w.write_all(record)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(total)
}

/// Newlines in `path` from `*at` on, counted as the file grows (`*at` moves on).
fn count_lines(path: &Path, at: &mut u64, count: &mut u64) {
    use std::io::{Read as _, Seek as _};
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    if f.seek(std::io::SeekFrom::Start(*at)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        *count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        *at += n as u64;
    }
}

/// One run of hekate reading the one file of `dir` through `decoder` until the output has a
/// line for each of its `lines` lines: bytes of log per second.
fn decoded_run(
    b: &Bench,
    name: &str,
    dir: &Path,
    lines: u64,
    bytes: u64,
    decoder: &str,
) -> Result<Tailed, String> {
    let scratch = b.scratch(name);
    super::sandbox::share_scripts(b, &scratch.join("base"))?;
    let out = scratch.join("out.log");
    let port = b.free_port();
    let run = HekateRun::new("tail-decoded", &b.cores.sut, port, &scratch.join("base"))
        .var("BENCH_LOG_DIR", dir.display().to_string())
        .var("BENCH_OUTPUT_FILE", out.display().to_string())
        .var("BENCH_RESCAN_INTERVAL", "1s".to_string())
        .var("BENCH_DECODER", decoder.to_string());
    run.check(b)?;
    // SAFETY: sync has no preconditions (see tail_rate).
    unsafe { libc::sync() };
    let started = Instant::now();
    let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
    let timeout = Duration::from_secs(b.pick(60, 300));
    let (mut at, mut count) = (0, 0);
    let mut progress = Progress::new(lines);
    let done = loop {
        count_lines(&out, &mut at, &mut count);
        progress.saw(count);
        if count >= lines {
            break Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            break Err(format!(
                "only {count} of {lines} messages out after {} s (decode failures?)",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stopped = hekate::stop(&mut hk, Duration::from_secs(15));
    let elapsed = done.map_err(|e| hekate::explain(e, &hk))?;
    stopped?;
    count_lines(&out, &mut at, &mut count);
    if count != lines {
        return Err(format!("the output has {count} lines, the input {lines}"));
    }
    let bytes_per_line = bytes as f64 / lines as f64;
    let whole = bytes as f64 / elapsed.as_secs_f64();
    Ok(Tailed {
        bytes_per_sec: progress.rate().map_or(whole, |l| l * bytes_per_line),
        whole_bytes_per_sec: whole,
        commands: vec![hk.command.clone()],
        runs: Vec::new(),
    })
}

/// hekate watching `files` idle files for `secs`: its CPU time over that time.
fn idle_cpu(b: &Bench, files: u64, secs: u64, rescan: &str) -> Result<(f64, Vec<String>), String> {
    let scratch = b.scratch(&format!("tail-idle-{rescan}"));
    let dir = scratch.join("logs");
    write_files(&dir, files, 1)?;
    let out = scratch.join("out.log");
    let port = b.free_port();
    let run = HekateRun::new("tail", &b.cores.sut, port, &scratch.join("base"))
        .var("BENCH_LOG_DIR", dir.display().to_string())
        .var("BENCH_OUTPUT_FILE", out.display().to_string())
        .var("BENCH_RESCAN_INTERVAL", rescan.to_string());
    let mut hk = run.start(b, "tail-idle-hekate", port)?;
    // Let it read the one line of each file, then measure.
    std::thread::sleep(Duration::from_secs(3));
    let ticks = |pid: u32| -> Result<u64, String> {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let f: Vec<&str> = after.split_whitespace().collect();
        let u: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let s: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(u + s)
    };
    let pid = hk.pid();
    let t0 = ticks(pid)?;
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = ticks(pid)?;
    let command = hk.command.clone();
    hekate::stop(&mut hk, Duration::from_secs(15))?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(((t1 - t0) as f64 / hz / secs as f64, vec![command]))
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "tail",
        "tail: log files → LogstreamerInput on one core",
        "hekate with one worker core reads files of ~200-byte lines through LogstreamerInput \
         (TokenSplitter, no decoder: each line becomes a message with Type `logfile`) into a \
         FileOutput that writes the payloads back (`bench/configs/tail.toml`); the run ends when \
         the output holds as many bytes as the input (and they are compared by size). GB/s and \
         lines/s are the rate while the files stream: from the moment the output holds 10% of \
         the input to the moment it holds 90%, the median of three runs (each run's rate is in \
         the detail column). The whole run's rate, in the detail column too, also \
         holds hekate's start and the wait for FileOutput's last write, which comes at its \
         `flush_interval` (1 s, Heka's default) once everything else is through. The ceiling \
         is `cat` over the same files, cached, pinned to \
         the same core. Target (issue): ≥ 1 GB/s per core with no decoder; ten files at once \
         within 10% of one file; 1,000 idle files under 1% of a core.",
        &["GB/s", "lines/s", "vs cat", "detail"],
    );
    if let Some(why) = b.hekate.unavailable() {
        s.rows.push(Row::not_run("hekate", why.to_owned()));
        return s;
    }
    let lines: u64 = b.pick(500_000, 5_000_000);
    let one = b.scratch("tail-one").join("logs");
    let ten = b.scratch("tail-ten").join("logs");
    let prepared = write_files(&one, 1, lines)
        .and_then(|t1| write_files(&ten, 10, lines / 10).map(|t10| (t1, t10)));
    let (total_one, total_ten) = match prepared {
        Ok(t) => t,
        Err(e) => {
            s.rows.push(Row::failed("preparing the files", e));
            return s;
        }
    };
    let line_len = total_one as f64 / lines as f64;
    let cat = cat_rate(b, &one, Path::new("/dev/null"));
    let cat_bps = cat.as_ref().map(|(r, _)| *r).ok();
    match &cat {
        Ok((rate, cmd)) => {
            let mut r = Row::ok(
                "cat FILE > /dev/null (ceiling, same run)",
                vec![
                    format!("{:.2}", rate / 1e9),
                    si(rate / line_len),
                    "1.00×".into(),
                    format!("{} MB", total_one / 1_000_000),
                ],
            )
            .cores(b.cores.sut.clone())
            .commands(vec![cmd.clone()]);
            r.reference = true;
            s.rows.push(r);
        }
        Err(e) => s.rows.push(Row::failed("cat (ceiling)", e.clone())),
    }
    // hekate also writes every byte back (its FileOutput): the same copy by cat, into a file
    // beside hekate's output, is the ceiling of the whole path on this machine's page cache.
    let copy_to = b.scratch("tail-copy").join("copy.log");
    match cat_rate(b, &one, &copy_to) {
        Ok((rate, cmd)) => {
            let mut r = Row::ok(
                "cat FILE > OUT (read and write, the path's ceiling)",
                vec![
                    format!("{:.2}", rate / 1e9),
                    si(rate / line_len),
                    cat_bps.map_or("—".into(), |c| format!("{:.2}×", rate / c)),
                    format!("{} MB", total_one / 1_000_000),
                ],
            )
            .cores(b.cores.sut.clone())
            .commands(vec![cmd]);
            r.reference = true;
            s.rows.push(r);
        }
        Err(e) => s.rows.push(Row::failed("cat FILE > OUT", e)),
    }
    let vs = |rate: f64| cat_bps.map_or("—".into(), |c| format!("{:.2}×", rate / c));
    let one_rate = match tail_rate(b, "tail-one", &one, total_one) {
        Ok(t) => {
            s.rows.push(
                Row::ok(
                    "hekate, 1 file, no decoder",
                    vec![
                        format!("{:.2}", t.bytes_per_sec / 1e9),
                        si(t.bytes_per_sec / line_len),
                        vs(t.bytes_per_sec),
                        format!(
                            "{lines} lines; runs {} GB/s; whole run {:.2} GB/s",
                            gbps(&t.runs),
                            t.whole_bytes_per_sec / 1e9
                        ),
                    ],
                )
                .cores(b.cores.sut.clone())
                .commands(t.commands),
            );
            Some(t.bytes_per_sec)
        }
        Err(e) => {
            s.rows.push(Row::failed("hekate, 1 file, no decoder", e));
            None
        }
    };
    match tail_rate(b, "tail-ten", &ten, total_ten) {
        Ok(t) => s.rows.push(
            Row::ok(
                "hekate, 10 files at once, no decoder",
                vec![
                    format!("{:.2}", t.bytes_per_sec / 1e9),
                    si(t.bytes_per_sec / line_len),
                    vs(t.bytes_per_sec),
                    one_rate.map_or("—".into(), |o| {
                        format!(
                            "{:.2}× one file's rate; runs {} GB/s; whole run {:.2} GB/s",
                            t.bytes_per_sec / o,
                            gbps(&t.runs),
                            t.whole_bytes_per_sec / 1e9
                        )
                    }),
                ],
            )
            .cores(b.cores.sut.clone())
            .commands(t.commands),
        ),
        Err(e) => s.rows.push(Row::failed("hekate, 10 files at once", e)),
    }
    // With a decoder: the same lines through SyslogDecoder (they are rsyslog's high-precision
    // format without PRI), hekate-flood's JSON lines through JsonDecoder, its nginx access
    // lines through the LPeg decoder of the sandbox workload.
    let decoded_lines = b.pick(200_000, 1_000_000);
    let json_dir = b.scratch("tail-json").join("logs");
    let nginx_dir = b.scratch("tail-nginx").join("logs");
    let syslog_dir = b.scratch("tail-syslog").join("logs");
    let inputs = [
        ("SyslogDecoder", "syslog", &syslog_dir, None),
        ("JsonDecoder", "json", &json_dir, Some(Format::Json)),
        (
            "LPeg nginx decoder (SandboxDecoder)",
            "nginx",
            &nginx_dir,
            Some(Format::Nginx),
        ),
    ];
    for (what, decoder, dir, format) in inputs {
        let label = format!("hekate, 1 file, {what}");
        let written = match format {
            Some(f) => write_generated(dir, f, decoded_lines),
            None => write_files(dir, 1, decoded_lines),
        };
        let bytes = match written {
            Ok(n) => n,
            Err(e) => {
                s.rows.push(Row::failed(&label, e));
                continue;
            }
        };
        let rate = median_of_runs(b, &format!("tail-{decoder}"), |name| {
            decoded_run(b, name, dir, decoded_lines, bytes, decoder)
        });
        match rate {
            Ok(t) => {
                let lines_per_sec = t.bytes_per_sec * decoded_lines as f64 / bytes as f64;
                s.rows.push(
                    Row::ok(
                        &label,
                        vec![
                            format!("{:.2}", t.bytes_per_sec / 1e9),
                            si(lines_per_sec),
                            vs(t.bytes_per_sec),
                            format!(
                                "{decoded_lines} lines of {:.0} B; runs {} lines/s; whole run {:.2} GB/s{}",
                                bytes as f64 / decoded_lines as f64,
                                t.runs
                                    .iter()
                                    .map(|r| si(r * decoded_lines as f64 / bytes as f64))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                t.whole_bytes_per_sec / 1e9,
                                if decoder == "nginx" {
                                    format!(
                                        "; {:.1}× Hindsight's 99 k lines/s",
                                        lines_per_sec / 99_000.0
                                    )
                                } else {
                                    String::new()
                                }
                            ),
                        ],
                    )
                    .cores(b.cores.sut.clone())
                    .commands(t.commands),
                );
            }
            Err(e) => s.rows.push(Row::failed(&label, e)),
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    let idle_secs = b.pick(5, 20);
    for (rescan, label) in [
        (
            "1m",
            "hekate, 1,000 idle files watched (rescan_interval 1m, the default)",
        ),
        (
            "1s",
            "hekate, 1,000 idle files watched (rescan_interval 1s)",
        ),
    ] {
        match idle_cpu(b, 1000, idle_secs, rescan) {
            Ok((share, commands)) => s.rows.push(
                Row::ok(
                    label,
                    vec![
                        "—".into(),
                        "—".into(),
                        "—".into(),
                        format!("{:.2}% of a core over {idle_secs} s", share * 100.0),
                    ],
                )
                .cores(b.cores.sut.clone())
                .commands(commands),
            ),
            Err(e) => s.rows.push(Row::failed(label, e)),
        }
    }
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]`; lines are {line_len:.0} bytes on average. \
         GB/s is 10⁹ bytes of log per second.",
        b.cores.sut
    ));
    s
}

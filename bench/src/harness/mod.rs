//! The benchmark harness behind `scripts/bench`: runs the workloads of `BENCHMARKS.md` and
//! writes `bench/RESULTS.md`, `bench/results/<workload>.json` and the plots.
//!
//! Each workload is one module with one function, `run(&mut Bench) -> Section`, listed once in
//! [`WORKLOADS`]; adding a workload (json, sandbox, …) is a new module and one line there. A
//! workload starts its processes through [`Bench`] (pinned to the cores of the [`Cores`] plan,
//! logs in the run directory), drives them with `hekate-flood` and checks them with
//! `hekate-sink` ([`drive`]), and returns rows: ok with figures, failed with the reason (a run
//! that lost or duplicated messages never shows a throughput), or not run with the reason (e.g.
//! `hekate run` not built yet).
//!
//! `torture` ([`torture`], run by `scripts/torture`) is the exception that runs only when named
//! ([`BY_NAME_ONLY`]): it checks durable delivery (kill -9, upstream outage, full disk, corrupt
//! queue) rather than speed, takes about ten minutes, and mounts a tmpfs.
//!
//! Figures are reported as ratios measured in the same run (to the iperf3 loopback baseline, to a
//! peer, 2 cores to 1) or as instruction counts, because the host is shared and noisy.

pub mod drive;
pub mod hekate;
pub mod machine;
pub mod plot;
pub mod proc;
pub mod report;

mod baseline;
mod cost;
mod http;
mod json;
mod micro;
mod peers;
mod route;
mod sandbox;
mod scale;
mod statsd;
mod syslog;
mod tail;
pub mod torture;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use machine::Machine;
use proc::Launch;
use report::{Section, Status, merge_block};

pub use baseline::Baseline;
pub use torture::TortureOptions;

/// Parses `5s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (e.g. 5s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("bad duration unit in `{s}` (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// One workload of the harness.
#[derive(Debug)]
pub struct Workload {
    /// Id: the CLI name, the RESULTS.md block and the JSON file name.
    pub id: &'static str,
    /// What it measures, in a few words (for `--list`).
    pub about: &'static str,
    /// Whether `--quick` runs it when no workload is named.
    pub in_quick: bool,
    /// Runs it.
    pub run: fn(&mut Bench) -> Section,
}

/// Every workload, in the order they run and appear in RESULTS.md.
pub const WORKLOADS: &[Workload] = &[
    baseline::WORKLOAD,
    route::WORKLOAD,
    scale::WORKLOAD,
    cost::WORKLOAD,
    syslog::WORKLOAD,
    json::WORKLOAD,
    http::WORKLOAD,
    statsd::WORKLOAD,
    sandbox::WORKLOAD,
    tail::WORKLOAD,
    micro::WORKLOAD,
    torture::WORKLOAD,
];

/// Workloads that run only when named (`scripts/torture`): long, and one needs root.
pub const BY_NAME_ONLY: &[&str] = &["torture"];

/// The order of the blocks in RESULTS.md (workloads still to come included, so that their
/// blocks land in the right place).
pub const BLOCK_ORDER: &[&str] = &[
    "machine", "baseline", "route", "scale", "cost", "syslog", "statsd", "json", "http", "sandbox",
    "tail", "latency", "micro", "torture",
];

/// Where everything is and how to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Workloads to run; empty = all (or all quick ones with `quick`).
    pub workloads: Vec<String>,
    /// Smaller counts and shorter runs (the whole run under 2 minutes).
    pub quick: bool,
    /// The workspace root.
    pub repo: PathBuf,
    /// Where `hekate-flood` and `hekate-sink` are.
    pub bin_dir: PathBuf,
    /// The `hekate` binary to measure.
    pub hekate: PathBuf,
    /// Where `scripts/peers` installed the peers that are not Debian packages.
    pub peers_dir: PathBuf,
    /// Cargo's target directory (criterion writes its estimates there).
    pub target_dir: PathBuf,
    /// Log and scratch directory of this run.
    pub run_dir: PathBuf,
    /// How the harness was invoked, for the page.
    pub command: String,
    /// When set, hekate is not measured, for this reason.
    pub hekate_unavailable: Option<String>,
    /// Settings of the `torture` workload.
    pub torture: TortureOptions,
}

impl Options {
    /// `bench/RESULTS.md`.
    pub fn results_md(&self) -> PathBuf {
        self.repo.join("bench/RESULTS.md")
    }

    /// `bench/results`.
    pub fn results_dir(&self) -> PathBuf {
        self.repo.join("bench/results")
    }
}

/// Which cores each process gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cores {
    /// The load generator.
    pub generator: String,
    /// The checking sink when a system under test runs too.
    pub sink: String,
    /// A one-core system under test (hekate's worker, a peer, iperf3's server, or the sink
    /// itself when it is what is measured).
    pub sut: String,
    /// A two-core system under test (`scale`).
    pub sut_two: String,
}

impl Cores {
    /// The plan for a machine with `cpus` CPUs: the generator on core 0; the system under test
    /// on its own core(s); on a 2-core host the sink shares core 0 with the generator.
    pub fn plan(cpus: usize) -> Cores {
        let c = |v: &[usize]| {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match cpus {
            0 | 1 => Cores {
                generator: "0".into(),
                sink: "0".into(),
                sut: "0".into(),
                sut_two: "0".into(),
            },
            2 | 3 => Cores {
                generator: "0".into(),
                sink: "0".into(),
                sut: "1".into(),
                sut_two: c(&[0, 1]),
            },
            _ => Cores {
                generator: "0".into(),
                sink: "1".into(),
                sut: "2".into(),
                sut_two: c(&[2, 3]),
            },
        }
    }

    /// `[1]` or `[2, 3]`: a core list in hekate's TOML.
    pub fn toml_list(cores: &str) -> String {
        format!("[{}]", cores.split(',').collect::<Vec<_>>().join(", "))
    }
}

/// The state of one harness run, handed to every workload.
#[derive(Debug)]
pub struct Bench {
    /// Options.
    pub opts: Options,
    /// Machine facts.
    pub machine: Machine,
    /// Core plan.
    pub cores: Cores,
    /// Whether `hekate run` can be measured.
    pub hekate: hekate::Availability,
    /// The loopback baseline, once taken in this run.
    pub baseline: Option<Baseline>,
    started: Instant,
}

impl Bench {
    /// Prepares a run: probes the machine and the hekate binary, creates the run directory.
    pub fn new(opts: Options) -> Result<Bench, String> {
        fs::create_dir_all(&opts.run_dir)
            .map_err(|e| format!("cannot create {}: {e}", opts.run_dir.display()))?;
        let machine = Machine::probe(&opts.repo);
        let cores = Cores::plan(machine.cpus);
        let hekate = match &opts.hekate_unavailable {
            Some(why) => hekate::Availability::Unavailable(why.clone()),
            None => hekate::Availability::probe(&opts.hekate, &opts.run_dir),
        };
        Ok(Bench {
            opts,
            machine,
            cores,
            hekate,
            baseline: None,
            started: Instant::now(),
        })
    }

    /// Whether this is a quick run.
    pub fn quick(&self) -> bool {
        self.opts.quick
    }

    /// Picks `quick` or `full` by the run mode.
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.opts.quick { quick } else { full }
    }

    /// A process to start; bench binaries are shown by name and run from the build directory.
    pub fn launch(&self, name: &str, program: &str) -> Launch {
        let mut l = Launch::new(name, program);
        let local = self.opts.bin_dir.join(program);
        if !program.contains('/') && local.is_file() {
            l.exe = Some(local);
        }
        l
    }

    /// A scratch directory for one workload.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let d = self.opts.run_dir.join(name);
        let _ = fs::create_dir_all(&d);
        d
    }

    /// A loopback TCP port free right now.
    pub fn free_port(&self) -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// A path relative to the workspace root, for commands on the page.
    pub fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.opts.repo)
            .unwrap_or(p)
            .display()
            .to_string()
    }
}

/// Whether `program` can be found in `PATH` (or is a path to an executable).
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// The workloads selected by `opts`.
pub fn select(opts: &Options) -> Result<Vec<&'static Workload>, String> {
    if opts.workloads.is_empty() {
        return Ok(WORKLOADS
            .iter()
            .filter(|w| (!opts.quick || w.in_quick) && !BY_NAME_ONLY.contains(&w.id))
            .collect());
    }
    opts.workloads
        .iter()
        .map(|name| {
            WORKLOADS.iter().find(|w| w.id == name).ok_or_else(|| {
                let known: Vec<_> = WORKLOADS.iter().map(|w| w.id).collect();
                format!("unknown workload `{name}` (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// Runs the selected workloads and writes the results. Returns whether every row that ran
/// succeeded.
pub fn run(opts: Options) -> Result<bool, String> {
    let selected = select(&opts)?;
    let mut bench = Bench::new(opts)?;
    let results_dir = bench.opts.results_dir();
    fs::create_dir_all(&results_dir)
        .map_err(|e| format!("cannot create {}: {e}", results_dir.display()))?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    eprintln!(
        "hekate-bench: {} on {} ({}); logs in {}",
        selected.iter().map(|w| w.id).collect::<Vec<_>>().join(", "),
        bench.machine.summary(),
        match &bench.hekate {
            hekate::Availability::Ready(_) => "hekate run available".to_owned(),
            hekate::Availability::Unavailable(why) => format!("hekate: {why}"),
        },
        bench.opts.run_dir.display()
    );
    // A run of by-name-only workloads (torture) rewrites its own blocks only: each carries the
    // machine and commit it ran on, and it draws no latency.
    let only_by_name = selected.iter().all(|w| BY_NAME_ONLY.contains(&w.id));
    if !only_by_name {
        update_results_md(&bench.opts, "machine", &bench.machine.render(&date))?;
    }
    let mut all_ok = true;
    for w in selected {
        eprintln!("hekate-bench: {} …", w.id);
        let t0 = Instant::now();
        let mut section = (w.run)(&mut bench);
        section.run = report::RunInfo {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit: bench.machine.commit.clone(),
            machine: bench.machine.summary(),
            command: if w.id == "torture" {
                format!(
                    "scripts/torture{}{}",
                    if bench.quick() { " --quick" } else { "" },
                    bench.opts.torture.flags()
                )
            } else {
                format!(
                    "scripts/bench {}{}",
                    w.id,
                    if bench.quick() { " --quick" } else { "" }
                )
            },
            quick: bench.quick(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        let plots = plot::draw_section(&bench, &mut section);
        section.plots = plots;
        for row in &section.rows {
            let status = match &row.status {
                Status::Ok => format!("ok  {}", row.cells.join("  ")),
                Status::Failed(why) => format!("FAILED: {why}"),
                Status::NotRun(why) => format!("not run: {why}"),
            };
            eprintln!("  {:<48} {status}", row.label);
        }
        all_ok &= !section.failed();
        let json = serde_json::json!({
            "section": &section,
            "machine": &bench.machine,
            "cores": {
                "generator": bench.cores.generator,
                "sink": bench.cores.sink,
                "sut": bench.cores.sut,
                "sut_two": bench.cores.sut_two,
            },
        });
        let path = results_dir.join(format!("{}.json", w.id));
        fs::write(
            &path,
            serde_json::to_string_pretty(&json).expect("results serialise"),
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        update_results_md(&bench.opts, w.id, &section.render())?;
    }
    if !only_by_name {
        let latency = plot::latency_block(&bench);
        update_results_md(&bench.opts, "latency", &latency)?;
    }
    eprintln!(
        "hekate-bench: done in {:.0} s; see {}",
        bench.started.elapsed().as_secs_f64(),
        bench.rel(&bench.opts.results_md())
    );
    Ok(all_ok)
}

const RESULTS_HEADER: &str = "# hekate benchmark results\n\n\
Produced by `scripts/bench` (the full run, under 15 minutes; `--quick` under 2) from a fresh \
checkout: it installs what it needs (iperf3, gnuplot, valgrind and the peers through \
`scripts/peers`), builds in release and runs `hekate-bench`. `scripts/bench route` reruns one \
workload and rewrites only its block. The `torture` block (durable delivery under kill -9, \
an upstream outage, a full disk and a corrupt queue) comes from `scripts/torture` (~10 minutes, \
root for its tmpfs; `--quick` under 2). What each workload is: `BENCHMARKS.md`; how the harness \
works: `bench/src/harness/mod.rs`.\n\n\
The blocks between `<!-- bench:… -->` markers are generated; anything outside them (for example \
micro-bench notes under their own `##` heading at the end) is kept as it is.\n";

/// Rewrites one block of RESULTS.md, creating the file if needed.
fn update_results_md(opts: &Options, id: &str, block: &str) -> Result<(), String> {
    let path = opts.results_md();
    let doc = fs::read_to_string(&path).unwrap_or_else(|_| RESULTS_HEADER.to_owned());
    let doc = merge_block(&doc, id, block, BLOCK_ORDER);
    fs::write(&path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Formats a rate with a unit prefix: `1.23 M`, `456 k`.
pub fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Formats an integer with thousands separators.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats latency percentiles in µs: `p50 / p99 / p99.9`.
pub fn latency_cell(l: Option<&crate::check::LatencySummary>) -> String {
    let f = |us: f64| {
        if us >= 10_000.0 {
            format!("{:.0} ms", us / 1000.0)
        } else if us >= 1000.0 {
            format!("{:.1} ms", us / 1000.0)
        } else {
            format!("{us:.0} µs")
        }
    };
    l.map_or("—".into(), |l| {
        format!("{} / {} / {}", f(l.p50_us), f(l.p99_us), f(l.p999_us))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5h").is_err());
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(si(2_345_678.0), "2.35 M");
        assert_eq!(si(456_789.0), "457 k");
    }

    #[test]
    fn core_plans() {
        let two = Cores::plan(2);
        assert_eq!(
            (two.generator.as_str(), two.sink.as_str(), two.sut.as_str()),
            ("0", "0", "1")
        );
        assert_eq!(Cores::toml_list(&two.sut_two), "[0, 1]");
        let eight = Cores::plan(8);
        assert_eq!(
            (
                eight.sink.as_str(),
                eight.sut.as_str(),
                eight.sut_two.as_str()
            ),
            ("1", "2", "2,3")
        );
    }

    #[test]
    fn every_workload_has_a_block_slot() {
        for w in WORKLOADS {
            assert!(BLOCK_ORDER.contains(&w.id), "{}", w.id);
        }
    }
}

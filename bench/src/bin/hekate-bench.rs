//! `hekate-bench`: runs the benchmark workloads and writes `bench/RESULTS.md`,
//! `bench/results/*.json` and the plots. Normally started by `scripts/bench`, which installs the
//! tools and builds everything in release first.
//!
//! ```text
//! hekate-bench                 # every workload (the full run)
//! hekate-bench --quick         # smaller counts, the quick set (under 2 minutes)
//! hekate-bench route cost      # just these; their blocks of RESULTS.md are rewritten
//! hekate-bench --list
//! hekate-bench torture --torture-cycles 20 --torture-outage 30s   # scripts/torture
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hekate_bench::harness::{self, Options, TortureOptions, WORKLOADS};

/// Run hekate's benchmark workloads and write bench/RESULTS.md.
#[derive(Parser, Debug)]
#[command(name = "hekate-bench", version)]
struct Args {
    /// Workloads to run (default: all; with --quick, the quick set).
    workloads: Vec<String>,
    /// Smaller counts and shorter runs.
    #[arg(long)]
    quick: bool,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
    /// The workspace root (default: the current directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The hekate binary (default: $HEKATE_BIN, or next to this one).
    #[arg(long)]
    hekate: Option<PathBuf>,
    /// Where scripts/peers installed rsyslog and etsy statsd (default: $HEKATE_PEERS_DIR, or
    /// ~/.cache/hekate-peers).
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// Cargo's target directory (default: $CARGO_TARGET_DIR, or two levels above this binary).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Directory for logs and scratch files (default: a new one under the temp directory).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Report the hekate rows as not run, for this reason (scripts/bench: hekate did not build).
    #[arg(long, value_name = "REASON")]
    hekate_unavailable: Option<String>,
    /// torture: kill -9 cycles (default 100; --quick 10).
    #[arg(long, value_name = "N")]
    torture_cycles: Option<u32>,
    /// torture: how long the upstream stays down (default 60s; --quick 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    torture_outage: Option<std::time::Duration>,
    /// torture: flood rate of the kill, disk-full and corrupt scenarios, msg/s (default 20000).
    #[arg(long, value_name = "MSG_PER_S")]
    torture_rate: Option<f64>,
    /// torture: flood rate of the outage scenario, msg/s (default 50000).
    #[arg(long, value_name = "MSG_PER_S")]
    torture_outage_rate: Option<f64>,
    /// torture: seed of the kill timings (default: from the clock; the results say which).
    #[arg(long, value_name = "SEED")]
    torture_seed: Option<u64>,
    /// torture: size of the tmpfs the disk-full scenario mounts (default 16m).
    #[arg(long, value_name = "SIZE")]
    torture_tmpfs_size: Option<String>,
    /// torture: scenarios to run, comma-separated: kill, outage, disk-full, corrupt (default all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    torture_scenarios: Vec<String>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    harness::parse_duration(s)
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let env_path = |k: &str| std::env::var_os(k).map(PathBuf::from);
    args.hekate = args.hekate.or_else(|| env_path("HEKATE_BIN"));
    args.peers_dir = args.peers_dir.or_else(|| env_path("HEKATE_PEERS_DIR"));
    args.target_dir = args.target_dir.or_else(|| env_path("CARGO_TARGET_DIR"));
    if args.list {
        for w in WORKLOADS {
            let note = if harness::BY_NAME_ONLY.contains(&w.id) {
                " (only when named)"
            } else if w.in_quick {
                ""
            } else {
                " (not in --quick)"
            };
            println!("{:<10} {}{note}", w.id, w.about);
        }
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let repo = args
        .repo
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    if !repo.join("bench/configs").is_dir() {
        eprintln!(
            "hekate-bench: {} is not the hekate workspace (no bench/configs); give --repo",
            repo.display()
        );
        return ExitCode::from(2);
    }
    let hekate = args.hekate.unwrap_or_else(|| bin_dir.join("hekate"));
    // The processes of a run find the bench binaries and hekate by name (also under valgrind).
    let mut path = vec![bin_dir.clone()];
    path.extend(hekate.parent().map(PathBuf::from));
    path.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    if let Ok(joined) = std::env::join_paths(path) {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("PATH", joined) };
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let opts = Options {
        quick: args.quick,
        workloads: args.workloads,
        repo: repo.canonicalize().unwrap_or(repo),
        target_dir: args
            .target_dir
            .unwrap_or_else(|| bin_dir.parent().map(PathBuf::from).unwrap_or_default()),
        bin_dir,
        hekate,
        peers_dir: args
            .peers_dir
            .unwrap_or_else(|| home.join(".cache/hekate-peers")),
        run_dir: args
            .run_dir
            .unwrap_or_else(|| std::env::temp_dir().join(format!("hekate-bench-{stamp}"))),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        hekate_unavailable: args.hekate_unavailable,
        torture: TortureOptions {
            cycles: args.torture_cycles,
            outage: args.torture_outage,
            rate: args.torture_rate,
            outage_rate: args.torture_outage_rate,
            seed: args.torture_seed,
            tmpfs_size: args.torture_tmpfs_size,
            scenarios: args.torture_scenarios,
            short: false,
        },
    };
    match harness::run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("hekate-bench: some runs FAILED (see the results)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hekate-bench: {e}");
            ExitCode::from(2)
        }
    }
}

//! The torture workload end to end, in its shortest form (3 kill -9 cycles, a 3 s outage, a
//! 4 MiB disk, a corrupted segment, at 5k–10k msg/s), against the hekate binary of this build:
//! the harness starts every process, reads hekate's files, and reaches a verdict with figures.
//!
//! Needs `target/<profile>/hekate`, which `cargo test --workspace` builds; skipped (with a line
//! saying so) when it is not there. The disk-full scenario mounts a tmpfs: without root it is
//! reported as not run, which is fine here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hekate_bench::harness::report::Status;
use hekate_bench::harness::{Bench, Options, TortureOptions, torture};

#[test]
fn the_torture_harness_runs_every_scenario_to_a_verdict() {
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_hekate-sink"))
        .parent()
        .unwrap()
        .to_owned();
    let hekate = bin_dir.join("hekate");
    if !hekate.is_file() {
        eprintln!(
            "skipped: {} is not built (`cargo test --workspace` builds it)",
            hekate.display()
        );
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let run_dir = std::env::temp_dir().join(format!("hekate-torture-test-{}", std::process::id()));
    let opts = Options {
        workloads: vec!["torture".into()],
        quick: true,
        repo,
        target_dir: bin_dir.parent().unwrap().to_owned(),
        bin_dir,
        hekate,
        peers_dir: run_dir.join("peers"),
        run_dir: run_dir.clone(),
        command: "cargo test -p hekate-bench --test torture".into(),
        hekate_unavailable: None,
        torture: TortureOptions {
            cycles: Some(3),
            outage: Some(Duration::from_secs(3)),
            rate: Some(5_000.0),
            outage_rate: Some(10_000.0),
            seed: Some(1),
            tmpfs_size: Some("4m".into()),
            scenarios: Vec::new(),
            short: true,
        },
    };
    let started = Instant::now();
    let mut bench = Bench::new(opts).unwrap();
    let section = (torture::WORKLOAD.run)(&mut bench);
    eprintln!("torture ran in {:.0} s", started.elapsed().as_secs_f64());
    for note in &section.notes {
        eprintln!("  {note}");
    }

    let labels: Vec<&str> = section.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "kill -9 cycles",
            "upstream down 3 s",
            "queue disk full",
            "corrupt queue segment"
        ]
    );
    for row in &section.rows {
        // Without root there is no tmpfs: the disk-full scenario is not run.
        let not_run = matches!(row.status, Status::NotRun(_));
        assert!(
            row.status.is_ok() || not_run,
            "{}: {:?}\n{}",
            row.label,
            row.status,
            section.notes.join("\n")
        );
        if !matches!(row.status, Status::NotRun(_)) {
            assert!(
                section
                    .notes
                    .iter()
                    .any(|n| n.starts_with(&format!("**{}**", row.label))),
                "{}: no figures",
                row.label
            );
        }
    }
    let _ = std::fs::remove_dir_all(&run_dir);
}

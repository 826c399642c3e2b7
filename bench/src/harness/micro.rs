//! `micro`: the criterion micro-benches of the workspace (framing split, lazy view, matcher set in
//! `engine/benches/`; protobuf encode and the rtrb ring baseline in `bench/benches/`), run with
//! short measurement times and read back from criterion's `estimates.json`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use super::proc::shell_quote;
use super::report::{Row, Section};
use super::{Bench, Workload, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "micro",
    about: "criterion micro-benches (framing, view, matcher, encode, ring)",
    in_quick: false,
    run,
};

/// Packages whose benches run, in order.
const PACKAGES: &[&str] = &["hekate-engine", "hekate-bench"];

/// One criterion result.
#[derive(Debug)]
struct Estimate {
    id: String,
    mean_ns: f64,
    throughput: Option<(String, f64)>,
}

fn read_estimates(dir: &Path, since: SystemTime, out: &mut Vec<Estimate>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let est = path.join("estimates.json");
            let fresh = fs::metadata(&est)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if !fresh {
                continue;
            }
            let json = |p: &Path| {
                fs::read_to_string(p)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            };
            let (Some(est), Some(meta)) = (json(&est), json(&path.join("benchmark.json"))) else {
                continue;
            };
            let Some(mean_ns) = est["mean"]["point_estimate"].as_f64() else {
                continue;
            };
            let throughput = meta["throughput"].as_object().and_then(|t| {
                let (kind, n) = t.iter().next()?;
                Some((kind.clone(), n.as_f64()?))
            });
            out.push(Estimate {
                id: meta["full_id"].as_str().unwrap_or("?").to_owned(),
                mean_ns,
                throughput,
            });
        } else {
            read_estimates(&path, since, out);
        }
    }
}

fn time_cell(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn throughput_cell(t: &Option<(String, f64)>, mean_ns: f64) -> String {
    match t {
        Some((kind, n)) if kind.starts_with("Bytes") => {
            format!("{:.2} GB/s", n / mean_ns)
        }
        Some((_, n)) => format!("{}/s", si(n / mean_ns * 1e9)),
        None => "—".into(),
    }
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "micro",
        "micro-benches (criterion)",
        "The hot primitives on their own, each with criterion (1 s warm-up, 2 s measurement; the \
         full reports are in the target directory's `criterion/`). Framing split, lazy view and \
         matcher set: `engine/benches/`; protobuf encode of a realistic message and batches \
         through an rtrb ring (the baseline for the runtime's rings): `bench/benches/`.",
        &["time per iteration", "throughput", "bench target"],
    );
    let mut reported = std::collections::HashSet::new();
    for package in PACKAGES {
        let args = [
            "bench",
            "-p",
            package,
            "--bench",
            "*",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
            "--noplot",
        ];
        let command = format!(
            "CARGO_TARGET_DIR={} cargo {}",
            shell_quote(&b.opts.target_dir.display().to_string()),
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let since = SystemTime::now();
        let out = Command::new("cargo")
            .args(args)
            .current_dir(&b.opts.repo)
            .env("CARGO_TARGET_DIR", &b.opts.target_dir)
            .output();
        let log = b.opts.run_dir.join(format!("micro-{package}.log"));
        if let Ok(o) = &out {
            let mut text = o.stdout.clone();
            text.extend_from_slice(&o.stderr);
            let _ = fs::write(&log, text);
        }
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
                let why = last[last.len().saturating_sub(2)..].join(" | ");
                s.rows
                    .push(Row::failed(format!("{package} benches"), why).commands(vec![command]));
                continue;
            }
            Err(e) => {
                s.rows.push(Row::failed(
                    format!("{package} benches"),
                    format!("cargo: {e}"),
                ));
                continue;
            }
        }
        let mut found = Vec::new();
        read_estimates(&b.opts.target_dir.join("criterion"), since, &mut found);
        // A bench of an earlier package that finished just before `since` is not this one's.
        found.retain(|e| !reported.contains(&e.id));
        reported.extend(found.iter().map(|e| e.id.clone()));
        found.sort_by(|a, b| a.id.cmp(&b.id));
        if found.is_empty() {
            s.rows.push(Row::not_run(
                format!("{package} benches"),
                "no criterion estimates written",
            ));
        }
        for e in found {
            s.rows.push(
                Row::ok(
                    e.id.clone(),
                    vec![
                        time_cell(e.mean_ns),
                        throughput_cell(&e.throughput, e.mean_ns),
                        (*package).to_owned(),
                    ],
                )
                .commands(vec![command.clone()])
                .data(serde_json::json!({ "mean_ns": e.mean_ns, "throughput": e.throughput })),
            );
        }
    }
    s.notes.push(
        "Micro-bench figures move with the machine like everything else; compare them within \
         one run, or commit to commit on the same host."
            .into(),
    );
    s
}

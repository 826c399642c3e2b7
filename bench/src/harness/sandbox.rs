//! `sandbox`: the Lua sandbox on the message path, on one worker core
//! (`bench/configs/sandbox-*.toml`, scripts in `bench/configs/lua/`, copied into the run's
//! `share_dir`):
//!
//! - the trivial SandboxFilter of the target (read one header, bump a counter), fed Heka
//!   messages by `hekate-flood` over TCP; checked by the filter's `ProcessMessageCount` in the
//!   SIGUSR1 report, and compared with `route`'s null output run in the same run (ten matchers
//!   and no sandbox: the nearest path without one);
//! - a SandboxFilter counting every message into a circular buffer beside a FileOutput that
//!   encodes every message (a dashboard filter on a real pipeline), checked the same way;
//! - an LPeg SandboxDecoder parsing nginx access lines (`hekate-flood --format nginx`, the
//!   sequence number in the request path) into a FileOutput; checked by the output's count and
//!   the input's `DecodeFailureCount`;
//! - instructions per message of the trivial filter's run under callgrind, as `cost` does.

use std::path::Path;
use std::time::{Duration, Instant};

use super::cost::{read_callgrind_total, under_callgrind};
use super::drive::{FloodSpec, run_flood};
use super::hekate::{self, HekateRun, report_value};
use super::proc::Running;
use super::report::{Row, Section};
use super::{Bench, Workload, have, si, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "sandbox",
    about: "Lua SandboxFilter and LPeg SandboxDecoder on 1 core; Ir per message (callgrind)",
    in_quick: false,
    run,
};

/// Connections of the load.
const CONNECTIONS: u32 = 2;
/// Target of the filter, messages per second per core (BENCHMARKS.md).
const FILTER_TARGET: f64 = 2e6;
/// Target of the decoder, lines per second per core.
const DECODER_TARGET: f64 = 2e5;

/// Copies `bench/configs/lua/*.lua` into `<base_dir>/share/`.
pub(super) fn share_scripts(b: &Bench, base_dir: &Path) -> Result<(), String> {
    let share = base_dir.join("share");
    std::fs::create_dir_all(&share)
        .map_err(|e| format!("cannot create {}: {e}", share.display()))?;
    let src = b.opts.repo.join("bench/configs/lua");
    let entries =
        std::fs::read_dir(&src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "lua") {
            let to = share.join(entry.file_name());
            std::fs::copy(&path, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", path.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The run of one sandbox config with its output to /dev/null.
fn prepare(b: &Bench, config: &str, name: &str, port: u16) -> Result<HekateRun, String> {
    let dir = b.scratch(name);
    share_scripts(b, &dir)?;
    let run =
        HekateRun::new(config, &b.cores.sut, port, &dir).var("BENCH_OUTPUT_FILE", "/dev/null");
    run.check(b)?;
    Ok(run)
}

/// What a flat-out run measured.
struct Flat {
    msg_per_s: f64,
    sent: u64,
    /// The last SIGUSR1 report (hekate's stdout).
    report: String,
    commands: Vec<String>,
    data: serde_json::Value,
}

/// Floods a started hekate, then waits for plugin `counted` to count every message.
fn flood_and_count(
    b: &Bench,
    name: &str,
    hk: &mut Running,
    port: u16,
    spec: &FloodSpec,
    counted: &str,
    patience: Duration,
) -> Result<Flat, String> {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let flooded = run_flood(
        b,
        &format!("{name}-flood"),
        &b.cores.generator,
        spec,
        &format!("127.0.0.1:{port}"),
        timeout,
    );
    let (flood, flood_cmd) = match flooded {
        Ok(f) => f,
        Err(e) => {
            let _ = hekate::stop(hk, Duration::from_secs(15));
            return Err(hekate::explain(e, hk));
        }
    };
    let count = hekate::await_report_count(hk, counted, flood.sent, patience);
    let report = hk.stdout();
    let stopped = if hk.try_wait().is_some() {
        Ok(())
    } else {
        hekate::stop(hk, Duration::from_secs(30))
    };
    match count {
        Ok(n) if n == flood.sent => {}
        Ok(n) => {
            return Err(format!(
                "[{counted}] counted {} of {} messages",
                thousands(n),
                thousands(flood.sent)
            ));
        }
        Err(why) => return Err(hekate::explain(why, hk)),
    }
    stopped?;
    Ok(Flat {
        msg_per_s: flood.msg_per_s,
        sent: flood.sent,
        report,
        commands: vec![hk.command.clone(), flood_cmd],
        data: serde_json::to_value(&flood).unwrap_or_default(),
    })
}

fn flat_run(
    b: &Bench,
    config: &str,
    name: &str,
    spec: &FloodSpec,
    counted: &str,
) -> Result<Flat, String> {
    let port = b.free_port();
    let run = prepare(b, config, name, port)?;
    let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
    flood_and_count(
        b,
        name,
        &mut hk,
        port,
        spec,
        counted,
        Duration::from_secs(30),
    )
}

fn avg_ns(report: &str, plugin: &str) -> Option<u64> {
    report_value(report, plugin, "ProcessMessageAvgDuration")?
        .parse()
        .ok()
}

fn target_cell(rate: f64, target: f64) -> String {
    if rate >= target {
        format!("≥ {}: met", si(target))
    } else {
        format!("≥ {}: **not met**", si(target))
    }
}

fn ratio_cell(rate: f64, reference: Option<f64>) -> String {
    reference.map_or("—".into(), |r| format!("{:.2}×", rate / r))
}

/// The filter under callgrind with `n` messages: hekate's instruction count.
fn counted_run(b: &Bench, n: u64) -> Result<(u64, f64, Vec<String>), String> {
    let name = format!("sandbox-cost-{n}");
    let dir = b.scratch(&name);
    let out = dir.join("callgrind.out");
    let _ = std::fs::remove_file(&out);
    let port = b.free_port();
    let run = prepare(b, "sandbox-trivial", &name, port)?;
    let inner = run.run_launch(b, &format!("{name}-hekate"));
    let launch = under_callgrind(&inner, &out);
    let started = Instant::now();
    let mut hk = run.start_launch(b, launch, port, Duration::from_secs(120))?;
    let spec = FloodSpec::heka(CONNECTIONS, n, "300");
    let flat = flood_and_count(
        b,
        &name,
        &mut hk,
        port,
        &spec,
        "counter",
        Duration::from_secs(300),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let ir = read_callgrind_total(&out)?;
    Ok((ir, seconds, flat.commands))
}

/// The row of a filter run: its rate against the reference and the target, if it has one.
fn filter_row(label: &str, f: Flat, reference: Option<f64>, target: Option<f64>) -> Row {
    let avg = avg_ns(&f.report, "counter");
    let mut row = Row::ok(
        label,
        vec![
            format!("**{}**", si(f.msg_per_s)),
            ratio_cell(f.msg_per_s, reference),
            avg.map_or("—".into(), |ns| format!("{ns} ns")),
            target.map_or("—".into(), |t| target_cell(f.msg_per_s, t)),
            format!(
                "{} counted by the filter ([counter] ProcessMessageCount)",
                thousands(f.sent)
            ),
        ],
    );
    row.plot = Some(f.msg_per_s);
    row.commands(f.commands)
        .data(serde_json::json!({ "flood": f.data, "process_avg_ns": avg, "target": target }))
}

const COLUMNS: &[&str] = &[
    "msg/s per core",
    "vs route null",
    "Lua avg per message",
    "target",
    "check",
];

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "sandbox",
        "sandbox: Lua filter and LPeg decoder on one core",
        "hekate with one worker core. Filters: Heka-framed protobuf (~300 B) from \
         `hekate-flood` over 2 TCP connections → `TcpInput` → (1) the trivial Lua \
         `SandboxFilter` of the target, which reads one header and bumps a counter \
         (`bench/configs/sandbox-trivial.toml`, `bench/configs/lua/count.lua`), the only \
         consumer; (2) a Lua `SandboxFilter` counting every message into a circular buffer \
         (`bench/configs/sandbox-filter.toml`, `bench/configs/lua/count_by_type.lua`) beside a \
         `FileOutput` that re-encodes every message. Each is checked by the filter's \
         `ProcessMessageCount` in the SIGUSR1 report. Decoder: nginx access lines (~300 B, \
         `hekate-flood --format nginx`, the sequence number in the request path) → `TcpInput` \
         with `TokenSplitter` → an LPeg `SandboxDecoder` (`bench/configs/sandbox-decoder.toml`, \
         `bench/configs/lua/nginx_access.lua`) → `FileOutput`, checked by the output's count \
         and the input's `DecodeFailureCount`. Then the trivial filter run under callgrind with \
         N1 and N2 messages: (Ir(N2) − Ir(N1)) / (N2 − N1). Targets (BENCHMARKS.md): ≥ 2M \
         msg/s per core through a trivial filter, ≥ 200k lines/s per core through the decoder.",
        COLUMNS,
    );
    s.plot_unit = Some("messages per second, one worker core".into());
    let n = b.pick(1_000_000, 5_000_000);
    let (n1, n2) = b.pick((20_000u64, 120_000u64), (50_000, 300_000));
    let labels = [
        "route null: 10 matchers, no sandbox (reference, same run)".to_owned(),
        "trivial Lua SandboxFilter (count.lua)".to_owned(),
        "Lua SandboxFilter into a circular buffer (count_by_type.lua) + FileOutput".to_owned(),
        "LPeg SandboxDecoder (nginx_access.lua) → FileOutput".to_owned(),
        format!("trivial filter under callgrind, N1 = {}", thousands(n1)),
        format!("trivial filter under callgrind, N2 = {}", thousands(n2)),
        "instructions per message, trivial Lua filter path".to_owned(),
    ];
    if let Some(why) = b.hekate.unavailable() {
        let why = why.to_owned();
        s.rows
            .extend(labels.iter().map(|l| Row::not_run(l.as_str(), why.clone())));
        return s;
    }
    let cores = format!("flood {} · hekate {}", b.cores.generator, b.cores.sut);
    let heka = FloodSpec::heka(CONNECTIONS, n, "300");

    // The same path without the sandbox.
    let reference = match super::route::null_run(b, "sandbox-route-null", &b.cores.sut, &heka) {
        Ok(r) => {
            let mut row = Row::ok(
                labels[0].as_str(),
                vec![
                    si(r.msg_per_s),
                    "1.00×".into(),
                    "—".into(),
                    "—".into(),
                    r.check,
                ],
            );
            row.plot = Some(r.msg_per_s);
            row.reference = true;
            s.rows
                .push(row.commands(r.commands).cores(cores.clone()).data(r.data));
            Some(r.msg_per_s)
        }
        Err(e) => {
            s.rows
                .push(Row::failed(labels[0].as_str(), e).cores(cores.clone()));
            None
        }
    };

    // (a) The Lua filters.
    // The target is the trivial filter's; the circular-buffer filter is shown beside it.
    for (label, config, target) in [
        (&labels[1], "sandbox-trivial", Some(FILTER_TARGET)),
        (&labels[2], "sandbox-filter", None),
    ] {
        let row = match flat_run(b, config, config, &heka, "counter") {
            Ok(f) => filter_row(label, f, reference, target),
            Err(e) => Row::failed(label.as_str(), e),
        };
        s.rows.push(row.cores(cores.clone()));
    }

    // (b) The LPeg decoder.
    let nginx = FloodSpec::text("nginx", CONNECTIONS, n / 2, "300");
    match flat_run(b, "sandbox-decoder", "sandbox-decoder", &nginx, "out") {
        Ok(f) => {
            let failures = report_value(&f.report, "in", "DecodeFailureCount")
                .and_then(|v| v.parse::<u64>().ok());
            let avg = avg_ns(&f.report, "nginx");
            let cells = vec![
                format!("**{}**", si(f.msg_per_s)),
                "—".into(),
                avg.map_or("—".into(), |ns| format!("{ns} ns")),
                target_cell(f.msg_per_s, DECODER_TARGET),
                format!(
                    "{} decoded and written by [out], {} decode failures",
                    thousands(f.sent),
                    failures.map_or("?".into(), thousands)
                ),
            ];
            let row = match failures {
                Some(0) => {
                    let mut row = Row::ok(labels[3].as_str(), cells);
                    row.plot = Some(f.msg_per_s);
                    row
                }
                other => Row::failed(
                    labels[3].as_str(),
                    format!(
                        "[in] DecodeFailureCount {}",
                        other.map_or("not in the report".into(), thousands)
                    ),
                ),
            };
            s.rows.push(
                row.commands(f.commands).cores(cores.clone()).data(
                    serde_json::json!({ "flood": f.data, "decode_failures": failures, "process_avg_ns": avg, "target": DECODER_TARGET }),
                ),
            );
        }
        Err(e) => s
            .rows
            .push(Row::failed(labels[3].as_str(), e).cores(cores.clone())),
    }

    // (c) Instructions per message of the filter path.
    if !have("valgrind") {
        let why = "valgrind not installed (scripts/bench installs it)";
        s.rows
            .extend(labels[4..].iter().map(|l| Row::not_run(l.as_str(), why)));
        return notes(b, s);
    }
    let mut counts = Vec::new();
    for (label, n) in [(&labels[4], n1), (&labels[5], n2)] {
        match counted_run(b, n) {
            Ok((ir, seconds, commands)) => {
                s.rows.push(
                    Row::ok(
                        label.as_str(),
                        vec![
                            "—".into(),
                            "—".into(),
                            format!(
                                "{} Ir, {:.0} per message (incl. startup)",
                                thousands(ir),
                                ir as f64 / n as f64
                            ),
                            format!("{seconds:.0} s wall"),
                            format!("{} counted by the filter", thousands(n)),
                        ],
                    )
                    .commands(commands)
                    .cores(cores.clone())
                    .data(serde_json::json!({ "messages": n, "ir": ir, "seconds": seconds })),
                );
                counts.push((n, ir));
            }
            Err(e) => s
                .rows
                .push(Row::failed(label.as_str(), e).cores(cores.clone())),
        }
    }
    match counts[..] {
        [(a, ia), (z, iz)] if iz > ia => {
            let per = (iz - ia) as f64 / (z - a) as f64;
            s.rows.push(
                Row::ok(
                    labels[6].as_str(),
                    vec![
                        "—".into(),
                        "—".into(),
                        format!("**{} Ir**", thousands(per.round() as u64)),
                        "—".into(),
                        format!(
                            "({} − {}) / ({} − {})",
                            thousands(iz),
                            thousands(ia),
                            thousands(z),
                            thousands(a)
                        ),
                    ],
                )
                .cores(cores)
                .data(serde_json::json!({ "ir_per_message": per, "n1": a, "n2": z, "ir1": ia, "ir2": iz })),
            );
        }
        [_, _] => s
            .rows
            .push(Row::failed(labels[6].as_str(), "Ir(N2) ≤ Ir(N1)")),
        _ => s
            .rows
            .push(Row::failed(labels[6].as_str(), "a callgrind run failed")),
    }
    notes(b, s)
}

fn notes(b: &Bench, mut s: Section) -> Section {
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]` (one worker core, so msg/s is per core); the \
         outputs write to /dev/null. Rates are what the generator sent at (TCP pushes back on \
         it), counted as delivered by the SIGUSR1 report after the flood. \"Lua avg per \
         message\" is the plugin's `ProcessMessageAvgDuration` in that report. The reference \
         is `route`'s null output (`bench/configs/route-null.toml`: ten matchers, some of them \
         filters, and no sandbox), so a ratio above 1× means the Lua filter path costs less \
         than those ten matchers, not that the sandbox is free. The callgrind figure is \
         hekate's whole process per message on the trivial filter's path (input, decode, \
         router, the ring, the Lua call), not the filter alone; like `cost`'s, it also carries what \
         hekate does while idle for as long as valgrind keeps it alive (N2's run is longer).",
        b.cores.sut
    ));
    s
}

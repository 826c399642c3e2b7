//! `route`: Heka-framed protobuf over TCP connections → TcpInput → router with ten matchers of
//! typical shapes → one measured output (`bench/configs/route-*.toml`):
//!
//! - TcpOutput to the checking sink — flat out, and at a set rate for latency;
//! - FileOutput to a file the sink follows;
//! - FileOutput to /dev/null, checked by the output's count in hekate's SIGUSR1 report.
//!
//! The ratio is to the iperf3 loopback baseline taken in the same run.

use std::time::Duration;

use super::baseline::{self, Baseline, COLUMNS, measured_row, sink_args};
use super::drive::{FloodSpec, Measured, finish_sink, run_flood, start_sink};
use super::hekate::{self, HekateRun};
use super::report::{Row, Section};
use super::{Bench, Workload, si, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "route",
    about: "TcpInput → 10 matchers → TcpOutput / FileOutput / null, checked",
    in_quick: true,
    run,
};

/// Connections of the route load.
pub const CONNECTIONS: u32 = 2;

fn cores(b: &Bench) -> String {
    format!(
        "flood {} · hekate {} · sink {}",
        b.cores.generator, b.cores.sut, b.cores.sink
    )
}

/// flood → hekate (route-tcp) → sink.
fn to_sink(
    b: &Bench,
    name: &str,
    spec: &FloodSpec,
    base: Option<&Baseline>,
    label: &str,
    buffered: bool,
) -> Row {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let attempt = || -> Result<(Measured, Vec<String>), String> {
        let (mut sink, sink_at) = start_sink(
            b,
            &format!("{name}-sink"),
            &b.cores.sink,
            sink_args(
                &format!("tcp://127.0.0.1:{}", b.free_port()),
                "heka",
                spec.count,
                timeout,
            ),
        )?;
        let sink_port = sink_at.rsplit(':').next().unwrap_or("0").to_owned();
        let port = b.free_port();
        let run = HekateRun::new("route-tcp", &b.cores.sut, port, &b.scratch(name))
            .var("BENCH_SINK_PORT", sink_port)
            .var("BENCH_BUFFERING", buffered.to_string());
        run.check(b)?;
        let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
        let flooded = run_flood(
            b,
            &format!("{name}-flood"),
            &b.cores.generator,
            spec,
            &format!("127.0.0.1:{port}"),
            timeout,
        );
        let received = flooded
            .as_ref()
            .ok()
            .map(|_| finish_sink(&mut sink, timeout));
        let stopped = hekate::stop(&mut hk, Duration::from_secs(15));
        let (flood, flood_cmd) = flooded.map_err(|e| hekate::explain(e, &hk))?;
        let report = received
            .expect("the sink ran after a flood")
            .map_err(|e| hekate::explain(e, &hk))?;
        stopped?;
        Ok((
            Measured::new(flood, report),
            vec![sink.command.clone(), hk.command.clone(), flood_cmd],
        ))
    };
    match attempt() {
        Ok((m, commands)) => measured_row(label, &m, base, commands, cores(b)),
        Err(e) => Row::failed(label, e).cores(cores(b)),
    }
}

/// flood → hekate (route-file) → file ← sink following it.
fn to_file(b: &Bench, name: &str, spec: &FloodSpec, base: Option<&Baseline>, label: &str) -> Row {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let dir = b.scratch(name);
    let file = dir.join("out.hekad");
    let _ = std::fs::remove_file(&file);
    let attempt = || -> Result<(Measured, Vec<String>), String> {
        let port = b.free_port();
        let run = HekateRun::new("route-file", &b.cores.sut, port, &dir)
            .var("BENCH_OUTPUT_FILE", file.display().to_string());
        run.check(b)?;
        let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
        let args = vec![
            "--file".into(),
            file.display().to_string(),
            "--follow".into(),
            "--count".into(),
            spec.count.to_string(),
            "--idle".into(),
            "3s".into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs()),
        ];
        let (mut sink, _) = start_sink(b, &format!("{name}-sink"), &b.cores.sink, args)?;
        let flooded = run_flood(
            b,
            &format!("{name}-flood"),
            &b.cores.generator,
            spec,
            &format!("127.0.0.1:{port}"),
            timeout,
        );
        let received = flooded
            .as_ref()
            .ok()
            .map(|_| finish_sink(&mut sink, timeout));
        let stopped = hekate::stop(&mut hk, Duration::from_secs(15));
        let (flood, flood_cmd) = flooded.map_err(|e| hekate::explain(e, &hk))?;
        let report = received
            .expect("the sink ran after a flood")
            .map_err(|e| hekate::explain(e, &hk))?;
        stopped?;
        Ok((
            Measured::new(flood, report),
            vec![hk.command.clone(), sink.command.clone(), flood_cmd],
        ))
    };
    let row = match attempt() {
        Ok((m, commands)) => measured_row(label, &m, base, commands, cores(b)),
        Err(e) => Row::failed(label, e).cores(cores(b)),
    };
    let _ = std::fs::remove_file(&file);
    row
}

/// What a null-output run measured.
pub struct NullRun {
    /// Messages per second written by the generator (hekate reads at this rate: TCP pushes back).
    pub msg_per_s: f64,
    /// Gbit/s of message data.
    pub gbit_per_s: f64,
    /// How delivery was checked.
    pub check: String,
    /// Commands.
    pub commands: Vec<String>,
    /// The flood's report.
    pub data: serde_json::Value,
}

/// flood → hekate (route-null) with `cores` as worker cores; delivery checked through the SIGUSR1
/// report when hekate prints one.
pub fn null_run(
    b: &Bench,
    name: &str,
    worker_cores: &str,
    spec: &FloodSpec,
) -> Result<NullRun, String> {
    null_run_with(b, name, "route-null", worker_cores, spec)
}

/// As [`null_run`], with `bench/configs/<config>.toml` (its measured output is `out`).
pub fn null_run_with(
    b: &Bench,
    name: &str,
    config: &str,
    worker_cores: &str,
    spec: &FloodSpec,
) -> Result<NullRun, String> {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let port = b.free_port();
    let run = HekateRun::new(config, worker_cores, port, &b.scratch(name));
    run.check(b)?;
    let mut hk = run.start(b, &format!("{name}-hekate"), port)?;
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
            let _ = hekate::stop(&mut hk, Duration::from_secs(15));
            return Err(hekate::explain(e, &hk));
        }
    };
    let counted = hekate::await_report_count(&mut hk, "out", flood.sent, Duration::from_secs(20));
    let stopped = if hk.try_wait().is_some() {
        Ok(())
    } else {
        hekate::stop(&mut hk, Duration::from_secs(15))
    };
    let check = match counted {
        Ok(n) if n == flood.sent => format!("{} counted by the output", thousands(n)),
        Ok(n) => {
            return Err(format!(
                "the output counted {} of {} messages",
                thousands(n),
                thousands(flood.sent)
            ));
        }
        Err(why) => format!("not checked ({why})"),
    };
    stopped?;
    Ok(NullRun {
        msg_per_s: flood.msg_per_s,
        gbit_per_s: flood.gbit_per_s,
        check,
        commands: vec![hk.command.clone(), flood_cmd],
        data: serde_json::to_value(&flood).unwrap_or_default(),
    })
}

fn to_null(b: &Bench, name: &str, spec: &FloodSpec, base: Option<&Baseline>, label: &str) -> Row {
    let cores = format!("flood {} · hekate {}", b.cores.generator, b.cores.sut);
    match null_run(b, name, &b.cores.sut, spec) {
        Ok(r) => {
            let ratio = base.map_or("—".into(), |x| {
                format!("{:.2}×", r.gbit_per_s / x.gbit_per_s)
            });
            let mut row = Row::ok(
                label,
                vec![
                    si(r.msg_per_s),
                    format!("{:.2}", r.gbit_per_s),
                    ratio,
                    "—".into(),
                    r.check,
                ],
            );
            row.plot = Some(r.gbit_per_s);
            row.commands(r.commands).cores(cores).data(r.data)
        }
        Err(e) => Row::failed(label, e).cores(cores),
    }
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "route",
        "route: Heka protobuf → 10 matchers → one output",
        "Heka-framed protobuf messages (~300 B, realistic headers and fields) from `hekate-flood` \
         over 2 TCP connections → `TcpInput` → the router with ten matchers of typical shapes \
         (`bench/configs/route-*.toml`) → one measured output. Target (BENCHMARKS.md): ≥ 10 Gbit/s \
         of message data into a null output and ≥ 5 Gbit/s TCP→TCP with nothing lost.",
        COLUMNS,
    );
    s.plot_unit = Some("Gbit/s of message data".into());
    let base = baseline::loopback(b)
        .map_err(|e| {
            s.rows
                .push(Row::failed("loopback TCP, iperf3 (reference, same run)", e))
        })
        .ok();
    if let Some(x) = &base {
        let mut r = Row::ok(
            "loopback TCP, iperf3 (reference, same run)",
            vec![
                "—".into(),
                format!("{:.2}", x.gbit_per_s),
                "1.00×".into(),
                "—".into(),
                "—".into(),
            ],
        )
        .commands(x.commands.clone())
        .cores(format!(
            "client {} · server {}",
            b.cores.generator, b.cores.sut
        ));
        r.plot = Some(x.gbit_per_s);
        r.reference = true;
        s.rows.push(r);
    }
    let n = b.pick(1_000_000, 5_000_000);
    let flat = FloodSpec::heka(CONNECTIONS, n, "300");
    if b.hekate.unavailable().is_none() {
        let mut r = baseline::ceiling(
            b,
            "generator ceiling: flood → sink (reference, same run)",
            "route-ceiling",
            flat.clone(),
            "heka",
            false,
            base.as_ref(),
        );
        r.reference = true;
        s.rows.push(r);
    }
    let labels = [
        "hekate, TcpOutput → sink, flat out",
        "hekate, TcpOutput → sink, at 100k msg/s",
        "hekate, FileOutput → file (sink follows it)",
        "hekate, FileOutput → /dev/null, flat out",
        "hekate, TcpOutput with use_buffering (disk queue) → sink, flat out",
    ];
    if let Some(why) = b.hekate.unavailable() {
        let why = why.to_owned();
        s.rows
            .extend(labels.iter().map(|l| Row::not_run(*l, why.clone())));
        return s;
    }
    let rate = 100_000.0;
    let secs = b.pick(2, 5);
    s.rows.push(to_sink(
        b,
        "route-tcp",
        &flat,
        base.as_ref(),
        labels[0],
        false,
    ));
    let paced = FloodSpec::heka(CONNECTIONS, rate as u64 * secs, "300").at_rate(rate);
    s.rows.push(to_sink(
        b,
        "route-tcp-rate",
        &paced,
        base.as_ref(),
        labels[1],
        false,
    ));
    s.rows
        .push(to_file(b, "route-file", &flat, base.as_ref(), labels[2]));
    s.rows
        .push(to_null(b, "route-null", &flat, base.as_ref(), labels[3]));
    s.rows.push(to_sink(
        b,
        "route-tcp-buffered",
        &flat,
        base.as_ref(),
        labels[4],
        true,
    ));
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]`; on a 2-core host the sink shares core {} with \
         the generator. End-to-end figures: messages delivered exactly once ÷ (last receive − \
         first send). The null output's figure is the rate hekate read at (TCP pushes back on \
         the generator).",
        b.cores.sut, b.cores.sink
    ));
    s
}

//! `baseline`: what the machine and the tools can do without hekate, in the same run.
//!
//! - Loopback TCP with iperf3 (one stream, large writes; and one 200-byte write per syscall):
//!   the denominator of every "ratio to loopback" on the page.
//! - The generator ceiling: `hekate-flood` straight into `hekate-sink`, flat out and at a set
//!   rate — the most any pipeline between them could be measured at, and the latency floor.

use std::time::Duration;

use super::drive::{FloodSpec, Measured, finish_sink, run_flood, start_sink};
use super::report::{Row, Section};
use super::{Bench, Workload, have, latency_cell, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "baseline",
    about: "loopback TCP (iperf3) and the generator ceiling (flood → sink)",
    in_quick: true,
    run,
};

/// The loopback TCP baseline of this run.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// iperf3, one stream: Gbit/s received.
    pub gbit_per_s: f64,
    /// The commands that measured it.
    pub commands: Vec<String>,
}

/// Runs iperf3 once: server on the system-under-test core, client on the generator core.
/// `len` is the write size (`None`: iperf3's default 128 KiB).
fn iperf3(
    b: &Bench,
    name: &str,
    len: Option<&str>,
    seconds: u32,
) -> Result<(f64, Vec<String>), String> {
    if !have("iperf3") {
        return Err("iperf3 not installed (scripts/bench installs it)".into());
    }
    let port = b.free_port().to_string();
    let mut server = b
        .launch(&format!("{name}-server"), "iperf3")
        .cores(&b.cores.sut)
        .args(["-s", "-1", "--forceflush", "-p", &port])
        .spawn(&b.opts.run_dir)?;
    server
        .wait_for_line("Server listening", Duration::from_secs(10))
        .ok_or_else(|| format!("iperf3 server did not start: {}", server.tail(2)))?;
    let mut args = vec!["-c", "127.0.0.1", "-p", &port, "-J"];
    let t = seconds.to_string();
    args.extend(["-t", &t]);
    if let Some(l) = len {
        args.extend(["-l", l]);
    }
    let mut client = b
        .launch(&format!("{name}-client"), "iperf3")
        .cores(&b.cores.generator)
        .args(args)
        .spawn(&b.opts.run_dir)?;
    if client
        .wait(Duration::from_secs(u64::from(seconds) + 20))
        .is_none()
    {
        return Err("iperf3 did not finish".into());
    }
    server.wait(Duration::from_secs(5));
    let json: serde_json::Value = serde_json::from_str(&client.stdout())
        .map_err(|e| format!("iperf3 printed no JSON ({e}): {}", client.tail(2)))?;
    if let Some(err) = json["error"].as_str() {
        return Err(format!("iperf3: {err}"));
    }
    let bps = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3 JSON has no end.sum_received.bits_per_second")?;
    Ok((
        bps / 1e9,
        vec![server.command.clone(), client.command.clone()],
    ))
}

/// The loopback baseline, measured once per run (other workloads take their ratio from it).
pub fn loopback(b: &mut Bench) -> Result<Baseline, String> {
    if let Some(base) = &b.baseline {
        return Ok(base.clone());
    }
    let (gbit, commands) = iperf3(b, "iperf3", None, b.pick(2, 5))?;
    let base = Baseline {
        gbit_per_s: gbit,
        commands,
    };
    b.baseline = Some(base.clone());
    Ok(base)
}

/// The columns of flood/sink tables.
pub const COLUMNS: &[&str] = &[
    "msg/s",
    "Gbit/s (message data)",
    "vs loopback",
    "latency p50 / p99 / p99.9",
    "delivery",
];

/// A row for a checked measurement, failed when anything was lost or duplicated.
pub fn measured_row(
    label: &str,
    m: &Measured,
    base: Option<&Baseline>,
    commands: Vec<String>,
    cores: String,
) -> Row {
    let row = match m.verdict() {
        Err(why) => Row::failed(label, why),
        Ok(()) => {
            let ratio = base.map_or("—".into(), |b| {
                format!("{:.2}×", m.gbit_per_s() / b.gbit_per_s)
            });
            let mut r = Row::ok(
                label,
                vec![
                    si(m.msg_per_s()),
                    format!("{:.2}", m.gbit_per_s()),
                    ratio,
                    latency_cell(m.latency().as_ref()),
                    m.delivery_cell(),
                ],
            );
            r.plot = Some(m.gbit_per_s());
            r.latency = m.latency();
            r
        }
    };
    row.commands(commands).cores(cores).data(m.data())
}

/// Sink arguments: listen on `listen` (`tcp://127.0.0.1:PORT`), stop after `count` messages.
pub fn sink_args(listen: &str, format: &str, count: u64, timeout: Duration) -> Vec<String> {
    vec![
        "--listen".into(),
        listen.into(),
        "--format".into(),
        format.into(),
        "--count".into(),
        count.to_string(),
        "--idle".into(),
        "3s".into(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs()),
    ]
}

/// `hekate-flood` straight into `hekate-sink` (on the system-under-test core): the generator
/// ceiling for `spec`.
pub fn ceiling(
    b: &Bench,
    label: &str,
    name: &str,
    spec: FloodSpec,
    sink_format: &str,
    udp: bool,
    base: Option<&Baseline>,
) -> Row {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let scheme = if udp { "udp" } else { "tcp" };
    let listen = format!("{scheme}://127.0.0.1:{}", b.free_port());
    let args = sink_args(&listen, sink_format, spec.count, timeout);
    // The sink stands where the system under test would: its own core.
    let cores = format!("flood {} · sink {}", b.cores.generator, b.cores.sut);
    match start_and_flood(b, name, args, &spec, timeout) {
        Ok((m, commands)) => measured_row(label, &m, base, commands, cores),
        Err(e) => Row::failed(label, e).cores(cores),
    }
}

fn start_and_flood(
    b: &Bench,
    name: &str,
    sink_args: Vec<String>,
    spec: &FloodSpec,
    timeout: Duration,
) -> Result<(Measured, Vec<String>), String> {
    let (mut sink, at) = start_sink(b, &format!("{name}-sink"), &b.cores.sut, sink_args)?;
    let (flood, flood_cmd) = run_flood(
        b,
        &format!("{name}-flood"),
        &b.cores.generator,
        spec,
        &at,
        timeout,
    )?;
    let report = finish_sink(&mut sink, timeout)?;
    Ok((
        Measured::new(flood, report),
        vec![sink.command.clone(), flood_cmd],
    ))
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "baseline",
        "baseline: loopback and generator ceiling",
        "What the machine and the tools do without hekate, in the same run. iperf3 gives the \
         loopback TCP baseline every `vs loopback` ratio on this page divides by (its figure is \
         payload, ours is message data without framing). `hekate-flood → hekate-sink` is the \
         generator ceiling: the most a pipeline between them could be measured at, and the \
         latency floor. Every message is checked (connection id and sequence number).",
        COLUMNS,
    );
    s.plot_unit = Some("Gbit/s".into());
    let base = match loopback(b) {
        Ok(base) => {
            let mut r = Row::ok(
                "iperf3, 1 TCP stream (128 KiB writes)",
                vec![
                    "—".into(),
                    format!("{:.2}", base.gbit_per_s),
                    "1.00×".into(),
                    "—".into(),
                    "—".into(),
                ],
            )
            .commands(base.commands.clone())
            .cores(format!(
                "client {} · server {}",
                b.cores.generator, b.cores.sut
            ))
            .data(serde_json::json!({ "gbit_per_s": base.gbit_per_s }));
            r.plot = Some(base.gbit_per_s);
            r.reference = true;
            s.rows.push(r);
            Some(base)
        }
        Err(e) => {
            s.rows
                .push(Row::failed("iperf3, 1 TCP stream (128 KiB writes)", e));
            None
        }
    };
    if !b.quick() {
        let label = "iperf3, 1 TCP stream, one 200 B write per syscall";
        match iperf3(b, "iperf3-200", Some("200"), 3) {
            Ok((gbit, commands)) => {
                let ratio = base
                    .as_ref()
                    .map_or("—".into(), |x| format!("{:.2}×", gbit / x.gbit_per_s));
                let mut r = Row::ok(
                    label,
                    vec![
                        si(gbit * 1e9 / 8.0 / 200.0),
                        format!("{gbit:.2}"),
                        ratio,
                        "—".into(),
                        "—".into(),
                    ],
                )
                .commands(commands)
                .cores(format!(
                    "client {} · server {}",
                    b.cores.generator, b.cores.sut
                ))
                .data(serde_json::json!({ "gbit_per_s": gbit }));
                r.plot = Some(gbit);
                r.reference = true;
                s.rows.push(r);
            }
            Err(e) => s.rows.push(Row::failed(label, e)),
        }
    }
    let n = b.pick(2_000_000, 6_000_000);
    s.rows.push(ceiling(
        b,
        "flood → sink, Heka 300 B, 2 TCP conns, flat out",
        "ceiling-heka",
        FloodSpec::heka(2, n, "300"),
        "heka",
        false,
        base.as_ref(),
    ));
    let rate = 100_000.0;
    let secs = b.pick(2, 5);
    s.rows.push(ceiling(
        b,
        "flood → sink, Heka 300 B, 2 TCP conns, at 100k msg/s",
        "ceiling-heka-rate",
        FloodSpec::heka(2, (rate as u64) * secs, "300").at_rate(rate),
        "heka",
        false,
        base.as_ref(),
    ));
    s.rows.push(ceiling(
        b,
        "flood → sink, syslog RFC 5424 lines 250 B, 2 TCP conns, flat out",
        "ceiling-syslog",
        FloodSpec::text("syslog5424", 2, n / 2, "250"),
        "lines",
        false,
        base.as_ref(),
    ));
    if !b.quick() {
        let rate = 200_000.0;
        let mut spec = FloodSpec::heka(1, (rate as u64) * 3, "300").at_rate(rate);
        spec.transport = "udp";
        s.rows.push(ceiling(
            b,
            "flood → sink, Heka 300 B over UDP, at 200k msg/s",
            "ceiling-udp",
            spec,
            "heka",
            true,
            base.as_ref(),
        ));
    }
    s.notes.push(
        "`msg/s` and `Gbit/s` are end to end: messages delivered exactly once divided by the time \
         from the first send to the last receive."
            .into(),
    );
    s
}

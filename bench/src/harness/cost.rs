//! `cost`: instructions per routed message, counted by callgrind for the hekate process alone —
//! a figure that does not move with machine noise.
//!
//! The `route` path (`bench/configs/route-tcp.toml`: TcpInput → ten matchers → TcpOutput to the
//! sink) runs under `valgrind --tool=callgrind` twice, with N1 and N2 messages; startup and
//! shutdown cancel out in (Ir(N2) − Ir(N1)) / (N2 − N1). Target: ≤ 1,000.

use std::path::Path;
use std::time::Duration;

use super::baseline::sink_args;
use super::drive::{FloodSpec, finish_sink, run_flood, start_sink};
use super::hekate::{self, HekateRun};
use super::proc::Launch;
use super::report::{Row, Section};
use super::{Bench, Workload, have, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "cost",
    about: "instructions per routed message under callgrind (hekate only)",
    in_quick: true,
    run,
};

/// Reads the total instruction count (`summary:` or `totals:` line) of a callgrind output file.
pub fn callgrind_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .or_else(|| text.lines().find(|l| l.starts_with("totals:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `inner` (a hekate launch) wrapped in `valgrind --tool=callgrind`, writing its counts to `out`.
pub fn under_callgrind(inner: &Launch, out: &Path) -> Launch {
    let mut launch = Launch::new(&inner.name, "valgrind").args([
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
        "--dump-instr=no".to_owned(),
        "--collect-jumps=no".to_owned(),
        inner.program.clone(),
    ]);
    launch.args.extend(inner.args.iter().cloned());
    launch.env = inner.env.clone();
    launch.cores = inner.cores.clone();
    launch
}

/// The total instruction count in the callgrind output file `out`.
pub fn read_callgrind_total(out: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(out)
        .map_err(|e| format!("no callgrind output {}: {e}", out.display()))?;
    callgrind_total(&text).ok_or_else(|| format!("no instruction total in {}", out.display()))
}

struct Counted {
    ir: u64,
    seconds: f64,
    commands: Vec<String>,
    delivered: u64,
}

fn counted_run(b: &Bench, n: u64) -> Result<Counted, String> {
    let name = format!("cost-{n}");
    let dir = b.scratch(&name);
    let out = dir.join("callgrind.out");
    let _ = std::fs::remove_file(&out);
    let timeout = Duration::from_secs(600);
    let (mut sink, sink_at) = start_sink(
        b,
        &format!("{name}-sink"),
        &b.cores.sink,
        sink_args(
            &format!("tcp://127.0.0.1:{}", b.free_port()),
            "heka",
            n,
            timeout,
        ),
    )?;
    let sink_port = sink_at.rsplit(':').next().unwrap_or("0").to_owned();
    let port = b.free_port();
    let run = HekateRun::new("route-tcp", &b.cores.sut, port, &dir)
        .var("BENCH_SINK_PORT", sink_port)
        .var("BENCH_BUFFERING", "false");
    run.check(b)?;
    let inner = run.run_launch(b, &format!("{name}-hekate"));
    let launch = under_callgrind(&inner, &out);
    let started = std::time::Instant::now();
    let mut hk = run.start_launch(b, launch, port, Duration::from_secs(120))?;
    let spec = FloodSpec::heka(super::route::CONNECTIONS, n, "300");
    let flooded = run_flood(
        b,
        &format!("{name}-flood"),
        &b.cores.generator,
        &spec,
        &format!("127.0.0.1:{port}"),
        timeout,
    );
    let received = flooded
        .as_ref()
        .ok()
        .map(|_| finish_sink(&mut sink, timeout));
    let stopped = hekate::stop(&mut hk, Duration::from_secs(120));
    let seconds = started.elapsed().as_secs_f64();
    let (flood, flood_cmd) = flooded.map_err(|e| hekate::explain(e, &hk))?;
    let report = received
        .expect("the sink ran after a flood")
        .map_err(|e| hekate::explain(e, &hk))?;
    stopped?;
    let m = super::drive::Measured::new(flood, report);
    m.verdict()?;
    let ir = read_callgrind_total(&out)?;
    Ok(Counted {
        ir,
        seconds,
        commands: vec![sink.command.clone(), hk.command.clone(), flood_cmd],
        delivered: m.delivery.delivered,
    })
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "cost",
        "cost: instructions per routed message",
        "The `route` path (`bench/configs/route-tcp.toml`) under `valgrind --tool=callgrind`, \
         hekate's process only, run with N1 and then N2 messages; startup and shutdown cancel \
         out in (Ir(N2) − Ir(N1)) / (N2 − N1). Instruction counts do not move with machine \
         noise. Target: ≤ 1,000 instructions per routed message.",
        &[
            "messages",
            "instructions (Ir)",
            "Ir per message",
            "wall time",
            "delivery",
        ],
    );
    let (n1, n2) = b.pick((20_000u64, 120_000u64), (50_000, 550_000));
    let labels = [
        format!("hekate under callgrind, N1 = {}", thousands(n1)),
        format!("hekate under callgrind, N2 = {}", thousands(n2)),
        "instructions per routed message".to_owned(),
    ];
    let unavailable = b.hekate.unavailable().map(str::to_owned).or_else(|| {
        (!have("valgrind")).then(|| "valgrind not installed (scripts/bench installs it)".to_owned())
    });
    if let Some(why) = unavailable {
        s.rows
            .extend(labels.iter().map(|l| Row::not_run(l.as_str(), why.clone())));
        return s;
    }
    let cores = format!(
        "flood {} · hekate {} · sink {}",
        b.cores.generator, b.cores.sut, b.cores.sink
    );
    let mut counts = Vec::new();
    for (label, n) in [(&labels[0], n1), (&labels[1], n2)] {
        match counted_run(b, n) {
            Ok(c) => {
                s.rows.push(
                    Row::ok(
                        label.as_str(),
                        vec![
                            thousands(n),
                            thousands(c.ir),
                            format!("{:.0} (incl. startup)", c.ir as f64 / n as f64),
                            format!("{:.0} s", c.seconds),
                            format!("{} exactly once", thousands(c.delivered)),
                        ],
                    )
                    .commands(c.commands)
                    .cores(cores.clone())
                    .data(serde_json::json!({ "messages": n, "ir": c.ir, "seconds": c.seconds })),
                );
                counts.push((n, c.ir));
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
                    labels[2].as_str(),
                    vec![
                        thousands(z - a),
                        thousands(iz - ia),
                        format!("**{}**", thousands(per.round() as u64)),
                        "—".into(),
                        "from runs [1](#cost-cmd-1) and [2](#cost-cmd-2)".into(),
                    ],
                )
                .cores(cores.clone())
                .data(serde_json::json!({ "ir_per_message": per, "n1": a, "n2": z, "ir1": ia, "ir2": iz })),
            );
        }
        [_, _] => s
            .rows
            .push(Row::failed(labels[2].as_str(), "Ir(N2) ≤ Ir(N1)")),
        _ => s
            .rows
            .push(Row::failed(labels[2].as_str(), "a callgrind run failed")),
    }
    s.notes.push(
        "Both runs include whatever hekate does while idle for as long as valgrind keeps it \
         alive; if that part grew with wall time, the difference would carry some of it (the \
         wall time of each run is shown)."
            .into(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals() {
        let text = "# callgrind format\nversion: 1\ncmd: hekate run\nevents: Ir\nsummary: 123456789\n\nfn=main\n0 5\ntotals: 123456789\n";
        assert_eq!(callgrind_total(text), Some(123_456_789));
        assert_eq!(callgrind_total("events: Ir\ntotals: 42\n"), Some(42));
        assert_eq!(callgrind_total("nothing"), None);
    }
}

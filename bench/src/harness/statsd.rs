//! `statsd`: statsd counters over UDP → aggregation every second → graphite plaintext to the
//! checking sink; hekate against etsy statsd and collectd on the same load in the same run.
//!
//! UDP has no back-pressure: a receiver that falls behind drops datagrams. So each system climbs
//! a ladder of send rates, and the figure is the highest rate at which every counter increment
//! came out in the graphite sums (the sink adds up the matched counts and compares with what was
//! sent). Loss at a higher rate ends the ladder; it is shown, never counted as throughput.
//!
//! hekate runs `bench/configs/statsd.toml`: StatsdInput → StatAccumInput (1 s, idle stats
//! deleted) → CarbonOutput, on the same single core as the peers.

use std::fs;
use std::time::Duration;

use super::drive::{FloodSpec, finish_sink, run_flood, start_sink};
use super::hekate::HekateRun;
use super::peers::{self, npm_version, render, version};
use super::proc::Launch;
use super::report::{Row, Section};
use super::{Bench, Workload, have, si, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "statsd",
    about: "statsd UDP → aggregate → graphite: hekate vs etsy statsd and collectd",
    in_quick: true,
    run,
};

/// Starts an aggregator listening on a UDP port and reporting to the sink's port.
pub type Prepare = Box<dyn Fn(&Bench, u16, u16) -> Result<Launch, String>>;

/// Sets up an aggregator, or says why it cannot run here.
type MakeAggregator = fn(&Bench) -> Result<Aggregator, String>;

/// How to start one aggregator for one ladder step.
pub struct Aggregator {
    /// Row label (with the version).
    pub label: String,
    /// Short name for logs.
    pub name: String,
    /// Graphite paths whose values are the per-flush counts of the generated counters.
    pub counts: &'static str,
    /// A line it prints once it listens.
    pub ready: &'static str,
    /// Starts it listening on UDP `port` and reporting to the sink on `sink_port`.
    pub prepare: Prepare,
}

/// Bytes of metrics per datagram, as statsd clients buffer them (under a 1,500-byte MTU).
const UDP_PACK: usize = 1400;

/// UDP receive-buffer drops so far, system-wide (`RcvbufErrors` in /proc/net/snmp).
fn udp_drops() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (head, values) = (udp.next()?, udp.next()?);
    let i = head.split_whitespace().position(|h| h == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// One rung of the ladder.
#[derive(Clone, Debug, serde::Serialize)]
struct Step {
    rate: f64,
    /// The rate the generator reached (it falls short of `rate` when it is the bottleneck).
    sent_rate: f64,
    sent: u64,
    counted: f64,
    kernel_drops: Option<u64>,
    commands: Vec<String>,
}

impl Step {
    fn lossless(&self) -> bool {
        self.counted == self.sent as f64
    }

    /// The rate the step stands for: the asked one, or what the generator reached if less.
    fn achieved(&self) -> f64 {
        self.rate.min(self.sent_rate)
    }

    /// `400 k`, or `800 k (sent at 350 k)` when the generator fell short.
    fn rate_label(&self) -> String {
        if self.sent_rate < 0.95 * self.rate {
            format!("{} (sent at {})", si(self.rate), si(self.sent_rate))
        } else {
            si(self.rate)
        }
    }
}

fn step(b: &Bench, agg: &Aggregator, rate: f64, seconds: f64) -> Result<Step, String> {
    let n = (rate * seconds) as u64;
    let timeout = Duration::from_secs_f64(seconds + 20.0);
    let (mut sink, sink_at) = start_sink(
        b,
        &format!("{}-sink", agg.name),
        &b.cores.sink,
        vec![
            "--listen".into(),
            format!("tcp://127.0.0.1:{}", b.free_port()),
            "--format".into(),
            "carbon".into(),
            "--carbon-match".into(),
            agg.counts.into(),
            "--count".into(),
            n.to_string(),
            "--idle".into(),
            "3s".into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs()),
        ],
    )?;
    let sink_port: u16 = sink_at
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let port = b.free_port();
    let mut p = (agg.prepare)(b, port, sink_port)?.spawn(&b.opts.run_dir)?;
    p.wait_for_line(agg.ready, Duration::from_secs(20))
        .ok_or_else(|| format!("{} did not start: {}", agg.name, p.tail(3)))?;
    let drops = udp_drops();
    let mut spec = FloodSpec::text("statsd", 1, n, "64").at_rate(rate);
    spec.transport = "udp";
    spec.extra = vec!["--udp-pack".into(), UDP_PACK.to_string()];
    let flooded = run_flood(
        b,
        &format!("{}-flood", agg.name),
        &b.cores.generator,
        &spec,
        &format!("127.0.0.1:{port}"),
        timeout,
    );
    // Two flush intervals for the last counts, then SIGTERM (collectd flushes on the way out).
    std::thread::sleep(Duration::from_millis(2500));
    p.stop(Duration::from_secs(10));
    let (flood, flood_cmd) = flooded?;
    let report = finish_sink(&mut sink, timeout)?;
    let kernel_drops = drops.zip(udp_drops()).map(|(a, z)| z.saturating_sub(a));
    Ok(Step {
        rate,
        sent_rate: flood.msg_per_s,
        sent: flood.sent,
        counted: report.carbon.map_or(0.0, |c| c.sum),
        kernel_drops,
        commands: vec![sink.command.clone(), p.command.clone(), flood_cmd],
    })
}

fn ladder(b: &Bench, agg: &Aggregator) -> Row {
    let rates: &[f64] = if b.quick() {
        &[10_000.0, 50_000.0, 200_000.0]
    } else {
        &[
            5_000.0,
            10_000.0,
            25_000.0,
            50_000.0,
            100_000.0,
            200_000.0,
            400_000.0,
            800_000.0,
            1_600_000.0,
            3_200_000.0,
        ]
    };
    let seconds = b.pick(1.0, 2.0);
    let cores = format!(
        "flood {} · {} {} · sink {}",
        b.cores.generator, agg.name, b.cores.sut, b.cores.sink
    );
    let mut steps: Vec<Step> = Vec::new();
    for &rate in rates {
        match step(b, agg, rate, seconds) {
            Ok(s) => {
                let lossless = s.lossless();
                steps.push(s);
                if !lossless {
                    break;
                }
            }
            Err(e) => return Row::failed(&agg.label, e).cores(cores),
        }
    }
    let ladder_cell = steps
        .iter()
        .map(|s| {
            if s.lossless() {
                format!("{} ✓", s.rate_label())
            } else {
                let lost = s.sent as f64 - s.counted;
                format!(
                    "{} ✗ {:.1}% lost{}",
                    s.rate_label(),
                    100.0 * lost / s.sent as f64,
                    s.kernel_drops.map_or(String::new(), |d| format!(
                        " ({} kernel drops)",
                        thousands(d)
                    ))
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let data = serde_json::json!({ "steps": steps });
    let best = steps
        .iter()
        .filter(|s| s.lossless())
        .map(Step::achieved)
        .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))));
    let commands = steps
        .iter()
        .find(|s| Some(s.achieved()) == best)
        .or(steps.first())
        .map(|s| s.commands.clone())
        .unwrap_or_default();
    match best {
        None => Row::failed(
            &agg.label,
            format!("lost counts even at the lowest rate: {ladder_cell}"),
        )
        .commands(commands)
        .cores(cores)
        .data(data),
        Some(rate) => {
            let mut r = Row::ok(&agg.label, vec![si(rate), ladder_cell, "—".into()]);
            r.plot = Some(rate);
            r.commands(commands).cores(cores).data(data)
        }
    }
}

fn hekate(b: &Bench) -> Result<Aggregator, String> {
    if let Some(why) = b.hekate.unavailable() {
        return Err(why.to_owned());
    }
    Ok(Aggregator {
        label: "hekate (StatsdInput → StatAccumInput → CarbonOutput)".into(),
        name: "hekate".into(),
        counts: r"^stats\.counters\.bench\..*\.count$",
        ready: "hekate started",
        prepare: Box::new(|b: &Bench, port: u16, sink_port: u16| {
            let base = b.scratch("statsd-hekate");
            let run = HekateRun::new("statsd", &b.cores.sut, port, &base)
                .var("BENCH_SINK_PORT", sink_port.to_string());
            run.check(b)?;
            Ok(run.run_launch(b, "statsd-hekate"))
        }),
    })
}

fn etsy(b: &Bench) -> Result<Aggregator, String> {
    let js = peers::statsd_js(b).ok_or("etsy statsd not installed (run scripts/peers install)")?;
    if !have("node") {
        return Err("node not installed (scripts/peers installs nodejs)".into());
    }
    let package = js.with_file_name("package.json");
    let js = js.display().to_string();
    Ok(Aggregator {
        label: format!(
            "etsy statsd {} (node {})",
            npm_version(&package),
            version("node", &["--version"])
        ),
        name: "statsd".into(),
        counts: r"^stats_counts\.bench\.",
        ready: "server is up",
        prepare: Box::new(move |b: &Bench, port: u16, sink_port: u16| {
            let dir = b.scratch("statsd");
            let conf = dir.join("statsd-config.js");
            let mgmt = b.free_port();
            render(
                b,
                "statsd-config.js",
                &[
                    ("PORT", port.to_string()),
                    ("MGMT_PORT", mgmt.to_string()),
                    ("SINK_PORT", sink_port.to_string()),
                ],
                &conf,
            )?;
            Ok(b.launch("statsd", "node")
                .cores(&b.cores.sut)
                .args([js.clone(), conf.display().to_string()]))
        }),
    })
}

fn collectd(_: &Bench) -> Result<Aggregator, String> {
    if !have("collectd") {
        return Err("collectd not installed (scripts/peers installs collectd-core)".into());
    }
    Ok(Aggregator {
        label: format!("collectd {}", version("collectd", &["-h"])),
        name: "collectd".into(),
        counts: r"\.statsd\.count-bench_",
        ready: "Initialization complete",
        prepare: Box::new(|b: &Bench, port: u16, sink_port: u16| {
            let dir = b.scratch("collectd");
            let conf = dir.join("collectd.conf");
            render(
                b,
                "collectd.conf",
                &[
                    ("PORT", port.to_string()),
                    ("SINK_PORT", sink_port.to_string()),
                    ("WORKDIR", dir.display().to_string()),
                ],
                &conf,
            )?;
            Ok(b.launch("collectd", "collectd").cores(&b.cores.sut).args([
                "-f".to_owned(),
                "-C".to_owned(),
                conf.display().to_string(),
            ]))
        }),
    })
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "statsd",
        "statsd: UDP counters → 1 s aggregation → graphite, vs etsy statsd and collectd",
        "statsd counters (`bench.c0.<logger>.<status>:1|c`, 20 names) from `hekate-flood --format \
         statsd --udp-pack 1400` over UDP (newline-separated metrics packed into datagrams of up \
         to 1,400 bytes, as statsd clients buffer them: about 60 per datagram) at a ladder of \
         rates → each system aggregates every second and sends \
         graphite plaintext to `hekate-sink`, which adds up the reported counts. The figure is \
         the highest rate at which every increment was counted; the ladder stops at the first \
         rate that lost any (UDP has no back-pressure: the kernel drops what the receiver does \
         not read in time). When the generator (one thread, `sendmmsg`) cannot send as fast as a \
         rung asks, the rung shows the rate it reached, and that rate is the figure.",
        &[
            "highest lossless metrics/s",
            "ladder (1 s aggregation; ✗ = counts lost)",
            "vs hekate",
        ],
    );
    s.plot_unit = Some("highest lossless metrics/s".into());
    let mut hekate_rate = None;
    match hekate(b) {
        Ok(agg) => {
            let r = ladder(b, &agg);
            hekate_rate = r.plot;
            s.rows.push(r);
        }
        Err(e) => s.rows.push(Row::not_run(
            "hekate (StatsdInput → StatAccumInput → CarbonOutput)",
            e,
        )),
    }
    let aggregators: [(&str, MakeAggregator); 2] = [("etsy statsd", etsy), ("collectd", collectd)];
    for (name, make) in aggregators {
        match make(b) {
            Ok(agg) => {
                // Peers are drawn grey, hekate blue.
                let mut r = ladder(b, &agg);
                r.reference = true;
                if let (Some(h), Some(p)) = (hekate_rate, r.plot)
                    && let Some(cell) = r.cells.last_mut()
                {
                    *cell = format!("hekate {:.1}×", h / p);
                }
                s.rows.push(r);
            }
            Err(e) => s.rows.push(Row::not_run(name, e)),
        }
    }
    s.notes.push(format!(
        "Each aggregator on core {}, the generator on core {}, the sink on core {}; {} s per rung. \
         The peers keep the kernel's default UDP receive buffer; hekate's StatsdInput asks for \
         its default of 8 MiB (`receive_buffer_size`, capped by `net.core.rmem_max`).",
        b.cores.sut,
        b.cores.generator,
        b.cores.sink,
        b.pick(1, 2)
    ));
    s
}

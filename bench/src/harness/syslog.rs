//! `syslog`: RFC 5424 lines over TCP → parse → one line per message in a file, hekate against
//! syslog-ng and rsyslog on the same load in the same run.
//!
//! Each system listens on a port and writes the message text of every line it receives to a file
//! (`bench/configs/syslog.toml`, `bench/peers/syslog-ng.conf`, `bench/peers/rsyslog.conf`);
//! `hekate-flood --format syslog5424` sends, `hekate-sink --file … --follow` reads the file and
//! checks every stamp. hekate runs twice: with SyslogDecoder, and with Heka's own `rsyslog.lua`
//! (`bench/configs/syslog-lua.toml`) when a Heka share directory holding it is at hand
//! (`$HEKA_SHARE_DIR`, default `/usr/share/heka`): what switching to the native decoder gains.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::drive::{FloodSpec, Measured, finish_sink, run_flood, start_sink};
use super::hekate::HekateRun;
use super::peers::{self, render, version, wait_tcp};
use super::proc::Launch;
use super::report::{Row, Section};
use super::{Bench, Workload, have, latency_cell, si, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "syslog",
    about: "RFC 5424 over TCP → file: hekate vs syslog-ng and rsyslog",
    in_quick: true,
    run,
};

/// A system that receives lines on a TCP port and writes them to a file.
pub struct LineServer {
    /// Row label.
    pub label: String,
    /// Short name for logs.
    pub name: String,
    /// How to start it (config rendered, listening on `port`, writing `output`).
    pub launch: Launch,
    /// Its port.
    pub port: u16,
    /// The file it writes.
    pub output: PathBuf,
}

/// Sets up a line server in a directory, or says why it cannot run here.
type MakeServer = fn(&Bench, &Path) -> Result<LineServer, String>;

/// Sends `spec` to a line server and checks the file it writes.
pub fn measure(
    b: &Bench,
    server: LineServer,
    spec: &FloodSpec,
) -> Result<(Measured, Vec<String>), String> {
    let timeout = Duration::from_secs(b.pick(60, 120));
    let _ = std::fs::remove_file(&server.output);
    let mut p = server.launch.spawn(&b.opts.run_dir)?;
    wait_tcp(&mut p, server.port, Duration::from_secs(20))?;
    let args = vec![
        "--file".into(),
        server.output.display().to_string(),
        "--follow".into(),
        "--format".into(),
        "lines".into(),
        "--count".into(),
        spec.count.to_string(),
        "--idle".into(),
        "3s".into(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs()),
    ];
    let (mut sink, _) = start_sink(b, &format!("{}-sink", server.name), &b.cores.sink, args)?;
    let flooded = run_flood(
        b,
        &format!("{}-flood", server.name),
        &b.cores.generator,
        spec,
        &format!("127.0.0.1:{}", server.port),
        timeout,
    );
    let received = flooded
        .as_ref()
        .ok()
        .map(|_| finish_sink(&mut sink, timeout));
    p.stop(Duration::from_secs(10));
    let (flood, flood_cmd) = flooded?;
    let report = received.expect("the sink ran after a flood")?;
    let _ = std::fs::remove_file(&server.output);
    Ok((
        Measured::new(flood, report),
        vec![p.command.clone(), sink.command.clone(), flood_cmd],
    ))
}

fn row(
    b: &Bench,
    label: &str,
    outcome: Result<(Measured, Vec<String>), String>,
    reference: Option<f64>,
) -> (Row, Option<f64>) {
    let cores = format!(
        "flood {} · server {} · sink {}",
        b.cores.generator, b.cores.sut, b.cores.sink
    );
    match outcome {
        Err(e) => (Row::failed(label, e).cores(cores), None),
        Ok((m, commands)) => match m.verdict() {
            Err(why) => (
                Row::failed(label, why)
                    .commands(commands)
                    .cores(cores)
                    .data(m.data()),
                None,
            ),
            Ok(()) => {
                let rate = m.msg_per_s();
                let mb = m.sink.message_bytes as f64 / m.span_s().max(1e-9) / 1e6;
                let ratio = reference.map_or("1.00×".into(), |r| format!("{:.2}×", rate / r));
                let mut r = Row::ok(
                    label,
                    vec![
                        si(rate),
                        format!("{mb:.0}"),
                        ratio,
                        latency_cell(m.latency().as_ref()),
                        m.delivery_cell(),
                    ],
                );
                r.plot = Some(rate);
                r.latency = m.latency();
                (r.commands(commands).cores(cores).data(m.data()), Some(rate))
            }
        },
    }
}

/// RFC 3164 over UDP into hekate (`bench/configs/syslog-udp.toml`) at rising rates, each for a
/// few seconds, until datagrams are lost: the row is the highest rate with none lost, the note
/// says where loss began.
fn udp_ladder(b: &Bench, dir: &Path) -> (Row, String) {
    let label = "hekate, RFC 3164 over UDP (UdpInput → SyslogDecoder → FileOutput), highest rate \
                 with no loss";
    let secs = b.pick(1, 3) as f64;
    let rates: &[f64] = if b.quick() {
        &[50_000.0, 100_000.0]
    } else {
        &[
            100_000.0,
            200_000.0,
            300_000.0,
            400_000.0,
            500_000.0,
            600_000.0,
            800_000.0,
            1_000_000.0,
        ]
    };
    let mut best: Option<Row> = None;
    let mut tried = Vec::new();
    let mut stop = None;
    for &rate in rates {
        let server = match hekate_server(b, dir, "syslog-udp", label, &[]) {
            Ok(s) => s,
            Err(e) => return (Row::not_run(label, e), "RFC 3164 over UDP: not run.".into()),
        };
        let mut spec = FloodSpec::text("syslog3164", 2, (rate * secs) as u64, "250").at_rate(rate);
        spec.transport = "udp";
        match measure(b, server, &spec) {
            Err(e) => {
                stop = Some(format!("at {}: {e}", si(rate)));
                break;
            }
            Ok((m, commands)) => {
                let achieved = m.msg_per_s();
                tried.push(format!("{} → {}", si(rate), si(achieved)));
                if m.delivery.lost > 0 || m.delivery.duplicates > 0 {
                    stop = Some(format!(
                        "at {} msg/s {} of {} datagrams were lost",
                        si(rate),
                        thousands(m.delivery.lost),
                        thousands(m.delivery.sent)
                    ));
                    break;
                }
                let (mut r, _) = row(b, label, Ok((m, commands)), None);
                if let Some(c) = r.cells.get_mut(2) {
                    *c = "—".into();
                }
                best = Some(r);
                if achieved < 0.8 * rate {
                    stop = Some(format!(
                        "no loss; the generator could not send faster than {} msg/s (its \
                         ceiling here: UDP cannot push back, so hekate kept up with all of it)",
                        si(achieved)
                    ));
                    break;
                }
            }
        }
    }
    let note = format!(
        "RFC 3164 over UDP (2 senders paced at the rate, {secs:.0} s per rung, rungs asked → \
         delivered {}): {}; \
         UdpInput asks for an 8 MiB receive buffer (`receive_buffer_size`, capped by \
         `net.core.rmem_max`).",
        tried.join(", "),
        stop.unwrap_or_else(|| "no loss at any rung".into())
    );
    match best {
        Some(r) => (r, note),
        None => (
            Row::failed(label, "datagrams lost at the lowest rung"),
            note,
        ),
    }
}

/// hekate on `bench/configs/<config>.toml`, `hekate check`ed first.
fn hekate_server(
    b: &Bench,
    dir: &Path,
    config: &str,
    label: &str,
    vars: &[(&str, String)],
) -> Result<LineServer, String> {
    if let Some(why) = b.hekate.unavailable() {
        return Err(why.to_owned());
    }
    let port = b.free_port();
    let output = dir.join(format!("{config}.out"));
    let base = dir.join(config);
    let _ = std::fs::create_dir_all(&base);
    let mut run = HekateRun::new(config, &b.cores.sut, port, &base)
        .var("BENCH_OUTPUT_FILE", output.display().to_string());
    for (k, v) in vars {
        run = run.var(k, v.clone());
    }
    run.check(b)?;
    Ok(LineServer {
        label: label.to_owned(),
        name: config.to_owned(),
        launch: run.run_launch(b, &format!("{config}-hekate")),
        port,
        output,
    })
}

/// The Heka share directory holding `lua_decoders/rsyslog.lua` and Heka's Lua modules.
fn heka_share_dir() -> Result<String, String> {
    let dir = std::env::var("HEKA_SHARE_DIR").unwrap_or_else(|_| "/usr/share/heka".into());
    if Path::new(&dir).join("lua_decoders/rsyslog.lua").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "Heka's rsyslog.lua is not installed ({dir}/lua_decoders/rsyslog.lua; set \
             HEKA_SHARE_DIR to a Heka share directory with its lua_decoders and lua_modules)"
        ))
    }
}

fn syslog_ng(b: &Bench, dir: &Path) -> Result<LineServer, String> {
    if !have("syslog-ng") {
        return Err("syslog-ng not installed (scripts/peers installs it)".into());
    }
    let port = b.free_port();
    let conf = dir.join("syslog-ng.conf");
    let output = dir.join("syslog-ng.out");
    render(
        b,
        "syslog-ng.conf",
        &[
            ("PORT", port.to_string()),
            ("OUTPUT", output.display().to_string()),
            ("WORKDIR", dir.display().to_string()),
        ],
        &conf,
    )?;
    let _ = std::fs::remove_file(dir.join("syslog-ng.persist"));
    let launch = b
        .launch("syslog-ng", "syslog-ng")
        .cores(&b.cores.sut)
        .args([
            "-F".to_owned(),
            "--no-caps".to_owned(),
            "-f".to_owned(),
            conf.display().to_string(),
            "-R".to_owned(),
            dir.join("syslog-ng.persist").display().to_string(),
            "-p".to_owned(),
            dir.join("syslog-ng.pid").display().to_string(),
            "-c".to_owned(),
            dir.join("syslog-ng.ctl").display().to_string(),
        ]);
    let v = version("syslog-ng", &["--version"]);
    Ok(LineServer {
        label: format!("syslog-ng {v}"),
        name: "syslog-ng".into(),
        launch,
        port,
        output,
    })
}

fn rsyslog(b: &Bench, dir: &Path) -> Result<LineServer, String> {
    let (bin, modules) =
        peers::rsyslogd(b).ok_or("rsyslog not unpacked (run scripts/peers install)")?;
    let port = b.free_port();
    let conf = dir.join("rsyslog.conf");
    let output = dir.join("rsyslog.out");
    let work = dir.join("rsyslog-work");
    let _ = std::fs::create_dir_all(&work);
    render(
        b,
        "rsyslog.conf",
        &[
            ("PORT", port.to_string()),
            ("OUTPUT", output.display().to_string()),
            ("WORKDIR", work.display().to_string()),
        ],
        &conf,
    )?;
    let mut launch = b.launch("rsyslog", "rsyslogd").cores(&b.cores.sut).args([
        "-n".to_owned(),
        "-f".to_owned(),
        conf.display().to_string(),
        "-i".to_owned(),
        dir.join("rsyslog.pid").display().to_string(),
        "-M".to_owned(),
        modules.display().to_string(),
    ]);
    launch.program = bin.display().to_string();
    let v = version(&launch.program, &["-v"]);
    Ok(LineServer {
        label: format!("rsyslog {v}"),
        name: "rsyslog".into(),
        launch,
        port,
        output,
    })
}

/// Counts the lines of a growing file until there are `n`, or nothing new came for `idle`.
fn count_lines(path: &Path, n: u64, idle: Duration, timeout: Duration) -> (u64, Option<Instant>) {
    let start = Instant::now();
    let mut lines = 0;
    let mut last_growth = None;
    let mut buf = vec![0u8; 1 << 20];
    let mut file: Option<File> = None;
    while start.elapsed() < timeout {
        if file.is_none() {
            file = File::open(path).ok();
        }
        let got = file.as_mut().map_or(0, |f| f.read(&mut buf).unwrap_or(0));
        if got > 0 {
            lines += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
            last_growth = Some(Instant::now());
            if lines >= n {
                break;
            }
            continue;
        }
        if last_growth.is_some_and(|t| t.elapsed() >= idle) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (lines, last_growth)
}

/// loggen (syslog-ng's own generator) into syslog-ng, counting output lines: the load behind the
/// published anchor figure, for comparison with hekate-flood's.
fn loggen_row(b: &Bench, dir: &Path, n_per_conn: u64) -> Row {
    let label = "syslog-ng, loggen load (the published anchor's method)";
    if !have("loggen") {
        return Row::not_run(
            label,
            "loggen not installed (scripts/peers installs syslog-ng)",
        );
    }
    let attempt = || -> Result<(f64, u64, Vec<String>), String> {
        let server = syslog_ng(b, dir)?;
        let _ = std::fs::remove_file(&server.output);
        let mut p = server.launch.spawn(&b.opts.run_dir)?;
        wait_tcp(&mut p, server.port, Duration::from_secs(20))?;
        let n = n_per_conn * 2;
        let start = Instant::now();
        let mut loggen = b
            .launch("loggen", "loggen")
            .cores(&b.cores.generator)
            .args([
                "--inet".to_owned(),
                "--stream".to_owned(),
                "--active-connections=2".to_owned(),
                format!("--number={n_per_conn}"),
                "--size=250".to_owned(),
                "--rate=1000000000".to_owned(),
                "-P".to_owned(),
                "-F".to_owned(),
                "127.0.0.1".to_owned(),
                server.port.to_string(),
            ])
            .spawn(&b.opts.run_dir)?;
        let (lines, last) = count_lines(
            &server.output,
            n,
            Duration::from_secs(3),
            Duration::from_secs(120),
        );
        loggen.wait(Duration::from_secs(10));
        p.stop(Duration::from_secs(10));
        let _ = std::fs::remove_file(&server.output);
        if lines != n {
            return Err(format!(
                "{} of {} lines written",
                thousands(lines),
                thousands(n)
            ));
        }
        let secs = last.map_or(0.0, |t| (t - start).as_secs_f64());
        Ok((
            n as f64 / secs.max(1e-9),
            n,
            vec![p.command.clone(), loggen.command.clone()],
        ))
    };
    let cores = format!("loggen {} · syslog-ng {}", b.cores.generator, b.cores.sut);
    match attempt() {
        Ok((rate, n, commands)) => {
            let mut r = Row::ok(
                label,
                vec![
                    si(rate),
                    format!("{:.0}", rate * 250.0 / 1e6),
                    "—".into(),
                    "—".into(),
                    format!("{} lines counted", thousands(n)),
                ],
            );
            r.plot = Some(rate);
            r.reference = true;
            r.commands(commands)
                .cores(cores)
                .data(serde_json::json!({ "msg_per_s": rate, "lines": n }))
        }
        Err(e) => Row::failed(label, e).cores(cores),
    }
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "syslog",
        "syslog: RFC 5424 over TCP → file, vs syslog-ng and rsyslog",
        "RFC 5424 lines (~250 B, newline-framed) from `hekate-flood --format syslog5424` over 2 \
         TCP connections → each system parses them and writes the message text, one line each, \
         to a file → `hekate-sink` follows the file and checks every message. Same load, same \
         cores, same run; the peers push back instead of dropping (flow control). Target: ≥ 3× \
         syslog-ng and ≥ 1.5× rsyslog.",
        &[
            "msg/s",
            "MB/s",
            "vs syslog-ng",
            "latency p50 / p99 / p99.9",
            "delivery",
        ],
    );
    s.plot_unit = Some("msg/s".into());
    let dir = b.scratch("syslog");
    let n = b.pick(300_000, 1_500_000);
    let spec = FloodSpec::text("syslog5424", 2, n, "250");
    // The peers first: their rates are what hekate's rows are compared with.
    let mut peer_rows = Vec::new();
    let mut rates: Vec<(&str, f64)> = Vec::new();
    let mut reference = None;
    let servers: [(&str, MakeServer); 2] = [("syslog-ng", syslog_ng), ("rsyslog", rsyslog)];
    for (name, make) in servers {
        match make(b, &dir) {
            Ok(server) => {
                let label = server.label.clone();
                let (mut r, rate) = row(b, &label, measure(b, server, &spec), reference);
                reference = reference.or(rate);
                if let Some(rate) = rate {
                    rates.push((name, rate));
                }
                // Peers are drawn grey, hekate blue.
                r.reference = true;
                peer_rows.push(r);
            }
            Err(e) => peer_rows.push(Row::not_run(name, e)),
        }
    }
    let native =
        "hekate, SyslogDecoder (TcpInput → SyslogFramingSplitter → SyslogDecoder → FileOutput)";
    let lua = "hekate, Heka's rsyslog.lua (TcpInput → TokenSplitter → SandboxDecoder → FileOutput)";
    let hekate_rows = [
        (native, hekate_server(b, &dir, "syslog", native, &[])),
        (
            lua,
            heka_share_dir().and_then(|share| {
                hekate_server(
                    b,
                    &dir,
                    "syslog-lua",
                    lua,
                    &[("BENCH_HEKA_SHARE_DIR", share)],
                )
            }),
        ),
    ];
    for (label, server) in hekate_rows {
        match server {
            Ok(server) => {
                let (r, rate) = row(b, label, measure(b, server, &spec), reference);
                if let (Some(rate), true) = (rate, label == native) {
                    let ratios: Vec<String> = rates
                        .iter()
                        .map(|(peer, r)| format!("{:.2}× {peer}", rate / r))
                        .collect();
                    if !ratios.is_empty() {
                        s.notes.push(format!(
                            "hekate with SyslogDecoder: {} (target ≥ 3× syslog-ng, ≥ 1.5× \
                             rsyslog).",
                            ratios.join(", ")
                        ));
                    }
                }
                s.rows.push(r);
            }
            Err(e) => s.rows.push(Row::not_run(label, e)),
        }
    }
    s.rows.extend(peer_rows);
    if !b.quick() {
        s.rows.push(loggen_row(b, &dir, n / 2));
    }
    let (udp, note) = udp_ladder(b, &dir);
    s.rows.push(udp);
    s.notes.push(note);
    s.notes.push(format!(
        "Each system on core {}, the generator on core {}, the sink on core {}. The published \
         anchor (BENCHMARKS.md) is ~345k msg/s of 200 B for syslog-ng with loggen on the same \
         2 cores.",
        b.cores.sut, b.cores.generator, b.cores.sink
    ));
    s
}

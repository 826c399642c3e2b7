//! `hekate-sink`: receives a load sent by `hekate-flood` through a pipeline, checks every
//! message (loss, duplicates, reordering per connection), measures latency from the send times,
//! and prints a JSON summary.
//!
//! ```text
//! hekate-sink --listen tcp://127.0.0.1:5566 --count 1000000
//! hekate-sink --file /tmp/out.log --follow --format lines --idle 3s
//! hekate-sink --listen tcp://127.0.0.1:5566 --arrivals /tmp/arrivals.bin --idle 60m --timeout 60m
//! ```
//!
//! Once the source is open it prints `hekate-sink: listening on <source>` to stderr (with the
//! actual port when port 0 was asked for).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hekate_bench::parse::LineFraming;
use hekate_bench::sink::{self, SinkConfig, SinkFormat, Source};
use regex::Regex;

/// Receive and check a hekate-flood load.
#[derive(Parser, Debug)]
#[command(name = "hekate-sink", version)]
struct Args {
    /// Listen on `tcp://host:port` or `udp://host:port` (port 0: any free port).
    #[arg(long, conflicts_with = "file")]
    listen: Option<String>,
    /// Read this file instead.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Keep reading the file as it grows (waiting for it to appear).
    #[arg(long, requires = "file")]
    follow: bool,
    /// heka (framed protobuf), lines, octet-lines (RFC 6587), or carbon (graphite plaintext).
    #[arg(long, default_value = "heka")]
    format: String,
    /// carbon: sum the values of paths matching this regex.
    #[arg(long, default_value = ".")]
    carbon_match: String,
    /// Stop after this many stamped messages (carbon: once the sum reaches it).
    #[arg(long)]
    count: Option<u64>,
    /// Stop when nothing new arrived for this long after the first message.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    idle: Duration,
    /// Stop after this long in any case.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    timeout: Duration,
    /// Log every stamped message (connection, sequence number, receive time) to this file, in
    /// the binary layout of `hekate_bench::arrivals`.
    #[arg(long)]
    arrivals: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hekate_bench::harness::parse_duration(s)
}

fn resolve(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("bad address `{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("address `{s}` resolves to nothing"))
}

fn run(args: Args) -> Result<(), String> {
    let source = match (&args.listen, &args.file) {
        (Some(l), None) => {
            if let Some(a) = l.strip_prefix("tcp://") {
                Source::Tcp(resolve(a)?)
            } else if let Some(a) = l.strip_prefix("udp://") {
                Source::Udp(resolve(a)?)
            } else {
                return Err(format!(
                    "--listen `{l}` is not tcp://host:port or udp://host:port"
                ));
            }
        }
        (None, Some(path)) => Source::File {
            path: path.clone(),
            follow: args.follow,
        },
        _ => return Err("give --listen or --file".into()),
    };
    let format = match args.format.as_str() {
        "heka" => SinkFormat::Heka,
        "lines" => SinkFormat::Lines(LineFraming::Newline),
        "octet-lines" => SinkFormat::Lines(LineFraming::OctetCounted),
        "carbon" => SinkFormat::Carbon(
            Regex::new(&args.carbon_match).map_err(|e| format!("bad --carbon-match: {e}"))?,
        ),
        other => {
            return Err(format!(
                "unknown format `{other}` (heka, lines, octet-lines, carbon)"
            ));
        }
    };
    let cfg = SinkConfig {
        source,
        format,
        count: args.count,
        idle: args.idle,
        timeout: args.timeout,
        arrivals: args.arrivals,
    };
    let report = sink::run(&cfg, |at| eprintln!("hekate-sink: listening on {at}"))
        .map_err(|e| format!("cannot open {}: {e}", cfg.source))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => {
            // Reader threads may still block on open connections; the report is out.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("hekate-sink: {e}");
            ExitCode::FAILURE
        }
    }
}

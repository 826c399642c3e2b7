//! `hekate-flood`: sends a bounded, checkable load — Heka protobuf, syslog, statsd, JSON or nginx
//! access lines — over N TCP or UDP connections, and prints what it sent as JSON.
//!
//! ```text
//! hekate-flood --address 127.0.0.1:5565 --connections 2 --count 1000000 --size 300
//! hekate-flood --format syslog5424 --framing octet --address 127.0.0.1:5514 --duration 5s --rate 100000
//! hekate-flood --address 127.0.0.1:5565 --rate 20000 --duration 60m --reconnect   # until SIGTERM
//! ```
//!
//! SIGTERM or SIGINT stops sending; the report of what was sent is printed as usual.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hekate_bench::flood::{self, FloodConfig, Transport};
use hekate_bench::load::{Format, Framing, LoadSpec};
use hekate_bench::sizes::SizeDist;
use hekate_model::framing::{SigningKey, hash_function_from_name};

/// Send a bounded, checkable load. Every message carries its connection id, a sequence number and
/// its send time (Heka: fields `conn`, `seq`, `sent_ns`; text: `conn=… seq=… sent_ns=…`).
#[derive(Parser, Debug)]
#[command(name = "hekate-flood", version)]
struct Args {
    /// Message format: heka, syslog3164, syslog5424, statsd, json, nginx.
    #[arg(long, default_value = "heka")]
    format: Format,
    /// Text line framing over streams: newline, or octet (RFC 6587 octet counting).
    #[arg(long, default_value = "newline")]
    framing: Framing,
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    transport: Transport,
    /// Destination host:port.
    #[arg(long, default_value = "127.0.0.1:5565")]
    address: String,
    /// Number of connections, one thread each.
    #[arg(long, default_value_t = 1)]
    connections: u32,
    /// Connection id of the first connection (give each concurrent flood its own range).
    #[arg(long, default_value_t = 0)]
    conn_base: u32,
    /// Messages to send in total.
    #[arg(long)]
    count: Option<u64>,
    /// How long to send, e.g. `5s`, `500ms`.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Messages per second in total (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Message sizes in bytes: `300`, `200-400`, or `200:70,1000:25,8000:5`.
    #[arg(long, default_value = "300")]
    size: SizeDist,
    /// Sign Heka records: `name:version:hash:key`, hash md5 or sha1.
    #[arg(long)]
    signer: Option<String>,
    /// statsd: carry conn/seq/sent_ns as DogStatsD tags (`|#conn:…`).
    #[arg(long)]
    statsd_tags: bool,
    /// Bytes per TCP write.
    #[arg(long, default_value_t = 256 * 1024)]
    batch_bytes: usize,
    /// How long to retry connecting while the receiver starts.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Give up when a TCP write makes no progress for this long (the receiver stopped reading).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    stall_timeout: Duration,
    /// Seed of the message contents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// When a TCP connection fails (the receiver was killed), connect again (patience:
    /// --connect-timeout) and go on with the next sequence number.
    #[arg(long)]
    reconnect: bool,
    /// UDP: pack consecutive records into datagrams of up to this many bytes (statsd clients
    /// buffer metrics up to the MTU); 0 sends one record per datagram.
    #[arg(long, default_value_t = 0)]
    udp_pack: usize,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hekate_bench::harness::parse_duration(s)
}

fn parse_signer(s: &str) -> Result<SigningKey, String> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    let [name, version, hash, key] = parts[..] else {
        return Err(format!("signer `{s}` is not name:version:hash:key"));
    };
    let version = version
        .parse()
        .map_err(|_| format!("signer version `{version}` is not a number"))?;
    Ok(SigningKey::new(
        name,
        version,
        hash_function_from_name(hash),
        key.as_bytes(),
    ))
}

fn run(args: Args) -> Result<(), String> {
    let address: SocketAddr = args
        .address
        .to_socket_addrs()
        .map_err(|e| format!("bad address `{}`: {e}", args.address))?
        .next()
        .ok_or_else(|| format!("address `{}` resolves to nothing", args.address))?;
    let signer = args.signer.as_deref().map(parse_signer).transpose()?;
    let cfg = FloodConfig {
        load: LoadSpec {
            format: args.format,
            framing: args.framing,
            sizes: args.size,
            signer,
            seed: args.seed,
            statsd_tags: args.statsd_tags,
        },
        transport: args.transport,
        address,
        connections: args.connections,
        conn_base: args.conn_base,
        count: args.count,
        duration: args.duration,
        rate: args.rate,
        batch_bytes: args.batch_bytes,
        connect_timeout: args.connect_timeout,
        stall_timeout: Some(args.stall_timeout),
        reconnect: args.reconnect,
        udp_pack: args.udp_pack,
    };
    let report = flood::run(&cfg).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(report.errors.join("; "))
    }
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    flood::request_stop();
}

fn main() -> ExitCode {
    // SIGTERM / SIGINT: stop sending and print the report of what was sent.
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hekate-flood: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The generator and the sink agree over real loopback sockets: everything sent is received once,
//! in order, with plausible latencies; and the sink notices what a faulty pipeline does.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hekate_bench::check::Delivery;
use hekate_bench::flood::{self, FloodConfig, FloodReport, Transport};
use hekate_bench::load::{Format, Framing, LoadSpec, Ring};
use hekate_bench::parse::LineFraming;
use hekate_bench::sink::{self, SinkConfig, SinkFormat, SinkReport, Source};
use hekate_model::framing::SigningKey;
use hekate_model::message::HmacHashFunction;

/// Starts a sink on an ephemeral port; returns its address and a handle to its report.
fn start_sink(mut cfg: SinkConfig, udp: bool) -> (SocketAddr, thread::JoinHandle<SinkReport>) {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.source = if udp {
        Source::Udp(any)
    } else {
        Source::Tcp(any)
    };
    cfg.idle = Duration::from_millis(500);
    cfg.timeout = Duration::from_secs(30);
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        sink::run(&cfg, |at| {
            let addr = at
                .split_once("://")
                .unwrap()
                .1
                .parse::<SocketAddr>()
                .unwrap();
            tx.send(addr).unwrap();
        })
        .unwrap()
    });
    (rx.recv().unwrap(), handle)
}

fn round_trip(
    load: LoadSpec,
    format: SinkFormat,
    transport: Transport,
    connections: u32,
    count: u64,
) -> (FloodReport, SinkReport) {
    let (addr, sink) = start_sink(
        SinkConfig {
            format,
            count: Some(count),
            ..SinkConfig::heka_tcp()
        },
        transport == Transport::Udp,
    );
    let mut cfg = FloodConfig::new(load, addr, count);
    cfg.transport = transport;
    cfg.connections = connections;
    if transport == Transport::Udp {
        // Loopback UDP drops when the receiver falls behind: keep the rate modest.
        cfg.rate = Some(50_000.0);
    }
    let sent = flood::run(&cfg).unwrap();
    (sent, sink.join().unwrap())
}

fn assert_clean(sent: &FloodReport, got: &SinkReport, count: u64) {
    assert!(sent.errors.is_empty(), "{:?}", sent.errors);
    assert_eq!(sent.sent, count);
    let d = Delivery::compare(&sent.sent_by_conn(), &got.check);
    assert!(d.ok(), "{d:?}\n{got:#?}");
    assert_eq!(got.exit, "count");
    assert_eq!(got.received, count);
    assert_eq!(got.foreign, 0);
    assert_eq!(
        got.check.late, 0,
        "one TCP stream per connection keeps order"
    );
    assert_eq!(got.framing.skipped_bytes, 0);
    assert_eq!(got.message_bytes, sent.message_bytes);
    let lat = got.latency.unwrap();
    assert_eq!(lat.count, count);
    assert!(lat.min_us > 0.0 && lat.max_us < 30e6, "{lat:?}");
}

#[test]
fn heka_over_tcp_with_three_connections() {
    let load = LoadSpec {
        sizes: "200-2000".parse().unwrap(),
        ..LoadSpec::default()
    };
    let (sent, got) = round_trip(load, SinkFormat::Heka, Transport::Tcp, 3, 30_000);
    assert_clean(&sent, &got, 30_000);
    assert_eq!(got.connections, 3);
    assert_eq!(got.check.connections.len(), 3);
    assert_eq!(
        sent.connections.iter().map(|c| c.sent).collect::<Vec<_>>(),
        [10_000; 3]
    );
}

#[test]
fn signed_heka_over_tcp() {
    let load = LoadSpec {
        signer: Some(SigningKey::new("bench", 1, HmacHashFunction::Md5, b"key")),
        ..LoadSpec::default()
    };
    let (sent, got) = round_trip(load, SinkFormat::Heka, Transport::Tcp, 1, 5_000);
    assert_clean(&sent, &got, 5_000);
}

#[test]
fn syslog_lines_with_octet_counting_and_json_lines() {
    let load = LoadSpec {
        format: Format::Syslog5424,
        framing: Framing::OctetCounted,
        ..LoadSpec::default()
    };
    let (sent, got) = round_trip(
        load,
        SinkFormat::Lines(LineFraming::OctetCounted),
        Transport::Tcp,
        2,
        10_000,
    );
    assert_clean(&sent, &got, 10_000);

    let load = LoadSpec {
        format: Format::Json,
        sizes: "400".parse().unwrap(),
        ..LoadSpec::default()
    };
    let (sent, got) = round_trip(
        load,
        SinkFormat::Lines(LineFraming::Newline),
        Transport::Tcp,
        1,
        10_000,
    );
    assert_clean(&sent, &got, 10_000);
}

#[test]
fn heka_and_statsd_over_udp_at_a_rate() {
    let (sent, got) = round_trip(
        LoadSpec::default(),
        SinkFormat::Heka,
        Transport::Udp,
        2,
        5_000,
    );
    assert_clean(&sent, &got, 5_000);
    assert!(
        sent.elapsed_s > 0.05,
        "the rate is respected: {}",
        sent.elapsed_s
    );

    let load = LoadSpec {
        format: Format::Statsd,
        statsd_tags: true,
        ..LoadSpec::default()
    };
    let (sent, got) = round_trip(
        load,
        SinkFormat::Lines(LineFraming::Newline),
        Transport::Udp,
        1,
        2_000,
    );
    assert_clean(&sent, &got, 2_000);
}

#[test]
fn a_rate_limited_duration_run_sends_about_rate_times_duration() {
    let (addr, sink) = start_sink(SinkConfig::heka_tcp(), false);
    let mut cfg = FloodConfig::new(LoadSpec::default(), addr, 0);
    cfg.count = None;
    cfg.duration = Some(Duration::from_millis(500));
    cfg.rate = Some(20_000.0);
    let sent = flood::run(&cfg).unwrap();
    assert!((9_000..=11_000).contains(&sent.sent), "{}", sent.sent);
    let got = sink.join().unwrap();
    assert_eq!(got.exit, "idle");
    assert!(Delivery::compare(&sent.sent_by_conn(), &got.check).ok());
}

/// A misbehaving pipeline: forwards records of one connection but drops one, repeats one and
/// swaps two.
#[test]
fn the_sink_reports_loss_duplicates_and_reordering() {
    let (addr, sink) = start_sink(SinkConfig::heka_tcp(), false);
    let mut ring = Ring::build(&LoadSpec::default(), 4, 0).unwrap();
    let mut stream = Vec::new();
    let order = [0u64, 1, 2, 4, 3, 5, 5, 7, 8, 9]; // 6 lost, 5 twice, 3 and 4 swapped
    for (i, seq) in order.iter().enumerate() {
        ring.stamp(i, *seq, flood::now_ns());
        stream.extend_from_slice(ring.record(i));
    }
    TcpStream::connect(addr)
        .unwrap()
        .write_all(&stream)
        .unwrap();
    let got = sink.join().unwrap();
    assert_eq!(got.received, 10);
    assert_eq!(got.check.duplicates, 1);
    assert_eq!(got.check.late, 1);
    assert_eq!(got.check.gaps, 1);
    let d = Delivery::compare(&[(4, 10)], &got.check);
    assert_eq!((d.lost, d.duplicates, d.reordered), (1, 1, 1));
    assert!(!d.ok());
    assert_eq!(d.problem().unwrap(), "1 of 10 messages lost, 1 duplicates");
}

/// A receiver that accepts and then never reads makes the flood give up quickly with a clear
/// reason, instead of hanging until an outer timeout.
#[test]
fn a_stalled_receiver_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = thread::spawn(move || listener.accept().map(|(s, _)| s));
    let mut cfg = FloodConfig::new(LoadSpec::default(), addr, 10_000_000);
    cfg.stall_timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let sent = flood::run(&cfg).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(sent.errors.len(), 1, "{:?}", sent.errors);
    assert!(sent.errors[0].contains("no progress"), "{}", sent.errors[0]);
    assert!(sent.sent < 10_000_000);
    drop(hold.join());
}

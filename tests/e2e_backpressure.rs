//! Back-pressure and shutdown under load, through the real binary.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A slow output back-pressures: the sender is blocked, resident memory stays bounded, and once
/// the output drains every message is delivered, none lost.
#[test]
fn a_slow_output_blocks_the_sender_and_loses_nothing() {
    let dir = temp_dir("backpressure");
    let port = free_tcp_port();
    let sink = Sink::start(true);
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
ring_capacity = 4
batch_size = 64

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "TRUE"
use_buffering = false
address = "{sink}"
"#,
        base = dir.join("base").display(),
        sink = sink.addr,
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let baseline_rss = hekate.rss_kib();

    // 120 MB of 1 KiB messages: far more than every socket buffer on the way can hold.
    const MESSAGES: u64 = 120_000;
    const CHUNK: u64 = 200;
    let sent = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&sent);
    let sender = std::thread::spawn(move || {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for c in 0..MESSAGES / CHUNK {
            let bytes = framed((c * CHUNK..(c + 1) * CHUNK).map(|seq| message("bp", 0, seq, 1000)));
            conn.write_all(&bytes).unwrap();
            s.store((c + 1) * CHUNK, Ordering::Release);
        }
    });

    // The sender stalls: no progress over two whole seconds, well short of the end. (One second
    // is not enough on a loaded machine: hekate may still be working through what it read.)
    let mut stalled_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut still = 0;
    let mut before = sent.load(Ordering::Acquire);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let after = sent.load(Ordering::Acquire);
        still = if after == before && after > 0 {
            still + 1
        } else {
            0
        };
        before = after;
        if still == 2 {
            stalled_at = Some(after);
            break;
        }
    }
    let stalled_at = stalled_at.expect("the sender was never blocked");
    assert!(
        stalled_at < MESSAGES / 2,
        "the sender got {stalled_at} of {MESSAGES} messages through"
    );
    // While the sender is blocked, hekate's memory is bounded and levels off: what it holds is
    // the rings (bounded) and, in the TcpOutput, what it wrote into sockets that the paused sink
    // does not confirm (at most 16 MiB). Sampled for four seconds, as the kernel's socket
    // buffers may still grow at first.
    let samples: Vec<u64> = (0..8)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            hekate.rss_kib()
        })
        .collect();
    eprintln!(
        "sender blocked after {stalled_at} of {MESSAGES} messages; RSS {baseline_rss} KiB idle, then {samples:?} KiB every 0.5 s while blocked"
    );
    let peak = samples.iter().copied().max().unwrap();
    assert!(
        peak < baseline_rss + 64 * 1024,
        "resident memory grew from {baseline_rss} KiB to {peak} KiB"
    );
    // It moves up and down as chunks are written and freed; its peak does not climb.
    let first = samples[..4].iter().copied().max().unwrap();
    let second = samples[4..].iter().copied().max().unwrap();
    assert!(
        second <= first + 2 * 1024,
        "resident memory kept growing while the sender was blocked: {samples:?} KiB"
    );

    sink.resume();
    sender.join().unwrap();
    assert_eq!(sent.load(Ordering::Acquire), MESSAGES);
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    let got = parse_stream(&sink.received.lock().unwrap());
    let seqs: Vec<u64> = got.iter().filter_map(conn_seq).map(|c| c.1).collect();
    assert_eq!(seqs.len() as u64, MESSAGES, "messages lost or duplicated");
    assert!(
        seqs.iter().copied().eq(0..MESSAGES),
        "messages out of order"
    );
}

/// SIGTERM under load: every message read from a socket before the signal reaches the outputs
/// before exit, and hekate exits 0 in bounded time.
#[test]
fn sigterm_under_load_delivers_everything_read() {
    let dir = temp_dir("sigterm");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[FileOutput]
message_matcher = "TRUE"
path = "out.hekad"
flush_interval = 50

[CounterFilter]
message_matcher = "Type == 'load'"
ticker_interval = 1
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4u32)
        .map(|conn| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut seq = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let bytes = framed((seq..seq + 100).map(|q| message("load", conn, q, 200)));
                    if s.write_all(&bytes).is_err() {
                        break;
                    }
                    seq += 100;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let status = hekate.terminate();
    let took = signalled.elapsed();
    stop.store(true, Ordering::Release);
    for s in senders {
        s.join().unwrap();
    }
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(
        !hekate.stderr().contains("could not deliver"),
        "{}",
        hekate.stderr()
    );

    // What was read is a prefix of each connection's stream: contiguous, no gap, no duplicate.
    let out = read_stream(&dir.join("base").join("out.hekad"));
    let mut next: HashMap<u32, u64> = HashMap::new();
    for m in out.iter().filter(|m| m.r#type.as_deref() == Some("load")) {
        let (conn, seq) = conn_seq(m).unwrap();
        let want = next.entry(conn).or_default();
        assert_eq!(seq, *want, "connection {conn}: a gap or a duplicate");
        *want += 1;
    }
    let total: u64 = next.values().sum();
    assert!(
        total > 1000,
        "only {total} messages arrived before the signal"
    );
}

/// An output that cannot drain by the shutdown timeout does not hold hekate: it exits with
/// status 2 (messages were lost) and says how many messages were left, and where.
#[test]
fn an_output_that_cannot_drain_is_reported_at_shutdown() {
    let dir = temp_dir("undrained");
    let port = free_tcp_port();
    // Nothing listens there: the output retries forever.
    let dead = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "TRUE"
use_buffering = false
address = "127.0.0.1:{dead}"
"#,
        base = dir.join("base").display(),
    );
    let mut hekate =
        Hekate::start_with_env(&dir, &config, &[port], &[("HEKATE_SHUTDOWN_TIMEOUT", "1")]);
    send_tcp(port, &framed((0..50).map(|s| message("lost", 0, s, 10))));
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    let status = hekate.terminate();
    // Messages were dropped: the exit status says so.
    assert_eq!(status.code(), Some(2), "{status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    let stderr = hekate.stderr();
    assert!(
        stderr.contains("output 'upstream' (TcpOutput) on core")
            && stderr.contains("could not deliver 50 messages"),
        "{stderr}"
    );
}

/// A second SIGTERM ends a shutdown that waits for an output, at once.
#[test]
fn a_second_signal_ends_the_shutdown_wait() {
    let dir = temp_dir("second-signal");
    let port = free_tcp_port();
    let dead = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "TRUE"
use_buffering = false
address = "127.0.0.1:{dead}"
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..5).map(|s| message("lost", 0, s, 10))));
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    hekate.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    hekate.signal(libc::SIGTERM);
    let status = hekate.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        hekate.stderr().contains("could not deliver 5 messages"),
        "{}",
        hekate.stderr()
    );
}

/// Two filters fed by one router, with lanes far smaller than one read's worth of messages. A
/// filter's runner flushes the router it shares with the input after each batch; it used to wait
/// for room in every lane but its own, so two filters could each wait for the other's full lane
/// and never take from their own again: the pipeline wedged with "the router still held messages
/// waiting for a full lane". Run on one worker core (every task on one router), then on two
/// (the filters' home shards spread over both, every router feeding each of them).
#[test]
fn filters_sharing_a_router_never_wait_for_each_other() {
    let cores = hekate_engine::runtime::allowed_cores();
    let mut layouts = vec![format!(
        "worker_cores = [{0}]\ncoordinator_core = {0}",
        cores[0]
    )];
    if cores.len() >= 2 {
        layouts.push(format!("worker_cores = [{}, {}]", cores[0], cores[1]));
    }
    for (i, layout) in layouts.iter().enumerate() {
        let dir = temp_dir(&format!("filter-cycle{i}"));
        let port = free_tcp_port();
        let config = format!(
            r#"
[hekate]
base_dir = "{base}"
{layout}
ring_capacity = 2
batch_size = 4

[TcpInput]
address = "127.0.0.1:{port}"

[FileOutput]
message_matcher = "Type == 'load'"
path = "out.hekad"
flush_interval = 50

[count_a]
type = "CounterFilter"
message_matcher = "Type == 'load'"
ticker_interval = 60

[count_b]
type = "CounterFilter"
message_matcher = "Type == 'load'"
ticker_interval = 60

[count_c]
type = "CounterFilter"
message_matcher = "Type == 'load'"
ticker_interval = 60
"#,
            base = dir.join("base").display(),
        );
        let mut hekate =
            Hekate::start_with_env(&dir, &config, &[port], &[("HEKATE_SHUTDOWN_TIMEOUT", "2")]);
        const MESSAGES: u64 = 20_000;
        let sender = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            for c in 0..MESSAGES / 1000 {
                let bytes = framed((c * 1000..(c + 1) * 1000).map(|s| message("load", 0, s, 100)));
                conn.write_all(&bytes)
                    .map_err(|e| format!("message {}: {e}", c * 1000))?;
            }
            Ok::<(), String>(())
        });
        let path = dir.join("base").join("out.hekad");
        let all = wait_for(Duration::from_secs(30), || {
            read_stream(&path).len() as u64 >= MESSAGES
        });
        let sent = sender.join().unwrap();
        let status = hekate.terminate();
        let stderr = hekate.stderr();
        assert!(
            all && sent.is_ok(),
            "{layout}: the pipeline stalled (sender: {sent:?}, {} messages written)\n{stderr}",
            read_stream(&path).len()
        );
        assert!(status.success(), "{status}\n{stderr}");
        assert!(!stderr.contains("could not deliver"), "{stderr}");
        assert!(!stderr.contains("still held"), "{stderr}");
        let seqs: Vec<u64> = read_stream(&path)
            .iter()
            .filter_map(conn_seq)
            .map(|c| c.1)
            .collect();
        assert!(
            seqs.iter().copied().eq(0..MESSAGES),
            "{layout}: lost or reordered"
        );
    }
}

//! Outputs that cannot stall each other (`full_action`) and outputs behind a disk queue
//! (`use_buffering`), through the real binary.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Sends `n` messages of type `ty` (about `size` bytes each) on one connection.
fn send_load(port: u16, ty: &str, n: u64, size: usize) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for c in 0..n.div_ceil(500) {
        let end = ((c + 1) * 500).min(n);
        let bytes = framed((c * 500..end).map(|s| message(ty, 0, s, size)));
        conn.write_all(&bytes)
            .unwrap_or_else(|e| panic!("message {}: {e}", c * 500));
    }
}

/// A TcpOutput whose upstream accepts and never reads, with `full_action = "drop"` and no disk
/// queue: its lane fills and what it cannot take is dropped and counted, while the FileOutput
/// beside it gets every message — the inputs never stop reading for the dead upstream.
#[test]
fn a_dead_upstream_that_drops_does_not_stall_a_file_output() {
    let dir = temp_dir("full-drop");
    let port = free_tcp_port();
    // Accepts, never reads.
    let upstream = Sink::start(true);
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
ring_capacity = 4
batch_size = 64
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "Type == 'load'"
address = "{upstream}"
use_buffering = false

[upstream.buffering]
full_action = "drop"

[file]
type = "FileOutput"
message_matcher = "Type == 'load'"
path = "out.hekad"
flush_interval = 50

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        upstream = upstream.addr,
    );
    let mut hekate =
        Hekate::start_with_env(&dir, &config, &[port], &[("HEKATE_SHUTDOWN_TIMEOUT", "1")]);
    // 30 MB: far more than the socket buffers towards the upstream hold.
    const MESSAGES: u64 = 30_000;
    send_load(port, "load", MESSAGES, 1000);
    let out = dir.join("base").join("out.hekad");
    let all = wait_for(Duration::from_secs(30), || {
        read_stream(&out).len() as u64 >= MESSAGES
    });
    assert!(
        all,
        "the file output got {} of {MESSAGES}\n{}",
        read_stream(&out).len(),
        hekate.stderr()
    );
    let seqs: Vec<u64> = read_stream(&out)
        .iter()
        .filter_map(conn_seq)
        .map(|c| c.1)
        .collect();
    assert!(seqs.iter().copied().eq(0..MESSAGES), "lost or reordered");

    let reports = dir.join("base").join("reports.hekad");
    let mut dropped = 0;
    let reported = wait_for(Duration::from_secs(10), || {
        dropped = last_report(&reports)
            .and_then(|r| report_value(&r, "outputs", "upstream", "DroppedCount"))
            .unwrap_or(0);
        dropped > 0
    });
    let stderr = hekate.stderr();
    assert!(reported, "no drop reported for the upstream\n{stderr}");
    assert!(
        stderr.contains("Output 'upstream'") && stderr.contains("full_action = \"drop\""),
        "{stderr}"
    );
    eprintln!("the dead upstream dropped {dropped} of {MESSAGES} messages");
    hekate.terminate();
}

/// `full_action = "shutdown"` on an output whose upstream never reads: when its queue is full,
/// hekate stops on its own, says which output and why, and exits 1 for its supervisor.
#[test]
fn a_full_output_with_full_action_shutdown_stops_hekate() {
    let dir = temp_dir("full-shutdown");
    let port = free_tcp_port();
    // Accepts, never reads.
    let upstream = Sink::start(true);
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
message_matcher = "Type == 'load'"
address = "{upstream}"
use_buffering = false

[upstream.buffering]
full_action = "shutdown"
"#,
        base = dir.join("base").display(),
        upstream = upstream.addr,
    );
    let mut hekate =
        Hekate::start_with_env(&dir, &config, &[port], &[("HEKATE_SHUTDOWN_TIMEOUT", "1")]);
    // The sender may see its connection closed once hekate stops: that is the point.
    let _ = std::panic::catch_unwind(|| send_load(port, "load", 30_000, 1000));
    let status = hekate.wait(Duration::from_secs(30));
    let stderr = hekate.stderr();
    assert_eq!(status.code(), Some(1), "{status}\n{stderr}");
    assert!(
        stderr.contains("Output 'upstream'")
            && stderr.contains("full_action is \"shutdown\"")
            && stderr.contains("hekate: stopped on its own"),
        "{stderr}"
    );
}

/// A config with a TcpInput on `port`, a buffered TcpOutput `upstream` to 127.0.0.1:`up`
/// retrying quickly, a FileOutput beside it and the JSON reports in a file.
fn buffered_config(base: &Path, port: u16, up: u16) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"
ring_capacity = 4
batch_size = 64
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "Type == 'load'"
address = "127.0.0.1:{up}"

[upstream.retries]
delay = "100ms"
max_delay = "300ms"
max_jitter = "10ms"

[file]
type = "FileOutput"
message_matcher = "Type == 'load'"
path = "out.hekad"
flush_interval = 50

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = base.display(),
    )
}

/// Waits until the newest report says `upstream`'s `key` is `want`.
fn wait_report(reports: &Path, key: &str, want: i64, secs: u64) -> bool {
    wait_for(Duration::from_secs(secs), || {
        last_report(reports).and_then(|r| report_value(&r, "outputs", "upstream", key))
            == Some(want)
    })
}

/// The sequence numbers a sink received, in order.
fn received_seqs(sink: &Sink) -> Vec<u64> {
    parse_stream(&sink.received.lock().unwrap())
        .iter()
        .filter_map(conn_seq)
        .map(|c| c.1)
        .collect()
}

/// The upstream is down: the buffered TcpOutput keeps taking messages into its disk queue and
/// the FileOutput beside it gets every one; once the upstream comes up, every message arrives
/// once, in order. The queue reads with `hekate queue check` and `hekate cat` while hekate runs.
#[test]
fn a_buffered_output_queues_while_the_upstream_is_down_then_delivers_in_order() {
    let dir = temp_dir("buffered-down");
    let port = free_tcp_port();
    let up = free_tcp_port();
    let base = dir.join("base");
    let mut hekate = Hekate::start(&dir, &buffered_config(&base, port, up), &[port]);
    const MESSAGES: u64 = 5_000;
    send_load(port, "load", MESSAGES, 500);
    let out = base.join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(30), || read_stream(&out).len() as u64
            >= MESSAGES),
        "the file output got {} of {MESSAGES} while the upstream was down\n{}",
        read_stream(&out).len(),
        hekate.stderr()
    );
    let reports = base.join("reports.hekad");
    assert!(
        wait_report(&reports, "QueueRecords", MESSAGES as i64, 15),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );

    // (3) The queue of the running output reads with the queue tools.
    let qdir = base.join("output_queue").join("upstream");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["queue", "check"])
        .arg(&qdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains(&format!("{MESSAGES} pending")), "{text}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["cat", "--format", "count"])
        .arg(qdir.join("0.log"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        MESSAGES.to_string()
    );

    // The upstream comes up: the backlog goes, in order.
    let sink = Sink::start_on(up, false);
    assert!(
        wait_report(&reports, "WrittenCount", MESSAGES as i64, 30),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    assert!(wait_report(&reports, "QueueRecords", 0, 10));
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    let seqs = received_seqs(&sink);
    assert!(
        wait_for(Duration::from_secs(5), || received_seqs(&sink).len() as u64
            >= MESSAGES),
        "the upstream got {} of {MESSAGES}",
        seqs.len()
    );
    let seqs = received_seqs(&sink);
    assert!(
        seqs.iter().copied().eq(0..MESSAGES),
        "lost, duplicated or reordered: {} received",
        seqs.len()
    );
}

/// kill -9 with a backlog in the queue: after the restart the upstream gets every message.
/// Duplicates could only be what was in flight; with the upstream down there was none.
#[test]
fn a_backlog_survives_kill_9_and_is_delivered_after_restart() {
    let dir = temp_dir("buffered-kill");
    let port = free_tcp_port();
    let up = free_tcp_port();
    let base = dir.join("base");
    let config = buffered_config(&base, port, up);
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    const MESSAGES: u64 = 3_000;
    send_load(port, "load", MESSAGES, 500);
    let reports = base.join("reports.hekad");
    assert!(
        wait_report(&reports, "QueueRecords", MESSAGES as i64, 30),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    hekate.child.kill().unwrap();
    hekate.child.wait().unwrap();
    std::fs::remove_file(&reports).unwrap();

    let sink = Sink::start_on(up, false);
    let dir2 = temp_dir("buffered-kill-restart");
    let mut hekate = Hekate::start(&dir2, &config, &[port]);
    assert!(
        wait_report(&reports, "QueueRecords", 0, 30),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    assert!(
        hekate
            .stderr()
            .contains("from an earlier run are delivered first"),
        "{}",
        hekate.stderr()
    );
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    wait_for(Duration::from_secs(5), || {
        received_seqs(&sink).len() as u64 >= MESSAGES
    });
    let seqs = received_seqs(&sink);
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    let duplicates = seqs.len() - unique.len();
    eprintln!(
        "after kill -9: {} received, {duplicates} duplicates",
        seqs.len()
    );
    assert!(unique.iter().copied().eq(0..MESSAGES), "messages lost");
    assert_eq!(duplicates, 0, "nothing was in flight");
    let _ = std::fs::remove_dir_all(&dir);
}

/// At shutdown with the upstream down, the queued messages stay on disk: not lost (exit 0),
/// and the log says where they are.
#[test]
fn a_shutdown_keeps_the_queue_and_loses_nothing() {
    let dir = temp_dir("buffered-shutdown");
    let port = free_tcp_port();
    let up = free_tcp_port();
    let base = dir.join("base");
    let mut hekate = Hekate::start(&dir, &buffered_config(&base, port, up), &[port]);
    send_load(port, "load", 100, 100);
    let reports = base.join("reports.hekad");
    assert!(wait_report(&reports, "QueueRecords", 100, 30));
    let status = hekate.terminate();
    let stderr = hekate.stderr();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(
        stderr.contains("100 messages kept in") && stderr.contains("delivered after restart"),
        "{stderr}"
    );
    assert!(!stderr.contains("could not deliver"), "{stderr}");
}

/// An upstream that accepts every connection and resets it at once: the buffered TcpOutput
/// keeps everything in its queue and tries again; once a real upstream takes over the address,
/// every message arrives. Nothing is lost, and the FileOutput beside it is not held up.
///
/// The reset throws away bytes the peer's kernel had already acknowledged (they were in the
/// socket nobody read), so the output keeps what it wrote until the connection outlived the
/// acknowledgement, and sends it again on the next connection.
#[test]
fn an_upstream_that_resets_every_connection_loses_nothing() {
    let dir = temp_dir("buffered-reset");
    let port = free_tcp_port();
    let up = free_tcp_port();
    let base = dir.join("base");
    // Resets for as long as `resetting` is set.
    let resetting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let resets = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let resetter = {
        let (resetting, resets) = (resetting.clone(), resets.clone());
        std::thread::spawn(move || {
            while resetting.load(std::sync::atomic::Ordering::Acquire) {
                match listener.accept() {
                    Ok((s, _)) => {
                        // SO_LINGER 0: close() sends a reset.
                        socket2::SockRef::from(&s)
                            .set_linger(Some(Duration::ZERO))
                            .unwrap();
                        drop(s);
                        resets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let mut hekate = Hekate::start(&dir, &buffered_config(&base, port, up), &[port]);
    const MESSAGES: u64 = 3_000;
    send_load(port, "load", MESSAGES, 300);
    let out = base.join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(30), || read_stream(&out).len() as u64
            >= MESSAGES),
        "the file output got {} of {MESSAGES} beside a resetting upstream\n{}",
        read_stream(&out).len(),
        hekate.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(10), || resets
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3),
        "hekate did not keep trying: {} connections",
        resets.load(std::sync::atomic::Ordering::Relaxed)
    );
    let reports = base.join("reports.hekad");
    assert!(
        wait_report(&reports, "QueueRecords", MESSAGES as i64, 15),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    // A real upstream takes the address over.
    resetting.store(false, std::sync::atomic::Ordering::Release);
    resetter.join().unwrap();
    let sink = Sink::start_on(up, false);
    assert!(
        wait_report(&reports, "QueueRecords", 0, 30),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    assert!(wait_for(Duration::from_secs(5), || {
        received_seqs(&sink).len() as u64 >= MESSAGES
    }));
    let mut seqs = received_seqs(&sink);
    seqs.sort_unstable();
    seqs.dedup();
    assert!(
        seqs.iter().copied().eq(0..MESSAGES),
        "lost: {} distinct received of {MESSAGES}",
        seqs.len()
    );
}

/// An upstream that reads every message and then closes its end cleanly (FIN): it read what it
/// acknowledged (a close with unread bytes would have been a reset), so the queue counts every
/// message delivered at once — none is sent again, none stays queued — and hekate stops cleanly
/// though the upstream is gone.
#[test]
fn an_upstream_that_reads_everything_and_closes_confirms_it() {
    let dir = temp_dir("buffered-fin");
    let port = free_tcp_port();
    let up = free_tcp_port();
    let base = dir.join("base");
    const MESSAGES: u64 = 2_000;
    let listener = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        while (parse_stream(&got).len() as u64) < MESSAGES {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        // Everything read: the close sends a FIN, and the listener goes with the thread.
        parse_stream(&got).len() as u64
    });
    let mut hekate = Hekate::start(&dir, &buffered_config(&base, port, up), &[port]);
    send_load(port, "load", MESSAGES, 200);
    assert_eq!(reader.join().unwrap(), MESSAGES);
    let reports = base.join("reports.hekad");
    assert!(
        wait_report(&reports, "QueueRecords", 0, 15),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    assert!(wait_report(&reports, "UnconfirmedCount", 0, 5));
    assert!(wait_report(&reports, "ResentCount", 0, 5));
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());
    assert!(!hekate.stderr().contains("kept in"), "{}", hekate.stderr());
}

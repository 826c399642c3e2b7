//! Listener limits of TcpInput: `max_connections` over every shard (a connection beyond it is
//! closed at once and counted) and `idle_timeout` (a silent connection is closed and counted; a
//! talking one is not).

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn config(dir: &Path, port: u16, limits: &str) -> String {
    let cores = hekate_engine::runtime::allowed_cores();
    let list = cores[..cores.len().min(2)]
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{list}]
coordinator_core = {first}
report_interval = 1

[limited]
type = "TcpInput"
address = "127.0.0.1:{port}"
{limits}

[FileOutput]
message_matcher = "Logger == 'e2e'"
path = "out.hekad"
flush_interval = 50

{reports}"#,
        base = dir.join("base").display(),
        reports = REPORTS_OUTPUT,
        first = cores[0],
    )
}

/// The input's report field `key` in the newest report.
fn counter(dir: &Path, key: &str) -> Option<i64> {
    last_report(&dir.join("base").join("reports.hekad"))
        .and_then(|r| report_value(&r, "inputs", "limited", key))
}

/// Whether the server closed `s` within `within` (a read returns end-of-stream or a reset).
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

#[test]
fn connections_beyond_max_connections_are_closed_and_counted() {
    let dir = temp_dir("max-conns");
    let port = free_tcp_port();
    let hekate = Hekate::start(&dir, &config(&dir, port, "max_connections = 3"), &[port]);
    // Hekate::start's own probe connection has closed; let the input see it go.
    std::thread::sleep(Duration::from_millis(300));
    // Three held connections, each proven served by a message that arrives.
    let mut held: Vec<TcpStream> = Vec::new();
    for c in 0..3u32 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&framed([message("e2e", c, 0, 50)])).unwrap();
        held.push(s);
    }
    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || read_stream(&out).len() == 3),
        "{}",
        hekate.stderr()
    );
    // The fourth is closed at once; what it sends goes nowhere.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = extra.write_all(&framed([message("e2e", 9, 0, 50)]));
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(5)),
        "the connection past max_connections stays open"
    );
    assert!(
        wait_for(Duration::from_secs(10), || counter(
            &dir,
            "RefusedConnectionCount"
        )
        .is_some_and(|n| n >= 1)),
        "RefusedConnectionCount {:?}:\n{}",
        counter(&dir, "RefusedConnectionCount"),
        hekate.stderr()
    );
    // The held ones still work; once one closes, a new connection is taken again.
    held[0]
        .write_all(&framed([message("e2e", 0, 1, 50)]))
        .unwrap();
    drop(held.remove(1));
    let taken = wait_for(Duration::from_secs(10), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&framed([message("e2e", 5, 0, 50)])).unwrap();
        !closed_by_server(&mut s, Duration::from_millis(300))
    });
    assert!(
        taken,
        "a place freed by a closed connection is not given back"
    );
    assert!(wait_for(Duration::from_secs(10), || {
        let msgs = read_stream(&out);
        msgs.iter().any(|m| conn_seq(m) == Some((0, 1)))
            && msgs.iter().any(|m| conn_seq(m) == Some((5, 0)))
    }));
    assert!(
        !read_stream(&out)
            .iter()
            .any(|m| conn_seq(m).is_some_and(|(c, _)| c == 9)),
        "a refused connection's message arrived"
    );
}

#[test]
fn a_silent_connection_is_closed_after_idle_timeout_a_talking_one_is_not() {
    let dir = temp_dir("idle");
    let port = free_tcp_port();
    let hekate = Hekate::start(&dir, &config(&dir, port, "idle_timeout = 1"), &[port]);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut talking = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    // The talking one sends every 300 ms for 2.5 s.
    let mut seq = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        talking
            .write_all(&framed([message("e2e", 1, seq, 50)]))
            .unwrap();
        seq += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(3)),
        "the silent connection is still open after {:?}",
        started.elapsed()
    );
    assert!(
        !closed_by_server(&mut talking, Duration::from_millis(200)),
        "the talking connection was closed"
    );
    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || read_stream(&out).len() as u64
            == seq),
        "{} of {seq} arrived:\n{}",
        read_stream(&out).len(),
        hekate.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(10), || counter(&dir, "IdleClosedCount")
            .is_some_and(|n| n >= 1)),
        "IdleClosedCount {:?}",
        counter(&dir, "IdleClosedCount")
    );
}

/// 10,000 connections that open, each send a message and close: every message is delivered,
/// and once they are gone hekate's resident memory is back within 20% of where it was before
/// them (the connections' buffers go back to the system).
#[test]
fn memory_returns_after_ten_thousand_connections_close() {
    const CONNECTIONS: usize = 10_000;
    // This test and hekate (which inherits the limit) each hold one descriptor per connection.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= (CONNECTIONS + 1_000) as u64,
            "this test needs a hard descriptor limit above {}, not {}",
            CONNECTIONS + 1_000,
            limit.rlim_max
        );
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let dir = temp_dir("conn-memory");
    let port = free_tcp_port();
    let mut h = Hekate::start(&dir, &config(&dir, port, ""), &[port]);
    let out = dir.join("base").join("out.hekad");
    let mut sent = 0u64;
    let wave = |n: usize, sent: &mut u64| {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&framed([message("e2e", 0, *sent, 100)]))
                .unwrap();
            *sent += 1;
            conns.push(s);
        }
        conns
    };
    // A first wave, so that what is allocated once (and kept) is in the baseline.
    drop(wave(200, &mut sent));
    assert!(wait_for(
        Duration::from_secs(20),
        || read_stream(&out).len() as u64 == sent
    ));
    std::thread::sleep(Duration::from_secs(2));
    let before = h.rss_kib();
    let conns = wave(CONNECTIONS, &mut sent);
    assert!(
        wait_for(Duration::from_secs(60), || read_stream(&out).len() as u64
            == sent),
        "{} of {sent} delivered\n{}",
        read_stream(&out).len(),
        h.stderr()
    );
    let open = h.rss_kib();
    drop(conns);
    let limit = before + before / 5;
    let returned = wait_for(Duration::from_secs(15), || h.rss_kib() <= limit);
    let after = h.rss_kib();
    eprintln!(
        "RSS {before} KiB before, {open} KiB with {CONNECTIONS} connections, {after} KiB after they closed"
    );
    assert!(
        returned,
        "resident memory {after} KiB after the connections closed, {before} KiB before (limit {limit})"
    );
    let status = h.terminate();
    assert!(status.success(), "{status}\n{}", h.stderr());
}

/// Out of descriptors (`ulimit -n` below `max_connections`): failed accepts are counted
/// (`AcceptFailedCount`), logged a few times a second at most rather than once per attempt,
/// hekate does not spin, and once connections close the waiting ones are served.
#[test]
fn running_out_of_descriptors_is_counted_and_survived() {
    use std::os::unix::process::CommandExt as _;
    let dir = temp_dir("emfile");
    let port = free_tcp_port();
    let path = dir.join("hekate.toml");
    std::fs::write(&path, config(&dir, port, "max_connections = 5000")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"));
    cmd.args(["run", "-c"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut h = Hekate {
        child: cmd.spawn().unwrap(),
        dir: dir.clone(),
    };
    assert!(
        wait_for(Duration::from_secs(20), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "{}",
        h.stderr()
    );
    // Far more connections than hekate has descriptors for; the kernel's backlog takes them.
    let mut conns: Vec<TcpStream> = (0..600)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert!(
        wait_for(Duration::from_secs(10), || counter(
            &dir,
            "AcceptFailedCount"
        )
        .is_some_and(|n| n >= 5)),
        "{:?}\n{}",
        last_report(&dir.join("base").join("reports.hekad")),
        h.stderr()
    );
    // It waits between attempts instead of spinning on the failing accept.
    let cpu = h.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = h.cpu_ticks() - cpu;
    assert!(
        used < 100,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    let stderr = h.stderr();
    let lines = stderr.matches("accepting a connection failed").count();
    assert!((1..=40).contains(&lines), "{lines} log lines:\n{stderr}");
    // Descriptors come back: the connections still waiting are served, and a message sent on
    // one of them is delivered.
    let mut last = conns.pop().unwrap();
    conns.clear();
    last.write_all(&framed([message("e2e", 0, 1, 50)])).unwrap();
    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || read_stream(&out).len() == 1),
        "{}",
        h.stderr()
    );
    let status = h.terminate();
    assert!(status.success(), "{status}\n{}", h.stderr());
}

//! Unix domain sockets: TcpInput with `net = "unix"` (connections accepted by one shard and
//! spread over the others; the test checks delivery with two shards, not which shard served
//! which connection) and UdpInput with `net = "unixgram"` (what `/dev/log` is), with a
//! real local sender, util-linux's `logger`.

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Waits until hekate's socket is at `path`: one that accepts a connection (`stream`), or one
/// that takes a datagram.
fn wait_for_socket(hekate: &mut Hekate, path: &Path, stream: bool) {
    let ready = wait_for(Duration::from_secs(20), || {
        let live = if stream {
            UnixStream::connect(path).is_ok()
        } else {
            std::os::unix::net::UnixDatagram::unbound().is_ok_and(|s| s.connect(path).is_ok())
        };
        live || hekate.child.try_wait().ok().flatten().is_some()
    });
    assert!(
        ready && hekate.child.try_wait().unwrap().is_none(),
        "hekate does not listen on {}:\n{}",
        path.display(),
        hekate.stderr()
    );
}

fn stream_config(dir: &Path, cores: &[usize], sock: &Path) -> String {
    let list = cores
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

[local]
type = "TcpInput"
net = "unix"
address = "{sock}"
unix_socket_perm = "0666"

[FileOutput]
message_matcher = "Type == 'unix'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        first = cores[0],
        sock = sock.display(),
    )
}

#[test]
fn unix_stream_connections_on_two_shards_are_delivered_exactly_once() {
    let dir = temp_dir("unix-stream");
    let cores = hekate_engine::runtime::allowed_cores();
    let cores = &cores[..cores.len().min(2)];
    let sock = dir.join("heka.sock");
    // A socket file left by a process that is gone is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let mut hekate = Hekate::start(&dir, &stream_config(&dir, cores, &sock), &[]);
    wait_for_socket(&mut hekate, &sock, true);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "unix_socket_perm");

    // A second hekate on the same path is refused, and leaves the first one's socket alone.
    let other = temp_dir("unix-stream-other");
    std::fs::write(
        other.join("hekate.toml"),
        stream_config(&other, cores, &sock),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "-c"])
        .arg(other.join("hekate.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(sock.exists(), "the running hekate's socket is still there");

    // Eight connections at once, 500 messages each.
    let conns = 8u32;
    let per = 500u64;
    let senders: Vec<_> = (0..conns)
        .map(|c| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                let msgs = (0..per).map(|i| message("unix", c, i, 100));
                s.write_all(&framed(msgs)).unwrap();
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let out = dir.join("base").join("out.hekad");
    let total = u64::from(conns) * per;
    let arrived = wait_for(Duration::from_secs(20), || {
        read_stream(&out).len() as u64 >= total
    });
    let msgs = read_stream(&out);
    assert!(arrived, "{} of {total} arrived", msgs.len());
    let seen: BTreeSet<_> = msgs.iter().filter_map(conn_seq).collect();
    assert_eq!(msgs.len() as u64, total, "no duplicates");
    assert_eq!(
        seen.len() as u64,
        total,
        "every (connection, sequence) once"
    );
    // Payload messages from a local socket carry no peer address as their hostname.
    let status = hekate.terminate();
    assert!(status.success(), "{status}: {}", hekate.stderr());
    assert!(!sock.exists(), "the socket file is removed at the stop");
}

#[test]
fn logger_to_a_unix_datagram_socket_is_decoded() {
    let dir = temp_dir("unix-dgram");
    let core = hekate_engine::runtime::allowed_cores()[0];
    let sock = dir.join("log.sock");
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[devlog]
type = "UdpInput"
net = "unixgram"
address = "{sock}"
unix_socket_perm = "0622"
decoder = "SyslogDecoder"

[SyslogDecoder]

[FileOutput]
message_matcher = "Logger == 'devlog'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        sock = sock.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[]);
    wait_for_socket(&mut hekate, &sock, false);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o622, "unix_socket_perm");
    // logger writes to a local socket as to /dev/log: RFC 3164 without a hostname.
    for (tag, text) in [("cron", "job started"), ("sshd", "session opened")] {
        let out = Command::new("logger")
            .args(["-d", "-u"])
            .arg(&sock)
            .args(["-t", tag, "-i", "-p", "auth.notice", text])
            .output()
            .expect("util-linux `logger` runs (scripts/setup installs bsdutils)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || read_stream(&out).len() >= 2),
        "{}",
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    assert_eq!(msgs.len(), 2);
    for (m, (tag, text)) in msgs
        .iter()
        .zip([("cron", "job started"), ("sshd", "session opened")])
    {
        assert_eq!(m.payload.as_deref(), Some(text));
        assert_eq!(m.severity, Some(5), "notice");
        let program = m
            .find_first_field("programname")
            .and_then(|f| f.value_string.first().cloned());
        assert_eq!(program.as_deref(), Some(tag));
        assert!(m.pid.is_some_and(|p| p > 0), "logger -i sends its pid");
    }
    let status = hekate.terminate();
    assert!(status.success(), "{status}: {}", hekate.stderr());
    assert!(!sock.exists(), "the socket file is removed at the stop");
}

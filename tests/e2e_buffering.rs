//! Outputs that cannot stall each other (`full_action`) and outputs behind a disk queue
//! (`use_buffering`), through the real binary.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The newest `heka.all-report` payload of a Heka stream, parsed.
fn last_report(path: &Path) -> Option<serde_json::Value> {
    read_stream(path)
        .into_iter()
        .rev()
        .find(|m| m.r#type.as_deref() == Some("heka.all-report"))
        .and_then(|m| serde_json::from_str(m.payload.as_deref()?).ok())
}

/// A plugin's numeric report field.
fn report_value(report: &serde_json::Value, category: &str, name: &str, key: &str) -> Option<i64> {
    report[category]
        .as_array()?
        .iter()
        .find(|p| p["Name"] == name)?[key]["value"]
        .as_i64()
}

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

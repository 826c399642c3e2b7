//! Syslog from a real sender, util-linux's `logger`, into one port over TCP (octet-counted RFC
//! 5424 and newline-framed RFC 3164) and UDP, through SyslogFramingSplitter and SyslogDecoder.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hekate_model::message::Message;

/// Runs `logger ARGS` with `lines` on its standard input (one message per line).
fn logger(args: &[&str], lines: &str) {
    let mut child = Command::new("logger")
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `logger` runs (scripts/setup installs bsdutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn string(m: &Message, name: &str) -> Option<String> {
    m.find_first_field(name)
        .and_then(|f| f.value_string.first().cloned())
}

fn by_payload<'a>(msgs: &'a [Message], payload: &str) -> &'a Message {
    msgs.iter()
        .find(|m| m.payload.as_deref() == Some(payload))
        .unwrap_or_else(|| panic!("no message with the payload {payload:?}"))
}

#[test]
fn logger_over_tcp_and_udp_reaches_one_port_decoded() {
    let dir = temp_dir("syslog");
    let core = hekate_engine::runtime::allowed_cores()[0];
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[syslog_tcp]
type = "TcpInput"
address = "127.0.0.1:{port}"
splitter = "SyslogFramingSplitter"
decoder = "SyslogDecoder"
send_decode_failures = true

[syslog_udp]
type = "UdpInput"
address = "127.0.0.1:{port}"
splitter = "SyslogFramingSplitter"
decoder = "SyslogDecoder"

[SyslogFramingSplitter]

[SyslogDecoder]

[FileOutput]
message_matcher = "Logger == 'syslog_tcp' || Logger == 'syslog_udp'"
path = "syslog.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let p = port.to_string();
    // RFC 5424, octet-counted, three messages on one connection, with structured data.
    logger(
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-n",
            "127.0.0.1",
            "-P",
            &p,
            "-t",
            "myapp",
            "-p",
            "local0.warning",
            "--sd-id",
            "origin@32473",
            "--sd-param",
            "ip=\"10.0.0.1\"",
        ],
        "first\nsecond\nthird \"quoted\" ]\n",
    );
    // RFC 3164, newline-framed, with the pid in the tag.
    logger(
        &[
            "--tcp",
            "--rfc3164",
            "-n",
            "127.0.0.1",
            "-P",
            &p,
            "-t",
            "web",
            "-i",
            "-p",
            "mail.err",
        ],
        "line one\nline two\n",
    );
    // UDP, both formats.
    logger(
        &[
            "--udp",
            "--rfc3164",
            "-n",
            "127.0.0.1",
            "-P",
            &p,
            "-t",
            "udp3164",
        ],
        "over udp 3164\n",
    );
    logger(
        &[
            "--udp",
            "--rfc5424",
            "-n",
            "127.0.0.1",
            "-P",
            &p,
            "-t",
            "udp5424",
        ],
        "over udp 5424\n",
    );
    // Not syslog: a decode failure, passed on with send_decode_failures.
    send_tcp(port, b"GET / HTTP/1.1\r\n");

    let path = dir.join("base").join("syslog.hekad");
    let complete = wait_for(Duration::from_secs(20), || read_stream(&path).len() >= 8);
    let msgs = read_stream(&path);
    assert!(
        complete,
        "got {} of 8 messages: {msgs:#?}\n{}",
        msgs.len(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    assert_eq!(msgs.len(), 8, "{msgs:#?}");

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    for payload in ["first", "second", "third \"quoted\" ]"] {
        let m = by_payload(&msgs, payload);
        assert_eq!(m.logger.as_deref(), Some("syslog_tcp"));
        assert_eq!(m.severity, Some(4), "warning");
        let facility = m.find_first_field("syslogfacility").unwrap();
        assert_eq!(facility.value_double, [16.0], "local0");
        assert_eq!(string(m, "programname").as_deref(), Some("myapp"));
        assert_eq!(string(m, "app-name").as_deref(), Some("myapp"));
        assert_eq!(m.hostname.as_deref(), Some(host.as_str()));
        assert_eq!(string(m, "sd.origin@32473.ip").as_deref(), Some("10.0.0.1"));
        assert_eq!(string(m, "sd.timeQuality.tzKnown").as_deref(), Some("1"));
        let age = hekate_model::writer::now_ns() - m.timestamp;
        assert!(
            (0..60_000_000_000).contains(&age),
            "the message's own timestamp: {}",
            m.timestamp
        );
    }
    for payload in ["line one", "line two"] {
        let m = by_payload(&msgs, payload);
        assert_eq!(m.severity, Some(3), "err");
        assert_eq!(
            m.find_first_field("syslogfacility").unwrap().value_double,
            [2.0],
            "mail"
        );
        assert_eq!(string(m, "programname").as_deref(), Some("web"));
        assert!(m.pid.is_some_and(|p| p > 0), "logger -i sends its pid");
        // RFC 3164 senders write the short hostname.
        assert_eq!(
            m.hostname.as_deref(),
            host.split('.').next(),
            "the hostname logger wrote"
        );
    }
    let m = by_payload(&msgs, "over udp 3164");
    assert_eq!(m.logger.as_deref(), Some("syslog_udp"));
    assert_eq!(string(m, "programname").as_deref(), Some("udp3164"));
    let m = by_payload(&msgs, "over udp 5424");
    assert_eq!(string(m, "app-name").as_deref(), Some("udp5424"));

    let failed = by_payload(&msgs, "GET / HTTP/1.1");
    let flag = failed.find_first_field("decode_failure").unwrap();
    assert_eq!(flag.value_bool, [true]);

    // What `hekate cat` shows of them.
    let cat = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["cat", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(cat.status.success());
    let json = String::from_utf8_lossy(&cat.stdout);
    assert!(json.contains("sd.origin@32473.ip"), "{json}");
    assert!(json.contains("over udp 3164"), "{json}");
}

/// A lying octet count is skipped as its frame goes by; the connection goes on with the next
/// frame. A line too long for `max_message_size` is skipped to its end.
#[test]
fn bad_framing_is_skipped_counted_and_resynchronised() {
    let dir = temp_dir("syslog-bad");
    let core = hekate_engine::runtime::allowed_cores()[0];
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}
max_message_size = 4096

[syslog]
type = "TcpInput"
address = "127.0.0.1:{port}"
splitter = "SyslogFramingSplitter"
decoder = "SyslogDecoder"

[SyslogFramingSplitter]

[SyslogDecoder]

[FileOutput]
message_matcher = "Logger == 'syslog'"
path = "syslog.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let mut bytes = b"21 <13>1 - h a - - - one".to_vec();
    // A count larger than the limit, honest: its 100,000 bytes are skipped.
    bytes.extend_from_slice(b"100000 ");
    bytes.extend(std::iter::repeat_n(b'x', 100_000));
    bytes.extend_from_slice(b"<13>Nov 24 21:33:12 h p: two\n");
    // A 1 MiB line: skipped to its end.
    bytes.extend(std::iter::repeat_n(b'y', 1 << 20));
    bytes.extend_from_slice(b"\n<13>Nov 24 21:33:12 h p: three\n");
    // Not syslog, counted as a decode failure and dropped.
    bytes.extend_from_slice(b"\0\0\0\n<13>Nov 24 21:33:12 h p: four\n");
    send_tcp(port, &bytes);
    let path = dir.join("base").join("syslog.hekad");
    let complete = wait_for(Duration::from_secs(20), || read_stream(&path).len() >= 4);
    assert!(complete, "{}", hekate.stderr());
    hekate.signal(libc::SIGUSR1);
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stdout()
            .contains("SkippedBytes")),
        "no text report on SIGUSR1"
    );
    assert!(hekate.terminate().success());
    let payloads: Vec<_> = read_stream(&path)
        .into_iter()
        .filter_map(|m| m.payload)
        .collect();
    assert_eq!(payloads, ["one", "two", "three", "four"]);
    let report = hekate.stdout();
    let value = |name: &str| -> u64 {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    assert_eq!(
        value("SkippedBytes: "),
        7 + 100_000 + (1 << 20) + 1,
        "{report}"
    );
    assert_eq!(value("DecodeFailureCount: "), 1, "{report}");
}

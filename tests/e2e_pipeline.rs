//! End to end through the real binary: TCP and UDP in, routing by matcher, file and TCP out,
//! garbage on the wire, circular injection.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::*;

/// Messages over several TCP connections arrive exactly once, in order per connection, at every
/// output whose matcher selects them and at no other.
#[test]
fn tcp_messages_reach_exactly_the_matching_outputs_once_and_in_order() {
    let dir = temp_dir("route");
    let port = free_tcp_port();
    let sink = Sink::start(false);
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 3600

[TcpInput]
address = "127.0.0.1:{port}"

[only_a]
type = "FileOutput"
message_matcher = "Type == 'a'"
path = "a.hekad"
flush_interval = 50

[everything]
type = "FileOutput"
message_matcher = "Logger == 'e2e'"
path = "all.hekad"
flush_count = 100
flush_operator = "OR"
flush_interval = 100

[nothing]
type = "FileOutput"
message_matcher = "Type == 'never'"
path = "none.hekad"

[upstream]
type = "TcpOutput"
message_matcher = "Type == 'b' && Fields[seq] >= 0"
address = "{sink}"
"#,
        base = dir.join("base").display(),
        sink = sink.addr,
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    const CONNS: u32 = 4;
    const PER_CONN: u64 = 3000;
    let senders: Vec<_> = (0..CONNS)
        .map(|conn| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                for chunk in 0..(PER_CONN / 500) {
                    let bytes =
                        framed((chunk * 500..(chunk + 1) * 500).map(|seq| {
                            message(if seq % 3 == 0 { "a" } else { "b" }, conn, seq, 100)
                        }));
                    s.write_all(&bytes).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let base = dir.join("base");
    let total = u64::from(CONNS) * PER_CONN;
    assert!(
        wait_for(
            Duration::from_secs(30),
            || read_stream(&base.join("all.hekad")).len() as u64 >= total
        ),
        "not everything arrived:\n{}",
        hekate.stderr()
    );
    let status = hekate.terminate();
    assert!(status.success(), "{status}\n{}", hekate.stderr());

    let check =
        |msgs: &[hekate_model::message::Message], want: &dyn Fn(u64) -> bool, what: &str| {
            let mut last: HashMap<u32, Option<u64>> = HashMap::new();
            let mut count = 0u64;
            for m in msgs {
                let (conn, seq) =
                    conn_seq(m).unwrap_or_else(|| panic!("{what}: foreign message {m:?}"));
                assert!(want(seq), "{what}: message {seq} should not be here");
                let prev = last.entry(conn).or_default();
                assert!(
                    prev.is_none_or(|p| p < seq),
                    "{what}: conn {conn} seq {seq} after {prev:?}"
                );
                *prev = Some(seq);
                count += 1;
            }
            let expected = (0..PER_CONN).filter(|s| want(*s)).count() as u64 * u64::from(CONNS);
            assert_eq!(count, expected, "{what}: wrong number of messages");
        };
    check(
        &read_stream(&base.join("a.hekad")),
        &|s| s % 3 == 0,
        "only_a",
    );
    check(
        &read_stream(&base.join("all.hekad")),
        &|_| true,
        "everything",
    );
    assert!(
        read_stream(&base.join("none.hekad")).is_empty(),
        "nothing got messages"
    );
    let upstream = parse_stream(&sink.received.lock().unwrap());
    check(&upstream, &|s| s % 3 != 0, "upstream");
}

/// UdpInput delivers datagrams holding several framed messages each.
#[test]
fn udp_input_delivers_several_messages_per_datagram() {
    let dir = temp_dir("udp");
    let port = free_udp_port();
    let probe = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[probe]
type = "TcpInput"
address = "127.0.0.1:{probe}"

[UdpInput]
address = "127.0.0.1:{port}"
splitter = "HekaFramingSplitter"
decoder = "ProtobufDecoder"

[FileOutput]
message_matcher = "TRUE"
path = "udp.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[probe]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in 0..100u64 {
        let bytes = framed((0..3).map(|i| message("udp", 0, d * 3 + i, 50)));
        socket.send_to(&bytes, ("127.0.0.1", port)).unwrap();
        if d % 10 == 9 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let path = dir.join("base").join("udp.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || read_stream(&path).len() >= 300),
        "got {} of 300 messages:\n{}",
        read_stream(&path).len(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let mut seqs: Vec<u64> = read_stream(&path)
        .iter()
        .filter_map(conn_seq)
        .map(|c| c.1)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
}

/// Garbage on a TCP connection is skipped and counted; the valid records around it arrive.
#[test]
fn garbage_between_records_is_skipped_and_counted() {
    let dir = temp_dir("garbage");
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
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let mut bytes = framed((0..10).map(|s| message("g", 0, s, 40)));
    bytes.extend_from_slice(b"this is not a heka record at all");
    bytes.extend_from_slice(&[0x1e, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); // bad header
    bytes.extend(framed((10..20).map(|s| message("g", 0, s, 40))));
    bytes.extend_from_slice(&[0x1e, 0x02, 0x08, 0x05, 0x1f, 1, 2, 3, 4, 5]); // not a message
    bytes.extend(framed((20..30).map(|s| message("g", 0, s, 40))));
    send_tcp(port, &bytes);
    let path = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || read_stream(&path).len() >= 30),
        "{}",
        hekate.stderr()
    );
    hekate.signal(libc::SIGUSR1);
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stdout()
            .contains("SkippedBytes")),
        "no text report on SIGUSR1"
    );
    assert!(hekate.terminate().success());
    let seqs: Vec<u64> = read_stream(&path)
        .iter()
        .filter_map(conn_seq)
        .map(|c| c.1)
        .collect();
    assert_eq!(seqs, (0..30).collect::<Vec<_>>());
    let report = hekate.stdout();
    assert!(
        report.starts_with("========[heka.all-report]========\n"),
        "{report}"
    );
    let skipped: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("SkippedBytes: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(skipped >= 32, "{report}");
    let failures: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("DecodeFailureCount: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(failures, 1, "{report}");
    assert!(hekate.stderr().contains("skipped"), "{}", hekate.stderr());
}

/// A filter whose matcher selects its own output has its injections refused, as in Heka.
#[test]
fn injecting_into_itself_is_refused_as_a_circular_reference() {
    let dir = temp_dir("circular");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[CounterFilter]
message_matcher = "TRUE"
ticker_interval = 1

[FileOutput]
message_matcher = "TRUE"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..5).map(|s| message("c", 0, s, 10))));
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stderr()
            .contains("circular reference")),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let out = read_stream(&dir.join("base").join("out.hekad"));
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|m| m.r#type.as_deref() == Some("c")));
}

/// With a CounterFilter that does not see its own output, counts are injected and routed.
#[test]
fn counter_filter_output_is_routed() {
    let dir = temp_dir("counter");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[CounterFilter]
message_matcher = "Type == 'c'"
ticker_interval = 1

[counts]
type = "FileOutput"
message_matcher = "Type == 'heka.counter-output'"
path = "counts.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..7).map(|s| message("c", 0, s, 10))));
    let path = dir.join("base").join("counts.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || !read_stream(&path).is_empty()),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let counts = read_stream(&path);
    assert!(
        counts[0]
            .payload
            .as_deref()
            .unwrap_or("")
            .starts_with("Got 7 messages."),
        "{:?}",
        counts[0].payload
    );
}

/// A `heka.all-report` message with Heka's JSON payload is injected every reporting interval,
/// followed by a `heka.memstat` message with the allocator's figures.
#[test]
fn all_report_is_injected_every_interval() {
    let dir = temp_dir("report");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report' || Type == 'heka.memstat'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..3).map(|s| message("r", 0, s, 10))));
    let path = dir.join("base").join("reports.hekad");
    let of_type = |ty: &str| -> Vec<hekate_model::message::Message> {
        read_stream(&path)
            .into_iter()
            .filter(|m| m.r#type.as_deref() == Some(ty))
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(15), || of_type("heka.all-report").len()
            >= 2
            && !of_type("heka.memstat").is_empty()),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let memstat = of_type("heka.memstat").pop().unwrap();
    assert_eq!(memstat.logger.as_deref(), Some("hekad"));
    let field = |name: &str| {
        let f = memstat.fields.iter().find(|f| f.name == name).unwrap();
        (
            f.value_integer[0],
            f.representation.clone().unwrap_or_default(),
        )
    };
    let (alloc, unit) = field("HeapAlloc");
    assert_eq!(unit, "B");
    assert!(alloc > 0);
    assert!(field("HeapSys").0 >= field("HeapIdle").0);
    for name in ["HeapInuse", "HeapReleased", "HeapObjects"] {
        assert!(field(name).0 >= 0, "{name}");
    }
    let reports = of_type("heka.all-report");
    let last = reports.last().unwrap();
    assert_eq!(last.logger.as_deref(), Some("hekad"));
    let payload = last.payload.as_deref().unwrap();
    assert!(payload.ends_with("}\n"));
    let json: serde_json::Value = serde_json::from_str(payload).unwrap();
    for key in [
        "globals",
        "inputs",
        "splitters",
        "decoders",
        "filters",
        "outputs",
        "encoders",
    ] {
        assert!(json[key].is_array(), "{key} missing: {payload}");
    }
    let input = &json["inputs"][0];
    assert_eq!(input["Name"], "TcpInput");
    assert_eq!(input["ProcessMessageCount"]["value"], 3, "{payload}");
    assert_eq!(json["outputs"][0]["Name"], "reports");
    assert_eq!(
        json["outputs"][0]["InChanCapacity"]["representation"],
        "count"
    );
}

/// Signed records verify against the input's signer keys; `message_signer` routes on the verified
/// signer; a record with a bad signature is dropped and counted.
#[test]
fn signed_records_are_verified_and_routed_by_signer() {
    use hekate_model::framing::{SigningKey, encode_record};
    use hekate_model::message::HmacHashFunction;

    let dir = temp_dir("signer");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[TcpInput.signer.ops_1]
hmac_key = "right key"

[signed]
type = "FileOutput"
message_matcher = "TRUE"
message_signer = "ops"
path = "signed.hekad"
flush_interval = 50

[all]
type = "FileOutput"
message_matcher = "TRUE"
path = "all.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let good = SigningKey::new("ops", 1, HmacHashFunction::Sha1, b"right key");
    let bad = SigningKey::new("ops", 1, HmacHashFunction::Sha1, b"wrong key");
    let mut bytes = Vec::new();
    encode_record(&message("s", 0, 0, 10).to_bytes(), Some(&good), &mut bytes).unwrap();
    encode_record(&message("s", 0, 1, 10).to_bytes(), Some(&bad), &mut bytes).unwrap();
    encode_record(&message("s", 0, 2, 10).to_bytes(), None, &mut bytes).unwrap();
    send_tcp(port, &bytes);
    let base = dir.join("base");
    assert!(wait_for(Duration::from_secs(10), || read_stream(
        &base.join("all.hekad")
    )
    .len()
        >= 2));
    assert!(hekate.terminate().success());
    let seqs = |f: &str| -> Vec<u64> {
        read_stream(&base.join(f))
            .iter()
            .filter_map(conn_seq)
            .map(|c| c.1)
            .collect()
    };
    assert_eq!(seqs("signed.hekad"), [0]);
    assert_eq!(seqs("all.hekad"), [0, 2]);
}

/// TokenSplitter without a decoder: each line becomes a message with the line as its payload.
#[test]
fn lines_become_payload_messages() {
    let dir = temp_dir("lines");
    let port = free_udp_port();
    let probe = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[probe]
type = "TcpInput"
address = "127.0.0.1:{probe}"

[lines]
type = "UdpInput"
address = "127.0.0.1:{port}"
splitter = "TokenSplitter"

[text]
type = "FileOutput"
message_matcher = "Logger == 'lines'"
path = "lines.txt"
encoder = "PayloadEncoder"
flush_interval = 50

[PayloadEncoder]
append_newlines = false
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[probe]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(
            b"first line\nsecond line\nno newline at the end",
            ("127.0.0.1", port),
        )
        .unwrap();
    let path = dir.join("base").join("lines.txt");
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.len() >= 23)
    }));
    assert!(hekate.terminate().success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "first line\nsecond line\n"
    );
    assert!(
        hekate
            .stderr()
            .contains("dropped 21 bytes at the end of a stream"),
        "{}",
        hekate.stderr()
    );
}

/// `decoder = ""` on TcpInput, whose default decoder is ProtobufDecoder: no decoder at all, so
/// plain text over TCP becomes one payload message per line.
#[test]
fn an_empty_decoder_takes_plain_text_over_tcp() {
    let dir = temp_dir("no-decoder");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[lines]
type = "TcpInput"
address = "127.0.0.1:{port}"
splitter = "TokenSplitter"
decoder = ""

[text]
type = "FileOutput"
message_matcher = "Logger == 'lines' && Type == ''"
path = "lines.txt"
encoder = "PayloadEncoder"
flush_interval = 50

[PayloadEncoder]
append_newlines = false
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, b"plain text\nover tcp\n");
    let path = dir.join("base").join("lines.txt");
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.len() >= 20)
    }));
    assert!(hekate.terminate().success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "plain text\nover tcp\n"
    );
}

/// TcpOutput's `local_address`: the upstream sees the connection come from that address, and
/// the messages arrive.
#[test]
fn tcp_output_connects_from_its_local_address() {
    use std::io::Read as _;
    let dir = temp_dir("tcp-local");
    let port = free_tcp_port();
    let local = free_tcp_port();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[TcpInput]
address = "127.0.0.1:{port}"

[upstream]
type = "TcpOutput"
message_matcher = "Type == 'fwd'"
address = "{up}"
local_address = "127.0.0.1:{local}"
"#,
        base = dir.join("base").display(),
        core = hekate_engine::runtime::allowed_cores()[0],
        up = upstream.local_addr().unwrap(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..20).map(|s| message("fwd", 1, s, 50))));
    let (mut conn, peer) = upstream.accept().unwrap();
    assert_eq!(peer.port(), local, "{}", hekate.stderr());
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while parse_stream(&bytes).len() < 20 {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "upstream closed early\n{}", hekate.stderr());
        bytes.extend_from_slice(&chunk[..n]);
    }
    let seqs: Vec<_> = parse_stream(&bytes).iter().filter_map(conn_seq).collect();
    assert_eq!(seqs, (0..20).map(|s| (1, s)).collect::<Vec<_>>());
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// UdpOutput sends each message as one datagram to its address (here, a Heka protobuf message
/// per datagram, as a UdpInput with its NullSplitter reads them); a message larger than
/// `max_message_size` is dropped and counted, the others go on.
#[test]
fn udp_output_sends_one_datagram_per_message() {
    let dir = temp_dir("udp-out");
    let port = free_tcp_port();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[TcpInput]
address = "127.0.0.1:{port}"

[datagrams]
type = "UdpOutput"
message_matcher = "Type == 'dgram'"
address = "{to}"
encoder = "ProtobufEncoder"
max_message_size = 1000
"#,
        base = dir.join("base").display(),
        core = hekate_engine::runtime::allowed_cores()[0],
        to = receiver.local_addr().unwrap(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    // seq 5 is far over max_message_size
    let msgs = (0..10).map(|s| message("dgram", 1, s, if s == 5 { 5000 } else { 100 }));
    send_tcp(port, &framed(msgs));
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < 9 {
        let n = receiver
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{e} after {got:?}\n{}", hekate.stderr()));
        let m = hekate_model::message::Message::decode_bytes(&buf[..n]).unwrap();
        got.push(conn_seq(&m).unwrap().1);
    }
    assert_eq!(got, [0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert!(
        wait_for(Duration::from_secs(5), || hekate
            .stderr()
            .contains("message has exceeded allowed UDP data size")),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// A UdpOutput whose peer has no listener: the kernel refuses the sends (the port is reported
/// unreachable), the failures are logged and counted in the output's `SendFailures` report
/// field, and hekate carries on. The messages all arrive within the first second and the output
/// is idle afterwards: its report fields must still be brought up to date.
#[test]
fn udp_output_counts_refused_sends() {
    let dir = temp_dir("udp-refused");
    let port = free_tcp_port();
    let closed = free_udp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[datagrams]
type = "UdpOutput"
message_matcher = "Type == 'dgram'"
address = "127.0.0.1:{closed}"
encoder = "ProtobufEncoder"

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        core = hekate_engine::runtime::allowed_cores()[0],
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    // one batch per send, so that the refusal of one datagram is seen by the next send
    for s in 0..20 {
        send_tcp(port, &framed([message("dgram", 1, s, 50)]));
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = dir.join("base").join("reports.hekad");
    let failures = || -> Option<i64> {
        let last = read_stream(&path).pop()?;
        let json: serde_json::Value = serde_json::from_str(last.payload.as_deref()?).ok()?;
        json["outputs"]
            .as_array()?
            .iter()
            .find(|o| o["Name"] == "datagrams")?["SendFailures"]["value"]
            .as_i64()
    };
    assert!(
        wait_for(Duration::from_secs(10), || failures()
            .is_some_and(|n| n > 0)),
        "SendFailures {:?}\n{}",
        failures(),
        hekate.stderr()
    );
    assert!(hekate.stderr().contains("sending a datagram failed"));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

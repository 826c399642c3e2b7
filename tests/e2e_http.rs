//! HttpListenInput with curl and raw sockets (Heka's message, auth, 413 before reading a huge
//! body, a slowloris client disconnected, max_connections answered 503), and HttpInput polling a
//! real `python3 -m http.server`, a target answering 500, one that never answers and a port
//! nothing listens on.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hekate_model::message::Message;

fn config(dir: &Path, inputs: &str, matcher: &str) -> String {
    let core = hekate_engine::runtime::allowed_cores()[0];
    format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}
report_interval = 1

{inputs}

[FileOutput]
message_matcher = "{matcher}"
path = "out.hekad"
flush_interval = 50

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    )
}

fn string(m: &Message, name: &str) -> Option<String> {
    m.find_first_field(name)
        .and_then(|f| f.value_string.first().cloned())
}

fn int(m: &Message, name: &str) -> Option<i64> {
    m.find_first_field(name)
        .and_then(|f| f.value_integer.first().copied())
}

fn double(m: &Message, name: &str) -> Option<f64> {
    m.find_first_field(name)
        .and_then(|f| f.value_double.first().copied())
}

/// Runs curl; returns (status code, response headers and body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "10",
            "-D",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl runs (scripts/setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// The report counter `key` of input `name`, once it reaches `at_least`.
fn counter_reaches(dir: &Path, name: &str, key: &str, at_least: i64) -> bool {
    let reports = dir.join("base").join("reports.hekad");
    wait_for(Duration::from_secs(10), || {
        last_report(&reports)
            .and_then(|r| report_value(&r, "inputs", name, key))
            .is_some_and(|n| n >= at_least)
    })
}

#[test]
fn posted_bodies_become_heka_messages_and_bad_credentials_get_401() {
    let dir = temp_dir("http-listen");
    let (port, api_port) = (free_tcp_port(), free_tcp_port());
    let inputs = format!(
        r#"
[ingest]
type = "HttpListenInput"
address = "127.0.0.1:{port}"
request_headers = ["X-Request-Id"]
auth_type = "Basic"
username = "ingest"
password = "s3cret"
[ingest.headers]
X-Served-By = "hekate"

[keyed]
type = "HttpListenInput"
address = "127.0.0.1:{api_port}"
auth_type = "API"
api_key = "k-123"
"#
    );
    let hekate = Hekate::start(
        &dir,
        &config(&dir, &inputs, "Type == 'heka.httpdata.request'"),
        &[port, api_port],
    );
    let url = format!("http://127.0.0.1:{port}/events/in?host=web1&tag=a+b&tag=c");
    let (code, text) = curl(&[
        "-u",
        "ingest:s3cret",
        "-A",
        "test-agent/1",
        "-H",
        "X-Request-Id: r-42",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"event":"login"}"#,
        &url,
    ]);
    assert_eq!(code, 200, "{text}\n{}", hekate.stderr());
    assert!(
        text.to_ascii_lowercase().contains("x-served-by: hekate"),
        "{text}"
    );
    let (code, text) = curl(&["-u", "ingest:wrong", "--data-binary", "nope", &url]);
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("Basic realm"), "{text}");
    let (code, _) = curl(&["--data-binary", "nope", &url]);
    assert_eq!(code, 401);
    let api = format!("http://127.0.0.1:{api_port}/");
    let (code, _) = curl(&[
        "-H",
        "X-API-Key: k-123",
        "--data-binary",
        "keyed body",
        &api,
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&["-H", "X-API-Key: k-999", "--data-binary", "nope", &api]);
    assert_eq!(code, 401);

    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || read_stream(&out).len() >= 2),
        "{:#?}\n{}",
        read_stream(&out),
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    assert_eq!(msgs.len(), 2, "only the authenticated bodies: {msgs:#?}");
    let m = msgs
        .iter()
        .find(|m| m.logger.as_deref() == Some("ingest"))
        .unwrap();
    assert_eq!(m.payload.as_deref(), Some(r#"{"event":"login"}"#));
    assert_eq!(m.severity, Some(6));
    assert_eq!(m.hostname.as_deref(), Some("127.0.0.1"));
    assert_eq!(string(m, "Protocol").as_deref(), Some("HTTP/1.1"));
    assert_eq!(string(m, "UserAgent").as_deref(), Some("test-agent/1"));
    assert_eq!(
        string(m, "ContentType").as_deref(),
        Some("application/json")
    );
    assert_eq!(string(m, "Path").as_deref(), Some("/events/in"));
    assert_eq!(string(m, "RemoteAddr").as_deref(), Some("127.0.0.1"));
    assert_eq!(string(m, "X-Request-Id").as_deref(), Some("r-42"));
    assert_eq!(string(m, "host").as_deref(), Some("web1"));
    let tags: Vec<_> = m
        .fields
        .iter()
        .filter(|f| f.name == "tag")
        .flat_map(|f| f.value_string.clone())
        .collect();
    assert_eq!(
        tags,
        ["a b", "c"],
        "a repeated parameter gives a field per value"
    );
    let k = msgs
        .iter()
        .find(|m| m.logger.as_deref() == Some("keyed"))
        .unwrap();
    assert_eq!(k.payload.as_deref(), Some("keyed body"));
    assert!(counter_reaches(&dir, "ingest", "BadAuthCount", 2));
    assert!(counter_reaches(&dir, "keyed", "BadAuthCount", 1));
}

/// Sends `head` on a new connection and returns what the server answers until it closes (or
/// 5 s pass), with how long that took.
fn raw_exchange(port: u16, head: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn huge_bodies_get_413_slow_clients_are_cut_off_and_extra_connections_get_503() {
    let dir = temp_dir("http-limits");
    let port = free_tcp_port();
    let inputs = format!(
        r#"
[limited]
type = "HttpListenInput"
address = "127.0.0.1:{port}"
max_message_size = 1024
read_timeout = 1
max_connections = 2
"#
    );
    let hekate = Hekate::start(
        &dir,
        &config(&dir, &inputs, "Type == 'heka.httpdata.request'"),
        &[port],
    );
    // A 1 GiB Content-Length is refused on the header, without reading the body.
    let (answer, took) = raw_exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nonly a few bytes",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A body just over the limit, from curl (chunked too), is refused as well.
    let big = "x".repeat(2000);
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(curl(&["--data-binary", &big, &url]).0, 413);
    assert_eq!(
        curl(&[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &big,
            &url
        ])
        .0,
        413
    );
    assert_eq!(curl(&["--data-binary", "fits", &url]).0, 200);

    // Slowloris: a head trickled a line at a time is cut off after read_timeout.
    let started = Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut closed = false;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if slow
            .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "the slow client was never disconnected");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");

    // A keep-alive connection answered once and then silent is closed after read_timeout.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nidle")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    assert!(
        matches!(idle.read(&mut answer), Ok(0)),
        "closed, not answered"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Two connections in the middle of their heads hold both places: a third gets 503.
    let mut holders: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"POST / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(curl(&["--data-binary", "third", &url]).0, 503);
    // Once they are cut off (read_timeout), there is room again.
    for h in &mut holders {
        let mut b = [0u8; 64];
        h.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = h.read(&mut b);
    }
    assert!(
        wait_for(Duration::from_secs(5), || curl(&[
            "--data-binary",
            "later",
            &url
        ])
        .0 == 200),
        "{}",
        hekate.stderr()
    );

    let out = dir.join("base").join("out.hekad");
    assert!(wait_for(Duration::from_secs(10), || read_stream(&out)
        .len()
        >= 3));
    let payloads: Vec<_> = read_stream(&out)
        .into_iter()
        .filter_map(|m| m.payload)
        .collect();
    assert_eq!(payloads, ["fits", "idle", "later"]);
    assert!(counter_reaches(&dir, "limited", "TooLargeCount", 3));
    assert!(counter_reaches(&dir, "limited", "TimedOutCount", 3));
    assert!(counter_reaches(
        &dir,
        "limited",
        "RefusedConnectionCount",
        1
    ));
    assert!(hekate.stderr().contains("max_message_size"));
}

/// A local server answering every request with 500, and one that accepts and never answers.
fn misbehaving_servers() -> (u16, u16) {
    let failing = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let ports = (
        failing.local_addr().unwrap().port(),
        hanging.local_addr().unwrap().port(),
    );
    std::thread::spawn(move || {
        for conn in failing.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
                );
            });
        }
    });
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hanging.incoming() {
            held.push(conn);
        }
    });
    ports
}

struct PythonServer(Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn polls_of_a_real_server_a_failing_a_hanging_and_a_closed_target_are_all_reported() {
    let dir = temp_dir("http-poll");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("status.json"), r#"{"up":true}"#).unwrap();
    let py_port = free_tcp_port();
    let _python = PythonServer(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(py_port.to_string())
            .current_dir(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs"),
    );
    assert!(wait_for(Duration::from_secs(10), || TcpStream::connect((
        "127.0.0.1",
        py_port
    ))
    .is_ok()));
    let (failing, hanging) = misbehaving_servers();
    let closed = free_tcp_port();
    let ok_url = format!("http://127.0.0.1:{py_port}/status.json");
    let inputs = format!(
        r#"
[poll]
type = "HttpInput"
urls = ["{ok_url}", "http://127.0.0.1:{failing}/", "http://127.0.0.1:{hanging}/", "http://127.0.0.1:{closed}/"]
ticker_interval = 1
timeout = 1
"#
    );
    let hekate = Hekate::start(
        &dir,
        &config(&dir, &inputs, "Type =~ /^heka.httpinput/"),
        &[],
    );
    let out = dir.join("base").join("out.hekad");
    let from = |msgs: &[Message], url: &str| {
        msgs.iter()
            .filter(|m| m.logger.as_deref() == Some(url))
            .cloned()
            .collect::<Vec<_>>()
    };
    let hang_url = format!("http://127.0.0.1:{hanging}/");
    assert!(
        wait_for(Duration::from_secs(20), || {
            let msgs = read_stream(&out);
            from(&msgs, &ok_url).len() >= 2 && !from(&msgs, &hang_url).is_empty()
        }),
        "{:#?}\n{}",
        read_stream(&out),
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    let ok = &from(&msgs, &ok_url)[0];
    assert_eq!(ok.r#type.as_deref(), Some("heka.httpinput.data"));
    assert_eq!(ok.payload.as_deref(), Some(r#"{"up":true}"#));
    assert_eq!(ok.severity, Some(6));
    assert_eq!(int(ok, "StatusCode"), Some(200));
    assert_eq!(string(ok, "Status").as_deref(), Some("200 OK"));
    assert_eq!(int(ok, "ResponseSize"), Some(11));
    assert!(double(ok, "ResponseTime").is_some_and(|t| t > 0.0 && t < 1.0));
    assert_eq!(string(ok, "Protocol").as_deref(), Some("HTTP/1.0"));

    let failed = &from(&msgs, &format!("http://127.0.0.1:{failing}/"))[0];
    assert_eq!(failed.r#type.as_deref(), Some("heka.httpinput.data"));
    assert_eq!(failed.severity, Some(1));
    assert_eq!(int(failed, "StatusCode"), Some(500));
    assert_eq!(failed.payload.as_deref(), Some("oops"));

    let hung = &from(&msgs, &hang_url)[0];
    assert_eq!(hung.r#type.as_deref(), Some("heka.httpinput.error"));
    assert_eq!(hung.severity, Some(1));
    assert!(
        hung.payload
            .as_deref()
            .unwrap()
            .contains("no complete response within"),
        "{hung:?}"
    );
    let refused = &from(&msgs, &format!("http://127.0.0.1:{closed}/"))[0];
    assert_eq!(refused.r#type.as_deref(), Some("heka.httpinput.error"));
    assert!(
        refused
            .payload
            .as_deref()
            .unwrap()
            .to_lowercase()
            .contains("connection refused"),
        "{refused:?}"
    );
    assert!(counter_reaches(&dir, "poll", "TimedOutCount", 1));
    assert!(counter_reaches(&dir, "poll", "FailedPollCount", 2));
    assert!(counter_reaches(&dir, "poll", "ErrorStatusCount", 1));
    assert!(counter_reaches(&dir, "poll", "PollCount", 6));
}

#[test]
fn https_requests_are_served_with_the_configured_certificate_and_plain_http_is_refused() {
    let dir = temp_dir("http-tls");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::NoCa;
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let port = free_tcp_port();
    let inputs = format!(
        r#"
[secure]
type = "HttpListenInput"
address = "127.0.0.1:{port}"
use_tls = true
[secure.tls]
cert_file = "{}"
key_file = "{}"
"#,
        cert_file.display(),
        key_file.display()
    );
    let hekate = Hekate::start(
        &dir,
        &config(&dir, &inputs, "Type == 'heka.httpdata.request'"),
        &[port],
    );
    let url = format!("https://localhost:{port}/tls");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (code, text) = curl(&[
        "--cacert",
        &cert_file.display().to_string(),
        "--resolve",
        &resolve,
        "--data-binary",
        "over tls",
        &url,
    ]);
    assert_eq!(code, 200, "{text}\n{}", hekate.stderr());
    let (code, _) = curl(&[
        "--data-binary",
        "plain",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_ne!(code, 200);
    let out = dir.join("base").join("out.hekad");
    assert!(wait_for(Duration::from_secs(10), || !read_stream(&out).is_empty()));
    let msgs = read_stream(&out);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload.as_deref(), Some("over tls"));
    assert_eq!(string(&msgs[0], "Path").as_deref(), Some("/tls"));
    assert!(counter_reaches(
        &dir,
        "secure",
        "TlsHandshakeFailedCount",
        1
    ));
}

#[test]
fn http_input_sends_its_method_body_headers_and_credentials() {
    let dir = temp_dir("http-both");
    let port = free_tcp_port();
    let inputs = format!(
        r#"
[listen]
type = "HttpListenInput"
address = "127.0.0.1:{port}"
auth_type = "Basic"
username = "poller"
password = "pw"
request_headers = ["X-Probe"]

[poll]
type = "HttpInput"
url = "http://127.0.0.1:{port}/probe?from=poll"
method = "PUT"
body = "ping body"
user = "poller"
password = "pw"
ticker_interval = 1
[poll.headers]
X-Probe = "p1"
"#
    );
    let hekate = Hekate::start(
        &dir,
        &config(&dir, &inputs, "Type =~ /^heka.http/"),
        &[port],
    );
    let out = dir.join("base").join("out.hekad");
    let of_type = |msgs: &[Message], t: &str| {
        msgs.iter()
            .filter(|m| m.r#type.as_deref() == Some(t))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(15), || {
            let msgs = read_stream(&out);
            !of_type(&msgs, "heka.httpdata.request").is_empty()
                && !of_type(&msgs, "heka.httpinput.data").is_empty()
        }),
        "{:#?}\n{}",
        read_stream(&out),
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    let got = &of_type(&msgs, "heka.httpdata.request")[0];
    assert_eq!(got.payload.as_deref(), Some("ping body"));
    assert_eq!(string(got, "X-Probe").as_deref(), Some("p1"));
    assert_eq!(string(got, "from").as_deref(), Some("poll"));
    assert_eq!(string(got, "UserAgent").as_deref(), Some("Heka"));
    assert_eq!(string(got, "Path").as_deref(), Some("/probe"));
    let answer = &of_type(&msgs, "heka.httpinput.data")[0];
    assert_eq!(int(answer, "StatusCode"), Some(200));
    assert_eq!(int(answer, "ResponseSize"), Some(0));
    assert_eq!(answer.payload.as_deref().unwrap_or(""), "");
    assert_eq!(
        answer.logger.as_deref(),
        Some(format!("http://127.0.0.1:{port}/probe?from=poll").as_str())
    );
}

/// Sends keep-alive POSTs of `body` until one is not answered 200 (or `max` were sent);
/// returns how many were answered 200 and the head of the last answer.
fn post_until_refused(port: u16, body: &[u8], max: usize) -> (usize, String) {
    use std::io::BufRead as _;
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    let head = format!(
        "POST /load HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for ok in 0..max {
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(body).unwrap();
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return (ok, answer);
            }
            let end = line == "\r\n";
            answer.push_str(&line);
            if end {
                break;
            }
        }
        if !answer.starts_with("HTTP/1.1 200") {
            return (ok, answer);
        }
    }
    (max, String::new())
}

#[test]
fn a_stalled_pipeline_slows_clients_then_answers_503_and_loses_nothing_it_accepted() {
    let dir = temp_dir("http-busy");
    let port = free_tcp_port();
    let sink = Sink::start(true);
    let core = hekate_engine::runtime::allowed_cores()[0];
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}
ring_capacity = 4
batch_size = 64
report_interval = 1

[busy]
type = "HttpListenInput"
address = "127.0.0.1:{port}"
busy_timeout = 1

[upstream]
type = "TcpOutput"
message_matcher = "Type == 'heka.httpdata.request'"
use_buffering = false
address = "{sink}"

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        sink = sink.addr,
    );
    let hekate = Hekate::start(&dir, &config, &[port]);
    let baseline_rss = hekate.rss_kib();
    let body = vec![b'b'; 60_000];
    let started = Instant::now();
    let (accepted, last) = post_until_refused(port, &body, 20_000);
    assert!(
        last.starts_with("HTTP/1.1 503") && last.contains("retry-after: 1"),
        "after {accepted} accepted: {last:?}\n{}",
        hekate.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // Memory stays bounded while the pipeline is stalled (64 bodies in the ring at most).
    assert!(
        hekate.rss_kib() < baseline_rss + 150 * 1024,
        "{} KiB → {} KiB",
        baseline_rss,
        hekate.rss_kib()
    );
    // Once the output drains, every body answered 200 arrives, and only those (the sink
    // keeps what a connection sent when it closes: at hekate's stop).
    sink.resume();
    assert!(counter_reaches(&dir, "busy", "BusyCount", 1));
    let mut hekate = hekate;
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let count = || {
        parse_stream(&sink.received.lock().unwrap())
            .iter()
            .filter(|m| m.payload.as_deref().map(str::len) == Some(body.len()))
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(30), || count() >= accepted),
        "{} of {accepted}\n{}",
        count(),
        hekate.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), accepted);
}

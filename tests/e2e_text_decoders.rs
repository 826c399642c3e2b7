//! Heka's text decoders in the real binary: lines over TCP, split by TokenSplitter, decoded,
//! written by FileOutput and read back.

mod common;

use std::time::Duration;

use common::*;
use hekate_model::message::Message;

fn start(name: &str, decoders: &str, decoder: &str) -> (Hekate, std::path::PathBuf, u16) {
    let dir = temp_dir(name);
    let core = hekate_engine::runtime::allowed_cores()[0];
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[lines]
type = "TcpInput"
address = "127.0.0.1:{port}"
splitter = "TokenSplitter"
decoder = "{decoder}"
send_decode_failures = true

{decoders}

[FileOutput]
message_matcher = "Logger == 'lines'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let hekate = Hekate::start(&dir, &config, &[port]);
    let path = dir.join("base").join("out.hekad");
    (hekate, path, port)
}

fn collect(hekate: &mut Hekate, path: &std::path::Path, n: usize) -> Vec<Message> {
    let complete = wait_for(Duration::from_secs(20), || read_stream(path).len() >= n);
    let msgs = read_stream(path);
    assert!(
        complete,
        "got {} of {n} messages: {msgs:#?}\n{}",
        msgs.len(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    assert_eq!(msgs.len(), n, "{msgs:#?}");
    msgs
}

fn string(m: &Message, name: &str) -> Option<String> {
    m.find_first_field(name)
        .and_then(|f| f.value_string.first().cloned())
}

fn failed(m: &Message) -> bool {
    m.find_first_field("decode_failure")
        .is_some_and(|f| f.value_bool == [true])
}

#[test]
fn json_lines_become_messages_and_a_bad_line_is_passed_on_as_a_failure() {
    let (mut hekate, path, port) = start(
        "json",
        r#"
[JsonDecoder]
message_type = "app"
map_fields = true
Severity = "level"
Hostname = "host"
Timestamp = "time"
timestamp_format = "%Y-%m-%dT%H:%M:%S%z"
"#,
        "JsonDecoder",
    );
    send_tcp(
        port,
        concat!(
            r#"{"time":"2026-12-07T10:00:00.250+01:00","level":3,"host":"web1","msg":"hello","req":{"path":"/a","ms":12.5},"tags":["x","y"],"ok":true}"#,
            "\n",
            "{not json}\n",
            r#"{"time":"2026-12-07T10:00:01+01:00","level":6,"host":"web2","msg":"bye"}"#,
            "\r\n",
        )
        .as_bytes(),
    );
    let msgs = collect(&mut hekate, &path, 3);
    let ok: Vec<&Message> = msgs.iter().filter(|m| !failed(m)).collect();
    assert_eq!(ok.len(), 2, "{msgs:#?}");
    let m = ok
        .iter()
        .find(|m| string(m, "msg").as_deref() == Some("hello"))
        .unwrap();
    assert_eq!(m.r#type.as_deref(), Some("app"));
    assert_eq!(m.severity, Some(3));
    assert_eq!(m.hostname.as_deref(), Some("web1"));
    assert_eq!(m.logger.as_deref(), Some("lines"));
    assert_eq!(m.timestamp, 1_796_634_000_250_000_000);
    assert_eq!(m.payload, None);
    assert_eq!(string(m, "req.path").as_deref(), Some("/a"));
    assert_eq!(m.find_first_field("req.ms").unwrap().value_double, [12.5]);
    assert_eq!(string(m, "tags.2").as_deref(), Some("y"));
    assert_eq!(m.find_first_field("ok").unwrap().value_bool, [true]);
    assert!(m.find_first_field("time").is_none());
    let m = ok
        .iter()
        .find(|m| string(m, "msg").as_deref() == Some("bye"))
        .unwrap();
    assert_eq!(m.hostname.as_deref(), Some("web2"));
    assert_eq!(m.severity, Some(6));
    let bad = msgs.iter().find(|m| failed(m)).unwrap();
    assert_eq!(
        bad.payload.as_deref().map(str::trim_end),
        Some("{not json}")
    );
}

#[test]
fn apache_lines_are_parsed_by_payload_regex_decoder() {
    let (mut hekate, path, port) = start(
        "regex",
        r#"
[apache]
type = "PayloadRegexDecoder"
match_regex = '^(?P<RemoteIP>\S+) \S+ \S+ \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>[^\s]+)[^"]*" (?P<StatusCode>\d+) (?P<RequestSize>\d+)'
timestamp_layout = "02/Jan/2006:15:04:05 -0700"

[apache.message_fields]
Type = "ApacheLogfile"
"Url|uri" = "%Url%"
Method = "%Method%"
"StatusCode||int" = "%StatusCode%"
"RequestSize|B|int" = "%RequestSize%"
"#,
        "apache",
    );
    send_tcp(
        port,
        concat!(
            "10.0.0.1 - - [18/Apr/2013:14:00:28 -0700] \"GET /index.html HTTP/1.1\" 200 512\n",
            "garbage\n",
        )
        .as_bytes(),
    );
    let msgs = collect(&mut hekate, &path, 2);
    let m = msgs.iter().find(|m| !failed(m)).unwrap();
    assert_eq!(m.r#type.as_deref(), Some("ApacheLogfile"));
    assert_eq!(m.timestamp, 1_366_318_828_000_000_000);
    assert_eq!(string(m, "Url").as_deref(), Some("/index.html"));
    assert_eq!(
        m.find_first_field("Url").unwrap().representation.as_deref(),
        Some("uri")
    );
    assert_eq!(
        m.find_first_field("StatusCode").unwrap().value_integer,
        [200]
    );
    assert_eq!(
        m.find_first_field("RequestSize").unwrap().value_integer,
        [512]
    );
    assert_eq!(string(m, "Method").as_deref(), Some("GET"));
    assert!(
        msgs.iter().any(failed),
        "the garbage line is passed on as a failure"
    );
}

#[test]
fn a_multi_decoder_parses_then_tags_and_falls_back() {
    let (mut hekate, path, port) = start(
        "multi",
        r#"
[chain]
type = "MultiDecoder"
subs = ["parsed_or_raw", "tag"]
cascade_strategy = "all"

[parsed_or_raw]
type = "MultiDecoder"
subs = ["kv", "raw"]

[kv]
type = "PayloadRegexDecoder"
match_regex = '^(?P<key>\w+)=(?P<value>\d+)$'
[kv.message_fields]
Type = "kv"
"value||int" = "%value%"
key = "%key%"

[raw]
type = "PayloadRegexDecoder"
match_regex = '^(?P<text>.*)$'
[raw.message_fields]
Type = "raw"

[tag]
type = "ScribbleDecoder"
[tag.message_fields]
"dc|site" = "fra1"
"#,
        "chain",
    );
    send_tcp(port, b"load=42\nsomething else\n");
    let msgs = collect(&mut hekate, &path, 2);
    let kv = msgs
        .iter()
        .find(|m| m.r#type.as_deref() == Some("kv"))
        .unwrap();
    assert_eq!(kv.find_first_field("value").unwrap().value_integer, [42]);
    assert_eq!(string(kv, "key").as_deref(), Some("load"));
    assert_eq!(string(kv, "dc").as_deref(), Some("fra1"));
    let raw = msgs
        .iter()
        .find(|m| m.r#type.as_deref() == Some("raw"))
        .unwrap();
    assert_eq!(raw.payload.as_deref(), Some("something else"));
    assert_eq!(string(raw, "dc").as_deref(), Some("fra1"));
    assert!(!msgs.iter().any(failed));
}

//! JsonDecoder against what `json.lua` (with lua_sandbox's cjson and `util.table_to_fields`)
//! makes of the same documents.

use super::*;
use crate::common::testing::{build as build_config, build_doc_sample};
use hekate_model::message::{Field, Message, MessageView, uuid_string};

const SRC: RecordSource<'static> = RecordSource {
    input: "app",
    hostname: "10.0.0.7",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

fn decoder_with(options: &str) -> JsonDecoder {
    let toml = format!("[d]\ntype = \"JsonDecoder\"\n{options}\n");
    let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
    JsonDecoder::new(Arc::new(configure(config.plugin("d").unwrap()).unwrap()))
}

fn try_decode(d: &mut JsonDecoder, line: &str) -> Result<Message, DecodeError> {
    let mut out = DecodedMessages::default();
    match d.decode(line.as_bytes(), &SRC, &mut out) {
        Ok(r) => {
            assert_eq!(r, Decoded::Messages(1));
            let bytes = out.iter().next().unwrap();
            MessageView::new(bytes).expect("a well-formed message");
            Ok(Message::decode_bytes(bytes).unwrap())
        }
        Err(e) => {
            assert!(out.is_empty(), "a refused record left a message");
            Err(e)
        }
    }
}

fn decode(options: &str, line: &str) -> Message {
    try_decode(&mut decoder_with(options), line).unwrap()
}

fn field<'a>(m: &'a Message, name: &str) -> Option<&'a Field> {
    m.fields.iter().find(|f| f.name == name)
}

fn string(m: &Message, name: &str) -> Option<String> {
    field(m, name).map(|f| {
        assert_eq!(f.value_type.unwrap_or(0), 0, "{name} is a STRING");
        f.value_string[0].clone()
    })
}

fn double(m: &Message, name: &str) -> Option<f64> {
    field(m, name).map(|f| {
        assert_eq!(f.value_type, Some(3), "{name} is a DOUBLE");
        f.value_double[0]
    })
}

fn names(m: &Message) -> Vec<&str> {
    let mut n: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
    n.sort_unstable();
    n
}

const ARTEMIS: &str = r#"{"msg":"Start Request","event":"artemis.web.ensure-running","extra":{"workspace-id":"cN907xLngi"},"time":"2015-05-06T20:40:05.509926234Z","severity":1}"#;

#[test]
fn doc_sample_builds() {
    build_doc_sample(include_str!("mod.rs"));
}

/// The example of `json.lua`'s own documentation, with its configuration.
#[test]
fn json_lua_documented_example() {
    let m = decode(
        "message_type = \"artemis\"\npayload_keep = true\nmap_fields = true\nSeverity = \"severity\"",
        &format!("{ARTEMIS}\n"),
    );
    assert_eq!(m.r#type.as_deref(), Some("artemis"));
    assert_eq!(m.severity, Some(1));
    assert_eq!(m.payload.as_deref(), Some(ARTEMIS), "no line end");
    assert_eq!(m.logger.as_deref(), Some("app"));
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
    assert_eq!(m.uuid.len(), 16);
    assert_eq!(
        names(&m),
        ["event", "extra.workspace-id", "msg", "time"],
        "the mapped member is no field"
    );
    assert_eq!(string(&m, "msg").as_deref(), Some("Start Request"));
    assert_eq!(
        string(&m, "extra.workspace-id").as_deref(),
        Some("cN907xLngi")
    );
    assert_eq!(
        string(&m, "time").as_deref(),
        Some("2015-05-06T20:40:05.509926234Z")
    );
}

/// A SandboxDecoder section running json.lua, with only its type changed.
#[test]
fn a_json_lua_section_switches_by_changing_its_type() {
    let section = "filename = \"lua_decoders/json.lua\"\nmemory_limit = 8000000\n\n[d.config]\ntype = \"artemis\"\npayload_keep = true\nmap_fields = true\nSeverity = \"severity\"";
    let m = decode(section, ARTEMIS);
    assert_eq!(m.r#type.as_deref(), Some("artemis"));
    assert_eq!(m.severity, Some(1));
    assert_eq!(m.payload.as_deref(), Some(ARTEMIS));
    let config = format!(
        "[d]\ntype = \"JsonDecoder\"\n{section}\n\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\ndecoder = \"d\"\n"
    );
    build_config(&config).unwrap();
    let bad = "[d.config]\nmap_feilds = true";
    let toml = format!("[d]\ntype = \"JsonDecoder\"\n{bad}\n");
    let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
    let e = configure(config.plugin("d").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("map_feilds"), "{e}");
}

/// Defaults: Type "json", no Payload, every member a field.
#[test]
fn defaults_keep_every_member_as_a_field() {
    let m = decode("", ARTEMIS);
    assert_eq!(m.r#type.as_deref(), Some("json"));
    assert_eq!(m.payload, None);
    assert_eq!(m.severity, None);
    assert_eq!(double(&m, "severity"), Some(1.0), "a Lua number");
    assert_eq!(names(&m).len(), 5);
}

/// Lua has doubles only; booleans stay booleans; cjson drops null; arrays are 1-based tables.
#[test]
fn values_become_fields_as_lua_writes_them() {
    let m = decode(
        "",
        r#"{"n":42,"big":12345678901234567890,"neg":-3,"f":0.25,"e":1e3,"t":true,"no":false,"nil":null,
            "tags":["a",null,"c",[1,{"x":"y"}]],"deep":{"a":{"b":{"c":"d"}}},"empty":{},"none":[],"s":"\u00e9\n\"q\""}"#,
    );
    assert_eq!(double(&m, "n"), Some(42.0));
    assert_eq!(double(&m, "big"), Some(12345678901234567890.0));
    assert_eq!(double(&m, "neg"), Some(-3.0));
    assert_eq!(double(&m, "f"), Some(0.25));
    assert_eq!(double(&m, "e"), Some(1000.0));
    let t = field(&m, "t").unwrap();
    assert_eq!(
        (t.value_type, t.value_bool.as_slice()),
        (Some(4), &[true][..])
    );
    assert_eq!(field(&m, "no").unwrap().value_bool, [false]);
    assert!(field(&m, "nil").is_none());
    assert_eq!(string(&m, "tags.1").as_deref(), Some("a"));
    assert!(
        field(&m, "tags.2").is_none(),
        "null is dropped, the index kept"
    );
    assert_eq!(string(&m, "tags.3").as_deref(), Some("c"));
    assert_eq!(double(&m, "tags.4.1"), Some(1.0));
    assert_eq!(string(&m, "tags.4.2.x").as_deref(), Some("y"));
    assert_eq!(string(&m, "deep.a.b.c").as_deref(), Some("d"));
    assert_eq!(string(&m, "s").as_deref(), Some("é\n\"q\""));
    assert!(
        !names(&m)
            .iter()
            .any(|n| n.starts_with("empty") || n.starts_with("none"))
    );
}

#[test]
fn headers_map_from_members_of_their_type() {
    let opts = r#"map_fields = true
Payload = "message"
Uuid = "id"
Type = "kind"
Logger = "source"
Hostname = "host"
Severity = "level"
EnvVersion = "v"
Pid = "pid""#;
    let m = decode(
        opts,
        r#"{"message":"hello","id":"0b0a2b5e-5f6e-4b39-9c61-3e2a5b7e0f11","kind":"k","source":"svc","host":"web1","level":3.9,"v":1.5,"pid":1234,"other":"x"}"#,
    );
    assert_eq!(m.payload.as_deref(), Some("hello"));
    assert_eq!(uuid_string(&m.uuid), "0b0a2b5e-5f6e-4b39-9c61-3e2a5b7e0f11");
    assert_eq!(m.r#type.as_deref(), Some("k"));
    assert_eq!(m.logger.as_deref(), Some("svc"));
    assert_eq!(m.hostname.as_deref(), Some("web1"));
    assert_eq!(m.severity, Some(3), "truncated as Lua's integer conversion");
    assert_eq!(m.env_version.as_deref(), Some("1.5"));
    assert_eq!(m.pid, Some(1234));
    assert_eq!(names(&m), ["other"]);

    // Wrong types stay fields; missing members leave the header to the input (Type, Logger,
    // Hostname) or empty (Payload, even with payload_keep, as json.lua does).
    let m = decode(
        &format!("{opts}\npayload_keep = true"),
        r#"{"level":"high","pid":"12","host":{"name":"x"}}"#,
    );
    assert_eq!(m.severity, None);
    assert_eq!(m.pid, None);
    assert_eq!(m.payload, None);
    assert_eq!(m.r#type, None);
    assert_eq!(m.logger.as_deref(), Some("app"));
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
    assert_eq!(names(&m), ["host.name", "level", "pid"]);

    // Without map_fields nothing maps.
    let m = decode("Severity = \"level\"", r#"{"level":3}"#);
    assert_eq!(m.severity, None);
    assert_eq!(double(&m, "level"), Some(3.0));
}

#[test]
fn timestamps_are_read_as_json_lua_reads_them() {
    // Nanoseconds since the epoch, with or without map_fields; the member is never a field.
    let m = decode("Timestamp = \"t\"", r#"{"t":1430944805509926234,"a":1}"#);
    assert_eq!(m.timestamp, 1430944805509926234f64 as i64);
    assert_eq!(names(&m), ["a"]);
    let m = decode("Timestamp = \"t\"", r#"{"t":"1430944805000000000"}"#);
    assert_eq!(m.timestamp, 1_430_944_805_000_000_000);
    // Text that is no number: the time of decoding.
    let before = now_ns();
    let m = decode("Timestamp = \"t\"", r#"{"t":"yesterday"}"#);
    assert!(m.timestamp >= before);
    assert!(m.fields.is_empty());

    // strftime, with fractions after %S, offsets, UTC without one.
    let iso = "Timestamp = \"time\"\ntimestamp_format = \"%Y-%m-%dT%H:%M:%SZ\"";
    let m = decode(iso, ARTEMIS);
    assert_eq!(m.timestamp, 1_430_944_805_509_926_234);
    assert!(field(&m, "time").is_none());
    let m = decode(
        "Timestamp = \"time\"\ntimestamp_format = \"%d/%b/%Y:%H:%M:%S %z\"",
        r#"{"time":"06/May/2015:13:40:05 -0700"}"#,
    );
    assert_eq!(m.timestamp, 1_430_944_805_000_000_000);
    let m = decode(
        "Timestamp = \"time\"\ntimestamp_format = \"%Y-%m-%d %H:%M:%S\"",
        r#"{"time":"2015-05-06 20:40:05"}"#,
    );
    assert_eq!(m.timestamp, 1_430_944_805_000_000_000);
    let offsets = "Timestamp = \"t\"\ntimestamp_format = \"%Y-%m-%dT%H:%M:%S%z\"";
    for t in [
        "2015-05-06T21:40:05+0100",
        "2015-05-06T21:40:05+01:00",
        "2015-05-06T20:40:05Z",
    ] {
        let m = decode(offsets, &format!("{{\"t\":\"{t}\"}}"));
        assert_eq!(m.timestamp, 1_430_944_805_000_000_000, "{t}");
    }
    // A timestamp that does not match fails the record.
    let e = try_decode(&mut decoder_with(iso), r#"{"time":"May 6"}"#).unwrap_err();
    assert_eq!(e.0, "Failed to decode timestamp.");
    // A missing member leaves the time of decoding.
    let m = decode(iso, r#"{"a":1}"#);
    assert!(m.timestamp >= before);
}

#[test]
fn a_bad_timestamp_format_is_refused_at_config_time() {
    let toml = "[d]\ntype = \"JsonDecoder\"\ntimestamp_format = \"%Y %!\"\n";
    let config = hekate_config::Config::from_str(toml, "t.toml").unwrap();
    let e = configure(config.plugin("d").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("timestamp_format"), "{e}");
}

#[test]
fn records_that_are_not_json_objects_fail() {
    let mut d = decoder_with("");
    for bad in [
        "",
        "not json",
        "{\"a\":",
        "{\"a\":1}}",
        "\"just text\"",
        "42",
        "null",
        "{\"a\":01}",
        "{'a':1}",
    ] {
        let e = try_decode(&mut d, bad).unwrap_err();
        assert!(e.0.starts_with("Failed to decode JSON"), "{bad:?}: {e}");
    }
    let deep = format!("{}{}", "[".repeat(1500), "]".repeat(1500));
    assert!(try_decode(&mut d, &deep).is_err());
    let fine = format!("{{\"a\":{}1{}}}", "[".repeat(900), "]".repeat(900));
    let m = try_decode(&mut d, &fine).unwrap();
    assert_eq!(m.fields.len(), 1);
    // The decoder carries on after failures.
    assert_eq!(
        double(&try_decode(&mut d, "{\"a\":1}").unwrap(), "a"),
        Some(1.0)
    );
}

#[test]
fn a_top_level_array_flattens_from_one() {
    let m = decode("", r#"[1,"b",{"c":true}]"#);
    assert_eq!(names(&m), ["1", "2", "3.c"]);
}

/// A Lua table holds one value per key: the last.
#[test]
fn a_repeated_name_is_one_field_with_the_last_value() {
    let m = decode("", r#"{"a":1,"b":2,"a":3,"x.y":"flat","x":{"y":"nested"}}"#);
    assert_eq!(names(&m), ["a", "b", "x.y"]);
    assert_eq!(double(&m, "a"), Some(3.0));
    assert_eq!(string(&m, "x.y").as_deref(), Some("nested"));
    // Many fields, many repeats (the sorted path).
    let doc = format!(
        "{{{}}}",
        (0..300)
            .map(|i| format!("\"k{}\":{i}", i % 100))
            .collect::<Vec<_>>()
            .join(",")
    );
    let m = decode("", &doc);
    assert_eq!(m.fields.len(), 100);
    assert_eq!(double(&m, "k7"), Some(207.0));
    // Fewer fields (the scanning path), names repeated many times and nested.
    let doc = format!(
        "{{{}}}",
        (0..200)
            .map(|i| format!("\"k{}\":{{\"x\":{i}}}", i % 10))
            .collect::<Vec<_>>()
            .join(",")
    );
    let m = decode("", &doc);
    assert_eq!(m.fields.len(), 10);
    assert_eq!(double(&m, "k3.x"), Some(193.0));
}

#[test]
fn invalid_utf8_is_replaced_and_counted() {
    let mut d = decoder_with("payload_keep = true");
    let mut out = DecodedMessages::default();
    let r = d.decode(b"{\"a\":\"x\xffy\"}\r\n", &SRC, &mut out).unwrap();
    assert_eq!(r, Decoded::Messages(1));
    let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
    assert_eq!(string(&m, "a").as_deref(), Some("x\u{FFFD}y"));
    assert_eq!(m.payload.as_deref(), Some("{\"a\":\"x\u{FFFD}y\"}"));
    assert_eq!(d.invalid_utf8, 1);
}

#[test]
fn the_input_type_fills_a_missing_mapped_type() {
    let mut d = decoder_with("map_fields = true\nType = \"kind\"");
    let src = RecordSource {
        msg_type: Some("logfile"),
        ..SRC
    };
    let mut out = DecodedMessages::default();
    d.decode(b"{\"a\":1}", &src, &mut out).unwrap();
    let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
    assert_eq!(m.r#type.as_deref(), Some("logfile"));
}

#[test]
fn strftime_formats_take_fractions_after_seconds() {
    assert_eq!(jiff_format("%Y-%m-%dT%H:%M:%SZ"), "%Y-%m-%dT%H:%M:%S%.fZ");
    assert_eq!(jiff_format("%T %z"), "%T%.f %z");
    assert_eq!(jiff_format("%S%.f"), "%S%.f");
    assert_eq!(jiff_format("%%S"), "%%S");
}

#[test]
fn an_encoded_message_is_decoded_from_its_payload() {
    let mut original = Message::new_now();
    original.payload = Some("{\"a\":1}".into());
    original.logger = Some("upstream".into());
    original.hostname = Some("h1".into());
    let bytes = original.to_bytes();
    let src = RecordSource {
        message_bytes: true,
        ..SRC
    };
    let mut d = decoder_with("payload_keep = true");
    let mut out = DecodedMessages::default();
    d.decode(&bytes, &src, &mut out).unwrap();
    let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
    assert_eq!(m.logger.as_deref(), Some("upstream"));
    assert_eq!(m.hostname.as_deref(), Some("h1"));
    assert_eq!(m.payload.as_deref(), Some("{\"a\":1}"));
    assert_eq!(double(&m, "a"), Some(1.0));
    let mut out = DecodedMessages::default();
    assert!(d.decode(b"\xff", &src, &mut out).is_err());
}

proptest::proptest! {
    /// Arbitrary bytes, and JSON-looking text: never a panic; a message or a failure that
    /// leaves nothing behind.
    #[test]
    fn arbitrary_records_decode_or_fail_cleanly(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        text in r#"[\[\]{}",:0-9a-z.eE+\- \\]{0,80}"#,
    ) {
        let mut d = decoder_with("map_fields = true\nSeverity = \"a\"\nPid = \"b\"\nTimestamp = \"t\"\ntimestamp_format = \"%Y\"");
        for record in [bytes.as_slice(), text.as_bytes()] {
            let mut out = DecodedMessages::default();
            match d.decode(record, &SRC, &mut out) {
                Ok(_) => {
                    let b = out.iter().next().unwrap();
                    Message::decode_bytes(b).unwrap();
                }
                Err(_) => proptest::prop_assert!(out.is_empty()),
            }
        }
    }
}

/// The fast path for `%Y-%m-%dT%H:%M:%SZ` reads what jiff reads, and nothing jiff refuses:
/// any text of its shape (impossible dates and times, fractions, which jiff's `%S` refuses)
/// and near misses.
#[test]
fn the_iso_fast_path_agrees_with_jiff() {
    use proptest::prelude::*;
    let shaped = (
        prop_oneof![0u32..10_000, 1600u32..2400],
        0u32..14,
        0u32..33,
        0u32..26,
        0u32..62,
        0u32..62,
        prop::option::of("[0-9]{0,11}"),
    )
        .prop_map(|(y, mo, d, h, mi, s, frac)| {
            let frac = frac.map_or(String::new(), |f| format!(".{f}"));
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z")
        });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(20_000));
    runner
        .run(&prop_oneof![shaped, "[-0-9T:.Z ]{18,32}"], |text| {
            if let Some(fast) = iso_utc_ns(&text) {
                prop_assert_eq!(Some(fast), jiff_time(ISO_UTC, &text), "{}", text);
            }
            prop_assert_eq!(
                parse_time(ISO_UTC, &text),
                jiff_time(ISO_UTC, &text),
                "{}",
                text
            );
            Ok(())
        })
        .unwrap();
    // The configured format, as the decoder holds it, is the one the fast path serves.
    assert_eq!(jiff_format("%Y-%m-%dT%H:%M:%SZ"), ISO_UTC);
    // The common cases take the fast path.
    for text in [
        "2026-12-07T18:15:02Z",
        "2024-02-29T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2026-11-24T21:33:12.123Z",
        "2026-11-24T21:33:12.123456789Z",
    ] {
        assert_eq!(iso_utc_ns(text), jiff_time(ISO_UTC, text), "{text}");
        assert!(iso_utc_ns(text).is_some(), "{text}");
    }
}

//! PayloadRegexDecoder against Heka's own specs (plugins/payload/payload_decoder_test.go,
//! pipeline/message_template_test.go) and the message it builds.

use super::*;
use crate::common::testing::build_doc_sample;
use hekate_model::message::{Field, Message, MessageView, uuid_string};
use jiff::tz::TimeZone;

const SRC: RecordSource<'static> = RecordSource {
    input: "logs",
    hostname: "web1",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

fn configure_with(options: &str) -> Result<Plan, String> {
    let toml = format!("[d]\ntype = \"PayloadRegexDecoder\"\n{options}\n");
    let config = hekate_config::Config::from_str(&toml, "t.toml").map_err(|e| e.to_string())?;
    configure(config.plugin("d").unwrap()).map_err(|e| e.to_string())
}

fn decoder_with(options: &str) -> Box<dyn Decoder> {
    PayloadRegexDecoderPlugin {
        plan: Arc::new(configure_with(options).unwrap()),
    }
    .new_decoder()
}

fn run(
    d: &mut Box<dyn Decoder>,
    source: &RecordSource<'_>,
    record: &[u8],
) -> Result<Option<Message>, DecodeError> {
    let mut out = DecodedMessages::default();
    match d.decode(record, source, &mut out)? {
        Decoded::Messages(0) => {
            assert!(out.is_empty());
            Ok(None)
        }
        Decoded::Messages(1) => {
            let bytes = out.iter().next().unwrap();
            MessageView::new(bytes).expect("a well-formed message");
            Ok(Some(Message::decode_bytes(bytes).unwrap()))
        }
        other => panic!("{other:?}"),
    }
}

fn decode(options: &str, line: &str) -> Message {
    run(&mut decoder_with(options), &SRC, line.as_bytes())
        .unwrap()
        .expect("a message")
}

fn field<'a>(m: &'a Message, name: &str) -> &'a Field {
    m.fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}: {m:?}"))
}

/// Report counters by name.
#[derive(Default)]
struct Counts(Vec<(String, i64)>);

impl Counts {
    fn get(&self, name: &str) -> Option<i64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl ReportSink for Counts {
    fn int(&mut self, name: &str, value: i64, _: &str) {
        self.0.push((name.to_string(), value));
    }
    fn float(&mut self, _: &str, _: f64, _: &str) {}
    fn string(&mut self, _: &str, _: &str) {}
}

const TS: &str = r"match_regex = '\[(?P<Timestamp>[^\]]+)\]'";

#[test]
fn doc_sample_builds() {
    build_doc_sample(include_str!("mod.rs"));
}

#[test]
fn regexes_without_groups_or_invalid_are_refused() {
    let e = configure_with(r"match_regex = '\d+'").unwrap_err();
    assert!(e.contains("must contain capture groups"), "{e}");
    let e = configure_with(r"match_regex = '\mtest'").unwrap_err();
    assert!(e.contains("not a valid regular expression"), "{e}");
    let e = configure_with(&format!("{TS}\ntimestamp_location = \"Mars/Base\"")).unwrap_err();
    assert!(e.contains("timestamp_location"), "{e}");
    let e = configure_with(&format!("{TS}\ntimestamp_layout = \"EpochHours\"")).unwrap_err();
    assert!(e.contains("Epoch"), "{e}");
    let e = configure_with(&format!("{TS}\n[d.message_fields]\nCount = 5")).unwrap_err();
    assert!(e.contains("must be a string"), "{e}");
}

#[test]
fn reading_an_apache_timestamp() {
    let m = decode(
        &format!("{TS}\ntimestamp_layout = \"02/Jan/2006:15:04:05 -0700\""),
        "[18/Apr/2013:14:00:28 -0700]\n",
    );
    assert_eq!(m.timestamp, 1_366_318_828_000_000_000);
    // The message the input made: its Logger, Hostname and Payload (no line end).
    assert_eq!(m.logger.as_deref(), Some("logs"));
    assert_eq!(m.hostname.as_deref(), Some("web1"));
    assert_eq!(m.payload.as_deref(), Some("[18/Apr/2013:14:00:28 -0700]"));
    assert_eq!(m.uuid.len(), 16);
}

#[test]
fn a_payload_that_does_not_match_fails_or_is_dropped_quietly() {
    let mut d = decoder_with(TS);
    let e = run(&mut d, &SRC, b"invalid payload").unwrap_err();
    assert_eq!(e.0, "no match: invalid payload");
    let mut d = decoder_with(&format!("{TS}\nlog_errors = false"));
    assert_eq!(run(&mut d, &SRC, b"invalid payload").unwrap(), None);
    let mut report = Counts::default();
    d.report(&mut report);
    assert_eq!(report.get("NoMatchCount"), Some(1));
}

#[test]
fn kitchen_timestamps_take_todays_date() {
    let now = jiff::Timestamp::now().to_zoned_datetime(TimeZone::UTC);
    let m = decode(
        &format!("{TS}\ntimestamp_layout = \"02/Jan/2006:15:04:05 -0700\""),
        "[5:16PM]",
    );
    let want = jiff::civil::date(now.year(), now.month(), now.day())
        .at(17, 16, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_nanosecond() as i64;
    assert_eq!(m.timestamp, want);
}

#[test]
fn timestamps_are_adjusted_to_the_location() {
    let m = decode(
        &format!(
            "{TS}\ntimestamp_layout = \"02/Jan/2006:15:04:05\"\ntimestamp_location = \"America/Los_Angeles\""
        ),
        "[18/Apr/2013:14:00:28]",
    );
    // PDT, UTC-7.
    assert_eq!(m.timestamp, 1_366_318_828_000_000_000);
    // A timestamp that does not parse leaves the time of decoding, counted.
    let mut d = decoder_with(&format!("{TS}\ntimestamp_layout = \"Epoch\""));
    let before = hekate_model::writer::now_ns();
    let m = run(&mut d, &SRC, b"[yesterday]").unwrap().unwrap();
    assert!(m.timestamp >= before);
    let mut report = Counts::default();
    d.report(&mut report);
    assert_eq!(report.get("TimestampErrorCount"), Some(1));
    let m = run(&mut d, &SRC, b"[1366318828.5]").unwrap().unwrap();
    assert_eq!(m.timestamp, 1_366_318_828_500_000_000);
}

#[test]
fn representation_metadata_applies_to_captured_fields() {
    let m = decode(
        r#"match_regex = '(?P<ResponseTime>\d+\.\d+)'
[d.message_fields]
"ResponseTime|s" = "%ResponseTime%"
"Payload|s" = "%ResponseTime%"
Payload = "header""#,
        "0.23",
    );
    let f = field(&m, "ResponseTime");
    assert_eq!(f.value_string, ["0.23"]);
    assert_eq!(f.representation.as_deref(), Some("s"));
    let f = field(&m, "Payload");
    assert_eq!(f.value_string, ["0.23"]);
    assert_eq!(f.representation.as_deref(), Some("s"));
    assert_eq!(m.payload.as_deref(), Some("header"));
}

#[test]
fn severity_comes_from_the_map_or_a_number() {
    let opts = r#"match_regex = 'severity: (?P<Severity>[a-zA-Z0-9]+)'
[d.severity_map]
emergency = 0
error = 3
warning = 4
debug = 7
[d.message_fields]
Seen = "%Severity%""#;
    let mut d = decoder_with(opts);
    let sev = |d: &mut Box<dyn Decoder>, line: &str| {
        run(d, &SRC, line.as_bytes()).unwrap().unwrap().severity
    };
    assert_eq!(sev(&mut d, "2013 severity: warning x"), Some(4));
    assert_eq!(sev(&mut d, "severity: emergency"), Some(0));
    assert_eq!(sev(&mut d, "severity: 2"), Some(2));
    assert_eq!(
        sev(&mut d, "severity: BOGUS"),
        None,
        "not recognised: no Severity"
    );
    let m = run(&mut d, &SRC, b"severity: debug").unwrap().unwrap();
    assert_eq!(
        field(&m, "Seen").value_string,
        ["<Severity>"],
        "Heka drops the capture"
    );
    let mut report = Counts::default();
    d.report(&mut report);
    assert_eq!(report.get("SeverityErrorCount"), Some(1));
}

/// pipeline/message_template_test.go, with captures.
#[test]
fn message_templates_set_headers_and_typed_fields() {
    let opts = r#"match_regex = '^(?P<host>\S+) (?P<n>\S+) (?P<f>\S+) (?P<b>\S+)(?: (\w+))?'
[d.message_fields]
Logger = "test logger"
Payload = "this is %host%"
Hostname = "%host%.example.com"
Pid = "123.456"
Type = "another %missing%"
Severity = "23"
Uuid = "0b0a2b5e-5f6e-4b39-9c61-3e2a5b7e0f11"
"tmplTest|baz" = "bar"
"Count||int" = "%n%"
"Ratio|%|float" = "%f%"
"Ok||bool" = "%b%"
"Raw||bytes" = "%host%"
"Bad||int" = "%host%"
Unnamed = "[%5%]"
Timestamp = "not a header"
"#;
    let m = decode(opts, "otherhost 42 0.5 true extra");
    assert_eq!(m.logger.as_deref(), Some("test logger"));
    assert_eq!(m.payload.as_deref(), Some("this is otherhost"));
    assert_eq!(m.hostname.as_deref(), Some("otherhost.example.com"));
    assert_eq!(m.pid, Some(123));
    assert_eq!(m.r#type.as_deref(), Some("another <missing>"));
    assert_eq!(m.severity, Some(23));
    assert_eq!(uuid_string(&m.uuid), "0b0a2b5e-5f6e-4b39-9c61-3e2a5b7e0f11");
    let f = field(&m, "tmplTest");
    assert_eq!(
        (f.value_string.as_slice(), f.representation.as_deref()),
        (&["bar".to_string()][..], Some("baz"))
    );
    assert_eq!(field(&m, "Count").value_integer, [42]);
    assert_eq!(field(&m, "Ratio").value_double, [0.5]);
    assert_eq!(field(&m, "Ratio").representation.as_deref(), Some("%"));
    assert_eq!(field(&m, "Ok").value_bool, [true]);
    assert_eq!(field(&m, "Raw").value_bytes, [b"otherhost".to_vec()]);
    assert_eq!(
        field(&m, "Bad").value_string,
        ["otherhost"],
        "no int: stays text"
    );
    assert_eq!(field(&m, "Unnamed").value_string, ["[extra]"]);
    assert_eq!(field(&m, "Timestamp").value_string, ["not a header"]);
    // An unmatched optional group is empty.
    let m = decode(opts, "h 1 2 3");
    assert_eq!(field(&m, "Unnamed").value_string, ["[]"]);

    for (bad, why) in [
        ("Pid = \"%host%\"", "Pid"),
        ("Severity = \"high\"", "Severity"),
        ("Uuid = \"nope\"", "UUID"),
    ] {
        let mut d = decoder_with(&format!(
            "match_regex = '(?P<host>\\S+)'\n[d.message_fields]\n{bad}"
        ));
        let e = run(&mut d, &SRC, b"x").unwrap_err();
        assert!(e.0.contains(why), "{e}");
    }
}

/// A record that is an encoded message (HekaFramingSplitter, or a MultiDecoder's earlier
/// decoder): its Payload is matched and the message keeps what it had.
#[test]
fn encoded_messages_are_decoded_in_place() {
    let mut original = Message::new_now();
    original.payload = Some("GET /a 200".into());
    original.logger = Some("upstream".into());
    original.hostname = Some("h1".into());
    original.pid = Some(9);
    original.fields.push(Field::string("kept", "yes"));
    let bytes = original.to_bytes();
    let src = RecordSource {
        message_bytes: true,
        ..SRC
    };
    let mut d = decoder_with(
        "match_regex = '^(?P<Method>\\S+) (?P<Path>\\S+) (?P<Status>\\d+)'\n[d.message_fields]\n\"Status||int\" = \"%Status%\"\nPath = \"%Path%\"",
    );
    let m = run(&mut d, &src, &bytes).unwrap().unwrap();
    assert_eq!(m.uuid, original.uuid);
    assert_eq!(m.timestamp, original.timestamp);
    assert_eq!(m.logger.as_deref(), Some("upstream"));
    assert_eq!(m.hostname.as_deref(), Some("h1"));
    assert_eq!(m.pid, Some(9));
    assert_eq!(m.payload.as_deref(), Some("GET /a 200"));
    assert_eq!(field(&m, "kept").value_string, ["yes"]);
    assert_eq!(field(&m, "Status").value_integer, [200]);
    assert_eq!(field(&m, "Path").value_string, ["/a"]);
    assert!(run(&mut d, &src, b"\xff\xff").is_err(), "not a message");
}

#[test]
fn invalid_utf8_payloads_are_matched_as_repaired_text() {
    let m = decode(
        "match_regex = '^(?P<word>\\w+) (?P<rest>.*)$'\n[d.message_fields]\nrest = \"%rest%\"",
        "hello w\u{FFFD}rld",
    );
    assert_eq!(field(&m, "rest").value_string, ["w\u{FFFD}rld"]);
    let mut d = decoder_with(
        "match_regex = '^(?P<word>\\w+) (?P<rest>.*)$'\n[d.message_fields]\nrest = \"%rest%\"",
    );
    let m = run(&mut d, &SRC, b"hello w\xffrld").unwrap().unwrap();
    assert_eq!(field(&m, "rest").value_string, ["w\u{FFFD}rld"]);
}

proptest::proptest! {
    /// Arbitrary timestamps through a Go layout and the standard ones, arbitrary layouts over
    /// arbitrary text: never a panic.
    #[test]
    fn arbitrary_timestamps_and_layouts_never_panic(
        text in r"[0-9A-Za-z :.,+\-/_]{0,40}",
        layout in r"[0-9A-Za-z :.,+\-/_]{0,30}",
    ) {
        let tz = jiff::tz::db().get("Europe/Berlin").unwrap();
        let today = Today::in_zone(&tz);
        let l = TimestampLayout::new("02/Jan/2006:15:04:05.000 -0700").unwrap();
        let _ = l.parse(&text, &tz, Some(today));
        if let Ok(l) = TimestampLayout::new(&layout) {
            let _ = l.parse(&text, &tz, Some(today));
        }
        let mut d = decoder_with("match_regex = '^(?P<Timestamp>[^|]*)\\|(?P<Severity>.*)$'\ntimestamp_layout = \"Jan _2 15:04:05\"");
        let _ = run(&mut d, &SRC, format!("{text}|{layout}").as_bytes());
    }
}

//! PayloadXmlDecoder: the captures its XPaths make of a Payload and the message it builds.

use super::*;
use crate::common::testing::build_doc_sample;
use hekate_model::message::{Field, Message, MessageView};

const SRC: RecordSource<'static> = RecordSource {
    input: "logs",
    hostname: "web1",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

fn configure_with(options: &str) -> Result<Plan, String> {
    let toml = format!("[d]\ntype = \"PayloadXmlDecoder\"\n{options}\n");
    let config = hekate_config::Config::from_str(&toml, "t.toml").map_err(|e| e.to_string())?;
    configure(config.plugin("d").unwrap()).map_err(|e| e.to_string())
}

fn decoder_with(options: &str) -> Box<dyn Decoder> {
    PayloadXmlDecoderPlugin {
        plan: Arc::new(configure_with(options).unwrap()),
    }
    .new_decoder()
}

fn run(
    d: &mut Box<dyn Decoder>,
    source: &RecordSource<'_>,
    record: &[u8],
) -> Result<Message, DecodeError> {
    let mut out = DecodedMessages::default();
    match d.decode(record, source, &mut out) {
        Ok(Decoded::Messages(1)) => {
            let bytes = out.iter().next().unwrap();
            MessageView::new(bytes).expect("a well-formed message");
            Ok(Message::decode_bytes(bytes).unwrap())
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => {
            assert!(out.is_empty(), "a refused record leaves nothing");
            Err(e)
        }
    }
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
    fn of(d: &dyn Decoder) -> Counts {
        let mut c = Counts::default();
        d.report(&mut c);
        c
    }
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

const ORDER: &str = r#"<?xml version="1.0"?>
<order id="A-17" created="2013-04-18 14:00:28">
  <status>shipped</status>
  <customer><name>Ada <b>Lovelace</b></name></customer>
  <item sku="x1">pen</item>
  <item sku="x2">ink</item>
  <total>12.50</total>
</order>"#;

const ORDER_OPTIONS: &str = r#"timestamp_layout = "2006-01-02 15:04:05"
timestamp_location = "Europe/Berlin"
[d.xpath_map]
Timestamp = "/order/@created"
Severity = "/order/status"
Id = "/order/@id"
Customer = "/order/customer/name"
Sku = "//item/@sku"
Items = "count(/order/item)"
Total = "/order/total"
[d.severity_map]
shipped = 6
failed = 3
[d.message_fields]
Type = "Order %Id%"
Customer = "%Customer%"
Sku = "%Sku%"
"Items||int" = "%Items%"
"Total|EUR|float" = "%Total%"
Status = "%Severity%"
"#;

#[test]
fn doc_sample_builds() {
    build_doc_sample(include_str!("mod.rs"));
}

#[test]
fn xpath_captures_fill_the_message_fields() {
    let m = run(&mut decoder_with(ORDER_OPTIONS), &SRC, ORDER.as_bytes()).unwrap();
    assert_eq!(m.r#type.as_deref(), Some("Order A-17"));
    // An element's string value is all the text below it.
    assert_eq!(field(&m, "Customer").value_string, ["Ada Lovelace"]);
    // A path that selects several nodes captures the first in document order.
    assert_eq!(field(&m, "Sku").value_string, ["x1"]);
    assert_eq!(field(&m, "Items").value_integer, [2]);
    assert_eq!(field(&m, "Total").value_double, [12.5]);
    assert_eq!(field(&m, "Total").representation.as_deref(), Some("EUR"));
    // The message the input made: Logger, Hostname, the Payload kept as it was.
    assert_eq!(m.logger.as_deref(), Some("logs"));
    assert_eq!(m.hostname.as_deref(), Some("web1"));
    assert_eq!(m.payload.as_deref(), Some(ORDER));
}

#[test]
fn timestamp_and_severity_captures_set_the_headers() {
    let mut d = decoder_with(ORDER_OPTIONS);
    let m = run(&mut d, &SRC, ORDER.as_bytes()).unwrap();
    // 14:00:28 in Berlin (CEST, UTC+2) on 18 April 2013.
    assert_eq!(m.timestamp, 1_366_286_428_000_000_000);
    assert_eq!(m.severity, Some(6));
    assert_eq!(
        field(&m, "Status").value_string,
        ["<Severity>"],
        "Heka drops the Severity capture"
    );

    // A number is a severity too; a word the map does not know leaves none, counted, and so
    // does a timestamp that does not parse (the time of decoding stays).
    let failed = ORDER
        .replace("shipped", "2")
        .replace("2013-04-18", "yesterday");
    let before = hekate_model::writer::now_ns();
    let m = run(&mut d, &SRC, failed.as_bytes()).unwrap();
    assert_eq!(m.severity, Some(2));
    assert!(m.timestamp >= before);
    let m = run(&mut d, &SRC, ORDER.replace("shipped", "lost").as_bytes()).unwrap();
    assert_eq!(m.severity, None);
    let counts = Counts::of(d.as_ref());
    assert_eq!(counts.get("TimestampErrorCount"), Some(1));
    assert_eq!(counts.get("SeverityErrorCount"), Some(1));
}

/// Heka's default layout is no Go layout, so Go's standard ones read the Timestamp:
/// RFC 3339 / ISO 8601 times parse.
#[test]
fn the_default_layout_reads_iso8601_timestamps() {
    let mut d = decoder_with("[d.xpath_map]\nTimestamp = \"/e/@t\"");
    let m = run(&mut d, &SRC, br#"<e t="2012-04-23T18:25:43.511Z"/>"#).unwrap();
    assert_eq!(m.timestamp, 1_335_205_543_511_000_000);
    let m = run(&mut d, &SRC, br#"<e t="2012-04-23T20:25:43+02:00"/>"#).unwrap();
    assert_eq!(m.timestamp, 1_335_205_543_000_000_000);
    assert_eq!(Counts::of(d.as_ref()).get("TimestampErrorCount"), Some(0));
}

#[test]
fn an_xpath_that_selects_nothing_leaves_no_capture() {
    let opts = r#"[d.xpath_map]
Timestamp = "/order/missing"
Severity = "/order/@nope"
Gone = "/nothing/here"
Empty = "/order/empty"
[d.message_fields]
Gone = "[%Gone%]"
Empty = "[%Empty%]"
"#;
    let mut d = decoder_with(opts);
    let before = hekate_model::writer::now_ns();
    let m = run(&mut d, &SRC, b"<order><empty/></order>").unwrap();
    // As Heka's template does for a capture it lacks.
    assert_eq!(field(&m, "Gone").value_string, ["[<Gone>]"]);
    // An element that is there but empty is an empty capture.
    assert_eq!(field(&m, "Empty").value_string, ["[]"]);
    assert!(m.timestamp >= before);
    assert_eq!(m.severity, None);
    let counts = Counts::of(d.as_ref());
    assert_eq!(counts.get("TimestampErrorCount"), Some(0));
    assert_eq!(counts.get("SeverityErrorCount"), Some(0));
}

#[test]
fn a_payload_that_is_not_xml_is_a_decode_failure() {
    let mut d = decoder_with(ORDER_OPTIONS);
    for bad in [
        &b"plain text"[..],
        b"",
        b"<a><b></a>",
        b"<a>one</a><b>two</b>",
        b"<a>&unknown;</a>",
    ] {
        let e = run(&mut d, &SRC, bad).unwrap_err();
        assert!(e.0.starts_with("not well-formed XML"), "{e:?}");
        assert!(e.0.ends_with(&*String::from_utf8_lossy(bad)), "{e:?}");
    }
    // The decoder goes on with the next record.
    assert!(run(&mut d, &SRC, ORDER.as_bytes()).is_ok());
}

/// A DOCTYPE may declare entities, but they are never expanded: a "billion laughs" fails the
/// record instead of growing it.
#[test]
fn entities_are_not_expanded() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;
    let mut d = decoder_with("[d.xpath_map]\nText = \"/lolz\"");
    let e = run(&mut d, &SRC, laughs.as_bytes()).unwrap_err();
    assert!(e.0.starts_with("not well-formed XML"), "{e:?}");
    assert!(e.0.contains("UnknownNamedReference"), "{e:?}");
    // The predefined entities and character references are read.
    let mut d = decoder_with("[d.xpath_map]\nText = \"/t\"\n[d.message_fields]\nText = \"%Text%\"");
    let m = run(
        &mut d,
        &SRC,
        b"<?xml version=\"1.0\"?><!DOCTYPE t><t>a &amp; b &#x263A;</t>",
    )
    .unwrap();
    assert_eq!(field(&m, "Text").value_string, ["a & b \u{263A}"]);
}

#[test]
fn deeply_nested_elements_fail_the_record_without_exhausting_the_stack() {
    let nested = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    let opts = "[d.xpath_map]\nAll = \"string(/)\"\nDeep = \"//a[not(a)]\"";
    // Run on a small stack, so that a recursion per level would show.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut d = decoder_with(opts);
            assert!(run(&mut d, &SRC, nested(MAX_DEPTH).as_bytes()).is_ok());
            let e = run(&mut d, &SRC, nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
            assert!(
                e.0.starts_with("XML elements nested deeper than 512"),
                "{e:?}"
            );
            assert!(run(&mut d, &SRC, nested(20_000).as_bytes()).is_err());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn invalid_options_are_config_errors() {
    for (bad, why) in [
        ("Id = \"/order[\"", "is not a valid XPath"),
        ("Id = \"\"", "it is empty"),
        ("Id = \"//\"", "is not a valid XPath"),
        ("Id = \"frobnicate(/a)\"", "unknown function"),
        ("Id = \"$x\"", "unknown variable"),
        ("Id = \"/ns:order\"", "namespace prefixes"),
        ("Id = \"//ns:*\"", "namespace prefixes"),
        ("Id = \"/a[@x:y]\"", "namespace prefixes"),
    ] {
        let e = configure_with(&format!("[d.xpath_map]\n{bad}")).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.contains("xpath_map"), "{e}");
    }
    // Axes and string literals have colons of their own.
    configure_with("[d.xpath_map]\nA = \"/child::a/attribute::b[. = 'x:y']\"").unwrap();
    let e = configure_with("timestamp_location = \"Mars/Base\"").unwrap_err();
    assert!(e.contains("timestamp_location"), "{e}");
    let e = configure_with("timestamp_layout = \"EpochHours\"").unwrap_err();
    assert!(e.contains("Epoch"), "{e}");
    let e = configure_with("[d.message_fields]\nCount = 5").unwrap_err();
    assert!(e.contains("must be a string"), "{e}");
    let e = configure_with("match_regex = '(.)'").unwrap_err();
    assert!(e.contains("match_regex"), "{e}");
}

/// A record that is an encoded message (HekaFramingSplitter, or a MultiDecoder's earlier
/// decoder): its Payload is parsed and the message keeps what it had.
#[test]
fn encoded_messages_are_decoded_in_place() {
    let mut original = Message::new_now();
    original.payload = Some("<r><code>404</code></r>".into());
    original.logger = Some("upstream".into());
    original.fields.push(Field::string("kept", "yes"));
    let bytes = original.to_bytes();
    let src = RecordSource {
        message_bytes: true,
        ..SRC
    };
    let mut d = decoder_with(
        "[d.xpath_map]\nCode = \"/r/code\"\n[d.message_fields]\n\"Code||int\" = \"%Code%\"",
    );
    let m = run(&mut d, &src, &bytes).unwrap();
    assert_eq!(m.uuid, original.uuid);
    assert_eq!(m.timestamp, original.timestamp);
    assert_eq!(m.logger.as_deref(), Some("upstream"));
    assert_eq!(field(&m, "kept").value_string, ["yes"]);
    assert_eq!(field(&m, "Code").value_integer, [404]);
}

proptest::proptest! {
    /// Arbitrary text and XML-looking text: never a panic, and a record either becomes one
    /// message or is refused.
    #[test]
    fn arbitrary_payloads_never_panic(
        text in r#"(<[a-c]( [a-c]="[^"<]{0,5}")?/?>|</[a-c]>|<!--[^>]{0,5}-->|<!\[CDATA\[[^\]]{0,5}\]\]>|<!DOCTYPE [a-c]( \[[^\]]{0,8}\])?>|&[a-z#0-9]{0,6};|<\?[a-z]{1,4} [^?]{0,4}\?>|[^<&]{0,6}){0,12}"#,
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
    ) {
        let mut d = decoder_with(ORDER_OPTIONS);
        let mut d2 = decoder_with("[d.xpath_map]\nAll = \"string(/)\"\nA = \"//a/@a\"\nN = \"count(//*)\"\n[d.message_fields]\n\"N||int\" = \"%N%\"\nAll = \"%All%\"");
        for record in [text.as_bytes(), &bytes[..]] {
            let _ = run(&mut d, &SRC, record);
            let _ = run(&mut d2, &SRC, record);
        }
    }
}

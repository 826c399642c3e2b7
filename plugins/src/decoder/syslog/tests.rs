//! SyslogDecoder on lines as real senders write them, and the messages it makes of them.

use super::*;
use crate::common::testing::{build as build_config, build_doc_sample};
use hekate_model::message::{Field, Message, MessageView};

/// 2026-11-24T21:33:12Z
const NOW: i64 = 1_795_555_992_000_000_000;

const SRC: RecordSource<'static> = RecordSource {
    input: "syslog",
    hostname: "10.0.0.7",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

fn decoder_with(options: &str) -> SyslogDecoder {
    let toml = format!("[d]\ntype = \"SyslogDecoder\"\n{options}\n");
    let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
    let mut d = configure(config.plugin("d").unwrap()).unwrap().decoder();
    d.clock.fixed_now = Some(NOW);
    d
}

fn decode_with(d: &mut SyslogDecoder, line: &str) -> Message {
    let mut out = DecodedMessages::default();
    let r = d.decode(line.as_bytes(), &SRC, &mut out);
    assert_eq!(r, Ok(Decoded::Messages(1)), "{line:?}");
    let bytes = out.iter().next().unwrap();
    MessageView::new(bytes).expect("a well-formed message");
    Message::decode_bytes(bytes).unwrap()
}

fn decode(line: &str) -> Message {
    decode_with(&mut decoder_with(""), line)
}

fn utc(s: &str) -> i64 {
    let t: jiff::Timestamp = s.parse().unwrap();
    t.as_nanosecond() as i64
}

fn field<'a>(m: &'a Message, name: &str) -> Option<&'a Field> {
    m.fields.iter().find(|f| f.name == name)
}

fn string(m: &Message, name: &str) -> Option<String> {
    field(m, name).map(|f| {
        assert_eq!(f.value_type.unwrap_or(0), 0, "{name} is a string");
        f.value_string[0].clone()
    })
}

fn names(m: &Message) -> Vec<&str> {
    m.fields.iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn doc_sample_builds() {
    build_doc_sample(include_str!("mod.rs"));
}

/// `logger --rfc5424 -n host` (util-linux 2.38) and rsyslog's RSYSLOG_SyslogProtocol23Format.
#[test]
fn rfc5424_lines_map_as_rsyslog_lua_does() {
    let m = decode(
        "<13>1 2026-11-24T22:33:12.534102+01:00 web1 alice - - [timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"21250\"] hello world\n",
    );
    assert_eq!(m.timestamp, utc("2026-11-24T21:33:12.534102Z"));
    assert_eq!(m.severity, Some(5));
    assert_eq!(m.hostname.as_deref(), Some("web1"));
    assert_eq!(m.logger.as_deref(), Some("syslog"));
    assert_eq!(m.r#type, None, "rsyslog.lua sets no Type unless configured");
    assert_eq!(m.payload.as_deref(), Some("hello world"));
    assert_eq!(m.pid, None);
    assert_eq!(m.uuid.len(), 16);
    let facility = field(&m, "syslogfacility").unwrap();
    assert_eq!(facility.value_type, Some(3), "a DOUBLE, as a Lua number");
    assert_eq!(facility.value_double, [1.0]);
    assert_eq!(string(&m, "programname").as_deref(), Some("alice"));
    assert_eq!(string(&m, "app-name").as_deref(), Some("alice"));
    assert_eq!(string(&m, "sd.timeQuality.tzKnown").as_deref(), Some("1"));
    assert_eq!(
        string(&m, "sd.timeQuality.syncAccuracy").as_deref(),
        Some("21250")
    );
    assert_eq!(
        names(&m),
        [
            "syslogfacility",
            "programname",
            "app-name",
            "sd.timeQuality.tzKnown",
            "sd.timeQuality.isSynced",
            "sd.timeQuality.syncAccuracy"
        ],
        "NILVALUE PROCID and MSGID set no field"
    );
    // rsyslog forwarding with a numeric PROCID and a MSGID.
    let m = decode("<134>1 2026-11-24T21:33:12Z app7 nginx 8123 ACCESS - GET /index.html 200");
    assert_eq!(m.severity, Some(6));
    assert_eq!(field(&m, "syslogfacility").unwrap().value_double, [16.0]);
    assert_eq!(m.pid, Some(8123));
    assert_eq!(string(&m, "procid").as_deref(), Some("8123"));
    assert_eq!(string(&m, "msgid").as_deref(), Some("ACCESS"));
    assert_eq!(m.payload.as_deref(), Some("GET /index.html 200"));
}

/// RFC 5424 §6.5, example 3 and 4: structured data, a BOM, several elements.
#[test]
fn structured_data_becomes_sd_fields() {
    let m = decode(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event log entry...",
    );
    assert_eq!(m.timestamp, utc("2003-10-11T22:14:15.003Z"));
    assert_eq!(m.severity, Some(5));
    assert_eq!(field(&m, "syslogfacility").unwrap().value_double, [20.0]);
    assert_eq!(string(&m, "sd.exampleSDID@32473.iut").as_deref(), Some("3"));
    assert_eq!(
        string(&m, "sd.exampleSDID@32473.eventSource").as_deref(),
        Some("Application")
    );
    assert_eq!(
        string(&m, "sd.examplePriority@32473.class").as_deref(),
        Some("high")
    );
    assert_eq!(
        m.payload.as_deref(),
        Some("An application event log entry...")
    );
    // Escapes resolved, a parameterless element, a repeated parameter.
    let m = decode(r#"<13>1 - h a - - [x@1 q="say \"hi\" \\ [ok\]" q="2"][flag@1] m"#);
    assert_eq!(
        string(&m, "sd.x@1.q").as_deref(),
        Some(r#"say "hi" \ [ok]"#)
    );
    let repeated: Vec<_> = m.fields.iter().filter(|f| f.name == "sd.x@1.q").collect();
    assert_eq!(repeated.len(), 2);
    assert_eq!(repeated[1].value_string, ["2"]);
    assert_eq!(string(&m, "sd.flag@1").as_deref(), Some(""));
    // No timestamp: the time of decoding; no hostname: the input's.
    assert_eq!(m.timestamp, NOW);
    assert_eq!(m.hostname.as_deref(), Some("h"));
    let m = decode("<13>1 - - - - - - x");
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
}

/// rsyslog's RSYSLOG_TraditionalForwardFormat, `logger --rfc3164`, syslog-ng's network() output.
#[test]
fn rfc3164_lines_map_as_rsyslog_lua_does() {
    let m = decode(
        "<86>Feb  9 14:17:01 trink-x230 CRON[20758]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)\n",
    );
    assert_eq!(m.timestamp, utc("2026-02-09T14:17:01Z"));
    assert_eq!(m.severity, Some(6));
    assert_eq!(field(&m, "syslogfacility").unwrap().value_double, [10.0]);
    assert_eq!(m.hostname.as_deref(), Some("trink-x230"));
    assert_eq!(m.pid, Some(20758));
    assert_eq!(string(&m, "programname").as_deref(), Some("CRON"));
    assert_eq!(
        m.payload.as_deref(),
        Some("(root) CMD (   cd / && run-parts --report /etc/cron.hourly)")
    );
    assert_eq!(names(&m), ["syslogfacility", "programname"]);

    // logger --rfc3164 -n host: a tag without pid.
    let m = decode("<13>Nov 24 21:30:00 web1 alice: deploy finished\r\n");
    assert_eq!(m.pid, None);
    assert_eq!(string(&m, "programname").as_deref(), Some("alice"));
    assert_eq!(m.payload.as_deref(), Some("deploy finished"));

    // syslog-ng's network() destination.
    let m = decode("<38>Nov 24 21:33:10 gw sshd[4242]: Accepted publickey for bob from 10.1.2.3");
    assert_eq!(m.severity, Some(6));
    assert_eq!(field(&m, "syslogfacility").unwrap().value_double, [4.0]);
    assert_eq!(m.pid, Some(4242));
}

/// systemd-journald's ForwardToSyslog (through /dev/log: no hostname), in Berlin time.
#[test]
fn local_senders_write_no_hostname_and_local_time() {
    let mut d = decoder_with("tz = \"Europe/Berlin\"");
    let m = decode_with(
        &mut d,
        "<30>Nov 24 21:33:12 systemd[1]: Started session-4.scope - Session 4 of User alice.",
    );
    assert_eq!(m.timestamp, utc("2026-11-24T20:33:12Z"));
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
    assert_eq!(m.pid, Some(1));
    assert_eq!(string(&m, "programname").as_deref(), Some("systemd"));
    // rsyslog's high-precision local timestamps carry their offset.
    let m = decode_with(
        &mut d,
        "<13>2026-07-01T08:00:00.250+02:00 db1 postgres[77]: checkpoint complete",
    );
    assert_eq!(m.timestamp, utc("2026-07-01T06:00:00.25Z"));
}

#[test]
fn cisco_lines_lose_their_sequence_number() {
    let m = decode(
        "<189>4711: *Nov 24 21:33:12.345: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.1)",
    );
    assert_eq!(m.severity, Some(5));
    assert_eq!(field(&m, "syslogfacility").unwrap().value_double, [23.0]);
    assert_eq!(m.timestamp, utc("2026-11-24T21:33:12.345Z"));
    assert_eq!(
        string(&m, "programname").as_deref(),
        Some("%SYS-5-CONFIG_I")
    );
    assert_eq!(
        m.payload.as_deref(),
        Some("Configured from console by admin on vty0 (10.0.0.1)")
    );
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
}

#[test]
fn options_choose_what_is_set() {
    let mut d = decoder_with(
        "message_type = \"syslog\"\nhostname_keep = true\nheaders = [\"Severity\"]\nfields = [\"syslogtag\", \"protocol-version\", \"structured-data\"]",
    );
    let m = decode_with(&mut d, "<13>Nov 24 21:30:00 web1 sshd[9]: x");
    assert_eq!(m.r#type.as_deref(), Some("syslog"));
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
    assert_eq!(m.timestamp, NOW, "the Timestamp header is not taken");
    assert_eq!(m.pid, None, "the Pid header is not taken");
    assert_eq!(names(&m), ["syslogtag"]);
    assert_eq!(string(&m, "syslogtag").as_deref(), Some("sshd[9]:"));
    let m = decode_with(&mut d, r#"<13>1 - h a - - [x k="v"] m"#);
    assert_eq!(names(&m), ["protocol-version", "structured-data"]);
    assert_eq!(
        string(&m, "structured-data").as_deref(),
        Some(r#"[x k="v"]"#)
    );
    // Without Hostname in `headers`, the input's.
    let mut d = decoder_with("headers = [\"Timestamp\"]");
    let m = decode_with(&mut d, "<13>Nov 24 21:30:00 web1 sshd[9]: x");
    assert_eq!(m.hostname.as_deref(), Some("10.0.0.7"));
    assert_eq!(m.severity, None);
}

#[test]
fn bad_options_are_refused_with_the_choices() {
    for (options, says) in [
        ("tz = \"Mars/Olympus\"", "unknown time zone"),
        (
            "headers = [\"Payload\"]",
            "Timestamp, Severity, Hostname, Pid",
        ),
        ("fields = [\"programName\"]", "programname"),
    ] {
        let e = build_config(&format!(
            "[d]\ntype = \"SyslogDecoder\"\n{options}\n[i]\ntype = \"TcpInput\"\naddress = \":1\"\ndecoder = \"d\"\n"
        ))
        .unwrap_err();
        assert!(e.contains(says), "{options}: {e}");
    }
}

#[test]
fn lines_that_are_not_syslog_fail_and_leave_nothing() {
    let mut d = decoder_with("");
    let mut out = DecodedMessages::default();
    for line in [
        &b"GET / HTTP/1.1"[..],
        b"",
        b"\r\n",
        b"<999>1 - - - - - -",
        b"<13>2 2026-11-24T21:33:12Z h a - - - m",
        b"<13>1 99999-11-24T21:33:12Z h a - - - m",
        b"<13>1 2026-11-24T21:33:12Z h a - - [x k=\"v",
        b"<13>1 2026-11-24T21:33:12Z h a - - [x k=\"a]b\"] m",
        b"<13>1 2026-11-24T21:33:12Z h\0 a - - - m",
    ] {
        let e = d.decode(line, &SRC, &mut out).unwrap_err();
        assert!(e.0.starts_with("not a syslog line: "), "{e}");
        assert!(out.is_empty());
    }
}

#[test]
fn text_that_is_not_utf8_is_repaired_and_counted() {
    let mut d = decoder_with("");
    let mut out = DecodedMessages::default();
    d.decode(b"<13>Nov 24 21:30:00 h p: caf\xe9 cr\xe8me", &SRC, &mut out)
        .unwrap();
    d.decode(b"<13>1 - h a - - [x k=\"\xff\"] \x00nul", &SRC, &mut out)
        .unwrap();
    let msgs: Vec<_> = out
        .iter()
        .map(|b| Message::decode_bytes(b).unwrap())
        .collect();
    assert_eq!(msgs[0].payload.as_deref(), Some("caf\u{fffd} cr\u{fffd}me"));
    assert_eq!(string(&msgs[1], "sd.x.k").as_deref(), Some("\u{fffd}"));
    assert_eq!(msgs[1].payload.as_deref(), Some("\0nul"));
    let mut sink = hekate_engine::plugin::FieldCollector::default();
    d.report(&mut sink);
    assert_eq!(sink.fields[0].name, "InvalidUtf8Count");
    assert_eq!(
        sink.fields[0].value,
        hekate_engine::stats::ReportValue::Int(2)
    );
}

/// The same line, many times: the output buffer is the only memory used (no allocation per
/// message beyond it), and every message is well formed.
#[test]
fn many_messages_share_one_buffer() {
    let mut d = decoder_with("");
    let mut out = DecodedMessages::default();
    let line = br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"lication" eventID="1011"] An application event log entry"#;
    for _ in 0..1000 {
        d.decode(line, &SRC, &mut out).unwrap();
    }
    assert_eq!(out.len(), 1000);
    for m in out.iter() {
        MessageView::new(m).unwrap();
    }
}

//! inject_message, inject_payload, add_to_payload, write_message.

mod common;

use common::*;
use hekate_model::message::{Field, FieldValue, Message, ValueType, uuid_string};
use hekate_sandbox::{
    ConfigValue, InjectError, Outcome, PluginType, Sandbox, SandboxHost, VecHost,
};

fn inject_one(ty: PluginType, table: &str) -> Message {
    let code = format!("function process_message() inject_message({table}) return 0 end");
    let mut sb = new(&code, ty);
    let host = process_ok(&mut sb, &sample());
    let msgs = host.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    msgs.into_iter().next().unwrap()
}

#[test]
fn inject_hash_form_types() {
    let m = inject_one(
        PluginType::Decoder,
        r#"{Type = "t", Logger = "l", Payload = "p", EnvVersion = "1", Hostname = "h",
            Severity = 3, Pid = 99, Timestamp = 12345,
            Fields = {s = "str", n = 1.5, i = {value = 7, value_type = 2, representation = "ms"},
                      b = true, by = {value = "\0\1", value_type = 1},
                      arr = {1, 2, 3}, sarr = {"a", "b"},
                      iarr = {value = {4, 5}, value_type = 2}}}"#,
    );
    assert_eq!(m.r#type.as_deref(), Some("t"));
    assert_eq!(m.logger.as_deref(), Some("l"));
    assert_eq!(m.payload.as_deref(), Some("p"));
    assert_eq!(m.env_version.as_deref(), Some("1"));
    assert_eq!(m.hostname.as_deref(), Some("h"));
    assert_eq!((m.severity, m.pid, m.timestamp), (Some(3), Some(99), 12345));
    assert_eq!(m.uuid.len(), 16);
    assert_eq!(field(&m, "s"), Some(FieldValue::String(b"str")));
    assert_eq!(field(&m, "n"), Some(FieldValue::Double(1.5)));
    let i = field_of(&m, "i");
    assert_eq!(i.kind(), ValueType::Integer);
    assert_eq!(i.value_integer, [7]);
    assert_eq!(i.representation.as_deref(), Some("ms"));
    assert_eq!(field(&m, "b"), Some(FieldValue::Bool(true)));
    assert_eq!(field(&m, "by"), Some(FieldValue::Bytes(b"\0\x01")));
    assert_eq!(field_of(&m, "arr").value_double, [1.0, 2.0, 3.0]);
    assert_eq!(field_of(&m, "sarr").value_string, ["a", "b"]);
    assert_eq!(field_of(&m, "iarr").value_integer, [4, 5]);
    assert_eq!(m.fields.len(), 8);
}

#[test]
fn inject_replaces_invalid_utf8_in_strings_but_not_in_bytes() {
    let m = inject_one(
        PluginType::Decoder,
        r#"{Payload = "\255ok", Fields = {s = "caf\233", b = {value = "\255", value_type = 1}}}"#,
    );
    assert_eq!(m.payload.as_deref(), Some("\u{FFFD}ok"));
    assert_eq!(field_str(&m, "s"), "caf\u{FFFD}");
    assert_eq!(field(&m, "b"), Some(FieldValue::Bytes(b"\xff")));
}

#[test]
fn inject_array_form() {
    let m = inject_one(
        PluginType::Decoder,
        r#"{Fields = {{name = "a", value = 1, value_type = 2},
                      {name = "a", value = {"x", "y"}, representation = "r"},
                      {name = "c", value = false}}}"#,
    );
    assert_eq!(m.fields.len(), 3);
    assert_eq!(m.fields[0].name, "a");
    assert_eq!(m.fields[0].value_integer, [1]);
    assert_eq!(m.fields[1].value_string, ["x", "y"]);
    assert_eq!(m.fields[1].representation.as_deref(), Some("r"));
    assert_eq!(m.fields[2].value_bool, [false]);
}

#[test]
fn inject_fills_uuid_and_timestamp() {
    let m = inject_one(PluginType::Decoder, "{Type = 'x'}");
    assert_eq!(m.uuid.len(), 16);
    assert_eq!(m.uuid[6] >> 4, 4, "v4 uuid");
    assert_eq!(m.timestamp, NOW, "host clock");
    let m = inject_one(
        PluginType::Decoder,
        "{Uuid = '00010203-0405-0607-0809-0a0b0c0d0e0f', Timestamp = 5}",
    );
    assert_eq!(uuid_string(&m.uuid), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    assert_eq!(m.timestamp, 5);
    let m = inject_one(PluginType::Decoder, "{Uuid = string.rep('A', 16)}");
    assert_eq!(m.uuid, b"AAAAAAAAAAAAAAAA");
    let m = inject_one(PluginType::Decoder, "{Uuid = 'short'}");
    assert_eq!(m.uuid.len(), 16);
}

#[test]
fn filter_inject_prefixes_type_and_sets_logger_hostname() {
    let m = inject_one(
        PluginType::Filter,
        "{Type = 'alert', Logger = 'ignored', Hostname = 'ignored', Payload = 'x'}",
    );
    assert_eq!(m.r#type.as_deref(), Some("heka.sandbox.alert"));
    assert_eq!(m.logger.as_deref(), Some("TestPlugin"));
    assert_eq!(m.hostname.as_deref(), Some("testhost"));
    let m = inject_one(PluginType::Filter, "{Payload = 'no type'}");
    assert_eq!(m.r#type.as_deref(), Some("heka.sandbox."));
    let m = inject_one(PluginType::Input, "{Type = 'input.type'}");
    assert_eq!(m.r#type.as_deref(), Some("input.type"));
}

#[test]
fn inject_protobuf_string() {
    let m = inject_one(PluginType::Filter, "read_message('raw')");
    let s = sample();
    assert_eq!(m.r#type.as_deref(), Some("heka.sandbox.test.type"));
    assert_eq!(m.fields, s.fields);
    assert_eq!(m.payload, s.payload);
    let m = inject_one(PluginType::Decoder, "read_message('raw')");
    assert_eq!(m, s);
}

fn error_of(ty: PluginType, call: &str) -> String {
    let code =
        format!("function process_message() local ok, e = pcall({call}) err = e return 0 end");
    let mut sb = new(&code, ty);
    process_ok(&mut sb, &sample());
    sb.eval::<String>("return type(err) .. ':' .. tostring(err)")
        .unwrap()
}

#[test]
fn inject_errors() {
    assert_eq!(
        error_of(
            PluginType::Decoder,
            "inject_message, {Fields = {a = {1, 'x'}}}"
        ),
        "string:inject_message() could not encode protobuf - array has mixed types"
    );
    assert_eq!(
        error_of(
            PluginType::Decoder,
            "inject_message, {Fields = {a = {true, 1}}}"
        ),
        "string:inject_message() could not encode protobuf - array has mixed types"
    );
    assert_eq!(
        error_of(
            PluginType::Decoder,
            "inject_message, {Fields = {f = print or function() end}}"
        ),
        "string:inject_message() could not encode protobuf - unsupported type: function"
    );
    assert_eq!(
        error_of(
            PluginType::Decoder,
            "inject_message, {Fields = {a = {value = 1, value_type = 9}}}"
        ),
        "string:inject_message() could not encode protobuf - invalid value_type for field 'a'"
    );
    assert_eq!(
        error_of(
            PluginType::Decoder,
            "inject_message, 'not a protobuf \\255'"
        ),
        "string:inject_message() protobuf unmarshal failed"
    );
    assert_eq!(
        error_of(PluginType::Decoder, "inject_message, 42"),
        "string:bad argument #1 to 'inject_message' (table or string expected, got number)"
    );
    assert_eq!(
        error_of(PluginType::Decoder, "inject_message"),
        "string:bad argument #1 to 'inject_message' (table or string expected, got no value)"
    );
}

#[test]
fn mixed_type_array_terminates_when_uncaught() {
    let mut sb = new(
        "function process_message() inject_message({Fields = {a = {1, 'x'}}}) return 0 end",
        PluginType::Filter,
    );
    let (r, host) = process(&mut sb, &sample());
    assert_eq!(
        terminated(r),
        "process_message() test.lua:1: inject_message() could not encode protobuf - array has mixed types"
    );
    assert!(host.injected.is_empty());
}

struct RefusingHost(InjectError);

impl SandboxHost for RefusingHost {
    fn inject(&mut self, _msg: &[u8]) -> Result<(), InjectError> {
        Err(self.0.clone())
    }
}

#[test]
fn host_refusals_become_lua_errors() {
    let code =
        "function process_message() local ok, e = pcall(inject_message, {}) err = e return 0 end";
    for (e, text) in [
        (
            InjectError::MaxMsgLoops,
            "inject_message() exceeded MaxMsgLoops",
        ),
        (
            InjectError::CircularReference,
            "inject_message() creates a circular reference (matches this plugin's message_matcher)",
        ),
    ] {
        let mut sb = new(code, PluginType::Filter);
        let bytes = sample().to_bytes();
        let view = hekate_model::message::MessageView::new(&bytes).unwrap();
        assert_eq!(
            sb.process_message(&view, &mut RefusingHost(e)),
            Ok(Outcome::Ok)
        );
        assert_eq!(sb.eval::<String>("return err").unwrap(), text);
    }
    // An aborted injection ends the call without terminating the sandbox.
    let mut sb = new(
        "function process_message() inject_message({}) return 0 end",
        PluginType::Filter,
    );
    let m = sample();
    assert_eq!(
        sb.process_message(&m, &mut RefusingHost(InjectError::Aborted)),
        Ok(Outcome::Aborted)
    );
    assert_eq!(sb.status(), hekate_sandbox::SandboxStatus::Running);
}

#[test]
fn filter_inject_limits() {
    let code = r#"
function process_message()
    for i = 1, read_message("Pid") do pcall(inject_message, {Payload = tostring(i)}) end
    return 0
end
function timer_event(ns)
    for i = 1, n do inject_payload("txt", "", i) end
end"#;
    let mut sb = new(code, PluginType::Filter);
    let mut m = sample();
    m.pid = Some(1);
    let host = process_ok(&mut sb, &m);
    assert_eq!(host.injected.len(), 1);
    m.pid = Some(2);
    let (r, host) = process(&mut sb, &m);
    assert_eq!(host.injected.len(), 1);
    assert_eq!(
        terminated(r),
        "process_message() inject_message() exceeded InjectMessage count"
    );

    let mut sb = new(code, PluginType::Filter);
    sb.eval::<()>("n = 10").unwrap();
    let (r, host) = timer(&mut sb, 0);
    assert_eq!((r, host.injected.len()), (Ok(Outcome::Ok), 10));
    sb.eval::<()>("n = 11").unwrap();
    let (r, _) = timer(&mut sb, 0);
    assert_eq!(
        terminated(r),
        "timer_event() inject_payload() exceeded InjectMessage count"
    );

    // The limits are configurable and apply to filters only.
    let mut cfg = config();
    cfg.max_process_inject = 5;
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    m.pid = Some(5);
    assert_eq!(process_ok(&mut sb, &m).injected.len(), 5);
    let mut sb = new(code, PluginType::Decoder);
    m.pid = Some(50);
    assert_eq!(process_ok(&mut sb, &m).injected.len(), 50);
}

#[test]
fn inject_payload_message() {
    let mut cfg = config();
    cfg.max_process_inject = 2;
    let mut sb = try_new(
        r#"
function process_message()
    add_to_payload("a", 1, " ")
    inject_payload("json", "my output", "b", 2.5)
    inject_payload()                 -- empty buffer: nothing injected
    add_to_payload("plain")
    inject_payload()
    return 0
end"#,
        PluginType::Filter,
        cfg,
    )
    .unwrap();
    let host = process_ok(&mut sb, &sample());
    let msgs = host.messages();
    assert_eq!(msgs.len(), 2);
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("heka.sandbox-output"));
    assert_eq!(m.logger.as_deref(), Some("TestPlugin"));
    assert_eq!(m.hostname.as_deref(), Some("testhost"));
    assert_eq!(m.payload.as_deref(), Some("a1 b2.5"));
    assert_eq!(m.timestamp, NOW);
    assert_eq!(field_str(m, "payload_type"), "json");
    assert_eq!(
        field_of(m, "payload_type").representation.as_deref(),
        Some("file-extension")
    );
    assert_eq!(field_str(m, "payload_name"), "my output");
    assert_eq!(msgs[1].payload.as_deref(), Some("plain"));
    assert_eq!(field_str(&msgs[1], "payload_type"), "txt");
    assert_eq!(field_str(&msgs[1], "payload_name"), "");
}

#[test]
fn add_to_payload_formats_like_heka() {
    let mut sb = new(
        r#"
function process_message()
    add_to_payload(1, " ", 0.08, " ", -2.5, " ", 1/3, " ", 2/3, " ", 1e20, " ", 2^31, " ",
                   0/0, " ", 1/0, " ", -1/0, " ", true, " ", false, " ", nil, " ", "s", " ", 100)
    inject_payload()
    local ok, e = pcall(add_to_payload, "x", {})
    err = e
    return 0
end"#,
        PluginType::Decoder,
    );
    let host = process_ok(&mut sb, &sample());
    assert_eq!(
        host.messages()[0].payload.as_deref(),
        Some(
            "1 0.08 -2.5 0.33333333 0.66666667 1e+20 2147483648 nan inf -inf true false nil s 100"
        )
    );
    assert_eq!(
        sb.eval::<String>("return err").unwrap(),
        "bad argument #2 to 'add_to_payload' (unsupported type)"
    );
}

/// Module userdata in a payload: a SAX word or window as its letters, a hyperloglog as its
/// Redis representation (as lua_sandbox's output functions of those modules write them).
#[test]
fn add_to_payload_writes_module_userdata() {
    let mut sb = new(
        r#"
require "sax"
require "hyperloglog"
function process_message()
    add_to_payload(sax.word.new("CDC", 4), " ")
    inject_payload()
    local h = hyperloglog.new()
    h:add("x")
    add_to_payload(h)
    inject_payload()
    return 0
end"#,
        PluginType::Decoder,
    );
    let host = process_ok(&mut sb, &sample());
    let msgs = host.messages();
    assert_eq!(msgs[0].payload.as_deref(), Some("CDC "));
    // 16 header bytes ("HYLL", dense, unused, cached cardinality) and 12,288 of registers
    let hll = msgs[1].payload.as_deref().unwrap();
    assert!(hll.starts_with("HYLL"), "{hll:?}");
}

#[test]
fn output_limit() {
    let mut cfg = config();
    cfg.output_limit = 100;
    let code = r#"
function process_message()
    local n = read_message("Pid")
    if n == 1 then add_to_payload(string.rep("x", 100)) inject_payload() end
    if n == 2 then add_to_payload(string.rep("x", 101)) end
    if n == 3 then inject_message({Payload = string.rep("x", 200)}) end
    if n == 4 then local ok, e = pcall(add_to_payload, string.rep("x", 101)) err = e end
    return 0
end"#;
    let mut sb = try_new(code, PluginType::Filter, cfg.clone()).unwrap();
    let mut m = sample();
    m.pid = Some(1);
    assert_eq!(process_ok(&mut sb, &m).injected.len(), 1);
    m.pid = Some(4);
    process_ok(&mut sb, &m);
    assert_eq!(
        sb.eval::<String>("return err").unwrap(),
        "output_limit exceeded"
    );
    m.pid = Some(2);
    let (r, _) = process(&mut sb, &m);
    assert_eq!(
        terminated(r),
        "process_message() test.lua:5: output_limit exceeded"
    );
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    m.pid = Some(3);
    let (r, _) = process(&mut sb, &m);
    assert_eq!(
        terminated(r),
        "process_message() test.lua:6: output_limit exceeded"
    );
}

#[test]
fn write_message_in_decoder() {
    let mut sb = new(
        r#"
function process_message()
    write_message("Type", "new.type")
    write_message("Logger", "new.logger")
    write_message("Payload", "new payload")
    write_message("EnvVersion", "2")
    write_message("Hostname", "new.host")
    write_message("Uuid", "00010203-0405-0607-0809-0a0b0c0d0e0f")
    write_message("Timestamp", "2006-01-02T15:04:05Z")
    write_message("Severity", "2")
    write_message("Pid", 77)
    write_message("Fields[str]", "replaced")                 -- existing, ai 0
    write_message("Fields[str]", "appended", "", 0, 1)       -- append to the array
    write_message("Fields[new]", 1.5, "ms")                  -- new field (DOUBLE)
    write_message("Fields[new]", true, "", 1)                -- second field of that name
    write_message("Fields[int]", nil)                        -- delete the field
    write_message("Fields[arr]", nil, "", 0, 0)              -- delete one element
    write_message("Fields[nope]", nil)                       -- missing: no-op
    seen = read_message("Type") .. "|" .. read_message("Fields[str]", 0, 1)
    local ok, e = pcall(write_message, "Fields[dbl]", "not a number")
    err_type = e
    ok, e = pcall(write_message, "Fields[str]", "x", "", 0, 5)
    err_ai = e
    ok, e = pcall(write_message, "Bogus", "x")
    err_name = e
    ok, e = pcall(write_message, "Timestamp", "not a date")
    err_ts = e
    ok, e = pcall(write_message, "Type")
    err_args = e
    raw_len = #read_message("raw")
    return 0
end"#,
        PluginType::Decoder,
    );
    let orig = sample();
    let host = process_ok(&mut sb, &orig);
    assert!(host.injected.is_empty());
    assert_eq!(
        sb.eval::<String>("return seen").unwrap(),
        "new.type|appended"
    );
    for v in ["err_type", "err_ai", "err_name", "err_ts"] {
        assert_eq!(
            sb.eval::<String>(&format!("return {v}")).unwrap(),
            "write_message() failed",
            "{v}"
        );
    }
    assert_eq!(
        sb.eval::<String>("return err_args").unwrap(),
        "write_message() incorrect number of arguments"
    );
    let m = sb.take_written_message().expect("written");
    assert_eq!(
        sb.eval::<usize>("return raw_len").unwrap(),
        m.to_bytes().len()
    );
    assert_eq!(m.r#type.as_deref(), Some("new.type"));
    assert_eq!(m.logger.as_deref(), Some("new.logger"));
    assert_eq!(m.payload.as_deref(), Some("new payload"));
    assert_eq!(m.env_version.as_deref(), Some("2"));
    assert_eq!(m.hostname.as_deref(), Some("new.host"));
    assert_eq!(uuid_string(&m.uuid), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    assert_eq!(m.timestamp, 1_136_214_245_000_000_000);
    assert_eq!((m.severity, m.pid), (Some(2), Some(77)));
    assert_eq!(field_of(&m, "str").value_string, ["replaced", "appended"]);
    let news: Vec<&Field> = m.find_all_fields("new").collect();
    assert_eq!(news.len(), 2);
    assert_eq!(news[0].value_double, [1.5]);
    assert_eq!(news[0].representation.as_deref(), Some("ms"));
    assert_eq!(news[1].value_bool, [true]);
    assert!(m.find_first_field("int").is_none());
    assert_eq!(field_of(&m, "arr").value_integer, [2, 3]);
    // the original is untouched (copy-on-write) and the copy does not outlive the call
    assert_eq!(orig, sample());
    assert!(sb.take_written_message().is_none());
    process_ok(&mut sb, &payload_msg("again"));
    assert!(sb.take_written_message().is_some());
}

#[test]
fn entry_point_return_codes() {
    let code = r#"
function process_message()
    local c = read_message("Payload")
    if c == "ok" then return 0 end
    if c == "fail" then return -1, "bad input" end
    if c == "fail_silent" then return -3 end
    if c == "skip" then return -2 end
    if c == "fatal" then return 1, "giving up" end
    if c == "string" then return "0" end
    if c == "table_msg" then return -1, {} end
    if c == "nothing" then return end
    if c == "error" then error("boom") end
    return 0
end"#;
    let run = |ty: PluginType, p: &str| {
        let mut sb = new(code, ty);
        let r = process(&mut sb, &payload_msg(p)).0;
        (sb, r)
    };
    assert_eq!(run(PluginType::Filter, "ok").1, Ok(Outcome::Ok));
    assert_eq!(
        run(PluginType::Decoder, "fail").1,
        Ok(Outcome::Failed {
            status: -1,
            message: Some("bad input".into())
        })
    );
    assert_eq!(
        run(PluginType::Decoder, "fail_silent").1,
        Ok(Outcome::Failed {
            status: -3,
            message: None
        })
    );
    assert_eq!(run(PluginType::Encoder, "skip").1, Ok(Outcome::Skip));
    assert_eq!(
        run(PluginType::Filter, "skip").1,
        Ok(Outcome::Failed {
            status: -2,
            message: None
        })
    );
    assert_eq!(
        terminated(run(PluginType::Filter, "fatal").1),
        "process_message() returned fatal error code 1: giving up"
    );
    assert_eq!(
        terminated(run(PluginType::Filter, "string").1),
        "process_message() must return a numeric error code"
    );
    assert_eq!(
        terminated(run(PluginType::Filter, "nothing").1),
        "process_message() must return a numeric error code"
    );
    assert_eq!(
        terminated(run(PluginType::Filter, "table_msg").1),
        "process_message() must return a nil or string error message"
    );
    let (mut sb, r) = run(PluginType::Filter, "error");
    assert_eq!(terminated(r), "process_message() test.lua:12: boom");
    // terminated for good
    assert_eq!(
        terminated(process(&mut sb, &payload_msg("ok")).0),
        "process_message() test.lua:12: boom"
    );
    assert_eq!(
        sb.status(),
        hekate_sandbox::SandboxStatus::Terminated("process_message() test.lua:12: boom".into())
    );
    assert_eq!(sb.stats().process_message_count, 1);
}

#[test]
fn failures_are_counted() {
    let mut sb = new(
        "function process_message() return -1 end",
        PluginType::Decoder,
    );
    for _ in 0..3 {
        assert!(process(&mut sb, &sample()).0.is_ok());
    }
    let s = sb.stats();
    assert_eq!(
        (s.process_message_count, s.process_message_failures),
        (3, 3)
    );
    assert!(s.memory > 0 && s.max_memory >= s.memory);
}

#[test]
fn timer_event_gets_ns_and_errors_terminate() {
    let mut sb = new(
        r#"
function process_message() return 0 end
function timer_event(ns)
    last = ns
    if ns == 13 then error("tick failed") end
end"#,
        PluginType::Filter,
    );
    assert!(sb.has_timer_event());
    assert_eq!(timer(&mut sb, 1_000_000_000).0, Ok(Outcome::Ok));
    assert_eq!(sb.eval::<f64>("return last").unwrap(), 1e9);
    assert_eq!(
        terminated(timer(&mut sb, 13).0),
        "timer_event() test.lua:5: tick failed"
    );
    let mut sb = new(
        "function process_message() return 0 end",
        PluginType::Filter,
    );
    assert!(!sb.has_timer_event());
    assert_eq!(
        terminated(timer(&mut sb, 0).0),
        "timer_event() function was not found"
    );
    let mut sb = new("x = 1", PluginType::Filter);
    assert_eq!(
        terminated(process(&mut sb, &sample()).0),
        "process_message() function was not found"
    );
}

#[test]
fn encoder_output() {
    let mut sb = new(
        r#"
function process_message()
    local p = read_message("Payload")
    if p == "payload" then inject_payload("txt", "", "encoded:", read_message("Type")) end
    if p == "message" then inject_message({Type = "enc", Payload = "x", Timestamp = 1}) end
    if p == "raw" then inject_message(read_message("raw")) end
    return 0
end"#,
        PluginType::Encoder,
    );
    let mut m = sample();
    m.payload = Some("payload".into());
    let host = process_ok(&mut sb, &m);
    assert_eq!(host.outputs, vec![b"encoded:test.type".to_vec()]);
    m.payload = Some("message".into());
    let host = process_ok(&mut sb, &m);
    let out = Message::decode_bytes(&host.outputs[0]).unwrap();
    assert_eq!((out.r#type.as_deref(), out.timestamp), (Some("enc"), 1));
    m.payload = Some("raw".into());
    let host = process_ok(&mut sb, &m);
    assert_eq!(host.outputs, vec![m.to_bytes()]);
}

#[test]
fn api_availability_per_plugin_type() {
    let names = [
        "require",
        "read_config",
        "decode_message",
        "read_message",
        "read_next_field",
        "inject_message",
        "inject_payload",
        "add_to_payload",
        "write_message",
    ];
    let expect: [(PluginType, [bool; 9]); 5] = [
        (
            PluginType::Input,
            [true, true, true, false, false, true, false, false, false],
        ),
        (PluginType::Decoder, [true; 9]),
        (
            PluginType::Filter,
            [true, true, true, true, true, true, true, true, false],
        ),
        (PluginType::Encoder, [true; 9]),
        (
            PluginType::Output,
            [true, true, true, true, true, false, false, false, false],
        ),
    ];
    for (ty, present) in expect {
        let sb = new("function process_message() return 0 end", ty);
        for (name, want) in names.iter().zip(present) {
            let got = sb
                .eval::<bool>(&format!("return type({name}) == 'function'"))
                .unwrap();
            assert_eq!(got, want, "{ty} {name}");
        }
    }
}

#[test]
fn termination_message_format() {
    let m = hekate_sandbox::termination_message("MyFilter", "process_message() boom");
    assert_eq!(m.r#type.as_deref(), Some("heka.sandbox-terminated"));
    assert_eq!(m.logger.as_deref(), Some("hekad"));
    assert_eq!(m.payload.as_deref(), Some("process_message() boom"));
    assert_eq!(field_str(&m, "plugin"), "MyFilter");
    assert_eq!(m.uuid.len(), 16);
}

#[test]
fn sandbox_on_owned_messages_and_config() {
    let mut cfg = config();
    cfg.config.insert("prefix".into(), ConfigValue::from(">"));
    let mut sb = try_new(
        r#"
local prefix = read_config("prefix")
function process_message()
    inject_message({Payload = prefix .. read_message("Payload")})
    return 0
end"#,
        PluginType::Decoder,
        cfg,
    )
    .unwrap();
    let mut host = VecHost::at(NOW);
    let m = payload_msg("hi");
    assert_eq!(sb.process_message(&m, &mut host), Ok(Outcome::Ok));
    assert_eq!(host.messages()[0].payload.as_deref(), Some(">hi"));
}

#[test]
fn sandbox_is_reusable_across_many_messages() {
    let mut sb: Sandbox = new(
        "count = 0 function process_message() count = count + 1 return 0 end",
        PluginType::Filter,
    );
    for _ in 0..1000 {
        process_ok(&mut sb, &sample());
    }
    assert_eq!(sb.eval::<u32>("return count").unwrap(), 1000);
}

/// Accepts `n` messages, then reports shutdown.
struct StopAfter(usize, Vec<Vec<u8>>);

impl SandboxHost for StopAfter {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        if self.1.len() == self.0 {
            return Err(InjectError::Aborted);
        }
        self.1.push(msg.to_vec());
        Ok(())
    }
}

#[test]
fn input_runs_until_the_host_stops_it() {
    let mut sb = new(
        r#"
function process_message()
    local i = 0
    while true do            -- inputs are not bound by the instruction limit
        i = i + 1
        inject_message({Type = "tick", Payload = tostring(i)})
    end
end"#,
        PluginType::Input,
    );
    let mut host = StopAfter(2000, Vec::new());
    assert_eq!(sb.run_input(&mut host), Ok(Outcome::Aborted));
    assert_eq!(host.1.len(), 2000);
    let last = Message::decode_bytes(&host.1[1999]).unwrap();
    assert_eq!(
        (last.r#type.as_deref(), last.payload.as_deref()),
        (Some("tick"), Some("2000"))
    );
    assert_eq!(sb.status(), hekate_sandbox::SandboxStatus::Running);
}

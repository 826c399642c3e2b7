//! read_message, read_next_field, read_config, decode_message.

mod common;

use common::*;
use hekate_model::message::{Message, uuid_string};
use hekate_sandbox::{ConfigValue, Outcome, PluginType, Sandbox};

fn r_str(sb: &Sandbox, k: &str) -> String {
    sb.eval::<String>(&format!("return r.{k}"))
        .unwrap_or_else(|e| panic!("{k}: {e}"))
}
fn r_num(sb: &Sandbox, k: &str) -> f64 {
    sb.eval::<f64>(&format!("return r.{k}"))
        .unwrap_or_else(|e| panic!("{k}: {e}"))
}
fn r_is_nil(sb: &Sandbox, k: &str) -> bool {
    sb.eval::<bool>(&format!("return r.{k} == nil")).unwrap()
}

fn read_all(ty: PluginType, owned: bool) -> Sandbox {
    let mut sb = Sandbox::new(script("read_message.lua"), ty, "Reader", config()).unwrap();
    let m = sample();
    if owned {
        let mut host = hekate_sandbox::VecHost::at(NOW);
        assert_eq!(sb.process_message(&m, &mut host), Ok(Outcome::Ok));
    } else {
        process_ok(&mut sb, &m);
    }
    sb
}

#[test]
fn read_message_headers() {
    for owned in [false, true] {
        let sb = read_all(PluginType::Filter, owned);
        let m = sample();
        assert_eq!(r_str(&sb, "Type"), "test.type");
        assert_eq!(r_str(&sb, "Logger"), "test.logger");
        assert_eq!(r_str(&sb, "Payload"), "the payload");
        assert_eq!(r_str(&sb, "EnvVersion"), "0.8");
        assert_eq!(r_str(&sb, "Hostname"), "example.com");
        assert_eq!(r_str(&sb, "Uuid"), uuid_string(&m.uuid));
        assert_eq!(r_str(&sb, "Uuid").len(), 36);
        assert_eq!(r_num(&sb, "Timestamp"), NOW as f64);
        assert_eq!(r_num(&sb, "Severity"), 4.0);
        assert_eq!(r_num(&sb, "Pid"), 1234.0);
        let raw: mlua::LuaString = sb.eval("return r.raw").unwrap();
        assert_eq!(raw.as_bytes().to_vec(), m.to_bytes());
        assert!(r_is_nil(&sb, "unknown"));
    }
}

#[test]
fn read_message_unset_headers_are_empty() {
    let mut sb = Sandbox::new(
        script("read_message.lua"),
        PluginType::Filter,
        "R",
        config(),
    )
    .unwrap();
    let m = Message {
        uuid: vec![1, 2, 3],
        ..Default::default()
    };
    process_ok(&mut sb, &m);
    for h in [
        "Type",
        "Logger",
        "Payload",
        "EnvVersion",
        "Hostname",
        "Uuid",
    ] {
        assert_eq!(r_str(&sb, h), "", "{h}");
    }
    assert_eq!(r_num(&sb, "Severity"), 7.0);
    assert_eq!(r_num(&sb, "Pid"), 0.0);
    assert_eq!(r_num(&sb, "Timestamp"), 0.0);
}

#[test]
fn read_message_fields() {
    for owned in [false, true] {
        let sb = read_all(PluginType::Decoder, owned);
        assert_eq!(r_str(&sb, "str0"), "a string");
        assert_eq!(r_str(&sb, "str1"), "second str field");
        assert_eq!(r_str(&sb, "str1_0"), "second str field");
        assert!(r_is_nil(&sb, "str2"));
        assert_eq!(r_num(&sb, "int"), 42.0);
        assert_eq!(r_num(&sb, "dbl"), 2.5);
        assert!(sb.eval::<bool>("return r.bool == true").unwrap());
        assert_eq!(
            sb.eval::<mlua::LuaString>("return r.bytes")
                .unwrap()
                .as_bytes()
                .to_vec(),
            b"\x00\x01raw".to_vec()
        );
        assert!(r_is_nil(&sb, "empty_bytes"));
        assert_eq!(r_num(&sb, "arr1"), 2.0);
        assert_eq!(r_num(&sb, "arr2"), 3.0);
        assert!(r_is_nil(&sb, "arr3"));
        assert!(r_is_nil(&sb, "missing"));
    }
}

#[test]
fn read_message_errors() {
    let sb = read_all(PluginType::Encoder, false);
    // Lua 5.1's luaL_error prefixes the position of the calling Lua line, as under hekad.
    let at = |line: u32, msg: &str| {
        format!(
            "{}:{line}: {msg}",
            chunk_id(&lua_dir().join("read_message.lua"))
        )
    };
    assert_eq!(
        r_str(&sb, "e0"),
        at(28, "read_message() incorrect number of arguments")
    );
    assert_eq!(
        r_str(&sb, "e4"),
        at(29, "read_message() incorrect number of arguments")
    );
    assert_eq!(
        r_str(&sb, "efi"),
        at(
            30,
            "bad argument #2 to 'read_message' (field index must be >= 0)"
        )
    );
    assert_eq!(
        r_str(&sb, "eai"),
        at(
            31,
            "bad argument #3 to 'read_message' (array index must be >= 0)"
        )
    );
    assert_eq!(
        r_str(&sb, "efi_type"),
        at(
            32,
            "bad argument #2 to 'read_message' (number expected, got string)"
        )
    );
    assert_eq!(
        r_str(&sb, "ename"),
        at(
            33,
            "bad argument #1 to 'read_message' (string expected, got table)"
        )
    );
    assert_eq!(r_str(&sb, "err_type"), "string");
}

#[test]
fn read_message_uncaught_error_terminates() {
    let mut sb = new(
        "function process_message() read_message('Type', -1) return 0 end",
        PluginType::Filter,
    );
    let (r, _) = process(&mut sb, &sample());
    assert_eq!(
        terminated(r),
        "process_message() test.lua:1: bad argument #2 to 'read_message' (field index must be >= 0)"
    );
}

#[test]
fn read_next_field_iterates_and_resets() {
    let mut sb = new(
        r#"
function process_message()
    out = {}
    while true do
        local vt, name, value, repr, count = read_next_field()
        if not vt then break end
        if type(value) == "string" then value = string.format("%q", value) end
        out[#out + 1] = string.format("%d|%s|%s|%s|%d", vt, name, tostring(value), repr, count)
    end
    return 0
end"#,
        PluginType::Filter,
    );
    for _ in 0..2 {
        process_ok(&mut sb, &sample());
        let got: Vec<String> = sb.eval("return out").unwrap();
        assert_eq!(
            got,
            [
                r#"0|str|"a string"|text|1"#,
                "2|int|42||1",
                "3|dbl|2.5||1",
                "4|bool|true||1",
                "1|bytes|\"\\000\u{1}raw\"||1",
                r#"1|empty_bytes|""||1"#,
                "2|arr|1||3",
                r#"0|str|"second str field"||1"#,
            ]
        );
    }
}

#[test]
fn read_config_types() {
    let mut cfg = config();
    cfg.config.insert("s".into(), ConfigValue::from("text"));
    cfg.config.insert("b".into(), ConfigValue::from(true));
    cfg.config.insert("i".into(), ConfigValue::from(60i64));
    cfg.config.insert("f".into(), ConfigValue::from(0.5));
    let sb = try_new(
        r#"
s, b, i, f, missing = read_config("s"), read_config("b"), read_config("i"), read_config("f"), read_config("x")
types = type(s) .. type(b) .. type(i) .. type(f) .. type(missing)
function process_message() return 0 end"#,
        PluginType::Input,
        cfg,
    )
    .unwrap();
    assert_eq!(
        sb.eval::<String>("return types").unwrap(),
        "stringbooleannumbernumbernil"
    );
    assert_eq!(sb.eval::<String>("return s").unwrap(), "text");
    assert!(sb.eval::<bool>("return b").unwrap());
    assert_eq!(sb.eval::<f64>("return i + f").unwrap(), 60.5);
    let e = try_new("read_config()", PluginType::Filter, config()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.lua:1: bad argument #1 to 'read_config' (string expected, got nil)"
    );
}

#[test]
fn decode_message_gives_array_form_fields() {
    let mut sb = new(
        r#"
function process_message()
    local m = decode_message(read_message("raw"))
    d = {uuid_len = #m.Uuid, ts = m.Timestamp, type = m.Type, logger = m.Logger, sev = m.Severity,
         pid = m.Pid, host = m.Hostname, env = m.EnvVersion, payload = m.Payload,
         nfields = #m.Fields, f1 = m.Fields[1], arr = m.Fields[7]}
    local ok, e = pcall(decode_message, "\255\255garbage")
    d.err = e
    return 0
end"#,
        PluginType::Filter,
    );
    process_ok(&mut sb, &sample());
    let check = |expr: &str| {
        assert!(
            sb.eval::<bool>(&format!("return {expr}")).unwrap(),
            "{expr}"
        )
    };
    check("d.uuid_len == 16");
    check(&format!("d.ts == {NOW}"));
    check("d.type == 'test.type' and d.logger == 'test.logger' and d.host == 'example.com'");
    check("d.sev == 4 and d.pid == 1234 and d.env == '0.8' and d.payload == 'the payload'");
    check("d.nfields == 8");
    check("d.f1.name == 'str' and d.f1.value_type == 0 and d.f1.representation == 'text'");
    check("type(d.f1.value) == 'table' and d.f1.value[1] == 'a string'");
    check(
        "d.arr.name == 'arr' and d.arr.value_type == 2 and #d.arr.value == 3 and d.arr.value[3] == 3",
    );
    check("d.err == 'decode_message() could not decode protobuf string'");
}

#[test]
fn decode_then_inject_round_trips() {
    let mut sb = new(
        r#"function process_message() inject_message(decode_message(read_message("raw"))) return 0 end"#,
        PluginType::Decoder,
    );
    let host = process_ok(&mut sb, &sample());
    assert_eq!(host.messages(), vec![sample()]);
}

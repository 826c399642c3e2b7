//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use hekate_model::message::{Field, FieldValue, Message, MessageView};
use hekate_sandbox::{
    Outcome, PluginType, Sandbox, SandboxConfig, SandboxError, ScriptSource, Terminated, VecHost,
};

/// 2023-10-10T13:55:36Z
pub const NOW: i64 = 1_696_946_136_000_000_000;

pub fn lua_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lua")
}

/// How Lua 5.1 names a script file in error messages (`luaO_chunkid`): a path longer than 52
/// bytes is shown as `...` and its last 52 bytes, so the text depends on where the checkout lives.
#[allow(dead_code)]
pub fn chunk_id(path: &std::path::Path) -> String {
    let path = path.display().to_string();
    if path.len() > 52 {
        format!("...{}", &path[path.len() - 52..])
    } else {
        path
    }
}

pub fn script(name: &str) -> ScriptSource {
    ScriptSource::File(lua_dir().join(name))
}

pub fn config() -> SandboxConfig {
    SandboxConfig {
        hostname: "testhost".into(),
        module_directory: lua_dir().join("modules").display().to_string(),
        ..SandboxConfig::default()
    }
}

pub fn try_new(code: &str, ty: PluginType, cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
    Sandbox::new(
        ScriptSource::source("test.lua", code),
        ty,
        "TestPlugin",
        cfg,
    )
}

pub fn new(code: &str, ty: PluginType) -> Sandbox {
    try_new(code, ty, config()).unwrap_or_else(|e| panic!("sandbox: {e}"))
}

/// A message with every header set and a few fields.
pub fn sample() -> Message {
    let mut m = Message::new_now();
    m.uuid = (0u8..16).collect();
    m.timestamp = NOW;
    m.r#type = Some("test.type".into());
    m.logger = Some("test.logger".into());
    m.payload = Some("the payload".into());
    m.env_version = Some("0.8".into());
    m.hostname = Some("example.com".into());
    m.severity = Some(4);
    m.pid = Some(1234);
    m.fields
        .push(Field::string("str", "a string").with_representation("text"));
    m.fields.push(Field::integer("int", 42));
    m.fields.push(Field::double("dbl", 2.5));
    m.fields.push(Field::boolean("bool", true));
    m.fields
        .push(Field::bytes("bytes", b"\x00\x01raw".to_vec()));
    m.fields.push(Field::bytes("empty_bytes", Vec::new()));
    let mut arr = Field::integer("arr", 1);
    arr.value_integer.extend([2, 3]);
    m.fields.push(arr);
    m.fields.push(Field::string("str", "second str field"));
    m
}

/// Runs process_message on the encoding of `m` (through a zero-copy view).
pub fn process(sb: &mut Sandbox, m: &Message) -> (Result<Outcome, Terminated>, VecHost) {
    let mut host = VecHost::at(NOW);
    let bytes = m.to_bytes();
    let view = MessageView::new(&bytes).expect("view");
    let r = sb.process_message(&view, &mut host);
    (r, host)
}

/// Runs process_message and expects status 0.
pub fn process_ok(sb: &mut Sandbox, m: &Message) -> VecHost {
    let (r, host) = process(sb, m);
    assert_eq!(r, Ok(Outcome::Ok), "process_message");
    host
}

pub fn timer(sb: &mut Sandbox, ns: i64) -> (Result<Outcome, Terminated>, VecHost) {
    let mut host = VecHost::at(NOW);
    let r = sb.timer_event(ns, &mut host);
    (r, host)
}

pub fn payload_msg(payload: &str) -> Message {
    let mut m = Message::new_now();
    m.payload = Some(payload.into());
    m
}

/// The terminated reason, panicking when the result is not a termination.
pub fn terminated(r: Result<Outcome, Terminated>) -> String {
    match r {
        Err(t) => t.reason,
        Ok(o) => panic!("expected termination, got {o:?}"),
    }
}

pub fn field<'a>(m: &'a Message, name: &str) -> Option<FieldValue<'a>> {
    m.get_field_value(name)
}

pub fn field_str(m: &Message, name: &str) -> String {
    match field(m, name) {
        Some(FieldValue::String(s)) | Some(FieldValue::Bytes(s)) => {
            String::from_utf8_lossy(s).into_owned()
        }
        other => panic!("field {name}: {other:?}"),
    }
}

pub fn field_of<'a>(m: &'a Message, name: &str) -> &'a Field {
    m.find_first_field(name)
        .unwrap_or_else(|| panic!("no field {name} in {m:?}"))
}

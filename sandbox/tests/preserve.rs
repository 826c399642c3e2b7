//! preserve_data: global data survives a restart; a version change discards it.

mod common;

use common::*;
use hekate_model::message::Message;
use hekate_sandbox::{PluginType, Sandbox, SandboxConfig, SandboxError, preservation_file_name};

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("hekate-preserve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cfg(dir: &TempDir) -> SandboxConfig {
    let mut c = config();
    c.preserve_data = true;
    c.preservation_path = Some(
        dir.0
            .join("sandbox_preservation")
            .join(preservation_file_name("Preserve Filter")),
    );
    c
}

fn start(dir: &TempDir) -> Sandbox {
    Sandbox::new(
        script("preserve_filter.lua"),
        PluginType::Filter,
        "Preserve Filter",
        cfg(dir),
    )
    .unwrap()
}

fn msg(sec: i64, payload: &str) -> Message {
    let mut m = payload_msg(payload);
    m.timestamp = sec * 1_000_000_000;
    m
}

#[test]
fn round_trip() {
    let dir = TempDir::new("rt");
    let mut sb = start(&dir);
    process_ok(&mut sb, &msg(60, "first"));
    process_ok(&mut sb, &msg(125, "second"));
    sb.preserve().unwrap();
    let path = cfg(&dir).preservation_path.unwrap();
    assert!(path.ends_with("sandbox_preservation/Preserve_Filter.data"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("if (_PRESERVATION_VERSION or 0) ~= 2 then return end\n"),
        "{text}"
    );
    assert!(
        !text.contains("helper") && !text.contains("not_preserved"),
        "{text}"
    );
    drop(sb);

    let mut sb = start(&dir);
    let check = |sb: &Sandbox, expr: &str| {
        assert!(
            sb.eval::<bool>(&format!("return {expr}")).unwrap(),
            "{expr}"
        )
    };
    check(
        &sb,
        "count == 2 and last_payload == 'second' and ratio == 0.1",
    );
    check(&sb, "flags.on == true and flags.off == false");
    check(&sb, "#nested.list == 5 and nested.list[5] == 2");
    check(&sb, "nested.self == nested and alias == nested.list");
    check(
        &sb,
        "nested.map['key with spaces'] == 'v' and nested.map['quote\"d'] == 'a\\nb\\0c'",
    );
    check(
        &sb,
        "special.nan ~= special.nan and special.inf == 1/0 and special.ninf == -1/0",
    );
    check(&sb, "special.big == 2^53 and special.neg == -1.25e-7");
    check(&sb, "type(helper) == 'function'");
    check(
        &sb,
        "per_minute:get(60e9, 1) == 1 and per_minute:get(120e9, 1) == 1",
    );
    check(&sb, "select(1, per_minute:get_header(1)) == 'Messages'");
    check(&sb, "per_minute:current_time() == 120e9");
    check(
        &sb,
        "payloads:count() == 2 and payloads:add('first') == false and payloads:add('new')",
    );
    check(
        &sb,
        "seen:count() == 2 and seen:query('second') and not seen:query('new')",
    );
    check(
        &sb,
        "recent:count() == 2 and recent:query('first') and recent:delete('first') and recent:count() == 1",
    );
    // the restored window is the one the same counts build afresh
    check(
        &sb,
        "(function() local w = sax.window.new(4, 2, 4) w:add(1) w:add(2) return w == shape end)()",
    );
    // and it keeps working from there
    process_ok(&mut sb, &msg(130, "third"));
    check(&sb, "count == 3 and per_minute:get(120e9, 1) == 2");
    check(&sb, "payloads:count() == 4");
    check(
        &sb,
        "seen:count() == 3 and seen:query('first') and seen:query('third') and not seen:query('x')",
    );
}

#[test]
fn version_change_discards_data() {
    let dir = TempDir::new("ver");
    let mut sb = start(&dir);
    process_ok(&mut sb, &msg(60, "x"));
    sb.preserve().unwrap();
    drop(sb);
    let path = cfg(&dir).preservation_path.unwrap();
    let code = std::fs::read_to_string(script_path())
        .unwrap()
        .replace("_PRESERVATION_VERSION = 2", "_PRESERVATION_VERSION = 3");
    let mut c = cfg(&dir);
    c.preservation_path = Some(path);
    let sb = try_new(&code, PluginType::Filter, c).unwrap();
    assert!(
        sb.eval::<bool>("return count == 0 and last_payload == ''")
            .unwrap()
    );
}

fn script_path() -> std::path::PathBuf {
    lua_dir().join("preserve_filter.lua")
}

#[test]
fn no_file_means_fresh_start_and_errors_are_reported() {
    let dir = TempDir::new("err");
    let sb = start(&dir);
    assert!(sb.eval::<bool>("return count == 0").unwrap());
    // a corrupt data file is reported
    let path = cfg(&dir).preservation_path.unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "count = = 1").unwrap();
    let e = Sandbox::new(
        script("preserve_filter.lua"),
        PluginType::Filter,
        "P",
        cfg(&dir),
    )
    .unwrap_err();
    assert!(matches!(e, SandboxError::Restore { .. }), "{e}");
    // preserve without configuration, or after termination, is refused
    let mut plain = new(
        "function process_message() error('x') end",
        PluginType::Filter,
    );
    assert!(matches!(
        plain.preserve(),
        Err(SandboxError::PreservationDisabled)
    ));
    let mut c = cfg(&dir);
    c.preservation_path = Some(dir.0.join("t.data"));
    let mut sb = try_new(
        "function process_message() error('x') end",
        PluginType::Filter,
        c,
    )
    .unwrap();
    let _ = process(&mut sb, &sample());
    assert!(matches!(sb.preserve(), Err(SandboxError::Terminated(_))));
    let _ = process(&mut plain, &sample());
}

//! Limits and isolation: every broken limit terminates the sandbox with a clear reason, and the
//! process (and other sandboxes) carry on.

mod common;

use common::*;
use hekate_sandbox::{Outcome, PluginType, Sandbox, SandboxError, SandboxStatus};

fn run_file(name: &str, ty: PluginType) -> (Sandbox, String) {
    let mut sb = Sandbox::new(script(&format!("limits/{name}")), ty, "Limits", config()).unwrap();
    let (r, _) = process(&mut sb, &sample());
    let reason = terminated(r);
    (sb, reason)
}

fn at(name: &str, line: u32, msg: &str) -> String {
    let shown = chunk_id(&lua_dir().join("limits").join(name));
    format!("process_message() {shown}:{line}: {msg}")
}

#[test]
fn endless_loop_hits_instruction_limit() {
    let (mut sb, reason) = run_file("endless_loop.lua", PluginType::Filter);
    assert_eq!(
        reason,
        at("endless_loop.lua", 2, "instruction_limit exceeded")
    );
    assert_eq!(sb.status(), SandboxStatus::Terminated(reason.clone()));
    // the terminated sandbox refuses further work without running Lua
    assert_eq!(terminated(process(&mut sb, &sample()).0), reason);
    // and the rest of the process carries on
    let mut other = new(
        "function process_message() return 0 end",
        PluginType::Filter,
    );
    process_ok(&mut other, &sample());
}

#[test]
fn pcall_cannot_swallow_the_instruction_limit() {
    let (_, reason) = run_file("swallowed_loop.lua", PluginType::Decoder);
    assert!(reason.ends_with("instruction_limit exceeded"), "{reason}");
}

#[test]
fn instruction_limit_is_per_call_and_configurable() {
    let code = r#"function process_message()
        for i = 1, read_message("Pid") do end
        return 0
    end"#;
    let mut cfg = config();
    cfg.instruction_limit = 10_000;
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    let mut m = sample();
    m.pid = Some(1000);
    for _ in 0..100 {
        process_ok(&mut sb, &m); // 100 × ~1000 instructions: the count restarts each call
    }
    m.pid = Some(20_000);
    assert!(terminated(process(&mut sb, &m).0).ends_with("instruction_limit exceeded"));
}

#[test]
fn the_most_instructions_of_one_call_are_reported() {
    let code = r#"function process_message()
        for i = 1, read_message("Pid") do end
        return 0
    end"#;
    let mut cfg = config();
    cfg.instruction_limit = 100_000;
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    let mut m = sample();
    for pid in [3000, 20_000, 5000] {
        m.pid = Some(pid);
        process_ok(&mut sb, &m);
    }
    // A numeric for loop runs one FORLOOP instruction per iteration.
    let max = sb.stats().max_instructions;
    assert!((19_000..=21_000).contains(&max), "{max}");
    m.pid = Some(1_000_000);
    assert!(process(&mut sb, &m).0.is_err());
    assert_eq!(sb.stats().max_instructions, 100_000);
}

#[test]
fn inputs_process_message_has_no_instruction_limit() {
    let mut sb = new(
        "function process_message() for i = 1, 3000000 do end return 0 end",
        PluginType::Input,
    );
    process_ok(&mut sb, &sample());
}

#[test]
fn global_code_runs_under_the_limits() {
    let e = try_new("while true do end", PluginType::Filter, config()).unwrap_err();
    assert!(
        matches!(&e, SandboxError::Load(r) if r == "test.lua:1: instruction_limit exceeded"),
        "{e}"
    );
    let e = try_new(
        "x = string.rep('x', 100000000)",
        PluginType::Filter,
        config(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "memory_limit exceeded");
    let e = try_new("function process_message(", PluginType::Filter, config()).unwrap_err();
    assert!(e.to_string().starts_with("test.lua:1:"), "{e}");
}

#[test]
fn memory_bomb_hits_memory_limit() {
    let (mut sb, reason) = run_file("memory_bomb.lua", PluginType::Filter);
    assert_eq!(reason, "process_message() memory_limit exceeded");
    assert!(sb.stats().max_memory <= 8 * 1024 * 1024 + 64 * 1024);
    assert_eq!(terminated(process(&mut sb, &sample()).0), reason);
    // a single huge allocation too
    let mut sb = new(
        "function process_message() local s = string.rep('x', 9 * 1024 * 1024) return 0 end",
        PluginType::Decoder,
    );
    assert_eq!(
        terminated(process(&mut sb, &sample()).0),
        "process_message() memory_limit exceeded"
    );
}

#[test]
fn circular_buffers_count_against_the_memory_limit() {
    let mut sb = new(
        r#"require "circular_buffer"
function process_message()
    cb = circular_buffer.new(1000000, 10, 1)
    return 0
end"#,
        PluginType::Filter,
    );
    assert_eq!(
        terminated(process(&mut sb, &sample()).0),
        "process_message() memory_limit exceeded"
    );
    // 60 000 cells × 8 B = 480 kB fit; twenty of them do not
    let mut sb = new(
        r#"require "circular_buffer"
bufs = {}
function process_message()
    bufs[#bufs + 1] = circular_buffer.new(6000, 10, 1)
    return 0
end"#,
        PluginType::Filter,
    );
    let mut n = 0;
    while process(&mut sb, &sample()).0.is_ok() {
        n += 1;
        assert!(n < 100, "never hit the limit");
    }
    assert!((10..=17).contains(&n), "{n} buffers of 480 kB in 8 MiB");
}

#[test]
fn hyperloglogs_count_against_the_memory_limit() {
    // 16 KiB of registers each, outside the Lua heap: 8 MiB hold fewer than 512
    let mut sb = new(
        r#"require "hyperloglog"
hlls = {}
function process_message()
    for i = 1, 64 do hlls[#hlls + 1] = hyperloglog.new() end
    return 0
end"#,
        PluginType::Filter,
    );
    let mut n = 0;
    while process(&mut sb, &sample()).0.is_ok() {
        n += 1;
        assert!(n < 100, "never hit the limit");
    }
    assert!(
        (4..8).contains(&n),
        "{n} batches of 64 hyperloglogs in 8 MiB"
    );
}

#[test]
fn oversized_output_hits_output_limit() {
    let (_, reason) = run_file("oversized_output.lua", PluginType::Filter);
    // Lua shortens long chunk names to the last 60 characters
    assert!(reason.starts_with("process_message() ..."), "{reason}");
    assert!(
        reason.ends_with("limits/oversized_output.lua:2: output_limit exceeded"),
        "{reason}"
    );
}

#[test]
fn os_execute_is_not_available() {
    let (_, reason) = run_file("os_execute.lua", PluginType::Filter);
    assert_eq!(
        reason,
        at(
            "os_execute.lua",
            2,
            "attempt to call field 'execute' (a nil value)"
        )
    );
    assert!(!std::path::Path::new("/tmp/hekate-sandbox-escaped").exists());
}

#[test]
fn io_is_not_available() {
    let (_, reason) = run_file("io_open.lua", PluginType::Decoder);
    assert_eq!(
        reason,
        at(
            "io_open.lua",
            2,
            "attempt to index global 'io' (a nil value)"
        )
    );
}

#[test]
fn bytecode_cannot_be_loaded() {
    for ty in [PluginType::Filter, PluginType::Input] {
        let (_, reason) = run_file("bytecode.lua", ty);
        assert_eq!(
            reason,
            at(
                "bytecode.lua",
                2,
                "attempt to call global 'load' (a nil value)"
            )
        );
    }
    // nor through require
    let dir = std::env::temp_dir().join(format!("hekate-sandbox-bc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("evil.lua"),
        b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00",
    )
    .unwrap();
    let mut cfg = config();
    cfg.module_directory = dir.display().to_string();
    let e = try_new("require 'evil'", PluginType::Filter, cfg).unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.lua:1: module 'evil': loading precompiled (bytecode) chunks is not allowed"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn strict_environment() {
    for ty in [PluginType::Decoder, PluginType::Filter, PluginType::Encoder] {
        let sb = new("function process_message() return 0 end", ty);
        for g in [
            "collectgarbage",
            "coroutine",
            "dofile",
            "load",
            "loadfile",
            "loadstring",
            "newproxy",
            "print",
            "io",
            "package",
            "module",
            "debug",
            "os.getenv",
            "os.execute",
            "os.exit",
            "os.remove",
            "os.rename",
            "os.setlocale",
            "os.tmpname",
        ] {
            assert!(
                sb.eval::<bool>(&format!("return {g} == nil")).unwrap(),
                "{ty}: {g}"
            );
        }
        for g in [
            "string",
            "table",
            "math",
            "os.time",
            "os.date",
            "os.clock",
            "os.difftime",
            "pcall",
            "setfenv",
            "getfenv",
            "setmetatable",
            "tostring",
            "unpack",
            "select",
            "require",
        ] {
            assert!(
                sb.eval::<bool>(&format!("return {g} ~= nil")).unwrap(),
                "{ty}: {g}"
            );
        }
        let e = try_new("require 'io'", ty, config()).unwrap_err();
        assert_eq!(e.to_string(), "test.lua:1: module 'io' is disabled");
    }
}

#[test]
fn loose_environment_for_inputs_and_outputs() {
    for ty in [PluginType::Input, PluginType::Output] {
        let sb = new("function process_message() return 0 end", ty);
        for g in [
            "dofile",
            "load",
            "loadfile",
            "loadstring",
            "print",
            "os.exit",
            "os.setlocale",
        ] {
            assert!(
                sb.eval::<bool>(&format!("return {g} == nil")).unwrap(),
                "{ty}: {g}"
            );
        }
        for g in ["io", "io.open", "coroutine", "os.getenv", "collectgarbage"] {
            assert!(
                sb.eval::<bool>(&format!("return {g} ~= nil")).unwrap(),
                "{ty}: {g}"
            );
        }
    }
}

#[test]
fn local_time_zone_is_utc() {
    let sb = new(
        "function process_message() return 0 end",
        PluginType::Filter,
    );
    let s: String = sb
        .eval("return os.date('!%Y-%m-%d %H:%M:%S', 0) .. '|' .. os.date('%H %Z', 3600)")
        .unwrap();
    assert_eq!(s, "1970-01-01 00:00:00|01 UTC");
    let t: f64 = sb
        .eval("return os.time({year = 2006, month = 1, day = 2, hour = 15, min = 4, sec = 5})")
        .unwrap();
    assert_eq!(t, 1_136_214_245.0);
    let t: String = sb
        .eval("local t = os.date('*t', 1136214245) return t.year .. t.month .. t.day .. t.hour .. t.wday .. t.yday")
        .unwrap();
    assert_eq!(t, "2006121522");
    let e: String = sb
        .eval("local ok, e = pcall(os.time, {year = 2006}) return e")
        .unwrap();
    assert_eq!(e, "field 'day' missing in date table");
}

#[test]
fn errors_reach_pcall_as_strings() {
    let mut sb = new(
        r#"require "cjson"
function process_message()
    local ok, e = pcall(cjson.decode, "{bad json")
    t1 = type(e)
    ok, e = xpcall(function() add_to_payload({}) end, function(m) return "handled: " .. m end)
    t2 = e
    return 0
end"#,
        PluginType::Filter,
    );
    process_ok(&mut sb, &sample());
    assert_eq!(sb.eval::<String>("return t1").unwrap(), "string");
    assert_eq!(
        sb.eval::<String>("return t2").unwrap(),
        "handled: test.lua:5: bad argument #1 to 'add_to_payload' (unsupported type)"
    );
    assert_eq!(sb.status(), SandboxStatus::Running);
    let _ = Outcome::Ok;
}

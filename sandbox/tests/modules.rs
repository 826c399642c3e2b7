//! require: built-in modules and .lua modules from module_directory.

mod common;

use common::*;
use hekate_sandbox::{PluginType, Sandbox};

fn with_dirs(dirs: &str, code: &str) -> Result<Sandbox, hekate_sandbox::SandboxError> {
    let mut cfg = config();
    cfg.module_directory = dirs.into();
    try_new(code, PluginType::Filter, cfg)
}

fn dir(name: &str) -> String {
    lua_dir().join(name).display().to_string()
}

#[test]
fn lua_modules_from_module_directory() {
    let dirs = format!("/nonexistent;{};{}", dir("modules"), dir("modules2"));
    let sb = with_dirs(
        &dirs,
        r#"local g = require "greeting"
local g2 = require "greeting"
same = rawequal(g, g2)
msg = g.hello("world")
inner = require("sub.inner").name
clf = type(require("clf_time").time_local)
function process_message() return 0 end"#,
    )
    .unwrap();
    assert!(sb.eval::<bool>("return same and loads == 1").unwrap());
    assert_eq!(sb.eval::<String>("return msg").unwrap(), "hello world");
    assert_eq!(sb.eval::<String>("return inner").unwrap(), "sub.inner");
    assert_eq!(sb.eval::<String>("return clf").unwrap(), "userdata");
    // '?' patterns work too
    let sb = with_dirs(
        &format!("{}/?.lua", dir("modules2")),
        "g = require 'greeting'",
    )
    .unwrap();
    assert!(sb.eval::<bool>("return g.hello ~= nil").unwrap());
}

#[test]
fn require_errors() {
    let e = with_dirs(&dir("modules2"), "require 'missing'")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "test.lua:1: module 'missing' not found:\n\tno file '{}/missing.lua'",
            dir("modules2")
        )
    );
    let e = with_dirs(&dir("modules2"), "require 'loop_a'")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("loop_b.lua:1: loop or previous error loading module 'loop_a'"),
        "{e}"
    );
    let e = with_dirs(&dir("modules2"), "require '../etc/passwd'")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "test.lua:1: invalid module name '../etc/passwd'");
    let e = with_dirs(&dir("modules2"), "require()")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "test.lua:1: bad argument #1 to 'require' (string expected, got nil)"
    );
    let e = with_dirs("", "require 'coroutine'")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "test.lua:1: module 'coroutine' is disabled");
}

/// Every built-in module of the reference's list loads with `require` inside a filter sandbox,
/// registers its global, and works there (the modules' own tests cover their behaviour).
#[test]
fn built_in_modules_load_in_a_sandbox() {
    let sb = with_dirs(
        "",
        r#"std_ok = rawequal(require "string", string) and rawequal(require "table", table)
    and rawequal(require "math", math) and rawequal(require "os", os)
local packed = require("struct").pack(">I2", 258)
packed_ok = packed == "\1\2" and struct ~= nil
local hll = require("hyperloglog").new()
hll:add("a") hll:add("b") hll:add("a")
hll_count = hll:count()
local bf = require("bloom_filter").new(100, 0.01)
bf_ok = bf:add("x") and bf:query("x") and not bf:add("x") and bloom_filter ~= nil
local cf = require("cuckoo_filter").new(64)
cf_ok = cf:add("x") and cf:query("x") and cf:delete("x") and not cf:query("x")
cb_ok = require("circular_buffer").new(2, 1, 1) ~= nil
json_ok = require("cjson").decode('{"a":1}').a == 1
lpeg_ok = require("lpeg").match(require("lpeg").P("a"), "a") == 2
re_ok = require("re").match("ab", "'a' 'b'") == 3
sax_ok = tostring(require("sax").word.new("CDC", 4)) == "CDC" and sax ~= nil
function process_message() return 0 end"#,
    )
    .unwrap();
    for flag in [
        "std_ok",
        "packed_ok",
        "bf_ok",
        "cf_ok",
        "cb_ok",
        "json_ok",
        "lpeg_ok",
        "re_ok",
        "sax_ok",
    ] {
        assert!(
            sb.eval::<bool>(&format!("return {flag}")).unwrap(),
            "{flag}"
        );
    }
    assert_eq!(sb.eval::<f64>("return hll_count").unwrap(), 2.0);
}

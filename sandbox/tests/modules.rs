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

#[test]
fn builtin_modules() {
    let sb = with_dirs(
        "",
        r#"ok = rawequal(require "string", string) and rawequal(require "table", table)
    and rawequal(require "math", math) and rawequal(require "os", os)
cb = type(require("circular_buffer").new)
lp = type(require("lpeg").P)
function process_message() return 0 end"#,
    )
    .unwrap();
    assert!(sb.eval::<bool>("return ok").unwrap());
    assert_eq!(
        sb.eval::<String>("return cb .. lp").unwrap(),
        "functionfunction"
    );
}

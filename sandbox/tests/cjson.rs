//! The cjson module.

mod common;

use common::*;
use hekate_sandbox::{PluginType, Sandbox};

fn sb() -> Sandbox {
    new(
        r#"require "cjson"
function err(f, ...) local ok, e = pcall(f, ...) return e end
function process_message() return 0 end"#,
        PluginType::Filter,
    )
}

fn s(sb: &Sandbox, code: &str) -> String {
    sb.eval::<String>(&format!("return {code}"))
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn encode() {
    let sb = sb();
    assert_eq!(s(&sb, "cjson.encode({1, 2, 3})"), "[1,2,3]");
    assert_eq!(s(&sb, "cjson.encode({a = 'x'})"), r#"{"a":"x"}"#);
    assert_eq!(s(&sb, "cjson.encode({})"), "{}");
    assert_eq!(
        s(&sb, "cjson.encode({a = {b = {true, false}}})"),
        r#"{"a":{"b":[true,false]}}"#
    );
    assert_eq!(
        s(&sb, "cjson.encode('a\"b\\\\c/d\\n\\1')"),
        r#""a\"b\\c\/d\n\u0001""#
    );
    assert_eq!(
        s(
            &sb,
            "cjson.encode({0.1, 1e20, 3.14159265358979, -0.5, 1/3})"
        ),
        "[0.1,1e+20,3.1415926535898,-0.5,0.33333333333333]"
    );
    assert_eq!(s(&sb, "cjson.encode({1, cjson.null, 3})"), "[1,null,3]");
    assert_eq!(s(&sb, "cjson.encode({[1] = 1, [3] = 3})"), "[1,null,3]");
    assert_eq!(s(&sb, "cjson.encode(nil)"), "null");
    let mixed = s(&sb, "cjson.encode({[2] = 'x', [1.5] = 'y'})");
    assert!(
        mixed == r#"{"2":"x","1.5":"y"}"# || mixed == r#"{"1.5":"y","2":"x"}"#,
        "{mixed}"
    );
    assert_eq!(
        s(&sb, "err(cjson.encode, {[1] = 1, [100] = 2})"),
        "Cannot serialise table: excessively sparse array"
    );
    assert_eq!(
        s(&sb, "err(cjson.encode, {0/0})"),
        "Cannot serialise number: must not be NaN or Inf"
    );
    assert_eq!(
        s(&sb, "err(cjson.encode, {f = tostring})"),
        "Cannot serialise function: type not supported"
    );
    assert_eq!(
        s(&sb, "err(cjson.encode, {[true] = 1})"),
        "Cannot serialise table: table key must be a number or string"
    );
    assert_eq!(
        s(
            &sb,
            "(function() local t = {} t.t = t return err(cjson.encode, t) end)()"
        ),
        "Cannot serialise, excessive nesting (129)"
    );
}

#[test]
fn decode() {
    let sb = sb();
    sb.eval::<()>(
        r#"d = cjson.decode('{"a":[1,2,{"b":"c"}],"n":null,"t":true,"f":1.5e3,"s":"\\u00e9\\/"}')"#,
    )
    .unwrap();
    assert_eq!(s(&sb, "d.a[3].b"), "c");
    assert_eq!(sb.eval::<f64>("return d.a[2] + d.f").unwrap(), 1502.0);
    assert!(
        sb.eval::<bool>("return d.n == nil and d.t == true")
            .unwrap()
    );
    assert_eq!(s(&sb, "d.s"), "é/");
    assert!(
        sb.eval::<bool>("return cjson.decode('[1,null,3]')[3] == 3")
            .unwrap()
    );
    assert_eq!(sb.eval::<f64>("return cjson.decode('42')").unwrap(), 42.0);
    // JSON null kept only when asked for
    sb.eval::<()>("cjson.decode_null(true)").unwrap();
    assert!(
        sb.eval::<bool>(r#"return cjson.decode('{"n":null}').n == cjson.null"#)
            .unwrap()
    );
    sb.eval::<()>("cjson.decode_null(false)").unwrap();
    assert!(
        sb.eval::<bool>(r#"return cjson.decode('{"n":null}').n == nil"#)
            .unwrap()
    );
    let e = s(&sb, "err(cjson.decode, '{bad')");
    assert!(
        e.starts_with("Expected value but found invalid token"),
        "{e}"
    );
    let e = s(&sb, "type(err(cjson.decode, '[1,2'))");
    assert_eq!(e, "string");
    assert!(
        s(&sb, "err(cjson.decode, string.rep('[', 2000))").starts_with("Found too many nested")
    );
}

#[test]
fn round_trip_and_disabled_functions() {
    let sb = sb();
    assert_eq!(
        s(
            &sb,
            r#"cjson.encode(cjson.decode('{"k":[1,"two",false]}'))"#
        ),
        r#"{"k":[1,"two",false]}"#
    );
    assert!(
        sb.eval::<bool>("return cjson.new == nil and cjson.encode_keep_buffer == nil")
            .unwrap()
    );
}

#[test]
fn encode_is_bounded_by_output_limit() {
    let mut cfg = config();
    cfg.output_limit = 1000;
    let sb = try_new(
        r#"require "cjson"
function err(f, ...) local ok, e = pcall(f, ...) return e end
function process_message() return 0 end"#,
        PluginType::Filter,
        cfg,
    )
    .unwrap();
    assert_eq!(
        s(&sb, "err(cjson.encode, {string.rep('x', 2000)})"),
        "output_limit exceeded"
    );
    assert_eq!(
        sb.eval::<f64>("return #cjson.encode({string.rep('x', 900)})")
            .unwrap(),
        904.0
    );
}

#[test]
fn global_after_require() {
    let sb = new(
        "local c = require 'cjson' same = rawequal(c, cjson) function process_message() return 0 end",
        PluginType::Decoder,
    );
    assert!(sb.eval::<bool>("return same").unwrap());
}

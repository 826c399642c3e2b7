//! circular_buffer: the whole API, and the exact cbuf / cbufd text after window shifts.

mod common;

use common::*;
use hekate_model::message::{Field, Message};
use hekate_sandbox::{Outcome, PluginType, Sandbox};

const HEADER_AT: &str = r#"{"time":TIME,"rows":3,"columns":2,"seconds_per_row":60,"column_info":[{"name":"Requests","unit":"count","aggregation":"sum"},{"name":"Max_Latency_","unit":"ms","aggregation":"max"}]}"#;

fn header(time: i64) -> String {
    HEADER_AT.replace("TIME", &time.to_string()) + "\n"
}

fn request(sec: i64, latency: f64) -> Message {
    let mut m = Message::new_now();
    m.timestamp = sec * 1_000_000_000;
    m.fields.push(Field::double("latency", latency));
    m
}

fn tick(sb: &mut Sandbox) -> Vec<(String, String, String)> {
    let (r, host) = timer(sb, 0);
    assert_eq!(r, Ok(Outcome::Ok));
    host.messages()
        .iter()
        .map(|m| {
            (
                field_str(m, "payload_type"),
                field_str(m, "payload_name"),
                m.payload.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn cbuf_and_cbufd_after_window_shifts() {
    let mut cfg = config();
    cfg.max_timer_inject = 10;
    let mut sb = Sandbox::new(script("cbuf_filter.lua"), PluginType::Filter, "Req", cfg).unwrap();
    for (sec, lat) in [(60, 5.0), (130, 7.0), (150, 3.0), (200, 2.0)] {
        process_ok(&mut sb, &request(sec, lat));
    }
    let out = tick(&mut sb);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, "cbuf");
    assert_eq!(out[0].1, "Requests");
    assert_eq!(out[0].2, header(60) + "1\t5\n2\t7\n1\t2\n");
    assert_eq!(out[1].0, "cbufd");
    assert_eq!(out[1].2, header(60) + "60\t1\t5\n120\t2\t7\n180\t1\t2\n");

    // nothing changed: the cbuf again, no cbufd message at all
    let out = tick(&mut sb);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].2, header(60) + "1\t5\n2\t7\n1\t2\n");

    // one more minute: the oldest row falls out
    process_ok(&mut sb, &request(245, 0.25));
    let out = tick(&mut sb);
    assert_eq!(out[0].2, header(120) + "2\t7\n1\t2\n1\t0.25\n");
    assert_eq!(out[1].2, header(120) + "240\t1\t0.25\n");

    // a jump past the whole window clears every row
    process_ok(&mut sb, &request(400, 9.5));
    let out = tick(&mut sb);
    assert_eq!(out[0].2, header(240) + "1\t0.25\nnan\tnan\n1\t9.5\n");
    assert_eq!(out[1].2, header(240) + "360\t1\t9.5\n");
    process_ok(&mut sb, &request(600, -1.0));
    let out = tick(&mut sb);
    assert_eq!(out[0].2, header(480) + "nan\tnan\nnan\tnan\n1\t-1\n");
    assert_eq!(out[1].2, header(480) + "600\t1\t-1\n");

    // data older than the window is refused
    let sb2 = new(
        r#"require "circular_buffer"
cb = circular_buffer.new(2, 1, 1)
function process_message() return 0 end"#,
        PluginType::Filter,
    );
    let r: (Option<f64>, Option<f64>, Option<f64>) = sb2
        .eval("return cb:add(10e9, 1, 1), cb:add(8e9, 1, 1), cb:add(9e9, 1, 2.5)")
        .unwrap();
    assert_eq!(r, (Some(1.0), None, Some(2.5)));
}

fn cb_sandbox() -> Sandbox {
    new(
        r#"require "circular_buffer"
cb = circular_buffer.new(4, 2, 10)
cb:set_header(1, "Value")
cb:set_header(2, "Low", "ms", "min")
function err(f, ...) local ok, e = pcall(f, ...) return e end
function process_message() return 0 end"#,
        PluginType::Filter,
    )
}

fn eval_s(sb: &Sandbox, code: &str) -> String {
    sb.eval::<String>(code)
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn add_set_get() {
    let sb = cb_sandbox();
    let r: (f64, f64, f64, f64, f64, f64) = sb
        .eval("return cb:add(30e9, 1, 2), cb:add(30e9, 1, 3), cb:get(30e9, 1), cb:set(30e9, 2, 9), cb:set(30e9, 2, 4), cb:set(30e9, 2, 6)")
        .unwrap();
    assert_eq!(r, (2.0, 5.0, 5.0, 9.0, 4.0, 4.0));
    assert!(
        sb.eval::<bool>("return cb:get(40e9, 1) == nil").unwrap(),
        "future"
    );
    assert!(
        sb.eval::<bool>("local v = cb:get(0, 1) return v ~= v")
            .unwrap(),
        "NaN cell"
    );
    assert_eq!(sb.eval::<f64>("return cb:current_time()").unwrap(), 30e9);
    let cfg: (f64, f64, f64) = sb.eval("return cb:get_configuration()").unwrap();
    assert_eq!(cfg, (4.0, 2.0, 10.0));
    let h: (String, String, String) = sb.eval("return cb:get_header(2)").unwrap();
    assert_eq!(h, ("Low".into(), "ms".into(), "min".into()));
    let h: (String, String, String) = sb.eval("return cb:get_header(1)").unwrap();
    assert_eq!(h, ("Value".into(), "count".into(), "sum".into()));
    assert_eq!(
        sb.eval::<f64>("return cb:set_header(2, 'a very long column name', 'unit/s*x!', 'max')")
            .unwrap(),
        2.0
    );
    let h: (String, String, String) = sb.eval("return cb:get_header(2)").unwrap();
    assert_eq!(
        h,
        ("a_very_long_col".into(), "unit/s*".into(), "max".into())
    );
}

#[test]
fn compute_and_ranges() {
    let sb = cb_sandbox();
    sb.eval::<()>("cb:set(0, 1, 1) cb:set(10e9, 1, 2) cb:set(20e9, 1, 3) cb:set(30e9, 1, 6)")
        .unwrap();
    let c = |f: &str| -> (f64, f64) { sb.eval(&format!("return cb:compute('{f}', 1)")).unwrap() };
    assert_eq!(c("sum"), (12.0, 4.0));
    assert_eq!(c("avg"), (3.0, 4.0));
    assert_eq!(c("min"), (1.0, 4.0));
    assert_eq!(c("max"), (6.0, 4.0));
    assert_eq!(c("variance"), (3.5, 4.0));
    assert!((c("sd").0 - 3.5f64.sqrt()).abs() < 1e-12);
    let r: (f64, f64) = sb.eval("return cb:compute('sum', 1, 10e9, 20e9)").unwrap();
    assert_eq!(r, (5.0, 2.0));
    let r: (f64, f64) = sb.eval("return cb:compute('sum', 2)").unwrap();
    assert_eq!(r, (0.0, 0.0), "all NaN");
    assert!(
        sb.eval::<bool>("return cb:compute('sum', 1, 0, 50e9) == nil")
            .unwrap()
    );
    let range: Vec<f64> = sb.eval("return cb:get_range(1, 10e9, 30e9)").unwrap();
    assert_eq!(range, [2.0, 3.0, 6.0]);
    let range: Vec<f64> = sb.eval("return cb:get_range(1)").unwrap();
    assert_eq!(range, [1.0, 2.0, 3.0, 6.0]);
    let (u, p): (f64, f64) = sb
        .eval("return cb:mannwhitneyu(1, 0, 10e9, 20e9, 30e9)")
        .unwrap();
    assert_eq!(u, 0.0);
    assert!(p > 0.0 && p < 0.5, "{p}");
}

#[test]
fn argument_errors() {
    let sb = cb_sandbox();
    for (call, msg) in [
        (
            "circular_buffer.new, 1, 1, 1",
            "bad argument #1 to 'new' (rows must be > 1)",
        ),
        (
            "circular_buffer.new, 2, 0, 1",
            "bad argument #2 to 'new' (columns must be > 0)",
        ),
        (
            "circular_buffer.new, 2, 1, 0",
            "bad argument #3 to 'new' (seconds_per_row is out of range)",
        ),
        (
            "circular_buffer.new, 2, 1, 1, 'x'",
            "bad argument #4 to 'new' (boolean expected, got string)",
        ),
        (
            "circular_buffer.new, 'a', 1, 1",
            "bad argument #1 to 'new' (number expected, got string)",
        ),
        (
            "cb.add, cb, 0, 3, 1",
            "bad argument #2 to 'add' (column out of range)",
        ),
        (
            "cb.add, cb, 0, 1, 'x'",
            "bad argument #3 to 'add' (number expected, got string)",
        ),
        (
            "cb.set_header, cb, 1, 'n', 'u', 'avg'",
            "bad argument #4 to 'set_header' (invalid option 'avg')",
        ),
        (
            "cb.compute, cb, 'median', 1",
            "bad argument #1 to 'compute' (invalid option 'median')",
        ),
        (
            "cb.compute, cb, 'sum', 1, 20e9, 10e9",
            "bad argument #4 to 'compute' (end must be >= start)",
        ),
        (
            "cb.format, cb, 'json'",
            "bad argument #1 to 'format' (invalid option 'json')",
        ),
        (
            "cb.format, cb, 'cbufd'",
            "bad argument #1 to 'format' (cbufd output requires enable_delta)",
        ),
        ("cb.fromstring, cb, '1 2 3'", "fromstring() too few values"),
    ] {
        assert_eq!(eval_s(&sb, &format!("return err({call})")), msg, "{call}");
    }
}

#[test]
fn fromstring_restores_state() {
    let sb = cb_sandbox();
    sb.eval::<()>("cb:set(20e9, 1, 1.5) cb:set(30e9, 2, -2)")
        .unwrap();
    sb.eval::<()>(
        "cb2 = circular_buffer.new(4, 2, 10) cb2:fromstring('30 3 nan nan nan nan 1.5 nan nan -2')",
    )
    .unwrap();
    let v: (f64, f64, f64) = sb
        .eval("return cb2:get(20e9, 1), cb2:get(30e9, 2), cb2:current_time()")
        .unwrap();
    assert_eq!(v, (1.5, -2.0, 30e9));
}

#[test]
fn cbuf_via_add_to_payload_and_annotation_line() {
    let mut sb = new(
        r#"require "circular_buffer"
cb = circular_buffer.new(2, 1, 1)
function process_message()
    cb:add(read_message("Timestamp"), 1, 0.1)
    add_to_payload('{"annotations":[]}\n', cb)
    inject_payload("cbuf", "Title")
    return 0
end"#,
        PluginType::Decoder,
    );
    let mut m = Message::new_now();
    m.timestamp = 5_000_000_000;
    let host = process_ok(&mut sb, &m);
    assert_eq!(
        host.messages()[0].payload.as_deref(),
        Some(concat!(
            "{\"annotations\":[]}\n",
            r#"{"time":4,"rows":2,"columns":1,"seconds_per_row":1,"column_info":[{"name":"Column_1","unit":"count","aggregation":"sum"}]}"#,
            "\nnan\n0.1\n"
        ))
    );
}

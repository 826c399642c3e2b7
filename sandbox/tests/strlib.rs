//! `string.find`, `match`, `gmatch`, `gsub`: stock Lua 5.1.5's results and errors, with the
//! matcher's steps charged to the instruction limit (a pathological pattern terminates the
//! sandbox instead of stalling its thread).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hekate_sandbox::{PluginType, Sandbox, SandboxConfig, ScriptSource};

fn patterns_script() -> String {
    std::fs::read_to_string(lua_dir().join("strlib/patterns.lua")).unwrap()
}

fn expected() -> String {
    std::fs::read_to_string(lua_dir().join("strlib/patterns.expected")).unwrap()
}

/// Compares line by line, so that a failure names the first case that differs.
fn assert_same(got: &str, want: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of patterns.expected", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

#[test]
fn results_and_errors_are_stock_lua_5_1() {
    // Outside a call (no budget running) ...
    // named as lua5.1 named it, for the positions in error messages
    let load = |code: &str, cfg| {
        Sandbox::new(
            ScriptSource::source("patterns.lua", code),
            PluginType::Filter,
            "Patterns",
            cfg,
        )
        .unwrap()
    };
    let sb = load(&patterns_script(), config());
    let got: String = sb.eval("return run()").unwrap();
    assert_same(&got, &expected());
    // ... and inside one, with every step charged.
    let code = format!(
        "{}\nfunction process_message() result = run() return 0 end",
        patterns_script()
    );
    let mut cfg = config();
    cfg.instruction_limit = u32::MAX;
    let mut sb = load(&code, cfg);
    process_ok(&mut sb, &sample());
    let got: String = sb.eval("return result").unwrap();
    assert_same(&got, &expected());
}

/// Four lazy captures that must each stop at a space, anchored at both ends: on a line of words
/// that does not end in " end" the matcher backtracks through O(n⁴) splits.
const PATHOLOGICAL: &str = r#"
function process_message()
    local line = read_message("Payload")
    local a, b, c, d = line:match("^(.-) (.-) (.-) (.-) end$")
    return 0
end"#;

fn long_line() -> String {
    // ~1.2 KB of short words, no " end" at the end
    "word ".repeat(240)
}

#[test]
fn a_pathological_pattern_hits_the_instruction_limit() {
    let mut sb = try_new(PATHOLOGICAL, PluginType::Decoder, config()).unwrap();
    let start = Instant::now();
    let reason = terminated(process(&mut sb, &payload_msg(&long_line())).0);
    assert_eq!(
        reason,
        "process_message() test.lua:4: instruction_limit exceeded"
    );
    // a million steps take milliseconds; stock Lua ran this for minutes
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // the sandbox stays terminated
    assert_eq!(terminated(process(&mut sb, &sample()).0), reason);
}

#[test]
fn the_same_pattern_on_a_matching_line_is_fine() {
    let mut sb = try_new(
        r#"function process_message()
            local a, b, c, d = read_message("Payload"):match("^(.-) (.-) (.-) (.-) end$")
            if d ~= "four" then error("no match: " .. tostring(d)) end
            return 0
        end"#,
        PluginType::Decoder,
        config(),
    )
    .unwrap();
    process_ok(&mut sb, &payload_msg("one two three four end"));
}

#[test]
fn pcall_cannot_swallow_a_string_functions_limit() {
    let code = r#"
function process_message()
    local line = read_message("Payload")
    local ok, err = pcall(string.match, line, "^(.-) (.-) (.-) (.-) end$")
    inject_payload("txt", "caught", tostring(err))
    return 0
end"#;
    let mut sb = try_new(code, PluginType::Filter, config()).unwrap();
    let (r, host) = process(&mut sb, &payload_msg(&long_line()));
    assert!(terminated(r).ends_with("instruction_limit exceeded"));
    assert!(
        host.messages().is_empty(),
        "the script ran on after the limit"
    );
}

#[test]
fn gsub_gmatch_and_find_are_budgeted_too() {
    for call in [
        r#"line:gsub("^(.-) (.-) (.-) (.-) end$", "%4")"#,
        r#"for a in line:gmatch("(.-) (.-) (.-) (.-) end$") do end"#,
        r#"line:find("^(.-) (.-) (.-) (.-) end$")"#,
        r#"string.gfind(line, "(.-) (.-) (.-) (.-) end$")()"#,
        // many cheap matches add up as well
        r#"while true do line:find("x") end"#,
    ] {
        let code = format!(
            "function process_message()\n local line = read_message(\"Payload\")\n {call}\n return 0\nend"
        );
        let mut sb = try_new(&code, PluginType::Filter, config()).unwrap();
        let reason = terminated(process(&mut sb, &payload_msg(&long_line())).0);
        assert!(
            reason.ends_with("instruction_limit exceeded"),
            "{call}: {reason}"
        );
    }
}

#[test]
fn a_gsub_callback_and_its_steps_share_one_budget() {
    // The callback's instructions and the matcher's steps both count.
    let code = r#"
function process_message()
    local n = 0
    read_message("Payload"):gsub("%w+", function(w) for i = 1, 100 do n = n + i end end)
    return 0
end"#;
    let mut cfg = config();
    cfg.instruction_limit = 100_000;
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    process_ok(&mut sb, &payload_msg(&"w ".repeat(100)));
    let r = process(&mut sb, &payload_msg(&"w ".repeat(2000))).0;
    assert!(terminated(r).ends_with("instruction_limit exceeded"));
}

#[test]
fn matcher_steps_count_in_max_instructions() {
    // find("%d") on 100 000 a's: one failing step at each of the 100 001 start positions
    let code = r#"
s = string.rep("a", 100000)
function process_message()
    if s:find("%d") then error("found") end
    return 0
end"#;
    let mut sb = try_new(code, PluginType::Filter, config()).unwrap();
    process_ok(&mut sb, &sample());
    let max = sb.stats().max_instructions;
    assert!((100_000..=102_000).contains(&max), "{max}");
}

#[test]
fn inputs_string_functions_have_no_instruction_limit() {
    let code = r#"
function process_message()
    local s = string.rep("a", 3000000)
    if s:find("%d") then error("found") end
    return 0
end"#;
    let mut cfg = config();
    cfg.memory_limit = 0;
    let mut sb = try_new(code, PluginType::Input, cfg).unwrap();
    process_ok(&mut sb, &sample());
}

#[test]
fn no_limit_means_no_limit() {
    let mut cfg: SandboxConfig = config();
    cfg.instruction_limit = 0;
    cfg.memory_limit = 0;
    let code = r#"
function process_message()
    local s = string.rep("a", 3000000)
    if s:find("%d") then error("found") end
    return 0
end"#;
    let mut sb = try_new(code, PluginType::Filter, cfg).unwrap();
    process_ok(&mut sb, &sample());
}

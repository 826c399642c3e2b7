//! SIGUSR2's abort (`hekate_sandbox::abort_all`): every sandbox that exists terminates, a
//! running endless loop, a long string match and a long LPeg match included; sandboxes created
//! afterwards run
//! normally.
//! Its own test binary: the abort is process-wide.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use hekate_sandbox::{Outcome, PluginType, VecHost, abort_all};

#[test]
fn abort_stops_running_and_idle_sandboxes_but_not_later_ones() {
    // Endless loops with no instruction limit, a filter's and an input's (whose long-running
    // entry point has none): only the abort can stop them.
    let (tx, rx) = mpsc::channel();
    // Results come back on a channel, so that a sandbox that is not aborted fails the test
    // instead of hanging it.
    let spin = |ty: PluginType, code: &'static str, tx: mpsc::Sender<()>| {
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut cfg = config();
            cfg.instruction_limit = 0;
            let mut sb = try_new(code, ty, cfg).unwrap();
            tx.send(()).unwrap();
            let r = if ty == PluginType::Input {
                sb.run_input(&mut VecHost::at(NOW))
            } else {
                process(&mut sb, &sample()).0
            };
            let _ = done_tx.send(r);
        });
        done
    };
    let outcome = |done: mpsc::Receiver<_>| -> String {
        let r: Result<Outcome, hekate_sandbox::Terminated> = done
            .recv_timeout(Duration::from_secs(10))
            .expect("the endless loop was not aborted");
        r.unwrap_err().reason
    };
    const LOOP: &str = "function process_message() local n = 0 while true do n = n + 1 end end";
    // Stuck inside one string.match for hours (stock Lua's matcher never looks up).
    const MATCH: &str = r#"function process_message()
        return ("word "):rep(1000):match("^(.-) (.-) (.-) (.-) end$") and 0 or 1 end"#;
    // Stuck inside one LPeg match for days: 2^40 paths through nested ordered choices (as in
    // tests/lpeg.rs).
    const LPEG: &str = r##"local l = require "lpeg"
        local g, x = { "r40", r0 = l.P"a"^0 }, l.P"a" + "bb"
        for i = 1, 40 do g["r" .. i] = x * l.V("r" .. (i - 1)) * "#" + x * l.V("r" .. (i - 1)) * "$" end
        local patt = l.P(g)
        function process_message()
        return patt:match(("a"):rep(1000)) and 0 or 1 end"##;
    let filter = spin(PluginType::Filter, LOOP, tx.clone());
    let input = spin(PluginType::Input, LOOP, tx.clone());
    let matching = spin(PluginType::Decoder, MATCH, tx.clone());
    let lpeg = spin(PluginType::Decoder, LPEG, tx);
    let idle_cfg = config();
    let mut idle = try_new(
        "function process_message() return 0 end",
        PluginType::Filter,
        idle_cfg,
    )
    .unwrap();
    for _ in 0..4 {
        rx.recv().unwrap();
    }
    // all are in their loops by now
    std::thread::sleep(Duration::from_millis(200));
    abort_all();
    let filter = outcome(filter);
    assert!(
        filter.starts_with("process_message() ") && filter.ends_with(":1: aborted by SIGUSR2"),
        "{filter}"
    );
    let input = outcome(input);
    assert!(input.ends_with(":1: aborted by SIGUSR2"), "{input}");
    let matching = outcome(matching);
    assert_eq!(matching, "process_message() test.lua:2: aborted by SIGUSR2");
    let lpeg = outcome(lpeg);
    assert_eq!(lpeg, "process_message() test.lua:6: aborted by SIGUSR2");
    // Idle: terminated at its next call, and for good.
    for _ in 0..2 {
        assert_eq!(
            process(&mut idle, &sample()).0.unwrap_err().reason,
            "process_message() aborted by SIGUSR2"
        );
    }
    // Created after the abort: unaffected.
    let mut later = new(
        "function process_message() return 0 end",
        PluginType::Filter,
    );
    assert_eq!(process(&mut later, &sample()).0, Ok(Outcome::Ok));
}

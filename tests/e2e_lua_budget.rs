//! End to end through the real binary: Lua's string functions run within the sandbox's limits.
//! A SandboxDecoder whose pattern backtracks without end (stock Lua 5.1 spent minutes on one
//! 1.2 KB line) is terminated by its `instruction_limit` about as fast as an endless loop under
//! the same limit, and SIGUSR2 stops one stuck in a match with no limit within a second, while
//! the coordinator stays idle and the pipeline carries on.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use hekate_model::message::Message;

/// Four lazy captures anchored at both ends: on a line of words not ending in " end" the
/// matcher tries O(n⁴) splits.
const PATHOLOGICAL_LUA: &str = r#"
function process_message()
    local line = read_message("Payload")
    local a, b, c, d = line:match("^(.-) (.-) (.-) (.-) end$")
    if not a then return -1, "no match" end
    return 0
end
"#;

const LOOP_LUA: &str = r#"
function process_message()
    local n = 0
    while true do n = n + 1 end
end
"#;

/// The tests time CPU-bound work: one at a time, so that neither slows the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A line of `words` one-letter words, newline-terminated, that the pattern cannot match: the
/// matcher tries every choice of three of its spaces, and scans the rest of the line for each
/// (600 words, 1.2 KB: about 2·10¹⁰ steps, a minute for stock Lua; 1000 words: far longer).
fn line_of(words: usize) -> Vec<u8> {
    let mut line = "a ".repeat(words).into_bytes();
    line.push(b'\n');
    line
}

/// (plugin, payload) of every `heka.sandbox-terminated` message in a Heka stream.
fn terminations(path: &Path) -> Vec<(String, String)> {
    read_stream(path)
        .into_iter()
        .filter(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))
        .map(|m| {
            let plugin = m
                .find_first_field("plugin")
                .and_then(|f| f.value_string.first().cloned())
                .unwrap_or_default();
            (plugin, m.payload.unwrap_or_default())
        })
        .collect()
}

fn terminated_at(path: &Path, plugin: &str) -> Option<String> {
    terminations(path)
        .into_iter()
        .find(|(p, _)| p == plugin)
        .map(|(_, reason)| reason)
}

fn count_of(path: &Path, ty: &str) -> usize {
    read_stream(path)
        .iter()
        .filter(|m: &&Message| m.r#type.as_deref() == Some(ty))
        .count()
}

/// CPU time (user + system, clock ticks) of each thread of `pid`, by thread id.
fn thread_ticks(pid: i32) -> Vec<(i32, String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(t.join("stat")) else {
            continue;
        };
        let tid: i32 = t.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let name = stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()].to_string();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        out.push((tid, name, ticks));
    }
    out
}

/// The pathological decoder and decoders stuck in an endless loop, under the same
/// instruction_limit, are all terminated; the pattern takes no more than twice as long as the
/// slower of two loops (run before and after it) (stock Lua's matcher ignored the limit: 40 s for an 802-byte line). The other inputs'
/// messages are delivered all along.
#[test]
fn a_pathological_pattern_is_terminated_by_the_instruction_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("lua-budget-limit");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(&share, "patho.lua", PATHOLOGICAL_LUA);
    write(&share, "loop.lua", LOOP_LUA);
    let ports: Vec<u16> = (0..4).map(|_| free_tcp_port()).collect();
    let [patho_port, loop_port, loop2_port, plain_port] = ports[..] else {
        unreachable!()
    };
    // A limit large enough that running it, not delivering the news, takes most of the time.
    const LIMIT: u32 = 100_000_000;
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"

[patho_in]
type = "TcpInput"
address = "127.0.0.1:{patho_port}"
splitter = "TokenSplitter"
decoder = "Patho"

[loop_in]
type = "TcpInput"
address = "127.0.0.1:{loop_port}"
splitter = "TokenSplitter"
decoder = "Loop"

[loop2_in]
type = "TcpInput"
address = "127.0.0.1:{loop2_port}"
splitter = "TokenSplitter"
decoder = "Loop2"

[plain_in]
type = "TcpInput"
address = "127.0.0.1:{plain_port}"

[Patho]
type = "SandboxDecoder"
filename = "patho.lua"
instruction_limit = {LIMIT}

[Loop]
type = "SandboxDecoder"
filename = "loop.lua"
instruction_limit = {LIMIT}

[Loop2]
type = "SandboxDecoder"
filename = "loop.lua"
instruction_limit = {LIMIT}

[out]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-terminated' || Type == 'plain'"
path = "out.hekad"
flush_interval = 20
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &ports);
    let out = dir.join("base").join("out.hekad");
    let time_to_termination = |port: u16, plugin: &str| -> (Duration, String) {
        let start = Instant::now();
        send_tcp(port, &line_of(600));
        assert!(
            wait_for(Duration::from_secs(60), || terminated_at(&out, plugin)
                .is_some()),
            "{plugin} was not terminated:\n{}",
            hekate.stderr()
        );
        (start.elapsed(), terminated_at(&out, plugin).unwrap())
    };
    let (loop_time, loop_reason) = time_to_termination(loop_port, "Loop");
    assert!(
        loop_reason.ends_with("instruction_limit exceeded"),
        "{loop_reason}"
    );
    let (patho_time, patho_reason) = time_to_termination(patho_port, "Patho");
    assert!(
        patho_reason.starts_with("process_message() ")
            && patho_reason.ends_with("patho.lua:4: instruction_limit exceeded"),
        "{patho_reason}"
    );
    // the loop again, so that a machine busy with something else during one run is seen
    let (loop2_time, _) = time_to_termination(loop2_port, "Loop2");
    let loop_time = loop_time.max(loop2_time);
    eprintln!(
        "terminated by the limit: the loop after {loop_time:?}, the pattern after {patho_time:?}"
    );
    assert!(
        patho_time <= loop_time * 2,
        "the pattern took {patho_time:?}, the loop under the same limit {loop_time:?}"
    );
    // hekate runs on: the third input's messages arrive
    send_tcp(
        plain_port,
        &framed((0..50).map(|s| message("plain", 1, s, 100))),
    );
    assert!(
        wait_for(Duration::from_secs(10), || count_of(&out, "plain") == 50),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    assert_eq!(terminations(&out).len(), 3, "{:?}", terminations(&out));
}

/// With no instruction limit, a decoder stuck in a match (hours of backtracking) holds its
/// shard's only core until SIGUSR2, which stops it within a second. Meanwhile the coordinator
/// does not spin: its thread uses almost no CPU while the shard is busy.
#[test]
fn sigusr2_stops_a_sandbox_stuck_in_a_match() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("lua-budget-sigusr2");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(&share, "patho.lua", PATHOLOGICAL_LUA);
    let core = hekate_engine::runtime::allowed_cores()[0];
    let (patho_port, plain_port) = (free_tcp_port(), free_tcp_port());
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
worker_cores = [{core}]
report_interval = 1

[patho_in]
type = "TcpInput"
address = "127.0.0.1:{patho_port}"
splitter = "TokenSplitter"
decoder = "Patho"

[plain_in]
type = "TcpInput"
address = "127.0.0.1:{plain_port}"

[Patho]
type = "SandboxDecoder"
filename = "patho.lua"
instruction_limit = 0

[out]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-terminated' || Type == 'plain'"
path = "out.hekad"
flush_interval = 20
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[patho_port, plain_port]);
    let out = dir.join("base").join("out.hekad");
    send_tcp(patho_port, &line_of(1000));
    // The decoder is stuck: its thread burns a core, and nothing else moves on that shard.
    std::thread::sleep(Duration::from_millis(500));
    let before = thread_ticks(hekate.pid());
    std::thread::sleep(Duration::from_secs(2));
    let after = thread_ticks(hekate.pid());
    assert!(terminations(&out).is_empty(), "{:?}", terminations(&out));
    let used: Vec<(String, u64)> = after
        .iter()
        .map(|(tid, name, t)| {
            let was = before.iter().find(|b| b.0 == *tid).map_or(0, |b| b.2);
            (name.clone(), t - was)
        })
        .collect();
    // SAFETY: sysconf only reads a system value.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    // the stuck shard (a tenth of the two seconds at least, on a loaded machine)
    assert!(
        used.iter().any(|(_, t)| *t >= ticks_per_s / 5),
        "no thread is busy: {used:?}"
    );
    // The coordinator (the main thread) waits on signals and its rings: a few ticks at most.
    // (`top -H` and `ps -L` show the whole process's CPU on the main thread's row; this reads
    // the thread's own counters.)
    let main = after.iter().find(|t| t.0 == hekate.pid()).unwrap();
    let main_used = main.2 - before.iter().find(|b| b.0 == main.0).map_or(0, |b| b.2);
    assert!(
        main_used <= ticks_per_s / 5,
        "the coordinator used {main_used} ticks in 2 s: {used:?}"
    );

    let signalled = Instant::now();
    hekate.signal(libc::SIGUSR2);
    assert!(
        wait_for(Duration::from_secs(1), || terminated_at(&out, "Patho")
            .is_some()),
        "not stopped within a second of SIGUSR2:\n{}",
        hekate.stderr()
    );
    let elapsed = signalled.elapsed();
    eprintln!("stopped {elapsed:?} after SIGUSR2; CPU ticks of 2 s while stuck: {used:?}");
    let reason = terminated_at(&out, "Patho").unwrap();
    assert!(
        reason.ends_with("patho.lua:4: aborted by SIGUSR2"),
        "{reason} (after {elapsed:?})"
    );
    // The shard is free again: the other input's messages arrive.
    send_tcp(
        plain_port,
        &framed((0..50).map(|s| message("plain", 1, s, 100))),
    );
    assert!(
        wait_for(Duration::from_secs(10), || count_of(&out, "plain") == 50),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

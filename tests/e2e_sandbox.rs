//! End to end through the real binary: Lua sandbox filters and decoders, a runaway sandbox,
//! dynamic filters loaded and unloaded with `hekate sbmgr` under live traffic, and preserved data
//! across a restart.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use hekate_model::framing::{SigningKey, encode_record};
use hekate_model::message::{Field, HmacHashFunction, Message};

const COUNTER_LUA: &str = r#"
count = 0
function process_message()
    count = count + 1
    return 0
end
function timer_event(ns)
    inject_payload("txt", "count", count)
end
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn field_str(m: &Message, name: &str) -> Option<String> {
    m.find_first_field(name)
        .and_then(|f| f.value_string.first().cloned())
}

/// The payloads of the `heka.sandbox-output` messages of `logger` in a Heka stream.
fn outputs_of(path: &Path, logger: &str) -> Vec<String> {
    read_stream(path)
        .into_iter()
        .filter(|m| {
            m.r#type.as_deref() == Some("heka.sandbox-output")
                && m.logger.as_deref() == Some(logger)
        })
        .filter_map(|m| m.payload)
        .collect()
}

/// A SandboxFilter counts what it matches and injects the count on every timer event; the
/// output reaches a FileOutput, and the report carries the sandbox's fields.
#[test]
fn sandbox_filter_counts_and_injects_on_timer_event() {
    let dir = temp_dir("sbx-filter");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(&share, "counter.lua", COUNTER_LUA);
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[Counter]
type = "SandboxFilter"
filename = "counter.lua"
message_matcher = "Type == 'count.me'"
ticker_interval = 1

[out]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-output' || Type == 'heka.all-report'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let mut msgs: Vec<Message> = (0..250).map(|s| message("count.me", 0, s, 20)).collect();
    msgs.extend((0..50).map(|s| message("other", 0, s, 20)));
    send_tcp(port, &framed(msgs));
    let path = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || outputs_of(&path, "Counter")
            .iter()
            .any(|p| p == "250")),
        "no count of 250 arrived: {:?}\n{}",
        outputs_of(&path, "Counter"),
        hekate.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(10), || last_report(&path).is_some_and(
            |r| report_value(&r, "filters", "Counter", "ProcessMessageCount") == Some(250)
        )),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let out = read_stream(&path);
    let first = out
        .iter()
        .find(|m| m.r#type.as_deref() == Some("heka.sandbox-output"))
        .unwrap();
    assert_eq!(field_str(first, "payload_type").as_deref(), Some("txt"));
    assert_eq!(field_str(first, "payload_name").as_deref(), Some("count"));
    let report = last_report(&path).unwrap();
    for key in [
        "Memory",
        "MaxMemory",
        "MaxInstructions",
        "MaxOutput",
        "ProcessMessageCount",
        "ProcessMessageFailures",
        "InjectMessageCount",
        "ProcessMessageSamples",
        "ProcessMessageAvgDuration",
        "TimerEventAvgDuration",
    ] {
        assert!(
            report_value(&report, "filters", "Counter", key).is_some(),
            "{key} missing from the report: {report}"
        );
    }
    assert!(report_value(&report, "filters", "Counter", "Memory").unwrap() > 0);
    assert!(report_value(&report, "filters", "Counter", "InjectMessageCount").unwrap() >= 1);
}

/// A SandboxDecoder on a TcpInput with a TokenSplitter parses each line (with LPeg) into
/// fields; a line it cannot parse is counted as a decode failure.
#[test]
fn sandbox_decoder_parses_lines_into_fields() {
    let dir = temp_dir("sbx-decoder");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "kv.lua",
        r#"
local lpeg = require "lpeg"
local l = lpeg
local key = l.C((l.R("az", "AZ", "09") + "_") ^ 1)
local value = l.C((1 - l.S(" \n")) ^ 0)
local pair = l.Cg(key * "=" * value)
local grammar = l.Cf(l.Ct("") * pair * (" " * pair) ^ 0, rawset) * l.P("\n") ^ -1 * -1
local msg_type = read_config("type")

function process_message()
    local fields = grammar:match(read_message("Payload"))
    if not fields then return -1, "not key=value pairs" end
    inject_message({Type = msg_type, Payload = "", Fields = fields})
    return 0
end
"#,
    );
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"

[lines]
type = "TcpInput"
address = "127.0.0.1:{port}"
splitter = "TokenSplitter"
decoder = "kv"

[kv]
type = "SandboxDecoder"
filename = "kv.lua"

[kv.config]
type = "kv.line"

[out]
type = "FileOutput"
message_matcher = "TRUE"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("seq={i} status=200 path=/a/{i}\n"));
        if i == 50 {
            text.push_str("this line is not key value pairs\n");
        }
    }
    send_tcp(port, text.as_bytes());
    let path = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || read_stream(&path).len() >= 100),
        "{}",
        hekate.stderr()
    );
    hekate.signal(libc::SIGUSR1);
    assert!(wait_for(Duration::from_secs(10), || hekate
        .stdout()
        .contains("DecodeFailureCount")));
    assert!(hekate.terminate().success());
    let out = read_stream(&path);
    assert_eq!(out.len(), 100, "the bad line must not arrive");
    let mut seqs = Vec::new();
    for m in &out {
        assert_eq!(m.r#type.as_deref(), Some("kv.line"));
        // Headers the decoder did not set come from the message built around the line.
        assert_eq!(m.logger.as_deref(), Some("lines"));
        assert_eq!(field_str(m, "status").as_deref(), Some("200"));
        let seq: u64 = field_str(m, "seq").unwrap().parse().unwrap();
        assert_eq!(field_str(m, "path"), Some(format!("/a/{seq}")));
        seqs.push(seq);
    }
    assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    let failures: u64 = hekate
        .stdout()
        .lines()
        .find_map(|l| l.trim().strip_prefix("DecodeFailureCount: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(failures, 1);
    // The decoder's own section of the text report (one sandbox per core, merged).
    let report = hekate.stdout();
    let decoders = report
        .split("====Decoders====")
        .nth(1)
        .and_then(|s| s.split("====").next())
        .unwrap();
    assert!(decoders.contains("kv:"), "{report}");
    assert!(
        decoders.contains("    ProcessMessageCount: 101\n"),
        "{report}"
    );
    assert!(decoders.contains("    Memory: "), "{report}");
    assert!(
        decoders.contains("    ProcessMessageAvgDuration: "),
        "{report}"
    );
    assert!(
        hekate
            .stderr()
            .contains("Failed parsing: not key=value pairs payload: this line is not"),
        "{}",
        hekate.stderr()
    );
}

/// A filter stuck in an endless loop is terminated by its instruction limit: a
/// `heka.sandbox-terminated` message is injected, it is taken out of routing, and a FileOutput
/// keeps receiving every message.
#[test]
fn runaway_filter_is_terminated_and_the_pipeline_carries_on() {
    let dir = temp_dir("sbx-runaway");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "runaway.lua",
        "function process_message() while true do end return 0 end",
    );
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[Runaway]
type = "SandboxFilter"
filename = "runaway.lua"
message_matcher = "Type == 'work'"

[all]
type = "FileOutput"
message_matcher = "Type == 'work'"
path = "all.hekad"
flush_interval = 50

[events]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-terminated' || Type == 'heka.all-report'"
path = "events.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    const TOTAL: u64 = 3000;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for chunk in 0..(TOTAL / 300) {
        s.write_all(&framed(
            (chunk * 300..(chunk + 1) * 300).map(|seq| message("work", 0, seq, 50)),
        ))
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    let base = dir.join("base");
    let all = base.join("all.hekad");
    let events = base.join("events.hekad");
    assert!(
        wait_for(Duration::from_secs(30), || read_stream(&all).len() as u64
            >= TOTAL),
        "got {} of {TOTAL}:\n{}",
        read_stream(&all).len(),
        hekate.stderr()
    );
    // Every message the filter was given is accounted for: none processed, all dropped.
    assert!(
        wait_for(Duration::from_secs(10), || last_report(&events)
            .is_some_and(|r| {
                let matched = report_value(&r, "filters", "Runaway", "MatchedCount");
                matched.is_some_and(|m| m > 0)
                    && matched == report_value(&r, "filters", "Runaway", "DroppedCount")
            })),
        "{:?}\n{}",
        last_report(&events).map(|r| r["filters"].clone()),
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let seqs: HashSet<u64> = read_stream(&all)
        .iter()
        .filter_map(conn_seq)
        .map(|c| c.1)
        .collect();
    assert_eq!(seqs.len() as u64, TOTAL);
    let terminated: Vec<Message> = read_stream(&events)
        .into_iter()
        .filter(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))
        .collect();
    assert_eq!(terminated.len(), 1, "{terminated:?}");
    let t = &terminated[0];
    assert_eq!(t.logger.as_deref(), Some("hekad"));
    assert_eq!(field_str(t, "plugin").as_deref(), Some("Runaway"));
    assert!(
        t.payload
            .as_deref()
            .unwrap()
            .ends_with("instruction_limit exceeded"),
        "{t:?}"
    );
    assert!(hekate.stderr().contains("Plugin 'Runaway' terminated"));
}

/// A SandboxFilter with `placement = "per_shard"` runs one sandbox per worker core: each
/// message is processed once, by the sandbox of the core that received it.
#[test]
fn per_shard_sandbox_filters_see_each_message_once() {
    let dir = temp_dir("sbx-per-shard");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "tag.lua",
        r#"
function process_message()
    inject_message({Type = "tagged", Payload = read_message("Payload"),
                    Fields = {seq = read_message("Fields[seq]")}})
    return 0
end
"#,
    );
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"

[TcpInput]
address = "127.0.0.1:{port}"

[Tagger]
type = "SandboxFilter"
filename = "tag.lua"
message_matcher = "Type == 'in'"
placement = "per_shard"

[out]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox.tagged'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    const CONNS: u64 = 4;
    const PER_CONN: u64 = 250;
    for conn in 0..CONNS {
        send_tcp(
            port,
            &framed((0..PER_CONN).map(|s| message("in", conn as u32, conn * PER_CONN + s, 10))),
        );
    }
    let path = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(20), || read_stream(&path).len() as u64
            >= CONNS * PER_CONN),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let mut seqs: Vec<u64> = read_stream(&path)
        .iter()
        .map(|m| m.find_first_field("seq").unwrap().value_double[0] as u64)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..CONNS * PER_CONN).collect::<Vec<_>>());
}

/// The pieces of a pipeline with a SandboxManagerFilter behind a signed TcpInput.
struct Managed {
    dir: std::path::PathBuf,
    port: u16,
    sbmgr_toml: std::path::PathBuf,
}

const SIGNER_KEY: &str = "a shared secret";

fn managed_config(dir: &Path, port: u16) -> Managed {
    let sbmgr_toml = dir.join("sbmgr.toml");
    write(
        dir,
        "sbmgr.toml",
        &format!(
            "ip_address = \"127.0.0.1:{port}\"\n\n[signer]\nname = \"ops\"\nhmac_hash = \"md5\"\nhmac_key = \"{SIGNER_KEY}\"\nversion = 0\n"
        ),
    );
    Managed {
        dir: dir.to_path_buf(),
        port,
        sbmgr_toml,
    }
}

impl Managed {
    fn config(&self) -> String {
        format!(
            r#"
[hekate]
base_dir = "{base}"
report_interval = 1

[TcpInput]
address = "127.0.0.1:{port}"

[TcpInput.signer.ops_0]
hmac_key = "{SIGNER_KEY}"

[SandboxManager]
type = "SandboxManagerFilter"
message_signer = "ops"
max_filters = 2

[all]
type = "FileOutput"
message_matcher = "Type == 'traffic'"
path = "all.hekad"
flush_interval = 50

[loaded]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-output' || Type == 'heka.sandbox-terminated' || Type == 'heka.all-report'"
path = "loaded.hekad"
flush_interval = 50
"#,
            base = self.dir.join("base").display(),
            port = self.port,
        )
    }

    fn sbmgr(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
            .arg("sbmgr")
            .arg("-c")
            .arg(&self.sbmgr_toml)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hekate sbmgr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn load(&self, name: &str, lua: &str, section: &str) {
        write(&self.dir, &format!("{name}.lua"), lua);
        write(&self.dir, &format!("{name}.toml"), section);
        let script = self.dir.join(format!("{name}.lua"));
        let config = self.dir.join(format!("{name}.toml"));
        self.sbmgr(&[
            "--action",
            "load",
            "--script",
            script.to_str().unwrap(),
            "--scriptconfig",
            config.to_str().unwrap(),
        ]);
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.join("base").join(file)
    }
}

/// A control message, signed with `key` (or not), stamped `skew` away from now.
fn control(key: Option<&SigningKey>, skew: Duration, name: &str) -> Vec<u8> {
    let mut m = Message::new_now();
    m.timestamp -= skew.as_nanos() as i64;
    m.r#type = Some("heka.control.sandbox".into());
    m.payload = Some(COUNTER_LUA.into());
    m.fields.push(Field::string(
        "config",
        format!("[{name}]\ntype = \"SandboxFilter\"\nmessage_matcher = \"TRUE\"\n"),
    ));
    m.fields.push(Field::string("action", "load"));
    let mut out = Vec::new();
    encode_record(&m.to_bytes(), key, &mut out).unwrap();
    out
}

/// Filters are loaded and unloaded with `hekate sbmgr` while traffic flows: the other outputs
/// lose nothing, the loaded filter's output appears, and unsigned or skewed control messages are
/// refused and counted.
#[test]
fn dynamic_filters_load_and_unload_under_live_traffic() {
    let dir = temp_dir("sbx-dynamic");
    let m = managed_config(&dir, free_tcp_port());
    let mut hekate = Hekate::start(&dir, &m.config(), &[m.port]);

    // Traffic on two connections for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..2u32)
        .map(|conn| {
            let (stop, sent, port) = (stop.clone(), sent.clone(), m.port);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut seq = 0u64;
                while !stop.load(Ordering::Acquire) {
                    s.write_all(&framed(
                        (seq..seq + 100).map(|q| message("traffic", conn, q, 60)),
                    ))
                    .unwrap();
                    seq += 100;
                    sent.fetch_add(100, Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(5));
                }
                seq
            })
        })
        .collect();
    assert!(wait_for(Duration::from_secs(10), || sent
        .load(Ordering::Acquire)
        >= 2000));

    let loaded = m.path("loaded.hekad");
    m.load(
        "counter",
        COUNTER_LUA,
        "[Counter]\ntype = \"SandboxFilter\"\nmessage_matcher = \"Type == 'traffic'\"\nticker_interval = 1\n",
    );
    assert!(
        wait_for(Duration::from_secs(20), || outputs_of(
            &loaded,
            "SandboxManager-Counter"
        )
        .iter()
        .any(|p| p.parse::<u64>().is_ok_and(|n| n > 0))),
        "the loaded filter's output did not appear:\n{}",
        hekate.stderr()
    );
    let wd = m.path("sbxmgrs");
    assert!(wd.join("SandboxManager-Counter.toml").exists());
    assert!(wd.join("SandboxManager-Counter.lua").exists());

    // A control message that is not signed never reaches the manager; one too far in the past
    // is discarded by it. Neither loads anything.
    send_tcp(m.port, &control(None, Duration::ZERO, "Unsigned"));
    let key = SigningKey::new("ops", 0, HmacHashFunction::Md5, SIGNER_KEY.as_bytes());
    send_tcp(
        m.port,
        &control(Some(&key), Duration::from_secs(60), "Skewed"),
    );
    assert!(
        wait_for(Duration::from_secs(15), || last_report(&loaded)
            .is_some_and(|r| {
                report_value(&r, "filters", "SandboxManager", "RejectedCount") == Some(1)
                    && report_value(&r, "filters", "SandboxManager", "DiscardedCount") == Some(1)
                    && report_value(&r, "filters", "SandboxManager", "RunningFilters") == Some(1)
            })),
        "{:?}\n{}",
        last_report(&loaded).map(|r| r["filters"].clone()),
        hekate.stderr()
    );
    assert!(
        hekate.stderr().contains("seconds skew"),
        "{}",
        hekate.stderr()
    );

    m.sbmgr(&["--action", "unload", "--filtername", "Counter"]);
    assert!(
        wait_for(Duration::from_secs(15), || hekate
            .stderr()
            .contains("Filter 'SandboxManager-Counter' removed")),
        "{}",
        hekate.stderr()
    );
    assert!(!wd.join("SandboxManager-Counter.toml").exists());
    let outputs_after_unload = outputs_of(&loaded, "SandboxManager-Counter").len();

    // Load again under the same name: it starts afresh.
    m.load(
        "counter",
        COUNTER_LUA,
        "[Counter]\ntype = \"SandboxFilter\"\nmessage_matcher = \"Type == 'traffic'\"\nticker_interval = 1\n",
    );
    assert!(
        wait_for(Duration::from_secs(20), || outputs_of(
            &loaded,
            "SandboxManager-Counter"
        )
        .len()
            > outputs_after_unload + 1),
        "{}",
        hekate.stderr()
    );

    stop.store(true, Ordering::Release);
    let per_conn: Vec<u64> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total: u64 = per_conn.iter().sum();
    let all = m.path("all.hekad");
    assert!(
        wait_for(Duration::from_secs(30), || read_stream(&all).len() as u64
            >= total),
        "got {} of {total}:\n{}",
        read_stream(&all).len(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    // Nothing lost, nothing twice, in order per connection.
    let mut next = [0u64; 2];
    for msg in read_stream(&all) {
        let (conn, seq) = conn_seq(&msg).unwrap();
        assert_eq!(seq, next[conn as usize], "connection {conn}");
        next[conn as usize] += 1;
    }
    assert_eq!(next.to_vec(), per_conn);
    // The filter loaded last was running at shutdown; its files stay for the next start.
    assert!(wd.join("SandboxManager-Counter.toml").exists());
    let stderr = hekate.stderr();
    assert!(!stderr.contains("Unsigned"), "{stderr}");
    assert!(
        !stderr.contains("Loaded filter 'SandboxManager-Skewed'"),
        "{stderr}"
    );
}

/// A load that cannot work (a Lua syntax error) is refused with a `heka.sandbox-terminated`
/// message naming the manager, and leaves no files behind.
#[test]
fn a_broken_dynamic_filter_is_refused() {
    let dir = temp_dir("sbx-broken");
    let m = managed_config(&dir, free_tcp_port());
    let mut hekate = Hekate::start(&dir, &m.config(), &[m.port]);
    m.load(
        "broken",
        "function process_message( return 0 end",
        "[Broken]\ntype = \"SandboxFilter\"\nmessage_matcher = \"TRUE\"\n",
    );
    let loaded = m.path("loaded.hekad");
    assert!(
        wait_for(Duration::from_secs(15), || read_stream(&loaded)
            .iter()
            .any(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let t = read_stream(&loaded)
        .into_iter()
        .find(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))
        .unwrap();
    assert_eq!(field_str(&t, "plugin").as_deref(), Some("SandboxManager"));
    assert!(
        t.payload.as_deref().unwrap().contains("cannot be loaded"),
        "{t:?}"
    );
    let wd = m.path("sbxmgrs");
    assert!(!wd.join("SandboxManager-Broken.toml").exists());
    assert!(!wd.join("SandboxManager-Broken.lua").exists());
}

/// `preserve_data`: a filter's global data survives a restart, for a configured filter and for
/// one the manager loaded (which the manager loads again at start).
#[test]
fn preserved_data_and_dynamic_filters_survive_a_restart() {
    let dir = temp_dir("sbx-preserve");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(&share, "counter.lua", COUNTER_LUA);
    let m = managed_config(&dir, free_tcp_port());
    let config = format!(
        "{}\n[Counter]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\nmessage_matcher = \"Type == 'traffic'\"\nticker_interval = 1\npreserve_data = true\n",
        m.config(),
        share.join("counter.lua").display()
    );
    let loaded = m.path("loaded.hekad");
    let latest = |logger: &str| -> Option<u64> {
        outputs_of(&loaded, logger)
            .last()
            .and_then(|p| p.parse().ok())
    };

    let mut hekate = Hekate::start(&dir, &config, &[m.port]);
    m.load(
        "dyn",
        COUNTER_LUA,
        "[Dyn]\ntype = \"SandboxFilter\"\nmessage_matcher = \"Type == 'traffic'\"\nticker_interval = 1\npreserve_data = true\n",
    );
    assert!(
        wait_for(Duration::from_secs(15), || latest("SandboxManager-Dyn")
            .is_some()),
        "{}",
        hekate.stderr()
    );
    send_tcp(
        m.port,
        &framed((0..5).map(|s| message("traffic", 0, s, 10))),
    );
    assert!(
        wait_for(Duration::from_secs(15), || latest("Counter") == Some(5)
            && latest("SandboxManager-Dyn") == Some(5)),
        "{:?} {:?}\n{}",
        latest("Counter"),
        latest("SandboxManager-Dyn"),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let data = m.path("sandbox_preservation");
    assert!(data.join("Counter.data").exists());
    assert!(data.join("SandboxManager_Dyn.data").exists());

    let first_run = read_stream(&loaded).len();
    let mut hekate = Hekate::start(&dir, &config, &[m.port]);
    // The manager loads its filter again as soon as the pipeline runs.
    assert!(
        wait_for(Duration::from_secs(15), || hekate
            .stderr()
            .contains("Loaded filter 'SandboxManager-Dyn'")),
        "{}",
        hekate.stderr()
    );
    send_tcp(
        m.port,
        &framed((5..8).map(|s| message("traffic", 0, s, 10))),
    );
    let fresh = |logger: &str| -> Option<u64> {
        read_stream(&loaded)
            .into_iter()
            .skip(first_run)
            .filter(|m| {
                m.r#type.as_deref() == Some("heka.sandbox-output")
                    && m.logger.as_deref() == Some(logger)
            })
            .filter_map(|m| m.payload?.parse().ok())
            .next_back()
    };
    assert!(
        wait_for(Duration::from_secs(15), || fresh("Counter") == Some(8)
            && fresh("SandboxManager-Dyn") == Some(8)),
        "{:?} {:?}\n{}",
        fresh("Counter"),
        fresh("SandboxManager-Dyn"),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    assert!(
        hekate.stderr().contains("loading SandboxManager-Dyn again"),
        "{}",
        hekate.stderr()
    );
}

/// The Lua scripts of the `sandbox` bench workload (bench/configs/lua) do what the workload
/// expects: the nginx decoder turns access lines into fields, the counting filter fills its
/// circular buffer and injects it as a `cbuf` payload.
#[test]
fn bench_sandbox_scripts_work() {
    let dir = temp_dir("sbx-bench");
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/configs/lua");
    let (lines, heka) = (free_tcp_port(), free_tcp_port());
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{lua}"

[lines]
type = "TcpInput"
address = "127.0.0.1:{lines}"
splitter = "TokenSplitter"
decoder = "nginx"

[nginx]
type = "SandboxDecoder"
filename = "nginx_access.lua"

[nginx.config]
type = "nginx.access"

[heka]
type = "TcpInput"
address = "127.0.0.1:{heka}"

[counter]
type = "SandboxFilter"
filename = "count_by_type.lua"
message_matcher = "Logger == 'e2e'"
ticker_interval = 1

[out]
type = "FileOutput"
message_matcher = "Type == 'nginx.access' || Type == 'heka.sandbox-output'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        lua = lua.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[lines, heka]);
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "10.0.0.{i} - - [24/Nov/2026:21:33:12 +0100] \"GET /seq/{i} HTTP/1.1\" 200 {} \"-\" \"curl/8.0\" 0.042 lorem ipsum\n",
            100 + i
        ));
    }
    text.push_str("not an access line\n");
    send_tcp(lines, text.as_bytes());
    let mut msgs: Vec<Message> = (0..30).map(|s| message("nginx.access", 0, s, 10)).collect();
    msgs.extend((30..40).map(|s| message("app.log", 0, s, 10)));
    msgs.extend((40..45).map(|s| message("something", 0, s, 10)));
    send_tcp(heka, &framed(msgs));
    let path = dir.join("base").join("out.hekad");
    let cbuf_sums = |payload: &str| -> Vec<f64> {
        let mut sums = vec![0.0; 5];
        for row in payload.lines().skip(1) {
            for (i, v) in row.split('\t').enumerate() {
                if let Ok(v) = v.parse::<f64>()
                    && !v.is_nan()
                {
                    sums[i] += v;
                }
            }
        }
        sums
    };
    assert!(
        wait_for(Duration::from_secs(20), || {
            let decoded = read_stream(&path)
                .iter()
                .filter(|m| {
                    m.r#type.as_deref() == Some("nginx.access")
                        && m.logger.as_deref() == Some("lines")
                })
                .count();
            let counted = outputs_of(&path, "counter")
                .last()
                .is_some_and(|p| cbuf_sums(p) == [30.0, 10.0, 0.0, 0.0, 5.0]);
            decoded == 20 && counted
        }),
        "{:?}\n{}",
        outputs_of(&path, "counter").last().map(|p| cbuf_sums(p)),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let out = read_stream(&path);
    let first = out
        .iter()
        .find(|m| m.logger.as_deref() == Some("lines"))
        .unwrap();
    assert_eq!(field_str(first, "path").as_deref(), Some("/seq/0"));
    assert_eq!(field_str(first, "method").as_deref(), Some("GET"));
    assert_eq!(
        field_str(first, "http_user_agent").as_deref(),
        Some("curl/8.0")
    );
    let num = |name: &str| first.find_first_field(name).unwrap().value_double[0];
    assert_eq!(num("status"), 200.0);
    assert_eq!(num("request_time"), 0.042);
    // 21:33:12 at +01:00 is 20:33:12 UTC.
    assert_eq!(first.timestamp, 1_795_552_392_000_000_000);
    let cbuf = outputs_of(&path, "counter").pop().unwrap();
    let header: serde_json::Value = serde_json::from_str(cbuf.lines().next().unwrap()).unwrap();
    assert_eq!(header["columns"], 5);
    assert_eq!(header["column_info"][0]["name"], "nginx");
}

/// A SandboxInput runs every ticker interval and its messages are routed; a SandboxOutput writes
/// what it matches with Lua's `io`.
#[test]
fn sandbox_input_and_output_run() {
    let dir = temp_dir("sbx-io");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "ticks.lua",
        r#"
runs = 0
function process_message()
    runs = runs + 1
    inject_message({Type = "tick", Payload = tostring(runs)})
    return 0
end
"#,
    );
    write(
        &share,
        "lines.lua",
        r#"
local path = read_config("path")
function process_message()
    local f = assert(io.open(path, "a"))
    f:write(read_message("Type"), " ", read_message("Payload"), "\n")
    f:close()
    return 0
end
"#,
    );
    // status 0 and nothing injected: the message itself, protobuf-encoded
    write(
        &share,
        "passthrough.lua",
        "function process_message() return 0 end\n",
    );
    let probe = free_tcp_port();
    let lines = dir.join("lines.txt");
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
report_interval = 1

[Passthrough]
type = "SandboxEncoder"
filename = "passthrough.lua"

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report' || Type == 'tick'"
path = "reports.hekad"
encoder = "Passthrough"
use_framing = true
flush_interval = 50

[probe]
type = "TcpInput"
address = "127.0.0.1:{probe}"

[Ticks]
type = "SandboxInput"
filename = "ticks.lua"
ticker_interval = 1

[Lines]
type = "SandboxOutput"
filename = "lines.lua"
message_matcher = "Type == 'tick'"

[Lines.config]
path = "{lines}"
"#,
        base = dir.join("base").display(),
        share = share.display(),
        lines = lines.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[probe]);
    assert!(
        wait_for(Duration::from_secs(15), || std::fs::read_to_string(&lines)
            .is_ok_and(|t| t.lines().count() >= 2)),
        "{}",
        hekate.stderr()
    );
    // The input's and the encoder's sandbox fields reach the report: the input's entry counts
    // its runs and injections, the output's entry the messages its encoder sandbox encoded.
    let reports = dir.join("base").join("reports.hekad");
    let ticked = |r: &serde_json::Value| {
        report_value(r, "inputs", "Ticks", "ProcessMessageCount").is_some_and(|n| n >= 2)
            && report_value(r, "inputs", "Ticks", "InjectMessageCount").is_some_and(|n| n >= 2)
            && report_value(r, "outputs", "reports", "ProcessMessageCount").is_some_and(|n| n >= 2)
            // the encoder's own fields, which only the encoder sandbox reports
            && report_value(r, "outputs", "reports", "MaxMemory").is_some()
    };
    assert!(
        wait_for(Duration::from_secs(15), || last_report(&reports)
            .is_some_and(|r| ticked(&r))),
        "{:?}\n{}",
        last_report(&reports),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
    let text = std::fs::read_to_string(&lines).unwrap();
    assert!(text.starts_with("tick 1\ntick 2\n"), "{text}");
    let report = last_report(&reports).unwrap();
    for (category, name) in [("inputs", "Ticks"), ("outputs", "reports")] {
        for key in ["Memory", "MaxMemory", "ProcessMessageAvgDuration"] {
            assert!(
                report_value(&report, category, name, key).is_some(),
                "{key} missing from [{name}]: {report}"
            );
        }
        assert!(report_value(&report, category, name, "Memory").unwrap() > 0);
    }
    let encoded: Vec<_> = read_stream(&reports)
        .into_iter()
        .filter(|m| m.r#type.as_deref() == Some("tick"))
        .filter_map(|m| m.payload)
        .collect();
    assert!(
        encoded.starts_with(&["1".to_owned(), "2".to_owned()]),
        "{encoded:?}"
    );
}

/// A SandboxOutput that fails terminates; with `can_exit = false` (the default for outputs, as
/// in Heka) hekate announces it and shuts down in order.
#[test]
fn a_terminated_output_that_may_not_exit_stops_hekate() {
    let dir = temp_dir("sbx-output-exit");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "fail.lua",
        "function process_message() error('disk on fire') end",
    );
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"

[TcpInput]
address = "127.0.0.1:{port}"

[Failing]
type = "SandboxOutput"
filename = "fail.lua"
message_matcher = "Type == 'x'"

[events]
type = "FileOutput"
message_matcher = "Type == 'heka.sandbox-terminated' || Type == 'x'"
path = "events.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..3).map(|s| message("x", 0, s, 10))));
    let status = hekate.wait(Duration::from_secs(20));
    // Stopped on its own, not by a signal: a supervisor sees a failure.
    assert_eq!(status.code(), Some(1), "{status}\n{}", hekate.stderr());
    assert!(
        hekate
            .stderr()
            .contains("hekate: stopped on its own: plugin 'Failing'"),
        "{}",
        hekate.stderr()
    );
    let events = read_stream(&dir.join("base").join("events.hekad"));
    assert_eq!(
        events
            .iter()
            .filter(|m| m.r#type.as_deref() == Some("x"))
            .count(),
        3
    );
    let t = events
        .iter()
        .find(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))
        .unwrap_or_else(|| panic!("no termination message:\n{}", hekate.stderr()));
    assert_eq!(field_str(t, "plugin").as_deref(), Some("Failing"));
    assert!(t.payload.as_deref().unwrap().contains("disk on fire"));
    assert!(
        hekate.stderr().contains("may not exit (can_exit = false)"),
        "{}",
        hekate.stderr()
    );
}

/// SIGUSR2 aborts every Lua sandbox, as hekad does: a SandboxInput stuck in an endless loop
/// (inputs have no instruction limit; it holds its worker core) is stopped, and an idle
/// SandboxFilter terminates at its next timer event. Each announces itself with a
/// `heka.sandbox-terminated` message saying why, and the rest of the pipeline carries on.
#[test]
fn sigusr2_aborts_every_sandbox_and_the_pipeline_carries_on() {
    let dir = temp_dir("sbx-sigusr2");
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    write(
        &share,
        "spin.lua",
        "function process_message() local n = 0 while true do n = n + 1 end end",
    );
    write(
        &share,
        "idle.lua",
        "function process_message() return 0 end\nfunction timer_event(ns) end",
    );
    let core = hekate_engine::runtime::allowed_cores()[0];
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
worker_cores = [{core}]
coordinator_core = {core}

[TcpInput]
address = "127.0.0.1:{port}"

[Spin]
type = "SandboxInput"
filename = "spin.lua"
can_exit = true

[Idle]
type = "SandboxFilter"
filename = "idle.lua"
message_matcher = "Type == 'nothing'"
ticker_interval = 1

[out]
type = "FileOutput"
message_matcher = "Type == 'load' || Type == 'heka.sandbox-terminated'"
path = "out.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        share = share.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    std::thread::sleep(Duration::from_millis(300));
    hekate.signal(libc::SIGUSR2);
    let path = dir.join("base").join("out.hekad");
    let terminated = |path: &Path| -> Vec<(String, String)> {
        read_stream(path)
            .into_iter()
            .filter(|m| m.r#type.as_deref() == Some("heka.sandbox-terminated"))
            .map(|m| {
                (
                    field_str(&m, "plugin").unwrap_or_default(),
                    m.payload.unwrap_or_default(),
                )
            })
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(15), || terminated(&path).len() == 2),
        "{:?}\n{}",
        terminated(&path),
        hekate.stderr()
    );
    let mut t = terminated(&path);
    t.sort();
    assert_eq!(t[0].0, "Idle");
    assert_eq!(t[0].1, "timer_event() aborted by SIGUSR2");
    assert_eq!(t[1].0, "Spin");
    assert!(t[1].1.ends_with("spin.lua:1: aborted by SIGUSR2"), "{t:?}");
    // The core the input held is free again: TCP traffic flows to the output.
    send_tcp(port, &framed((0..100).map(|s| message("load", 1, s, 100))));
    assert!(
        wait_for(Duration::from_secs(10), || read_stream(&path)
            .iter()
            .filter(|m| m.r#type.as_deref() == Some("load"))
            .count()
            == 100),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.stderr().contains("SIGUSR2 received"));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

//! Reload without restart (SIGHUP, `hekate reload`), through the real binary: a changed
//! configuration applied under load without losing or repeating a message, a configuration that
//! does not build or needs a restart refused while the pipeline goes on, an input moved to
//! another address.

mod common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A TCP server for TcpOutput that keeps every byte and the time of every read.
struct TimedSink {
    port: u16,
    bytes: Arc<Mutex<Vec<u8>>>,
    reads: Arc<Mutex<Vec<Instant>>>,
}

impl TimedSink {
    fn start() -> TimedSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (Arc::clone(&bytes), Arc::clone(&reads));
        std::thread::spawn(move || {
            // One connection at a time: TcpOutput keeps one.
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            r.lock().unwrap().push(Instant::now());
                            b.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
        });
        TimedSink { port, bytes, reads }
    }

    fn seqs(&self) -> Vec<u64> {
        seqs_of(&parse_stream(&self.bytes.lock().unwrap()))
    }

    /// The longest time between two reads within `[from, to]`.
    fn longest_gap(&self, from: Instant, to: Instant) -> (Duration, Instant) {
        let reads = self.reads.lock().unwrap();
        let mut worst = (Duration::ZERO, from);
        for w in reads.windows(2) {
            if w[0] >= from && w[1] <= to && w[1] - w[0] > worst.0 {
                worst = (w[1] - w[0], w[0]);
            }
        }
        worst
    }
}

fn seqs_of(msgs: &[hekate_model::message::Message]) -> Vec<u64> {
    msgs.iter().filter_map(conn_seq).map(|(_, s)| s).collect()
}

fn file_seqs(path: &Path) -> Vec<u64> {
    seqs_of(&read_stream(path))
}

/// Sends messages `odd`/`even` by their sequence number at `rate` a second on one connection
/// until `stop`; returns how many it sent.
fn paced_sender(
    port: u16,
    rate: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A pipeline that stopped reading fails the test instead of hanging it.
        conn.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let started = Instant::now();
        let mut seq = 0u64;
        const CHUNK: u64 = 250;
        while !stop.load(Ordering::Acquire) {
            let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let bytes = framed((seq..seq + CHUNK).map(|s| {
                let ty = if s % 2 == 0 { "even" } else { "odd" };
                message(ty, 0, s, 60)
            }));
            conn.write_all(&bytes).unwrap();
            seq += CHUNK;
            sent.store(seq, Ordering::Release);
        }
        conn.flush().unwrap();
        seq
    })
}

/// A Lua filter injecting a copy of each message it takes, with its sequence number.
const TAG_LUA: &str = r#"
function process_message()
    inject_message({Type = "tagged", Payload = "",
                    Fields = {conn = read_message("Fields[conn]"), seq = read_message("Fields[seq]")}})
    return 0
end
"#;

fn base_config(dir: &Path, port: u16) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"
"#,
        base = dir.join("base").display(),
    )
}

fn file_output(name: &str, matcher: &str) -> String {
    format!(
        r#"
[{name}]
type = "FileOutput"
message_matcher = "{matcher}"
path = "{name}.hekad"
flush_interval = 0
"#
    )
}

fn reload(hekate: &Hekate, config: &str) {
    std::fs::write(hekate.dir.join("hekate.toml"), config).unwrap();
    hekate.signal(libc::SIGHUP);
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Under a steady 50k msg/s, a reload adds a FileOutput, changes an output's matcher (same file)
/// and a Lua filter's, and removes an output: the input never stops, nothing is lost, nothing comes
/// twice, and each output has exactly what its matchers took before and after the switch.
#[test]
fn a_reload_under_load_loses_nothing() {
    let dir = temp_dir("reload-load");
    let port = free_tcp_port();
    let sink = TimedSink::start();
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("tag.lua"), TAG_LUA).unwrap();
    let tagger = |matcher: &str| {
        format!(
            r#"
[Tagger]
type = "SandboxFilter"
filename = "{}"
message_matcher = "{matcher}"

{}"#,
            share.join("tag.lua").display(),
            file_output("tagged", "Type == 'heka.sandbox.tagged'"),
        )
    };
    let timing = format!(
        r#"
[timing]
type = "TcpOutput"
message_matcher = "Type == 'odd' || Type == 'even'"
use_buffering = false
address = "127.0.0.1:{}"
"#,
        sink.port
    );
    let before = format!(
        "{}{timing}{}{}{}",
        base_config(&dir, port),
        file_output("swapped", "Type == 'odd'"),
        file_output("removed", "Type == 'even'"),
        tagger("Type == 'odd'"),
    );
    let after = format!(
        "{}{timing}{}{}{}",
        base_config(&dir, port),
        file_output("swapped", "Type == 'even'"),
        file_output("added", "Type == 'odd' || Type == 'even'"),
        tagger("Type == 'even'"),
    );
    let mut hekate = Hekate::start(&dir, &before, &[port]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    const RATE: u64 = 50_000;
    let sender = paced_sender(port, RATE, Arc::clone(&stop), Arc::clone(&sent));

    std::thread::sleep(Duration::from_secs(2));
    let reloaded_at = Instant::now();
    reload(&hekate, &after);
    assert!(
        wait_for(Duration::from_secs(20), || {
            let log = hekate.stderr();
            log.contains("Reload applied")
                && log.contains("Reload: 'swapped' started")
                && log.contains("Reload: 'Tagger' started")
        }),
        "{}",
        hekate.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Release);
    let total = sender.join().unwrap();
    let send_end = Instant::now();
    assert!(
        wait_for(Duration::from_secs(30), || sink.seqs().len() as u64
            >= total),
        "the unchanged output got {} of {total}",
        sink.seqs().len()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let log = hekate.stderr();
    assert!(
        !log.contains("input 'TcpInput' st"),
        "the unchanged input is untouched: {log}"
    );
    assert!(
        log.contains("added added; removed removed; changed Tagger, swapped;"),
        "{log}"
    );

    // The unchanged output: every message once, in order, and the longest silence.
    let all: Vec<u64> = (0..total).collect();
    assert_eq!(sink.seqs(), all, "the unchanged output");
    let (around_reload, at) = sink.longest_gap(reloaded_at - Duration::from_millis(500), send_end);
    let (steady, _) = sink.longest_gap(
        reloaded_at - Duration::from_millis(1500),
        reloaded_at - Duration::from_millis(500),
    );
    eprintln!(
        "reload under {RATE} msg/s: {total} messages, none lost; longest gap between arrivals at the unchanged output {:.1} ms ({:.0} ms after the SIGHUP), vs {:.1} ms in the second before",
        around_reload.as_secs_f64() * 1e3,
        at.saturating_duration_since(reloaded_at).as_secs_f64() * 1e3,
        steady.as_secs_f64() * 1e3,
    );

    // Loose, for a loaded machine: a reload that stopped the inputs would show seconds.
    assert!(
        around_reload < Duration::from_secs(1),
        "the unchanged output stalled {around_reload:?}"
    );

    let base = dir.join("base");
    // Removed: the even messages up to the switch, none missing, none after.
    let removed = file_seqs(&base.join("removed.hekad"));
    let cut_removed = removed.last().map_or(0, |s| s + 1);
    let want: Vec<u64> = (0..cut_removed).filter(|s| s % 2 == 0).collect();
    assert_eq!(removed, want, "the removed output");
    assert!(
        cut_removed > 0 && cut_removed < total,
        "{cut_removed} of {total}"
    );

    // Added: everything from its start, none missing.
    let added = file_seqs(&base.join("added.hekad"));
    let first = *added.first().expect("the added output got messages");
    assert_eq!(
        added,
        (first..total).collect::<Vec<_>>(),
        "the added output"
    );

    // Changed matcher, same file: odd before the switch, even after, each exactly once, the
    // old instance's part first.
    let swapped = file_seqs(&base.join("swapped.hekad"));
    let unique: BTreeSet<u64> = swapped.iter().copied().collect();
    assert_eq!(unique.len(), swapped.len(), "no message twice");
    let cut = swapped
        .iter()
        .copied()
        .find(|s| s % 2 == 0)
        .expect("the changed output got messages after the switch");
    let want: BTreeSet<u64> = (0..total)
        .filter(|s| (s % 2 == 1 && *s < cut) || (s % 2 == 0 && *s >= cut))
        .collect();
    assert_eq!(unique, want, "the changed output (switch at {cut})");
    // The filter whose matcher changed: what it injected, the same way (its instances may
    // interleave their injections across cores, so only the set is checked).
    // Lua numbers: the injected fields are doubles.
    let tagged: Vec<u64> = read_stream(&base.join("tagged.hekad"))
        .iter()
        .filter_map(|m| {
            let f = m.fields.iter().find(|f| f.name == "seq")?;
            f.value_double.first().map(|d| *d as u64)
        })
        .collect();
    let unique: BTreeSet<u64> = tagged.iter().copied().collect();
    assert_eq!(
        unique.len(),
        tagged.len(),
        "the filter took no message twice"
    );
    let cut = unique
        .iter()
        .copied()
        .find(|s| s % 2 == 0)
        .expect("the new filter took some");
    let want: BTreeSet<u64> = (0..total)
        .filter(|s| (s % 2 == 1 && *s < cut) || (s % 2 == 0 && *s >= cut))
        .collect();
    assert_eq!(unique, want, "the changed filter (switch at {cut})");

    let old_part = swapped.iter().take_while(|s| *s % 2 == 1).count();
    assert!(
        swapped[old_part..].iter().all(|s| s % 2 == 0),
        "the new instance writes after the old one closed"
    );
}

/// A configuration that does not build is refused; the pipeline goes on with the old one. A
/// change of the [hekate] section is refused too, naming the option and the restart it needs.
#[test]
fn a_config_that_does_not_build_or_needs_a_restart_is_refused() {
    let dir = temp_dir("reload-refused");
    let port = free_tcp_port();
    let config = format!("{}{}", base_config(&dir, port), file_output("out", "TRUE"));
    let hekate = Hekate::start(&dir, &config, &[port]);
    let out = dir.join("base/out.hekad");
    send_tcp(port, &framed((0..10).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 10));

    // A typo in a plugin type.
    let typo = format!(
        "{config}\n[extra]\ntype = \"FileOutptu\"\nmessage_matcher = \"TRUE\"\npath = \"x\"\n"
    );
    reload(&hekate, &typo);
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stderr()
            .contains("Reload refused: the configuration does not build")),
        "{}",
        hekate.stderr()
    );
    assert!(
        hekate.stderr().contains("FileOutptu"),
        "{}",
        hekate.stderr()
    );
    send_tcp(port, &framed((10..20).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 20));

    // A global change.
    let global = config.replace("[hekate]\n", "[hekate]\nring_capacity = 8\n");
    reload(&hekate, &global);
    assert!(
        wait_for(Duration::from_secs(10), || hekate.stderr().contains(
            "Reload refused: the [hekate] section changed (ring_capacity), which needs a restart"
        )),
        "{}",
        hekate.stderr()
    );
    send_tcp(port, &framed((20..30).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 30));
    assert_eq!(file_seqs(&out), (0..30).collect::<Vec<_>>());
    assert!(
        !hekate.stderr().contains("Reload applied"),
        "{}",
        hekate.stderr()
    );
}

/// An input moved to another port: the old one stops accepting, the new one accepts; what was
/// sent to either arrives. `hekate reload --pid-file` sends the signal.
#[test]
fn an_input_moved_to_another_address_follows_the_reload() {
    let dir = temp_dir("reload-input");
    let (old_port, new_port) = (free_tcp_port(), free_tcp_port());
    let pid_file = dir.join("hekate.pid");
    let text = |port: u16| {
        format!(
            r#"
[hekate]
base_dir = "{base}"
pid_file = "{pid}"

[TcpInput]
address = "127.0.0.1:{port}"
{out}"#,
            base = dir.join("base").display(),
            pid = pid_file.display(),
            out = file_output("out", "TRUE"),
        )
    };
    let hekate = Hekate::start(&dir, &text(old_port), &[old_port]);
    let out = dir.join("base/out.hekad");
    send_tcp(old_port, &framed((0..10).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 10));

    std::fs::write(dir.join("hekate.toml"), text(new_port)).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["reload", "--pid-file"])
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stderr()
            .contains("Reload applied")),
        "{}",
        hekate.stderr()
    );
    assert!(
        hekate.stderr().contains("changed TcpInput"),
        "{}",
        hekate.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            old_port
        ))
        .is_err()),
        "the old address still accepts"
    );
    send_tcp(
        new_port,
        &framed((10..20).map(|i| message("log", 0, i, 50))),
    );
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 20));
    assert_eq!(file_seqs(&out), (0..20).collect::<Vec<_>>());
    assert_eq!(count(&hekate.stderr(), "Reload applied"), 1);
}

/// A buffered output taken out by a reload while its upstream is down keeps its backlog in its
/// disk queue; put back by a later reload, it delivers every message once the upstream is up.
#[test]
fn a_removed_buffered_output_keeps_its_queue_for_its_return() {
    let dir = temp_dir("reload-buffered");
    let (port, up) = (free_tcp_port(), free_tcp_port());
    let upstream = format!(
        r#"
[upstream]
type = "TcpOutput"
message_matcher = "Type == 'log'"
address = "127.0.0.1:{up}"

[upstream.retries]
delay = "100ms"
max_delay = "300ms"
max_jitter = "10ms"
"#
    );
    let without = format!("{}{}", base_config(&dir, port), file_output("file", "TRUE"));
    let with_upstream = format!("{without}{upstream}");
    let mut hekate = Hekate::start(&dir, &with_upstream, &[port]);
    const MESSAGES: u64 = 200;
    send_tcp(
        port,
        &framed((0..MESSAGES).map(|i| message("log", 0, i, 50))),
    );
    let file = dir.join("base/file.hekad");
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&file).len()
        as u64
        == MESSAGES));

    reload(&hekate, &without);
    assert!(
        wait_for(Duration::from_secs(15), || hekate
            .stderr()
            .contains("Reload: output 'upstream' finished and closed")),
        "{}",
        hekate.stderr()
    );
    let qdir = dir.join("base/output_queue/upstream");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["queue", "check"])
        .arg(&qdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{MESSAGES} pending")), "{text}");

    let sink = Sink::start_on(up, false);
    reload(&hekate, &with_upstream);
    assert!(
        wait_for(Duration::from_secs(15), || count(
            &hekate.stderr(),
            "Reload applied"
        ) == 2),
        "{}",
        hekate.stderr()
    );
    // Delivered from the queue (the sink keeps what a connection sent once it closes).
    std::thread::sleep(Duration::from_secs(1));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let received = || seqs_of(&parse_stream(&sink.received.lock().unwrap()));
    assert!(wait_for(Duration::from_secs(5), || received().len() as u64
        >= MESSAGES));
    assert_eq!(received(), (0..MESSAGES).collect::<Vec<_>>());
}

/// `hekate reload` names what it cannot signal: a pid file no hekate holds, a config without
/// `pid_file`.
#[test]
fn hekate_reload_says_when_no_hekate_runs() {
    let dir = temp_dir("reload-cli");
    let stale = dir.join("stale.pid");
    std::fs::write(&stale, "999999\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["reload", "--pid-file"])
        .arg(&stale)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not locked: no hekate runs with it"),
        "{err}"
    );

    let config = dir.join("hekate.toml");
    std::fs::write(&config, base_config(&dir, 1)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["reload", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sets no pid_file in [hekate]"), "{err}");
}

/// Waits for the `n`th "Reload applied" line and returns the log.
fn applied(hekate: &Hekate, n: usize) -> String {
    assert!(
        wait_for(Duration::from_secs(15), || count(
            &hekate.stderr(),
            "Reload applied"
        ) >= n),
        "{}",
        hekate.stderr()
    );
    hekate.stderr()
}

/// Inputs changed by a reload but not moved: the TCP listener and the UDP socket pass to the
/// new inputs. A client connecting every millisecond is never refused, and datagrams sent
/// throughout the reload all arrive.
#[test]
fn an_input_changed_on_the_same_address_refuses_nothing_and_loses_nothing() {
    let dir = temp_dir("reload-same-address");
    let (tcp, udp) = (free_tcp_port(), free_udp_port());
    let text = |limit: usize, set_hostname: bool| {
        format!(
            r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{tcp}"
max_connections = {limit}

[UdpInput]
address = "127.0.0.1:{udp}"
splitter = "HekaFramingSplitter"
decoder = "ProtobufDecoder"
set_hostname = {set_hostname}
{out}"#,
            base = dir.join("base").display(),
            out = file_output("out", "TRUE"),
        )
    };
    let hekate = Hekate::start(&dir, &text(1000, false), &[tcp]);
    let stop = Arc::new(AtomicBool::new(false));
    // One connection per message (conn 1), one datagram per message (conn 2).
    let connector = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut sent, mut refused) = (0u64, Vec::new());
            while !stop.load(Ordering::Acquire) {
                match TcpStream::connect(("127.0.0.1", tcp)) {
                    Ok(mut c) => {
                        c.write_all(&framed([message("tcp", 1, sent, 40)])).unwrap();
                        sent += 1;
                    }
                    Err(e) => refused.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            (sent, refused)
        })
    };
    let datagrams = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u64;
            while !stop.load(Ordering::Acquire) {
                socket
                    .send_to(&framed([message("udp", 2, sent, 40)]), ("127.0.0.1", udp))
                    .unwrap();
                sent += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    for (n, limit, set_hostname) in [(1, 999, true), (2, 998, false)] {
        reload(&hekate, &text(limit, set_hostname));
        let log = applied(&hekate, n);
        assert!(
            log.contains("changed TcpInput, UdpInput"),
            "both inputs changed: {log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Release);
    let (tcp_sent, refused) = connector.join().unwrap();
    let udp_sent = datagrams.join().unwrap();
    assert!(
        refused.is_empty(),
        "refused during the reloads: {refused:?}"
    );
    let out = dir.join("base/out.hekad");
    let of = |conn: u32| -> BTreeSet<u64> {
        read_stream(&out)
            .iter()
            .filter_map(conn_seq)
            .filter(|&(c, _)| c == conn)
            .map(|(_, s)| s)
            .collect()
    };
    let complete = wait_for(Duration::from_secs(15), || {
        of(1).len() as u64 == tcp_sent && of(2).len() as u64 == udp_sent
    });
    let (got_tcp, got_udp) = (of(1), of(2));
    assert!(
        complete,
        "tcp {} of {tcp_sent}, udp {} of {udp_sent}; missing tcp {:?}, udp {:?}\n{}",
        got_tcp.len(),
        got_udp.len(),
        (0..tcp_sent)
            .filter(|s| !got_tcp.contains(s))
            .take(20)
            .collect::<Vec<_>>(),
        (0..udp_sent)
            .filter(|s| !got_udp.contains(s))
            .take(20)
            .collect::<Vec<_>>(),
        hekate.stderr()
    );
}

/// The Lua filter of the file tests: a copy of each message, of the Type `tag` gives.
fn tag_script(tag: &str) -> String {
    format!(
        "{tag}\nfunction process_message()\n    inject_message({{Type = TAG, Payload = \"\",\n        \
         Fields = {{conn = read_message(\"Fields[conn]\"), seq = read_message(\"Fields[seq]\")}}}})\n    \
         return 0\nend\n"
    )
}

/// hekate with a SandboxFilter `tag` running `dir/tag.lua` (modules in `dir/modules`) over
/// `log` messages, its copies written to `out`. Three messages go through, `edit` changes files
/// under `dir` and a SIGHUP follows, then three more: the Types of the six copies, and hekate.
fn types_across_an_edit(dir: &Path, edit: impl FnOnce(&Path)) -> (Vec<String>, Hekate) {
    let port = free_tcp_port();
    let config = format!(
        r#"{base}
[tag]
type = "SandboxFilter"
filename = "{dir}/tag.lua"
module_directory = "{dir}/modules"
message_matcher = "Type == 'log'"
{out}"#,
        base = base_config(dir, port),
        dir = dir.display(),
        out = file_output("out", "Type =~ /^heka.sandbox./"),
    );
    let hekate = Hekate::start(dir, &config, &[port]);
    let out = dir.join("base/out.hekad");
    let types = || -> Vec<String> {
        read_stream(&out)
            .iter()
            .filter_map(|m| m.r#type.clone())
            .collect()
    };
    send_tcp(port, &framed((0..3).map(|i| message("log", 0, i, 30))));
    assert!(wait_for(Duration::from_secs(10), || types().len() == 3));
    edit(dir);
    hekate.signal(libc::SIGHUP);
    let log = applied(&hekate, 1);
    assert!(log.contains("changed tag"), "{log}");
    send_tcp(port, &framed((3..6).map(|i| message("log", 0, i, 30))));
    assert!(
        wait_for(Duration::from_secs(10), || types().len() == 6),
        "{:?}\n{}",
        types(),
        hekate.stderr()
    );
    (types(), hekate)
}

/// A reload applies a Lua script whose file changed though its section did not.
#[test]
fn a_changed_script_file_is_applied_by_a_reload() {
    let dir = temp_dir("reload-script");
    std::fs::write(dir.join("tag.lua"), tag_script("TAG = \"v1\"")).unwrap();
    let (types, hekate) = types_across_an_edit(&dir, |dir| {
        std::fs::write(dir.join("tag.lua"), tag_script("TAG = \"v2\"")).unwrap();
    });
    assert_eq!(
        types,
        [["heka.sandbox.v1"; 3], ["heka.sandbox.v2"; 3]].concat()
    );
    // Unchanged file and config: nothing to do.
    hekate.signal(libc::SIGHUP);
    assert!(wait_for(Duration::from_secs(10), || hekate
        .stderr()
        .contains("the configuration is unchanged")));
}

/// A reload applies a Lua module that a filter's script `require`s and that changed, though
/// neither the script nor the section did.
#[test]
fn a_changed_lua_module_is_applied_by_a_reload() {
    let dir = temp_dir("reload-module");
    let module = |tag: &str| format!("return {{tag = \"{tag}\"}}\n");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::write(dir.join("modules/tagging.lua"), module("m1")).unwrap();
    let script = tag_script("local TAG = require(\"tagging\").tag");
    std::fs::write(dir.join("tag.lua"), script).unwrap();
    let (types, _hekate) = types_across_an_edit(&dir, |dir| {
        std::fs::write(dir.join("modules/tagging.lua"), module("m2")).unwrap();
    });
    assert_eq!(
        types,
        [["heka.sandbox.m1"; 3], ["heka.sandbox.m2"; 3]].concat()
    );
}

/// A changed output whose new configuration cannot start (its file cannot be created) runs its
/// previous one: what was routed to it meanwhile, and what comes after, is delivered; a later
/// reload with a configuration that starts applies it.
#[test]
fn a_changed_output_that_cannot_start_keeps_running_its_previous_configuration() {
    let dir = temp_dir("reload-fallback");
    let port = free_tcp_port();
    let text = |path: &str| {
        format!(
            r#"{base}
[out]
type = "FileOutput"
message_matcher = "TRUE"
path = "{path}"
flush_interval = 0
"#,
            base = base_config(&dir, port),
        )
    };
    let hekate = Hekate::start(&dir, &text("out.hekad"), &[port]);
    let out = dir.join("base/out.hekad");
    send_tcp(port, &framed((0..10).map(|i| message("log", 0, i, 40))));
    assert!(wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 10));

    // /proc refuses new directories: the FileOutput cannot open its new path.
    reload(&hekate, &text("/proc/hekate-no-such-dir/out.hekad"));
    let log = applied(&hekate, 1);
    send_tcp(port, &framed((10..20).map(|i| message("log", 0, i, 40))));
    assert!(
        wait_for(Duration::from_secs(10), || file_seqs(&out).len() == 20),
        "{:?}\n{}",
        file_seqs(&out),
        hekate.stderr()
    );
    let log = hekate.stderr() + &log;
    assert!(
        log.contains("output 'out' cannot start with its new configuration")
            && log.contains("it runs its previous one"),
        "{log}"
    );

    // The slot remembers the previous configuration: the new one is tried again, and one that
    // starts is applied.
    reload(&hekate, &text("second.hekad"));
    applied(&hekate, 2);
    send_tcp(port, &framed((20..30).map(|i| message("log", 0, i, 40))));
    let second = dir.join("base/second.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || file_seqs(&second).len() == 10),
        "{}",
        hekate.stderr()
    );
    assert_eq!(file_seqs(&out), (0..20).collect::<Vec<_>>());
    assert_eq!(file_seqs(&second), (20..30).collect::<Vec<_>>());
}

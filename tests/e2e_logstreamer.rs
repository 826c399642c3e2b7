//! LogstreamerInput with real files, real rotation and the real binary: every line written comes
//! out, through rename-and-create and copytruncate rotation, deletions, restarts, `kill -9`, and
//! journals in Heka's format.

mod common;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use hekate_model::message::Message;

/// Appends numbered lines to a log file and rotates it the ways logrotate does.
struct Writer {
    dir: PathBuf,
    file: File,
    next: u64,
}

impl Writer {
    fn new(dir: &Path) -> Writer {
        std::fs::create_dir_all(dir).unwrap();
        Writer {
            dir: dir.to_path_buf(),
            file: Self::open(&dir.join("app.log")),
            next: 0,
        }
    }

    fn open(path: &Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn lines(&mut self, n: u64) {
        let mut buf = String::new();
        for _ in 0..n {
            buf.push_str(&format!("line {} {}\n", self.next, "x".repeat(40)));
            self.next += 1;
        }
        self.file.write_all(buf.as_bytes()).unwrap();
    }

    /// logrotate `create`: app.log.N → app.log.N+1, app.log → app.log.1, a new app.log.
    fn rotate_rename(&mut self) {
        for n in (1..10).rev() {
            let from = self.dir.join(format!("app.log.{n}"));
            if from.exists() {
                std::fs::rename(&from, self.dir.join(format!("app.log.{}", n + 1))).unwrap();
            }
        }
        std::fs::rename(self.dir.join("app.log"), self.dir.join("app.log.1")).unwrap();
        // The application writes a little more into the renamed file before it reopens.
        self.lines(3);
        self.file = Self::open(&self.dir.join("app.log"));
    }

    /// logrotate `copytruncate`: app.log copied to app.log.1 (older ones shifted), then
    /// truncated in place; the application keeps its descriptor (O_APPEND).
    fn copytruncate(&mut self) {
        for n in (1..10).rev() {
            let from = self.dir.join(format!("app.log.{n}"));
            if from.exists() {
                std::fs::rename(&from, self.dir.join(format!("app.log.{}", n + 1))).unwrap();
            }
        }
        std::fs::copy(self.dir.join("app.log"), self.dir.join("app.log.1")).unwrap();
        self.file.set_len(0).unwrap();
    }
}

fn config(dir: &Path, extra: &str) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"

[app]
type = "LogstreamerInput"
log_directory = "{logs}"
file_match = 'app\.log\.?(?P<Seq>\d*)'
priority = ["^Seq"]
rescan_interval = "200ms"
check_data_interval = "20ms"
{extra}

[out]
type = "FileOutput"
message_matcher = "Type == 'logfile'"
path = "{out}"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        logs = dir.join("logs").display(),
        out = dir.join("out.hekad").display(),
    )
}

/// How often each line number came out, and the messages.
fn seen(path: &Path) -> (BTreeMap<u64, u32>, Vec<Message>) {
    let msgs = if path.exists() {
        read_stream(path)
    } else {
        Vec::new()
    };
    let mut counts = BTreeMap::new();
    for m in &msgs {
        let payload = m.payload.as_deref().unwrap_or("");
        let n: u64 = payload
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not one of our lines: {payload:?}"));
        *counts.entry(n).or_insert(0) += 1;
    }
    (counts, msgs)
}

/// The line numbers below `total` that did not come out (the first 20 of them, so that a
/// failure stays readable).
fn missing(counts: &BTreeMap<u64, u32>, total: u64) -> Vec<u64> {
    (0..total)
        .filter(|n| !counts.contains_key(n))
        .take(20)
        .collect()
}

fn wait_all(path: &Path, total: u64) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    wait_for(Duration::from_secs(20), || {
        counts = seen(path).0;
        missing(&counts, total).is_empty()
    });
    counts
}

/// Rename-and-create and copytruncate rotations while hekate reads: every line comes out
/// exactly once, with Type `logfile`, Logger = the stream's name, and the stream's Hostname.
#[test]
fn rotation_by_rename_and_by_copytruncate_loses_and_repeats_nothing() {
    let dir = temp_dir("logstreamer-rotation");
    let mut w = Writer::new(&dir.join("logs"));
    w.lines(100);
    let mut hekate = Hekate::start(&dir, &config(&dir, r#"hostname = "web-7""#), &[]);
    let out = dir.join("out.hekad");
    for round in 0..6 {
        for _ in 0..10 {
            w.lines(50);
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let the reader reach the end before a copytruncate: lines written between the copy
        // and the truncation would be lost by logrotate itself, not by hekate.
        let total = w.next;
        wait_all(&out, total);
        if round % 2 == 0 {
            w.rotate_rename();
        } else {
            w.copytruncate();
        }
    }
    w.lines(100);
    let total = w.next;
    let counts = wait_all(&out, total);
    assert_eq!(
        missing(&counts, total),
        Vec::<u64>::new(),
        "{}",
        hekate.stderr()
    );
    let repeated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(repeated.is_empty(), "read twice: {repeated:?}");
    let (_, msgs) = seen(&out);
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("logfile"));
    assert_eq!(m.logger.as_deref(), Some("app"));
    assert_eq!(m.hostname.as_deref(), Some("web-7"));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let stderr = hekate.stderr();
    assert!(stderr.contains("copytruncate"), "{stderr}");
}

/// `kill -9` at random moments while lines are written and rotated: after the last restart
/// every line is in the output — the journal only moves to positions the FileOutput has
/// written — and the lines read twice are bounded by what was in flight at each kill.
#[test]
fn kill_9_while_tailing_and_rotating_loses_no_line() {
    let dir = temp_dir("logstreamer-kill9");
    let mut w = Writer::new(&dir.join("logs"));
    let out = dir.join("out.hekad");
    let cfg = config(&dir, "");
    let kills = 50;
    // Each run in a directory of its own: a Hekate removes its directory when dropped.
    let run_dir = |n: u64| {
        let d = dir.join(format!("run{n}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    for cycle in 0..kills {
        let mut hekate = Hekate::start(&run_dir(cycle), &cfg, &[]);
        let started = std::time::Instant::now();
        let until = started + Duration::from_millis(100 + fastrand::u64(0..500));
        // One cycle in three rotates (rename and create) at a random moment while hekate reads,
        // so that some kills land just after a rotation, before the new file is taken up.
        let rotate_at =
            (cycle % 3 == 2).then(|| started + Duration::from_millis(fastrand::u64(0..400)));
        let mut rotated = false;
        while std::time::Instant::now() < until {
            w.lines(200);
            if !rotated && rotate_at.is_some_and(|t| std::time::Instant::now() >= t) {
                w.rotate_rename();
                rotated = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        hekate.signal(libc::SIGKILL);
        hekate.wait(Duration::from_secs(10));
    }
    w.lines(10);
    let total = w.next;
    let mut hekate = Hekate::start(&run_dir(kills), &cfg, &[]);
    let counts = wait_all(&out, total);
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let stderr = hekate.stderr();
    let lost: Vec<u64> = (0..total).filter(|n| !counts.contains_key(n)).collect();
    let files: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let seq = |l: Option<&str>| {
                l.and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("-")
                    .to_string()
            };
            format!(
                "{} {}..{}",
                e.file_name().to_string_lossy(),
                seq(text.lines().next()),
                seq(text.lines().last())
            )
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {total} lines lost after {kills} kill -9: {:?}…{:?}; files {files:?}\n{stderr}",
        lost.len(),
        lost.first(),
        lost.last()
    );
    let twice: u64 = counts.values().map(|&c| u64::from(c - 1)).sum();
    eprintln!("{total} lines, {kills} kill -9: {twice} read again after a kill");
    // What was in flight at a kill: at most the FileOutput's unflushed batch and the lanes,
    // well under a second of this writer's lines per kill.
    assert!(
        twice <= kills * 20_000,
        "{twice} lines read twice in {kills} kills"
    );
}

/// A journal written in Heka's format (by hand here, as hekad writes it) is resumed from: the
/// lines before its position are not read again.
#[test]
fn a_heka_journal_is_resumed_from() {
    let dir = temp_dir("logstreamer-heka-journal");
    let mut w = Writer::new(&dir.join("logs"));
    w.lines(1000);
    let log = dir.join("logs/app.log");
    let data = std::fs::read(&log).unwrap();
    // Resume after line 599.
    let seek = data
        .split_inclusive(|&b| b == b'\n')
        .take(600)
        .map(<[u8]>::len)
        .sum::<usize>();
    let hashed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {seek} {} | tail -c 500 | sha1sum",
            log.display()
        ))
        .output()
        .unwrap();
    let hash = String::from_utf8(hashed.stdout).unwrap();
    let journal_dir = dir.join("base/logstreamer");
    std::fs::create_dir_all(&journal_dir).unwrap();
    std::fs::write(
        journal_dir.join("app"),
        format!(
            r#"{{"seek":{seek},"file_name":"{}","last_hash":"{}"}}"#,
            log.display(),
            hash.split_whitespace().next().unwrap()
        ),
    )
    .unwrap();
    let out = dir.join("out.hekad");
    let describe = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["logstreamer", "-c"])
        .arg({
            let p = dir.join("hekate.toml");
            std::fs::write(&p, config(&dir, "")).unwrap();
            p
        })
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&describe.stdout);
    assert!(describe.status.success(), "{text}");
    assert!(
        text.contains(&format!("resumes in {} at byte {seek}", log.display())),
        "{text}"
    );
    let mut hekate = Hekate::start(&dir, &config(&dir, ""), &[]);
    let mut counts = BTreeMap::new();
    wait_for(Duration::from_secs(20), || {
        counts = seen(&out).0;
        counts.len() >= 400
    });
    assert!(hekate.terminate().success());
    assert_eq!(counts.keys().next(), Some(&600), "{}", hekate.stderr());
    assert_eq!(counts.len(), 400);
    // Our journal keeps Heka's format.
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(journal_dir.join("app")).unwrap()).unwrap();
    assert_eq!(j["seek"], serde_json::json!(data.len()));
    assert_eq!(j["file_name"], serde_json::json!(log.display().to_string()));
    assert_eq!(j["last_hash"].as_str().unwrap().len(), 40);
}

/// A journal with garbage in it is ignored with a warning; the stream starts at the end of its
/// newest file with `initial_tail`, so only lines written afterwards come out.
#[test]
fn a_garbage_journal_is_ignored_and_initial_tail_starts_at_the_end() {
    let dir = temp_dir("logstreamer-garbage-journal");
    let mut w = Writer::new(&dir.join("logs"));
    w.lines(500);
    let journal_dir = dir.join("base/logstreamer");
    std::fs::create_dir_all(&journal_dir).unwrap();
    std::fs::write(journal_dir.join("app"), b"\x00\x01not json").unwrap();
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &config(&dir, "initial_tail = true"), &[]);
    assert!(wait_for(Duration::from_secs(10), || hekate
        .stderr()
        .contains("is ignored")));
    std::thread::sleep(Duration::from_millis(300));
    w.lines(50);
    let mut counts = BTreeMap::new();
    wait_for(Duration::from_secs(20), || {
        counts = seen(&out).0;
        counts.len() >= 50
    });
    assert!(hekate.terminate().success());
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (500..550).collect::<Vec<_>>()
    );
}

/// With polling and rescans an hour apart, a new stream's file and every write to it still come
/// out within moments: inotify tells the input.
#[test]
fn new_files_and_writes_are_noticed_without_polling() {
    let dir = temp_dir("logstreamer-inotify");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let cfg = config(&dir, "")
        .replace(r#"rescan_interval = "200ms""#, r#"rescan_interval = "1h""#)
        .replace(
            r#"check_data_interval = "20ms""#,
            r#"check_data_interval = "1h""#,
        );
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &cfg, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let mut w = Writer::new(&dir.join("logs"));
    for round in 1..=3 {
        w.lines(10);
        let total = w.next;
        assert!(
            wait_for(Duration::from_secs(5), || seen(&out).0.len() as u64
                == total),
            "round {round}: {:?}\n{}",
            seen(&out).0.len(),
            hekate.stderr()
        );
    }
    assert!(hekate.terminate().success());
}

/// A file deleted while it is read is read to its end through the open descriptor; the file that
/// takes its name afterwards is read from its start.
#[test]
fn a_file_deleted_while_read_is_finished_then_its_successor_read() {
    let dir = temp_dir("logstreamer-deleted");
    let mut w = Writer::new(&dir.join("logs"));
    w.lines(200_000);
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &config(&dir, ""), &[]);
    // Deleted once reading has begun (and most likely before it has ended).
    assert!(wait_for(Duration::from_secs(10), || !seen(&out)
        .0
        .is_empty()));
    std::fs::remove_file(dir.join("logs/app.log")).unwrap();
    w.file = Writer::open(&dir.join("logs/app.log"));
    w.lines(100);
    let total = w.next;
    let counts = wait_all(&out, total);
    assert!(hekate.terminate().success());
    assert_eq!(
        missing(&counts, total),
        Vec::<u64>::new(),
        "{}",
        hekate.stderr()
    );
    assert!(counts.values().all(|&c| c == 1));
}

/// 100 MB without a newline, then lines: the oversized record is skipped and counted, memory
/// stays bounded, and the lines after it come out.
#[test]
fn a_binary_file_without_delimiters_is_skipped_with_bounded_memory() {
    let dir = temp_dir("logstreamer-binary");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    {
        let mut f = File::create(logs.join("app.log")).unwrap();
        let block = vec![b'z'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&block).unwrap();
        }
        f.write_all(b"\nline 0 after\nline 1 after\n").unwrap();
    }
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &config(&dir, ""), &[]);
    let mut peak = 0;
    let arrived = wait_for(Duration::from_secs(60), || {
        peak = peak.max(hekate.rss_kib());
        seen(&out).0.len() == 2
    });
    assert!(arrived, "{}", hekate.stderr());
    assert!(hekate.terminate().success());
    assert!(peak < 200 * 1024, "resident memory reached {peak} KiB");
    let said = hekate.stderr();
    assert!(
        said.contains("dropped a record longer than the largest buffer"),
        "{said}"
    );
}

/// 10,000 files in one directory, each a stream of its own: every line comes out, within the
/// descriptor limit (one descriptor per stream) and with memory bounded.
#[test]
fn ten_thousand_files_in_one_directory() {
    let dir = temp_dir("logstreamer-10k");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let files = 10_000u64;
    for n in 0..files {
        std::fs::write(logs.join(format!("f{n}.log")), format!("line {n} x\n")).unwrap();
    }
    let cfg = config(&dir, "")
        .replace(
            r#"file_match = 'app\.log\.?(?P<Seq>\d*)'"#,
            r#"file_match = 'f(?P<N>\d+)\.log'"#,
        )
        .replace(r#"priority = ["^Seq"]"#, r#"differentiator = ["f", "N"]"#);
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &cfg, &[]);
    let mut peak = 0;
    let counts = {
        let mut counts = BTreeMap::new();
        wait_for(Duration::from_secs(120), || {
            peak = peak.max(hekate.rss_kib());
            counts = seen(&out).0;
            counts.len() as u64 == files
        });
        counts
    };
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    assert_eq!(missing(&counts, files), Vec::<u64>::new());
    assert!(peak < 1024 * 1024, "resident memory reached {peak} KiB");
}

/// A stack trace in a tailed log is one message with a PatternGroupingSplitter.
#[test]
fn a_stack_trace_is_one_message_with_a_pattern_grouping_splitter() {
    let dir = temp_dir("logstreamer-grouping");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("app.log"),
        "line 0 started\n\
java.lang.IllegalStateException: boom\n\
\tat com.example.App.run(App.java:42)\n\
\tat com.example.App.main(App.java:7)\n\
line 1 recovered\n",
    )
    .unwrap();
    let cfg = format!(
        "{}\n[traces]\ntype = \"PatternGroupingSplitter\"\ndelimiter = '\\n'\ngrouping = '(\\A\\s*.+Exception: .)|(\\A\\s+at \\S+\\(\\S+\\))'\n",
        config(&dir, r#"splitter = "traces""#)
    );
    let out = dir.join("out.hekad");
    let mut hekate = Hekate::start(&dir, &cfg, &[]);
    let mut msgs = Vec::new();
    wait_for(Duration::from_secs(10), || {
        msgs = if out.exists() {
            read_stream(&out)
        } else {
            Vec::new()
        };
        msgs.len() >= 3
    });
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let payloads: Vec<&str> = msgs.iter().map(|m| m.payload.as_deref().unwrap()).collect();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    assert_eq!(payloads[0], "line 0 started\n");
    assert!(payloads[1].starts_with("java.lang.IllegalStateException: boom\n\tat"));
    assert!(payloads[1].ends_with("(App.java:7)\n"));
    assert_eq!(payloads[2], "line 1 recovered\n");
}

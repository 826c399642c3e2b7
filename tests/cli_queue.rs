//! `hekate queue check|show|repair` on queues the library wrote, then damaged by hand; and
//! `hekate cat` on the segments.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hekate_engine::queue::{
    CHECKPOINT_FILE, Cursor, DiskQueue, FsyncPolicy, QueueOptions, queue_dir, segment_path,
};
use hekate_model::framing::checksummed_record_len;
use hekate_model::message::Message;

fn hekate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(args)
        .output()
        .expect("run hekate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn options() -> QueueOptions {
    QueueOptions {
        max_file_size: 4096,
        max_message_size: 1024,
        fsync: FsyncPolicy::Never,
        ..QueueOptions::default()
    }
}

/// Message `i`, encoded: its payload says which it is.
fn message(i: usize) -> Vec<u8> {
    let mut m = Message::new_now();
    m.r#type = Some("queue.test".into());
    m.logger = Some(format!("logger-{}", i % 3));
    m.payload = Some(format!("record {i:03} {}", "x".repeat(100)));
    m.to_bytes()
}

/// A queue of `n` messages in `<tmp>/output_queue/TcpOutput_<name>`, the first `acked` of them
/// acknowledged. Returns the directory and each record's cursor.
fn build_queue(name: &str, n: usize, acked: usize) -> (PathBuf, Vec<Cursor>) {
    let base = std::env::temp_dir().join(format!("hekate-cli-queue-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let dir = queue_dir(&base, &format!("TcpOutput:{name}"));
    let mut q = DiskQueue::open(&dir, options()).unwrap();
    for i in 0..n {
        let _ = q.append(&message(i)).unwrap();
    }
    q.flush().unwrap();
    let mut cursors = Vec::new();
    while let Some(r) = q.next().unwrap() {
        cursors.push(r.cursor);
    }
    if acked > 0 {
        q.ack(cursors[acked - 1]).unwrap();
    }
    q.close().unwrap();
    (dir, cursors)
}

fn segments(dir: &Path) -> Vec<String> {
    let mut ids: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    ids.sort();
    ids.iter()
        .map(|id| segment_path(dir, *id).display().to_string())
        .collect()
}

/// Every file of the directory with its bytes, to prove a command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn cat_count(files: &[String]) -> (u64, String) {
    let mut args = vec!["cat", "--format", "count"];
    args.extend(files.iter().map(String::as_str));
    let o = hekate(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (stdout(&o).trim().parse().unwrap(), stderr(&o))
}

#[test]
fn check_reports_a_healthy_queue_and_cat_reads_its_segments() {
    let (dir, cursors) = build_queue("healthy", 40, 5);
    let d = dir.to_str().unwrap();
    assert!(d.ends_with("output_queue/TcpOutput_healthy"));
    let files = segments(&dir);
    assert!(files.len() > 1, "the queue rolled over: {files:?}");

    let o = hekate(&["queue", "check", d]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("checkpoint: {}\n", cursors[4])),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "total: {} segments, {} bytes, 40 records, 35 pending\n",
            files.len(),
            files
                .iter()
                .map(|f| fs::metadata(f).unwrap().len())
                .sum::<u64>()
        )),
        "{text}"
    );
    assert!(text.contains("segment 0.log: "), "{text}");
    assert!(text.ends_with("status: healthy\n"), "{text}");

    // The segments are plain Heka streams: `hekate cat` reads every record, with no warning.
    let (count, warnings) = cat_count(&files);
    assert_eq!(count, 40);
    assert_eq!(warnings, "");
}

#[test]
fn check_finds_damage_without_changing_anything_and_repair_removes_it() {
    let (dir, cursors) = build_queue("damaged", 40, 3);
    let d = dir.to_str().unwrap();
    let files = segments(&dir);
    let record = checksummed_record_len(message(0).len()) as u64;

    // One flipped bit inside record 5 (segment 0), and the last segment cut mid-record.
    let first = &files[0];
    let mut bytes = fs::read(first).unwrap();
    let start_of_5 = cursors[5].offset - record;
    bytes[(start_of_5 + 40) as usize] ^= 0x10;
    fs::write(first, &bytes).unwrap();
    let last = files.last().unwrap();
    let last_len = fs::metadata(last).unwrap().len();
    let cut = last_len - record / 3;
    fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let last_id = files.len() - 1;

    let before = snapshot(&dir);
    let o = hekate(&["queue", "check", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "  corrupt: 0.log offset {start_of_5}, {record} bytes (checksum mismatch)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  corrupt: {last_id}.log offset {}, {} bytes (record cut short, torn tail)\n",
            last_len - record,
            cut - (last_len - record)
        )),
        "{text}"
    );
    assert!(
        text.contains("38 records, 35 pending"),
        "the two damaged records are not counted: {text}"
    );
    assert!(
        text.contains(&format!(
            "status: corrupt (2 corrupt region(s), {} bytes)",
            record + cut - (last_len - record)
        )),
        "{text}"
    );
    assert_eq!(snapshot(&dir), before, "check changes nothing");
    // Nor does show, which reads past the damage.
    let o = hekate(&["queue", "show", "--format", "count", d]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "35");
    assert!(stderr(&o).contains("corrupt bytes"), "{}", stderr(&o));
    assert_eq!(snapshot(&dir), before);

    let o = hekate(&["queue", "repair", d]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "rewrote {first} without 1 corrupt region(s) of {record} bytes in all; "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cut a torn tail of {} bytes at offset {} of {last}",
            cut - (last_len - record),
            last_len - record
        )),
        "{text}"
    );
    assert!(text.ends_with("status: healthy\n"), "{text}");

    let o = hekate(&["queue", "check", d]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("38 records, 35 pending"),
        "{}",
        stdout(&o)
    );
    let (count, warnings) = cat_count(&segments(&dir));
    assert_eq!((count, warnings.as_str()), (38, ""));
    // The library opens the repaired queue without recovering anything, and replays the 35.
    let mut q = DiskQueue::open(&dir, options()).unwrap();
    assert!(q.take_warnings().is_empty());
    assert_eq!(q.pending_records(), 35);
    let o = hekate(&["queue", "repair", d]);
    assert_eq!(o.status.code(), Some(1), "the queue is in use");
    assert!(
        stderr(&o).contains("is in use by another process"),
        "{}",
        stderr(&o)
    );
    drop(q);
    // Another test thread forking a child while `q` was open hands the child a copy of the
    // lock's descriptor (and so the flock) until it execs; retry briefly for that case.
    let mut o = hekate(&["queue", "repair", d]);
    for _ in 0..20 {
        if o.status.success() || !stderr(&o).contains("is in use by another process") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        o = hekate(&["queue", "repair", d]);
    }
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), format!("nothing to repair: {d} is healthy\n"));
}

#[test]
fn an_unusable_checkpoint_is_reported_and_reset_to_the_oldest_record() {
    let (dir, _) = build_queue("checkpoint", 10, 4);
    let d = dir.to_str().unwrap();
    let checkpoint = dir.join(CHECKPOINT_FILE);
    fs::write(&checkpoint, "zero zero").unwrap();

    let o = hekate(&["queue", "check", d]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "checkpoint problem: checkpoint {} is unusable (\"zero zero\" is not `<segment> <offset>`); \
             replaying from the oldest segment, 0 0\n",
            checkpoint.display()
        )),
        "{text}"
    );
    assert!(text.contains("10 records, 10 pending"), "{text}");
    assert!(
        text.contains("status: corrupt (an unusable checkpoint)"),
        "{text}"
    );

    let o = hekate(&["queue", "repair", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "reset checkpoint {} to `0 0` (\"zero zero\" is not `<segment> <offset>`)",
            checkpoint.display()
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(fs::read_to_string(&checkpoint).unwrap(), "0 0");
}

#[test]
fn show_prints_the_checkpoint_then_the_pending_records_like_cat() {
    let (dir, cursors) = build_queue("show", 12, 7);
    let d = dir.to_str().unwrap();

    let o = hekate(&["queue", "show", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!("checkpoint: {}\n\n", cursors[6])),
        "{text}"
    );
    assert_eq!(text.matches("Type: queue.test\n").count(), 5);
    assert!(
        !text.contains("record 006"),
        "acknowledged records are not shown"
    );
    assert!(text.contains("Payload: record 007 "), "{text}");
    assert!(text.contains("Payload: record 011 "), "{text}");

    let o = hekate(&["queue", "show", "--format", "json", d]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), format!("checkpoint: {}\n", cursors[6]));
    let payloads: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["Payload"].as_str().unwrap()[..10].to_string()
        })
        .collect();
    assert_eq!(
        payloads,
        (7..12)
            .map(|i| format!("record {i:03}"))
            .collect::<Vec<_>>()
    );

    let o = hekate(&[
        "queue",
        "show",
        "--format",
        "count",
        "--match",
        "Logger == 'logger-1'",
        d,
    ]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "2"); // records 7 and 10

    let o = hekate(&["queue", "show", "--match", "Type ==", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid --match expression"));
}

#[test]
fn a_missing_directory_is_one_clear_sentence() {
    let o = hekate(&["queue", "check", "/nonexistent/output_queue/X"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "hekate queue: /nonexistent/output_queue/X is not a queue directory\n"
    );
}

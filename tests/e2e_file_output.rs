//! FileOutput writes off the shard's thread: a file that stops taking data holds up only the
//! output writing to it.

mod common;

use std::fs::OpenOptions;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::{Duration, Instant};

use common::*;

/// One worker core runs the input, a FileOutput writing into a FIFO nobody reads (a stalled
/// disk, as far as the writer can tell) and a FileOutput writing into a regular file. Once the
/// FIFO is full, its output's write blocks: the shard must go on reading and delivering the
/// messages for the other output. When the FIFO is read again, everything written to it
/// arrives, in order.
#[test]
fn a_stalled_file_holds_up_only_its_own_output() {
    let dir = temp_dir("file-stall");
    let fifo = dir.join("stalled.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    // A reader that reads nothing yet: the writer's open succeeds, its writes fill the pipe.
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let core = hekate_engine::runtime::allowed_cores()[0];
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}

[TcpInput]
address = "127.0.0.1:{port}"

[stalled]
type = "FileOutput"
message_matcher = "Type == 'to-fifo'"
path = "{fifo}"
flush_interval = 0

[flowing]
type = "FileOutput"
message_matcher = "Type == 'other'"
path = "flowing.hekad"
flush_interval = 0
"#,
        base = dir.join("base").display(),
        fifo = fifo.display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    // ~600 KB for the FIFO: far more than a pipe holds (64 KiB), far less than its lane.
    let stalled: Vec<_> = (0..2000).map(|s| message("to-fifo", 1, s, 300)).collect();
    send_tcp(port, &framed(stalled));
    std::thread::sleep(Duration::from_millis(300));
    let others: Vec<_> = (0..200).map(|s| message("other", 2, s, 300)).collect();
    send_tcp(port, &framed(others));
    let flowing = dir.join("base").join("flowing.hekad");
    let arrived = wait_for(Duration::from_secs(10), || {
        read_stream(&flowing).len() == 200
    });
    if !arrived {
        hekate.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        arrived,
        "the other output got {} of 200 messages while the FIFO was stalled\n{}\n{}",
        read_stream(&flowing).len(),
        hekate.stdout(),
        hekate.stderr()
    );

    // Read the FIFO: the stalled output catches up, nothing lost, in order.
    let mut bytes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut chunk = vec![0u8; 64 * 1024];
    while parse_stream(&bytes).len() < 2000 && Instant::now() < deadline {
        match reader.read(&mut chunk) {
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    let got: Vec<_> = parse_stream(&bytes).iter().filter_map(conn_seq).collect();
    let want: Vec<_> = (0..2000).map(|s| (1, s)).collect();
    assert_eq!(got, want, "{}", hekate.stderr());
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// With `rotation_interval`, `path` is a strftime pattern: messages land in the file named after
/// the current interval's start, its directories created.
#[test]
fn a_rotating_output_writes_the_file_of_the_current_interval() {
    use chrono::TimeZone as _;
    let dir = temp_dir("file-rotation");
    let port = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[hourly]
type = "FileOutput"
message_matcher = "Type == 'load'"
path = "logs/%Y-%m-%d/%H.hekad"
rotation_interval = 1
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let hour_file = |secs: i64| {
        let start = secs - secs.rem_euclid(3600);
        let local = chrono::Local.timestamp_opt(start, 0).unwrap();
        dir.join("base")
            .join(format!("logs/{}.hekad", local.format("%Y-%m-%d/%H")))
    };
    let now = || chrono::Utc::now().timestamp();
    let before = hour_file(now());
    let mut hekate = Hekate::start(&dir, &config, &[port]);
    send_tcp(port, &framed((0..50).map(|s| message("load", 1, s, 100))));
    // Across an hour boundary the messages may be split over two files.
    let files = || {
        let mut f = vec![before.clone(), hour_file(now())];
        f.dedup();
        f
    };
    let count = || files().iter().map(|f| read_stream(f).len()).sum::<usize>();
    assert!(
        wait_for(Duration::from_secs(10), || count() == 50),
        "{:?}: {} messages\n{}",
        files(),
        count(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

fn file_output_config(dir: &std::path::Path, port: u16) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"

[TcpInput]
address = "127.0.0.1:{port}"

[out]
type = "FileOutput"
message_matcher = "Type == 'log'"
path = "out.hekad"
flush_interval = 0
"#,
        base = dir.join("base").display(),
    )
}

fn seqs(path: &std::path::Path) -> Vec<u64> {
    read_stream(path)
        .iter()
        .filter_map(conn_seq)
        .map(|(_, s)| s)
        .collect()
}

/// Log rotation by rename (`mv out out.1`, as logrotate does without copytruncate) and by
/// delete: FileOutput notices within about a second that its path names another file (or
/// none) and writes to a new file there; nothing is written into the renamed or unlinked file
/// after that, and nothing is lost.
#[test]
fn a_moved_or_deleted_file_is_reopened_at_its_path() {
    let dir = temp_dir("file-reopen");
    let port = free_tcp_port();
    let mut hekate = Hekate::start(&dir, &file_output_config(&dir, port), &[port]);
    let out = dir.join("base/out.hekad");
    let moved = dir.join("base/out.hekad.1");
    send_tcp(port, &framed((0..100).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || seqs(&out).len() == 100));
    std::fs::rename(&out, &moved).unwrap();
    // Keep sending until the new file appears: the check runs at most once a second.
    let mut next = 100;
    assert!(
        wait_for(Duration::from_secs(10), || {
            send_tcp(port, &framed([message("log", 0, next, 50)]));
            next += 1;
            std::thread::sleep(Duration::from_millis(50));
            out.exists()
        }),
        "no new file at {}",
        out.display()
    );
    // Then delete it: the next file appears the same way.
    std::fs::remove_file(&out).unwrap();
    let deleted_at = next;
    assert!(wait_for(Duration::from_secs(10), || {
        send_tcp(port, &framed([message("log", 0, next, 50)]));
        next += 1;
        std::thread::sleep(Duration::from_millis(50));
        out.exists()
    }));
    assert!(wait_for(Duration::from_secs(10), || {
        seqs(&out).last() == Some(&(next - 1))
    }));
    assert!(hekate.terminate().success());
    let old = seqs(&moved);
    let new = seqs(&out);
    // Everything before the rename is in the renamed file, in order; the newest file holds a
    // tail that ends with the last message sent; only what went to the deleted file is gone
    // (the user deleted it).
    assert_eq!(&old[..100], &(0..100).collect::<Vec<_>>()[..]);
    assert!(old.iter().all(|&s| s < deleted_at), "{old:?}");
    assert!(
        !new.is_empty() && new.iter().all(|&s| s >= deleted_at),
        "{new:?}"
    );
    assert_eq!(*new.last().unwrap(), next - 1);
    assert!(
        hekate
            .stderr()
            .contains("was moved or deleted; writing to a new file there"),
        "{}",
        hekate.stderr()
    );
}

/// A crash in the middle of a write leaves a record cut short at the end of the file. On the
/// next start FileOutput cuts it before appending, so the first record it writes is read back
/// (instead of being taken as the rest of the torn one).
#[test]
fn a_torn_final_record_is_cut_before_appending() {
    let dir = temp_dir("file-torn");
    let port = free_tcp_port();
    std::fs::create_dir_all(dir.join("base")).unwrap();
    let out = dir.join("base/out.hekad");
    let mut bytes = framed((0..3).map(|i| message("log", 0, i, 50)));
    let torn = framed([message("log", 0, 3, 50)]);
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(&out, &bytes).unwrap();
    let mut hekate = Hekate::start(&dir, &file_output_config(&dir, port), &[port]);
    send_tcp(port, &framed([message("log", 0, 4, 50)]));
    assert!(wait_for(Duration::from_secs(10), || seqs(&out).len() == 4));
    assert!(hekate.terminate().success());
    assert_eq!(seqs(&out), [0, 1, 2, 4]);
    let stderr = hekate.stderr();
    assert!(
        stderr.contains(&format!(
            "ended in a record cut short ({} bytes",
            torn.len() / 2
        )),
        "{stderr}"
    );
}

/// logrotate's `postrotate kill -HUP`: after the file is moved, SIGHUP makes FileOutput open a
/// new file at its path before its next write, without waiting for its once-a-second check.
#[test]
fn sighup_reopens_the_file_at_once() {
    let dir = temp_dir("file-sighup");
    let port = free_tcp_port();
    let mut hekate = Hekate::start(&dir, &file_output_config(&dir, port), &[port]);
    let out = dir.join("base/out.hekad");
    let moved = dir.join("base/out.hekad.1");
    send_tcp(port, &framed((0..10).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || seqs(&out).len() == 10));
    std::fs::rename(&out, &moved).unwrap();
    hekate.signal(libc::SIGHUP);
    assert!(wait_for(Duration::from_secs(5), || {
        hekate.stderr().contains("outputs reopen their files")
    }));
    send_tcp(port, &framed((10..20).map(|i| message("log", 0, i, 50))));
    assert!(wait_for(Duration::from_secs(10), || seqs(&out).len() == 10));
    assert!(hekate.terminate().success());
    assert_eq!(seqs(&moved), (0..10).collect::<Vec<_>>());
    assert_eq!(seqs(&out), (10..20).collect::<Vec<_>>());
    let stderr = hekate.stderr();
    assert!(
        stderr.contains("reopened") && stderr.contains("on SIGHUP"),
        "{stderr}"
    );
}

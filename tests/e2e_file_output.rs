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

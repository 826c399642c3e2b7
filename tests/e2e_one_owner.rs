//! One hekate per pid file and per listen address: a second process is refused at start with
//! the reason, and the first carries on.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// `[hekate]` with `global` lines, then `inputs`, then a FileOutput.
fn config(dir: &Path, global: &str, inputs: &str) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"
{global}

{inputs}

[FileOutput]
message_matcher = "TRUE"
path = "out.hekad"
"#,
        base = dir.join("base").display()
    )
}

fn tcp_input(name: &str, port: u16) -> String {
    format!("[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n")
}

fn udp_input(name: &str, port: u16) -> String {
    format!("[{name}]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{port}\"\n")
}

/// Starts hekate on `config` and expects it to exit with status 1 by itself; returns its stderr.
fn refused(name: &str, config: &str) -> String {
    let dir = temp_dir(name);
    let mut hekate = Hekate::start(&dir, config, &[]);
    let status = hekate.wait(Duration::from_secs(20));
    let stderr = hekate.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

/// A second hekate with the same pid_file is refused, naming the first one's process id; the
/// file is the first one's until it exits, and then it is gone.
#[test]
fn a_second_hekate_with_the_same_pid_file_is_refused_naming_the_first() {
    let shared = temp_dir("pidfile-shared");
    let pid_file = shared.join("hekate.pid");
    let global = format!("pid_file = \"{}\"", pid_file.display());
    let dir = temp_dir("pidfile-first");
    let port = free_tcp_port();
    let mut first = Hekate::start(
        &dir,
        &config(&dir, &global, &tcp_input("TcpInput", port)),
        &[port],
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", first.pid())
    );

    let other = temp_dir("pidfile-second");
    let stderr = refused(
        "pidfile-second-run",
        &config(&other, &global, &tcp_input("TcpInput", free_tcp_port())),
    );
    let expected = format!(
        "pid_file {} is locked by process {}; is hekate already running?",
        pid_file.display(),
        first.pid()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", first.pid()),
        "the refused hekate leaves the first one's pid_file alone"
    );
    assert!(first.child.try_wait().unwrap().is_none(), "the first runs on");

    assert!(first.terminate().success(), "{}", first.stderr());
    assert!(!pid_file.exists(), "removed at exit");
    let _ = std::fs::remove_dir_all(&shared);
    let _ = std::fs::remove_dir_all(&other);
}

/// A pid_file left behind by a hekate that did not exit cleanly holds no lock: the next hekate
/// starts and writes its own process id.
#[test]
fn a_stale_pid_file_does_not_stop_the_next_start() {
    let dir = temp_dir("pidfile-stale");
    let pid_file = dir.join("hekate.pid");
    // The test process itself: a live process, but not a hekate holding the lock.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let global = format!("pid_file = \"{}\"", pid_file.display());
    let port = free_tcp_port();
    let mut hekate = Hekate::start(
        &dir,
        &config(&dir, &global, &tcp_input("TcpInput", port)),
        &[port],
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", hekate.pid())
    );
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

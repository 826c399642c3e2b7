//! One hekate per pid file and per listen address: a second process is refused at start with
//! the reason, and the first carries on.

mod common;

use std::net::{TcpListener, UdpSocket};
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
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first runs on"
    );

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

/// A second hekate on the TCP address of a running one is refused, though both bind with
/// SO_REUSEPORT; the first keeps every connection.
#[test]
fn a_second_hekate_on_the_same_tcp_address_is_refused() {
    let dir = temp_dir("tcp-first");
    let port = free_tcp_port();
    let mut first = Hekate::start(&dir, &config(&dir, "", &tcp_input("Heka", port)), &[port]);

    let other = temp_dir("tcp-second");
    let stderr = refused(
        "tcp-second-run",
        &config(&other, "", &tcp_input("Heka", port)),
    );
    assert!(
        stderr.contains(&format!(
            "TcpInput 'Heka': address 127.0.0.1:{port} is in use by another process"
        )),
        "{stderr}"
    );

    // Every message sent now reaches the first hekate.
    for seq in 0..20 {
        send_tcp(port, &framed([message("owner", 0, seq, 20)]));
    }
    let out = dir.join("base").join("out.hekad");
    let all_there = wait_for(Duration::from_secs(10), || {
        read_stream(&out)
            .iter()
            .filter(|m| m.r#type.as_deref() == Some("owner"))
            .count()
            == 20
    });
    assert!(all_there, "{}", first.stderr());
    assert!(first.terminate().success(), "{}", first.stderr());
    let _ = std::fs::remove_dir_all(&other);
}

/// A TCP address another program listens on is refused at start, with the address.
#[test]
fn a_tcp_address_held_by_another_program_is_refused() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("tcp-taken");
    let stderr = refused("tcp-taken-run", &config(&dir, "", &tcp_input("In", port)));
    assert!(
        stderr.contains(&format!(
            "TcpInput 'In': address 127.0.0.1:{port} is in use by another process"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A UDP address another program is bound to is refused at start, and so is the UDP address of
/// a running hekate.
#[test]
fn a_udp_address_held_by_another_program_or_hekate_is_refused() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("udp-taken");
    let stderr = refused(
        "udp-taken-run",
        &config(&dir, "", &udp_input("Datagrams", port)),
    );
    assert!(
        stderr.contains(&format!(
            "UdpInput 'Datagrams': address 127.0.0.1:{port} is in use by another process"
        )),
        "{stderr}"
    );
    drop(taken);

    // A running hekate with the UDP input (and a TCP one, to know when it has started).
    let tcp = free_tcp_port();
    let inputs = format!(
        "{}\n{}",
        udp_input("Datagrams", port),
        tcp_input("Heka", tcp)
    );
    let mut first = Hekate::start(&dir, &config(&dir, "", &inputs), &[tcp]);
    let other = temp_dir("udp-second");
    let stderr = refused(
        "udp-second-run",
        &config(&other, "", &udp_input("Datagrams", port)),
    );
    assert!(
        stderr.contains(&format!(
            "UdpInput 'Datagrams': address 127.0.0.1:{port} is in use by another process"
        )),
        "{stderr}"
    );
    assert!(first.terminate().success(), "{}", first.stderr());
    let _ = std::fs::remove_dir_all(&other);
}

/// Two inputs of one configuration on the same address are refused: they would split its
/// traffic between them.
#[test]
fn two_inputs_on_the_same_address_are_refused() {
    let port = free_tcp_port();
    let dir = temp_dir("tcp-twice");
    let inputs = format!("{}\n{}", tcp_input("A", port), tcp_input("B", port));
    let stderr = refused("tcp-twice-run", &config(&dir, "", &inputs));
    assert!(
        stderr.contains(&format!(
            "TcpInput 'B': address 127.0.0.1:{port} is also the address of input 'A'"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

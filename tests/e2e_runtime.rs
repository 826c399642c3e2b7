//! The runtime through the real binary: core placement, an idle process sleeping, refused
//! configs and limits, the embedded default configuration.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The cores this test process may run on.
fn allowed_cores() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let mut cores = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => cores.push(part.parse().unwrap()),
        }
    }
    cores
}

fn simple_config(dir: &std::path::Path, port: u16, global: &str) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"
{global}

[TcpInput]
address = "127.0.0.1:{port}"

[FileOutput]
message_matcher = "TRUE"
path = "out.hekad"

[CounterFilter]
message_matcher = "Type != 'heka.counter-output'"
"#,
        base = dir.join("base").display()
    )
}

/// Worker threads run on their configured cores, the coordinator on its own.
#[test]
fn worker_threads_run_on_their_configured_cores() {
    let cores = allowed_cores();
    let worker = *cores.last().unwrap();
    let coordinator = cores[0];
    let dir = temp_dir("affinity");
    let port = free_tcp_port();
    let global = format!("worker_cores = [{worker}]\ncoordinator_core = {coordinator}");
    let mut hekate = Hekate::start(&dir, &simple_config(&dir, port, &global), &[port]);
    let threads = hekate.thread_affinities();
    let shards: Vec<_> = threads
        .iter()
        .filter(|t| t.0.starts_with("hekate-shard"))
        .collect();
    assert!(!shards.is_empty(), "{threads:?}");
    for (name, cpus) in &shards {
        assert_eq!(cpus, &worker.to_string(), "{name} runs on {cpus}");
    }
    let main = threads.iter().find(|t| t.0 == "hekate").unwrap();
    assert_eq!(
        main.1,
        coordinator.to_string(),
        "the coordinator runs on {}",
        main.1
    );
    assert!(hekate.terminate().success());

    if cores.len() >= 2 {
        let dir = temp_dir("affinity2");
        let port = free_tcp_port();
        let global = format!("worker_cores = [{}, {}]", cores[0], cores[1]);
        let mut hekate = Hekate::start(&dir, &simple_config(&dir, port, &global), &[port]);
        // The port answers once the first shard listens; the second may still be starting.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut threads = hekate.thread_affinities();
        while !(0..2).all(|i| threads.iter().any(|t| t.0 == format!("hekate-shard{i}")))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
            threads = hekate.thread_affinities();
        }
        for (i, core) in cores[..2].iter().enumerate() {
            let name = format!("hekate-shard{i}");
            let mine: Vec<_> = threads.iter().filter(|t| t.0 == name).collect();
            assert!(!mine.is_empty(), "no thread {name}: {threads:?}");
            for t in mine {
                assert_eq!(t.1, core.to_string(), "{name}");
            }
        }
        assert!(hekate.terminate().success());
    }
}

/// Whether hekate's log has the "hekate started" line, dated and levelled as
/// `YYYY/MM/DD HH:MM:SS  INFO hekate started: …`.
fn logged_start(name: &str, global: &str, args: &[&str], env: &[(&str, &str)]) -> bool {
    let dir = temp_dir(name);
    let port = free_tcp_port();
    let config = simple_config(&dir, port, global);
    let mut hekate = Hekate::start_with(&dir, &config, &[port], args, env);
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    let stderr = hekate.stderr();
    let Some(line) = stderr.lines().find(|l| l.contains("hekate started")) else {
        return false;
    };
    let (date, rest) = line.split_at(19);
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999/99/99 99:99:99", "{line}");
    assert!(rest.starts_with("  INFO hekate started: "), "{line}");
    assert!(stderr.contains(" INFO Shutdown complete."), "{stderr}");
    true
}

/// The least severe log line written: `--log-level` over `RUST_LOG` over `log_level`.
#[test]
fn the_log_level_comes_from_the_flag_then_rust_log_then_the_config() {
    assert!(logged_start("log-default", "", &[], &[]));
    assert!(!logged_start(
        "log-config",
        "log_level = \"warn\"",
        &[],
        &[]
    ));
    assert!(logged_start(
        "log-env",
        "log_level = \"warn\"",
        &[],
        &[("RUST_LOG", "info")]
    ));
    assert!(!logged_start(
        "log-flag",
        "",
        &["--log-level", "error"],
        &[("RUST_LOG", "debug")]
    ));
}

/// An unknown level is refused with the levels there are, in the config and on the command line.
#[test]
fn an_unknown_log_level_is_refused() {
    let dir = temp_dir("log-unknown");
    let port = free_tcp_port();
    let path = dir.join("hekate.toml");
    std::fs::write(&path, simple_config(&dir, port, "log_level = \"loud\"")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown log level \"loud\"; the levels are error, warn, info, debug and trace"
        ),
        "{stderr}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "--log-level", "loud", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown log level \"loud\""), "{stderr}");
}

/// With no traffic the process sleeps: its threads wake a few times a second (timers of the
/// coordinator and the shards), not in a loop. Counted in wakeups, which do not depend on how
/// fast or how loaded the machine is; the CPU bound only catches a thread that spins (one
/// spinning thread is 100% of a core). The idle CPU figure itself (< 1% of a core with 1,000
/// files watched) is the bench harness's: `scripts/bench tail`, in bench/RESULTS.md.
#[test]
fn an_idle_process_sleeps() {
    let dir = temp_dir("idle");
    let port = free_tcp_port();
    let mut hekate = Hekate::start(&dir, &simple_config(&dir, port, ""), &[port]);
    // Past the start (and the heap trim a second after the harness's probe connection closed).
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (ticks, switches) = (hekate.cpu_ticks(), hekate.context_switches());
    let seconds = 10.0;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let used = (hekate.cpu_ticks() - ticks) as f64 / hz / seconds;
    let per_second = (hekate.context_switches() - switches) as f64 / seconds;
    eprintln!(
        "idle hekate: {:.2}% CPU, {per_second:.1} context switches a second",
        used * 100.0
    );
    // About 12 a second on the machines of this project.
    assert!(
        per_second < 100.0,
        "idle hekate switched context {per_second:.1} times a second"
    );
    assert!(used < 0.05, "idle hekate used {:.2}% CPU", used * 100.0);
    assert!(hekate.terminate().success());
}

fn run_expecting_failure(dir: &std::path::Path, config: &str, shell_prefix: &str) -> String {
    let path = dir.join("hekate.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{shell_prefix} exec '{}' run -c '{}'",
            env!("CARGO_BIN_EXE_hekate"),
            path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A core that does not exist is refused at start with the reason.
#[test]
fn a_core_that_does_not_exist_is_refused() {
    let dir = temp_dir("nocore");
    let config = simple_config(&dir, free_tcp_port(), "worker_cores = [4096]");
    let err = run_expecting_failure(&dir, &config, "");
    assert!(err.contains("worker core 4096"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A locked-memory limit too low for io_uring is refused with how to raise it.
#[test]
fn a_low_memlock_limit_says_how_to_raise_it() {
    let dir = temp_dir("memlock");
    let config = simple_config(&dir, free_tcp_port(), "");
    let err = run_expecting_failure(&dir, &config, "ulimit -l 64 &&");
    assert!(err.contains("ulimit -l"), "{err}");
    assert!(err.contains("RLIMIT_MEMLOCK"), "{err}");
}

/// A bad config is refused with its file and line, and nothing starts.
#[test]
fn a_bad_config_is_refused_with_its_location() {
    let dir = temp_dir("badconfig");
    let config = format!(
        "{}\n[broken]\ntype = \"FileOutput\"\nmessage_matcher = \"Type =\"\npath = \"x\"\n",
        simple_config(&dir, free_tcp_port(), "")
    );
    let err = run_expecting_failure(&dir, &config, "");
    assert!(err.contains("hekate.toml:"), "{err}");
    assert!(err.contains("message_matcher"), "{err}");
}

/// `hekate run` without a config starts the embedded default configuration.
#[test]
fn run_without_config_starts_the_default_pipeline() {
    if TcpListener::bind("127.0.0.1:5565").is_err() {
        eprintln!("port 5565 is taken; skipping");
        return;
    }
    let file = std::path::Path::new("/var/cache/hekad/received.hekad");
    let before = read_stream(file).len();
    let dir = temp_dir("default");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .arg("run")
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let listening = wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect("127.0.0.1:5565").is_ok()
            || child.try_wait().unwrap().is_some()
    });
    assert!(listening);
    let stderr = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    if let Some(status) = child.try_wait().unwrap() {
        // Without write access to /var/cache/hekad the refusal must say so.
        assert_eq!(status.code(), Some(1));
        assert!(
            stderr().contains("base_dir /var/cache/hekad"),
            "{}",
            stderr()
        );
        return;
    }
    send_tcp(5565, &framed((0..10).map(|s| message("default", 0, s, 20))));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let exited = wait_for(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "{}", stderr());
    assert!(child.wait().unwrap().success(), "{}", stderr());
    let after = read_stream(file);
    let mine = after[before.min(after.len())..]
        .iter()
        .filter(|m| m.r#type.as_deref() == Some("default"))
        .count();
    assert_eq!(mine, 10, "{}", stderr());
    let _ = std::fs::remove_dir_all(&dir);
}

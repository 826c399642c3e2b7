//! `hekate check` and `hekate run` give the same verdict on every file of `tests/configs/`:
//! a valid file passes `check` and `run` starts it; an invalid one is refused by both, with the
//! same located message (the file's `# expect:` line).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no file in tests/configs/{kind}");
    files
}

/// The environment each file sees: a fresh directory, a free port, the corpus directory.
fn env(name: &str) -> (Vec<(&'static str, String)>, u16) {
    let dir = common::temp_dir(&format!("corpus-{name}"));
    let port = common::free_tcp_port();
    (
        vec![
            ("HEKATE_TEST_DIR", dir.display().to_string()),
            ("HEKATE_TEST_PORT", port.to_string()),
            ("HEKATE_CORPUS_DIR", corpus().display().to_string()),
        ],
        port,
    )
}

fn check(file: &Path, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["check", "-c"])
        .arg(file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

enum RunVerdict {
    /// Started and listened on the port; stopped with SIGTERM.
    Started,
    /// Exited non-zero, with this stderr.
    Refused(String),
}

fn run(file: &Path, env: &[(&str, String)], port: u16) -> RunVerdict {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "-c"])
        .arg(file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!status.success(), "run exited 0 before stopping:\n{stderr}");
            return RunVerdict::Refused(stderr);
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "run did not stop cleanly:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return RunVerdict::Started;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}: run neither started nor exited", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expected_message(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
    line.replace("%CORPUS%", &corpus().display().to_string())
}

#[test]
fn valid_configs_pass_check_and_start() {
    for file in files("valid") {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (env, port) = env(&name);
        let (ok, output) = check(&file, &env);
        assert!(ok, "check refused {}:\n{output}", file.display());
        assert!(output.contains("configuration is valid"), "{output}");
        if let RunVerdict::Refused(stderr) = run(&file, &env, port) {
            panic!(
                "check accepted {} but run refused it:\n{stderr}",
                file.display()
            );
        }
    }
}

#[test]
fn invalid_configs_are_refused_by_check_and_run_with_the_same_message() {
    for file in files("invalid") {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (env, port) = env(&name);
        let expected = expected_message(&file);
        let (ok, output) = check(&file, &env);
        assert!(!ok, "check accepted {}:\n{output}", file.display());
        assert!(
            output.contains(&expected),
            "check on {} does not say\n  {expected}\nbut:\n{output}",
            file.display()
        );
        match run(&file, &env, port) {
            RunVerdict::Started => panic!("check refused {} but run started it", file.display()),
            RunVerdict::Refused(stderr) => assert!(
                stderr.contains(&expected),
                "run on {} does not say\n  {expected}\nbut:\n{stderr}",
                file.display()
            ),
        }
    }
}

#[test]
fn print_config_loads_back_into_the_same_verdict() {
    let file = corpus().join("valid/sandbox_filter.toml");
    let (env, _) = env("print-config");
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "--print-config", "-c"])
        .arg(&file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    // %ENV substituted, the [hekad] alias printed as [hekate], subsections kept.
    assert!(!printed.contains("%ENV["), "{printed}");
    assert!(printed.contains("[hekate]"), "{printed}");
    assert!(printed.contains("maxprocs = 2"), "{printed}");
    assert!(printed.contains("[count.config]"), "{printed}");
    let dir = common::temp_dir("print-config-copy");
    let copy = dir.join("printed.toml");
    std::fs::write(&copy, &printed).unwrap();
    let (ok, output) = check(&copy, &[]);
    assert!(
        ok,
        "the printed config does not check:\n{output}\n{printed}"
    );
}

#[test]
fn print_config_without_c_prints_the_embedded_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["run", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("embedded default configuration"),
        "{printed}"
    );
    assert!(printed.contains("[TcpInput]"), "{printed}");
    assert!(printed.contains("127.0.0.1:5565"), "{printed}");
}

//! Deployment: the systemd unit, the example configurations, the man pages and completions,
//! and the Debian package's asset list.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn hekate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(args)
        .output()
        .unwrap()
}

/// The unit passes `systemd-analyze verify` (with the test's binary in place of
/// /usr/bin/hekate), and its hardening leaves what hekate needs: the service's directories,
/// the descriptor limit, locked memory, and port 514.
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("config/systemd/hekate.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/hekate run -c /etc/hekate/hekate.toml",
        "ExecStartPre=/usr/bin/hekate check -c /etc/hekate/hekate.toml",
        "LimitNOFILE=",
        "LimitMEMLOCK=infinity",
        "Restart=on-failure",
        "CacheDirectory=hekad",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    let dir = temp_dir("unit");
    let path = dir.join("hekate.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/hekate", env!("CARGO_BIN_EXE_hekate")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("hekate.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}

/// An example configuration with what only exists on a real host (names, ports, directories, a
/// CA file) replaced by what exists here.
fn localized(example: &str, dir: &Path, ports: &[(&str, u16)]) -> String {
    let mut text = example.replace("/var/lib/hekate", &dir.join("base").display().to_string());
    for (from, port) in ports {
        text = text.replace(from, &format!("127.0.0.1:{port}"));
    }
    for name in ["central.example.com", "aggregator.example.com"] {
        text = text.replace(name, "127.0.0.1");
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    text = text
        .replace("/var/log/hekate", &logs.display().to_string())
        .replace("/var/log/nginx", &logs.display().to_string())
        .replace("/var/log/app", &logs.display().to_string())
        // The Lua decoders the package installs, from the repository.
        .replace(
            "/usr/share/hekate/lua_decoders",
            &root().join("config/lua_decoders").display().to_string(),
        );
    if text.contains("/etc/hekate/aggregator-ca.pem") {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        text = text.replace("/etc/hekate/aggregator-ca.pem", &path.display().to_string());
    }
    text
}

/// Every example configuration is valid as shipped, but for host names, ports and paths.
#[test]
fn every_example_configuration_checks() {
    let mut examples: Vec<_> = std::fs::read_dir(root().join("config/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "{examples:?}");
    for example in examples {
        let dir = temp_dir("example");
        let text = std::fs::read_to_string(&example).unwrap();
        let ports = [
            ("0.0.0.0:514", free_tcp_port()),
            ("0.0.0.0:8125", free_tcp_port()),
            ("127.0.0.1:2003", free_tcp_port()),
            ("127.0.0.1:9110", free_tcp_port()),
        ];
        let config = dir.join("hekate.toml");
        std::fs::write(&config, localized(&text, &dir, &ports)).unwrap();
        let out = hekate(&["check", "-c", config.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            example.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The syslog aggregator example runs: `logger` over TCP with octet counting and over UDP, and
/// both lines land in its text file.
#[test]
fn the_syslog_aggregator_example_receives_syslog() {
    let dir = temp_dir("example-syslog");
    let port = free_tcp_port();
    let central = free_tcp_port();
    let text =
        std::fs::read_to_string(root().join("config/examples/syslog-aggregator.toml")).unwrap();
    let metrics = free_tcp_port();
    let config = localized(
        &text,
        &dir,
        &[("0.0.0.0:514", port), ("127.0.0.1:9110", metrics)],
    )
    .replace("127.0.0.1:5565", &format!("127.0.0.1:{central}"))
    .replace("worker_cores = \"auto\"", "worker_cores = [0]");
    let mut h = Hekate::start(&dir, &config, &[port]);
    let port_s = port.to_string();
    for args in [vec!["-T", "--octet-count"], vec!["-d"]] {
        let status = Command::new("logger")
            .args(&args)
            .args(["-n", "127.0.0.1", "-P", &port_s, "-t", "example"])
            .arg(format!("hello over {}", args[0]))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let log = dir.join("logs").join("syslog.log");
    assert!(
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&log)
                .is_ok_and(|t| t.contains("hello over -T") && t.contains("hello over -d"))
        }),
        "{:?}\n{}",
        std::fs::read_to_string(&log),
        h.stderr()
    );
    // Its metrics endpoint counts what the TCP input received. The shards send their counters
    // to the endpoint once a second, so the first scrape may predate the line.
    let scrape = || {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{metrics}/metrics")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let counted = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("hekate_plugin_messages_received_total{")
                && l.contains("plugin=\"syslog_tcp\"")
                && l.ends_with(" 1")
        })
    };
    assert!(
        wait_for(Duration::from_secs(10), || counted(&scrape())),
        "{}",
        scrape()
    );
    let status = h.terminate();
    // The central upstream is down: its messages stay queued, which is not a loss.
    assert!(status.success(), "{status}\n{}", h.stderr());
}

/// `hekate manpage` renders a page with the signals and exit statuses, and `--dir` writes one
/// page per subcommand; the completion scripts know the subcommands.
#[test]
fn man_pages_and_completions_are_generated_from_the_cli() {
    let page = String::from_utf8(hekate(&["manpage"]).stdout).unwrap();
    assert!(page.contains(".TH hekate 1"), "{page}");
    for section in [
        ".SH SIGNALS",
        ".SH EXIT STATUS",
        ".SH FILES",
        "hekate\\-run(1)",
    ] {
        assert!(page.contains(section), "no {section} in\n{page}");
    }
    let dir = temp_dir("man");
    assert!(
        hekate(&["manpage", "--dir", dir.to_str().unwrap()])
            .status
            .success()
    );
    for name in [
        "hekate.1",
        "hekate-run.1",
        "hekate-check.1",
        "hekate-queue-repair.1",
    ] {
        assert!(dir.join(name).exists(), "{name} missing");
    }
    let rendered = Command::new("man")
        .arg("-l")
        .arg(dir.join("hekate.1"))
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output();
    if let Ok(out) = rendered {
        // Without a terminal man still overstrikes bold ("X\x08X"): keep the last of each.
        let mut text = String::new();
        for c in String::from_utf8_lossy(&out.stdout).chars() {
            if c == '\u{8}' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        assert!(
            text.contains("EXIT STATUS") && text.contains("SIGUSR2"),
            "{text}"
        );
    }

    let bash = hekate(&["completions", "bash"]).stdout;
    let script = dir.join("hekate.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success());
    // The script completes the subcommands in a real bash.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(hekate qu); COMP_CWORD=1; COMP_LINE='hekate qu'; COMP_POINT=9; _hekate hekate qu hekate; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "queue");
    for shell in ["zsh", "fish"] {
        let text = String::from_utf8(hekate(&["completions", shell]).stdout).unwrap();
        assert!(
            text.contains("logstreamer") && text.contains("sbmgr"),
            "{shell}"
        );
    }
}

/// The package's asset list names files the repository has, or that `scripts/package`
/// generates, and installs the unit, the configuration and the man pages.
#[test]
fn the_debian_package_lists_what_exists() {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().unwrap();
    let package = std::fs::read_to_string(root().join("scripts/package")).unwrap();
    let mut targets = Vec::new();
    for asset in assets {
        let source = asset[0].as_str().unwrap();
        targets.push(asset[1].as_str().unwrap().to_string());
        if let Some(generated) = source.strip_prefix("target/") {
            let generated = generated.split('*').next().unwrap();
            let made = generated.starts_with("release/hekate")
                || package.contains(&format!("target/{}", generated.trim_end_matches('/')))
                || package.contains(&format!("target/{generated}"));
            assert!(
                made,
                "{source} is neither in the repository nor made by scripts/package"
            );
        } else if source.contains('*') {
            let dir = root().join(source.rsplit_once('/').unwrap().0);
            assert!(
                std::fs::read_dir(&dir).unwrap().next().is_some(),
                "{source}"
            );
        } else {
            assert!(root().join(source).exists(), "{source}");
        }
    }
    for wanted in ["usr/bin/", "etc/hekate/hekate.toml", "usr/share/man/man1/"] {
        assert!(
            targets.iter().any(|t| t == wanted),
            "nothing installs {wanted}"
        );
    }
    assert_eq!(
        deb["systemd-units"]["unit-scripts"].as_str(),
        Some("config/systemd")
    );
    assert!(root().join("config/debian/postinst").exists());
}

//! The peers hekate is compared with: where `scripts/peers` installed them, their configs
//! (templates in `bench/peers/`, rendered into the run directory) and their versions.
//!
//! syslog-ng (with loggen) and collectd come from Debian; rsyslog conflicts with syslog-ng in apt,
//! so its .deb is unpacked into `<peers dir>/rsyslog`; etsy statsd is installed with npm into
//! `<peers dir>/statsd`.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::Bench;
use super::proc::{Running, describe_exit};

/// Renders `bench/peers/<template>` into `out`, replacing each `@NAME@` with its value.
pub fn render(
    b: &Bench,
    template: &str,
    vars: &[(&str, String)],
    out: &Path,
) -> Result<(), String> {
    let src = b.opts.repo.join("bench/peers").join(template);
    let mut text = fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    for (k, v) in vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    let left = regex::Regex::new("@[A-Z_]+@").expect("valid regex");
    if let Some(m) = left.find(&text) {
        return Err(format!(
            "{template}: placeholder {} left unreplaced",
            m.as_str()
        ));
    }
    fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))
}

/// rsyslogd and its module directory in the private prefix.
pub fn rsyslogd(b: &Bench) -> Option<(PathBuf, PathBuf)> {
    let prefix = b.opts.peers_dir.join("rsyslog");
    let bin = prefix.join("usr/sbin/rsyslogd");
    let lib = prefix.join("usr/lib");
    let modules = fs::read_dir(&lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("rsyslog"))
        .find(|p| p.join("imptcp.so").is_file())?;
    bin.is_file().then_some((bin, modules))
}

/// etsy statsd's entry point.
pub fn statsd_js(b: &Bench) -> Option<PathBuf> {
    let js = b.opts.peers_dir.join("statsd/node_modules/statsd/stats.js");
    js.is_file().then_some(js)
}

/// The first dotted version number (`3.38.1`) a version command prints, or `?`.
pub fn version(program: &str, args: &[&str]) -> String {
    let re = regex::Regex::new(r"\d+(\.\d+)+").expect("valid regex");
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            re.find(&text).map(|m| m.as_str().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// The version field of an npm package.json.
pub fn npm_version(package_json: &Path) -> String {
    fs::read_to_string(package_json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Waits until a TCP port accepts connections, while `p` runs.
pub fn wait_tcp(p: &mut Running, port: u16, patience: Duration) -> Result<(), String> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(s) = p.try_wait() {
            return Err(format!(
                "{} exited at start ({}): {}",
                p.name,
                describe_exit(Some(s)),
                p.tail(4)
            ));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not open port {port}: {}",
                p.name,
                p.tail(4)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

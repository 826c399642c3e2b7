//! Harness of the end-to-end tests: start the real `hekate` binary on a config, talk to it over
//! real sockets, read what its outputs wrote, stop it with signals. Every wait is bounded.

#![allow(dead_code)]

pub mod webdriver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hekate_model::framing::{HekaSplitter, SplitOutcome, encode_record};
use hekate_model::message::{Field, Message};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hekate-e2e-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TCP port nothing listens on right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port nothing is bound to right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `hekate run -c <dir>/hekate.toml`.
pub struct Hekate {
    pub child: Child,
    pub dir: PathBuf,
}

impl Hekate {
    /// Writes `config` and starts hekate on it; waits until every port in `ports` accepts.
    pub fn start(dir: &Path, config: &str, ports: &[u16]) -> Hekate {
        Self::start_with_env(dir, config, ports, &[])
    }

    /// [`Hekate::start`] with extra environment variables.
    pub fn start_with_env(dir: &Path, config: &str, ports: &[u16], env: &[(&str, &str)]) -> Hekate {
        Self::start_with(dir, config, ports, &[], env)
    }

    /// [`Hekate::start`] with extra arguments to `hekate run` and environment variables.
    /// `RUST_LOG` is not passed on from the test's environment (tests read the log).
    pub fn start_with(
        dir: &Path,
        config: &str,
        ports: &[u16],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Hekate {
        let path = dir.join("hekate.toml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hekate"))
            .args(["run", "-c"])
            .arg(&path)
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).unwrap(),
            ))
            .spawn()
            .expect("start hekate");
        let mut h = Hekate {
            child,
            dir: dir.to_path_buf(),
        };
        for &port in ports {
            h.wait_listening(port);
        }
        h
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "hekate exited with {status} before listening:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hekate does not listen on {port}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(30))
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("hekate did not exit within {timeout:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// User + system CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat; `after` starts at field 3.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Context switches of every thread so far (voluntary and not): how often the process
    /// was woken or preempted.
    pub fn context_switches(&self) -> u64 {
        let mut total = 0;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            total += status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }

    /// (thread name, Cpus_allowed_list) of every thread.
    pub fn thread_affinities(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in std::fs::read_dir(format!("/proc/{}/task", self.pid())).unwrap() {
            let t = t.unwrap().path();
            let name = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
            let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap_or("")
                .trim()
                .to_string();
            out.push((name.trim().to_string(), cpus));
        }
        out
    }
}

impl Drop for Hekate {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Keep the directory (config, logs, outputs) of a failed test for a look.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A message of type `ty` from connection `conn` with sequence number `seq`, padded to about
/// `size` bytes of payload.
pub fn message(ty: &str, conn: u32, seq: u64, size: usize) -> Message {
    let mut m = Message::new_now();
    m.r#type = Some(ty.into());
    m.logger = Some("e2e".into());
    let mut payload = format!("conn {conn} seq {seq} ");
    while payload.len() < size {
        payload.push('x');
    }
    m.payload = Some(payload);
    m.add_field(Field::integer("conn", i64::from(conn)));
    m.add_field(Field::integer("seq", seq as i64));
    m
}

/// Heka-framed records of `msgs`.
pub fn framed(msgs: impl IntoIterator<Item = Message>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_record(&m.to_bytes(), None, &mut out).unwrap();
    }
    out
}

/// Every message of a Heka stream (garbage skipped).
pub fn parse_stream(bytes: &[u8]) -> Vec<Message> {
    let mut s = HekaSplitter::default();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let step = s.split(&bytes[pos..]);
        pos += step.consumed;
        match step.outcome {
            SplitOutcome::Record(r) => out.push(Message::decode_bytes(r.message).unwrap()),
            SplitOutcome::Rejected(_) => {}
            _ => break,
        }
    }
    out
}

/// Every message of a Heka-framed file (none if it does not exist).
pub fn read_stream(path: &Path) -> Vec<Message> {
    std::fs::read(path)
        .map(|b| parse_stream(&b))
        .unwrap_or_default()
}

/// (conn, seq) of a test message.
pub fn conn_seq(m: &Message) -> Option<(u32, u64)> {
    let conn = m
        .fields
        .iter()
        .find(|f| f.name == "conn")?
        .value_integer
        .first()?;
    let seq = m
        .fields
        .iter()
        .find(|f| f.name == "seq")?
        .value_integer
        .first()?;
    Some((*conn as u32, *seq as u64))
}

/// Waits until `check` holds, up to `timeout`.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP server that collects every byte of every connection (for TcpOutput), optionally only
/// after `start_reading` is released.
pub struct Sink {
    pub addr: SocketAddr,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    gate: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Sink {
    /// A sink that reads at once (`paused = false`) or once [`Sink::resume`] is called.
    pub fn start(paused: bool) -> Sink {
        Self::start_on(0, paused)
    }

    /// [`Sink::start`] on `port` of 127.0.0.1 (0: any free port).
    pub fn start_on(port: u16, paused: bool) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(!paused));
        let (r, g) = (received.clone(), gate.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (r, g) = (r.clone(), g.clone());
                std::thread::spawn(move || {
                    while !g.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let mut buf = vec![0u8; 1 << 16];
                    let mut mine = Vec::new();
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => mine.extend_from_slice(&buf[..n]),
                        }
                    }
                    r.lock().unwrap().extend_from_slice(&mine);
                });
            }
        });
        Sink {
            addr,
            received,
            gate,
        }
    }

    /// Starts reading.
    pub fn resume(&self) {
        self.gate.store(true, Ordering::Release);
    }
}

/// Sends `bytes` on a new connection and closes it.
pub fn send_tcp(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
}

/// The newest `heka.all-report` payload of a Heka stream, parsed.
pub fn last_report(path: &Path) -> Option<serde_json::Value> {
    read_stream(path)
        .into_iter()
        .rev()
        .find(|m| m.r#type.as_deref() == Some("heka.all-report"))
        .and_then(|m| serde_json::from_str(m.payload.as_deref()?).ok())
}

/// A FileOutput section writing every `heka.all-report` to `<base_dir>/reports.hekad` (read it
/// with [`last_report`]); set `report_interval` in `[hekate]` for frequent reports.
pub const REPORTS_OUTPUT: &str = r#"
[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#;

/// A plugin's numeric report field.
pub fn report_value(
    report: &serde_json::Value,
    category: &str,
    name: &str,
    key: &str,
) -> Option<i64> {
    report[category]
        .as_array()?
        .iter()
        .find(|p| p["Name"] == name)?[key]["value"]
        .as_i64()
}

/// One GET over HTTP/1.1 with `Connection: close`, to see exactly what a server answers (its
/// status line and headers as sent): (status, head, body). Status 0 when the server closed or
/// reset the connection without an answer (a server at its connection limit does).
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return (0, String::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

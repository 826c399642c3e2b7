//! The metrics endpoint (`[hekate] http_address`) through the real binary: off unless set;
//! `/metrics` counts the messages actually sent and passes `promtool check metrics`; a real
//! Prometheus scrapes it and answers queries about hekate's series; `/health` is 503 naming an
//! output whose peer is down and 200 while every output delivers; `hekate top` in a tmux pane
//! shows the rates, the output holding a core back and the health problems.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Messages each test sends.
const SENT: u64 = 500;

fn config(dir: &Path, port: u16, http: Option<u16>, outputs: &str) -> String {
    let http = http
        .map(|p| format!("http_address = \"127.0.0.1:{p}\""))
        .unwrap_or_default();
    format!(
        r#"
[hekate]
base_dir = "{base}"
{http}

[TcpInput]
address = "127.0.0.1:{port}"

{outputs}
"#,
        base = dir.join("base").display(),
    )
}

const FILE_OUTPUT: &str = r#"
[file]
type = "FileOutput"
message_matcher = "Type == 'load'"
path = "out.hekad"
flush_interval = 50
"#;

/// Sends [`SENT`] messages of type `load` over one connection.
fn send_load(port: u16) {
    send_tcp(
        port,
        &framed((0..SENT).map(|seq| message("load", 1, seq, 64))),
    );
}

/// A GET over HTTP/1.1 (`Connection: close`): (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let (status, _, body) = http_get(port, path);
    (status, body)
}

/// The sum over cores of `family{plugin="<plugin>",…}` in a scrape.
fn total(metrics: &str, family: &str, plugin: &str) -> u64 {
    let start = format!("{family}{{plugin=\"{plugin}\",");
    metrics
        .lines()
        .filter(|l| l.starts_with(&start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The TCP ports `pid` listens on (its sockets found in /proc/net/tcp{,6}).
fn listening_ports(pid: i32) -> Vec<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.push(inode.to_string());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), inode.
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Waits until the endpoint counts every message sent as received by TcpInput and delivered
/// by `file`; the last scrape.
fn wait_counted(http: u16) -> String {
    let mut last = String::new();
    let counted = wait_for(Duration::from_secs(15), || {
        last = get(http, "/metrics").1;
        total(&last, "hekate_plugin_messages_received_total", "TcpInput") == SENT
            && total(&last, "hekate_plugin_messages_delivered_total", "file") == SENT
    });
    assert!(counted, "the counts never reached {SENT}:\n{last}");
    last
}

#[test]
fn the_endpoint_is_off_unless_http_address_is_set() {
    let dir = temp_dir("metrics-off");
    let port = free_tcp_port();
    let mut h = Hekate::start(&dir, &config(&dir, port, None, FILE_OUTPUT), &[port]);
    assert_eq!(
        listening_ports(h.pid()),
        [port],
        "hekate listens on its input's port alone"
    );
    assert!(!h.stderr().contains("metrics endpoint"), "{}", h.stderr());
    assert!(h.terminate().success());
}

#[test]
fn metrics_count_the_messages_sent_and_pass_promtool() {
    let dir = temp_dir("metrics-count");
    let (port, http) = (free_tcp_port(), free_tcp_port());
    let script = dir.join("count.lua");
    std::fs::write(
        &script,
        "local n = 0\nfunction process_message() n = n + 1 return 0 end\nfunction timer_event() end\n",
    )
    .unwrap();
    let plugins = format!(
        "{FILE_OUTPUT}\n[lua]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\nmessage_matcher = \"Type == 'load'\"\n",
        script.display()
    );
    let mut h = Hekate::start(
        &dir,
        &config(&dir, port, Some(http), &plugins),
        &[port, http],
    );
    let mut ports = vec![port, http];
    ports.sort_unstable();
    assert_eq!(listening_ports(h.pid()), ports);
    // The endpoint's thread shares the coordinator's core (the main thread's).
    let threads = h.thread_affinities();
    let main = threads
        .iter()
        .find(|t| t.0 == "hekate")
        .map(|t| t.1.clone());
    let endpoint = threads
        .iter()
        .find(|t| t.0 == "hekate-metrics")
        .map(|t| t.1.clone());
    assert!(endpoint.is_some() && endpoint == main, "{threads:?}");
    send_load(port);
    let metrics = wait_counted(http);
    assert_eq!(read_stream(&dir.join("base/out.hekad")).len() as u64, SENT);
    for family in [
        "# TYPE hekate_plugin_messages_dropped_total counter",
        "# TYPE hekate_plugin_queue_messages gauge",
        "# TYPE hekate_core_ring_fill_ratio gauge",
        "# TYPE hekate_plugin_process_duration_seconds histogram",
        "# TYPE hekate_plugin_match_duration_seconds histogram",
        "hekate_plugin_process_duration_seconds_bucket{plugin=\"file\",type=\"FileOutput\",category=\"output\",core=\"",
        "hekate_healthy 1",
    ] {
        assert!(metrics.contains(family), "no {family:?} in\n{metrics}");
    }
    assert_eq!(get(http, "/health"), (200, "ok\n".to_string()));
    assert_eq!(get(http, "/nothing-here").0, 404);
    // The sandbox's memory, once its runner has published its fields.
    let mut metrics = metrics;
    let memory = wait_for(Duration::from_secs(10), || {
        metrics = get(http, "/metrics").1;
        total(&metrics, "hekate_plugin_messages_delivered_total", "lua") == SENT
            && total(&metrics, "hekate_plugin_sandbox_memory_bytes", "lua") > 0
    });
    assert!(memory, "no sandbox memory for 'lua':\n{metrics}");

    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut promtool) => {
            promtool
                .stdin
                .take()
                .unwrap()
                .write_all(metrics.as_bytes())
                .unwrap();
            let out = promtool.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics refused the scrape:\n{}{}\n{metrics}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED promtool check metrics: promtool cannot run ({e}); scripts/setup installs it (Debian's prometheus package)"
            );
        }
        Err(e) => panic!("promtool cannot run ({e}); scripts/setup installs it"),
    }
    assert!(h.terminate().success());
}

/// A Prometheus server the test started; killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs curl on a URL; the body.
fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .expect("curl runs (scripts/setup installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_real_prometheus_scrapes_hekate() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus cannot run; scripts/setup installs it"
        );
        eprintln!(
            "SKIPPED: prometheus is not installed; scripts/setup installs it (Debian's prometheus package)"
        );
        return;
    }
    let dir = temp_dir("metrics-prometheus");
    let (port, http, web) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let mut h = Hekate::start(
        &dir,
        &config(&dir, port, Some(http), FILE_OUTPUT),
        &[port, http],
    );
    send_load(port);
    wait_counted(http);
    let prometheus_config = dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: hekate\n    static_configs:\n      - targets: ['127.0.0.1:{http}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("prometheus.log")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("prometheus.err")).unwrap(),
            ))
            .spawn()
            .expect("start prometheus"),
    );
    let query = format!(
        "http://127.0.0.1:{web}/api/v1/query?query=sum(hekate_plugin_messages_received_total%7Bplugin%3D%22TcpInput%22%7D)"
    );
    let mut answer = String::new();
    let scraped = wait_for(Duration::from_secs(60), || {
        answer = curl(&query);
        answer.contains("\"status\":\"success\"") && answer.contains(&format!("\"{SENT}\"]"))
    });
    assert!(
        scraped,
        "Prometheus never saw {SENT} messages received: {answer}\n{}",
        std::fs::read_to_string(dir.join("prometheus.err")).unwrap_or_default()
    );
    let up = curl(&format!(
        "http://127.0.0.1:{web}/api/v1/query?query=up%7Bjob%3D%22hekate%22%7D"
    ));
    assert!(up.contains("\"1\"]"), "the target is not up: {up}");
    let histogram = curl(&format!(
        "http://127.0.0.1:{web}/api/v1/query?query=hekate_plugin_process_duration_seconds_count%7Bplugin%3D%22file%22%7D"
    ));
    assert!(
        histogram.contains("\"plugin\":\"file\""),
        "no histogram series for the output: {histogram}"
    );
    assert!(h.terminate().success());
}

#[test]
fn health_names_an_output_whose_peer_is_down() {
    let dir = temp_dir("metrics-health");
    let (port, http) = (free_tcp_port(), free_tcp_port());
    // Nothing listens there.
    let closed = free_tcp_port();
    let outputs = format!(
        r#"{FILE_OUTPUT}
[upstream]
type = "TcpOutput"
message_matcher = "Type == 'load'"
address = "127.0.0.1:{closed}"
use_buffering = false

[upstream.retries]
delay = "100ms"
max_delay = "300ms"
"#
    );
    let mut h = Hekate::start_with_env(
        &dir,
        &config(&dir, port, Some(http), &outputs),
        &[port, http],
        &[("HEKATE_SHUTDOWN_TIMEOUT", "1")],
    );
    assert_eq!(
        get(http, "/health"),
        (200, "ok\n".to_string()),
        "no traffic yet"
    );
    send_load(port);
    let mut health = (0, String::new());
    let unhealthy = wait_for(Duration::from_secs(20), || {
        health = get(http, "/health");
        health.0 == 503
    });
    assert!(unhealthy, "still {health:?}");
    assert!(
        health.1.contains("output 'upstream' (TcpOutput)")
            && health.1.contains("has been trying to deliver"),
        "{}",
        health.1
    );
    assert!(
        !health.1.contains("'file'"),
        "the FileOutput delivers: {}",
        health.1
    );
    let metrics = get(http, "/metrics").1;
    assert!(metrics.contains("hekate_healthy 0"), "{metrics}");
    assert!(
        total(&metrics, "hekate_plugin_queue_messages", "upstream") > 0,
        "{metrics}"
    );
    // SIGTERM: what the output holds is reported undelivered.
    h.signal(libc::SIGTERM);
    let status = h.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", h.stderr());
}

#[test]
fn an_http_address_another_process_holds_is_refused_at_start() {
    let dir = temp_dir("metrics-taken");
    let port = free_tcp_port();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = holder.local_addr().unwrap().port();
    let mut h = Hekate::start(&dir, &config(&dir, port, Some(http), FILE_OUTPUT), &[]);
    let status = h.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    assert!(
        h.stderr().contains(&format!(
            "`http_address` 127.0.0.1:{http} in the [hekate] section cannot be served: it is in use by another process"
        )),
        "{}",
        h.stderr()
    );
}

#[test]
fn health_recovers_when_a_buffered_outputs_upstream_comes_back() {
    let dir = temp_dir("metrics-recover");
    let (port, http, up) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let outputs = format!(
        r#"{FILE_OUTPUT}
[upstream]
type = "TcpOutput"
message_matcher = "Type == 'load'"
address = "127.0.0.1:{up}"

[upstream.retries]
delay = "100ms"
max_delay = "300ms"
max_jitter = "10ms"
"#
    );
    let mut h = Hekate::start(
        &dir,
        &config(&dir, port, Some(http), &outputs),
        &[port, http],
    );
    send_load(port);
    let mut health = (0, String::new());
    let down = wait_for(Duration::from_secs(20), || {
        health = get(http, "/health");
        health.0 == 503
    });
    assert!(down, "still {health:?}");
    assert!(
        health.1.contains("output 'upstream' (TcpOutput)"),
        "{}",
        health.1
    );
    let sink = Sink::start_on(up, false);
    let recovered = wait_for(Duration::from_secs(20), || {
        health = get(http, "/health");
        health.0 == 200
    });
    assert!(recovered, "still {health:?}");
    // The sink keeps a connection's bytes once it closes.
    assert!(h.terminate().success());
    assert!(wait_for(Duration::from_secs(10), || {
        parse_stream(&sink.received.lock().unwrap()).len() as u64 == SENT
    }));
}

/// A tmux server on a socket of its own; killed (that server alone) when dropped.
struct Tmux(String);

impl Tmux {
    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0]).env("TERM", "xterm-256color");
        c
    }

    fn pane(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

#[test]
fn top_shows_rates_the_output_holding_a_core_back_and_health_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux cannot run; scripts/setup installs it"
        );
        eprintln!("SKIPPED: tmux is not installed; scripts/setup installs it");
        return;
    }
    let dir = temp_dir("metrics-top");
    let (port, http, closed) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let outputs = format!(
        r#"{FILE_OUTPUT}
[upstream]
type = "TcpOutput"
message_matcher = "Type == 'load'"
address = "127.0.0.1:{closed}"
use_buffering = false
"#
    );
    let mut h = Hekate::start_with_env(
        &dir,
        &config(&dir, port, Some(http), &outputs),
        &[port, http],
        &[("HEKATE_SHUTDOWN_TIMEOUT", "1")],
    );
    let tmux = Tmux(format!("hekate-top-{}", std::process::id()));
    let started = tmux
        .command()
        .args(["new-session", "-d", "-s", "top", "-x", "200", "-y", "50"])
        .arg(format!(
            "{} top --address :{http} --interval 0.5",
            env!("CARGO_BIN_EXE_hekate")
        ))
        .status()
        .unwrap();
    assert!(started.success());
    let mut pane = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            pane = tmux.pane();
            pane.contains("health: ok") && pane.contains("TcpInput")
        }),
        "{pane}"
    );
    send_load(port);
    let shown = wait_for(Duration::from_secs(20), || {
        pane = tmux.pane();
        pane.contains("health: NOT OK (503)")
            && pane.contains("! output 'upstream' (TcpOutput)")
            && pane
                .lines()
                .any(|l| l.contains("upstream (TcpOutput) on core") && l.contains("of its lane"))
    });
    assert!(shown, "{pane}");
    let file = pane
        .lines()
        .find(|l| l.starts_with("file "))
        .unwrap_or_else(|| panic!("no row for 'file':\n{pane}"));
    assert!(file.contains("FileOutput"), "{file}");
    let upstream = pane
        .lines()
        .find(|l| l.starts_with("upstream "))
        .unwrap_or_else(|| panic!("no row for 'upstream':\n{pane}"));
    let queue: u64 = upstream.split_whitespace().last().unwrap().parse().unwrap();
    assert!(queue > 0, "messages wait for upstream: {upstream}");
    h.signal(libc::SIGTERM);
    h.wait(Duration::from_secs(30));
}

#[test]
fn the_endpoint_serves_sixteen_connections_at_once_and_answers_only_get() {
    let dir = temp_dir("metrics-bounds");
    let (port, http) = (free_tcp_port(), free_tcp_port());
    let mut h = Hekate::start(
        &dir,
        &config(&dir, port, Some(http), FILE_OUTPUT),
        &[port, http],
    );
    // Sixteen idle connections hold every place (each answered once, so it is surely admitted).
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        assert!(s.read(&mut buf).unwrap() > 0);
        idle.push(s);
    }
    // The seventeenth is closed without an answer.
    let mut extra = TcpStream::connect(("127.0.0.1", http)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = write!(extra, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = extra.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    drop(idle);
    assert!(wait_for(Duration::from_secs(5), || get(http, "/metrics").0 == 200));
    // Only GET and HEAD.
    let mut post = TcpStream::connect(("127.0.0.1", http)).unwrap();
    write!(
        post,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    )
    .unwrap();
    let mut answer = String::new();
    post.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(h.terminate().success());
}

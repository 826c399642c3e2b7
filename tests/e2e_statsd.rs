//! statsd from real clients (`nc -u`, hekate-flood's statsd load, a TCP connection) through
//! StatsdInput, and Heka messages through StatFilter, into StatAccumInput → CarbonOutput →
//! Graphite's own carbon-cache, read back from the whisper files it writes with `whisper-fetch`:
//! every increment is accounted for.
//!
//! Each test starts a private carbon-cache (its own config, storage and ports under the test's
//! directory; scripts/setup installs graphite-carbon and python3-whisper).

mod common;

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A private carbon-cache on a free port, storing whisper files under `dir/storage`.
struct Carbon {
    child: Child,
    port: u16,
    whisper: PathBuf,
}

impl Carbon {
    fn start(dir: &Path) -> Carbon {
        Self::start_on(dir, free_tcp_port())
    }

    /// A private carbon-cache whose line receiver listens on `port`.
    fn start_on(dir: &Path, port: u16) -> Carbon {
        let conf = dir.join("carbon");
        let storage = dir.join("storage");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&storage).unwrap();
        let pickle = free_tcp_port();
        let query = free_tcp_port();
        std::fs::write(
            conf.join("carbon.conf"),
            format!(
                "[cache]\nSTORAGE_DIR = {s}/\nLOCAL_DATA_DIR = {s}/whisper/\nWHITELISTS_DIR = {s}/lists/\n\
                 CONF_DIR = {c}/\nLOG_DIR = {s}/log/\nPID_DIR = {s}/\nENABLE_LOGROTATION = False\n\
                 MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
                 LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\n\
                 ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
                 PICKLE_RECEIVER_PORT = {pickle}\nCACHE_QUERY_INTERFACE = 127.0.0.1\n\
                 CACHE_QUERY_PORT = {query}\nWHISPER_AUTOFLUSH = True\nCARBON_METRIC_INTERVAL = 0\n",
                s = storage.display(),
                c = conf.display(),
            ),
        )
        .unwrap();
        // One point per second for an hour: each flush of a 1 s interval is its own point.
        std::fs::write(
            conf.join("storage-schemas.conf"),
            "[everything]\npattern = .*\nretentions = 1s:1h\n",
        )
        .unwrap();
        let child = Command::new("carbon-cache")
            .arg(format!("--config={}", conf.join("carbon.conf").display()))
            .arg(format!(
                "--pidfile={}",
                storage.join("carbon.pid").display()
            ))
            .arg(format!("--logdir={}", storage.join("log").display()))
            .args(["--nodaemon", "start"])
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("carbon.out")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("carbon.err")).unwrap(),
            ))
            .spawn()
            .expect("carbon-cache runs (scripts/setup installs graphite-carbon)");
        let mut carbon = Carbon {
            child,
            port,
            whisper: storage.join("whisper"),
        };
        let up = wait_for(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !up {
            let _ = carbon.child.kill();
            panic!(
                "carbon-cache does not listen on {port}:\n{}",
                std::fs::read_to_string(dir.join("carbon.out")).unwrap_or_default()
            );
        }
        carbon
    }

    /// The whisper file of a metric.
    fn file(&self, metric: &str) -> PathBuf {
        self.whisper
            .join(metric.replace('.', "/"))
            .with_extension("wsp")
    }
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of every point of a whisper file since `from` (unix seconds), read by `whisper-fetch`.
fn whisper_sum(path: &Path, from: u64) -> f64 {
    if !path.exists() {
        return 0.0;
    }
    let out = Command::new("whisper-fetch")
        .arg(format!("--from={from}"))
        .arg(path)
        .output()
        .expect("whisper-fetch runs (scripts/setup installs python3-whisper)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum()
}

/// Every `count.wsp` under `dir`, recursively.
fn count_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            count_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "count.wsp") {
            out.push(p);
        }
    }
}

fn nc_udp(port: u16, text: &str) {
    let mut child = Command::new("nc")
        .args(["-u", "-w1", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("nc runs (scripts/setup installs netcat-openbsd)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// UDP datagrams the kernel dropped for want of receive-buffer room, system-wide.
fn udp_receive_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (head, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = head
        .split_whitespace()
        .position(|h| h == "RcvbufErrors")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn statsd_from_nc_flood_and_tcp_reaches_carbon_cache_with_every_increment() {
    let dir = temp_dir("statsd");
    let carbon = Carbon::start(&dir);
    let udp = free_udp_port();
    let tcp = free_tcp_port();
    let heka = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 1

[statsd_udp]
type = "StatsdInput"
address = "127.0.0.1:{udp}"

[statsd_tcp]
type = "StatsdInput"
net = "tcp"
address = "127.0.0.1:{tcp}"
max_msg_size = 1024

[StatAccumInput]
ticker_interval = 1
delete_idle_stats = true

[heka_in]
type = "TcpInput"
address = "127.0.0.1:{heka}"

[msg_stats]
type = "StatFilter"
message_matcher = "Type == 'e2e.msg'"

[msg_stats.Metric.count]
type = "Counter"
name = "filter.%Type%.%conn%"
value = "1"
replace_dot = true

[carbon]
type = "CarbonOutput"
message_matcher = "Type == 'heka.statmetric'"
address = "127.0.0.1:{carbon}"
tcp_keep_alive = true

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
        carbon = carbon.port,
    );
    let mut hekate = Hekate::start(&dir, &config, &[tcp, heka]);
    let start = now_s() - 5;

    // Heka messages made into stats by StatFilter.
    send_tcp(
        heka,
        &framed((0..100).map(|s| message("e2e.msg", 3, s, 10))),
    );

    // A real client, with malformed lines among good ones in one datagram.
    nc_udp(
        udp,
        "e2e.nc:3|c\na:b|c\n:1|c\nx:1|zz\nx:1|c|@abc\ne2e.nc:2|c|@0.5\ne2e.timer:10|ms\ne2e.timer:30|ms\ne2e.gauge:42|g\n",
    );
    // A 64 KiB datagram: only the lines within max_msg_size (512) count.
    let mut big = String::new();
    while big.len() < 65_000 {
        big.push_str("e2e.big:1|c\n");
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&big.as_bytes()[..65_000], ("127.0.0.1", udp))
        .unwrap();
    let big_kept = big.as_bytes()[..512]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as f64;

    // Metrics over TCP, one line longer than max_msg_size in the middle.
    {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        let mut load = String::new();
        for _ in 0..500 {
            load.push_str("e2e.tcp:1|c\n");
        }
        load.push_str(&"y".repeat(5000));
        load.push_str(":1|c\n");
        for _ in 0..500 {
            load.push_str("e2e.tcp:1|c\n");
        }
        s.write_all(load.as_bytes()).unwrap();
    }

    // hekate-flood's statsd load: `bench.c0.<logger>.<status>:1|c`, one per datagram.
    let mut load = hekate_bench::load::LoadSpec {
        format: hekate_bench::load::Format::Statsd,
        sizes: "64".parse().unwrap(),
        ..Default::default()
    };
    load.seed = 7;
    let mut flood = hekate_bench::flood::FloodConfig::new(
        load,
        format!("127.0.0.1:{udp}").parse().unwrap(),
        20_000,
    );
    flood.transport = hekate_bench::flood::Transport::Udp;
    flood.rate = Some(10_000.0);
    let drops_before = udp_receive_drops();
    let sent = hekate_bench::flood::run(&flood).unwrap();
    assert_eq!(sent.sent, 20_000, "{:?}", sent.errors);
    std::thread::sleep(Duration::from_millis(300));
    // UDP has no back-pressure: on a busy machine the kernel may drop datagrams hekate did not
    // read in time. Those are counted by the kernel (system-wide); anything else lost is not.
    let kernel_drops = udp_receive_drops() - drops_before;
    let expected = 20_000.0 - kernel_drops as f64;

    let bench_dir = carbon.whisper.join("stats/counters/bench");
    let bench_total = || {
        let mut files = Vec::new();
        count_files(&bench_dir, &mut files);
        files.iter().map(|f| whisper_sum(f, start)).sum::<f64>()
    };
    let all_in = wait_for(Duration::from_secs(40), || {
        bench_total() >= expected
            && whisper_sum(&carbon.file("stats.counters.e2e.tcp.count"), start) == 1000.0
            && whisper_sum(&carbon.file("stats.counters.e2e.nc.count"), start) == 7.0
            && whisper_sum(&carbon.file("stats.counters.e2e.big.count"), start) == big_kept
            && whisper_sum(&carbon.file("stats.counters.filter.e2e_msg.3.count"), start) == 100.0
    });
    assert!(
        all_in,
        "carbon holds {} of 20000 flood increments ({kernel_drops} datagrams dropped by the kernel), {} of 1000 TCP ones, {} of 7 from nc, {} of {big_kept} from the big datagram, {} of 100 from StatFilter\n{}",
        bench_total(),
        whisper_sum(&carbon.file("stats.counters.e2e.tcp.count"), start),
        whisper_sum(&carbon.file("stats.counters.e2e.nc.count"), start),
        whisper_sum(&carbon.file("stats.counters.e2e.big.count"), start),
        whisper_sum(&carbon.file("stats.counters.filter.e2e_msg.3.count"), start),
        hekate.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(bench_total() <= 20_000.0, "{} counted", bench_total());
    // Timers and gauges made it too.
    assert_eq!(
        whisper_sum(&carbon.file("stats.timers.e2e.timer.count"), start),
        2.0
    );
    assert_eq!(
        whisper_sum(&carbon.file("stats.timers.e2e.timer.mean"), start),
        20.0
    );
    assert_eq!(
        whisper_sum(&carbon.file("stats.gauges.e2e.gauge"), start),
        42.0
    );
    let info = Command::new("whisper-info")
        .arg(carbon.file("stats.gauges.e2e.gauge"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("retention: 3600"));

    // Bad input was counted, not fatal.
    let reports = dir.join("base").join("reports.hekad");
    let counted = wait_for(Duration::from_secs(10), || {
        last_report(&reports).is_some_and(|r| {
            report_value(&r, "inputs", "statsd_udp", "BadLines") == Some(4)
                && report_value(&r, "inputs", "statsd_udp", "TruncatedDatagrams") == Some(1)
                && report_value(&r, "inputs", "statsd_tcp", "LongLines") == Some(1)
        })
    });
    assert!(
        counted,
        "bad input not counted as expected: {:#?}",
        last_report(&reports).map(|r| r["inputs"].clone())
    );
    assert!(hekate.stderr().contains("bad statsd line"));
    assert!(hekate.terminate().success());
}

#[test]
fn a_carbon_that_starts_late_gets_every_count_and_hekate_keeps_receiving() {
    let dir = temp_dir("statsd-late");
    let carbon_port = free_tcp_port();
    let udp = free_udp_port();
    let tcp = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[statsd_tcp]
type = "StatsdInput"
net = "tcp"
address = "127.0.0.1:{tcp}"

[StatsdInput]
address = "127.0.0.1:{udp}"

[StatAccumInput]
ticker_interval = 1
delete_idle_stats = true

[carbon]
type = "CarbonOutput"
message_matcher = "Type == 'heka.statmetric'"
address = "127.0.0.1:{carbon_port}"
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[tcp]);
    let start = now_s() - 5;
    let mut client = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sent = 0u64;
    // Three seconds of counts while nothing listens on carbon's port.
    while Instant::now() < deadline {
        client.write_all(b"late.c:1|c\n").unwrap();
        sent += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    // Now carbon-cache comes up on that port.
    let carbon = Carbon::start_on(&dir, carbon_port);
    for _ in 0..100 {
        client.write_all(b"late.c:1|c\n").unwrap();
        sent += 1;
    }
    // And a datagram.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"late.c:1|c", ("127.0.0.1", udp)).unwrap();
    sent += 1;
    let got = || whisper_sum(&carbon.file("stats.counters.late.c.count"), start);
    let all_in = wait_for(Duration::from_secs(60), || got() == sent as f64);
    assert!(
        all_in,
        "carbon holds {} of {sent}\n{}",
        got(),
        hekate.stderr()
    );
    assert!(hekate.terminate().success());
}

#[test]
fn whisper_output_writes_files_graphites_tools_read() {
    let dir = temp_dir("statsd-whisper");
    let udp = free_udp_port();
    let tcp = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[statsd_tcp]
type = "StatsdInput"
net = "tcp"
address = "127.0.0.1:{tcp}"

[StatsdInput]
address = "127.0.0.1:{udp}"

[StatAccumInput]
ticker_interval = 1
delete_idle_stats = true

[per_second]
type = "WhisperOutput"
message_matcher = "Type == 'heka.statmetric'"
base_path = "seconds"
default_agg_method = 2
default_archive_info = [[0, 1, 3600], [0, 60, 60]]

[heka_defaults]
type = "WhisperOutput"
message_matcher = "Type == 'heka.statmetric'"
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[tcp]);
    let start = now_s() - 5;
    // Over TCP (no loss whatever the machine's load), then one datagram.
    let sent = 3000u64;
    {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        for _ in 0..sent - 1 {
            s.write_all(b"w.hits:1|c\n").unwrap();
        }
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"w.hits:1|c\nw.lat:12|ms", ("127.0.0.1", udp))
        .unwrap();
    let seconds = dir.join("base").join("seconds");
    let hits = seconds.join("stats/counters/w/hits/count.wsp");
    let all_in = wait_for(Duration::from_secs(20), || {
        whisper_sum(&hits, start) == sent as f64
    });
    assert!(
        all_in,
        "the whisper file holds {} of {sent}\n{}",
        whisper_sum(&hits, start),
        hekate.stderr()
    );
    let info = |path: &Path| {
        let out = Command::new("whisper-info").arg(path).output().unwrap();
        assert!(out.status.success(), "whisper-info {}", path.display());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let i = info(&hits);
    assert!(i.contains("aggregationMethod: sum"), "{i}");
    assert!(i.contains("xFilesFactor: 0.1"), "{i}");
    assert!(i.contains("secondsPerPoint: 1\n"), "{i}");
    assert!(i.contains("secondsPerPoint: 60\n"), "{i}");
    // Heka's default archives, average roll-up.
    let lat = dir
        .join("base")
        .join("whisper")
        .join("stats/timers/w/lat/mean.wsp");
    assert!(wait_for(Duration::from_secs(10), || lat.exists()));
    let i = info(&lat);
    assert!(i.contains("aggregationMethod: average"), "{i}");
    for spp in [60, 900, 3600, 43200] {
        assert!(i.contains(&format!("secondsPerPoint: {spp}\n")), "{i}");
    }
    assert!(wait_for(Duration::from_secs(10), || {
        whisper_sum(&lat, start - 120) == 12.0
    }));
    assert!(hekate.terminate().success());
}

/// 10,000 new names a second, three times, with room for 5,000: the accumulator keeps 5,000,
/// counts every other stat as dropped, and keeps emitting.
#[test]
fn ever_new_names_stay_within_max_names_and_are_counted() {
    let dir = temp_dir("statsd-names");
    let tcp = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 1

[StatsdInput]
net = "tcp"
address = "127.0.0.1:{tcp}"

[StatAccumInput]
ticker_interval = 1
max_names = 5000

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50

[stats]
type = "FileOutput"
message_matcher = "Type == 'heka.statmetric'"
path = "stats.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[tcp]);
    for round in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        let mut load = String::new();
        for i in 0..10_000 {
            load.push_str(&format!("names.r{round}.n{i}:1|c\n"));
        }
        s.write_all(load.as_bytes()).unwrap();
        drop(s);
        std::thread::sleep(Duration::from_secs(1));
    }
    let reports = dir.join("base").join("reports.hekad");
    let counted = wait_for(Duration::from_secs(10), || {
        last_report(&reports).is_some_and(|r| {
            report_value(&r, "inputs", "StatAccumInput", "StatNames") == Some(5000)
                && report_value(&r, "inputs", "StatAccumInput", "DroppedStats") == Some(25_000)
        })
    });
    assert!(
        counted,
        "{:#?}",
        last_report(&reports).map(|r| r["inputs"].clone())
    );
    // The ticks still report the 5,000 names held, split over several messages (each under
    // max_message_size).
    let stats = read_stream(&dir.join("base").join("stats.hekad"));
    assert!(stats.iter().any(|m| {
        m.payload
            .as_deref()
            .is_some_and(|p| p.contains("stats.statsd.numStats 5000 "))
    }));
    assert!(
        stats
            .iter()
            .all(|m| m.payload.as_deref().map_or(0, str::len) < 64 * 1024)
    );
    assert!(hekate.terminate().success());
}

/// Counts read just before SIGTERM are in the last emission, made at shutdown.
#[test]
fn stats_received_before_shutdown_are_emitted_on_the_way_out() {
    let dir = temp_dir("statsd-shutdown");
    let tcp = free_tcp_port();
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[StatsdInput]
net = "tcp"
address = "127.0.0.1:{tcp}"

[StatAccumInput]
ticker_interval = 60

[PayloadEncoder]

[stats]
type = "FileOutput"
message_matcher = "Type == 'heka.statmetric'"
path = "stats.txt"
encoder = "PayloadEncoder"
"#,
        base = dir.join("base").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[tcp]);
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    for _ in 0..1000 {
        s.write_all(b"last.words:1|c\n").unwrap();
    }
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    drop(s);
    let text = std::fs::read_to_string(dir.join("base").join("stats.txt")).unwrap();
    assert!(
        text.contains("stats.counters.last.words.count 1000 "),
        "{text}"
    );
}

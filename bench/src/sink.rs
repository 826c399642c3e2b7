//! The checking sink: receives what a pipeline delivers, checks every message's stamp and
//! measures latency.
//!
//! Sources: a TCP listener (one thread per accepted connection), a UDP socket, or a file (read to
//! its end, or followed while it grows). Formats: Heka-framed protobuf, text lines (newline or
//! octet-counted), or graphite plaintext (for statsd aggregators, where messages are summed and
//! only the sum can be checked).
//!
//! Reader threads parse a whole read at once and then take the shared lock once to record it, so
//! the lock is taken per read (up to 256 KiB), not per message. The receive time of every message
//! in a read is the time the read returned.
//!
//! With `arrivals`, every stamped message is also logged with its receive time
//! ([`crate::arrivals`]), for harnesses that must know which messages arrived (across sink
//! restarts, too). A TCP sink takes any number of connections, one after the other or at once:
//! a pipeline that reconnects (after its own restart, say) is read on the new connection.
//!
//! The sink stops when `count` stamped messages arrived (for graphite: when the matched values
//! sum to `count`), when nothing new arrived for `idle` after the first message, when a file read
//! without following ends, or at `timeout`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hekate_model::framing::{DEFAULT_MAX_MESSAGE_SIZE, HekaSplitter, SplitOutcome};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::arrivals::ArrivalLog;
use crate::check::{CheckSummary, LatencyRecorder, LatencySummary, SeqChecker};
use crate::flood::now_ns;
use crate::parse::{LineFraming, LineStep, Stamp, TextStamps, carbon_line, heka_stamp};

/// Where the sink reads from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Listen for TCP connections (port 0 picks a free port).
    Tcp(SocketAddr),
    /// Receive UDP datagrams.
    Udp(SocketAddr),
    /// Read a file; with `follow`, keep reading as it grows (it may not exist yet).
    File {
        /// The file.
        path: PathBuf,
        /// Keep reading at the end.
        follow: bool,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Tcp(a) => write!(f, "tcp://{a}"),
            Source::Udp(a) => write!(f, "udp://{a}"),
            Source::File { path, .. } => write!(f, "file://{}", path.display()),
        }
    }
}

/// What the received bytes are.
#[derive(Clone, Debug)]
pub enum SinkFormat {
    /// Heka-framed protobuf.
    Heka,
    /// Text lines carrying `conn=`/`seq=`/`sent_ns=` stamps.
    Lines(LineFraming),
    /// Graphite plaintext; the values of paths matching the pattern are summed.
    Carbon(Regex),
}

impl SinkFormat {
    fn name(&self) -> &'static str {
        match self {
            SinkFormat::Heka => "heka",
            SinkFormat::Lines(LineFraming::Newline) => "lines",
            SinkFormat::Lines(LineFraming::OctetCounted) => "octet-lines",
            SinkFormat::Carbon(_) => "carbon",
        }
    }
}

/// How a sink runs.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Where to read.
    pub source: Source,
    /// What to expect.
    pub format: SinkFormat,
    /// Stop after this many stamped messages (graphite: once the sum reaches it).
    pub count: Option<u64>,
    /// Stop when nothing new arrived for this long, after the first message.
    pub idle: Duration,
    /// Stop after this long in any case.
    pub timeout: Duration,
    /// Log every stamped message here ([`crate::arrivals`]).
    pub arrivals: Option<PathBuf>,
}

impl SinkConfig {
    /// A Heka sink on an ephemeral loopback TCP port.
    pub fn heka_tcp() -> Self {
        SinkConfig {
            source: Source::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
            format: SinkFormat::Heka,
            count: None,
            idle: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
            arrivals: None,
        }
    }
}

/// Framing trouble seen in the received streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramingTrouble {
    /// Bytes skipped as corrupt (not a record).
    pub skipped_bytes: u64,
    /// Records cut short at the end of a stream.
    pub truncated: u64,
    /// Records rejected (bad signature, unknown signer).
    pub rejected: u64,
}

/// Graphite totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarbonSummary {
    /// Lines parsed.
    pub lines: u64,
    /// Lines whose path matched.
    pub matched: u64,
    /// Sum of the matched values.
    pub sum: f64,
}

/// What a sink saw: the JSON `hekate-sink` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkReport {
    /// Where it read.
    pub source: String,
    /// What it expected.
    pub format: String,
    /// Why it stopped: `count`, `idle`, `eof` or `timeout`.
    pub exit: String,
    /// Connections accepted (TCP).
    pub connections: u64,
    /// Records or lines seen.
    pub records: u64,
    /// Records carrying a stamp.
    pub received: u64,
    /// Records without one (a pipeline's own messages, or unparsable ones).
    pub foreign: u64,
    /// Message bytes of the stamped records (no framing).
    pub message_bytes: u64,
    /// Receive time of the first stamped message, ns since the epoch.
    pub first_ns: u64,
    /// Receive time of the last stamped message.
    pub last_ns: u64,
    /// Seconds between the first and the last stamped message.
    pub elapsed_s: f64,
    /// Stamped messages per second over that span.
    pub msg_per_s: f64,
    /// Gigabits per second of message data over that span.
    pub gbit_per_s: f64,
    /// Sequence check.
    pub check: CheckSummary,
    /// Send-to-receive latency of the stamped messages.
    pub latency: Option<LatencySummary>,
    /// Framing trouble.
    pub framing: FramingTrouble,
    /// Graphite totals, in graphite mode.
    pub carbon: Option<CarbonSummary>,
}

/// Messages found in one read, recorded under the lock in one go.
#[derive(Default)]
struct Batch {
    stamps: Vec<(Stamp, u32)>,
    records: u64,
    foreign: u64,
    framing: FramingTrouble,
    carbon: CarbonSummary,
}

#[derive(Default)]
struct State {
    checker: SeqChecker,
    latency: LatencyRecorder,
    records: u64,
    received: u64,
    foreign: u64,
    message_bytes: u64,
    first_ns: u64,
    last_ns: u64,
    framing: FramingTrouble,
    carbon: CarbonSummary,
    connections: u64,
    last_progress: Option<Instant>,
    eof: bool,
    error: Option<String>,
    arrivals: Option<ArrivalLog>,
}

impl State {
    /// Records a batch received at `now` and empties it (keeping its allocation).
    fn apply(&mut self, batch: &mut Batch, now: u64) {
        let before = (self.received, self.carbon.sum);
        let mut stamps = std::mem::take(&mut batch.stamps);
        for &(stamp, len) in &stamps {
            self.checker.observe(stamp.conn, stamp.seq);
            self.latency.record(now.saturating_sub(stamp.sent_ns));
            self.message_bytes += u64::from(len);
        }
        if let Some(log) = &mut self.arrivals {
            let logged = log.record(
                now,
                stamps.iter().map(|(s, _)| (s.conn, s.seq)),
                batch.foreign,
            );
            if let Err(e) = logged {
                self.error.get_or_insert(format!("arrival log: {e}"));
                self.arrivals = None;
            }
        }
        self.received += stamps.len() as u64;
        self.records += batch.records;
        self.foreign += batch.foreign;
        self.framing.skipped_bytes += batch.framing.skipped_bytes;
        self.framing.truncated += batch.framing.truncated;
        self.framing.rejected += batch.framing.rejected;
        self.carbon.lines += batch.carbon.lines;
        self.carbon.matched += batch.carbon.matched;
        self.carbon.sum += batch.carbon.sum;
        if !stamps.is_empty() || batch.carbon.matched > 0 {
            if self.first_ns == 0 {
                self.first_ns = now;
            }
            self.last_ns = now;
        }
        if (self.received, self.carbon.sum) != before {
            self.last_progress = Some(Instant::now());
        }
        stamps.clear();
        *batch = Batch {
            stamps,
            ..Batch::default()
        };
    }
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A reader thread that panicked leaves consistent counters behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Turns bytes into records for one stream or datagram source.
enum Decoder {
    Heka(Box<HekaSplitter>),
    Lines(LineFraming, Box<TextStamps>),
    Carbon(Regex),
}

impl Decoder {
    fn new(format: &SinkFormat) -> Self {
        match format {
            SinkFormat::Heka => Decoder::Heka(Box::new(
                HekaSplitter::new(DEFAULT_MAX_MESSAGE_SIZE).with_skip_authentication(true),
            )),
            SinkFormat::Lines(f) => Decoder::Lines(*f, Box::default()),
            SinkFormat::Carbon(r) => Decoder::Carbon(r.clone()),
        }
    }

    /// The largest record, so the read buffer can always hold one.
    fn max_record(&self) -> usize {
        match self {
            Decoder::Heka(s) => s.max_record_size(),
            _ => 64 * 1024,
        }
    }

    /// Decodes every complete record at the front of `buf` into `batch`; returns the bytes used.
    fn decode(&mut self, buf: &[u8], batch: &mut Batch, at_end: bool) -> usize {
        let mut pos = 0;
        match self {
            Decoder::Heka(splitter) => loop {
                let step = if at_end {
                    splitter.finish(&buf[pos..])
                } else {
                    splitter.split(&buf[pos..])
                };
                pos += step.consumed;
                if let Some(region) = step.skipped {
                    batch.framing.skipped_bytes += region.len;
                }
                match step.outcome {
                    SplitOutcome::Record(record) => {
                        batch.records += 1;
                        match heka_stamp(record.message) {
                            Some(s) => batch.stamps.push((s, record.message.len() as u32)),
                            None => batch.foreign += 1,
                        }
                    }
                    SplitOutcome::Rejected(_) => batch.framing.rejected += 1,
                    SplitOutcome::NeedData => break,
                    SplitOutcome::End { truncated } => {
                        if let Some(region) = truncated {
                            batch.framing.truncated += 1;
                            batch.framing.skipped_bytes += region.len;
                        }
                        break;
                    }
                }
            },
            Decoder::Lines(framing, stamps) => loop {
                match framing.next(&buf[pos..]) {
                    LineStep::Record(line, used) => {
                        pos += used;
                        record_line(line, stamps, batch);
                    }
                    LineStep::Garbage(n) => {
                        pos += n;
                        batch.framing.skipped_bytes += n as u64;
                    }
                    LineStep::NeedData => {
                        if at_end && pos < buf.len() {
                            // A last line without its newline (or a datagram).
                            let rest = &buf[pos..];
                            pos = buf.len();
                            if *framing == LineFraming::Newline {
                                record_line(rest, stamps, batch);
                            } else {
                                batch.framing.truncated += 1;
                            }
                        }
                        break;
                    }
                }
            },
            Decoder::Carbon(pattern) => loop {
                match LineFraming::Newline.next(&buf[pos..]) {
                    LineStep::Record(line, used) => {
                        pos += used;
                        record_carbon(line, pattern, batch);
                    }
                    _ => {
                        if at_end && pos < buf.len() {
                            record_carbon(&buf[pos..], pattern, batch);
                            pos = buf.len();
                        }
                        break;
                    }
                }
            },
        }
        pos
    }
}

fn record_line(line: &[u8], stamps: &TextStamps, batch: &mut Batch) {
    if line.is_empty() {
        return;
    }
    batch.records += 1;
    match stamps.find(line) {
        Some(s) => batch.stamps.push((s, line.len() as u32)),
        None => batch.foreign += 1,
    }
}

fn record_carbon(line: &[u8], pattern: &Regex, batch: &mut Batch) {
    if line.is_empty() {
        return;
    }
    batch.records += 1;
    match carbon_line(line) {
        Some((path, value)) => {
            batch.carbon.lines += 1;
            if pattern.is_match(path) {
                batch.carbon.matched += 1;
                batch.carbon.sum += value;
            }
        }
        None => batch.foreign += 1,
    }
}

/// Reads a byte stream to its end (or, following a file, until the process stops).
fn pump(mut input: impl Read, mut decoder: Decoder, shared: &Shared, follow: bool) {
    let mut buf = vec![0u8; 256 * 1024 + decoder.max_record()];
    let mut len = 0;
    let mut batch = Batch::default();
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match input.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                shared.lock().error.get_or_insert(e.to_string());
                return;
            }
        };
        if n == 0 && follow {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let now = now_ns();
        len += n;
        let used = decoder.decode(&buf[..len], &mut batch, n == 0);
        buf.copy_within(used..len, 0);
        len -= used;
        shared.lock().apply(&mut batch, now);
        if n == 0 {
            return;
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawn a sink thread");
}

/// Runs a sink until it is done and returns what it saw. `on_ready` is called once the source
/// is open, with its description (e.g. `tcp://127.0.0.1:40123`, the actual port).
///
/// Reader threads that are still blocked (an open TCP connection) are left behind; the binary
/// exits after printing the report.
pub fn run(cfg: &SinkConfig, on_ready: impl FnOnce(&str)) -> io::Result<SinkReport> {
    let arrivals = match &cfg.arrivals {
        Some(path) => Some(ArrivalLog::create(path).map_err(|e| {
            io::Error::new(e.kind(), format!("arrival log {}: {e}", path.display()))
        })?),
        None => None,
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            arrivals,
            ..State::default()
        }),
    });
    let start = Instant::now();
    let source = match &cfg.source {
        Source::Tcp(addr) => {
            let listener = TcpListener::bind(addr)?;
            let local = listener.local_addr()?;
            let (shared, format) = (Arc::clone(&shared), cfg.format.clone());
            spawn("sink-accept", move || accept(listener, &format, &shared));
            Source::Tcp(local)
        }
        Source::Udp(addr) => {
            let socket = UdpSocket::bind(addr)?;
            grow_receive_buffer(&socket);
            let local = socket.local_addr()?;
            let (shared, format) = (Arc::clone(&shared), cfg.format.clone());
            spawn("sink-udp", move || receive(&socket, &format, &shared));
            Source::Udp(local)
        }
        Source::File { path, follow } => {
            let (shared, format) = (Arc::clone(&shared), cfg.format.clone());
            let (path2, follow, timeout) = (path.clone(), *follow, cfg.timeout);
            spawn("sink-file", move || {
                match open_when_present(&path2, follow, timeout) {
                    Ok(file) => pump(file, Decoder::new(&format), &shared, follow),
                    Err(e) => {
                        shared
                            .lock()
                            .error
                            .get_or_insert(format!("{}: {e}", path2.display()));
                    }
                }
                shared.lock().eof = true;
            });
            cfg.source.clone()
        }
    };
    let description = source.to_string();
    on_ready(&description);

    let exit = loop {
        thread::sleep(Duration::from_millis(5));
        let st = shared.lock();
        let done = match &cfg.format {
            SinkFormat::Carbon(_) => cfg.count.is_some_and(|c| st.carbon.sum >= c as f64),
            _ => cfg.count.is_some_and(|c| st.received >= c),
        };
        if done {
            break "count";
        }
        if st.last_progress.is_some_and(|t| t.elapsed() >= cfg.idle) {
            break "idle";
        }
        if st.eof {
            break "eof";
        }
        if start.elapsed() >= cfg.timeout {
            break "timeout";
        }
    };

    let st = shared.lock();
    let elapsed_s = st.last_ns.saturating_sub(st.first_ns) as f64 / 1e9;
    let rate = |x: f64| if elapsed_s > 0.0 { x / elapsed_s } else { 0.0 };
    Ok(SinkReport {
        source: description,
        format: cfg.format.name().into(),
        exit: st
            .error
            .as_ref()
            .map_or(exit.to_string(), |e| format!("{exit} (error: {e})")),
        connections: st.connections,
        records: st.records,
        received: st.received,
        foreign: st.foreign,
        message_bytes: st.message_bytes,
        first_ns: st.first_ns,
        last_ns: st.last_ns,
        elapsed_s,
        msg_per_s: rate(st.received as f64),
        gbit_per_s: rate(st.message_bytes as f64 * 8.0 / 1e9),
        check: st.checker.summary(),
        latency: st.latency.summary(),
        framing: st.framing,
        carbon: matches!(cfg.format, SinkFormat::Carbon(_)).then(|| st.carbon.clone()),
    })
}

fn accept(listener: TcpListener, format: &SinkFormat, shared: &Arc<Shared>) {
    for (i, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        shared.lock().connections += 1;
        let (shared, decoder) = (Arc::clone(shared), Decoder::new(format));
        spawn(&format!("sink-conn-{i}"), move || {
            pump(stream, decoder, &shared, false);
        });
    }
}

fn grow_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 16 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket, a pointer to a c_int and its size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
}

fn receive(socket: &UdpSocket, format: &SinkFormat, shared: &Shared) {
    let mut decoder = Decoder::new(format);
    let mut buf = vec![0u8; 65_536];
    let mut batch = Batch::default();
    loop {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                shared.lock().error.get_or_insert(e.to_string());
                return;
            }
        };
        let now = now_ns();
        // Each datagram stands alone: a record cut at its end is not continued by the next.
        decoder.decode(&buf[..n], &mut batch, true);
        if let Decoder::Heka(s) = &mut decoder {
            s.reset();
        }
        shared.lock().apply(&mut batch, now);
    }
}

fn open_when_present(path: &PathBuf, follow: bool, timeout: Duration) -> io::Result<File> {
    let deadline = Instant::now() + timeout;
    loop {
        match File::open(path) {
            Ok(f) => return Ok(f),
            Err(e)
                if follow && e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

//! The load generator's sending side: N connections, each a thread with its own [`Ring`],
//! writing runs of stamped records — flat out or at a set rate, for a count or a duration.
//!
//! TCP connections write up to `batch_bytes` (256 KiB by default) per syscall; UDP sends one
//! record per datagram, up to 64 datagrams per `sendmmsg`. The send time stamped into a run of
//! records is read once, just before the write.
//!
//! With `reconnect`, a TCP connection that fails (the receiver was killed) is opened again and
//! sending goes on with the next sequence number, at the set rate from the moment it reconnects
//! (no catching up). The records of the failed write count as sent: some may have reached the
//! receiver, the rest were lost in flight. [`request_stop`] (the binary calls it on SIGTERM and
//! SIGINT) ends a flood early, which then reports what it sent as usual.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::load::{LoadError, LoadSpec, MAX_SEQ, Ring};

/// Set by [`request_stop`].
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every running flood to stop after its current write (async-signal-safe: one atomic
/// store).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Nanoseconds since the epoch (CLOCK_REALTIME, the clock the sink reads too).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The transport of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One TCP stream per connection.
    Tcp,
    /// One UDP socket per connection, one record per datagram.
    Udp,
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(format!("unknown transport `{s}` (tcp, udp)")),
        }
    }
}

/// How a load is sent.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// What the messages look like.
    pub load: LoadSpec,
    /// TCP or UDP.
    pub transport: Transport,
    /// Where to send.
    pub address: SocketAddr,
    /// Number of connections (threads).
    pub connections: u32,
    /// Id of the first connection; the others count up from it.
    pub conn_base: u32,
    /// Messages to send in total (split evenly over the connections).
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Messages per second in total; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Bytes per TCP write.
    pub batch_bytes: usize,
    /// How long to keep retrying the first connect (the receiver may still be starting).
    pub connect_timeout: Duration,
    /// Give up on a TCP connection when a write makes no progress for this long (the receiver
    /// stopped reading); `None` waits forever.
    pub stall_timeout: Option<Duration>,
    /// Reconnect a TCP connection that failed, and go on sending (patience: `connect_timeout`).
    pub reconnect: bool,
    /// UDP: pack consecutive records into datagrams of up to this many bytes, as statsd
    /// clients do (a record alone may be longer); 0 sends one record per datagram.
    pub udp_pack: usize,
}

impl FloodConfig {
    /// A configuration sending `count` messages of `load` to `address` over one TCP connection.
    pub fn new(load: LoadSpec, address: SocketAddr, count: u64) -> Self {
        FloodConfig {
            load,
            transport: Transport::Tcp,
            address,
            connections: 1,
            conn_base: 0,
            count: Some(count),
            duration: None,
            rate: None,
            batch_bytes: 256 * 1024,
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Some(Duration::from_secs(30)),
            reconnect: false,
            udp_pack: 0,
        }
    }
}

/// What one connection sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnSent {
    /// Connection id.
    pub conn: u64,
    /// Messages sent (sequence numbers `0..sent`).
    pub sent: u64,
    /// Message bytes sent (no framing).
    pub message_bytes: u64,
    /// Bytes written (framing included).
    pub wire_bytes: u64,
    /// Times the connection was opened again after failing (`reconnect`).
    #[serde(default)]
    pub reconnects: u64,
}

/// What a flood did: the JSON `hekate-flood` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FloodReport {
    /// Message format.
    pub format: String,
    /// `tcp` or `udp`.
    pub transport: String,
    /// Destination.
    pub address: String,
    /// Size distribution.
    pub sizes: String,
    /// Messages sent.
    pub sent: u64,
    /// Message bytes sent (no framing).
    pub message_bytes: u64,
    /// Bytes written (framing included).
    pub wire_bytes: u64,
    /// First write, ns since the epoch.
    pub start_ns: u64,
    /// End of the last write, ns since the epoch.
    pub end_ns: u64,
    /// Seconds from first to last write.
    pub elapsed_s: f64,
    /// Messages per second written.
    pub msg_per_s: f64,
    /// Gigabits per second of message data written.
    pub gbit_per_s: f64,
    /// Reconnections, all connections together (`reconnect`).
    #[serde(default)]
    pub reconnects: u64,
    /// Per connection.
    pub connections: Vec<ConnSent>,
    /// Errors that stopped a connection early.
    pub errors: Vec<String>,
}

impl FloodReport {
    /// `(conn, sent)` of every connection, as [`crate::check::Delivery::compare`] takes it.
    pub fn sent_by_conn(&self) -> Vec<(u64, u64)> {
        self.connections.iter().map(|c| (c.conn, c.sent)).collect()
    }
}

/// Why a flood could not start.
#[derive(Debug, thiserror::Error)]
pub enum FloodError {
    /// The generated messages could not be built.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Bad arguments.
    #[error("{0}")]
    Config(String),
}

struct ConnResult {
    sent: ConnSent,
    start_ns: u64,
    end_ns: u64,
    error: Option<String>,
}

/// Sends the load; returns once every connection is done.
pub fn run(cfg: &FloodConfig) -> Result<FloodReport, FloodError> {
    if cfg.connections == 0 {
        return Err(FloodError::Config(
            "at least one connection is needed".into(),
        ));
    }
    if cfg.count.is_none() && cfg.duration.is_none() {
        return Err(FloodError::Config("give a count or a duration".into()));
    }
    if let Some(count) = cfg.count {
        if count / u64::from(cfg.connections) > MAX_SEQ {
            return Err(FloodError::Config(format!(
                "at most {MAX_SEQ} messages per connection"
            )));
        }
    }
    // Build every ring before the clock starts.
    let min_bytes = (cfg.batch_bytes * 2).max(1 << 20);
    let rings = (0..cfg.connections)
        .map(|i| Ring::build(&cfg.load, cfg.conn_base + i, min_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let n = u64::from(cfg.connections);
    let barrier = Arc::new(Barrier::new(cfg.connections as usize));
    let handles: Vec<_> = rings
        .into_iter()
        .enumerate()
        .map(|(i, ring)| {
            let cfg = cfg.clone();
            let barrier = Arc::clone(&barrier);
            let quota = cfg.count.map(|c| c / n + u64::from((i as u64) < c % n));
            thread::Builder::new()
                .name(format!("flood-{i}"))
                .spawn(move || run_connection(&cfg, ring, quota, &barrier))
                .expect("spawn a flood thread")
        })
        .collect();
    let results: Vec<ConnResult> = handles
        .into_iter()
        .map(|h| h.join().expect("flood thread panicked"))
        .collect();

    let mut report = FloodReport {
        format: cfg.load.format.name().into(),
        transport: match cfg.transport {
            Transport::Tcp => "tcp".into(),
            Transport::Udp => "udp".into(),
        },
        address: cfg.address.to_string(),
        sizes: cfg.load.sizes.to_string(),
        ..Default::default()
    };
    report.start_ns = results
        .iter()
        .filter(|r| r.start_ns > 0)
        .map(|r| r.start_ns)
        .min()
        .unwrap_or(0);
    report.end_ns = results.iter().map(|r| r.end_ns).max().unwrap_or(0);
    for r in results {
        report.sent += r.sent.sent;
        report.message_bytes += r.sent.message_bytes;
        report.wire_bytes += r.sent.wire_bytes;
        report.reconnects += r.sent.reconnects;
        report.connections.push(r.sent);
        report.errors.extend(r.error);
    }
    report.elapsed_s = report.end_ns.saturating_sub(report.start_ns) as f64 / 1e9;
    if report.elapsed_s > 0.0 {
        report.msg_per_s = report.sent as f64 / report.elapsed_s;
        report.gbit_per_s = report.message_bytes as f64 * 8.0 / report.elapsed_s / 1e9;
    }
    Ok(report)
}

/// A connected socket of either kind.
enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

fn connect(cfg: &FloodConfig) -> io::Result<Conn> {
    let deadline = Instant::now() + cfg.connect_timeout;
    loop {
        let attempt = match cfg.transport {
            Transport::Tcp => TcpStream::connect(cfg.address).and_then(|s| {
                s.set_nodelay(true)?;
                s.set_write_timeout(cfg.stall_timeout)?;
                Ok(Conn::Tcp(s))
            }),
            Transport::Udp => {
                let any: SocketAddr = if cfg.address.is_ipv4() {
                    "0.0.0.0:0".parse().expect("valid address")
                } else {
                    "[::]:0".parse().expect("valid address")
                };
                UdpSocket::bind(any).and_then(|s| {
                    s.connect(cfg.address)?;
                    Ok(Conn::Udp(s))
                })
            }
        };
        match attempt {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline || stop_requested() => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn run_connection(
    cfg: &FloodConfig,
    mut ring: Ring,
    quota: Option<u64>,
    barrier: &Barrier,
) -> ConnResult {
    let mut result = ConnResult {
        sent: ConnSent {
            conn: u64::from(ring.conn()),
            ..Default::default()
        },
        start_ns: 0,
        end_ns: 0,
        error: None,
    };
    let conn = connect(cfg);
    barrier.wait();
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!(
                "connection {}: cannot connect to {}: {e}",
                ring.conn(),
                cfg.address
            ));
            return result;
        }
    };
    let rate = cfg.rate.map(|r| r / f64::from(cfg.connections));
    // Under a rate, write at most ~1 ms worth of messages at once.
    let burst = rate.map_or(u64::MAX, |r| ((r / 1000.0) as u64).max(1));
    let start = Instant::now();
    // The rate schedule: `paced_from` messages had been sent at `pace_start` (moved on a
    // reconnect, so that the time spent reconnecting is not made up in a burst).
    let (mut pace_start, mut paced_from) = (start, 0u64);
    let mut idx = 0;
    let mut seq = 0u64;
    loop {
        let mut allowed = quota.map_or(u64::MAX, |q| q - seq);
        if allowed == 0 || stop_requested() {
            break;
        }
        if let Some(d) = cfg.duration {
            if start.elapsed() >= d {
                break;
            }
        }
        if let Some(r) = rate {
            let paced = pace_start.elapsed().as_secs_f64();
            let due = paced_from + (paced * r) as u64 + 1;
            if due <= seq {
                let wait = ((seq - paced_from) as f64 / r) - paced;
                if wait > 0.000_05 {
                    thread::sleep(Duration::from_secs_f64(wait.min(0.01)));
                } else {
                    thread::yield_now();
                }
                continue;
            }
            allowed = allowed.min(due - seq).min(burst);
        }
        let sent_ns = now_ns();
        if result.start_ns == 0 {
            result.start_ns = sent_ns;
        }
        let outcome = match &mut conn {
            Conn::Tcp(stream) => {
                let (n, range) = ring.prepare(idx, cfg.batch_bytes, allowed, seq, sent_ns);
                let wire = range.len();
                stream
                    .write_all(&ring.bytes()[range])
                    .map(|()| (n, wire))
                    .map_err(|e| (e, n))
            }
            Conn::Udp(socket) => {
                let most = if cfg.udp_pack > 0 { PACKED_RECORDS } else { 64 };
                let n = allowed.min(most).min((ring.len() - idx) as u64) as usize;
                for k in 0..n {
                    ring.stamp(idx + k, seq + k as u64, sent_ns);
                }
                if cfg.udp_pack > 0 {
                    send_packed(socket, &ring, idx, n, cfg.udp_pack, cfg.connect_timeout)
                } else {
                    send_datagrams(socket, &ring, idx, n, cfg.connect_timeout)
                }
                .map_err(|e| (e, 0))
            }
        };
        match outcome {
            Ok((n, wire)) => {
                result.sent.message_bytes += ring.message_bytes_of(idx, n);
                result.sent.wire_bytes += wire as u64;
                seq += n as u64;
                idx = (idx + n) % ring.len();
            }
            Err((e, _))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // A stall is not a failed connection: the receiver is alive and not reading.
                result.error = Some(format!(
                    "connection {}: no progress for {:.1} s after {seq} messages (the receiver stopped reading)",
                    ring.conn(),
                    cfg.stall_timeout.unwrap_or_default().as_secs_f64()
                ));
                break;
            }
            Err((e, n)) if cfg.reconnect && matches!(conn, Conn::Tcp(_)) => {
                // The records of the failed write are spent: some may have arrived.
                result.sent.message_bytes += ring.message_bytes_of(idx, n);
                seq += n as u64;
                idx = (idx + n) % ring.len();
                match connect(cfg) {
                    Ok(c) => {
                        conn = c;
                        result.sent.reconnects += 1;
                        (pace_start, paced_from) = (Instant::now(), seq);
                    }
                    Err(e2) => {
                        if !stop_requested() {
                            result.error = Some(format!(
                                "connection {}: send failed after {seq} messages ({e}), and \
                                 reconnecting failed: {e2}",
                                ring.conn()
                            ));
                        }
                        break;
                    }
                }
            }
            Err((e, _)) => {
                result.error = Some(format!(
                    "connection {}: send failed after {seq} messages: {e}",
                    ring.conn()
                ));
                break;
            }
        }
    }
    result.sent.sent = seq;
    result.end_ns = now_ns();
    if let Conn::Tcp(stream) = &conn {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    result
}

/// Records per packed send (`udp_pack`).
const PACKED_RECORDS: u64 = 4096;

/// Sends records `first..first + n` of `ring` packed into datagrams of up to `pack` bytes (one
/// iovec per record), with `sendmmsg`. A refused destination is retried until `patience` runs
/// out.
fn send_packed(
    socket: &UdpSocket,
    ring: &Ring,
    first: usize,
    n: usize,
    pack: usize,
    patience: Duration,
) -> io::Result<(usize, usize)> {
    use std::os::fd::AsRawFd;

    let mut iov: Vec<libc::iovec> = Vec::with_capacity(n);
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let (mut start, mut bytes, mut wire) = (0, 0, 0);
    for k in 0..n {
        let rec = ring.record(first + k);
        if k > start && bytes + rec.len() > pack {
            groups.push((start, k));
            (start, bytes) = (k, 0);
        }
        bytes += rec.len();
        wire += rec.len();
        iov.push(libc::iovec {
            iov_base: rec.as_ptr() as *mut libc::c_void,
            iov_len: rec.len(),
        });
    }
    if n > start {
        groups.push((start, n));
    }
    let mut msgs: Vec<libc::mmsghdr> = groups
        .iter()
        .map(|&(a, b)| {
            // SAFETY: mmsghdr is a plain C struct for which all-zero is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov[a..].as_mut_ptr();
            m.msg_hdr.msg_iovlen = b - a;
            m
        })
        .collect();
    let deadline = Instant::now() + patience;
    let mut done = 0;
    while done < msgs.len() {
        let batch = (msgs.len() - done).min(1024);
        // SAFETY: `msgs[done..]` are initialised headers pointing into `iov`, whose buffers
        // borrow `ring`; all alive for the whole call; the socket is connected.
        let r = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr().add(done),
                batch as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock
                    if Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                _ => return Err(e),
            }
        }
        done += r as usize;
    }
    Ok((n, wire))
}

/// Sends records `first..first + n` of `ring` as one datagram each, with `sendmmsg`. A refused
/// destination (nobody listening yet) is retried until `patience` runs out.
fn send_datagrams(
    socket: &UdpSocket,
    ring: &Ring,
    first: usize,
    n: usize,
    patience: Duration,
) -> io::Result<(usize, usize)> {
    use std::os::fd::AsRawFd;

    const MAX: usize = 64;
    let n = n.min(MAX);
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero is a valid value.
    let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
    let mut wire = 0;
    for (k, (v, m)) in iov.iter_mut().zip(msgs.iter_mut()).take(n).enumerate() {
        let rec = ring.record(first + k);
        wire += rec.len();
        v.iov_base = rec.as_ptr() as *mut libc::c_void;
        v.iov_len = rec.len();
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let deadline = Instant::now() + patience;
    let mut done = 0;
    while done < n {
        // SAFETY: `msgs[done..n]` are initialised headers pointing at `iov`, whose buffers borrow
        // `ring`, alive for the whole call; the socket is connected, so no address is needed.
        let r = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr().add(done),
                (n - done) as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock
                    if Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                _ => return Err(e),
            }
        }
        done += r as usize;
    }
    Ok((n, wire))
}

//! TcpOutput: sends encoded messages to a TCP address, e.g. an upstream hekate or hekad, over
//! plain TCP or TLS.
//!
//! **Disk buffering** (`use_buffering`, true by default, as in Heka): the output is one
//! instance (on one worker core) fed through a disk queue in
//! `<base_dir>/output_queue/<name>/` (Heka's layout, readable with `hekate queue check|show`
//! and `hekate cat`). Every message routed to it is appended to the queue at once (and written
//! to the kernel after each batch, so it survives kill -9), whatever the upstream does: a dead
//! or slow upstream holds up neither the inputs nor the outputs beside it. The connection sends
//! from the queue, in order, and the queue's read position moves only past messages the
//! upstream confirmed: its TCP acknowledged their last byte and the connection was still up
//! [`CONFIRM_DELAY`] later (until then they are kept, up to [`UNCONFIRMED_LIMIT`], and sent again
//! when the connection fails). The checkpoint follows at most every 50 ms, so after a crash what
//! was in flight may be sent again (at least once, never lost). At shutdown what
//! was not sent stays in the queue ("N messages kept in …, delivered after restart") and goes
//! first after the restart. `[name.buffering]` sets `max_file_size` (512 MiB),
//! `max_buffer_size` (0: unlimited), `full_action` ("shutdown", or "drop", "block") for a full
//! queue, and `cursor_update_count` (when the subsection is present, its unset keys take the
//! generic defaults, as in Heka).
//!
//! With `use_buffering = false` one instance runs on every worker shard, each with its own
//! connection. Messages are encoded (and framed) into a buffer that is sent after every batch.
//! When the connection fails the output reconnects, waiting `retries.delay` (doubling up to
//! `retries.max_delay`, plus up to `retries.max_jitter`) between attempts, and resends from the
//! first record the peer may not have received whole. While it is disconnected or the peer does
//! not read, it takes no new message: the rings fill and the inputs stop reading (back-pressure;
//! nothing is dropped) — unless `[name.buffering] full_action` is "drop" (what its full lane
//! cannot take is dropped and counted, and the other outputs go on) or "shutdown". After
//! `retries.max_retries` failed attempts (default: retry forever) the buffered messages are
//! dropped and counted.
//!
//! With `use_tls = true` each connection makes a TLS handshake (rustls: TLS 1.2 and 1.3) after
//! connecting, checking the server's certificate against `tls.root_cafile` (default: the
//! system's CA certificates) and `tls.server_name` (default: the host of `address`); a failed
//! handshake is retried like a failed connection. The kernel counts TLS bytes, not records, so
//! over TLS written records are confirmed when the peer acknowledged everything sent so far.
//!
//! ```toml
//! [upstream]
//! type = "TcpOutput"
//! message_matcher = "Type != 'heka.counter-output'"
//! address = "127.0.0.1:5566"
//! keep_alive = true
//! reconnect_after = 0
//!
//! [upstream.buffering]
//! max_buffer_size = "1GiB"
//! full_action = "block"
//! cursor_update_count = 50
//!
//! [upstream.retries]
//! delay = "250ms"
//! max_delay = "30s"
//! max_jitter = "500ms"
//! max_retries = -1
//! ```
//!
//! TLS to an upstream whose certificate is signed by one's own CA, with a client certificate:
//!
//! ```toml
//! [tls_upstream]
//! type = "TcpOutput"
//! message_matcher = "TRUE"
//! address = "upstream.example.com:5566"
//! use_tls = true
//!
//! [tls_upstream.tls]
//! root_cafile = "/etc/hekate/upstream-ca.pem"
//! cert_file = "/etc/hekate/client.pem"
//! key_file = "/etc/hekate/client-key.pem"
//! # server_name = "upstream.example.com"   (default: the host of address)
//! ```
//!
//! Options: `address` (required), `local_address` (the address to connect from), `keep_alive`
//! (false), `keep_alive_period` (7200 s), `reconnect_after` (0: never; else reconnect after this
//! many messages), `encoder` (ProtobufEncoder), `use_framing` (true with ProtobufEncoder),
//! `retries`, `use_tls` (false) with Heka's `[tls]` options (`hekate plugins TcpOutput` lists
//! them), `use_buffering` (true) with `[buffering]`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use hekate_config::{BufferingOptions, ConfigError, PluginSection, RetryOptions};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, OptionSpec, Output, OutputError, OutputPlugin,
    Placement, PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{EncodedWriter, Encoding};
use crate::common::{address_option, set_keepalive};
use crate::tls::{ClientTls, HANDSHAKE_TIMEOUT, TlsOptions, with_tls_options, within};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "TcpOutput",
    source: include_str!("tcp.rs"),
    options,
    default_matcher: None,
    build,
};

/// The buffer is sent once it holds this much, even inside a batch.
const BUFFER_LIMIT: usize = 256 * 1024;
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS close waits for the server to close its end.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// A message counts as delivered once the peer's TCP acknowledged its last byte and the
/// connection was still up this long after: an upstream that accepts and then resets (it
/// crashed, or closed with unread data) threw acknowledged bytes away, and they are sent again.
/// The Heka protocol has no acknowledgement of its own; what an upstream read and then lost is
/// beyond what a sender can see.
const CONFIRM_DELAY: Duration = Duration::from_millis(50);
/// How often the output looks for acknowledgements while messages wait for them.
const CONFIRM_POLL: Duration = Duration::from_millis(5);
/// Bytes written but not yet confirmed at most; beyond, sending waits for confirmations (they
/// are kept in memory to be sent again).
const UNCONFIRMED_LIMIT: usize = 16 * 1024 * 1024;
/// Released chunk buffers kept for reuse.
const SPARE_CHUNKS: usize = 4;

fn options() -> Vec<OptionSpec> {
    with_tls_options(options_of::<Options>())
}

fn default_keep_alive_period() -> u32 {
    7200
}

/// TcpOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Where to connect.
    address: String,
    /// Local address to bind (not supported yet).
    #[serde(default)]
    local_address: Option<String>,
    /// Speak TLS: every connection makes a TLS handshake, checking the server's certificate.
    #[serde(default)]
    use_tls: bool,
    /// TLS settings (the `tls.*` options), used when `use_tls` is true.
    #[serde(default)]
    tls: Option<TlsOptions>,
    /// TCP keep-alive.
    #[serde(default)]
    keep_alive: bool,
    /// Keep-alive idle period, in seconds.
    #[serde(default = "default_keep_alive_period")]
    keep_alive_period: u32,
    /// Reconnect after this many messages (0 = never).
    #[serde(default)]
    reconnect_after: u64,
}

#[derive(Debug)]
struct TcpOutputPlugin {
    address: SocketAddr,
    local_address: Option<SocketAddr>,
    keep_alive: Option<u32>,
    reconnect_after: u64,
    retries: RetryOptions,
    encoding: Encoding,
    tls: Option<ClientTls>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let common = section.output().cloned().unwrap_or_default();
    let local_address = match &opts.local_address {
        Some(a) => Some(address_option(section, "local_address", a)?),
        None => None,
    };
    Ok(Built::Output(Arc::new(TcpOutputPlugin {
        address: address_option(section, "address", &opts.address)?,
        local_address,
        keep_alive: opts.keep_alive.then_some(opts.keep_alive_period),
        reconnect_after: opts.reconnect_after,
        retries: common.retries,
        encoding: Encoding::from_section(section, ctx, Some("ProtobufEncoder"))?,
        tls: {
            opts.tls
                .iter()
                .flat_map(|t| t.files())
                .for_each(|f| ctx.reads_file(f));
            crate::tls::client_config(section, opts.use_tls, opts.tls.as_ref(), &opts.address)?
        },
    })))
}

impl OutputPlugin for TcpOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::PerShard
    }

    fn use_buffering_default(&self) -> bool {
        true
    }

    fn buffering_defaults(&self) -> BufferingOptions {
        BufferingOptions {
            cursor_update_count: 50,
            ..BufferingOptions::default()
        }
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        Ok(Box::new(TcpOutput {
            name: ctx.name.clone(),
            address: self.address,
            local_address: self.local_address,
            keep_alive: self.keep_alive,
            reconnect_after: self.reconnect_after,
            retries: self.retries,
            tls: self.tls.as_ref().map(|t| {
                (
                    futures_rustls::TlsConnector::from(Arc::clone(&t.config)),
                    t.server_name.clone(),
                )
            }),
            writer: self.encoding.writer(),
            conn: None,
            since_connect: 0,
            buf: Vec::with_capacity(BUFFER_LIMIT + 64 * 1024),
            ends: Vec::new(),
            sent: 0,
            conn_written: 0,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            inflight_records: 0,
            acked: VecDeque::new(),
            next_poll: Instant::now(),
            spare: Vec::new(),
            confirmed_since_connect: false,
            lost_pause: Duration::ZERO,
            pause_before_reconnect: None,
            written: 0,
            total_written: 0,
            reconnects: 0,
            resent: 0,
        }))
    }
}

struct TcpOutput {
    name: String,
    address: SocketAddr,
    local_address: Option<SocketAddr>,
    keep_alive: Option<u32>,
    reconnect_after: u64,
    retries: RetryOptions,
    /// The TLS connector and the server's name, when `use_tls`.
    tls: Option<(
        futures_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    writer: EncodedWriter,
    conn: Option<Connection>,
    /// Records sent on the current connection (for `reconnect_after`).
    since_connect: u64,
    /// Records not yet written whole into the current connection.
    buf: Vec<u8>,
    /// End offset of each record in `buf`.
    ends: Vec<usize>,
    /// Bytes of `buf` written into the current connection.
    sent: usize,
    /// Bytes written into the current connection.
    conn_written: u64,
    /// What was written whole and waits for the peer's confirmation, oldest first.
    inflight: VecDeque<Chunk>,
    inflight_bytes: usize,
    inflight_records: u64,
    /// How far (the connection's byte count) the peer's TCP had acknowledged, and when that was
    /// first seen; confirmed once [`CONFIRM_DELAY`] old.
    acked: VecDeque<(u64, Instant)>,
    /// When to look for acknowledgements again.
    next_poll: Instant,
    /// Released chunks' buffers, for the next ones.
    spare: Vec<(Vec<u8>, Vec<usize>)>,
    /// Whether the peer confirmed anything since the connection was made.
    confirmed_since_connect: bool,
    /// The pause after the last connection lost without a confirmation (doubles each time).
    lost_pause: Duration,
    pause_before_reconnect: Option<Duration>,
    written: u64,
    total_written: u64,
    reconnects: u64,
    /// Messages sent again after a connection lost them unconfirmed.
    resent: u64,
}

/// Connects to `remote` from `local` (`local_address`): the socket is bound and connected on
/// the shard's blocking-call thread, then handed to the shard's reactor.
async fn connect_from(
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<glommio::net::TcpStream, String> {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    let fd = glommio::executor()
        .spawn_blocking(move || -> std::io::Result<std::os::fd::RawFd> {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(remote),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.bind(&local.into())?;
            socket.connect_timeout(&remote.into(), CONNECT_TIMEOUT)?;
            socket.set_nonblocking(true)?;
            Ok(socket.into_raw_fd())
        })
        .await
        .map_err(|e| format!("from {local}: {e}"))?;
    // SAFETY: `fd` is a connected TCP socket nobody else owns.
    Ok(unsafe { glommio::net::TcpStream::from_raw_fd(fd) })
}

/// A connection to the peer, plain or TLS.
enum Connection {
    Plain(glommio::net::TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<glommio::net::TcpStream>>),
}

impl Connection {
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd as _;
        match self {
            Connection::Plain(s) => s.as_raw_fd(),
            Connection::Tls(s) => s.get_ref().0.as_raw_fd(),
        }
    }

    /// Writes some of `buf`; what it returns has reached the kernel (TLS: encrypted and
    /// flushed), so that a failed connection resends from the first record not sent whole.
    async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Connection::Plain(s) => s.write(buf).await,
            Connection::Tls(s) => {
                let n = s.write(buf).await?;
                s.flush().await?;
                Ok(n)
            }
        }
    }

    /// Closes the connection (TLS: after a close_notify).
    async fn close(&mut self) {
        match self {
            Connection::Plain(s) => {
                let _ = s.close().await;
            }
            Connection::Tls(s) => {
                if s.close().await.is_err() {
                    return;
                }
                // The server's TLS 1.3 session tickets lie unread in the socket, and closing a
                // socket with unread bytes sends a reset, which may make the server drop what
                // it has not read yet. So read until the server closes its end (it has then
                // read everything), for a short while.
                let _ = within(CLOSE_DRAIN_TIMEOUT, async {
                    let mut sink = [0u8; 1024];
                    while let Ok(1..) = s.read(&mut sink).await {}
                })
                .await;
            }
        }
    }
}

fn jitter(max: Duration) -> Duration {
    let nanos = max.as_nanos() as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(fastrand::u64(..nanos))
}

impl TcpOutput {
    /// One attempt: connects, and makes the TLS handshake when the output speaks TLS.
    async fn open(&self) -> Result<Connection, String> {
        let stream = match self.local_address {
            None => glommio::net::TcpStream::connect_timeout(self.address, CONNECT_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?,
            Some(local) => connect_from(local, self.address).await?,
        };
        if let Some(period) = self.keep_alive {
            use std::os::fd::AsRawFd as _;
            if let Err(e) = set_keepalive(stream.as_raw_fd(), period) {
                tracing::warn!("Output '{}': cannot turn on keep-alive: {e}", self.name);
            }
        }
        let _ = stream.set_nodelay(true);
        let Some((connector, server_name)) = &self.tls else {
            return Ok(Connection::Plain(stream));
        };
        match within(
            HANDSHAKE_TIMEOUT,
            connector.connect(server_name.clone(), stream),
        )
        .await
        {
            Some(Ok(tls)) => Ok(Connection::Tls(Box::new(tls))),
            Some(Err(e)) => Err(format!("TLS handshake failed: {e}")),
            None => Err(format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}")),
        }
    }

    /// Connects, retrying per the `retries` options. `Err` once `max_retries` is exhausted.
    async fn connect(&mut self) -> Result<(), String> {
        let mut delay = self.retries.delay;
        let mut attempt: u64 = 0;
        loop {
            match self.open().await {
                Ok(stream) => {
                    if attempt > 0 {
                        tracing::info!("Output '{}': connected to {}", self.name, self.address);
                    }
                    self.conn = Some(stream);
                    self.since_connect = 0;
                    return Ok(());
                }
                Err(e) => {
                    attempt += 1;
                    if self.retries.max_retries.is_some_and(|max| attempt > max) {
                        return Err(format!(
                            "cannot connect to {} after {attempt} attempts: {e}",
                            self.address
                        ));
                    }
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(
                            "Output '{}': cannot connect to {} ({e}); retrying in {:?}",
                            self.name,
                            self.address,
                            delay
                        );
                    }
                    glommio::timer::sleep(delay + jitter(self.retries.max_jitter)).await;
                    delay = (delay * 2).min(self.retries.max_delay.max(self.retries.delay));
                }
            }
        }
    }

    /// Sends the buffer, then looks at what the peer acknowledged; returns once the buffer is
    /// written and fewer than [`UNCONFIRMED_LIMIT`] bytes wait for confirmation. A connection
    /// that fails or is reset is replaced, and what it had not confirmed is sent again.
    async fn send(&mut self) -> Result<(), OutputError> {
        loop {
            if self.sent < self.buf.len() {
                if self.conn.is_none() {
                    if let Some(pause) = self.pause_before_reconnect.take() {
                        glommio::timer::sleep(pause).await;
                    }
                    if let Err(e) = self.connect().await {
                        return Err(self.drop_everything(e));
                    }
                }
                let conn = self.conn.as_mut().expect("connected above");
                let mut failed = None;
                while self.sent < self.buf.len() {
                    match conn.write(&self.buf[self.sent..]).await {
                        Ok(0) => {
                            failed = Some("the connection was closed".to_string());
                            break;
                        }
                        Ok(n) => {
                            self.sent += n;
                            self.conn_written += n as u64;
                        }
                        Err(e) => {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                }
                if let Some(e) = failed {
                    self.connection_lost(&e);
                    continue;
                }
                self.seal_chunk();
            }
            if !self.inflight.is_empty()
                && let Err(e) = self.poll_confirmations()
            {
                self.connection_lost(&e);
                continue;
            }
            if self.inflight_bytes >= UNCONFIRMED_LIMIT {
                glommio::timer::sleep(CONFIRM_POLL).await;
                continue;
            }
            if self.reconnect_after > 0
                && self.since_connect >= self.reconnect_after
                && self.inflight.is_empty()
            {
                if let Some(mut c) = self.conn.take() {
                    c.close().await;
                }
                self.reconnects += 1;
            }
            return Ok(());
        }
    }

    /// The buffer is written whole: it waits, as one chunk, for the peer to confirm it.
    fn seal_chunk(&mut self) {
        let (mut data, mut ends) = self.spare.pop().unwrap_or_default();
        std::mem::swap(&mut data, &mut self.buf);
        std::mem::swap(&mut ends, &mut self.ends);
        self.inflight_bytes += data.len();
        self.inflight_records += ends.len() as u64;
        self.since_connect += ends.len() as u64;
        self.inflight.push_back(Chunk {
            data,
            ends,
            end: self.conn_written,
        });
        self.sent = 0;
    }

    /// Releases the chunks the peer confirmed: its TCP acknowledged their last byte at least
    /// [`CONFIRM_DELAY`] ago and the connection is still up. `Err` when it is not (a reset).
    fn poll_confirmations(&mut self) -> Result<(), String> {
        let now = Instant::now();
        self.next_poll = now + CONFIRM_POLL;
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        let fd = conn.raw_fd();
        // The send queue first, then the state: a reset empties the queue, and the state seen
        // afterwards tells whether the count was taken on a live connection.
        let unacked = send_queue_bytes(fd).map_err(|e| e.to_string())?;
        let peer_closed = match connection_state(fd) {
            State::Established => false,
            State::PeerClosed => true,
            State::Gone => return Err("the connection was reset".into()),
        };
        let acked = match conn {
            Connection::Plain(_) => self.conn_written.saturating_sub(unacked),
            // The kernel counts TLS records, not our bytes: only an empty queue says how far.
            Connection::Tls(_) if unacked == 0 => self.conn_written,
            Connection::Tls(_) => self.acked.back().map_or(0, |a| a.0),
        };
        if self.acked.back().is_none_or(|a| a.0 < acked) {
            self.acked.push_back((acked, now));
        }
        let mut confirmed = None;
        while let Some(&(offset, seen)) = self.acked.front() {
            if now.saturating_duration_since(seen) < CONFIRM_DELAY && !peer_closed {
                break;
            }
            confirmed = Some(offset);
            self.acked.pop_front();
        }
        if let Some(offset) = confirmed {
            // Still the newest known acknowledgement, for the next polls' chunks.
            if self.acked.is_empty() {
                self.acked.push_back((offset, now - CONFIRM_DELAY));
            }
            while self.inflight.front().is_some_and(|c| c.end <= offset) {
                let chunk = self.inflight.pop_front().expect("checked");
                self.release(chunk);
            }
        }
        if peer_closed {
            // The peer closed its end (FIN). It would have reset the connection had it closed
            // with bytes unread, so what it acknowledged is read (confirmed above); what it did
            // not acknowledge goes again on a new connection.
            if !self.inflight.is_empty() {
                return Err("the peer closed the connection".into());
            }
            self.conn = None;
            self.conn_written = 0;
            self.acked.clear();
        }
        Ok(())
    }

    /// The peer has a chunk's records: they count as written.
    fn release(&mut self, mut chunk: Chunk) {
        let records = chunk.ends.len() as u64;
        self.inflight_bytes -= chunk.data.len();
        self.inflight_records -= records;
        self.written += records;
        self.total_written += records;
        self.confirmed_since_connect = true;
        if self.spare.len() < SPARE_CHUNKS && chunk.data.capacity() <= 2 * BUFFER_LIMIT {
            chunk.data.clear();
            chunk.ends.clear();
            self.spare.push((chunk.data, chunk.ends));
        }
    }

    /// The connection failed: what it had not confirmed goes back in front of the buffer, to be
    /// sent again on the next connection.
    fn connection_lost(&mut self, why: &str) {
        let resent = self.inflight_records;
        tracing::warn!(
            "Output '{}': sending to {} failed: {why}; reconnecting{}",
            self.name,
            self.address,
            if resent > 0 {
                format!(" and sending {resent} unconfirmed messages again")
            } else {
                String::new()
            }
        );
        self.conn = None;
        self.reconnects += 1;
        self.resent += resent;
        if !self.inflight.is_empty() {
            let mut buf = Vec::with_capacity(self.inflight_bytes + self.buf.len());
            let mut ends = Vec::with_capacity(self.inflight_records as usize + self.ends.len());
            for chunk in self.inflight.drain(..) {
                let shift = buf.len();
                ends.extend(chunk.ends.iter().map(|e| e + shift));
                buf.extend_from_slice(&chunk.data);
            }
            let shift = buf.len();
            ends.extend(self.ends.iter().map(|e| e + shift));
            buf.extend_from_slice(&self.buf);
            self.buf = buf;
            self.ends = ends;
            self.inflight_bytes = 0;
            self.inflight_records = 0;
        }
        self.sent = 0;
        self.conn_written = 0;
        self.acked.clear();
        // A peer that took nothing on this connection is not reconnected to at once.
        if !std::mem::replace(&mut self.confirmed_since_connect, false) {
            let pause = self.lost_pause.max(self.retries.delay);
            self.pause_before_reconnect = Some(pause);
            self.lost_pause = (pause * 2).min(self.retries.max_delay.max(self.retries.delay));
        } else {
            self.lost_pause = Duration::ZERO;
        }
    }

    /// The connection cannot be made again (`max_retries`): everything held is dropped.
    fn drop_everything(&mut self, e: String) -> OutputError {
        let dropped = self.buffered() + self.inflight_records;
        self.buf.clear();
        self.ends.clear();
        self.sent = 0;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.inflight_records = 0;
        OutputError {
            message: e,
            dropped,
        }
    }
}

/// Bytes the socket holds that the peer's TCP has not acknowledged (SIOCOUTQ).
fn send_queue_bytes(fd: std::os::fd::RawFd) -> std::io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is an open socket; TIOCOUTQ (= SIOCOUTQ) writes one int.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n.max(0) as u64)
}

/// What the kernel says of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Established,
    /// The peer closed its end (FIN): it read everything it acknowledged.
    PeerClosed,
    /// Reset, failed or closed: what it acknowledged may be lost.
    Gone,
}

fn connection_state(fd: std::os::fd::RawFd) -> State {
    // SAFETY: `tcp_info` is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: as above; `fd` is an open TCP socket.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    const TCP_ESTABLISHED: u8 = 1;
    const TCP_CLOSE_WAIT: u8 = 8;
    match (rc, info.tcpi_state) {
        (0, TCP_ESTABLISHED) => State::Established,
        (0, TCP_CLOSE_WAIT) => State::PeerClosed,
        _ => State::Gone,
    }
}

/// Bytes written whole on the current connection, waiting for the peer's confirmation.
struct Chunk {
    data: Vec<u8>,
    /// End offset of each record in `data`.
    ends: Vec<usize>,
    /// The connection's byte count at the chunk's end.
    end: u64,
}

impl Output for TcpOutput {
    #[inline]
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        if self.writer.write(msg, &mut self.buf)? {
            self.ends.push(self.buf.len());
        }
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.buf.len() >= BUFFER_LIMIT
    }

    fn should_flush(&self, now: Instant) -> bool {
        !self.buf.is_empty() || (!self.inflight.is_empty() && now >= self.next_poll)
    }

    fn flush_deadline(&self) -> Option<Instant> {
        (!self.inflight.is_empty()).then_some(self.next_poll)
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(self.send())
    }

    fn buffered(&self) -> u64 {
        self.ends.len() as u64
    }

    fn unconfirmed(&self) -> u64 {
        self.inflight_records
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn close(&mut self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {
            if let Some(mut c) = self.conn.take() {
                c.close().await;
            }
        })
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("WrittenCount", self.total_written as i64, "count");
        sink.int("ReconnectCount", self.reconnects as i64, "count");
        sink.int("ResentCount", self.resent as i64, "count");
        sink.int("UnconfirmedCount", self.inflight_records as i64, "count");
        self.writer.report(sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("tcp.rs"));
    }

    #[test]
    fn tls_the_output_cannot_speak_is_refused() {
        let e = build("[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[o]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:1\"\nuse_tls = true\n[o.tls]\nmin_version = \"TLS10\"\ninsecure_skip_verify = true\n").unwrap_err();
        assert!(
            e.contains("sample.toml:10:") && e.contains("TLS 1.2 and 1.3 only"),
            "{e}"
        );
    }
}

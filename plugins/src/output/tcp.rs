//! TcpOutput: sends encoded messages to a TCP address, e.g. an upstream hekate or hekad, over
//! plain TCP or TLS.
//!
//! **Disk buffering** (`use_buffering`, true by default, as in Heka): the output is one
//! instance (on one worker core) fed through a disk queue in
//! `<base_dir>/output_queue/<name>/` (Heka's layout, readable with `hekate queue check|show`
//! and `hekate cat`). Every message routed to it is appended to the queue at once (and written
//! to the kernel after each batch, so it survives kill -9), whatever the upstream does: a dead
//! or slow upstream holds up neither the inputs nor the outputs beside it. The connection sends
//! from the queue, in order, and the queue's read position moves only after a send succeeded
//! (checkpointed every `cursor_update_count` sends, 50 by default for TcpOutput), so after a
//! crash what was in flight may be sent again (at least once, never lost). At shutdown what
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
//! handshake is retried like a failed connection. A record counts as sent once its encrypted
//! bytes are handed to the kernel, as over plain TCP.
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
        tls: crate::tls::client_config(section, opts.use_tls, opts.tls.as_ref(), &opts.address)?,
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
            written: 0,
            total_written: 0,
            reconnects: 0,
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
    since_connect: u64,
    buf: Vec<u8>,
    /// End offset of each record in `buf`.
    ends: Vec<usize>,
    written: u64,
    total_written: u64,
    reconnects: u64,
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

    /// Forgets the records the peer received whole (the first `sent` bytes went out).
    fn drop_sent(&mut self, sent: usize) {
        let whole = self.ends.partition_point(|&e| e <= sent);
        if whole == 0 {
            return;
        }
        let cut = self.ends[whole - 1];
        self.buf.drain(..cut);
        self.ends.drain(..whole);
        for e in &mut self.ends {
            *e -= cut;
        }
        self.written += whole as u64;
        self.total_written += whole as u64;
        self.since_connect += whole as u64;
    }

    async fn send(&mut self) -> Result<(), OutputError> {
        while !self.buf.is_empty() {
            if self.conn.is_none()
                && let Err(e) = self.connect().await
            {
                let dropped = self.ends.len() as u64;
                self.buf.clear();
                self.ends.clear();
                return Err(OutputError {
                    message: e,
                    dropped,
                });
            }
            let conn = self.conn.as_mut().expect("connected above");
            let mut sent = 0;
            let mut failed = None;
            while sent < self.buf.len() {
                match conn.write(&self.buf[sent..]).await {
                    Ok(0) => {
                        failed = Some("the connection was closed".to_string());
                        break;
                    }
                    Ok(n) => sent += n,
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            self.drop_sent(sent);
            if let Some(e) = failed {
                tracing::warn!(
                    "Output '{}': sending to {} failed: {e}; reconnecting",
                    self.name,
                    self.address
                );
                self.conn = None;
                self.reconnects += 1;
                continue;
            }
            if self.reconnect_after > 0 && self.since_connect >= self.reconnect_after {
                if let Some(mut c) = self.conn.take() {
                    c.close().await;
                }
                self.reconnects += 1;
            }
        }
        Ok(())
    }
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

    fn should_flush(&self, _now: Instant) -> bool {
        !self.buf.is_empty()
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(self.send())
    }

    fn buffered(&self) -> u64 {
        self.ends.len() as u64
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

//! CarbonOutput: sends the Graphite plaintext payload of stat messages (StatAccumInput's
//! `heka.statmetric`: `name value unix_timestamp` lines) to a Graphite carbon daemon, over TCP
//! or UDP, as Heka's CarbonOutput does.
//!
//! Each payload line is checked as Heka checks it — three fields, a value that is a number, a
//! timestamp that is an unsigned 32-bit integer — and a malformed line is skipped, warned about
//! (rate-limited) and counted in the report's `MalformedLines`. Over TCP, with
//! `tcp_keep_alive = false` (Heka's default) a connection is opened for each write and closed
//! after it; with `tcp_keep_alive = true` it stays open (with TCP keep-alive probes every
//! `tcp_keep_alive_period` seconds) and is opened again after a failure. Over UDP, lines are
//! sent in datagrams of at most 62 KiB, cut between lines.
//!
//! A carbon that is down never stalls the pipeline: a failed connect or write keeps the lines
//! and tries again later (from 250 ms, doubling up to 30 s), while the output goes on taking
//! messages; at most 16 MiB of lines wait, the oldest are dropped beyond (`DroppedLines`).
//! Lines cut by a failed write are sent again whole. At shutdown, lines that still cannot be
//! sent after one last attempt are dropped and counted.
//!
//! ```toml
//! [CarbonOutput]
//! message_matcher = "Type == 'heka.statmetric'"
//! address = "127.0.0.1:2003"
//! protocol = "tcp"
//! tcp_keep_alive = true
//! ```
//!
//! Options: `address` ("localhost:2003"), `protocol` ("tcp" or "udp"), `tcp_keep_alive`
//! (false), `tcp_keep_alive_period` (7200 s), plus the common output options.

use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt as _;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_model::message::MessageAccess as _;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{address_option, set_keepalive};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "CarbonOutput",
    source: include_str!("carbon.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// Write once this much is buffered, even inside a batch.
const BUFFER_LIMIT: usize = 256 * 1024;
/// The most kept while carbon cannot be reached; the oldest lines go beyond.
const MAX_WAITING: usize = 16 << 20;
/// Heka's UDP datagram size.
const DATAGRAM: usize = 63_488;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(30);

fn default_address() -> String {
    "localhost:2003".into()
}
fn default_protocol() -> String {
    "tcp".into()
}
fn default_period() -> u32 {
    7200
}

/// CarbonOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Carbon's plaintext listener.
    #[serde(default = "default_address")]
    address: String,
    /// "tcp" or "udp".
    #[serde(default = "default_protocol")]
    protocol: String,
    /// Keep the TCP connection open between writes (else one connection per write, as Heka).
    #[serde(default)]
    tcp_keep_alive: bool,
    /// Idle seconds before TCP keep-alive probes on a kept connection.
    #[serde(default = "default_period")]
    tcp_keep_alive_period: u32,
}

#[derive(Debug)]
struct CarbonOutputPlugin {
    address: SocketAddr,
    udp: bool,
    keep_alive: Option<u32>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let udp = match opts.protocol.as_str() {
        "" | "tcp" => false,
        "udp" => true,
        other => {
            return Err(section.error_at_value(
                "protocol",
                format!(
                    "CarbonOutput: \"{other}\" is not a supported protocol, must be \"tcp\" or \"udp\" (section [{}])",
                    section.name()
                ),
            ));
        }
    };
    let address = address_option(section, "address", &opts.address)?;
    Ok(Built::Output(Arc::new(CarbonOutputPlugin {
        address,
        udp,
        keep_alive: opts.tcp_keep_alive.then_some(opts.tcp_keep_alive_period),
    })))
}

impl OutputPlugin for CarbonOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::PerShard
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        Ok(Box::new(CarbonOutput {
            name: ctx.name.clone(),
            address: self.address,
            udp: self.udp,
            keep_alive: self.keep_alive,
            tcp: None,
            socket: None,
            buf: Vec::with_capacity(BUFFER_LIMIT),
            messages: 0,
            written: 0,
            retry_at: None,
            backoff: FIRST_RETRY,
            stats: Stats::default(),
        }))
    }
}

#[derive(Debug, Default)]
struct Stats {
    lines: u64,
    malformed: u64,
    dropped: u64,
    connect_failures: u64,
    send_failures: u64,
}

struct CarbonOutput {
    name: String,
    address: SocketAddr,
    udp: bool,
    keep_alive: Option<u32>,
    tcp: Option<glommio::net::TcpStream>,
    socket: Option<glommio::net::UdpSocket>,
    /// Checked lines, each ending in `\n`.
    buf: Vec<u8>,
    /// Messages whose lines are in `buf`.
    messages: u64,
    written: u64,
    /// No attempt before this (after a failure).
    retry_at: Option<Instant>,
    backoff: Duration,
    stats: Stats,
}

/// Whether a payload line is what carbon takes: `name value timestamp`, the value a number, the
/// timestamp an unsigned 32-bit integer (Heka's checks).
fn line_is_valid(line: &str) -> Result<(), String> {
    let mut f = line.split_whitespace();
    let (Some(_), Some(value), Some(ts), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(format!("malformed statmetric line: '{line}'"));
    };
    ts.parse::<u32>()
        .map_err(|e| format!("parsing time '{ts}': {e}"))?;
    value
        .parse::<f64>()
        .map_err(|e| format!("parsing value '{value}': {e}"))?;
    Ok(())
}

impl CarbonOutput {
    fn failed(&mut self, what: &str, e: impl std::fmt::Display) {
        warn_limited!(
            "Output '{}': {what} {} failed: {e}; trying again in {:?}",
            self.name,
            self.address,
            self.backoff
        );
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
    }

    /// Drops the oldest whole lines beyond [`MAX_WAITING`].
    fn bound(&mut self) {
        if self.buf.len() <= MAX_WAITING {
            return;
        }
        let over = self.buf.len() - MAX_WAITING / 2;
        let cut = memchr::memchr(b'\n', &self.buf[over..]).map_or(self.buf.len(), |p| over + p + 1);
        self.stats.dropped += memchr::memchr_iter(b'\n', &self.buf[..cut]).count() as u64;
        self.buf.drain(..cut);
    }

    fn sent_all(&mut self) {
        self.buf.clear();
        self.written += self.messages;
        self.messages = 0;
        self.retry_at = None;
        self.backoff = FIRST_RETRY;
    }

    async fn send_udp(&mut self) {
        if self.socket.is_none() {
            let bind: SocketAddr = if self.address.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            match glommio::net::UdpSocket::bind(bind) {
                Ok(s) => self.socket = Some(s),
                Err(e) => return self.failed("opening a UDP socket to", e),
            }
        }
        let socket = self.socket.as_ref().expect("opened above");
        let mut start = 0;
        let mut failures = 0;
        while start < self.buf.len() {
            let mut end = (start + DATAGRAM).min(self.buf.len());
            if end < self.buf.len() {
                // Cut after the last whole line (a line longer than a datagram goes alone).
                end = memchr::memrchr(b'\n', &self.buf[start..end]).map_or_else(
                    || {
                        memchr::memchr(b'\n', &self.buf[end..])
                            .map_or(self.buf.len(), |p| end + p + 1)
                    },
                    |p| start + p + 1,
                );
            }
            if socket
                .send_to(&self.buf[start..end], self.address)
                .await
                .is_err()
            {
                failures += 1;
            }
            start = end;
        }
        if failures > 0 {
            self.stats.send_failures += failures;
            warn_limited!(
                "Output '{}': {failures} datagrams to {} could not be sent",
                self.name,
                self.address
            );
        }
        self.sent_all();
    }

    async fn send_tcp(&mut self) {
        // One retry on a fresh connection when a kept one fails, as Heka.
        for attempt in 0..2 {
            if self.tcp.is_none() {
                match glommio::net::TcpStream::connect_timeout(self.address, CONNECT_TIMEOUT).await
                {
                    Ok(s) => {
                        if let Some(period) = self.keep_alive
                            && let Err(e) = set_keepalive(s.as_raw_fd(), period)
                        {
                            warn_limited!("Output '{}': cannot turn on keep-alive: {e}", self.name);
                        }
                        self.tcp = Some(s);
                    }
                    Err(e) => {
                        self.stats.connect_failures += 1;
                        return self.failed("connecting to", e);
                    }
                }
            }
            let stream = self.tcp.as_mut().expect("connected above");
            let mut sent = 0;
            let mut error = None;
            while sent < self.buf.len() {
                match stream.write(&self.buf[sent..]).await {
                    Ok(0) => {
                        error = Some("the connection was closed".to_string());
                        break;
                    }
                    Ok(n) => sent += n,
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            let Some(e) = error else {
                if self.keep_alive.is_none()
                    && let Some(mut s) = self.tcp.take()
                {
                    let _ = s.close().await;
                }
                return self.sent_all();
            };
            // Keep the lines not sent whole.
            let whole = memchr::memrchr(b'\n', &self.buf[..sent]).map_or(0, |p| p + 1);
            self.buf.drain(..whole);
            self.tcp = None;
            self.stats.send_failures += 1;
            if attempt == 1 || self.keep_alive.is_none() {
                return self.failed("writing to", e);
            }
        }
    }
}

impl Output for CarbonOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        let payload = String::from_utf8_lossy(msg.view.payload());
        let mut bad = None;
        for line in payload.trim_matches([' ', '\t', '\n']).split('\n') {
            match line_is_valid(line) {
                Ok(()) => {
                    self.buf.extend_from_slice(line.as_bytes());
                    self.buf.push(b'\n');
                    self.stats.lines += 1;
                }
                Err(e) => {
                    self.stats.malformed += 1;
                    bad.get_or_insert(e);
                }
            }
        }
        self.messages += 1;
        self.bound();
        if let Some(e) = bad {
            warn_limited!("Output '{}': {e}", self.name);
        }
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.buf.len() >= BUFFER_LIMIT && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    fn should_flush(&self, now: Instant) -> bool {
        self.messages > 0 && self.retry_at.is_none_or(|t| now >= t)
    }

    fn flush_deadline(&self) -> Option<Instant> {
        if self.messages > 0 {
            self.retry_at
        } else {
            None
        }
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(async move {
            // The runner only asks before the retry time when it must empty the output (at
            // shutdown): one last attempt, then what waits is dropped and counted.
            let last_chance = self.retry_at.is_some_and(|t| Instant::now() < t);
            if self.buf.is_empty() {
                self.sent_all();
            } else if self.udp {
                self.send_udp().await;
            } else {
                self.send_tcp().await;
            }
            if last_chance && self.messages > 0 {
                let lines = memchr::memchr_iter(b'\n', &self.buf).count() as u64;
                self.stats.dropped += lines;
                self.buf.clear();
                let dropped = std::mem::take(&mut self.messages);
                return Err(OutputError {
                    message: format!("{} cannot be reached; {lines} lines are lost", self.address),
                    dropped,
                });
            }
            Ok(())
        })
    }

    fn buffered(&self) -> u64 {
        self.messages
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn close(&mut self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {
            if let Some(mut s) = self.tcp.take() {
                let _ = s.close().await;
            }
        })
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("WrittenLines", self.stats.lines as i64, "count");
        sink.int("MalformedLines", self.stats.malformed as i64, "count");
        sink.int("DroppedLines", self.stats.dropped as i64, "count");
        sink.int(
            "ConnectFailures",
            self.stats.connect_failures as i64,
            "count",
        );
        sink.int("SendFailures", self.stats.send_failures as i64, "count");
    }
}

#[cfg(test)]
mod tests {
    use super::line_is_valid;
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("carbon.rs"));
    }

    #[test]
    fn lines_are_checked_as_heka_checks_them() {
        assert!(line_is_valid("stats.a.count 5 1796645103").is_ok());
        assert!(line_is_valid("stats.a.rate 0.500000 1796645103").is_ok());
        assert!(line_is_valid("stats.a 5").is_err());
        assert!(line_is_valid("stats.a x 1796645103").is_err());
        assert!(line_is_valid("stats.a 1 -5").is_err());
        assert!(line_is_valid("stats.a 1 99999999999").is_err());
        assert!(line_is_valid("a b 1 2").is_err());
    }

    #[test]
    fn bad_protocol_is_refused() {
        let e = build(
            "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[c]\ntype = \"CarbonOutput\"\nmessage_matcher = \"TRUE\"\nprotocol = \"sctp\"\n",
        )
        .unwrap_err();
        assert!(e.contains("not a supported protocol"), "{e}");
    }
}

//! StatsdInput: receives statsd metrics (`name:value|c[|@rate]`, `|ms`, `|h`, `|g` with `+`/`-`
//! deltas, `|s`, DogStatsD `|#tags`; several per datagram or per read, one per line) and hands
//! them to the StatAccumInput named by `stat_accum_name`, which aggregates and emits them.
//!
//! The socket is bound on every worker shard with SO_REUSEPORT (the kernel spreads datagrams and
//! connections over the shards); each shard parses in place and adds to its own slot of the
//! accumulator, under a lock only the accumulator's tick also takes: no message per metric is
//! routed. DogStatsD tags are kept as part of the stat's name in Graphite's tagged form
//! (`name;tag=value;bare_tag`), so each tag combination is its own stat.
//!
//! ```toml
//! [StatsdInput]
//! address = "127.0.0.1:8125"
//! stat_accum_name = "StatAccumInput"
//! max_msg_size = 512
//!
//! [StatAccumInput]
//! ticker_interval = 10
//! ```
//!
//! Bad input is counted, never fatal: a malformed line (`a:b|c`, `:1|c`, `x:1|zz`,
//! `x:1|c|@abc`) is skipped with a rate-limited warning saying why and counted in the report's
//! `BadLines` (and `DecodeFailureCount`), the other lines of its datagram are kept. A datagram
//! longer than `max_msg_size` keeps only the lines that end within the first `max_msg_size`
//! bytes (Heka cut it there): counted in `TruncatedDatagrams`. Over TCP, a line longer than
//! `max_msg_size` is skipped and counted in `LongLines`. Stats the accumulator cannot take
//! (a new name beyond its `max_names`) are counted as dropped.
//!
//! UDP has no back-pressure: datagrams that arrive while the socket's receive buffer is full
//! are dropped by the kernel (`RcvbufErrors` in `/proc/net/snmp`). Each shard takes what is
//! queued many datagrams per system call (`recvmmsg`), and the socket asks for an 8 MiB receive
//! buffer (`receive_buffer_size`; the kernel caps it at `net.core.rmem_max`, so raise that too
//! on a busy host), which rides out a shard that is descheduled for a few milliseconds. A shard
//! reads into 64 KiB plus 64 slots of `max_msg_size + 1` bytes, allocated once.
//!
//! Options: `address` ("127.0.0.1:8125"), `stat_accum_name` ("StatAccumInput"),
//! `max_msg_size` (512), as in Heka; `net` ("udp", or "tcp" for newline-separated metrics over
//! TCP connections) and `receive_buffer_size` (8 MiB) are hekate's.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, future};
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlugin, ListenAddress, LocalBoxFuture,
    PluginError, PluginType, ReportSink as _, TaskGroup, handover, options_of,
};
use hekate_engine::stats::add;
use hekate_model::statsd::lines;
use schemars::JsonSchema;
use serde::Deserialize;

use super::stat_accum::{StatAccumulator, StatWriter, WHAT};
use crate::common::address_option;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "StatsdInput",
    source: include_str!("statsd.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

fn default_address() -> String {
    "127.0.0.1:8125".into()
}
fn default_accum() -> String {
    "StatAccumInput".into()
}
fn default_max_msg_size() -> usize {
    512
}
fn default_net() -> String {
    "udp".into()
}
fn default_receive_buffer() -> usize {
    8 << 20
}

/// StatsdInput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Listen address.
    #[serde(default = "default_address")]
    address: String,
    /// The StatAccumInput section the stats go to.
    #[serde(default = "default_accum")]
    stat_accum_name: String,
    /// Largest datagram (or TCP line) read, in bytes; lines beyond it are dropped and counted.
    #[serde(default = "default_max_msg_size")]
    max_msg_size: usize,
    /// "udp" (Heka's), or "tcp" for newline-separated metrics over TCP connections.
    #[serde(default = "default_net")]
    net: String,
    /// UDP receive buffer asked of the kernel, in bytes (capped by `net.core.rmem_max`); 0
    /// keeps the kernel's default.
    #[serde(default = "default_receive_buffer")]
    receive_buffer_size: usize,
}

#[derive(Debug)]
struct StatsdInput {
    address: SocketAddr,
    tcp: bool,
    receive_buffer_size: usize,
    max_msg_size: usize,
    accumulator: Arc<StatAccumulator>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let tcp = match opts.net.as_str() {
        "udp" => false,
        "tcp" => true,
        other => {
            return Err(section.error_at_value(
                "net",
                format!(
                    "`net` = \"{other}\" is not supported by StatsdInput (section [{}]); use \"udp\" or \"tcp\"",
                    section.name()
                ),
            ));
        }
    };
    if opts.max_msg_size == 0 || opts.max_msg_size > MAX_DATAGRAM {
        return Err(section.error_at_value(
            "max_msg_size",
            format!(
                "`max_msg_size` of section [{}] must be between 1 and {MAX_DATAGRAM}",
                section.name()
            ),
        ));
    }
    let address = address_option(section, "address", &opts.address)?;
    let accumulator = ctx.join(section, "stat_accum_name", &opts.stat_accum_name, WHAT)?;
    Ok(Built::Input(Arc::new(StatsdInput {
        address,
        tcp,
        receive_buffer_size: opts.receive_buffer_size,
        max_msg_size: opts.max_msg_size,
        accumulator,
    })))
}

/// One shard's instance: its accumulator slot and its counts of bad input.
struct Shard {
    ctx: InputContext,
    writer: StatWriter,
    bad_lines: Cell<u64>,
    truncated: Cell<u64>,
    long_lines: Cell<u64>,
    reported: Cell<Option<Instant>>,
    /// Counts changed since the report fields were last refreshed.
    dirty: Cell<bool>,
}

impl Shard {
    /// Parses complete lines and adds them to the slot, under one lock. Lines longer than
    /// `max` are skipped and counted.
    fn take(&self, data: &[u8], max: usize) {
        let c = self.ctx.counters();
        let (mut good, mut bad, mut dropped, mut long) = (0u64, 0u64, 0u64, 0u64);
        {
            let mut bucket = self.writer.bucket();
            let mut rest = data;
            while !rest.is_empty() {
                let (line, next) = match memchr::memchr(b'\n', rest) {
                    Some(p) => (&rest[..p], &rest[p + 1..]),
                    None => (rest, &[][..]),
                };
                rest = next;
                if line.len() > max {
                    long += 1;
                    continue;
                }
                for parsed in lines(line) {
                    match parsed {
                        Ok(m) => {
                            if bucket.add(&m) {
                                good += 1;
                            } else {
                                dropped += 1;
                            }
                        }
                        Err((e, text)) => {
                            bad += 1;
                            warn_limited!(
                                "Input '{}': bad statsd line {:?}: {e}",
                                self.ctx.name,
                                String::from_utf8_lossy(&text[..text.len().min(200)])
                            );
                        }
                    }
                }
            }
        }
        add(&c.received, good + bad + dropped + long);
        add(&c.delivered, good);
        add(&c.dropped, dropped + long);
        if bad > 0 {
            add(&c.decode_failures, bad);
            self.bad_lines.set(self.bad_lines.get() + bad);
        }
        if long > 0 {
            self.long_lines.set(self.long_lines.get() + long);
        }
        if bad > 0 || long > 0 || self.dirty.get() {
            self.report(false);
        }
    }

    /// Refreshes the report fields (at most every 100 ms, unless `now`).
    fn report(&self, now: bool) {
        let t = Instant::now();
        if !now
            && self
                .reported
                .get()
                .is_some_and(|r| t.duration_since(r) < Duration::from_millis(100))
        {
            self.dirty.set(true);
            return;
        }
        self.dirty.set(false);
        self.reported.set(Some(t));
        let mut f = FieldCollector::default();
        f.int("BadLines", self.bad_lines.get() as i64, "count");
        f.int("TruncatedDatagrams", self.truncated.get() as i64, "count");
        f.int("LongLines", self.long_lines.get() as i64, "count");
        self.ctx.counters().set_extra(f.fields);
    }

    /// One datagram of `n` bytes: the lines that end within `max` bytes.
    fn datagram(&self, buf: &[u8], max: usize) {
        if buf.len() <= max {
            self.take(buf, max);
            return;
        }
        self.truncated.set(self.truncated.get() + 1);
        self.dirty.set(true);
        let head = &buf[..max];
        let end = memchr::memrchr(b'\n', head).unwrap_or(0);
        self.take(&head[..end], max);
    }
}

impl InputPlugin for StatsdInput {
    fn listen_addresses(&self) -> Vec<ListenAddress> {
        vec![if self.tcp {
            ListenAddress::Tcp(self.address)
        } else {
            ListenAddress::Udp(self.address)
        }]
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let shard = Rc::new(Shard {
            writer: self.accumulator.writer(true),
            ctx,
            bad_lines: Cell::new(0),
            truncated: Cell::new(0),
            long_lines: Cell::new(0),
            reported: Cell::new(None),
            dirty: Cell::new(false),
        });
        let max = self.max_msg_size;
        let address = self.address;
        if self.tcp {
            let mut acceptor =
                handover::Acceptor::bind(self.address, shard.ctx.shard).map_err(|e| {
                    PluginError::Other(format!(
                        "StatsdInput cannot listen on {}: {e}",
                        self.address
                    ))
                })?;
            return Ok(Box::pin(async move {
                let connections = TaskGroup::new();
                loop {
                    let ctx = &shard.ctx;
                    let accepted = future::or(async { Some(acceptor.accept().await) }, async {
                        ctx.stopped().await;
                        None
                    })
                    .await;
                    match accepted {
                        None => break,
                        Some(Ok(stream)) => {
                            connections.spawn(serve(stream, Rc::clone(&shard), max));
                        }
                        Some(Err(e)) => {
                            warn_limited!(
                                "Input '{}': accepting a connection failed: {e}",
                                ctx.name
                            );
                            glommio::timer::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                acceptor.park();
                connections.wait_idle().await;
                shard.report(true);
                Ok(())
            }));
        }
        let socket = crate::common::udp_socket(&shard.ctx, self.address, self.receive_buffer_size)
            .map_err(|e| {
                PluginError::Other(format!("StatsdInput cannot bind {}: {e}", self.address))
            })?;
        Ok(Box::pin(async move {
            let mut batch = Datagrams::new(max);
            loop {
                let ctx = &shard.ctx;
                match crate::common::datagram_ready(ctx, &socket).await {
                    None => break,
                    Some(Ok(_)) => {
                        // Take what is queued, many per system call.
                        batch.drain(socket.as_raw_fd(), &shard);
                        glommio::yield_if_needed().await;
                    }
                    Some(Err(e)) => {
                        warn_limited!("Input '{}': receiving a datagram failed: {e}", ctx.name);
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            handover::park(ListenAddress::Udp(address), shard.ctx.shard, &socket);
            shard.report(true);
            Ok(())
        }))
    }
}

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 64;
/// Calls per drain before the task lets the shard's other tasks run.
const DRAIN_CALLS: usize = 16;

/// Receives the datagrams already queued on a socket, `BATCH` per `recvmmsg` call, without
/// waiting. Each slot holds `max_msg_size + 1` bytes, so a longer datagram shows as longer than
/// the limit (the kernel cuts it) and is counted as truncated like any other.
struct Datagrams {
    slot: usize,
    max: usize,
    buf: Vec<u8>,
}

impl Datagrams {
    fn new(max: usize) -> Self {
        let slot = max + 1;
        Self {
            slot,
            max,
            buf: vec![0u8; slot * BATCH],
        }
    }

    fn drain(&mut self, fd: std::os::fd::RawFd, shard: &Shard) {
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero is a valid value.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for _ in 0..DRAIN_CALLS {
            let base = self.buf.as_mut_ptr();
            for (k, (v, m)) in iov.iter_mut().zip(msgs.iter_mut()).enumerate() {
                // SAFETY: slot k lies within `buf` (BATCH slots of `slot` bytes).
                v.iov_base = unsafe { base.add(k * self.slot) }.cast();
                v.iov_len = self.slot;
                m.msg_hdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m.msg_len = 0;
            }
            // SAFETY: the headers point at `iov`, whose buffers are slots of `buf`, both alive
            // and not otherwise used for the call; MSG_DONTWAIT never blocks the shard.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                // EAGAIN: nothing queued (an error shows on the next io_uring receive).
                return;
            }
            for (k, m) in msgs.iter().take(n as usize).enumerate() {
                let start = k * self.slot;
                let len = (m.msg_len as usize).min(self.slot);
                shard.datagram(&self.buf[start..start + len], self.max);
            }
            if (n as usize) < BATCH {
                return;
            }
        }
    }
}

/// Reads one TCP connection's lines until the peer closes it or the inputs stop.
async fn serve(mut stream: glommio::net::TcpStream, shard: Rc<Shard>, max: usize) {
    let _registered = shard.ctx.register_connection(stream.as_raw_fd());
    let mut buf = vec![0u8; (64 * 1024).max(max + 1)];
    let mut have = 0;
    // Skipping the rest of a line longer than `max`.
    let mut skipping = false;
    loop {
        let n = match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        have += n;
        let mut start = 0;
        if skipping {
            match memchr::memchr(b'\n', &buf[..have]) {
                Some(p) => {
                    start = p + 1;
                    skipping = false;
                }
                None => {
                    have = 0;
                    continue;
                }
            }
        }
        if let Some(end) = memchr::memrchr(b'\n', &buf[start..have]) {
            let end = start + end;
            shard.take(&buf[start..end], max);
            start = end + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have > max {
            shard.long_lines.set(shard.long_lines.get() + 1);
            shard.dirty.set(true);
            have = 0;
            skipping = true;
        }
        if shard.ctx.is_stopped() {
            break;
        }
    }
    if !skipping && have > 0 {
        shard.take(&buf[..have], max);
    }
    shard.report(true);
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("statsd.rs"));
    }

    #[test]
    fn the_accumulator_must_exist() {
        let e = build("[StatsdInput]\naddress = \"127.0.0.1:0\"\n").unwrap_err();
        assert!(e.contains("not a StatAccumInput"), "{e}");
        let e = build(
            "[StatsdInput]\naddress = \"127.0.0.1:0\"\nstat_accum_name = \"acc\"\n[StatAccumInput]\n",
        )
        .unwrap_err();
        assert!(e.contains("sends to `acc`"), "{e}");
        // Either order.
        assert!(build("[StatAccumInput]\n[StatsdInput]\naddress = \"127.0.0.1:0\"\n").is_ok());
        assert!(build("[StatsdInput]\naddress = \"127.0.0.1:0\"\n[StatAccumInput]\n").is_ok());
        let e = build("[StatAccumInput]\n[StatsdInput]\nnet = \"unix\"\n").unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }
}

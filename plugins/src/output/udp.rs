//! UdpOutput: sends each encoded message as one datagram, e.g. to a statsd or Graphite daemon,
//! or to a hekate or hekad UdpInput.
//!
//! One instance runs on every worker shard, each with its own socket, connected to `address`
//! (so that only datagrams from there come back, and errors the peer reports surface). A
//! message whose encoding is longer than `max_message_size` is dropped and counted, as hekad
//! does. UDP itself may lose datagrams: a send the kernel refuses (no buffer space, the peer's
//! port closed) is counted in the report's `SendFailures` and not retried.
//!
//! ```toml
//! [statsd_out]
//! type = "UdpOutput"
//! message_matcher = "Type == 'heka.statmetric'"
//! address = "127.0.0.1:8125"
//! encoder = "PayloadEncoder"
//!
//! [PayloadEncoder]
//! ```
//!
//! Options: `address` (required), `net` ("udp", "udp4" or "udp6"; unixgram is not supported
//! yet), `local_address` (the address to send from), `max_message_size` (65507, at least 512),
//! `encoder` (required, as in Heka), `use_framing` (false: a datagram is one message; set it to
//! frame each one as Heka's stream framing does).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{EncodedWriter, Encoding};
use crate::common::address_option;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "UdpOutput",
    source: include_str!("udp.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// Datagrams are sent once this many bytes are buffered, even inside a batch.
const BUFFER_LIMIT: usize = 256 * 1024;

fn default_net() -> String {
    "udp".into()
}
fn default_max_message_size() -> usize {
    65507
}

/// UdpOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Where to send.
    address: String,
    /// "udp", "udp4" or "udp6".
    #[serde(default = "default_net")]
    net: String,
    /// The address to send from.
    #[serde(default)]
    local_address: Option<String>,
    /// Larger encoded messages are dropped.
    #[serde(default = "default_max_message_size")]
    max_message_size: usize,
}

#[derive(Debug)]
struct UdpOutputPlugin {
    address: SocketAddr,
    local_address: SocketAddr,
    max_message_size: usize,
    encoding: Encoding,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let want_v6 = match opts.net.as_str() {
        "udp" => None,
        "udp4" => Some(false),
        "udp6" => Some(true),
        other => {
            return Err(section.error_at_value(
                "net",
                format!(
                    "`net` = \"{other}\" is not supported by UdpOutput (section [{}]); use \"udp\", \"udp4\" or \"udp6\"",
                    section.name()
                ),
            ));
        }
    };
    if opts.max_message_size < 512 {
        return Err(section.error_at_value(
            "max_message_size",
            format!(
                "`max_message_size` of section [{}] can't be smaller than 512 bytes",
                section.name()
            ),
        ));
    }
    let address = address_option(section, "address", &opts.address)?;
    if want_v6.is_some_and(|v6| v6 != address.is_ipv6()) {
        return Err(section.error_at_value(
            "address",
            format!(
                "`address` {address} of section [{}] is not a {} address",
                section.name(),
                opts.net
            ),
        ));
    }
    let local_address = match &opts.local_address {
        Some(a) => address_option(section, "local_address", a)?,
        None if address.is_ipv6() => SocketAddr::from(([0u16; 8], 0)),
        None => SocketAddr::from(([0u8; 4], 0)),
    };
    Ok(Built::Output(Arc::new(UdpOutputPlugin {
        address,
        local_address,
        max_message_size: opts.max_message_size,
        encoding: Encoding::from_section(section, ctx, None)?.unframed_by_default(section),
    })))
}

impl OutputPlugin for UdpOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::PerShard
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        let socket = UdpSocket::bind(self.local_address)
            .and_then(|s| s.connect(self.address).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| {
                PluginError::io(
                    format!(
                        "UdpOutput '{}' cannot send from {} to {}",
                        ctx.name, self.local_address, self.address
                    ),
                    e,
                )
            })?;
        Ok(Box::new(UdpOutput {
            name: ctx.name.clone(),
            socket: Some(socket),
            ring: None,
            writer: self.encoding.writer(),
            max_message_size: self.max_message_size,
            scratch: Vec::new(),
            buf: Vec::with_capacity(BUFFER_LIMIT + 64 * 1024),
            ends: Vec::new(),
            written: 0,
            total_written: 0,
            send_failures: 0,
        }))
    }
}

struct UdpOutput {
    name: String,
    /// The connected socket until the first send hands it to the shard's reactor.
    socket: Option<UdpSocket>,
    ring: Option<glommio::net::UdpSocket>,
    writer: EncodedWriter,
    max_message_size: usize,
    scratch: Vec<u8>,
    /// Encoded datagrams, back to back.
    buf: Vec<u8>,
    /// End offset of each datagram in `buf`.
    ends: Vec<usize>,
    written: u64,
    total_written: u64,
    send_failures: u64,
}

impl UdpOutput {
    async fn send(&mut self) -> Result<(), OutputError> {
        if self.ring.is_none()
            && let Some(socket) = self.socket.take()
        {
            use std::os::fd::{FromRawFd as _, IntoRawFd as _};
            // SAFETY: the fd is a connected, non-blocking UDP socket nobody else owns.
            self.ring = Some(unsafe { glommio::net::UdpSocket::from_raw_fd(socket.into_raw_fd()) });
        }
        let ring = self.ring.as_ref().expect("created above");
        let mut start = 0;
        for &end in &self.ends {
            if let Err(e) = ring.send(&self.buf[start..end]).await {
                self.send_failures += 1;
                if self.send_failures.is_power_of_two() {
                    hekate_engine::plugin::log::warn_limited!(
                        "Output '{}': sending a datagram failed: {e} ({} failures so far)",
                        self.name,
                        self.send_failures
                    );
                }
            }
            start = end;
        }
        let n = self.ends.len() as u64;
        self.written += n;
        self.total_written += n;
        self.buf.clear();
        self.ends.clear();
        Ok(())
    }
}

impl Output for UdpOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        self.scratch.clear();
        if !self.writer.write(msg, &mut self.scratch)? {
            return Ok(());
        }
        if self.scratch.len() > self.max_message_size {
            return Err(ProcessError(format!(
                "message has exceeded allowed UDP data size: {} > {}",
                self.scratch.len(),
                self.max_message_size
            )));
        }
        self.buf.extend_from_slice(&self.scratch);
        self.ends.push(self.buf.len());
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.buf.len() >= BUFFER_LIMIT
    }

    fn should_flush(&self, _now: Instant) -> bool {
        !self.ends.is_empty()
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

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("WrittenCount", self.total_written as i64, "count");
        sink.int("SendFailures", self.send_failures as i64, "count");
        self.writer.report(sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("udp.rs"));
    }

    #[test]
    fn bad_options_are_refused() {
        let base = "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[PayloadEncoder]\n[u]\ntype = \"UdpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:9\"\n";
        let e = build(base).unwrap_err();
        assert!(e.contains("encoder"), "{e}");
        let with_encoder = format!("{base}encoder = \"PayloadEncoder\"\n");
        assert!(build(&with_encoder).is_ok());
        let e = build(&format!("{with_encoder}max_message_size = 100\n")).unwrap_err();
        assert!(e.contains("smaller than 512"), "{e}");
        let e = build(&format!("{with_encoder}net = \"unixgram\"\n")).unwrap_err();
        assert!(e.contains("not supported by UdpOutput"), "{e}");
        let e = build(&format!("{with_encoder}net = \"udp6\"\n")).unwrap_err();
        assert!(e.contains("not a udp6 address"), "{e}");
    }
}

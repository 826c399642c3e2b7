//! UdpInput: receives datagrams, each holding one or more records (several Heka-framed messages
//! per datagram are fine).
//!
//! The socket is bound on every worker shard with SO_REUSEPORT; the kernel spreads datagrams by
//! source over the shards. hekate refuses to start when another process holds the address. A
//! datagram is split completely on its own: a record cut by the end of
//! the datagram is skipped and counted. With `set_hostname`, messages built from payloads take
//! the sender's address as their Hostname.
//!
//! ```toml
//! [UdpInput]
//! address = "127.0.0.1:5566"
//! splitter = "HekaFramingSplitter"
//! decoder = "ProtobufDecoder"
//! set_hostname = false
//! ```
//!
//! Options: `address` (required), `net` ("udp", "udp4" or "udp6"; unixgram is not supported yet),
//! `signer` subsections, `set_hostname` (false), plus the common input options. The default
//! splitter is NullSplitter (one record per datagram) and the default decoder none, as in Heka;
//! set `splitter = "HekaFramingSplitter"` and `decoder = "ProtobufDecoder"` for Heka streams.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_lite::future;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlugin, ListenAddress, LocalBoxFuture, PluginError, PluginType,
    options_of,
};
use hekate_engine::plugin::{InputContext, StreamSpec};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{SignerConfig, address_option, signer_keys};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "UdpInput",
    source: include_str!("udp.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

fn default_net() -> String {
    "udp".into()
}

/// UdpInput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Listen address.
    address: String,
    /// Network: "udp", "udp4" or "udp6".
    #[serde(default = "default_net")]
    net: String,
    /// Trusted signers.
    #[serde(default)]
    signer: BTreeMap<String, SignerConfig>,
    /// Hostname of payload messages = the sender's address.
    #[serde(default)]
    set_hostname: bool,
}

#[derive(Debug)]
struct UdpInput {
    address: SocketAddr,
    set_hostname: bool,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    if !matches!(opts.net.as_str(), "udp" | "udp4" | "udp6") {
        return Err(section.error_at_value(
            "net",
            format!(
                "`net` = \"{}\" is not supported by UdpInput (section [{}]); use \"udp\", \"udp4\" or \"udp6\"",
                opts.net,
                section.name()
            ),
        ));
    }
    let address = address_option(section, "address", &opts.address)?;
    let mut spec = ctx.stream_spec(section, "NullSplitter", None)?;
    spec.signers = signer_keys(section, &opts.signer)?;
    Ok(Built::Input(Arc::new(UdpInput {
        address,
        set_hostname: opts.set_hostname,
        spec,
    })))
}

impl InputPlugin for UdpInput {
    fn listen_addresses(&self) -> Vec<ListenAddress> {
        vec![ListenAddress::Udp(self.address)]
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let socket = glommio::net::UdpSocket::bind(self.address).map_err(|e| {
            PluginError::Other(format!("UdpInput cannot bind {}: {e}", self.address))
        })?;
        let mut records = ctx.stream(&self.spec, None);
        let set_hostname = self.set_hostname;
        Ok(Box::pin(async move {
            loop {
                records.reserve(MAX_DATAGRAM);
                let received = future::or(
                    async { Some(socket.recv_from(records.read_buf()).await) },
                    async {
                        ctx.stopped().await;
                        None
                    },
                )
                .await;
                match received {
                    None => break,
                    Some(Ok((n, from))) => {
                        let host = set_hostname.then(|| from.ip().to_string());
                        records.feed_datagram(n, host.as_deref()).await;
                    }
                    Some(Err(e)) => {
                        hekate_engine::plugin::log::warn_limited!(
                            "Input '{}': receiving a datagram failed: {e}",
                            ctx.name
                        );
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::build_doc_sample;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("udp.rs"));
    }
}

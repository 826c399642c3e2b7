//! TcpInput: listens on a TCP address and reads Heka streams (or lines, or raw reads) from every
//! connection.
//!
//! The listener is bound on every worker shard with SO_REUSEPORT, so the kernel spreads
//! connections over the cores; hekate refuses to start when another process holds the address.
//! Each connection is read by one task into a reused buffer
//! (io_uring through glommio); its records are split, decoded and routed inline on that task.
//! When the router is congested the task stops reading, and TCP flow control pushes back on the
//! sender. Garbage between records is skipped and counted (`SkippedBytes`); records whose
//! signature does not verify are dropped and counted (`RejectedCount`).
//!
//! ```toml
//! [TcpInput]
//! address = "127.0.0.1:5565"
//! # splitter = "HekaFramingSplitter"   (default; or TokenSplitter, NullSplitter)
//! # decoder = "ProtobufDecoder"        (default; "" for none: records become payloads)
//! keep_alive = true
//! keep_alive_period = 60
//!
//! # Trust records signed by "ops" with key version 0.
//! [TcpInput.signer.ops_0]
//! hmac_key = "4865ey9urgkidls xtb0[7lf9rzcivthkm"
//! ```
//!
//! Options: `address` (required; `host:port`, or `:port` for every interface), `net` ("tcp",
//! "tcp4" or "tcp6"; unix sockets are not supported yet), `keep_alive` (false),
//! `keep_alive_period` (7200 s), `signer` subsections (`<name>_<version>` with `hmac_key`),
//! `use_tls` (false; TLS is not supported yet), plus the common input options.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use futures_lite::{AsyncReadExt, future};
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlugin, ListenAddress, LocalBoxFuture, PluginError, PluginType,
    options_of,
};
use hekate_engine::plugin::{InputContext, StreamSpec, TaskGroup};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{SignerConfig, address_option, set_keepalive, signer_keys};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "TcpInput",
    source: include_str!("tcp.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_net() -> String {
    "tcp".into()
}

fn default_keep_alive_period() -> u32 {
    7200
}

/// TcpInput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Listen address.
    address: String,
    /// Network: "tcp", "tcp4" or "tcp6".
    #[serde(default = "default_net")]
    net: String,
    /// TLS (not supported yet).
    #[serde(default)]
    use_tls: bool,
    /// TLS settings (not supported yet).
    #[serde(default)]
    tls: Option<toml_table::Table>,
    /// Turn on TCP keep-alive on accepted connections.
    #[serde(default)]
    keep_alive: bool,
    /// Keep-alive idle period, in seconds.
    #[serde(default = "default_keep_alive_period")]
    keep_alive_period: u32,
    /// Trusted signers.
    #[serde(default)]
    signer: BTreeMap<String, SignerConfig>,
}

/// Any TOML table, accepted and ignored.
mod toml_table {
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    pub(crate) struct Table {}
}

#[derive(Debug)]
struct TcpInput {
    name: String,
    address: SocketAddr,
    keep_alive: Option<u32>,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    if opts.use_tls || opts.tls.is_some() {
        return Err(section.error_at_key(
            if opts.use_tls { "use_tls" } else { "tls" },
            format!(
                "TLS is not supported by TcpInput yet (section [{}])",
                section.name()
            ),
        ));
    }
    if !matches!(opts.net.as_str(), "tcp" | "tcp4" | "tcp6") {
        return Err(section.error_at_value(
            "net",
            format!(
                "`net` = \"{}\" is not supported by TcpInput (section [{}]); use \"tcp\", \"tcp4\" or \"tcp6\"",
                opts.net,
                section.name()
            ),
        ));
    }
    let address = address_option(section, "address", &opts.address)?;
    let mut spec = ctx.stream_spec(section, "HekaFramingSplitter", Some("ProtobufDecoder"))?;
    spec.signers = signer_keys(section, &opts.signer)?;
    Ok(Built::Input(std::sync::Arc::new(TcpInput {
        name: section.name().to_string(),
        address,
        keep_alive: opts.keep_alive.then_some(opts.keep_alive_period),
        spec,
    })))
}

impl InputPlugin for TcpInput {
    fn listen_addresses(&self) -> Vec<ListenAddress> {
        vec![ListenAddress::Tcp(self.address)]
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let listener = glommio::net::TcpListener::bind(self.address).map_err(|e| {
            PluginError::Other(format!("TcpInput cannot listen on {}: {e}", self.address))
        })?;
        let spec = self.spec.clone();
        let keep_alive = self.keep_alive;
        let name = self.name.clone();
        Ok(Box::pin(async move {
            let connections = TaskGroup::new();
            let spec = Rc::new(spec);
            loop {
                let accepted = future::or(async { Some(listener.accept().await) }, async {
                    ctx.stopped().await;
                    None
                })
                .await;
                let stream = match accepted {
                    None => break,
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        hekate_engine::plugin::log::warn_limited!(
                            "Input '{name}': accepting a connection failed: {e}"
                        );
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Some(period) = keep_alive
                    && let Err(e) = set_keepalive(stream.as_raw_fd(), period)
                {
                    tracing::warn!("Input '{name}': cannot turn on keep-alive: {e}");
                }
                connections.spawn(serve(stream, ctx.clone(), Rc::clone(&spec)));
            }
            drop(listener);
            connections.wait_idle().await;
            Ok(())
        }))
    }
}

/// Reads one connection until the peer closes it or the inputs stop.
async fn serve(mut stream: glommio::net::TcpStream, ctx: InputContext, spec: Rc<StreamSpec>) {
    let peer = stream.peer_addr().map(|a| a.ip().to_string()).ok();
    let mut records = ctx.stream(&spec, peer.as_deref());
    let _registered = ctx.register_connection(stream.as_raw_fd());
    loop {
        match stream.read(records.read_buf()).await {
            Ok(0) => break,
            Ok(n) => {
                records.feed(n).await;
                // Stopping: what was read is routed; what the kernel still holds stays unread
                // (a busy sender would otherwise keep the connection alive forever).
                if ctx.is_stopped() {
                    break;
                }
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::ConnectionReset {
                    hekate_engine::plugin::log::warn_limited!(
                        "Input '{}': reading from {}: {e}",
                        ctx.name,
                        peer.as_deref().unwrap_or("?")
                    );
                }
                break;
            }
        }
    }
    records.finish().await;
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("tcp.rs"));
    }

    #[test]
    fn unsupported_options_are_refused() {
        let e = build("[t]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nnet = \"unix\"\n")
            .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = build("[t]\ntype = \"TcpInput\"\naddress = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("address"), "{e}");
        let e = build("[t]\ntype = \"TcpInput\"\naddress = \":5565\"\nsplitter = \"Nope\"\n")
            .unwrap_err();
        assert!(e.contains("Nope"), "{e}");
    }
}

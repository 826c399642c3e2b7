//! TcpInput: listens on a TCP address and reads Heka streams (or lines, or raw reads) from every
//! connection, over plain TCP or TLS.
//!
//! The listener is bound on every worker shard with SO_REUSEPORT, so the kernel spreads
//! connections over the cores; hekate refuses to start when another process holds the address.
//! Each connection is read by one task into a reused buffer
//! (io_uring through glommio); its records are split, decoded and routed inline on that task.
//! When the router is congested the task stops reading, and TCP flow control pushes back on the
//! sender. Garbage between records is skipped and counted (`SkippedBytes`); records whose
//! signature does not verify are dropped and counted (`RejectedCount`).
//!
//! With `use_tls = true` each connection starts with a TLS handshake (rustls: TLS 1.2 and 1.3)
//! on its task, which must complete within 10 seconds. A client that fails it (a plain-text
//! client, a missing or untrusted client certificate, a silent one) is disconnected, logged with
//! its address and counted (`TlsHandshakeFailedCount`); the input carries on. Then records are
//! read exactly as over plain TCP.
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
//! TLS, taking only clients whose certificate is signed by one's own CA:
//!
//! ```toml
//! [TlsInput]
//! type = "TcpInput"
//! address = ":5566"
//! use_tls = true
//!
//! [TlsInput.tls]
//! cert_file = "/etc/hekate/server.pem"
//! key_file = "/etc/hekate/server-key.pem"
//! client_auth = "RequireAndVerifyClientCert"
//! client_cafile = "/etc/hekate/clients-ca.pem"
//! # min_version = "TLS12"   (default; rustls speaks TLS 1.2 and 1.3 only)
//! ```
//!
//! Options: `address` (required; `host:port`, or `:port` for every interface), `net` ("tcp",
//! "tcp4" or "tcp6"; unix sockets are not supported yet), `keep_alive` (false),
//! `keep_alive_period` (7200 s), `signer` subsections (`<name>_<version>` with `hmac_key`),
//! `use_tls` (false) with Heka's `[tls]` options (`cert_file` and `key_file` required;
//! `hekate plugins TcpInput` lists them all), plus the common input options.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use futures_lite::{AsyncRead, AsyncReadExt, future};
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlugin, ListenAddress, LocalBoxFuture, OptionSpec, PluginError,
    PluginType, ReportSink as _, options_of,
};
use hekate_engine::plugin::{FieldCollector, InputContext, StreamSpec, TaskGroup};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{SignerConfig, address_option, set_keepalive, signer_keys};
use crate::tls::{HANDSHAKE_TIMEOUT, TlsOptions, with_tls_options, within};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "TcpInput",
    source: include_str!("tcp.rs"),
    options,
    default_matcher: None,
    build,
};

fn options() -> Vec<OptionSpec> {
    with_tls_options(options_of::<Options>())
}

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
    /// Speak TLS: every connection starts with a TLS handshake (needs `tls.cert_file` and
    /// `tls.key_file`).
    #[serde(default)]
    use_tls: bool,
    /// TLS settings (the `tls.*` options), used when `use_tls` is true.
    #[serde(default)]
    tls: Option<TlsOptions>,
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

#[derive(Debug)]
struct TcpInput {
    name: String,
    address: SocketAddr,
    keep_alive: Option<u32>,
    spec: StreamSpec,
    tls: Option<Arc<rustls::ServerConfig>>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
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
    let tls = crate::tls::server_config(section, opts.use_tls, opts.tls.as_ref())?;
    Ok(Built::Input(Arc::new(TcpInput {
        name: section.name().to_string(),
        address,
        keep_alive: opts.keep_alive.then_some(opts.keep_alive_period),
        spec,
        tls,
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
        let tls = self.tls.clone().map(|config| {
            Rc::new(TlsShard {
                acceptor: futures_rustls::TlsAcceptor::from(config),
                failed: Cell::new(0),
            })
        });
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
                connections.spawn(serve(stream, ctx.clone(), Rc::clone(&spec), tls.clone()));
            }
            drop(listener);
            connections.wait_idle().await;
            Ok(())
        }))
    }
}

/// The TLS side of the input on one shard.
struct TlsShard {
    acceptor: futures_rustls::TlsAcceptor,
    /// Handshakes that failed on this shard (the report sums the shards).
    failed: Cell<u64>,
}

impl TlsShard {
    /// Counts and logs a failed handshake (not when the inputs stop: that cuts handshakes short).
    fn handshake_failed(&self, ctx: &InputContext, peer: &str, why: std::fmt::Arguments<'_>) {
        if ctx.is_stopped() {
            return;
        }
        self.failed.set(self.failed.get() + 1);
        let mut fields = FieldCollector::default();
        fields.int("TlsHandshakeFailedCount", self.failed.get() as i64, "count");
        ctx.counters().set_extra(fields.fields);
        // A flood of bad clients must not flood the log.
        hekate_engine::plugin::log::warn_limited!(
            "Input '{}': TLS handshake with {peer} failed: {why}; disconnected",
            ctx.name
        );
    }
}

/// Serves one connection: the TLS handshake when the input speaks TLS, then its records until
/// the peer closes it or the inputs stop.
async fn serve(
    mut stream: glommio::net::TcpStream,
    ctx: InputContext,
    spec: Rc<StreamSpec>,
    tls: Option<Rc<TlsShard>>,
) {
    let peer = stream.peer_addr().ok();
    // Registered before the handshake, so that stopping also ends a pending handshake; dropped
    // before the socket.
    let _registered = ctx.register_connection(stream.as_raw_fd());
    let Some(tls) = tls else {
        read_records(&mut stream, &ctx, &spec, peer).await;
        return;
    };
    let peer_text = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
    match within(HANDSHAKE_TIMEOUT, tls.acceptor.accept(&mut stream)).await {
        Some(Ok(tls_stream)) => read_records(tls_stream, &ctx, &spec, peer).await,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => tls.handshake_failed(
            &ctx,
            &peer_text,
            format_args!("the peer closed the connection during the handshake"),
        ),
        Some(Err(e)) => tls.handshake_failed(&ctx, &peer_text, format_args!("{e}")),
        None => tls.handshake_failed(
            &ctx,
            &peer_text,
            format_args!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
        ),
    }
}

/// Reads one connection's records (plain or decrypted bytes) until the peer closes it or the
/// inputs stop.
async fn read_records<S: AsyncRead + Unpin>(
    mut stream: S,
    ctx: &InputContext,
    spec: &StreamSpec,
    peer: Option<SocketAddr>,
) {
    let host = peer.map(|a| a.ip().to_string());
    let mut records = ctx.stream(spec, host.as_deref());
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
                // A reset, or a TLS peer that closes without close_notify (or the shutdown
                // that stops the inputs), ends the stream like a close.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) {
                    hekate_engine::plugin::log::warn_limited!(
                        "Input '{}': reading from {}: {e}",
                        ctx.name,
                        host.as_deref().unwrap_or("?")
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

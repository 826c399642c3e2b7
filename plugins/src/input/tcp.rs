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
//! With `net = "unix"`, `address` is the path of a unix stream socket: the first worker shard
//! binds it and hands the connections it accepts round robin to the other shards (a path cannot
//! be shared with SO_REUSEPORT); a stale socket file is replaced, a live one refused, and the
//! file is removed when hekate stops. `unix_socket_perm` sets the file's mode (say "0666" so that
//! every local user may send).
//!
//! ```toml
//! [LocalInput]
//! type = "TcpInput"
//! net = "unix"
//! address = "/run/hekate/heka.sock"
//! unix_socket_perm = "0660"
//! ```
//!
//! Limits: at most `max_connections` connections are open at once over every shard (default:
//! nine tenths of `ulimit -n`); one beyond it is closed as soon as it is accepted and counted
//! (`RefusedConnectionCount`). With `idle_timeout` (seconds; 0, the default, as in Heka: none) a
//! connection that sends nothing for that long is closed and counted (`IdleClosedCount`). Each
//! connection's read buffer is freed when it closes.
//!
//! Options: `address` (required; `host:port`, or `:port` for every interface; a path for
//! "unix"), `net` ("tcp", "tcp4", "tcp6" or "unix"), `unix_socket_perm`, `max_connections`,
//! `idle_timeout` (0), `keep_alive` (false),
//! `keep_alive_period` (7200 s), `signer` subsections (`<name>_<version>` with `hmac_key`),
//! `use_tls` (false) with Heka's `[tls]` options (`cert_file` and `key_file` required;
//! `hekate plugins TcpInput` lists them all), plus the common input options.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, future};
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlugin, ListenAddress, LocalBoxFuture, OptionSpec, PluginError,
    PluginType, ReportSink as _, handover, options_of,
};
use hekate_engine::plugin::{FieldCollector, InputContext, StreamSpec, TaskGroup};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{SignerConfig, address_option, set_keepalive, signer_keys};
use crate::tls::{HANDSHAKE_TIMEOUT, TlsOptions, with_tls_options, within};
use crate::unix::{Handoff, Side, SocketFile, unix_path};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use glommio::net::AcceptedUnixStream;

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
    /// Network: "tcp", "tcp4", "tcp6", or "unix" (`address` is then a socket path).
    #[serde(default = "default_net")]
    net: String,
    /// `net = "unix"`: the socket file's mode, in octal ("0660"); default: as the umask leaves
    /// it.
    #[serde(default)]
    unix_socket_perm: Option<String>,
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
    /// Most connections open at once, over every shard; a connection beyond it is closed as
    /// soon as it is accepted and counted (`RefusedConnectionCount`). Default: nine tenths of
    /// the process's open-file limit (`ulimit -n`).
    #[serde(default)]
    max_connections: Option<u32>,
    /// Seconds a connection may send nothing before it is closed (counted in
    /// `IdleClosedCount`); 0, the default (as in Heka), never closes an idle connection.
    #[serde(default)]
    idle_timeout: u64,
}

/// Nine tenths of the soft limit on open files (the rest is for files, queues and outputs).
pub(crate) fn default_max_connections() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    if !ok || r.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    usize::try_from(r.rlim_cur / 10 * 9)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Where the input listens.
#[derive(Debug)]
enum Listen {
    Tcp(SocketAddr),
    Unix {
        path: PathBuf,
        perm: Option<u32>,
        handoff: Handoff,
    },
}

#[derive(Debug)]
struct TcpInput {
    name: String,
    listen: Listen,
    /// Connections open now, over every shard, and the most allowed.
    open: Arc<AtomicUsize>,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    keep_alive: Option<u32>,
    spec: StreamSpec,
    tls: Option<Arc<rustls::ServerConfig>>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let listen = match opts.net.as_str() {
        "tcp" | "tcp4" | "tcp6" => {
            if opts.unix_socket_perm.is_some() {
                return Err(section.error_at_key(
                    "unix_socket_perm",
                    format!(
                        "`unix_socket_perm` applies to `net = \"unix\"` only (section [{}])",
                        section.name()
                    ),
                ));
            }
            Listen::Tcp(address_option(section, "address", &opts.address)?)
        }
        "unix" => Listen::Unix {
            path: unix_path(section, &opts.address)?,
            perm: crate::unix::parse_perm(section, opts.unix_socket_perm.as_deref())?,
            handoff: Handoff::default(),
        },
        other => {
            return Err(section.error_at_value(
                "net",
                format!(
                    "`net` = \"{other}\" is not supported by TcpInput (section [{}]); use \"tcp\", \"tcp4\", \"tcp6\" or \"unix\"",
                    section.name()
                ),
            ));
        }
    };
    let mut spec = ctx.stream_spec(section, "HekaFramingSplitter", Some("ProtobufDecoder"))?;
    spec.signers = signer_keys(section, &opts.signer)?;
    let tls = crate::tls::server_config(section, opts.use_tls, opts.tls.as_ref())?;
    opts.tls
        .iter()
        .flat_map(|t| t.files())
        .for_each(|f| ctx.reads_file(f));
    Ok(Built::Input(Arc::new(TcpInput {
        name: section.name().to_string(),
        listen,
        open: Arc::new(AtomicUsize::new(0)),
        max_connections: match opts.max_connections {
            Some(0) => {
                return Err(section.error_at_value(
                    "max_connections",
                    format!(
                        "`max_connections` must be at least 1 (section [{}])",
                        section.name()
                    ),
                ));
            }
            Some(n) => n as usize,
            None => default_max_connections(),
        },
        idle_timeout: (opts.idle_timeout > 0).then(|| Duration::from_secs(opts.idle_timeout)),
        keep_alive: opts.keep_alive.then_some(opts.keep_alive_period),
        spec,
        tls,
    })))
}

impl InputPlugin for TcpInput {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, None))
    }

    fn listen_addresses(&self) -> Vec<ListenAddress> {
        match self.listen {
            Listen::Tcp(address) => vec![ListenAddress::Tcp(address)],
            // Unix paths are checked when the first shard binds them (crate::unix::prepare).
            Listen::Unix { .. } => Vec::new(),
        }
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let shared = Rc::new(Shared {
            spec: self.spec.clone(),
            keep_alive: self.keep_alive,
            name: self.name.clone(),
            tls: self.tls.clone().map(futures_rustls::TlsAcceptor::from),
            open: Arc::clone(&self.open),
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            counts: Counts::default(),
        });
        match &self.listen {
            Listen::Tcp(address) => {
                let acceptor = handover::Acceptor::bind(*address, ctx.shard).map_err(|e| {
                    PluginError::Other(format!("TcpInput cannot listen on {address}: {e}"))
                })?;
                Ok(Box::pin(accept_tcp(acceptor, ctx, shared)))
            }
            Listen::Unix {
                path,
                perm,
                handoff,
            } => match handoff.side(ctx.shard, ctx.shards) {
                Some(Side::Listen(senders)) => {
                    let listener = bind_unix(path, *perm)?;
                    let file = SocketFile(path.clone());
                    Ok(Box::pin(async move {
                        let result = accept_unix(listener, senders, ctx, shared).await;
                        drop(file);
                        result
                    }))
                }
                Some(Side::Receive(receiver)) => Ok(Box::pin(receive_unix(receiver, ctx, shared))),
                None => Err(PluginError::Other(format!(
                    "TcpInput '{}': shard {} was started twice on {}",
                    self.name,
                    ctx.shard,
                    path.display()
                ))),
            },
        }
    }
}

/// What the connections of one shard share.
struct Shared {
    spec: StreamSpec,
    keep_alive: Option<u32>,
    name: String,
    tls: Option<futures_rustls::TlsAcceptor>,
    open: Arc<AtomicUsize>,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    counts: Counts,
}

impl Shared {
    /// Takes a place for a new connection, or counts it refused (the caller closes it).
    fn admit(&self, ctx: &InputContext) -> Option<Admitted> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.counts.refused.set(self.counts.refused.get() + 1);
            self.counts.publish(ctx);
            hekate_engine::plugin::log::warn_limited!(
                "Input '{}': {} connections are open (max_connections); a new one was closed",
                self.name,
                self.max_connections
            );
            return None;
        }
        Some(Admitted(Arc::clone(&self.open)))
    }
}

/// A connection's place under `max_connections`, given back when it closes.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one shard counted; the report sums the shards.
#[derive(Default)]
struct Counts {
    tls_failed: Cell<u64>,
    refused: Cell<u64>,
    idle_closed: Cell<u64>,
    accept_failed: Cell<u64>,
}

impl Counts {
    fn publish(&self, ctx: &InputContext) {
        let mut fields = FieldCollector::default();
        fields.int(
            "TlsHandshakeFailedCount",
            self.tls_failed.get() as i64,
            "count",
        );
        fields.int("RefusedConnectionCount", self.refused.get() as i64, "count");
        fields.int("IdleClosedCount", self.idle_closed.get() as i64, "count");
        fields.int(
            "AcceptFailedCount",
            self.accept_failed.get() as i64,
            "count",
        );
        ctx.counters().set_extra(fields.fields);
    }
}

/// Accepts TCP connections until the inputs stop; each is served by a task of its own.
async fn accept_tcp(
    mut acceptor: handover::Acceptor,
    ctx: InputContext,
    shared: Rc<Shared>,
) -> Result<(), PluginError> {
    let connections = TaskGroup::new();
    loop {
        let accepted = future::or(async { Some(acceptor.accept().await) }, async {
            ctx.stopped().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                accept_failed(&ctx, &shared, &e).await;
                continue;
            }
        };
        if let Some(period) = shared.keep_alive
            && let Err(e) = set_keepalive(stream.as_raw_fd(), period)
        {
            tracing::warn!("Input '{}': cannot turn on keep-alive: {e}", shared.name);
        }
        let peer = stream.peer_addr().ok();
        let fd = Some(stream.as_raw_fd());
        connections.spawn(serve(stream, fd, peer, ctx.clone(), Rc::clone(&shared)));
    }
    // A reload that replaces this input on the same address keeps the listener for it.
    acceptor.park();
    connections.wait_idle().await;
    Ok(())
}

/// A failed accept (out of descriptors, say): counted (`AcceptFailedCount`), logged with a
/// limit, and a pause before the next, so that a process out of descriptors neither spins nor
/// logs a line per attempt; the connection waits in the backlog meanwhile.
async fn accept_failed(ctx: &InputContext, shared: &Shared, e: &dyn std::fmt::Display) {
    let counts = &shared.counts;
    counts.accept_failed.set(counts.accept_failed.get() + 1);
    counts.publish(ctx);
    hekate_engine::plugin::log::warn_limited!(
        "Input '{}': accepting a connection failed: {e}",
        shared.name
    );
    glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
}

/// Binds the unix stream socket at `path` (a stale socket file is replaced) with its mode.
fn bind_unix(path: &Path, perm: Option<u32>) -> Result<glommio::net::UnixListener, PluginError> {
    let fail = |why: String| PluginError::Other(format!("TcpInput cannot listen on {why}"));
    crate::unix::prepare(path, crate::unix::Kind::Stream).map_err(fail)?;
    crate::unix::bind_with_mode(path, perm, |p| {
        glommio::net::UnixListener::bind(p).map_err(std::io::Error::from)
    })
    .map_err(fail)
}

/// The listening shard of a unix socket: accepts every connection and hands them round robin
/// to the shards (itself included); a shard whose hand-off channel is full is passed over.
async fn accept_unix(
    listener: glommio::net::UnixListener,
    senders: Vec<SharedSender<AcceptedUnixStream>>,
    ctx: InputContext,
    shared: Rc<Shared>,
) -> Result<(), PluginError> {
    // Each channel is ready once its receiving shard has connected its end.
    let connecting = future::or(
        async {
            let mut connected = Vec::with_capacity(senders.len());
            for s in senders {
                connected.push(s.connect().await);
            }
            Some(connected)
        },
        async {
            ctx.stopped().await;
            None
        },
    );
    let Some(senders) = connecting.await else {
        return Ok(());
    };
    let connections = TaskGroup::new();
    let mut next = 0usize;
    loop {
        let accepted = future::or(async { Some(listener.shared_accept().await) }, async {
            ctx.stopped().await;
            None
        })
        .await;
        let mut stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                accept_failed(&ctx, &shared, &e).await;
                continue;
            }
        };
        // Turn 0 is this shard; turn t > 0 is shard t, through senders[t - 1].
        let turn = next % (senders.len() + 1);
        next = next.wrapping_add(1);
        if turn > 0 {
            use glommio::{GlommioError, ResourceType};
            match senders[turn - 1].try_send(stream) {
                Ok(()) => continue,
                Err(
                    GlommioError::WouldBlock(ResourceType::Channel(back))
                    | GlommioError::Closed(ResourceType::Channel(back)),
                ) => stream = back,
                // try_send fails with the item only.
                Err(_) => continue,
            }
        }
        let stream = stream.bind_to_executor();
        connections.spawn(serve(stream, None, None, ctx.clone(), Rc::clone(&shared)));
    }
    drop(senders);
    drop(listener);
    connections.wait_idle().await;
    Ok(())
}

/// Another shard of a unix socket input: serves what the listening shard hands it.
async fn receive_unix(
    receiver: SharedReceiver<AcceptedUnixStream>,
    ctx: InputContext,
    shared: Rc<Shared>,
) -> Result<(), PluginError> {
    let connections = TaskGroup::new();
    let receiver = future::or(async { Some(receiver.connect().await) }, async {
        ctx.stopped().await;
        None
    })
    .await;
    if let Some(receiver) = receiver {
        loop {
            let handed = future::or(receiver.recv(), async {
                ctx.stopped().await;
                None
            })
            .await;
            let Some(stream) = handed else { break };
            let stream = stream.bind_to_executor();
            connections.spawn(serve(stream, None, None, ctx.clone(), Rc::clone(&shared)));
        }
    }
    connections.wait_idle().await;
    Ok(())
}

/// Counts and logs a failed handshake (not when the inputs stop: that cuts handshakes short).
fn handshake_failed(shared: &Shared, ctx: &InputContext, peer: &str, why: std::fmt::Arguments<'_>) {
    if ctx.is_stopped() {
        return;
    }
    let counts = &shared.counts;
    counts.tls_failed.set(counts.tls_failed.get() + 1);
    counts.publish(ctx);
    // A flood of bad clients must not flood the log.
    hekate_engine::plugin::log::warn_limited!(
        "Input '{}': TLS handshake with {peer} failed: {why}; disconnected",
        ctx.name
    );
}

/// Serves one connection: the TLS handshake when the input speaks TLS, then its records until
/// the peer closes it or the inputs stop. `peer` is the client's address (none for unix sockets).
/// A TCP connection is registered by its descriptor, so that stopping shuts its reads down;
/// glommio's unix streams do not show theirs (`fd` is `None`), so their reads race the stop.
async fn serve<S>(
    mut stream: S,
    fd: Option<RawFd>,
    peer: Option<SocketAddr>,
    ctx: InputContext,
    shared: Rc<Shared>,
) where
    S: AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let Some(_admitted) = shared.admit(&ctx) else {
        return;
    };
    // Registered before the handshake, so that stopping also ends a pending handshake; dropped
    // before the socket.
    let _registered = fd.map(|fd| ctx.register_connection(fd));
    let race_stop = fd.is_none();
    let host = peer.map(|p| p.ip().to_string());
    let Some(tls) = &shared.tls else {
        read_records(&mut stream, &ctx, &shared, host, race_stop).await;
        return;
    };
    let peer_text = peer.map_or_else(|| "a local client".to_string(), |p| p.to_string());
    match within(HANDSHAKE_TIMEOUT, tls.accept(&mut stream)).await {
        Some(Ok(tls_stream)) => {
            read_records(tls_stream, &ctx, &shared, host, race_stop).await;
        }
        Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => handshake_failed(
            &shared,
            &ctx,
            &peer_text,
            format_args!("the peer closed the connection during the handshake"),
        ),
        Some(Err(e)) => handshake_failed(&shared, &ctx, &peer_text, format_args!("{e}")),
        None => handshake_failed(
            &shared,
            &ctx,
            &peer_text,
            format_args!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
        ),
    }
}

/// Reads one connection's records (plain or decrypted bytes) until the peer closes it, it stays
/// silent for `idle_timeout`, or the inputs stop.
async fn read_records<S: AsyncRead + Unpin>(
    mut stream: S,
    ctx: &InputContext,
    shared: &Shared,
    host: Option<String>,
    race_stop: bool,
) {
    let mut records = ctx.stream(&shared.spec, host.as_deref());
    loop {
        let read = if race_stop || shared.idle_timeout.is_some() {
            let buf = records.read_buf();
            let stop = async {
                if race_stop {
                    ctx.stopped().await;
                } else {
                    future::pending::<()>().await;
                }
                None
            };
            let idle = async {
                match shared.idle_timeout {
                    Some(t) => glommio::timer::sleep(t).await,
                    None => future::pending::<()>().await,
                }
                Some(Err(std::io::Error::from(std::io::ErrorKind::TimedOut)))
            };
            let read = async { Some(stream.read(buf).await) };
            match future::or(future::or(read, stop), idle).await {
                Some(r) => r,
                None => break,
            }
        } else {
            stream.read(records.read_buf()).await
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                records.feed(n).await;
                // Stopping: what was read is routed; what the kernel still holds stays unread
                // (a busy sender would otherwise keep the connection alive forever).
                if ctx.is_stopped() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let counts = &shared.counts;
                counts.idle_closed.set(counts.idle_closed.get() + 1);
                counts.publish(ctx);
                hekate_engine::plugin::log::warn_limited!(
                    "Input '{}': closed a connection from {} that sent nothing for {:?} (idle_timeout)",
                    ctx.name,
                    host.as_deref().unwrap_or("a local client"),
                    shared.idle_timeout.unwrap_or_default()
                );
                break;
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
        let e =
            build("[t]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nnet = \"unixpacket\"\n")
                .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = build(
            "[t]\ntype = \"TcpInput\"\nnet = \"unix\"\naddress = \"/tmp/s\"\nunix_socket_perm = \"rw\"\n",
        )
        .unwrap_err();
        assert!(e.contains("octal"), "{e}");
        let e = build(
            "[t]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nunix_socket_perm = \"0660\"\n",
        )
        .unwrap_err();
        assert!(e.contains("applies to `net = \"unix\"` only"), "{e}");
        let e =
            build("[t]\ntype = \"TcpInput\"\naddress = \":1\"\nmax_connections = 0\n").unwrap_err();
        assert!(e.contains("`max_connections` must be at least 1"), "{e}");
        let e = build("[t]\ntype = \"TcpInput\"\naddress = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("address"), "{e}");
        let e = build("[t]\ntype = \"TcpInput\"\naddress = \":5565\"\nsplitter = \"Nope\"\n")
            .unwrap_err();
        assert!(e.contains("Nope"), "{e}");
    }
}

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
//! With `net = "unixgram"`, `address` is the path of a unix datagram socket, read by one worker
//! shard (a path cannot be shared with SO_REUSEPORT): hekate can own `/dev/log` this way, with
//! `unix_socket_perm = "0666"` so that every local process may log. A stale socket file is
//! replaced, a live one refused, and the file is removed when hekate stops.
//!
//! ```toml
//! [DevLog]
//! type = "UdpInput"
//! net = "unixgram"
//! address = "/run/hekate/log.sock"
//! unix_socket_perm = "0666"
//! splitter = "NullSplitter"
//! decoder = "SyslogDecoder"
//!
//! [SyslogDecoder]
//! ```
//!
//! Options: `address` (required), `net` ("udp", "udp4", "udp6" or "unixgram"),
//! `unix_socket_perm` (unixgram: the socket file's mode, octal), `signer` subsections,
//! `set_hostname` (false), `receive_buffer_size` (0: the system's default; raise it, and
//! `net.core.rmem_max`, for bursts of syslog over UDP), plus the common input options. The default
//! splitter is NullSplitter (one record per datagram) and the default decoder none, as in Heka;
//! set `splitter = "HekaFramingSplitter"` and `decoder = "ProtobufDecoder"` for Heka streams.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::sync::Arc;

use futures_lite::future;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlacement, InputPlugin, ListenAddress, LocalBoxFuture, PluginError,
    PluginType, options_of,
};
use hekate_engine::plugin::{InputContext, RecordStream, StreamSpec, handover};
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
    /// Network: "udp", "udp4", "udp6", or "unixgram" (`address` is then a socket path).
    #[serde(default = "default_net")]
    net: String,
    /// `net = "unixgram"`: the socket file's mode, in octal ("0666"); default: as the umask
    /// leaves it.
    #[serde(default)]
    unix_socket_perm: Option<String>,
    /// Trusted signers.
    #[serde(default)]
    signer: BTreeMap<String, SignerConfig>,
    /// Hostname of payload messages = the sender's address.
    #[serde(default)]
    set_hostname: bool,
    /// Bytes of the socket's receive buffer (SO_RCVBUF; the kernel caps it at
    /// `net.core.rmem_max`); 0: the system's default. Bursts beyond what the buffer holds are
    /// dropped by the kernel (counted in `/proc/net/snmp`, `RcvbufErrors`).
    #[serde(default)]
    receive_buffer_size: usize,
}

/// Where the input listens.
#[derive(Debug)]
enum Listen {
    Udp(SocketAddr),
    Unix { path: PathBuf, perm: Option<u32> },
}

#[derive(Debug)]
struct UdpInput {
    listen: Listen,
    set_hostname: bool,
    receive_buffer_size: usize,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let listen = match opts.net.as_str() {
        "udp" | "udp4" | "udp6" => {
            if opts.unix_socket_perm.is_some() {
                return Err(section.error_at_key(
                    "unix_socket_perm",
                    format!(
                        "`unix_socket_perm` applies to `net = \"unixgram\"` only (section [{}])",
                        section.name()
                    ),
                ));
            }
            Listen::Udp(address_option(section, "address", &opts.address)?)
        }
        "unixgram" => Listen::Unix {
            path: crate::unix::unix_path(section, &opts.address)?,
            perm: crate::unix::parse_perm(section, opts.unix_socket_perm.as_deref())?,
        },
        other => {
            return Err(section.error_at_value(
                "net",
                format!(
                    "`net` = \"{other}\" is not supported by UdpInput (section [{}]); use \"udp\", \"udp4\", \"udp6\" or \"unixgram\"",
                    section.name()
                ),
            ));
        }
    };
    let mut spec = ctx.stream_spec(section, "NullSplitter", None)?;
    spec.signers = signer_keys(section, &opts.signer)?;
    Ok(Built::Input(Arc::new(UdpInput {
        listen,
        set_hostname: opts.set_hostname,
        receive_buffer_size: opts.receive_buffer_size,
        spec,
    })))
}

impl InputPlugin for UdpInput {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, None))
    }

    fn placement(&self) -> InputPlacement {
        match self.listen {
            Listen::Udp(_) => InputPlacement::EveryShard,
            Listen::Unix { .. } => InputPlacement::OneShard,
        }
    }

    fn listen_addresses(&self) -> Vec<ListenAddress> {
        match self.listen {
            Listen::Udp(address) => vec![ListenAddress::Udp(address)],
            // Unix paths are checked when the input binds them (crate::unix::prepare).
            Listen::Unix { .. } => Vec::new(),
        }
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let records = ctx.stream(&self.spec, None);
        let set_hostname = self.set_hostname;
        match &self.listen {
            Listen::Udp(address) => {
                let socket = crate::common::udp_socket(&ctx, *address, self.receive_buffer_size)
                    .map_err(|e| {
                        PluginError::Other(format!("UdpInput cannot bind {address}: {e}"))
                    })?;
                Ok(Box::pin(receive(
                    ctx,
                    records,
                    Socket::Udp {
                        socket,
                        set_hostname,
                    },
                )))
            }
            Listen::Unix { path, perm } => {
                let fail = |why: String| PluginError::Other(format!("UdpInput cannot bind {why}"));
                crate::unix::prepare(path, crate::unix::Kind::Datagram).map_err(fail)?;
                let socket = crate::unix::bind_with_mode(path, *perm, |p| {
                    glommio::net::UnixDatagram::bind(p).map_err(std::io::Error::from)
                })
                .map_err(fail)?;
                let file = crate::unix::SocketFile(path.clone());
                Ok(Box::pin(async move {
                    let result = receive(ctx, records, Socket::Unix(socket)).await;
                    drop(file);
                    result
                }))
            }
        }
    }
}

/// The socket datagrams arrive on.
enum Socket {
    Udp {
        socket: glommio::net::UdpSocket,
        set_hostname: bool,
    },
    Unix(glommio::net::UnixDatagram),
}

/// Datagrams taken per wake-up before the input lets the shard's other tasks run.
const DRAIN: usize = 64;

/// Receives datagrams until the inputs stop; each is split on its own.
async fn receive(
    ctx: InputContext,
    mut records: RecordStream,
    socket: Socket,
) -> Result<(), PluginError> {
    let failed = |e: &dyn std::fmt::Display| {
        hekate_engine::plugin::log::warn_limited!(
            "Input '{}': receiving a datagram failed: {e}",
            ctx.name
        );
    };
    loop {
        match &socket {
            Socket::Udp {
                socket,
                set_hostname,
            } => {
                match crate::common::datagram_ready(&ctx, socket).await {
                    None => break,
                    Some(Err(e)) => {
                        failed(&e);
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                    Some(Ok(())) => {}
                }
                // Then what is queued, without waiting.
                for _ in 0..DRAIN {
                    records.reserve(MAX_DATAGRAM);
                    match try_recv_from(socket, records.read_buf()) {
                        Ok(Some((n, from))) => {
                            let host = set_hostname.then(|| from.ip().to_string());
                            records.feed_datagram(n, host.as_deref()).await;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            failed(&e);
                            break;
                        }
                    }
                }
                glommio::yield_if_needed().await;
            }
            Socket::Unix(unix) => {
                records.reserve(MAX_DATAGRAM);
                let received =
                    future::or(async { Some(unix.recv(records.read_buf()).await) }, async {
                        ctx.stopped().await;
                        None
                    })
                    .await;
                match received {
                    None => break,
                    Some(Ok(n)) => records.feed_datagram(n, None).await,
                    Some(Err(e)) => {
                        failed(&e);
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    // A reload that replaces this input on the same address keeps the socket (and the
    // datagrams waiting in it) for it.
    if let Socket::Udp { socket, .. } = &socket
        && let Ok(at) = socket.local_addr()
    {
        handover::park(ListenAddress::Udp(at), ctx.shard, socket);
    }
    Ok(())
}

/// The next queued datagram into `buf` and its sender, without waiting (`None`: none queued).
fn try_recv_from(
    socket: &glommio::net::UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<Option<(usize, std::net::SocketAddr)>> {
    // SAFETY: the socket stays open for the duration of this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    // SAFETY: initialised bytes are valid `MaybeUninit<u8>`, and the kernel only writes them.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    match socket2::SockRef::from(&fd).recv_from_with_flags(uninit, libc::MSG_DONTWAIT) {
        Ok((n, from)) => Ok(from.as_socket().map(|a| (n, a))),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
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
    fn the_receive_buffer_size_is_an_option() {
        build(
            "[u]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:1\"\nreceive_buffer_size = 8388608\n",
        )
        .unwrap();
        let e = build(
            "[u]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:1\"\nreceive_buffer_size = -1\n",
        )
        .unwrap_err();
        assert!(e.contains("invalid value: integer `-1`"), "{e}");
    }

    #[test]
    fn bad_unix_options_are_refused() {
        let e = build("[u]\ntype = \"UdpInput\"\nnet = \"unixpacket\"\naddress = \"/tmp/s\"\n")
            .unwrap_err();
        assert!(e.contains("\"unixgram\""), "{e}");
        let e = build(
            "[u]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:1\"\nunix_socket_perm = \"0666\"\n",
        )
        .unwrap_err();
        assert!(e.contains("applies to `net = \"unixgram\"` only"), "{e}");
        let long = "x".repeat(200);
        let e = build(&format!(
            "[u]\ntype = \"UdpInput\"\nnet = \"unixgram\"\naddress = \"/tmp/{long}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("not a unix socket path"), "{e}");
        let e = build(
            "[u]\ntype = \"UdpInput\"\nnet = \"unixgram\"\naddress = \"/tmp/s\"\nunix_socket_perm = \"01777\"\n",
        )
        .unwrap_err();
        assert!(e.contains("octal file mode"), "{e}");
    }
}

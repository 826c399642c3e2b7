//! Small helpers shared by several plugins.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use hekate_config::{ConfigError, PluginSection};
use hekate_model::framing::SignerKeys;
use serde::Deserialize;

/// The UDP socket of a datagram input on `address` for this shard: the one a reload handed over
/// (with the datagrams waiting in it) or a new one, with a receive buffer of `receive_buffer`
/// bytes (0: the system's default; one the kernel refuses is logged, not fatal).
pub(crate) fn udp_socket(
    ctx: &hekate_engine::plugin::InputContext,
    address: SocketAddr,
    receive_buffer: usize,
) -> std::io::Result<glommio::net::UdpSocket> {
    use std::os::fd::AsRawFd as _;
    let socket = hekate_engine::plugin::handover::udp_socket(address, ctx.shard)?;
    if receive_buffer > 0 {
        // SAFETY: the socket stays open for the duration of this call.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket.as_raw_fd()) };
        if let Err(e) = socket2::SockRef::from(&fd).set_recv_buffer_size(receive_buffer) {
            tracing::warn!(
                "Input '{}': cannot set the receive buffer to {receive_buffer} bytes: {e}",
                ctx.name
            );
        }
    }
    Ok(socket)
}

/// Waits until a datagram is queued on `socket` (`Some`), or the input stops (`None`). The
/// wait is a peek, which a stop cancels without taking a datagram (a cancelled receive may
/// have taken one, lost with it): what is queued at a reload stays in the socket for the input
/// that takes it over. The caller then takes what is queued without waiting.
pub(crate) async fn datagram_ready(
    ctx: &hekate_engine::plugin::InputContext,
    socket: &glommio::net::UdpSocket,
) -> Option<glommio::Result<(), ()>> {
    futures_lite::future::or(
        async { Some(socket.peek_from(&mut [0u8; 1]).await.map(drop)) },
        async {
            ctx.stopped().await;
            None
        },
    )
    .await
}

/// Resolves a Heka address: `host:port`, or `:port` for every interface.
pub(crate) fn resolve_address(address: &str) -> Result<SocketAddr, String> {
    let full = if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_string()
    };
    full.to_socket_addrs()
        .map_err(|e| format!("address `{address}` is not a valid host:port: {e}"))?
        .next()
        .ok_or_else(|| format!("address `{address}` resolves to no address"))
}

/// Reads a socket address option, located in the config on error.
pub(crate) fn address_option(
    section: &PluginSection,
    key: &str,
    address: &str,
) -> Result<SocketAddr, ConfigError> {
    resolve_address(address)
        .map_err(|e| section.error_at_value(key, format!("{e} in section [{}]", section.name())))
}

/// A polling input's `ticker_interval` (common input option), `default` when unset; `what` says
/// what the period is for, in the error refusing 0.
pub(crate) fn ticker_period(
    section: &PluginSection,
    default: Duration,
    what: &str,
) -> Result<Duration, ConfigError> {
    let every = section
        .input()
        .and_then(|i| i.ticker_interval)
        .unwrap_or(default);
    if every.is_zero() {
        return Err(section.error_at_value(
            "ticker_interval",
            format!(
                "`ticker_interval` ({what}) must be at least 1 second in section [{}]",
                section.name()
            ),
        ));
    }
    Ok(every)
}

/// Turns on TCP keep-alive with the given idle period (seconds).
pub(crate) fn set_keepalive(fd: RawFd, period_secs: u32) -> std::io::Result<()> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the caller's socket stays open for the duration of this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let keepalive =
        socket2::TcpKeepalive::new().with_time(Duration::from_secs(u64::from(period_secs.max(1))));
    socket2::SockRef::from(&fd).set_tcp_keepalive(&keepalive)
}

/// The schema of an option that takes any TOML table (`[name.config]`).
pub(crate) fn any_table(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object" })
}

/// One `[name.signer.<signer>_<version>]` subsection.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignerConfig {
    /// The shared secret.
    pub(crate) hmac_key: String,
}

/// Builds the trusted keys of `signer` subsections (`None` when there are none).
pub(crate) fn signer_keys(
    section: &PluginSection,
    signers: &BTreeMap<String, SignerConfig>,
) -> Result<Option<Arc<SignerKeys>>, ConfigError> {
    if signers.is_empty() {
        return Ok(None);
    }
    let mut keys = SignerKeys::new();
    for (name, cfg) in signers {
        keys.insert_section(name, cfg.hmac_key.as_bytes())
            .map_err(|e| {
                section.error_at_key(
                    &format!("signer.{name}"),
                    format!("{e} in section [{}]", section.name()),
                )
            })?;
    }
    Ok(Some(Arc::new(keys)))
}

/// Test support: the sample TOML of a plugin's `//!` block, and building it.
#[cfg(test)]
pub(crate) mod testing {
    use hekate_config::Config;
    use hekate_engine::runtime::Pipeline;

    /// The first ```toml block of the `//!` docs of a source file.
    pub(crate) fn doc_sample(source: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in source.lines() {
            let Some(doc) = line.strip_prefix("//!") else {
                break;
            };
            let doc = doc.strip_prefix(' ').unwrap_or(doc);
            if inside {
                if doc.starts_with("```") {
                    return out;
                }
                out.push_str(doc);
                out.push('\n');
            } else if doc.starts_with("```toml") {
                inside = true;
            }
        }
        panic!("no ```toml block in the module docs");
    }

    /// Builds a config text with the crate's registry.
    pub(crate) fn build(toml: &str) -> Result<Pipeline, String> {
        let registry = crate::registry();
        let config = Config::from_str(toml, "sample.toml").map_err(|e| e.to_string())?;
        Pipeline::build(&config, &registry).map_err(|e| e.to_string())
    }

    /// Builds a plugin's doc sample, with an input added when the sample has none.
    pub(crate) fn build_doc_sample(source: &str) -> Pipeline {
        let mut sample = doc_sample(source);
        if !sample.contains("Input\"") && !sample.contains("Input]") {
            sample.push_str("\n[SampleInput]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n");
        }
        build(&sample).unwrap_or_else(|e| panic!("the doc sample does not build: {e}\n{sample}"))
    }
}

#[cfg(test)]
mod keepalive_tests {
    use std::os::fd::AsRawFd as _;
    use std::time::Duration;

    #[test]
    fn keepalive_is_on_with_the_idle_period() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        super::set_keepalive(stream.as_raw_fd(), 120).unwrap();
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(120));
    }
}

//! HttpListenInput: an HTTP server; the body of each request becomes a message, with the
//! request's details and query parameters as fields, as in Heka.
//!
//! Each request body goes through the input's splitter (NullSplitter by default: the whole body
//! is one record) and decoder (none by default). Messages built from a body have Type
//! `heka.httpdata.request`, Severity 6, Logger = the input's name, Hostname = the client's IP
//! address, Payload = the body, and the fields `Protocol` ("HTTP/1.1"), `UserAgent`,
//! `ContentType`, `Path`, `Host` (the host the client asked for, without port), `RemoteAddr`
//! (the client's IP address), each header named in `request_headers` that the request carries
//! (field name as written in the option), and every query parameter (`?a=1&b=x+y` gives `a` =
//! "1" and `b` = "x y"; a repeated one gives a field per value). A request with an empty body
//! makes no message (as in Heka) but is answered 200. Any method is accepted.
//!
//! Every response carries the `headers` of the config. The answers:
//!
//! | status | when | counted in |
//! |---|---|---|
//! | 200 | the body was taken into the input's queue | (received, delivered) |
//! | 401 | `auth_type` is set and the credentials are missing or wrong | `BadAuthCount` |
//! | 408 | the body did not arrive within `read_timeout` (connection closed) | `TimedOutCount` |
//! | 413 | the body is larger than `max_message_size` — refused on `Content-Length` before any of it is read, or as soon as a chunked body passes the limit (connection closed) | `TooLargeCount` |
//! | 503 | `max_connections` are open (the new connection gets this answer to its first request within 2 s, then is closed; beyond 64 such connections on a shard, new ones are closed at once) | `RefusedConnectionCount` |
//! | 503 | the pipeline did not take the body within `busy_timeout` (`Retry-After: 1`) | `BusyCount` |
//!
//! A client whose request head does not arrive within `read_timeout` (slowloris) is
//! disconnected (`TimedOutCount`); so is a keep-alive connection that sends nothing for
//! `read_timeout` after its last answer, or a new one that sends nothing at all (as Go's
//! server does when its idle timeout is not set: counted in `IdleClosedCount`, not as bad
//! input); a malformed request gets hyper's 400
//! (`BadRequestCount`); request heads are limited to 64 KiB (431). With `use_tls`, a client that
//! does not complete the TLS handshake within 10 seconds is disconnected
//! (`TlsHandshakeFailedCount`).
//!
//! ```toml
//! [HttpListenInput]
//! address = "127.0.0.1:8325"
//! request_headers = ["X-Request-Id"]
//! auth_type = "Basic"
//! username = "ingest"
//! password = "s3cret"
//! max_message_size = 1048576
//!
//! [HttpListenInput.headers]
//! X-Served-By = "hekate"
//! ```
//!
//! API keys (`X-API-Key` request header) and TLS:
//!
//! ```toml
//! [SecureHttp]
//! type = "HttpListenInput"
//! address = ":8443"
//! auth_type = "API"
//! api_key = "0c9f2e0a"
//! use_tls = true
//!
//! [SecureHttp.tls]
//! cert_file = "/etc/hekate/server.pem"
//! key_file = "/etc/hekate/server-key.pem"
//! ```
//!
//! **How it runs.** The server is hyper (HTTP/1.1) on a tokio runtime that runs on a thread of
//! its own, pinned to the shard's core, on every worker shard: each binds `address` with
//! SO_REUSEPORT, so the kernel spreads connections over the cores as for TcpInput. A request's
//! body crosses to the shard over a bounded ring of 64 requests (the engine's foreign-runtime
//! bridge, `hekate_engine::plugin::bridge`), where it is split, decoded and routed. **Back-
//! pressure:** when the pipeline is slow the ring fills, and a request waits for room, so
//! clients see slower answers; one that finds no room within `busy_timeout` is answered 503.
//! The 200 means the body is in hekate's queue. Memory is bounded: at most 64 bodies in the
//! ring, plus one per open connection (each at most `max_message_size`).
//!
//! Options: `address` ("127.0.0.1:8325"), `headers` (response headers: a table of name = value
//! or list of values), `request_headers` ([]), `auth_type` ("", "Basic" or "API"),
//! `username`/`password` (Basic), `api_key` (API), `use_tls` (false) with Heka's `[tls]`
//! options, `max_connections`, `max_message_size`, `read_timeout` (10 s), `busy_timeout`
//! (5 s), plus the common input options (default splitter:
//! NullSplitter; default decoder: none).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use futures_lite::future;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::bridge::{self, BridgeSender, ForeignRuntime, SendError};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlugin, ListenAddress, LocalBoxFuture,
    OptionSpec, PluginError, PluginType, RecordStream, ReportSink as _, StreamSpec, handover,
    options_of,
};
use hekate_model::writer::MessageWriter;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::common::address_option;
use crate::http::{HeaderValues, header_map, query_pairs};
use crate::tls::{HANDSHAKE_TIMEOUT, TlsOptions, with_tls_options};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "HttpListenInput",
    source: include_str!("http_listen.rs"),
    options,
    default_matcher: None,
    build,
};

/// Requests in flight between the HTTP thread and the shard.
const RING: usize = 64;
/// The largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Connections beyond `max_connections` answered 503 at once on one shard; more are closed
/// as soon as they are accepted (both counted in `RefusedConnectionCount`).
const MAX_REFUSING: usize = 64;
/// How long a connection beyond `max_connections` has to send the request it is answered 503.
const REFUSED_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the shard publishes the server's counters.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

fn options() -> Vec<OptionSpec> {
    with_tls_options(options_of::<Options>())
}

fn default_address() -> String {
    "127.0.0.1:8325".into()
}

fn default_read_timeout() -> u64 {
    10
}

fn default_busy_timeout() -> u64 {
    5
}

/// HttpListenInput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Listen address (`host:port`, or `:port` for every interface).
    #[serde(default = "default_address")]
    address: String,
    /// Headers added to every response: `Name = "value"` or `Name = ["v1", "v2"]`.
    #[serde(default)]
    headers: BTreeMap<String, HeaderValues>,
    /// Request headers copied into fields of the message (field name as written here), when
    /// the request carries them.
    #[serde(default)]
    request_headers: Vec<String>,
    /// "" (no authentication), "Basic" (`username` and `password`) or "API" (`api_key`, sent
    /// by clients in the `X-API-Key` header). A request without the right credentials gets 401.
    #[serde(default)]
    auth_type: String,
    /// Basic authentication: the user name.
    #[serde(default)]
    username: String,
    /// Basic authentication: the password.
    #[serde(default)]
    password: String,
    /// API authentication: the key clients send in `X-API-Key`.
    #[serde(default)]
    api_key: String,
    /// Speak HTTPS (needs `tls.cert_file` and `tls.key_file`).
    #[serde(default)]
    use_tls: bool,
    /// TLS settings (the `tls.*` options), used when `use_tls` is true.
    #[serde(default)]
    tls: Option<TlsOptions>,
    /// Most connections open at once, over every shard; a connection beyond it is answered 503
    /// and closed (`RefusedConnectionCount`). Default: nine tenths of `ulimit -n`.
    #[serde(default)]
    max_connections: Option<u32>,
    /// Largest request body, in bytes; a larger one is answered 413 without being read
    /// (`TooLargeCount`). Default: the global `max_message_size`.
    #[serde(default)]
    max_message_size: Option<u32>,
    /// Seconds a client has to send a request's head, and then its body; past it the
    /// connection is closed (head) or answered 408 (body) and counted (`TimedOutCount`). A
    /// keep-alive connection that sends no new request for this long is closed too
    /// (`IdleClosedCount`).
    #[serde(default = "default_read_timeout")]
    read_timeout: u64,
    /// Seconds a request waits for the pipeline to take its body before it is answered 503
    /// (`BusyCount`).
    #[serde(default = "default_busy_timeout")]
    busy_timeout: u64,
}

/// How requests prove who sends them.
#[derive(Debug)]
enum Auth {
    None,
    Basic { username: String, password: String },
    Api(String),
}

/// What every connection of the input needs, on every shard.
#[derive(Debug)]
struct Settings {
    name: String,
    headers: HeaderMap,
    request_headers: Vec<(String, HeaderName)>,
    auth: Auth,
    max_body: usize,
    read_timeout: Duration,
    busy_timeout: Duration,
    max_connections: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Debug)]
struct HttpListenInput {
    address: SocketAddr,
    settings: Arc<Settings>,
    /// Connections open now, over every shard.
    open: Arc<AtomicUsize>,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let address = address_option(section, "address", &opts.address)?;
    let refuse = |key: &str, why: String| {
        Err(section.error_at_key(key, format!("{why} (section [{}])", section.name())))
    };
    let auth = match opts.auth_type.as_str() {
        "" => Auth::None,
        "Basic" if opts.username.is_empty() || opts.password.is_empty() => {
            return refuse(
                "auth_type",
                "`auth_type = \"Basic\"` needs `username` and `password`".into(),
            );
        }
        "Basic" => Auth::Basic {
            username: opts.username.clone(),
            password: opts.password.clone(),
        },
        "API" if opts.api_key.is_empty() => {
            return refuse("auth_type", "`auth_type = \"API\"` needs `api_key`".into());
        }
        "API" => Auth::Api(opts.api_key.clone()),
        other => {
            return Err(section.error_at_value(
                "auth_type",
                format!(
                    "`auth_type` = \"{other}\" is not known (section [{}]); use \"\", \"Basic\" or \"API\"",
                    section.name()
                ),
            ));
        }
    };
    let mut request_headers = Vec::with_capacity(opts.request_headers.len());
    for h in &opts.request_headers {
        match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => request_headers.push((h.clone(), name)),
            Err(_) => {
                return refuse(
                    "request_headers",
                    format!("\"{h}\" is not a valid HTTP header name"),
                );
            }
        }
    }
    let max_connections = match opts.max_connections {
        Some(0) => {
            return refuse(
                "max_connections",
                "`max_connections` must be at least 1".into(),
            );
        }
        Some(n) => n as usize,
        None => crate::input::tcp::default_max_connections(),
    };
    let max_body = match opts.max_message_size {
        Some(0) => {
            return refuse(
                "max_message_size",
                "`max_message_size` must be at least 1".into(),
            );
        }
        Some(n) => n as usize,
        None => ctx.global.max_message_size as usize,
    };
    if opts.read_timeout == 0 {
        return refuse("read_timeout", "`read_timeout` must be at least 1".into());
    }
    let spec = ctx.stream_spec(section, "NullSplitter", None)?;
    let tls = crate::tls::server_config(section, opts.use_tls, opts.tls.as_ref())?;
    opts.tls
        .iter()
        .flat_map(|t| t.files())
        .for_each(|f| ctx.reads_file(f));
    Ok(Built::Input(Arc::new(HttpListenInput {
        address,
        settings: Arc::new(Settings {
            name: section.name().to_string(),
            headers: header_map(section, "headers", &opts.headers)?,
            request_headers,
            auth,
            max_body,
            read_timeout: Duration::from_secs(opts.read_timeout),
            busy_timeout: Duration::from_secs(opts.busy_timeout),
            max_connections,
            tls,
        }),
        open: Arc::new(AtomicUsize::new(0)),
        spec,
    })))
}

/// A request body on its way to the shard.
struct Received {
    /// The client's IP address (the messages' Hostname).
    remote: String,
    /// The encoded fields of the messages.
    fields: Vec<u8>,
    body: Bytes,
}

/// What one shard's server counted; the report sums the shards.
#[derive(Debug, Default)]
struct Counts {
    bad_auth: AtomicU64,
    too_large: AtomicU64,
    timed_out: AtomicU64,
    idle_closed: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    bad_request: AtomicU64,
    tls_failed: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn publish(&self, ctx: &InputContext) {
        let mut fields = FieldCollector::default();
        for (name, c) in [
            ("BadAuthCount", &self.bad_auth),
            ("TooLargeCount", &self.too_large),
            ("TimedOutCount", &self.timed_out),
            ("IdleClosedCount", &self.idle_closed),
            ("RefusedConnectionCount", &self.refused),
            ("BusyCount", &self.busy),
            ("BadRequestCount", &self.bad_request),
            ("TlsHandshakeFailedCount", &self.tls_failed),
        ] {
            fields.int(name, c.load(Ordering::Relaxed) as i64, "count");
        }
        ctx.counters().set_extra(fields.fields);
    }
}

impl InputPlugin for HttpListenInput {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("heka.httpdata.request")))
    }

    fn listen_addresses(&self) -> Vec<ListenAddress> {
        vec![ListenAddress::Tcp(self.address)]
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let address = ListenAddress::Tcp(self.address);
        let listener = match handover::adopt(address, ctx.shard) {
            Some(fd) => {
                let l = std::net::TcpListener::from(fd);
                l.set_nonblocking(true).map(|()| l)
            }
            None => bind(self.address),
        }
        .and_then(|l| {
            // Kept here for a reload that replaces this input on the same address.
            let keep = l.try_clone()?;
            Ok((l, keep))
        })
        .map_err(|e| {
            PluginError::Other(format!(
                "HttpListenInput cannot listen on {}: {e}",
                self.address
            ))
        })?;
        let (listener, keep) = listener;
        let (tx, mut rx) = bridge::channel::<Received>(RING);
        let counts = Arc::new(Counts::default());
        let server = Server {
            settings: Arc::clone(&self.settings),
            open: Arc::clone(&self.open),
            counts: Arc::clone(&counts),
            refusing: Cell::new(0),
        };
        let mut runtime = ForeignRuntime::start(
            &format!("http-{}-{}", ctx.name, ctx.shard),
            ctx.core,
            move || server.run(listener, tx),
        )
        .map_err(|e| PluginError::Other(format!("HttpListenInput cannot start its thread: {e}")))?;
        let mut stream = ctx.stream(&self.spec, None);
        stream.set_origin(&ctx.name, Some("heka.httpdata.request"));
        stream.set_severity(Some(6));
        // The server's counters, published by a task of their own: they keep moving (busy
        // answers, refused connections) while the input waits for a stalled pipeline.
        let (c, counting) = (Arc::clone(&counts), ctx.clone());
        glommio::spawn_local(async move {
            while !counting.is_stopped() {
                future::or(glommio::timer::sleep(PUBLISH_EVERY), counting.stopped()).await;
                c.publish(&counting);
            }
        })
        .detach();
        Ok(Box::pin(async move {
            enum Next {
                Request(Option<Received>),
                Stop,
            }
            let mut stopping = false;
            loop {
                // What is in the ring is taken without a timer or a wait per request.
                while let Some(r) = rx.try_recv() {
                    deliver(&mut stream, r).await;
                }
                ctx.flush().await;
                let next = if stopping {
                    Next::Request(rx.recv().await)
                } else {
                    future::or(async { Next::Request(rx.recv().await) }, async {
                        ctx.stopped().await;
                        Next::Stop
                    })
                    .await
                };
                match next {
                    Next::Request(Some(r)) => {
                        deliver(&mut stream, r).await;
                        ctx.flush().await;
                    }
                    Next::Request(None) => break,
                    // What was answered 200 is still routed: the server stops, then the ring
                    // is drained until its sender is gone.
                    Next::Stop => {
                        handover::park(address, ctx.shard, &keep);
                        runtime.stop();
                        stopping = true;
                    }
                }
            }
            counts.publish(&ctx);
            if !stopping && !ctx.is_stopped() {
                return Err(PluginError::Other(format!(
                    "HttpListenInput '{}': the HTTP server ended",
                    ctx.name
                )));
            }
            Ok(())
        }))
    }
}

/// Splits, decodes and routes one request's body, with its fields and its client as Hostname.
/// What it routed is pushed to the lanes by the caller's next flush, once per drained ring.
async fn deliver(stream: &mut RecordStream, r: Received) {
    stream.set_fields(&r.fields);
    stream.reserve(r.body.len());
    stream.read_buf()[..r.body.len()].copy_from_slice(&r.body);
    stream
        .feed_datagram_unflushed(r.body.len(), Some(&r.remote))
        .await;
}

/// A listener bound with SO_REUSEPORT (every shard binds the address), non-blocking for tokio.
fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The HTTP side of one shard, on its tokio thread.
struct Server {
    settings: Arc<Settings>,
    open: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    /// Connections beyond `max_connections` being answered 503 on this shard now.
    refusing: Cell<usize>,
}

/// A place among the connections being answered 503, given back when it closes.
struct Refusing<'a>(&'a Cell<usize>);

impl<'a> Refusing<'a> {
    fn new(count: &'a Cell<usize>) -> Self {
        count.set(count.get() + 1);
        Refusing(count)
    }
}

impl Drop for Refusing<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A connection's place under `max_connections`, given back when it closes.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Server {
    async fn run(self, listener: std::net::TcpListener, tx: BridgeSender<Received>) {
        let name = self.settings.name.clone();
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("Input '{name}': cannot serve HTTP: {e}");
                return;
            }
        };
        let server = Rc::new(self);
        let tx = Rc::new(tx);
        let tls = server
            .settings
            .tls
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    warn_limited!("Input '{name}': accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let admitted = server.admit();
            if admitted.is_none() && server.refusing.get() >= MAX_REFUSING {
                // Already answering that many 503s: this one is closed at once.
                drop(socket);
                continue;
            }
            let (server, tx, tls) = (Rc::clone(&server), Rc::clone(&tx), tls.clone());
            tokio::task::spawn_local(async move {
                match tls {
                    None => server.connection(socket, peer, admitted, tx).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await
                        {
                            Ok(Ok(tls)) => server.connection(tls, peer, admitted, tx).await,
                            Ok(Err(e)) => server.tls_failed(peer, &e.to_string()),
                            Err(_) => server.tls_failed(peer, "no handshake within 10 s"),
                        }
                    }
                }
            });
        }
    }

    fn tls_failed(&self, peer: SocketAddr, why: &str) {
        Counts::add(&self.counts.tls_failed);
        warn_limited!(
            "Input '{}': TLS handshake with {peer} failed: {why}",
            self.settings.name
        );
    }

    /// Takes a place for a new connection, or `None` when `max_connections` are open.
    fn admit(&self) -> Option<Admitted> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.settings.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            Counts::add(&self.counts.refused);
            warn_limited!(
                "Input '{}': {} connections are open (max_connections); a new one was answered 503",
                self.settings.name,
                self.settings.max_connections
            );
            return None;
        }
        Some(Admitted(Arc::clone(&self.open)))
    }

    /// Serves one connection: its requests (keep-alive), under the read and idle timeouts.
    async fn connection<I>(
        self: Rc<Self>,
        io: I,
        peer: SocketAddr,
        admitted: Option<Admitted>,
        tx: Rc<BridgeSender<Received>>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let s = &self.settings;
        // Whether bytes were read since the last answer was written: a timeout with nothing
        // read is an idle connection, not a slow client.
        let pending = Rc::new(Cell::new(false));
        let io = TokioIo::new(Watched {
            io,
            pending: Rc::clone(&pending),
        });
        let refused = admitted.is_none();
        let _refusing = refused.then(|| Refusing::new(&self.refusing));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(if refused {
                s.read_timeout.min(REFUSED_READ_TIMEOUT)
            } else {
                s.read_timeout
            })
            .max_buf_size(MAX_HEAD)
            .keep_alive(!refused);
        let server = Rc::clone(&self);
        let service = hyper::service::service_fn(move |req| {
            let (server, tx) = (Rc::clone(&server), Rc::clone(&tx));
            async move {
                if refused {
                    return Ok::<_, Infallible>(
                        server.answer(StatusCode::SERVICE_UNAVAILABLE, true),
                    );
                }
                Ok(server.request(req, peer, &tx).await)
            }
        });
        if let Err(e) = http.serve_connection(io, service).await {
            if e.is_timeout() && !pending.get() {
                Counts::add(&self.counts.idle_closed);
            } else if e.is_timeout() {
                Counts::add(&self.counts.timed_out);
                warn_limited!(
                    "Input '{}': {peer} did not send a request head within {:?}; disconnected",
                    s.name,
                    s.read_timeout
                );
            } else if e.is_parse() || e.is_parse_too_large() {
                Counts::add(&self.counts.bad_request);
                warn_limited!("Input '{}': bad request from {peer}: {e}", s.name);
            }
        }
        drop(admitted);
    }

    /// An answer with the configured headers and no body.
    fn answer(&self, status: StatusCode, close: bool) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = status;
        let headers = r.headers_mut();
        for (name, value) in &self.settings.headers {
            headers.append(name.clone(), value.clone());
        }
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        match &self.settings.auth {
            Auth::None => true,
            Auth::Api(key) => req
                .headers()
                .get("x-api-key")
                .is_some_and(|v| v.as_bytes() == key.as_bytes()),
            Auth::Basic { username, password } => req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| basic_credentials(v.as_bytes()))
                .is_some_and(|(u, p)| u == *username && p == *password),
        }
    }

    /// One request: check it, read its body, hand it to the shard, answer.
    async fn request(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        tx: &BridgeSender<Received>,
    ) -> Response<Full<Bytes>> {
        let s = &self.settings;
        if !self.authorized(&req) {
            Counts::add(&self.counts.bad_auth);
            warn_limited!(
                "Input '{}': {peer}: {} authentication failed",
                s.name,
                if matches!(s.auth, Auth::Api(_)) {
                    "API"
                } else {
                    "Basic"
                }
            );
            let mut r = self.answer(StatusCode::UNAUTHORIZED, false);
            if matches!(s.auth, Auth::Basic { .. }) {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"hekate\""),
                );
            }
            return r;
        }
        if req.body().size_hint().lower() > s.max_body as u64 {
            return self.too_large(peer, req.body().size_hint().lower());
        }
        let (parts, body) = req.into_parts();
        let body =
            match tokio::time::timeout(s.read_timeout, Limited::new(body, s.max_body).collect())
                .await
            {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return self.too_large(peer, s.max_body as u64 + 1);
                }
                Ok(Err(e)) => {
                    Counts::add(&self.counts.bad_request);
                    warn_limited!("Input '{}': reading a body from {peer}: {e}", s.name);
                    return self.answer(StatusCode::BAD_REQUEST, true);
                }
                Err(_) => {
                    Counts::add(&self.counts.timed_out);
                    warn_limited!(
                        "Input '{}': {peer} did not send its body within {:?}",
                        s.name,
                        s.read_timeout
                    );
                    return self.answer(StatusCode::REQUEST_TIMEOUT, true);
                }
            };
        if body.is_empty() {
            return self.answer(StatusCode::OK, false);
        }
        let received = Received {
            remote: peer.ip().to_string(),
            fields: self.fields(&parts, peer),
            body,
        };
        match tx.send_within(received, s.busy_timeout).await {
            Ok(()) => self.answer(StatusCode::OK, false),
            Err(SendError::Full(_)) => {
                Counts::add(&self.counts.busy);
                warn_limited!(
                    "Input '{}': the pipeline took no request for {:?}; answering 503",
                    s.name,
                    s.busy_timeout
                );
                let mut r = self.answer(StatusCode::SERVICE_UNAVAILABLE, false);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            Err(SendError::Closed(_)) => self.answer(StatusCode::SERVICE_UNAVAILABLE, true),
        }
    }

    fn too_large(&self, peer: SocketAddr, size: u64) -> Response<Full<Bytes>> {
        Counts::add(&self.counts.too_large);
        warn_limited!(
            "Input '{}': {peer} sent a body of {size} bytes or more, over max_message_size ({}); answered 413",
            self.settings.name,
            self.settings.max_body
        );
        self.answer(StatusCode::PAYLOAD_TOO_LARGE, true)
    }

    /// The message fields of a request, as Heka's.
    fn fields(&self, parts: &hyper::http::request::Parts, peer: SocketAddr) -> Vec<u8> {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        let header = |name: header::HeaderName| parts.headers.get(name).map(text);
        let mut out = Vec::with_capacity(256);
        let mut w = MessageWriter::new(&mut out);
        let host = header(header::HOST)
            .or_else(|| parts.uri.host().map(str::to_string))
            .unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
            _ => host,
        };
        w.field_string("Protocol", &format!("{:?}", parts.version))
            .field_string("UserAgent", &header(header::USER_AGENT).unwrap_or_default())
            .field_string(
                "ContentType",
                &header(header::CONTENT_TYPE).unwrap_or_default(),
            )
            .field_string("Path", parts.uri.path())
            .field_string("Host", &host)
            .field_string("RemoteAddr", &peer.ip().to_string());
        for (field, name) in &self.settings.request_headers {
            if let Some(v) = parts.headers.get(name).map(text)
                && !v.is_empty()
            {
                w.field_string(field, &v);
            }
        }
        for (k, v) in query_pairs(parts.uri.query().unwrap_or("")) {
            w.field_string(&k, &v);
        }
        out
    }
}

/// The user and password of a Basic `Authorization` header.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A connection's socket that notes whether bytes were read since the last write.
struct Watched<I> {
    io: I,
    pending: Rc<Cell<bool>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.pending.set(true);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.pending.set(false);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("http_listen.rs"));
    }

    #[test]
    fn incomplete_authentication_is_refused() {
        let e = build("[h]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:0\"\nauth_type = \"Basic\"\nusername = \"u\"\n")
            .unwrap_err();
        assert!(e.contains("needs `username` and `password`"), "{e}");
        let e = build(
            "[h]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:0\"\nauth_type = \"Digest\"\n",
        )
        .unwrap_err();
        assert!(e.contains("\"Digest\" is not known"), "{e}");
        let e = build("[h]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:0\"\n[h.headers]\n\"Bad Name\" = \"x\"\n")
            .unwrap_err();
        assert!(e.contains("not a valid HTTP header name"), "{e}");
    }

    #[test]
    fn basic_credentials_are_decoded() {
        assert_eq!(
            basic_credentials(b"Basic dTpwOnE="),
            Some(("u".into(), "p:q".into()))
        );
        assert_eq!(
            basic_credentials(b"basic dTpw"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(basic_credentials(b"Bearer dTpw"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
    }
}

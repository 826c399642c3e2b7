//! The HTTP side of the endpoint: hyper (HTTP/1.1) on a current-thread tokio runtime on a thread
//! of its own ([`ForeignRuntime`], as HttpListenInput runs), pinned to the coordinator's core.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once (one more is closed as soon as it is
//! accepted), request heads of at most [`MAX_HEAD`] bytes (431 beyond), a head must arrive within
//! [`READ_TIMEOUT`] (an idle keep-alive connection is closed after it too), and a connection
//! lives at most [`CONNECTION_LIFETIME`]. Only GET and HEAD are answered (405 otherwise); request
//! bodies are never read.
//!
//! The same server answers a plugin's own address with one [`Page`] for every path
//! ([`Endpoint::start_page`]: DashboardOutput's `address`).

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::{Page, PageResponse, Telemetry};
use crate::plugin::bridge::ForeignRuntime;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// The largest request head.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send a request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may last.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running endpoint; it stops when dropped.
#[derive(Debug)]
pub struct Endpoint {
    address: SocketAddr,
    _runtime: ForeignRuntime,
}

impl Endpoint {
    /// Binds `address` (the caller's error message names the option) without serving yet.
    pub fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Serves `telemetry` on `listener` from the thread `hekate-metrics`, pinned to `core`.
    pub fn start(
        listener: std::net::TcpListener,
        telemetry: Arc<Telemetry>,
        core: usize,
    ) -> std::io::Result<Endpoint> {
        let address = listener.local_addr()?;
        let runtime = ForeignRuntime::start("metrics", core, move || {
            serve(listener, Site::Metrics(telemetry))
        })?;
        Ok(Endpoint {
            address,
            _runtime: runtime,
        })
    }

    /// Serves `page` for every path on `listener` (bound with [`Endpoint::bind`]), rendered
    /// from `telemetry`'s newest sample, from the thread `hekate-<name>` pinned to `core`.
    pub fn start_page(
        name: &str,
        listener: std::net::TcpListener,
        page: Arc<dyn Page>,
        telemetry: Arc<Telemetry>,
        core: usize,
    ) -> std::io::Result<Endpoint> {
        let address = listener.local_addr()?;
        let runtime = ForeignRuntime::start(name, core, move || {
            serve(listener, Site::Page { page, telemetry })
        })?;
        Ok(Endpoint {
            address,
            _runtime: runtime,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// What an endpoint answers.
#[derive(Clone)]
enum Site {
    /// `/metrics`, `/health` and the pages added to the board.
    Metrics(Arc<Telemetry>),
    /// One page for every path.
    Page {
        page: Arc<dyn Page>,
        telemetry: Arc<Telemetry>,
    },
}

/// Leaves a place among the [`MAX_CONNECTIONS`] when dropped.
struct Admitted(Rc<Cell<usize>>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

async fn serve(listener: std::net::TcpListener, site: Site) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the metrics endpoint cannot serve: {e}");
            return;
        }
    };
    let open = Rc::new(Cell::new(0usize));
    loop {
        let (socket, _peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                crate::plugin::log::warn_limited!("the metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.get() >= MAX_CONNECTIONS {
            drop(socket);
            continue;
        }
        open.set(open.get() + 1);
        let admitted = Admitted(Rc::clone(&open));
        let site = site.clone();
        tokio::task::spawn_local(async move {
            let _admitted = admitted;
            let _ = socket.set_nodelay(true);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            let service = hyper::service::service_fn(move |req| {
                let answer = match &site {
                    Site::Metrics(telemetry) => respond(telemetry, &req),
                    Site::Page { page, telemetry } => respond_page(&**page, telemetry, &req),
                };
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = http.serve_connection(TokioIo::new(socket), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        });
    }
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// Answers GET and HEAD only.
fn refuse_method(req: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return None;
    }
    let mut r = response(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        b"only GET and HEAD\n".to_vec(),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(r)
}

/// A page's answer as an HTTP response (no body for HEAD).
fn page_response(answer: PageResponse, head: bool) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if head { Vec::new() } else { answer.body };
    let mut r = response(status, &answer.content_type, body);
    for (name, value) in &answer.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

/// The answer of a page that serves every path.
fn respond_page(
    page: &dyn Page,
    telemetry: &Telemetry,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if let Some(refused) = refuse_method(req) {
        return refused;
    }
    let answer = page.get(req.uri().path(), &telemetry.sample());
    page_response(answer, req.method() == Method::HEAD)
}

/// The answer to one request.
fn respond(telemetry: &Telemetry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if let Some(refused) = refuse_method(req) {
        return refused;
    }
    let head = req.method() == Method::HEAD;
    let body = |b: Vec<u8>| if head { Vec::new() } else { b };
    match req.uri().path() {
        "/metrics" => response(
            StatusCode::OK,
            PROMETHEUS_TEXT,
            body(telemetry.metrics().into_bytes()),
        ),
        "/health" => match telemetry.health() {
            Ok(ok) => response(StatusCode::OK, TEXT, body(ok.into_bytes())),
            Err(why) => response(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                body(why.into_bytes()),
            ),
        },
        path => match telemetry.page_for(path) {
            Some(page) => page_response(page.get(path, &telemetry.sample()), head),
            None => response(
                StatusCode::NOT_FOUND,
                TEXT,
                body(b"not found; try /metrics or /health\n".to_vec()),
            ),
        },
    }
}

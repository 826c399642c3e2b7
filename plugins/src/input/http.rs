//! HttpInput: polls one or more URLs every `ticker_interval` seconds and makes a message of each
//! response, as Heka's does.
//!
//! A response becomes a message of Type `heka.httpinput.data`, Logger = the URL, Payload = the
//! body, Severity `success_severity` for status 200 and `error_severity` for any other, and the
//! fields `StatusCode` (int), `Status` ("200 OK"), `ResponseSize` (bytes of the body, int),
//! `ResponseTime` (seconds from sending the request to the end of the body, float) and
//! `Protocol` ("HTTP/1.1"). The body goes through the input's splitter (NullSplitter by default)
//! and decoder (none by default); a response with an empty body makes one message with an empty
//! payload. A poll that gets no response — connection refused, a name that does not resolve,
//! no complete answer within `timeout`, a body larger than the global `max_message_size` —
//! makes a message of Type `heka.httpinput.error`, Logger = the URL, Payload = why, Severity
//! `error_severity`. Every poll is counted (`PollCount`), and so are the failed ones
//! (`FailedPollCount`, of which `TimedOutCount` timed out) and those answered with a status
//! other than 200 (`ErrorStatusCount`). A URL whose previous poll has not ended yet is not
//! polled again (`SkippedPollCount`); the other URLs are polled on time.
//!
//! ```toml
//! [status]
//! type = "HttpInput"
//! urls = ["http://127.0.0.1:8080/status", "http://127.0.0.1:8081/status"]
//! ticker_interval = 5
//! timeout = 2
//! user = "monitor"
//! password = "s3cret"
//!
//! [status.headers]
//! Accept = "application/json"
//! ```
//!
//! **How it runs.** The client is hyper's (HTTP/1.1; `https://` URLs through rustls with the
//! system's root certificates) on a tokio runtime on a thread of its own, pinned to the core of
//! the shard the input runs on (one shard). Responses cross to the shard over a bounded ring
//! (the engine's foreign-runtime bridge, `hekate_engine::plugin::bridge`); when the pipeline is
//! slow the next poll waits for room.
//!
//! Options: `url` or `urls` (at least one), `method` ("GET"), `body` (""), `headers` (request
//! headers; User-Agent defaults to "Heka"), `user`/`password` (Basic authentication),
//! `success_severity` (6), `error_severity` (1), `timeout` (10 s; hekate's own: Heka waits for
//! ever), plus the common input options (`ticker_interval` 10 s; default splitter:
//! NullSplitter; default decoder: none).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::bridge::{self, BridgeSender, ForeignRuntime};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlacement, InputPlugin, LocalBoxFuture,
    PluginError, PluginType, ReportSink as _, StreamSpec, options_of,
};
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::http::{HeaderValues, basic_authorization, header_map};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "HttpInput",
    source: include_str!("http.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_method() -> String {
    "GET".into()
}

fn default_success_severity() -> i32 {
    6
}

fn default_error_severity() -> i32 {
    1
}

fn default_timeout() -> u64 {
    10
}

/// HttpInput's own options (`ticker_interval` is a common input option).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The URL to poll (or use `urls`).
    #[serde(default)]
    url: Option<String>,
    /// The URLs to poll.
    #[serde(default)]
    urls: Vec<String>,
    /// The request method.
    #[serde(default = "default_method")]
    method: String,
    /// The request body.
    #[serde(default)]
    body: String,
    /// Request headers: `Name = "value"` or `Name = ["v1", "v2"]` (User-Agent defaults to
    /// "Heka").
    #[serde(default)]
    headers: BTreeMap<String, HeaderValues>,
    /// Basic authentication: the user name.
    #[serde(default)]
    user: String,
    /// Basic authentication: the password.
    #[serde(default)]
    password: String,
    /// Severity of messages made of a response with status 200.
    #[serde(default = "default_success_severity")]
    success_severity: i32,
    /// Severity of messages made of any other response, and of failed polls.
    #[serde(default = "default_error_severity")]
    error_severity: i32,
    /// Seconds a poll may take, from sending the request to the end of the body; past it the
    /// poll fails (`heka.httpinput.error`, counted in `TimedOutCount`).
    #[serde(default = "default_timeout")]
    timeout: u64,
}

/// How every poll is made.
#[derive(Debug)]
struct Polls {
    urls: Vec<Uri>,
    method: Method,
    body: Bytes,
    headers: HeaderMap,
    every: Duration,
    timeout: Duration,
    max_body: usize,
}

#[derive(Debug)]
struct HttpInput {
    polls: Arc<Polls>,
    success_severity: i32,
    error_severity: i32,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let refuse = |key: &str, why: String| {
        Err(section.error_at_key(key, format!("{why} (section [{}])", section.name())))
    };
    let mut urls = Vec::new();
    for (key, u) in opts
        .url
        .iter()
        .map(|u| ("url", u))
        .chain(opts.urls.iter().map(|u| ("urls", u)))
    {
        match u.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                urls.push(uri)
            }
            _ => return refuse(key, format!("\"{u}\" is not an http:// or https:// URL")),
        }
    }
    if urls.is_empty() {
        return refuse("url", "HttpInput needs `url` or `urls`".into());
    }
    let Ok(method) = Method::from_bytes(opts.method.as_bytes()) else {
        return refuse(
            "method",
            format!("\"{}\" is not an HTTP method", opts.method),
        );
    };
    if opts.timeout == 0 {
        return refuse("timeout", "`timeout` must be at least 1".into());
    }
    let mut headers = header_map(section, "headers", &opts.headers)?;
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, HeaderValue::from_static("Heka"));
    }
    if !opts.user.is_empty() || !opts.password.is_empty() {
        let auth = basic_authorization(&opts.user, &opts.password);
        match HeaderValue::from_str(&auth) {
            Ok(v) => {
                headers.insert(header::AUTHORIZATION, v);
            }
            Err(_) => return refuse("user", "the credentials cannot be sent in a header".into()),
        }
    }
    let every = section
        .input()
        .and_then(|i| i.ticker_interval)
        .unwrap_or(Duration::from_secs(10));
    if every.is_zero() {
        return refuse(
            "ticker_interval",
            "HttpInput needs a `ticker_interval` above 0".into(),
        );
    }
    let spec = ctx.stream_spec(section, "NullSplitter", None)?;
    Ok(Built::Input(Arc::new(HttpInput {
        polls: Arc::new(Polls {
            urls,
            method,
            body: Bytes::from(opts.body.into_bytes()),
            headers,
            every,
            timeout: Duration::from_secs(opts.timeout),
            max_body: ctx.global.max_message_size as usize,
        }),
        success_severity: opts.success_severity,
        error_severity: opts.error_severity,
        spec,
    })))
}

/// How one poll went.
enum Outcome {
    Response {
        status: u16,
        reason: String,
        protocol: String,
        body: Bytes,
        seconds: f64,
    },
    Failed {
        why: String,
        timed_out: bool,
    },
}

/// One poll's outcome, on its way to the shard.
struct Polled {
    url: usize,
    outcome: Outcome,
}

impl InputPlugin for HttpInput {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("heka.httpinput.data")))
    }

    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let (tx, mut rx) = bridge::channel::<Polled>(self.polls.urls.len().max(4));
        let polls = Arc::clone(&self.polls);
        let skipped = Arc::new(AtomicU64::new(0));
        let skips = Arc::clone(&skipped);
        let mut runtime =
            ForeignRuntime::start(&format!("http-{}", ctx.name), ctx.core, move || {
                poll_forever(polls, tx, skips)
            })
            .map_err(|e| PluginError::Other(format!("HttpInput cannot start its thread: {e}")))?;
        let urls: Vec<String> = self.polls.urls.iter().map(Uri::to_string).collect();
        let mut stream = ctx.stream(&self.spec, None);
        let (success, error) = (self.success_severity, self.error_severity);
        Ok(Box::pin(async move {
            let mut counts = Counts::default();
            loop {
                let polled = future::or(async { rx.recv().await }, async {
                    ctx.stopped().await;
                    None
                })
                .await;
                let Some(Polled { url, outcome }) = polled else {
                    break;
                };
                let url = &urls[url];
                counts.polls += 1;
                match outcome {
                    Outcome::Response {
                        status,
                        reason,
                        protocol,
                        body,
                        seconds,
                    } => {
                        let severity = if status == 200 { success } else { error };
                        if status != 200 {
                            counts.error_status += 1;
                        }
                        let mut fields = Vec::with_capacity(128);
                        MessageWriter::new(&mut fields)
                            .field_int("StatusCode", i64::from(status))
                            .field_string("Status", &format!("{status} {reason}"))
                            .field_int("ResponseSize", body.len() as i64)
                            .field_double("ResponseTime", seconds)
                            .field_string("Protocol", &protocol);
                        if body.is_empty() {
                            deliver(&ctx, "heka.httpinput.data", url, severity, b"", &fields).await;
                        } else {
                            stream.set_origin(url, Some("heka.httpinput.data"));
                            stream.set_severity(Some(severity));
                            stream.set_fields(&fields);
                            stream.reserve(body.len());
                            stream.read_buf()[..body.len()].copy_from_slice(&body);
                            stream.feed_datagram(body.len(), None).await;
                        }
                    }
                    Outcome::Failed { why, timed_out } => {
                        counts.failed += 1;
                        if timed_out {
                            counts.timed_out += 1;
                        }
                        warn_limited!("Input '{}': polling {url} failed: {why}", ctx.name);
                        deliver(
                            &ctx,
                            "heka.httpinput.error",
                            url,
                            error,
                            why.as_bytes(),
                            &[],
                        )
                        .await;
                    }
                }
                counts.skipped = skipped.load(Ordering::Relaxed);
                counts.publish(&ctx);
            }
            runtime.stop();
            Ok(())
        }))
    }
}

/// Builds and routes a message the stream does not build (no body, or a failed poll).
async fn deliver(
    ctx: &InputContext,
    msg_type: &str,
    url: &str,
    severity: i32,
    payload: &[u8],
    fields: &[u8],
) {
    let mut out = Vec::with_capacity(256 + payload.len());
    MessageWriter::new(&mut out)
        .uuid(&random_uuid())
        .timestamp(now_ns())
        .msg_type(msg_type.as_bytes())
        .logger(url.as_bytes())
        .severity(severity)
        .hostname(ctx.hostname.as_bytes())
        .payload(payload)
        .raw(fields);
    if let Err(e) = ctx.deliver(&out) {
        warn_limited!("Input '{}': cannot route a message: {e}", ctx.name);
    }
    ctx.flush().await;
}

/// What the shard counted.
#[derive(Debug, Default)]
struct Counts {
    polls: u64,
    failed: u64,
    timed_out: u64,
    error_status: u64,
    skipped: u64,
}

impl Counts {
    fn publish(&self, ctx: &InputContext) {
        let mut fields = FieldCollector::default();
        fields.int("PollCount", self.polls as i64, "count");
        fields.int("FailedPollCount", self.failed as i64, "count");
        fields.int("TimedOutCount", self.timed_out as i64, "count");
        fields.int("ErrorStatusCount", self.error_status as i64, "count");
        fields.int("SkippedPollCount", self.skipped as i64, "count");
        ctx.counters().set_extra(fields.fields);
    }
}

/// The tokio side: every `every`, polls each URL whose previous poll has ended.
async fn poll_forever(polls: Arc<Polls>, tx: BridgeSender<Polled>, skipped: Arc<AtomicU64>) {
    let roots = rustls_native_certs::load_native_certs();
    let mut store = rustls::RootCertStore::empty();
    for cert in roots.certs {
        let _ = store.add(cert);
    }
    // ring, as everywhere in hekate (see tls.rs on its deprecation).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(store).with_no_client_auth());
    let tls = match tls {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("HttpInput: cannot set up TLS: {e}");
            return;
        }
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let client = Rc::new(client);
    let tx = Rc::new(tx);
    let busy: Rc<Vec<std::cell::Cell<bool>>> = Rc::new(
        polls
            .urls
            .iter()
            .map(|_| std::cell::Cell::new(false))
            .collect(),
    );
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + polls.every, polls.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for i in 0..polls.urls.len() {
            if busy[i].replace(true) {
                skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (polls, client, tx, busy) = (
                Arc::clone(&polls),
                Rc::clone(&client),
                Rc::clone(&tx),
                Rc::clone(&busy),
            );
            tokio::task::spawn_local(async move {
                let outcome = poll(&polls, &client, i).await;
                let _ = tx.send(Polled { url: i, outcome }).await;
                busy[i].set(false);
            });
        }
    }
}

async fn poll<C>(polls: &Polls, client: &Client<C, Full<Bytes>>, i: usize) -> Outcome
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut req = Request::new(Full::new(polls.body.clone()));
    *req.method_mut() = polls.method.clone();
    *req.uri_mut() = polls.urls[i].clone();
    *req.headers_mut() = polls.headers.clone();
    let started = Instant::now();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        let protocol = format!("{:?}", resp.version());
        let body = Limited::new(resp.into_body(), polls.max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    format!(
                        "the response body is larger than max_message_size ({} bytes)",
                        polls.max_body
                    )
                } else {
                    format!("reading the response body: {e}")
                }
            })?
            .to_bytes();
        Ok::<_, String>(Outcome::Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            protocol,
            body,
            seconds: started.elapsed().as_secs_f64(),
        })
    };
    match tokio::time::timeout(polls.timeout, exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(why)) => Outcome::Failed {
            why,
            timed_out: false,
        },
        Err(_) => Outcome::Failed {
            why: format!("no complete response within {:?}", polls.timeout),
            timed_out: true,
        },
    }
}

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("http.rs"));
    }

    #[test]
    fn bad_urls_and_methods_are_refused() {
        let e = build("[h]\ntype = \"HttpInput\"\n").unwrap_err();
        assert!(e.contains("needs `url` or `urls`"), "{e}");
        let e = build("[h]\ntype = \"HttpInput\"\nurl = \"ftp://x/\"\n").unwrap_err();
        assert!(e.contains("not an http:// or https:// URL"), "{e}");
        let e = build("[h]\ntype = \"HttpInput\"\nurl = \"http://x/\"\nmethod = \"G T\"\n")
            .unwrap_err();
        assert!(e.contains("not an HTTP method"), "{e}");
    }
}

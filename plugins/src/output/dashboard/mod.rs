//! DashboardOutput: hekate's self-monitoring web page, and Heka's dashboard files. It writes what
//! Heka's DashboardOutput writes into `working_directory/data/` — the `heka.all-report` payload
//! as `heka_report.json`, the sandboxes and their outputs as `sandboxes.json`, each sandbox
//! output (`inject_payload(type, name, data)`) as `<Filter>.<name>.<type>` (a circular buffer's
//! `cbuf` text among them) and one line per terminated sandbox in
//! `heka_sandbox_termination.tsv` — and serves them over HTTP at `address` beside a page of its
//! own: plugin health by core (rates, ring fill, queue depth, matcher and process times, sandbox
//! memory and instructions, terminations) and a graph of every circular buffer the sandboxes
//! publish, refreshed every second.
//!
//! ```toml
//! [DashboardOutput]
//! address = "127.0.0.1:4352"
//! ticker_interval = 5
//! ```
//!
//! As in Heka, `ticker_interval` (seconds, default 5) is how often the `heka.all-report` the
//! dashboard shows is made (the shorter of it and `[hekate] report_interval` wins), the default
//! `message_matcher` is `Type == 'heka.all-report' || Type == 'heka.sandbox-output' || Type ==
//! 'heka.sandbox-terminated'`, and the files under `working_directory` are removed at start.
//!
//! HTTP: `/` is the page, `/data/<file>` a file of `working_directory/data/`, and
//! `/data/hekate_health.json` the per-core figures the page draws (from the same sample as
//! `/metrics`, at most about a second old). When `[hekate] http_address` is set the same site is
//! also served there under `/dashboard/`. The page and its charting library (uPlot, vendored
//! with its licence) are built into the binary; `static_directory` serves other files instead.
//! The server is bounded like the metrics endpoint (16 connections, 16 KiB request heads, GET
//! and HEAD only). The output keeps the newest content of each file and, at each flush, hands
//! what changed to a thread of its own on its core that writes it (a flush waits while that
//! thread is two batches behind), so that no file system call blocks the shard.

mod files;
mod health;
mod site;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::bridge::{self, BridgeSender, ForeignRuntime};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_engine::telemetry::Telemetry;
use hekate_engine::telemetry::server::Endpoint;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::address_option;
use crate::http::{HeaderValues, header_map};
use files::{Batch, DataFiles};
use site::Site;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "DashboardOutput",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: Some(
        "Type == 'heka.all-report' || Type == 'heka.sandbox-output' || Type == 'heka.sandbox-terminated'",
    ),
    build,
};

/// How often the `heka.all-report` is made when `ticker_interval` is not set (Heka's default).
const DEFAULT_TICKER: Duration = Duration::from_secs(5);

fn default_address() -> String {
    "127.0.0.1:4352".into()
}
fn default_working_directory() -> String {
    "dashboard".into()
}

/// DashboardOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The address the dashboard is served on (`host:port`, or `:port` for every interface).
    /// Default "127.0.0.1:4352" (Heka listened on every interface).
    #[serde(default = "default_address")]
    address: String,
    /// Where the dashboard's files are written (`data/heka_report.json`, `data/sandboxes.json`,
    /// the sandboxes' outputs); a relative path is under `base_dir`. Files in it (`*.*`) and in
    /// its `data/` are removed at start: keep nothing of your own there.
    #[serde(default = "default_working_directory")]
    working_directory: String,
    /// A directory of static files served instead of the built-in page (`/` is its
    /// `index.html`); a relative path is under `share_dir`. Default: the built-in page.
    #[serde(default)]
    static_directory: Option<String>,
    /// Headers added to every response: `Name = "value"` or `Name = ["v1", "v2"]`.
    #[serde(default)]
    headers: BTreeMap<String, HeaderValues>,
}

#[derive(Debug)]
struct DashboardPlugin {
    name: String,
    address: std::net::SocketAddr,
    site: Arc<Site>,
    telemetry: Arc<Telemetry>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let address = address_option(section, "address", &opts.address)?;
    let headers = header_map(section, "headers", &opts.headers)?
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let every = section
        .output()
        .and_then(|o| o.ticker_interval)
        .unwrap_or(DEFAULT_TICKER);
    if every.is_zero() {
        return Err(section.error_at_value(
            "ticker_interval",
            format!(
                "`ticker_interval` (how often the dashboard's report is made) must be at least 1 second in section [{}]",
                section.name()
            ),
        ));
    }
    let working = ctx.global.base_dir.join(&opts.working_directory);
    let static_dir: Option<PathBuf> = opts
        .static_directory
        .as_ref()
        .map(|d| ctx.global.share_dir.join(d));
    let site = Arc::new(Site::new(working.join("data"), static_dir, headers));
    // Outside a pipeline (a sample checked alone) the board is new and nobody publishes to it.
    let telemetry = match ctx.control() {
        Some(control) => {
            control.report_every(every);
            let board = Telemetry::of(control);
            board.add_page(Arc::new(site::Mounted::new(
                "/dashboard",
                Arc::clone(&site),
            )));
            board
        }
        None => Arc::default(),
    };
    Ok(Built::Output(Arc::new(DashboardPlugin {
        name: section.name().to_string(),
        address,
        site,
        telemetry,
    })))
}

impl OutputPlugin for DashboardPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        let files = DataFiles::create(self.site.data_dir(), self.site.data_dir().parent())
            .map_err(|e| PluginError::io("cannot prepare the dashboard's working_directory", e))?;
        let listener = Endpoint::bind(self.address).map_err(|e| {
            PluginError::io(
                format!("cannot serve the dashboard on `address` {}", self.address),
                e,
            )
        })?;
        let endpoint = Endpoint::start_page(
            &format!("dashboard-{}", ctx.name),
            listener,
            Arc::new(site::Mounted::new("", Arc::clone(&self.site))),
            Arc::clone(&self.telemetry),
            ctx.core,
        )
        .map_err(|e| PluginError::io("cannot start the dashboard's HTTP thread", e))?;
        let (batches, mut to_write) = bridge::channel::<Batch>(2);
        let failures = Arc::new(AtomicU64::new(0));
        let writer = {
            let dir = self.site.data_dir().to_path_buf();
            let failures = Arc::clone(&failures);
            ForeignRuntime::start(
                &format!("dashfiles-{}", ctx.name),
                ctx.core,
                move || async move {
                    while let Some(batch) = to_write.recv().await {
                        if let Err(e) = batch.write(&dir) {
                            failures.fetch_add(1, Ordering::Relaxed);
                            warn_limited!("the dashboard cannot write its files: {e}");
                        }
                    }
                },
            )
            .map_err(|e| PluginError::io("cannot start the dashboard's file writer", e))?
        };
        tracing::info!(
            "[{}] dashboard on http://{}/",
            self.name,
            endpoint.address()
        );
        Ok(Box::new(DashboardOutput {
            files,
            batches: Some(batches),
            failures,
            _endpoint: endpoint,
            _writer: writer,
            pending: 0,
            written: 0,
        }))
    }
}

struct DashboardOutput {
    files: DataFiles,
    /// To the writer thread; `None` once closed.
    batches: Option<BridgeSender<Batch>>,
    /// Batches the writer could not write whole.
    failures: Arc<AtomicU64>,
    /// Stops serving when the output is dropped.
    _endpoint: Endpoint,
    /// Ends when `batches` is dropped (after writing what it was given) or the output is.
    _writer: ForeignRuntime,
    pending: u64,
    written: u64,
}

impl Output for DashboardOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        self.files.take(&msg.view);
        self.pending += 1;
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.files.held_bytes() >= 4 * 1024 * 1024
    }

    fn should_flush(&self, _now: Instant) -> bool {
        self.pending > 0
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(async move {
            if let (Some(batch), Some(tx)) = (self.files.take_batch(), &self.batches) {
                // The writer only goes away with the output: nothing is lost but a view.
                let _ = tx.send(batch).await;
            }
            self.written += std::mem::take(&mut self.pending);
            Ok(())
        })
    }

    fn buffered(&self) -> u64 {
        self.pending
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn close(&mut self) -> LocalBoxFuture<'_, ()> {
        // The writer writes what it holds, then ends.
        self.batches = None;
        Box::pin(std::future::ready(()))
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int(
            "WriteFailureCount",
            self.failures.load(Ordering::Relaxed) as i64,
            "count",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("mod.rs"));
    }

    #[test]
    fn a_zero_ticker_interval_is_refused() {
        let e = build(
            "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[DashboardOutput]\nticker_interval = 0\n",
        )
        .unwrap_err();
        assert!(e.contains("at least 1 second"), "{e}");
    }

    #[test]
    fn a_bad_header_is_refused_at_the_option() {
        let e = build(
            "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[DashboardOutput]\nheaders = { \"Bad Name\" = \"x\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("not a valid HTTP header name"), "{e}");
    }
}

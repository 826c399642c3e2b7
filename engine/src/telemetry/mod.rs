//! The metrics endpoint: `/metrics` in Prometheus text format and `/health`, served over HTTP
//! when `[hekate] http_address` is set (off by default; `":9110"` is the loopback address).
//!
//! ```text
//!  shards ──snapshots, 1/s──▶ coordinator ──Sample (Arc)──▶ Telemetry ◀── HTTP thread (hyper)
//!                                reads lane and held        (a mutex        renders /metrics,
//!                                atomics, tracks health     taken 1/s       answers /health
//!                                                           and per scrape)
//! ```
//!
//! **Nothing per message.** The endpoint reads what the engine already keeps for its reports:
//! the per-shard counters and sampled histograms each shard pushes to the coordinator once a
//! second ([`ShardSnapshot`], shared here by `Arc`, not copied), the lanes' message counters and
//! the messages each instance holds (atomics the coordinator reads), and one timestamp per
//! output flush (`PluginCounters::flushing_since`). Each time fresh snapshots arrive the
//! coordinator publishes a [`Sample`]; a scrape renders the newest one on the endpoint's own
//! thread ([`server`]: a current-thread tokio runtime with hyper, on the coordinator's core),
//! so scrapes cost the shards nothing. Numbers are at most about a second old.
//!
//! **Health** ([`HealthTracker`]): `/health` is 200 `ok` while every output delivers, and 503
//! with one line per problem otherwise: an output whose flush has been under way for
//! [`STALL_AFTER`] (its peer is down, its disk is stuck: a TcpOutput reconnecting, a buffered
//! output whose upstream is down while its queue grows), an output that dropped messages within
//! [`DROP_WINDOW`] (a `full_action = "drop"` overflow, a delivery that failed for good), an
//! output whose disk queue reached `max_buffer_size` within the same window, an output that
//! terminated, and a hekate that is shutting down.
//!
//! **Pages** ([`Page`]): other paths can be served beside `/metrics` and `/health`; this is the
//! hook for the dashboard (DashboardOutput), which registers its page with
//! [`Telemetry::add_page`] and renders it from the same [`Sample`]. A plugin reaches the board
//! while it is built with [`Telemetry::of`] its pipeline's control, which also makes the
//! coordinator publish samples when `http_address` is not set.

mod exposition;
mod health;
pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hekate_config::Category;

use crate::stats::ShardSnapshot;

pub use exposition::render as render_metrics;
pub use health::{HealthTracker, OutputState};

/// How long an output's flush may be under way before `/health` says it is not delivering.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// How long `/health` remembers that an output dropped messages.
pub const DROP_WINDOW: Duration = Duration::from_secs(30);

/// A plugin's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLabels {
    /// Section name.
    pub name: String,
    /// Heka type name.
    pub type_name: String,
    /// Category.
    pub category: Category,
}

/// Messages in one lane (an SPSC ring from a router shard to a filter or output instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneFill {
    /// The plugin slot it feeds.
    pub plugin: usize,
    /// The shard whose router fills it.
    pub from: usize,
    /// The shard of the instance it feeds.
    pub to: usize,
    /// Messages in it or being processed.
    pub messages: u64,
}

/// Everything `/metrics` and `/health` show, as the coordinator last saw it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The worker core of each shard.
    pub cores: Vec<usize>,
    /// Every plugin slot (`None` while free), indexed like the snapshots' plugins.
    pub plugins: Vec<Option<PluginLabels>>,
    /// Each shard's newest snapshot (`None` before its first).
    pub shards: Vec<Option<Arc<ShardSnapshot>>>,
    /// Messages waiting in each shard's router for a full lane.
    pub router_pending: Vec<u64>,
    /// Every lane's fill.
    pub lanes: Vec<LaneFill>,
    /// (plugin slot, shard, messages) held by each filter and output instance (popped from its
    /// lanes, not yet done: an output's unflushed buffer included).
    pub held: Vec<(usize, usize, u64)>,
    /// Messages a lane holds when full.
    pub lane_capacity: u64,
    /// Latency histograms sample one message in this many.
    pub sample_every: u32,
    /// Why hekate is not healthy, one sentence each; empty when it is.
    pub problems: Vec<String>,
}

/// A response to a [`Page`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageResponse {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// More headers (a DashboardOutput's `headers`).
    pub headers: Vec<(String, String)>,
}

/// A page served by the endpoint beside `/metrics` and `/health` (the dashboard's hook).
pub trait Page: Send + Sync + std::fmt::Debug {
    /// The path prefix this page answers (`"/dashboard"` answers `/dashboard` and everything
    /// under `/dashboard/`).
    fn prefix(&self) -> &str;

    /// Answers a GET of `path` (prefix included) from the newest sample.
    fn get(&self, path: &str, sample: &Sample) -> PageResponse;
}

/// What the coordinator publishes and the endpoint serves; shared by both.
#[derive(Debug, Default)]
pub struct Telemetry {
    sample: Mutex<Arc<Sample>>,
    pages: Mutex<Vec<Arc<dyn Page>>>,
    stopping: AtomicBool,
}

impl Telemetry {
    /// The board of the pipeline `control` belongs to, the one the coordinator publishes its
    /// samples to about once a second (per-shard counters, lanes, health) and `http_address`
    /// serves. Asked for while the pipeline is built (DashboardOutput's build), samples are
    /// published from the start, also without `http_address`.
    pub fn of(control: &crate::plugin::PipelineControl) -> Arc<Telemetry> {
        control.shared()
    }

    /// Replaces the sample scrapes see.
    pub fn publish(&self, sample: Sample) {
        *self.sample.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(sample);
    }

    /// The newest sample.
    pub fn sample(&self) -> Arc<Sample> {
        Arc::clone(&self.sample.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Serves `page` under its prefix from now on (a prefix taken by `/metrics` or `/health`
    /// is never reached).
    pub fn add_page(&self, page: Arc<dyn Page>) {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(page);
    }

    /// The page serving `path`, if one does.
    pub fn page_for(&self, path: &str) -> Option<Arc<dyn Page>> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .iter()
            .find(|p| {
                let prefix = p.prefix().trim_end_matches('/');
                path == prefix
                    || path
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .cloned()
    }

    /// From now on `/health` answers 503: hekate is shutting down.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// `/metrics`: the newest sample in Prometheus text format.
    pub fn metrics(&self) -> String {
        render_metrics(&self.sample(), self.stopping.load(Ordering::Acquire))
    }

    /// `/health`: `Ok("ok\n")`, or `Err` with one line per problem.
    pub fn health(&self) -> Result<String, String> {
        let sample = self.sample();
        let mut problems = Vec::new();
        if self.stopping.load(Ordering::Acquire) {
            problems.push("hekate is shutting down".to_string());
        }
        problems.extend(sample.problems.iter().cloned());
        if problems.is_empty() {
            Ok("ok\n".to_string())
        } else {
            let mut text = problems.join("\n");
            text.push('\n');
            Err(text)
        }
    }
}

/// The label value of a category.
pub(crate) fn category_label(c: Category) -> &'static str {
    match c {
        Category::Input => "input",
        Category::Splitter => "splitter",
        Category::Decoder => "decoder",
        Category::Filter => "filter",
        Category::Encoder => "encoder",
        Category::Output => "output",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Dashboard;
    impl Page for Dashboard {
        fn prefix(&self) -> &str {
            "/dashboard/"
        }
        fn get(&self, path: &str, _sample: &Sample) -> PageResponse {
            PageResponse {
                status: 200,
                content_type: "text/plain".into(),
                body: path.as_bytes().to_vec(),
                headers: Vec::new(),
            }
        }
    }

    #[test]
    fn health_is_ok_until_a_problem_or_shutdown() {
        let t = Telemetry::default();
        assert_eq!(t.health(), Ok("ok\n".to_string()));
        t.publish(Sample {
            problems: vec!["output 'out' terminated: boom".into()],
            ..Sample::default()
        });
        assert_eq!(t.health(), Err("output 'out' terminated: boom\n".into()));
        t.set_stopping();
        assert_eq!(
            t.health(),
            Err("hekate is shutting down\noutput 'out' terminated: boom\n".into())
        );
    }

    #[test]
    fn a_page_answers_its_prefix_and_nothing_beside_it() {
        let t = Telemetry::default();
        t.add_page(Arc::new(Dashboard));
        assert!(t.page_for("/dashboard").is_some());
        assert!(t.page_for("/dashboard/data.json").is_some());
        assert!(t.page_for("/dashboards").is_none());
        assert!(t.page_for("/metrics").is_none());
    }
}

//! The metrics endpoint's side of the coordinator: each time fresh snapshots arrive (about once a
//! second) it publishes a [`Sample`] — the snapshots themselves (shared, not copied), the lanes'
//! and instances' message counts, and the health verdict — for the endpoint's thread to render
//! (`crate::telemetry`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hekate_config::Category;

use super::Coordinator;
use crate::runtime::pipeline::StartError;
use crate::stats::ReportValue;
use crate::telemetry::server::Endpoint;
use crate::telemetry::{HealthTracker, LaneFill, OutputState, PluginLabels, Sample, Telemetry};

/// The endpoint of a running coordinator.
#[derive(Debug)]
pub(crate) struct Telemetered {
    board: Arc<Telemetry>,
    /// Dropped (the endpoint stops) with the coordinator; `None` when only a plugin reads the
    /// samples (a DashboardOutput without `http_address`).
    _endpoint: Option<Endpoint>,
    tracker: HealthTracker,
    sample_every: u32,
}

/// Binds `http_address` before any shard starts, so that a bad or taken address stops the start
/// with one sentence.
pub(super) fn bind(address: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    Endpoint::bind(address).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AddrInUse {
            "it is in use by another process".to_string()
        } else {
            e.to_string()
        };
        StartError::AddressInUse(format!(
            "`http_address` {address} in the [hekate] section cannot be served: {why}"
        ))
    })
}

impl Coordinator {
    /// Publishes samples to `board` (the one plugins asked for, or a new one) from now on, and
    /// serves `/metrics` and `/health` on `listener` when there is one, from the coordinator's
    /// core.
    pub(super) fn start_telemetry(
        &mut self,
        listener: Option<std::net::TcpListener>,
        board: Option<Arc<Telemetry>>,
        sample_every: u32,
    ) -> Result<(), StartError> {
        let board = board.unwrap_or_default();
        let endpoint = match listener {
            Some(listener) => {
                let address = listener.local_addr().ok();
                let endpoint =
                    Endpoint::start(listener, Arc::clone(&board), self.layout.coordinator)
                        .map_err(|e| {
                            StartError::Shard(format!(
                                "cannot start the metrics endpoint's thread: {e}"
                            ))
                        })?;
                if let Some(at) = address {
                    tracing::info!("metrics endpoint on http://{at}/metrics (health: /health)");
                }
                Some(endpoint)
            }
            None => None,
        };
        self.telemetry = Some(Telemetered {
            board,
            _endpoint: endpoint,
            tracker: HealthTracker::default(),
            sample_every,
        });
        self.publish();
        Ok(())
    }

    /// What the metrics endpoint serves, when `http_address` is set: the hook for pages beside
    /// `/metrics` and `/health` (the dashboard's, [`Telemetry::add_page`]).
    pub fn telemetry(&self) -> Option<Arc<Telemetry>> {
        self.telemetry.as_ref().map(|t| Arc::clone(&t.board))
    }

    /// Publishes a new sample if snapshots arrived since the last one.
    pub(super) fn publish_if_fresh(&mut self) {
        if self.fresh {
            self.publish();
        }
    }

    /// An output terminated: `/health` says so until hekate restarts.
    pub(super) fn note_termination(&mut self, plugin: usize, reason: &str) {
        let Some(t) = self.telemetry.as_mut() else {
            return;
        };
        if let Some(info) = self.plugins[plugin]
            .as_ref()
            .filter(|i| i.category == Category::Output)
        {
            t.tracker.terminated(&info.name, &info.type_name, reason);
        }
        self.fresh = true;
    }

    /// From now on `/health` says hekate is shutting down.
    pub(super) fn telemetry_stopping(&self) {
        if let Some(t) = &self.telemetry {
            t.board.set_stopping();
        }
    }

    /// Builds and publishes the sample the endpoint serves.
    pub(super) fn publish(&mut self) {
        self.fresh = false;
        let Some(t) = self.telemetry.as_mut() else {
            return;
        };
        let plugins: Vec<Option<PluginLabels>> = self
            .plugins
            .iter()
            .map(|p| {
                p.as_ref().map(|p| PluginLabels {
                    name: p.name.clone(),
                    type_name: p.type_name.clone(),
                    category: p.category,
                })
            })
            .collect();
        let mut lanes = Vec::new();
        let mut held = Vec::new();
        for c in &self.consumers {
            for (from, to, counters) in &c.lanes {
                lanes.push(LaneFill {
                    plugin: c.plugin,
                    from: *from,
                    to: *to,
                    messages: counters.in_flight(),
                });
            }
            for (shard, h) in &c.held {
                held.push((c.plugin, *shard, h.load(Ordering::Acquire)));
            }
        }
        let now = Instant::now();
        let mut outputs = Vec::new();
        for (p, info) in self.plugins.iter().enumerate() {
            let Some(info) = info.as_ref().filter(|i| i.category == Category::Output) else {
                continue;
            };
            let mut state = OutputState {
                name: &info.name,
                type_name: &info.type_name,
                flushing: Vec::new(),
                waiting: 0,
                dropped: 0,
                queue_full: 0,
            };
            let (mut queued, mut holding) = (0, 0);
            for (shard, snap) in self.latest.iter().enumerate() {
                let Some(s) = snap.as_ref().and_then(|s| s.plugins.get(p)) else {
                    continue;
                };
                state.dropped += s.dropped;
                if let Some(since) = s.flushing_since {
                    state.flushing.push((self.layout.workers[shard], since));
                }
                let field = |name: &str| match s.extra.iter().find(|f| f.name == name) {
                    Some(f) => match f.value {
                        ReportValue::Int(n) => n.max(0) as u64,
                        _ => 0,
                    },
                    None => 0,
                };
                state.waiting += field("QueueRecords");
                state.queue_full += field("QueueFullCount");
            }
            for l in lanes.iter().filter(|l| l.plugin == p) {
                queued += l.messages;
            }
            for h in held.iter().filter(|h| h.0 == p) {
                holding += h.2;
            }
            // A message popped from a lane but not finished is counted by both.
            state.waiting += queued.max(holding);
            outputs.push(state);
        }
        let problems = t.tracker.observe(now, &outputs);
        let sample = Sample {
            cores: self.layout.workers.clone(),
            plugins,
            shards: self.latest.clone(),
            router_pending: self
                .pending
                .iter()
                .map(|p| p.load(Ordering::Acquire))
                .collect(),
            lanes,
            held,
            lane_capacity: self.lane_messages,
            sample_every: t.sample_every,
            problems,
        };
        t.board.publish(sample);
    }
}

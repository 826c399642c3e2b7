//! Per-shard counters and sampled latency histograms, and the snapshots shards push to the
//! coordinator.
//!
//! Counters live in `Cell`s on the shard that owns them: incrementing one is a plain add, never
//! an atomic. Latency is sampled one message in `sample_denominator` (Heka's default 1000) into
//! HDR histograms. Every second a shard copies its counters and histograms into a
//! [`ShardSnapshot`] and pushes it over an SPSC ring to the coordinator, which merges the shards
//! for reports.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::report::{ReportField, ReportValue};

/// Highest latency a histogram tracks (one hour, in ns); longer samples saturate.
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds, two significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 2).expect("valid histogram bounds")
}

/// The counters of one plugin on one shard.
#[derive(Debug)]
pub struct PluginCounters {
    /// Messages that reached the plugin (for inputs: records read).
    pub received: Cell<u64>,
    /// Messages the router of this shard matched for the plugin.
    pub matched: Cell<u64>,
    /// Messages processed (filters), written (outputs) or routed (inputs).
    pub delivered: Cell<u64>,
    /// Messages lost to an error, with the reason logged.
    pub dropped: Cell<u64>,
    /// Records that failed to decode.
    pub decode_failures: Cell<u64>,
    /// Messages the plugin injected.
    pub injected: Cell<u64>,
    /// Corrupt bytes skipped by the input's splitter.
    pub skipped_bytes: Cell<u64>,
    /// Records refused by the input's splitter (bad or unknown signature).
    pub rejected: Cell<u64>,
    /// Sampled matcher latency (ns).
    pub match_ns: RefCell<Histogram<u64>>,
    /// Sampled per-message processing latency (ns).
    pub process_ns: RefCell<Histogram<u64>>,
    /// The plugin's own report fields, refreshed by its runner.
    pub extra: RefCell<Vec<ReportField>>,
    /// Outputs: when the flush under way started (`None` between flushes). Set once per flush,
    /// never per message; the health check reads it to find an output that cannot deliver.
    pub flushing_since: Cell<Option<Instant>>,
    match_tick: Cell<u32>,
    process_tick: Cell<u32>,
    /// The histograms as last snapshotted, with what they held then ([`HistogramKey`]): a
    /// snapshot shares them while nothing was recorded (an idle plugin copies nothing).
    shared: RefCell<[Option<SharedHistogram>; 2]>,
    /// Times [`PluginCounters::reset`] ran: part of the [`HistogramKey`].
    resets: Cell<u64>,
}

/// What a histogram held: its sample count and the resets before it (recording only adds, so
/// the same key means the same contents).
type HistogramKey = (u64, u64);

/// A histogram as a snapshot shares it, with its [`HistogramKey`].
type SharedHistogram = (HistogramKey, Arc<Histogram<u64>>);

impl Default for PluginCounters {
    fn default() -> Self {
        Self {
            received: Cell::new(0),
            matched: Cell::new(0),
            delivered: Cell::new(0),
            dropped: Cell::new(0),
            decode_failures: Cell::new(0),
            injected: Cell::new(0),
            skipped_bytes: Cell::new(0),
            rejected: Cell::new(0),
            match_ns: RefCell::new(new_histogram()),
            process_ns: RefCell::new(new_histogram()),
            extra: RefCell::new(Vec::new()),
            flushing_since: Cell::new(None),
            match_tick: Cell::new(0),
            process_tick: Cell::new(0),
            shared: RefCell::new([None, None]),
            resets: Cell::new(0),
        }
    }
}

/// Adds `n` to a counter cell.
#[inline]
pub fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

#[inline]
fn tick(c: &Cell<u32>, every: u32) -> bool {
    let t = c.get() + 1;
    if t >= every {
        c.set(0);
        true
    } else {
        c.set(t);
        false
    }
}

impl PluginCounters {
    /// Whether to time this matcher evaluation (one in `every`).
    #[inline]
    pub fn sample_match(&self, every: u32) -> bool {
        tick(&self.match_tick, every)
    }

    /// Whether to time this process call (one in `every`).
    #[inline]
    pub fn sample_process(&self, every: u32) -> bool {
        tick(&self.process_tick, every)
    }

    /// Records a matcher latency sample.
    pub fn record_match(&self, since: Instant) {
        let ns = since.elapsed().as_nanos() as u64;
        self.match_ns.borrow_mut().saturating_record(ns.max(1));
    }

    /// Records a processing latency sample.
    pub fn record_process(&self, since: Instant) {
        let ns = since.elapsed().as_nanos() as u64;
        self.process_ns.borrow_mut().saturating_record(ns.max(1));
    }

    /// Zeroes every counter (a plugin slot reused by a filter loaded at run time).
    pub fn reset(&self) {
        for c in [
            &self.received,
            &self.matched,
            &self.delivered,
            &self.dropped,
            &self.decode_failures,
            &self.injected,
            &self.skipped_bytes,
            &self.rejected,
        ] {
            c.set(0);
        }
        self.match_ns.borrow_mut().reset();
        self.process_ns.borrow_mut().reset();
        self.resets.set(self.resets.get() + 1);
        self.extra.borrow_mut().clear();
        self.flushing_since.set(None);
    }

    /// Replaces the plugin's own report fields.
    pub fn set_extra(&self, fields: Vec<ReportField>) {
        *self.extra.borrow_mut() = fields;
    }

    /// Histogram `which` for a snapshot: the last one's when nothing changed since, else a copy.
    fn share(&self, which: usize, h: &RefCell<Histogram<u64>>) -> Arc<Histogram<u64>> {
        let h = h.borrow();
        let key = (h.len(), self.resets.get());
        let mut shared = self.shared.borrow_mut();
        match &shared[which] {
            Some((k, arc)) if *k == key => Arc::clone(arc),
            _ => {
                let arc = Arc::new(h.clone());
                shared[which] = Some((key, Arc::clone(&arc)));
                arc
            }
        }
    }

    fn snapshot(&self) -> PluginSnapshot {
        PluginSnapshot {
            received: self.received.get(),
            matched: self.matched.get(),
            delivered: self.delivered.get(),
            dropped: self.dropped.get(),
            decode_failures: self.decode_failures.get(),
            injected: self.injected.get(),
            skipped_bytes: self.skipped_bytes.get(),
            rejected: self.rejected.get(),
            match_ns: self.share(0, &self.match_ns),
            process_ns: self.share(1, &self.process_ns),
            extra: self.extra.borrow().clone(),
            flushing_since: self.flushing_since.get(),
        }
    }
}

/// Everything one shard counts, indexed by plugin number.
#[derive(Debug)]
pub struct ShardStats {
    /// The shard index.
    pub shard: usize,
    /// One entry per plugin of the pipeline (all categories), in plugin-number order.
    pub plugins: Vec<PluginCounters>,
    /// Messages this shard's router evaluated.
    pub routed: Cell<u64>,
    /// Injected messages refused (loop limit or circular reference).
    pub inject_refused: Cell<u64>,
}

impl ShardStats {
    /// Zeroed counters for `plugins` plugins.
    pub fn new(shard: usize, plugins: usize) -> Self {
        Self {
            shard,
            plugins: (0..plugins).map(|_| PluginCounters::default()).collect(),
            routed: Cell::new(0),
            inject_refused: Cell::new(0),
        }
    }

    /// A copy of every counter and histogram.
    pub fn snapshot(&self) -> ShardSnapshot {
        ShardSnapshot {
            shard: self.shard,
            plugins: self.plugins.iter().map(PluginCounters::snapshot).collect(),
            routed: self.routed.get(),
            inject_refused: self.inject_refused.get(),
            epoch: 0,
        }
    }
}

/// One plugin's counters at a point in time, on one shard or summed over all.
#[derive(Debug, Clone)]
pub struct PluginSnapshot {
    /// See [`PluginCounters::received`].
    pub received: u64,
    /// See [`PluginCounters::matched`].
    pub matched: u64,
    /// See [`PluginCounters::delivered`].
    pub delivered: u64,
    /// See [`PluginCounters::dropped`].
    pub dropped: u64,
    /// See [`PluginCounters::decode_failures`].
    pub decode_failures: u64,
    /// See [`PluginCounters::injected`].
    pub injected: u64,
    /// See [`PluginCounters::skipped_bytes`].
    pub skipped_bytes: u64,
    /// See [`PluginCounters::rejected`].
    pub rejected: u64,
    /// Sampled matcher latency (ns).
    pub match_ns: Arc<Histogram<u64>>,
    /// Sampled processing latency (ns).
    pub process_ns: Arc<Histogram<u64>>,
    /// The plugin's own report fields (from its instances; the last shard's win).
    pub extra: Vec<ReportField>,
    /// See [`PluginCounters::flushing_since`] (merged: the earliest).
    pub flushing_since: Option<Instant>,
}

impl Default for PluginSnapshot {
    fn default() -> Self {
        Self {
            received: 0,
            matched: 0,
            delivered: 0,
            dropped: 0,
            decode_failures: 0,
            injected: 0,
            skipped_bytes: 0,
            rejected: 0,
            match_ns: Arc::new(new_histogram()),
            process_ns: Arc::new(new_histogram()),
            extra: Vec::new(),
            flushing_since: None,
        }
    }
}

impl PluginSnapshot {
    /// Adds another shard's numbers to these.
    pub fn merge(&mut self, other: &PluginSnapshot) {
        self.received += other.received;
        self.matched += other.matched;
        self.delivered += other.delivered;
        self.dropped += other.dropped;
        self.decode_failures += other.decode_failures;
        self.injected += other.injected;
        self.skipped_bytes += other.skipped_bytes;
        self.rejected += other.rejected;
        // Both histograms have the same bounds, so adding cannot fail; an empty one adds
        // nothing and is not walked.
        if !other.match_ns.is_empty() {
            let _ = Arc::make_mut(&mut self.match_ns).add(&*other.match_ns);
        }
        if !other.process_ns.is_empty() {
            let _ = Arc::make_mut(&mut self.process_ns).add(&*other.process_ns);
        }
        if !other.extra.is_empty() {
            merge_extra(&mut self.extra, &other.extra);
        }
        self.flushing_since = match (self.flushing_since, other.flushing_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Merges the fields of one more instance: numbers of the same name are summed, except
/// `Max…` (the largest wins) and `…AvgDuration` (weighted by the matching `…Samples` field, or
/// a plain mean of the two without one); strings keep the first value.
fn merge_extra(into: &mut Vec<ReportField>, from: &[ReportField]) {
    let int = |fields: &[ReportField], name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| match f.value {
                ReportValue::Int(v) => Some(v),
                _ => None,
            })
    };
    // Weights are the sample counts before this merge sums them.
    let before: Vec<ReportField> = into.clone();
    for f in from {
        let Some(g) = into.iter_mut().find(|g| g.name == f.name) else {
            into.push(f.clone());
            continue;
        };
        let (wa, wb) = match f.name.strip_suffix("AvgDuration") {
            Some(stem) => {
                let samples = format!("{stem}Samples");
                match (int(&before, &samples), int(from, &samples)) {
                    (Some(a), Some(b)) => (a.max(0) as f64, b.max(0) as f64),
                    _ => (1.0, 1.0),
                }
            }
            None => (0.0, 0.0),
        };
        let average = f.name.ends_with("AvgDuration");
        let maximum = f.name.starts_with("Max");
        match (&mut g.value, &f.value) {
            (ReportValue::Int(a), ReportValue::Int(b)) if average && wa + wb > 0.0 => {
                *a = ((*a as f64 * wa + *b as f64 * wb) / (wa + wb)).round() as i64;
            }
            (ReportValue::Int(_), ReportValue::Int(_))
            | (ReportValue::Float(_), ReportValue::Float(_))
                if average => {}
            (ReportValue::Int(a), ReportValue::Int(b)) if maximum => *a = (*a).max(*b),
            (ReportValue::Int(a), ReportValue::Int(b)) => *a += b,
            (ReportValue::Float(a), ReportValue::Float(b)) if average && wa + wb > 0.0 => {
                *a = (*a * wa + b * wb) / (wa + wb);
            }
            (ReportValue::Float(a), ReportValue::Float(b)) if maximum => *a = a.max(*b),
            (ReportValue::Float(a), ReportValue::Float(b)) => *a += b,
            _ => {}
        }
    }
}

/// Every counter of one shard at a point in time.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    /// The shard index.
    pub shard: usize,
    /// One entry per plugin.
    pub plugins: Vec<PluginSnapshot>,
    /// See [`ShardStats::routed`].
    pub routed: u64,
    /// See [`ShardStats::inject_refused`].
    pub inject_refused: u64,
    /// The coordinator's request this snapshot answers (0 for periodic ones).
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_merge_across_shards() {
        let a = ShardStats::new(0, 1);
        let b = ShardStats::new(1, 1);
        add(&a.plugins[0].received, 3);
        add(&b.plugins[0].received, 4);
        a.plugins[0].match_ns.borrow_mut().record(100).unwrap();
        b.plugins[0].match_ns.borrow_mut().record(300).unwrap();
        let mut total = a.snapshot().plugins[0].clone();
        total.merge(&b.snapshot().plugins[0]);
        assert_eq!(total.received, 7);
        assert_eq!(total.match_ns.len(), 2);
        assert!((total.match_ns.mean() - 200.0).abs() < 5.0);
    }

    #[test]
    fn plugin_fields_merge_by_kind() {
        let field = |n: &str, v: i64| ReportField::new(n, ReportValue::Int(v), "");
        let mut into = Vec::new();
        merge_extra(
            &mut into,
            &[
                field("Memory", 100),
                field("MaxMemory", 300),
                field("ProcessMessageSamples", 1),
                field("ProcessMessageAvgDuration", 100),
                field("TimerEventAvgDuration", 10),
            ],
        );
        merge_extra(
            &mut into,
            &[
                field("Memory", 50),
                field("MaxMemory", 200),
                field("ProcessMessageSamples", 3),
                field("ProcessMessageAvgDuration", 200),
                field("TimerEventAvgDuration", 30),
            ],
        );
        let get = |n: &str| into.iter().find(|f| f.name == n).unwrap().value.clone();
        assert_eq!(get("Memory"), ReportValue::Int(150));
        assert_eq!(get("MaxMemory"), ReportValue::Int(300));
        assert_eq!(get("ProcessMessageSamples"), ReportValue::Int(4));
        assert_eq!(get("ProcessMessageAvgDuration"), ReportValue::Int(175));
        assert_eq!(get("TimerEventAvgDuration"), ReportValue::Int(20));
    }

    #[test]
    fn reset_zeroes_a_slot() {
        let c = PluginCounters::default();
        add(&c.received, 3);
        c.record_process(Instant::now());
        c.set_extra(vec![ReportField::count("X", 1)]);
        c.reset();
        let s = c.snapshot();
        assert_eq!((s.received, s.process_ns.len(), s.extra.len()), (0, 0, 0));
    }

    /// Snapshots share a histogram while nothing was recorded, and never serve a stale one:
    /// not after a record, not after a reset followed by as many records as before.
    #[test]
    fn snapshots_share_unchanged_histograms_only() {
        let c = PluginCounters::default();
        c.process_ns.borrow_mut().record(100).unwrap();
        let a = c.snapshot();
        let b = c.snapshot();
        assert!(Arc::ptr_eq(&a.process_ns, &b.process_ns));
        c.process_ns.borrow_mut().record(5_000).unwrap();
        let d = c.snapshot();
        assert!(!Arc::ptr_eq(&b.process_ns, &d.process_ns));
        assert_eq!((b.process_ns.len(), d.process_ns.len()), (1, 2));
        c.reset();
        c.process_ns.borrow_mut().record(7_000_000).unwrap();
        c.process_ns.borrow_mut().record(7_000_000).unwrap();
        let e = c.snapshot();
        assert_eq!(e.process_ns.len(), 2);
        assert!(
            e.process_ns.min() > 1_000_000,
            "a stale histogram: {:?}",
            e.process_ns.min()
        );
        // Merging into a shared histogram copies it first: the shard's own stays as it was.
        let mut total = e.clone();
        total.merge(&d);
        assert_eq!((total.process_ns.len(), e.process_ns.len()), (4, 2));
    }

    #[test]
    fn sampling_takes_one_in_n() {
        let c = PluginCounters::default();
        let hits = (0..3000).filter(|_| c.sample_match(1000)).count();
        assert_eq!(hits, 3);
    }
}

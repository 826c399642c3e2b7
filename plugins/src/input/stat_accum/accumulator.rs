//! The accumulator a StatAccumInput shares with the StatsdInputs and StatFilters that feed it,
//! and the interval math.
//!
//! Every writer instance (a StatsdInput or StatFilter on one shard) gets its own [`Bucket`]
//! slot and adds stats to it under a lock only it and the owner take: once per datagram by the
//! writer, once per interval by the owner, which swaps the bucket for an empty one
//! ([`StatAccumulator::collect`]) and merges it into the [`Accumulated`] state on its home
//! core. No stat crosses the ring mesh, and the merge happens exactly once per interval.
//!
//! Memory is bounded: a bucket and the accumulated state hold at most `max_names` distinct
//! names (a stat with a new name beyond it is dropped and counted), a writer keeps at most
//! [`MAX_TIMER_SAMPLES`] timer samples and a set at most [`MAX_SET_MEMBERS`] members per
//! interval (samples beyond are dropped and counted).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::hash_map::EntryRef;
use hashbrown::{HashMap, HashSet};
use hekate_model::statsd::{Kind, Metric};
use xxhash_rust::xxh64::xxh64;

/// Timer samples a writer keeps per interval (8 bytes each).
pub(crate) const MAX_TIMER_SAMPLES: usize = 1 << 20;
/// Distinct members a set keeps per interval.
pub(crate) const MAX_SET_MEMBERS: usize = 1 << 16;
/// The default `max_names`.
pub(crate) const DEFAULT_MAX_NAMES: usize = 100_000;

/// Names to values, hashed once per stat (`entry_ref`) with a per-process seed (names come from
/// the network).
type Map<V> = HashMap<Box<str>, V>;
/// A set's members, by the hash of their bytes.
type Members = HashSet<u64>;

/// A gauge as one writer saw it during an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GaugeUpdate {
    /// The last absolute value, if any.
    set: Option<f64>,
    /// The signed changes since (or since the interval started).
    delta: f64,
}

/// What one writer gathered since the owner last collected it.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    counters: Map<i64>,
    timers: Map<Vec<f64>>,
    gauges: Map<GaugeUpdate>,
    sets: Map<Members>,
    names: usize,
    timer_samples: usize,
    max_names: usize,
    /// Stats dropped for a name beyond `max_names`, since the owner last collected.
    dropped_names: u64,
    /// Timer samples or set members dropped beyond their caps, since last collected.
    dropped_samples: u64,
    key: String,
}

fn entry<'m, V: Default>(
    map: &'m mut Map<V>,
    key: &str,
    names: &mut usize,
    max: usize,
) -> Option<&'m mut V> {
    match map.entry_ref(key) {
        EntryRef::Occupied(e) => Some(e.into_mut()),
        EntryRef::Vacant(e) => {
            if *names >= max {
                return None;
            }
            *names += 1;
            Some(e.insert_with_key(key.into(), V::default()))
        }
    }
}

impl Bucket {
    /// Adds one parsed statsd metric. DogStatsD tags become part of the name in Graphite's
    /// tagged form (`name;tag=value;tag2`). Returns false when the stat was dropped (a new name
    /// beyond `max_names`).
    pub(crate) fn add(&mut self, m: &Metric<'_>) -> bool {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push_str(m.name);
        for tag in m.tags.split(',').filter(|t| !t.is_empty()) {
            key.push(';');
            match tag.split_once(':') {
                Some((k, v)) => {
                    let _ = write!(key, "{k}={v}");
                }
                None => key.push_str(tag),
            }
        }
        let max = self.max_names;
        let kept = match m.kind {
            Kind::Counter => match entry(&mut self.counters, &key, &mut self.names, max) {
                Some(c) => {
                    // Heka's arithmetic: the value as a float32, scaled, truncated per stat.
                    *c += (m.value as f32 * (1.0 / m.sample_rate as f32)) as i64;
                    true
                }
                None => false,
            },
            Kind::Timer => match entry(&mut self.timers, &key, &mut self.names, max) {
                Some(t) => {
                    if self.timer_samples < MAX_TIMER_SAMPLES {
                        t.push(m.value);
                        self.timer_samples += 1;
                    } else {
                        self.dropped_samples += 1;
                    }
                    true
                }
                None => false,
            },
            Kind::Gauge { delta } => match entry(&mut self.gauges, &key, &mut self.names, max) {
                Some(g) => {
                    if delta {
                        g.delta += m.value;
                    } else {
                        *g = GaugeUpdate {
                            set: Some(m.value),
                            delta: 0.0,
                        };
                    }
                    true
                }
                None => false,
            },
            Kind::Set => match entry(&mut self.sets, &key, &mut self.names, max) {
                Some(s) => {
                    if s.len() < MAX_SET_MEMBERS {
                        s.insert(xxh64(m.raw_value, 0));
                    } else if !s.contains(&xxh64(m.raw_value, 0)) {
                        self.dropped_samples += 1;
                    }
                    true
                }
                None => false,
            },
        };
        self.key = key;
        if !kept {
            self.dropped_names += 1;
        }
        kept
    }

    /// Adds a counter, timer or gauge from a value already computed (StatFilter).
    pub(crate) fn add_value(&mut self, name: &str, kind: Kind, value: f64) -> bool {
        self.add(&Metric {
            name,
            kind,
            value,
            raw_value: b"",
            sample_rate: 1.0,
            tags: "",
        })
    }

    fn clear(&mut self) {
        self.counters.clear();
        self.timers.clear();
        self.gauges.clear();
        self.sets.clear();
        self.names = 0;
        self.timer_samples = 0;
        self.dropped_names = 0;
        self.dropped_samples = 0;
    }
}

/// One writer's slot.
#[derive(Debug)]
struct Slot {
    bucket: Mutex<Bucket>,
    /// Whether the writer is an input (it stops with the accumulator) rather than a filter.
    input: bool,
    /// Until the writer is dropped.
    open: AtomicBool,
}

/// The object a StatAccumInput provides: one bucket slot per writer instance.
#[derive(Debug)]
pub(crate) struct StatAccumulator {
    writers: Mutex<Vec<Arc<Slot>>>,
    max_names: AtomicUsize,
}

impl Default for StatAccumulator {
    fn default() -> Self {
        Self {
            writers: Mutex::new(Vec::new()),
            max_names: AtomicUsize::new(DEFAULT_MAX_NAMES),
        }
    }
}

/// A writer's handle: its own slot, closed when the handle is dropped.
#[derive(Debug)]
pub(crate) struct StatWriter {
    slot: Arc<Slot>,
}

impl StatWriter {
    /// The writer's bucket, for one datagram's (or message's) stats.
    pub(crate) fn bucket(&self) -> MutexGuard<'_, Bucket> {
        self.slot.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StatWriter {
    fn drop(&mut self) {
        self.slot.open.store(false, Ordering::Release);
    }
}

impl StatAccumulator {
    /// Sets the bound on distinct names (StatAccumInput's `max_names`), before writers start.
    pub(crate) fn set_max_names(&self, max: usize) {
        self.max_names.store(max, Ordering::Relaxed);
    }

    /// A new writer slot (one per writer instance, i.e. per shard); `input` for an input
    /// (StatsdInput), which stops with the accumulator, rather than a filter, which stops after.
    pub(crate) fn writer(&self, input: bool) -> StatWriter {
        let bucket = Bucket {
            max_names: self.max_names.load(Ordering::Relaxed),
            ..Bucket::default()
        };
        let slot = Arc::new(Slot {
            bucket: Mutex::new(bucket),
            input,
            open: AtomicBool::new(true),
        });
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&slot));
        StatWriter { slot }
    }

    /// Whether an input writer is still running (at shutdown, the accumulator waits for the
    /// inputs to add what they read last).
    pub(crate) fn inputs_open(&self) -> bool {
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|s| s.input && s.open.load(Ordering::Acquire))
    }

    /// Takes every writer's bucket (swapped for `spare`, emptied) and merges it into `into`.
    pub(crate) fn collect(&self, into: &mut Accumulated, spare: &mut Bucket) {
        let writers: Vec<_> = self
            .writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for slot in writers {
            spare.clear();
            {
                let mut b = slot.bucket.lock().unwrap_or_else(|e| e.into_inner());
                spare.max_names = b.max_names;
                std::mem::swap(&mut *b, spare);
            }
            into.merge(spare);
        }
    }
}

/// The owner's state between emissions.
#[derive(Debug)]
pub(crate) struct Accumulated {
    counters: Map<i64>,
    timers: Map<Vec<f64>>,
    gauges: Map<f64>,
    sets: Map<Members>,
    names: usize,
    max_names: usize,
    /// Stats dropped for their name (writers' and the merge's), since start.
    pub(crate) dropped_names: u64,
    /// Timer samples and set members dropped beyond their caps, since start.
    pub(crate) dropped_samples: u64,
}

impl Accumulated {
    pub(crate) fn new(max_names: usize) -> Self {
        Self {
            counters: Map::default(),
            timers: Map::default(),
            gauges: Map::default(),
            sets: Map::default(),
            names: 0,
            max_names,
            dropped_names: 0,
            dropped_samples: 0,
        }
    }

    /// Merges (and empties) one writer's bucket.
    pub(crate) fn merge(&mut self, b: &mut Bucket) {
        self.dropped_names += b.dropped_names;
        self.dropped_samples += b.dropped_samples;
        let max = self.max_names;
        for (k, v) in b.counters.drain() {
            match entry(&mut self.counters, &k, &mut self.names, max) {
                Some(c) => *c += v,
                None => self.dropped_names += 1,
            }
        }
        for (k, mut v) in b.timers.drain() {
            match entry(&mut self.timers, &k, &mut self.names, max) {
                Some(t) if t.is_empty() => std::mem::swap(t, &mut v),
                Some(t) => t.append(&mut v),
                None => self.dropped_names += 1,
            }
        }
        for (k, g) in b.gauges.drain() {
            let known = self.gauges.contains_key(&*k);
            match entry(&mut self.gauges, &k, &mut self.names, max) {
                Some(cur) => {
                    *cur = match g.set {
                        Some(v) => v + g.delta,
                        None if known => *cur + g.delta,
                        None => g.delta,
                    }
                }
                None => self.dropped_names += 1,
            }
        }
        for (k, members) in b.sets.drain() {
            match entry(&mut self.sets, &k, &mut self.names, max) {
                Some(s) if s.is_empty() => *s = members,
                Some(s) => {
                    for m in members {
                        if s.len() < MAX_SET_MEMBERS {
                            s.insert(m);
                        } else if !s.contains(&m) {
                            self.dropped_samples += 1;
                        }
                    }
                }
                None => self.dropped_names += 1,
            }
        }
        b.names = 0;
        b.timer_samples = 0;
    }

    /// Emits the interval's stats as Heka's StatAccumInput does (see [`Namespaces`]) and resets
    /// them: counters to 0 and timers and sets to empty, or forgets every name with
    /// `delete_idle_stats`; gauges keep their value unless `delete_idle_stats`.
    pub(crate) fn emit(&mut self, ns: &Namespaces, out: &mut dyn Emit) {
        let mut num_stats: i64 = 0;
        let interval = ns.ticker_interval as f64;
        let mut keys: Vec<Box<str>> = self.counters.keys().cloned().collect();
        keys.sort_unstable();
        for key in &keys {
            let c = self.counters[key];
            let rate = c as f64 / interval;
            if ns.legacy {
                out.field(&ns.name(&[&ns.global], key), Value::Int(rate as i64));
                out.payload(&ns.name(&[&ns.global], key), Value::Float(rate));
                out.emit(&ns.name(&["stats_counts"], key), Value::Int(c));
            } else {
                let base = ns.name(&[&ns.global, &ns.counter], key);
                out.emit(&format!("{base}.rate"), Value::Float(rate));
                out.emit(&format!("{base}.count"), Value::Int(c));
            }
            num_stats += 1;
        }
        if ns.delete_idle {
            self.names -= self.counters.len();
            self.counters.clear();
        } else {
            self.counters.values_mut().for_each(|c| *c = 0);
        }

        let mut keys: Vec<Box<str>> = self.gauges.keys().cloned().collect();
        keys.sort_unstable();
        for key in &keys {
            let name = ns.name(&[&ns.global, &ns.gauge], key);
            out.emit(&name, Value::Float(self.gauges[key]));
            num_stats += 1;
        }
        if ns.delete_idle {
            self.names -= self.gauges.len();
            self.gauges.clear();
        }

        let mut keys: Vec<Box<str>> = self.timers.keys().cloned().collect();
        keys.sort_unstable();
        for key in &keys {
            let base = ns.name(&[&ns.global, &ns.timer], key);
            let t = self.timers.get_mut(key).expect("listed above");
            let s = TimerStats::of(t, &ns.percent_thresholds, interval);
            out.emit(&format!("{base}.count"), Value::Int(s.count));
            out.emit(&format!("{base}.count_ps"), Value::Float(s.rate));
            out.emit(&format!("{base}.lower"), Value::Float(s.lower));
            out.emit(&format!("{base}.upper"), Value::Float(s.upper));
            out.emit(&format!("{base}.sum"), Value::Float(s.sum));
            out.emit(&format!("{base}.mean"), Value::Float(s.mean));
            for (pct, mean, upper) in &s.percentiles {
                out.emit(&format!("{base}.mean_{pct}"), Value::Float(*mean));
                out.emit(&format!("{base}.upper_{pct}"), Value::Float(*upper));
            }
            t.clear();
            num_stats += 1;
        }
        if ns.delete_idle {
            self.names -= self.timers.len();
            self.timers.clear();
        }

        let mut keys: Vec<Box<str>> = self.sets.keys().cloned().collect();
        keys.sort_unstable();
        for key in &keys {
            let base = ns.name(&[&ns.global, &ns.set], key);
            let s = self.sets.get_mut(key).expect("listed above");
            out.emit(&format!("{base}.count"), Value::Int(s.len() as i64));
            s.clear();
            num_stats += 1;
        }
        if ns.delete_idle {
            self.names -= self.sets.len();
            self.sets.clear();
        }

        let stats_name = if ns.legacy {
            ns.name(&[&ns.statsd], "numStats")
        } else {
            ns.name(&[&ns.global, &ns.statsd], "numStats")
        };
        out.emit(&stats_name, Value::Int(num_stats));
    }

    /// Distinct names held now.
    pub(crate) fn names(&self) -> usize {
        self.names
    }
}

/// A stat's value: Heka writes integers with `%v` and floats with `%f` in the payload, and
/// makes an INTEGER or a DOUBLE field of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
}

/// Where emitted stats go: the payload, the fields, or both.
pub(crate) trait Emit {
    /// A stat for the payload only.
    fn payload(&mut self, name: &str, value: Value);
    /// A stat for the fields only.
    fn field(&mut self, name: &str, value: Value);
    /// A stat for both.
    fn emit(&mut self, name: &str, value: Value) {
        self.payload(name, value);
        self.field(name, value);
    }
}

/// The names stats are emitted under (Heka's namespace options).
#[derive(Debug, Clone)]
pub(crate) struct Namespaces {
    pub(crate) legacy: bool,
    pub(crate) global: String,
    pub(crate) counter: String,
    pub(crate) timer: String,
    pub(crate) gauge: String,
    pub(crate) set: String,
    pub(crate) statsd: String,
    pub(crate) percent_thresholds: Vec<u32>,
    pub(crate) ticker_interval: u64,
    pub(crate) delete_idle: bool,
}

impl Namespaces {
    /// `prefixes` joined with dots (an empty prefix adds nothing, one ending in `.` adds no
    /// second dot), then `key`.
    fn name(&self, prefixes: &[&str], key: &str) -> String {
        let mut s = String::with_capacity(64);
        for p in prefixes {
            s.push_str(p);
            if !p.is_empty() && !p.ends_with('.') {
                s.push('.');
            }
        }
        s.push_str(key);
        s
    }
}

/// One timer's statistics for an interval (Heka's, after etsy statsd's).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimerStats {
    pub(crate) count: i64,
    pub(crate) rate: f64,
    pub(crate) lower: f64,
    pub(crate) upper: f64,
    pub(crate) sum: f64,
    pub(crate) mean: f64,
    /// (threshold, mean of the values under it, the largest value under it).
    pub(crate) percentiles: Vec<(u32, f64, f64)>,
}

impl TimerStats {
    /// Sorts `timings` and computes its statistics; zeros for an empty timer.
    pub(crate) fn of(timings: &mut [f64], thresholds: &[u32], interval: f64) -> Self {
        let count = timings.len();
        if count == 0 {
            return TimerStats {
                count: 0,
                rate: 0.0,
                lower: 0.0,
                upper: 0.0,
                sum: 0.0,
                mean: 0.0,
                percentiles: thresholds.iter().map(|&p| (p, 0.0, 0.0)).collect(),
            };
        }
        timings.sort_unstable_by(f64::total_cmp);
        let mut cumulative = Vec::with_capacity(count);
        let mut acc = 0.0;
        for &t in timings.iter() {
            acc += t;
            cumulative.push(acc);
        }
        let (lower, upper) = (timings[0], timings[count - 1]);
        let percentiles = thresholds
            .iter()
            .map(|&pct| {
                let (mut mean, mut boundary) = (lower, upper);
                if count > 1 {
                    let tmp = ((100.0 - pct as f64) / 100.0) * count as f64;
                    // JavaScript's Math.round, as etsy statsd and Heka.
                    let within = count as i64 - (tmp + 0.5).floor() as i64;
                    if within > 0 {
                        let within = within as usize;
                        mean = cumulative[within - 1] / within as f64;
                        boundary = timings[within - 1];
                    }
                }
                (pct, mean, boundary)
            })
            .collect();
        let sum = cumulative[count - 1];
        TimerStats {
            count: count as i64,
            rate: count as f64 / interval,
            lower,
            upper,
            sum,
            mean: sum / count as f64,
            percentiles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hekate_model::statsd::parse_line;

    #[derive(Default)]
    struct Lines(Vec<(String, Value, &'static str)>);
    impl Emit for Lines {
        fn payload(&mut self, name: &str, value: Value) {
            self.0.push((name.into(), value, "p"));
        }
        fn field(&mut self, name: &str, value: Value) {
            self.0.push((name.into(), value, "f"));
        }
    }
    impl Lines {
        fn get(&self, name: &str) -> Option<Value> {
            self.0
                .iter()
                .find(|(n, _, w)| n == name && *w == "p")
                .map(|(_, v, _)| *v)
        }
    }

    fn ns() -> Namespaces {
        Namespaces {
            legacy: false,
            global: "stats".into(),
            counter: "counters".into(),
            timer: "timers".into(),
            gauge: "gauges".into(),
            set: "sets".into(),
            statsd: "statsd".into(),
            percent_thresholds: vec![90],
            ticker_interval: 10,
            delete_idle: false,
        }
    }

    fn feed(acc: &StatAccumulator, lines: &[&str]) {
        let w = acc.writer(true);
        let mut b = w.bucket();
        for l in lines {
            assert!(b.add(&parse_line(l.as_bytes()).unwrap()), "{l}");
        }
    }

    fn interval(acc: &StatAccumulator, state: &mut Accumulated, ns: &Namespaces) -> Lines {
        let mut spare = Bucket::default();
        acc.collect(state, &mut spare);
        let mut out = Lines::default();
        state.emit(ns, &mut out);
        out
    }

    #[test]
    fn counters_from_several_shards_merge_with_sample_rates() {
        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        feed(&acc, &["a:1|c", "a:2|c", "b:1|c|@0.1"]);
        feed(&acc, &["a:4|c", "b:1|c|@0.3"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.counters.a.count"), Some(Value::Int(7)));
        assert_eq!(out.get("stats.counters.a.rate"), Some(Value::Float(0.7)));
        // 1/0.1 = 10, int(1/0.3 as f32) = 3
        assert_eq!(out.get("stats.counters.b.count"), Some(Value::Int(13)));
        assert_eq!(out.get("stats.statsd.numStats"), Some(Value::Int(2)));
        // Not deleted when idle: reported as 0 next time.
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.counters.a.count"), Some(Value::Int(0)));
    }

    #[test]
    fn timers_follow_heka_and_etsy_math() {
        // etsy statsd's test: 1..=10 with 90% threshold → mean_90 = 5, upper_90 = 9.
        let mut t: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = TimerStats::of(&mut t, &[90, 50], 10.0);
        assert_eq!(s.count, 10);
        assert_eq!((s.lower, s.upper, s.sum, s.mean), (1.0, 10.0, 55.0, 5.5));
        assert_eq!(s.rate, 1.0);
        assert_eq!(s.percentiles, vec![(90, 5.0, 9.0), (50, 3.0, 5.0)]);
        let s = TimerStats::of(&mut [7.0], &[90], 1.0);
        assert_eq!(s.percentiles, vec![(90, 7.0, 7.0)]);
        let s = TimerStats::of(&mut [], &[90], 1.0);
        assert_eq!((s.count, s.mean), (0, 0.0));

        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        feed(&acc, &["t:10|ms", "t:30|ms"]);
        feed(&acc, &["t:20|ms"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.timers.t.count"), Some(Value::Int(3)));
        assert_eq!(out.get("stats.timers.t.mean"), Some(Value::Float(20.0)));
        assert_eq!(out.get("stats.timers.t.upper_90"), Some(Value::Float(30.0)));
        assert_eq!(out.get("stats.timers.t.lower"), Some(Value::Float(10.0)));
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.timers.t.count"), Some(Value::Int(0)));
    }

    #[test]
    fn gauges_keep_their_value_and_move_by_deltas() {
        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        feed(&acc, &["g:10|g", "g:+5|g", "h:-3|g"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.gauges.g"), Some(Value::Float(15.0)));
        assert_eq!(out.get("stats.gauges.h"), Some(Value::Float(-3.0)));
        feed(&acc, &["g:-1|g"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.gauges.g"), Some(Value::Float(14.0)));
        assert_eq!(out.get("stats.gauges.h"), Some(Value::Float(-3.0)));
    }

    #[test]
    fn sets_count_distinct_members_across_shards() {
        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        feed(&acc, &["u:a|s", "u:b|s", "u:a|s"]);
        feed(&acc, &["u:b|s", "u:c|s"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(out.get("stats.sets.u.count"), Some(Value::Int(3)));
    }

    #[test]
    fn legacy_namespaces_and_delete_idle_stats() {
        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        let mut ns = ns();
        ns.legacy = true;
        ns.delete_idle = true;
        ns.global = "g.".into();
        feed(&acc, &["a:25|c", "x:1|g"]);
        let out = interval(&acc, &mut state, &ns);
        assert_eq!(out.get("g.a"), Some(Value::Float(2.5)));
        assert!(out.0.contains(&("g.a".into(), Value::Int(2), "f")));
        assert_eq!(out.get("stats_counts.a"), Some(Value::Int(25)));
        assert_eq!(out.get("g.gauges.x"), Some(Value::Float(1.0)));
        assert_eq!(out.get("statsd.numStats"), Some(Value::Int(2)));
        let out = interval(&acc, &mut state, &ns);
        assert_eq!(out.get("stats_counts.a"), None);
        assert_eq!(out.get("g.gauges.x"), None);
        assert_eq!(out.get("statsd.numStats"), Some(Value::Int(0)));
        assert_eq!(state.names(), 0);
    }

    #[test]
    fn tags_are_part_of_the_name() {
        let acc = StatAccumulator::default();
        let mut state = Accumulated::new(1000);
        feed(&acc, &["req:1|c|#env:prod,canary", "req:1|c"]);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(
            out.get("stats.counters.req;env=prod;canary.count"),
            Some(Value::Int(1))
        );
        assert_eq!(out.get("stats.counters.req.count"), Some(Value::Int(1)));
    }

    #[test]
    fn names_beyond_the_bound_are_dropped_and_counted() {
        let acc = StatAccumulator::default();
        acc.set_max_names(100);
        let mut state = Accumulated::new(150);
        let w1 = acc.writer(true);
        let w2 = acc.writer(true);
        let mut dropped = 0;
        for i in 0..120 {
            let line = format!("n{i}:1|c");
            dropped += !w1.bucket().add(&parse_line(line.as_bytes()).unwrap()) as u64;
            let line = format!("m{i}:1|c");
            dropped += !w2.bucket().add(&parse_line(line.as_bytes()).unwrap()) as u64;
        }
        assert_eq!(dropped, 40);
        let out = interval(&acc, &mut state, &ns());
        assert_eq!(state.names(), 150);
        assert_eq!(state.dropped_names, 40 + 50);
        assert_eq!(out.get("stats.statsd.numStats"), Some(Value::Int(150)));
    }
}

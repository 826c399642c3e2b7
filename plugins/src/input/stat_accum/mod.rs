//! StatAccumInput: aggregates the statsd-style stats that StatsdInputs and StatFilters send it
//! and, every `ticker_interval` seconds, emits one `heka.statmetric` message with the interval's
//! counts, rates, timer statistics, gauges and set sizes — in the payload as Graphite plaintext
//! (`name value unix_timestamp` lines, for CarbonOutput), in the fields, or both — as Heka's
//! StatAccumInput does.
//!
//! Placement: the input runs on one shard (its home). Each writer instance — a StatsdInput or a
//! StatFilter on each shard — accumulates into a slot of its own; at each tick the home shard
//! swaps every slot for an empty one and merges them once (`accumulator.rs`). No message per stat
//! crosses the ring mesh. The sections meet by name: a writer's `stat_accum_name` must name a
//! StatAccumInput section of the config (`hekate check` and `hekate run` refuse a config where
//! it does not).
//!
//! ```toml
//! [StatAccumInput]
//! ticker_interval = 10
//! emit_in_payload = true
//! emit_in_fields = false
//! percent_threshold = 90
//! message_type = "heka.statmetric"
//! legacy_namespaces = false
//! global_prefix = "stats"
//! counter_prefix = "counters"
//! timer_prefix = "timers"
//! gauge_prefix = "gauges"
//! statsd_prefix = "statsd"
//! delete_idle_stats = false
//! ```
//!
//! What is emitted, with the default prefixes (Heka's names; `<key>` is the stat's name):
//!
//! | stat | names |
//! |---|---|
//! | counter | `stats.counters.<key>.rate` (per second, float), `stats.counters.<key>.count` (integer) |
//! | counter, `legacy_namespaces` | `stats.<key>` (rate), `stats_counts.<key>` (count) |
//! | timer | `stats.timers.<key>.{count, count_ps, lower, upper, sum, mean}`, `mean_<pct>` and `upper_<pct>` for each `percent_threshold` |
//! | gauge | `stats.gauges.<key>` (the last value; `+n`/`-n` move it) |
//! | set | `stats.sets.<key>.count` (distinct members this interval) |
//! | every tick | `stats.statsd.numStats` (`statsd.numStats` with `legacy_namespaces`) |
//!
//! Counter values are scaled by `1 / sample_rate` per stat and truncated to an integer, as Heka
//! does. Integers are written as such, floats with six decimals (Go's `%f`). With
//! `emit_in_fields`, each stat is also a field (INTEGER or DOUBLE) named as in the payload, plus
//! a `timestamp` field. After a tick counters restart from 0 and timers and sets from empty,
//! and are still reported (as 0) at the following ticks; gauges keep their value. With
//! `delete_idle_stats` every stat is forgotten once emitted, so only stats seen in an interval
//! are reported. At shutdown the input waits (a second at most) for the StatsdInputs to add what
//! they read last, then emits what it holds one last time; stats a StatFilter makes after that
//! (filters stop after inputs) are not emitted.
//!
//! Bounds: at most `max_names` distinct names are held (the accumulated state and each writer's
//! slot); a stat with a new name beyond it is dropped and counted in the report's
//! `DroppedStats` — with `delete_idle_stats = false` names are never forgotten, so a client
//! sending ever new names fills the bound and later names are dropped. A writer keeps at most
//! 1,048,576 timer samples and a set at most 65,536 members per interval (`DroppedSamples`
//! beyond). A message holds at most the global `max_message_size` of payload and fields: a
//! larger interval is emitted as several messages (`numStats` in the last).
//!
//! Options: `emit_in_payload` (true), `emit_in_fields` (false; at least one of the two),
//! `percent_threshold` (90, or a list), `ticker_interval` (10 s), `message_type`,
//! `legacy_namespaces`, `global_prefix`, `counter_prefix`, `timer_prefix`, `gauge_prefix`,
//! `statsd_prefix`, `delete_idle_stats` (Heka's); `set_prefix` ("sets") and `max_names`
//! (100,000) are hekate's.

mod accumulator;

pub(crate) use accumulator::{StatAccumulator, StatWriter};

use std::sync::Arc;
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlacement, InputPlugin, LocalBoxFuture,
    PluginError, PluginType, ReportSink as _, options_of,
};
use hekate_model::message::{Field, Message};
use schemars::JsonSchema;
use serde::Deserialize;

use accumulator::{Accumulated, Bucket, Emit, Namespaces, Value};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "StatAccumInput",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// What writers' errors call the accumulator.
pub(crate) const WHAT: &str = "a StatAccumInput";

fn yes() -> bool {
    true
}
fn default_threshold() -> Thresholds {
    Thresholds::One(90)
}
fn default_type() -> String {
    "heka.statmetric".into()
}
fn global() -> String {
    "stats".into()
}
fn counters() -> String {
    "counters".into()
}
fn timers() -> String {
    "timers".into()
}
fn gauges() -> String {
    "gauges".into()
}
fn sets() -> String {
    "sets".into()
}
fn statsd() -> String {
    "statsd".into()
}
fn default_max_names() -> usize {
    accumulator::DEFAULT_MAX_NAMES
}

/// One percent threshold or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Thresholds {
    One(u32),
    Several(Vec<u32>),
}

/// StatAccumInput's own options (`ticker_interval` is a common input option; 10 s here).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Write the stats into the payload as Graphite plaintext lines.
    #[serde(default = "yes")]
    emit_in_payload: bool,
    /// Write each stat as a message field (plus a `timestamp` field).
    #[serde(default)]
    emit_in_fields: bool,
    /// Percent threshold(s) for the timers' `mean_<pct>` and `upper_<pct>` (1–100).
    #[serde(default = "default_threshold")]
    percent_threshold: Thresholds,
    /// Type of the emitted messages.
    #[serde(default = "default_type")]
    message_type: String,
    /// etsy statsd's legacy names: counters as `<global>.<key>` (rate) and `stats_counts.<key>`.
    #[serde(default)]
    legacy_namespaces: bool,
    /// Prefix of every stat ("" for none).
    #[serde(default = "global")]
    global_prefix: String,
    /// Prefix of counters, under the global prefix.
    #[serde(default = "counters")]
    counter_prefix: String,
    /// Prefix of timers, under the global prefix.
    #[serde(default = "timers")]
    timer_prefix: String,
    /// Prefix of gauges, under the global prefix.
    #[serde(default = "gauges")]
    gauge_prefix: String,
    /// Prefix of sets, under the global prefix (hekate's; Heka has no sets).
    #[serde(default = "sets")]
    set_prefix: String,
    /// Prefix of the `numStats` stat.
    #[serde(default = "statsd")]
    statsd_prefix: String,
    /// Forget every stat once emitted instead of reporting it as 0 (or its last value) later.
    #[serde(default)]
    delete_idle_stats: bool,
    /// Most distinct names held; stats with new names beyond are dropped and counted.
    #[serde(default = "default_max_names")]
    max_names: usize,
}

#[derive(Debug, Clone)]
struct StatAccumInput {
    accumulator: Arc<StatAccumulator>,
    ns: Namespaces,
    every: Duration,
    emit_in_payload: bool,
    emit_in_fields: bool,
    message_type: String,
    max_names: usize,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    if !opts.emit_in_payload && !opts.emit_in_fields {
        return Err(section.error_at_key(
            "emit_in_payload",
            format!(
                "section [{}] emits nothing: one of `emit_in_payload` or `emit_in_fields` must be true",
                section.name()
            ),
        ));
    }
    let thresholds = match opts.percent_threshold {
        Thresholds::One(p) => vec![p],
        Thresholds::Several(v) => v,
    };
    if thresholds.is_empty() || thresholds.iter().any(|&p| p == 0 || p > 100) {
        return Err(section.error_at_value(
            "percent_threshold",
            format!(
                "`percent_threshold` of section [{}] must be between 1 and 100",
                section.name()
            ),
        ));
    }
    if opts.max_names == 0 {
        return Err(section.error_at_value(
            "max_names",
            format!(
                "`max_names` of section [{}] must be at least 1",
                section.name()
            ),
        ));
    }
    let every =
        crate::common::ticker_period(section, Duration::from_secs(10), "the stats interval")?;
    let accumulator: Arc<StatAccumulator> = ctx.provide(section, WHAT)?;
    accumulator.set_max_names(opts.max_names);
    Ok(Built::Input(Arc::new(StatAccumInput {
        accumulator,
        ns: Namespaces {
            legacy: opts.legacy_namespaces,
            global: opts.global_prefix,
            counter: opts.counter_prefix,
            timer: opts.timer_prefix,
            gauge: opts.gauge_prefix,
            set: opts.set_prefix,
            statsd: opts.statsd_prefix,
            percent_thresholds: thresholds,
            ticker_interval: every.as_secs().max(1),
            delete_idle: opts.delete_idle_stats,
        },
        every,
        emit_in_payload: opts.emit_in_payload,
        emit_in_fields: opts.emit_in_fields,
        message_type: opts.message_type,
        max_names: opts.max_names,
    })))
}

/// Builds the interval's messages, starting a new one when the current one is full.
struct Messages<'a> {
    input: &'a StatAccumInput,
    header: &'a Message,
    now_s: i64,
    limit: usize,
    current: Message,
    size: usize,
    done: Vec<Message>,
}

impl<'a> Messages<'a> {
    fn new(input: &'a StatAccumInput, header: &'a Message, now_s: i64, limit: usize) -> Self {
        let mut m = Self {
            input,
            header,
            now_s,
            limit,
            current: Message::default(),
            size: 0,
            done: Vec::new(),
        };
        m.start();
        m
    }

    fn start(&mut self) {
        self.current = self.header.clone();
        self.current.uuid = Message::new_now().uuid;
        self.size = 256;
        if self.input.emit_in_fields {
            self.current
                .add_field(Field::integer("timestamp", self.now_s));
            self.size += 24;
        }
    }

    fn room(&mut self, need: usize) {
        if self.size + need > self.limit && self.size > 300 {
            self.finish();
            self.start();
        }
    }

    fn finish(&mut self) {
        let m = std::mem::take(&mut self.current);
        self.done.push(m);
    }
}

impl Emit for Messages<'_> {
    fn payload(&mut self, name: &str, value: Value) {
        if !self.input.emit_in_payload {
            return;
        }
        self.room(name.len() + 40);
        let payload = self.current.payload.get_or_insert_with(String::new);
        let before = payload.len();
        graphite_line(payload, name, value, self.now_s);
        self.size += payload.len() - before;
    }

    fn field(&mut self, name: &str, value: Value) {
        if !self.input.emit_in_fields {
            return;
        }
        self.room(name.len() + 24);
        self.current.add_field(match value {
            Value::Int(v) => Field::integer(name, v),
            Value::Float(v) => Field::double(name, v),
        });
        self.size += name.len() + 24;
    }
}

/// One Graphite plaintext line: integers as such, floats with six decimals (Go's `%f`).
fn graphite_line(out: &mut String, name: &str, value: Value, now_s: i64) {
    use std::fmt::Write as _;
    let _ = match value {
        Value::Int(v) => writeln!(out, "{name} {v} {now_s}"),
        Value::Float(v) => writeln!(out, "{name} {v:.6} {now_s}"),
    };
}

impl StatAccumInput {
    /// Collects every writer's slot, emits the interval and routes the messages.
    async fn tick(
        &self,
        ctx: &InputContext,
        state: &mut Accumulated,
        spare: &mut Bucket,
        header: &Message,
    ) {
        self.accumulator.collect(state, spare);
        let now = Message::new_now();
        let now_s = now.timestamp.div_euclid(1_000_000_000);
        let mut header = header.clone();
        header.timestamp = now.timestamp;
        let limit = (ctx.max_message_size as usize)
            .saturating_sub(1024)
            .max(4096);
        let mut out = Messages::new(self, &header, now_s, limit);
        state.emit(&self.ns, &mut out);
        out.finish();
        for m in out.done {
            if let Err(e) = ctx.deliver(&m.to_bytes()) {
                hekate_engine::plugin::log::warn_limited!(
                    "Input '{}': a stat message could not be routed: {e}",
                    ctx.name
                );
            }
        }
        ctx.flush().await;
        let mut report = FieldCollector::default();
        report.int("StatNames", state.names() as i64, "count");
        report.int("DroppedStats", state.dropped_names as i64, "count");
        report.int("DroppedSamples", state.dropped_samples as i64, "count");
        ctx.counters().set_extra(report.fields);
    }
}

impl InputPlugin for StatAccumInput {
    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let me = self.clone();
        let header = Message {
            logger: Some(ctx.name.to_string()),
            r#type: Some(self.message_type.clone()),
            hostname: Some(ctx.hostname.to_string()),
            pid: Some(std::process::id() as i32),
            ..Message::default()
        };
        Ok(Box::pin(async move {
            let mut state = Accumulated::new(me.max_names);
            let mut spare = Bucket::default();
            let mut next = Instant::now() + me.every;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                let stopped = ctx.sleep_unless_stopped(wait).await;
                if stopped {
                    // The StatsdInputs stop at the same time: let them add what they read last
                    // (bounded: a second at most).
                    let deadline = Instant::now() + Duration::from_secs(1);
                    while me.accumulator.inputs_open() && Instant::now() < deadline {
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                    me.tick(&ctx, &mut state, &mut spare, &header).await;
                    return Ok(());
                }
                me.tick(&ctx, &mut state, &mut spare, &header).await;
                next += me.every;
                if next < Instant::now() {
                    next = Instant::now() + me.every;
                }
            }
        }))
    }
}

/// What an accumulator would emit now, for the writers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::accumulator::{Accumulated, Bucket, DEFAULT_MAX_NAMES, Emit, Namespaces, Value};
    use super::{StatAccumulator, graphite_line};

    /// The payload of one interval, with the default options (10 s), collected from every
    /// writer of `acc`.
    pub(crate) fn emitted(acc: &StatAccumulator) -> String {
        struct Payload(String);
        impl Emit for Payload {
            fn payload(&mut self, name: &str, value: Value) {
                graphite_line(&mut self.0, name, value, 0);
            }
            fn field(&mut self, _: &str, _: Value) {}
        }
        let ns = Namespaces {
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
        };
        let mut state = Accumulated::new(DEFAULT_MAX_NAMES);
        acc.collect(&mut state, &mut Bucket::default());
        let mut out = Payload(String::new());
        state.emit(&ns, &mut out);
        out.0
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
    fn bad_options_are_refused() {
        let base = "[StatAccumInput]\n";
        assert!(build(base).is_ok());
        let e = build(&format!("{base}emit_in_payload = false\n")).unwrap_err();
        assert!(e.contains("emits nothing"), "{e}");
        let e = build(&format!("{base}percent_threshold = 0\n")).unwrap_err();
        assert!(e.contains("between 1 and 100"), "{e}");
        assert!(build(&format!("{base}percent_threshold = [90, 99]\n")).is_ok());
        let e = build(&format!("{base}ticker_interval = 0\n")).unwrap_err();
        assert!(e.contains("at least 1 second"), "{e}");
    }
}

//! StatFilter: turns the messages it matches into statsd stats for a StatAccumInput, as if a
//! statsd client had sent them: each `[X.Metric.<id>]` subsection makes one stat per message,
//! its `name` and `value` filled from the message.
//!
//! `%Hostname%`, `%Type%`, `%Logger%`, `%Payload%` and `%<field name>%` (the field's first
//! value; a field wins over a header of the same name, as in Heka) are replaced in `name` and
//! `value`; an unknown `%Name%` stays as written. With `replace_dot`, dots in the replaced
//! values become underscores (so a hostname stays one Graphite path element). A value that is
//! not a number after replacement is skipped, warned about (rate-limited) and counted in the
//! report's `BadValues`.
//!
//! One instance runs on every worker shard, fed by that shard's router, and writes into its own
//! slot of the accumulator (see StatAccumInput): no stat crosses the ring mesh.
//!
//! ```toml
//! [status_counts]
//! type = "StatFilter"
//! message_matcher = "Type == 'nginx.access'"
//! stat_accum_name = "StatAccumInput"
//!
//! [status_counts.Metric.responses]
//! type = "Counter"
//! name = "nginx.%Hostname%.status.%status%"
//! value = "1"
//! replace_dot = true
//!
//! [status_counts.Metric.latency]
//! type = "Timer"
//! name = "nginx.request_time"
//! value = "%request_time%"
//!
//! [StatAccumInput]
//! ```
//!
//! Options: `stat_accum_name` ("StatAccumInput"), the `Metric` subsections (`type` = "Counter",
//! "Timer" or "Gauge"; `name`; `value`; `replace_dot`, false), plus the common filter options.

use std::collections::BTreeMap;
use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, Filter, FilterPlugin, Inject, Placement, PluginContext,
    PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_model::message::{FieldValue, MessageAccess, MessageView};
use hekate_model::statsd::Kind;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::input::stat_accum::{StatAccumulator, StatWriter, WHAT};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "StatFilter",
    source: include_str!("stat.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_accum() -> String {
    "StatAccumInput".into()
}

/// One `[X.Metric.<id>]` subsection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MetricSpec {
    /// "Counter", "Timer" or "Gauge".
    #[serde(rename = "type")]
    kind: String,
    /// The stat's name, with `%Name%` replaced.
    name: String,
    /// The stat's value, with `%Name%` replaced; a number once replaced.
    value: String,
    /// Dots in replaced values become underscores.
    #[serde(default)]
    replace_dot: bool,
}

/// StatFilter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The StatAccumInput section the stats go to.
    #[serde(default = "default_accum")]
    stat_accum_name: String,
    /// The stats made of each message, by id (`[X.Metric.<id>]`).
    #[serde(rename = "Metric", default)]
    metric: BTreeMap<String, MetricSpec>,
}

/// A piece of a `name` or `value` template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// Splits a template at its `%Name%` references (`Name` made of letters, digits and `_`).
fn parse_template(t: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = t;
    while let Some(p) = rest.find('%') {
        text.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let word = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if word > 0 && after[word..].starts_with('%') {
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Var(after[..word].to_string()));
            rest = &after[word + 1..];
        } else {
            text.push('%');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

#[derive(Debug)]
struct Metric {
    id: String,
    kind: Kind,
    name: Vec<Piece>,
    value: Vec<Piece>,
    replace_dot: bool,
}

#[derive(Debug)]
struct StatFilterPlugin {
    accumulator: Arc<StatAccumulator>,
    metrics: Arc<Vec<Metric>>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let mut metrics = Vec::new();
    for (id, m) in opts.metric {
        let kind = match m.kind.as_str() {
            "Counter" => Kind::Counter,
            "Timer" => Kind::Timer,
            "Gauge" => Kind::Gauge { delta: false },
            other => {
                return Err(section.error_at_value(
                    &format!("Metric.{id}.type"),
                    format!(
                        "metric `{id}` of section [{}] has type `{other}`; use \"Counter\", \"Timer\" or \"Gauge\"",
                        section.name()
                    ),
                ));
            }
        };
        if m.name.is_empty() {
            return Err(section.error_at_value(
                &format!("Metric.{id}.name"),
                format!(
                    "metric `{id}` of section [{}] has an empty name",
                    section.name()
                ),
            ));
        }
        metrics.push(Metric {
            kind,
            name: parse_template(&m.name),
            value: parse_template(&m.value),
            replace_dot: m.replace_dot,
            id,
        });
    }
    if metrics.is_empty() {
        return Err(section.error_at_key(
            "type",
            format!(
                "section [{}] makes no stat: add a [{}.Metric.<id>] subsection",
                section.name(),
                section.name()
            ),
        ));
    }
    let accumulator = ctx.join(section, "stat_accum_name", &opts.stat_accum_name, WHAT)?;
    Ok(Built::Filter(Arc::new(StatFilterPlugin {
        accumulator,
        metrics: Arc::new(metrics),
    })))
}

impl FilterPlugin for StatFilterPlugin {
    fn placement(&self) -> Placement {
        Placement::PerShard
    }

    fn new_filter(&self, ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
        Ok(Box::new(StatFilter {
            name: ctx.name.clone(),
            writer: self.accumulator.writer(false),
            metrics: Arc::clone(&self.metrics),
            stat_name: String::new(),
            stat_value: String::new(),
            stats: 0,
            bad_values: 0,
            dropped: 0,
        }))
    }
}

struct StatFilter {
    name: String,
    writer: StatWriter,
    metrics: Arc<Vec<Metric>>,
    stat_name: String,
    stat_value: String,
    stats: u64,
    bad_values: u64,
    dropped: u64,
}

/// Appends what `%var%` stands for in `msg` to `out`; `false` when it stands for nothing.
fn append_var(msg: &MessageView<'_>, var: &str, replace_dot: bool, out: &mut String) -> bool {
    let start = out.len();
    match msg.field_value(var.as_bytes(), 0, 0) {
        Some(FieldValue::String(s) | FieldValue::Bytes(s)) => {
            out.push_str(&String::from_utf8_lossy(s));
        }
        Some(FieldValue::Integer(i)) => out.push_str(&i.to_string()),
        Some(FieldValue::Double(d)) => out.push_str(&d.to_string()),
        Some(FieldValue::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
        None => {
            let header = match var {
                "Hostname" => msg.hostname(),
                "Type" => msg.msg_type(),
                "Logger" => msg.logger(),
                "Payload" => msg.payload(),
                _ => return false,
            };
            out.push_str(&String::from_utf8_lossy(header));
        }
    }
    if replace_dot {
        let replaced = out[start..].replace('.', "_");
        out.truncate(start);
        out.push_str(&replaced);
    }
    true
}

fn fill(msg: &MessageView<'_>, pieces: &[Piece], replace_dot: bool, out: &mut String) {
    out.clear();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => {
                if !append_var(msg, v, replace_dot, out) {
                    out.push('%');
                    out.push_str(v);
                    out.push('%');
                }
            }
        }
    }
}

impl Filter for StatFilter {
    fn process(
        &mut self,
        msg: &Delivery<'_>,
        _inject: &mut dyn Inject,
    ) -> Result<(), ProcessError> {
        let mut bucket = self.writer.bucket();
        for m in self.metrics.iter() {
            fill(&msg.view, &m.name, m.replace_dot, &mut self.stat_name);
            fill(&msg.view, &m.value, m.replace_dot, &mut self.stat_value);
            let value = self
                .stat_value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite());
            let Some(value) = value else {
                self.bad_values += 1;
                warn_limited!(
                    "Filter '{}': metric `{}`: value {:?} is not a number",
                    self.name,
                    m.id,
                    self.stat_value
                );
                continue;
            };
            if bucket.add_value(&self.stat_name, m.kind, value) {
                self.stats += 1;
            } else {
                self.dropped += 1;
            }
        }
        Ok(())
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("StatCount", self.stats as i64, "count");
        sink.int("BadValues", self.bad_values as i64, "count");
        sink.int("DroppedStats", self.dropped as i64, "count");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build, build_doc_sample};
    use crate::input::stat_accum::testing::emitted;
    use hekate_model::message::{Field, Message};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("stat.rs"));
    }

    #[test]
    fn templates_split_at_references() {
        assert_eq!(
            parse_template("a.%Hostname%.%x_1%%y%.100%"),
            vec![
                Piece::Text("a.".into()),
                Piece::Var("Hostname".into()),
                Piece::Text(".".into()),
                Piece::Var("x_1".into()),
                Piece::Var("y".into()),
                Piece::Text(".100%".into()),
            ]
        );
        assert_eq!(parse_template("%"), vec![Piece::Text("%".into())]);
    }

    #[test]
    fn bad_sections_are_refused() {
        let base = "[StatAccumInput]\n[s]\ntype = \"StatFilter\"\nmessage_matcher = \"TRUE\"\n";
        let e = build(base).unwrap_err();
        assert!(e.contains("makes no stat"), "{e}");
        let e = build(&format!(
            "{base}[s.Metric.a]\ntype = \"Meter\"\nname = \"x\"\nvalue = \"1\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("has type `Meter`"), "{e}");
        let e = build(&format!(
            "{base}stat_accum_name = \"nope\"\n[s.Metric.a]\ntype = \"Counter\"\nname = \"x\"\nvalue = \"1\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("sends to `nope`"), "{e}");
    }

    #[test]
    fn messages_become_stats_with_interpolated_names_and_values() {
        let accumulator = Arc::new(StatAccumulator::default());
        let metric = |kind, name: &str, value: &str, replace_dot| Metric {
            id: name.into(),
            kind,
            name: parse_template(name),
            value: parse_template(value),
            replace_dot,
        };
        let plugin = StatFilterPlugin {
            accumulator: Arc::clone(&accumulator),
            metrics: Arc::new(vec![
                metric(Kind::Counter, "req.%Hostname%.%status%", "1", true),
                metric(Kind::Timer, "req.time", "%took%", false),
                metric(
                    Kind::Gauge { delta: false },
                    "req.%Type%.size",
                    "%size%",
                    false,
                ),
                metric(Kind::Counter, "bad.%nothing%", "%Payload%", false),
            ]),
        };
        let ctx = PluginContext {
            name: "s".into(),
            shard: 0,
            core: 0,
            shards: 1,
            hostname: "h".into(),
            max_message_size: 65536,
        };
        let mut f = plugin.new_filter(&ctx).unwrap();
        struct NoInject;
        impl Inject for NoInject {
            fn inject(&mut self, _: &Message) -> Result<(), ProcessError> {
                Ok(())
            }
            fn inject_encoded(&mut self, _: &[u8]) -> Result<(), ProcessError> {
                Ok(())
            }
        }
        for (status, took) in [(200, 10.0), (200, 30.0), (404, 20.0)] {
            let mut m = Message::new_now();
            m.hostname = Some("web.1".into());
            m.r#type = Some("access".into());
            m.payload = Some("not a number".into());
            m.add_field(Field::integer("status", status));
            m.add_field(Field::double("took", took));
            m.add_field(Field::string("size", "512"));
            let bytes = m.to_bytes();
            let d = Delivery {
                view: MessageView::new(&bytes).unwrap(),
                loops: 0,
            };
            f.process(&d, &mut NoInject).unwrap();
        }
        let out = emitted(&accumulator);
        assert!(
            out.contains("stats.counters.req.web_1.200.count 2 "),
            "{out}"
        );
        assert!(
            out.contains("stats.counters.req.web_1.404.count 1 "),
            "{out}"
        );
        assert!(
            out.contains("stats.timers.req.time.mean 20.000000 "),
            "{out}"
        );
        assert!(
            out.contains("stats.gauges.req.access.size 512.000000 "),
            "{out}"
        );
        assert!(!out.contains("bad."), "{out}");
        let mut report = hekate_engine::plugin::FieldCollector::default();
        f.report(&mut report);
        let bad = report
            .fields
            .iter()
            .find(|f| f.name == "BadValues")
            .unwrap();
        assert_eq!(bad.value, hekate_engine::stats::ReportValue::Int(3));
    }
}

//! A [`Sample`] in the Prometheus text exposition format (version 0.0.4): a `# HELP` and a
//! `# TYPE` line for every family, counters ending in `_total`, histograms as
//! `_bucket{le=…}`/`_sum`/`_count`, label values escaped.
//!
//! Per plugin and core (labels `plugin`, `type`, `category`, `core`): messages received,
//! matched, delivered, dropped, injected, decode failures, rejected records, skipped bytes;
//! for filters and outputs the messages queued for the instance (its lanes and what it holds)
//! and the matcher and processing time histograms (sampled, one message in
//! `sample_denominator`); a sandbox's memory; a buffered output's disk queue. Per core: messages
//! routed, injections refused, messages the router holds for a full lane, and the fill of the
//! fullest lane it feeds (`hekate_core_ring_fill_ratio`); per lane (`from_core` → `to_core`,
//! plugin), its messages, which tells which output holds which core back.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use hekate_config::Category;

use super::{Sample, category_label};
use crate::stats::{PluginSnapshot, ReportValue};

/// Bucket bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 14] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1, 1.0,
];

/// A plugin's own report fields exported as gauges of their own: (field, metric, help).
const FIELD_GAUGES: [(&str, &str, &str); 5] = [
    (
        "Memory",
        "hekate_plugin_sandbox_memory_bytes",
        "Memory the plugin's Lua sandbox uses now.",
    ),
    (
        "MaxMemory",
        "hekate_plugin_sandbox_max_memory_bytes",
        "Most memory the plugin's Lua sandbox used.",
    ),
    (
        "QueueBytes",
        "hekate_plugin_disk_queue_bytes",
        "Bytes in the buffered output's disk queue.",
    ),
    (
        "QueueRecords",
        "hekate_plugin_disk_queue_messages",
        "Messages in the buffered output's disk queue, not yet delivered.",
    ),
    (
        "QueueFullCount",
        "hekate_plugin_disk_queue_full_total",
        "Times the buffered output's disk queue reached max_buffer_size.",
    ),
];

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One plugin on one shard, with its labels rendered once.
struct Row<'a> {
    labels: String,
    category: Category,
    snapshot: &'a PluginSnapshot,
}

/// Every (plugin, shard) that has a snapshot, in plugin then shard order.
fn rows(sample: &Sample) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for (p, labels) in sample.plugins.iter().enumerate() {
        let Some(labels) = labels.as_ref().filter(|l| counted(l.category)) else {
            continue;
        };
        for (shard, snap) in sample.shards.iter().enumerate() {
            let Some(snapshot) = snap.as_ref().and_then(|s| s.plugins.get(p)) else {
                continue;
            };
            let core = sample.cores.get(shard).copied().unwrap_or(shard);
            rows.push(Row {
                labels: format!(
                    "plugin=\"{}\",type=\"{}\",category=\"{}\",core=\"{core}\"",
                    escape(&labels.name),
                    escape(&labels.type_name),
                    category_label(labels.category)
                ),
                category: labels.category,
                snapshot,
            });
        }
    }
    rows
}

/// Splitters, decoders and encoders run inside inputs and outputs and count nothing of their
/// own.
fn counted(c: Category) -> bool {
    matches!(c, Category::Input | Category::Filter | Category::Output)
}

fn inputs(c: Category) -> bool {
    c == Category::Input
}

fn filters(c: Category) -> bool {
    c == Category::Filter
}

fn any(_: Category) -> bool {
    true
}

fn consumes(c: Category) -> bool {
    matches!(c, Category::Filter | Category::Output)
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    let mut counts = [0u64; BUCKETS.len()];
    let mut sum_ns: f64 = 0.0;
    for v in h.iter_recorded() {
        let ns = v.value_iterated_to();
        let n = v.count_at_value();
        sum_ns += ns as f64 * n as f64;
        let secs = ns as f64 / 1e9;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            counts[i] += n;
        }
    }
    let mut cumulative = 0;
    for (bound, n) in BUCKETS.iter().zip(counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let total = h.len();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_ns / 1e9);
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

fn int_field(s: &PluginSnapshot, field: &str) -> Option<i64> {
    s.extra
        .iter()
        .find(|f| f.name == field)
        .and_then(|f| match f.value {
            ReportValue::Int(v) => Some(v),
            _ => None,
        })
}

/// The sample as `/metrics` serves it; `stopping` while hekate shuts down.
pub fn render(sample: &Sample, stopping: bool) -> String {
    let rows = rows(sample);
    let mut out = String::with_capacity(4096 + rows.len() * 2048);
    type Counter = (
        &'static str,
        &'static str,
        fn(Category) -> bool,
        fn(&PluginSnapshot) -> u64,
    );
    let counters: [Counter; 8] = [
        (
            "hekate_plugin_messages_received_total",
            "Messages that reached the plugin (inputs: records read).",
            any,
            |s| s.received,
        ),
        (
            "hekate_plugin_messages_matched_total",
            "Messages the router of this core matched for the filter or output.",
            consumes,
            |s| s.matched,
        ),
        (
            "hekate_plugin_messages_delivered_total",
            "Messages routed (inputs), processed (filters) or written (outputs).",
            any,
            |s| s.delivered,
        ),
        (
            "hekate_plugin_messages_dropped_total",
            "Messages lost to an error or a full_action = \"drop\" overflow.",
            any,
            |s| s.dropped,
        ),
        (
            "hekate_plugin_messages_injected_total",
            "Messages the plugin injected.",
            filters,
            |s| s.injected,
        ),
        (
            "hekate_plugin_decode_failures_total",
            "Records that failed to decode.",
            inputs,
            |s| s.decode_failures,
        ),
        (
            "hekate_plugin_records_rejected_total",
            "Records the input's splitter refused; for filters and outputs, matched messages refused for lack of the message_signer.",
            any,
            |s| s.rejected,
        ),
        (
            "hekate_plugin_skipped_bytes_total",
            "Corrupt bytes the input's splitter skipped.",
            inputs,
            |s| s.skipped_bytes,
        ),
    ];
    for (name, help, applies, value) in counters {
        family(&mut out, name, "counter", help);
        for r in rows.iter().filter(|r| applies(r.category)) {
            let _ = writeln!(out, "{name}{{{}}} {}", r.labels, value(r.snapshot));
        }
    }

    // Queue depth per consumer instance: what its lanes hold plus what it holds.
    family(
        &mut out,
        "hekate_plugin_queue_messages",
        "gauge",
        "Messages waiting for the filter or output instance on this core: in its lanes and held by it.",
    );
    for (p, labels) in sample.plugins.iter().enumerate() {
        let Some(labels) = labels.as_ref().filter(|l| consumes(l.category)) else {
            continue;
        };
        let mut per_shard: Vec<(usize, u64, u64)> = Vec::new();
        for l in sample.lanes.iter().filter(|l| l.plugin == p) {
            match per_shard.iter_mut().find(|e| e.0 == l.to) {
                Some(e) => e.1 += l.messages,
                None => per_shard.push((l.to, l.messages, 0)),
            }
        }
        for &(plugin, shard, held) in &sample.held {
            if plugin != p {
                continue;
            }
            match per_shard.iter_mut().find(|e| e.0 == shard) {
                Some(e) => e.2 = held,
                None => per_shard.push((shard, 0, held)),
            }
        }
        per_shard.sort_unstable();
        for (shard, queued, held) in per_shard {
            let core = sample.cores.get(shard).copied().unwrap_or(shard);
            // A message popped from a lane but not finished is counted by both.
            let _ = writeln!(
                out,
                "hekate_plugin_queue_messages{{plugin=\"{}\",type=\"{}\",category=\"{}\",core=\"{core}\"}} {}",
                escape(&labels.name),
                escape(&labels.type_name),
                category_label(labels.category),
                queued.max(held)
            );
        }
    }

    for (field, name, help) in FIELD_GAUGES {
        family(
            &mut out,
            name,
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            },
            help,
        );
        for r in &rows {
            if let Some(v) = int_field(r.snapshot, field) {
                let _ = writeln!(out, "{name}{{{}}} {v}", r.labels);
            }
        }
    }

    let every = sample.sample_every.max(1);
    for (name, what, pick) in [
        (
            "hekate_plugin_match_duration_seconds",
            "matcher evaluation",
            (|s| &*s.match_ns) as fn(&PluginSnapshot) -> &Histogram<u64>,
        ),
        (
            "hekate_plugin_process_duration_seconds",
            "processing of a message",
            |s| &*s.process_ns,
        ),
    ] {
        family(
            &mut out,
            name,
            "histogram",
            &format!("Time of the {what}, sampled one message in {every}."),
        );
        for r in rows.iter().filter(|r| consumes(r.category)) {
            histogram(&mut out, name, &r.labels, pick(r.snapshot));
        }
    }

    // Per core.
    let shards = sample.cores.len();
    let core_of = |shard: usize| sample.cores.get(shard).copied().unwrap_or(shard);
    family(
        &mut out,
        "hekate_core_messages_routed_total",
        "counter",
        "Messages the router of this core evaluated.",
    );
    for (shard, snap) in sample.shards.iter().enumerate() {
        let v = snap.as_ref().map_or(0, |s| s.routed);
        let _ = writeln!(
            out,
            "hekate_core_messages_routed_total{{core=\"{}\"}} {v}",
            core_of(shard)
        );
    }
    family(
        &mut out,
        "hekate_core_injections_refused_total",
        "counter",
        "Injected messages refused (max_message_loops, or a filter's own matcher).",
    );
    for (shard, snap) in sample.shards.iter().enumerate() {
        let v = snap.as_ref().map_or(0, |s| s.inject_refused);
        let _ = writeln!(
            out,
            "hekate_core_injections_refused_total{{core=\"{}\"}} {v}",
            core_of(shard)
        );
    }
    family(
        &mut out,
        "hekate_core_router_pending_messages",
        "gauge",
        "Messages the router of this core holds because a lane they go to is full.",
    );
    for shard in 0..shards {
        let v = sample.router_pending.get(shard).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "hekate_core_router_pending_messages{{core=\"{}\"}} {v}",
            core_of(shard)
        );
    }
    let capacity = sample.lane_capacity.max(1);
    family(
        &mut out,
        "hekate_core_ring_fill_ratio",
        "gauge",
        "Fill of the fullest lane the router of this core feeds: its messages over ring_capacity x batch_size (a ring of part-filled batches is full sooner; hekate_core_router_pending_messages above 0 means a lane is full and the inputs of this core wait).",
    );
    for shard in 0..shards {
        let fullest = sample
            .lanes
            .iter()
            .filter(|l| l.from == shard)
            .map(|l| l.messages)
            .max()
            .unwrap_or(0);
        let ratio = (fullest as f64 / capacity as f64).min(1.0);
        let _ = writeln!(
            out,
            "hekate_core_ring_fill_ratio{{core=\"{}\"}} {ratio}",
            core_of(shard)
        );
    }
    family(
        &mut out,
        "hekate_lane_messages",
        "gauge",
        "Messages in the lane from the router of from_core to the plugin's instance on to_core.",
    );
    for l in &sample.lanes {
        let Some(Some(labels)) = sample.plugins.get(l.plugin) else {
            continue;
        };
        let _ = writeln!(
            out,
            "hekate_lane_messages{{plugin=\"{}\",type=\"{}\",from_core=\"{}\",to_core=\"{}\"}} {}",
            escape(&labels.name),
            escape(&labels.type_name),
            core_of(l.from),
            core_of(l.to),
            l.messages
        );
    }
    family(
        &mut out,
        "hekate_lane_capacity_messages",
        "gauge",
        "Messages a lane holds when full (ring_capacity x batch_size).",
    );
    let _ = writeln!(
        out,
        "hekate_lane_capacity_messages {}",
        sample.lane_capacity
    );
    family(
        &mut out,
        "hekate_healthy",
        "gauge",
        "1 while every output delivers (GET /health says why not).",
    );
    let healthy = !stopping && sample.problems.is_empty();
    let _ = writeln!(out, "hekate_healthy {}", u8::from(healthy));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stats::{ReportField, ShardStats, add};
    use crate::telemetry::{LaneFill, PluginLabels};

    fn sample() -> Sample {
        let a = ShardStats::new(0, 2);
        add(&a.plugins[0].received, 3);
        add(&a.plugins[1].delivered, 2);
        a.plugins[1].match_ns.borrow_mut().record(1_500).unwrap();
        a.plugins[1]
            .match_ns
            .borrow_mut()
            .record(2_000_000)
            .unwrap();
        a.plugins[1].set_extra(vec![ReportField::count("Memory", 4096)]);
        add(&a.routed, 3);
        Sample {
            cores: vec![7],
            plugins: vec![
                Some(PluginLabels {
                    name: "tcp \"in\"".into(),
                    type_name: "TcpInput".into(),
                    category: Category::Input,
                }),
                Some(PluginLabels {
                    name: "lua".into(),
                    type_name: "SandboxFilter".into(),
                    category: Category::Filter,
                }),
            ],
            shards: vec![Some(Arc::new(a.snapshot()))],
            router_pending: vec![0],
            lanes: vec![LaneFill {
                plugin: 1,
                from: 0,
                to: 0,
                messages: 32,
            }],
            held: vec![(1, 0, 5)],
            lane_capacity: 64,
            sample_every: 1000,
            problems: Vec::new(),
        }
    }

    #[test]
    fn counters_carry_plugin_and_core_labels() {
        let text = render(&sample(), false);
        assert!(
            text.contains(
                "hekate_plugin_messages_received_total{plugin=\"tcp \\\"in\\\"\",type=\"TcpInput\",category=\"input\",core=\"7\"} 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("hekate_core_messages_routed_total{core=\"7\"} 3\n"));
        assert!(text.contains("hekate_core_ring_fill_ratio{core=\"7\"} 0.5\n"));
        assert!(text.contains(
            "hekate_plugin_queue_messages{plugin=\"lua\",type=\"SandboxFilter\",category=\"filter\",core=\"7\"} 32\n"
        ));
        assert!(text.contains(
            "hekate_plugin_sandbox_memory_bytes{plugin=\"lua\",type=\"SandboxFilter\",category=\"filter\",core=\"7\"} 4096\n"
        ));
        assert!(text.contains("hekate_healthy 1\n"));
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let text = render(&sample(), false);
        let labels = "plugin=\"lua\",type=\"SandboxFilter\",category=\"filter\",core=\"7\"";
        let line = |le: &str| {
            format!("hekate_plugin_match_duration_seconds_bucket{{{labels},le=\"{le}\"}}")
        };
        let value = |prefix: &str| -> f64 {
            let l = text
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}"));
            l.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert_eq!(value(&line("0.000001")), 0.0);
        assert_eq!(value(&line("0.0000025")), 1.0);
        assert_eq!(value(&line("0.001")), 1.0);
        assert_eq!(value(&line("0.0025")), 2.0);
        assert_eq!(value(&line("+Inf")), 2.0);
        let count = format!("hekate_plugin_match_duration_seconds_count{{{labels}}}");
        assert_eq!(value(&count), 2.0);
        let sum = value(&format!(
            "hekate_plugin_match_duration_seconds_sum{{{labels}}}"
        ));
        assert!((sum - 0.0020015).abs() < 0.00003, "{sum}");
        // Inputs have no matcher.
        assert!(!text.contains("hekate_plugin_match_duration_seconds_bucket{plugin=\"tcp"));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&sample(), true);
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|b| declared.iter().any(|d| d == b))
                    })
                    .unwrap_or(name);
                assert!(declared.iter().any(|d| d == base), "{line}");
            }
        }
        assert!(text.contains("hekate_healthy 0\n"), "stopping");
    }
}

//! `data/hekate_health.json`: the newest telemetry sample as the page draws it — every plugin of
//! the pipeline with its figures on each core. Counters are totals since start; the page turns
//! two successive ones into rates.
//!
//! ```json
//! {"cores":[2,3],"lane_capacity":8192,"sample_every":64,"problems":[],"router_pending":[0,0],
//!  "plugins":[{"name":"Stats","type":"SandboxFilter","category":"filter",
//!    "cores":[{"core":2,"received":10,"matched":10,"delivered":0,"dropped":0,"injected":2,
//!              "decode_failures":0,"rejected":0,"match_ns":120,"process_ns":900,
//!              "match_p99_ns":300,"process_p99_ns":2000,"ring":0,"ring_capacity":16384,"held":0,
//!              "fields":{"Memory":31000,"MaxInstructions":12}}]}]}
//! ```
//!
//! `ring` is what the lanes into the instance on that core hold (messages; `ring_capacity` when
//! they are full), `held` what the
//! instance took from them and has not finished (an output's unflushed buffer included).

use hekate_engine::stats::ReportValue;
use hekate_engine::telemetry::Sample;
use serde_json::{Map, Value, json};

/// The sample as JSON.
pub(super) fn render(sample: &Sample) -> Vec<u8> {
    let mut plugins = Vec::new();
    for (p, labels) in sample.plugins.iter().enumerate() {
        let Some(labels) = labels else { continue };
        let mut cores = Vec::new();
        for (shard, snap) in sample.shards.iter().enumerate() {
            let core = sample.cores.get(shard).copied().unwrap_or(shard);
            let lanes = sample
                .lanes
                .iter()
                .filter(|l| l.plugin == p && l.to == shard);
            let ring: u64 = lanes.clone().map(|l| l.messages).sum();
            let ring_capacity = lanes.count() as u64 * sample.lane_capacity;
            let held: u64 = sample
                .held
                .iter()
                .filter(|h| h.0 == p && h.1 == shard)
                .map(|h| h.2)
                .sum();
            let Some(s) = snap.as_ref().and_then(|s| s.plugins.get(p)) else {
                if ring > 0 || held > 0 {
                    cores.push(json!({
                        "core": core,
                        "ring": ring,
                        "ring_capacity": ring_capacity,
                        "held": held,
                    }));
                }
                continue;
            };
            // A core where the plugin has an instance (lanes lead to it) or did something.
            let active = s.received + s.matched + s.delivered + s.injected + s.dropped > 0
                || ring_capacity > 0
                || held > 0;
            if !active {
                continue;
            }
            let mut fields = Map::new();
            for f in &s.extra {
                let v = match &f.value {
                    ReportValue::Int(n) => json!(n),
                    ReportValue::Float(x) => json!(x),
                    ReportValue::Str(t) => json!(t),
                };
                fields.insert(f.name.clone(), v);
            }
            cores.push(json!({
                "core": core,
                "received": s.received,
                "matched": s.matched,
                "delivered": s.delivered,
                "dropped": s.dropped,
                "injected": s.injected,
                "decode_failures": s.decode_failures,
                "rejected": s.rejected,
                "match_ns": s.match_ns.mean().round() as u64,
                "process_ns": s.process_ns.mean().round() as u64,
                "match_p99_ns": s.match_ns.value_at_quantile(0.99),
                "process_p99_ns": s.process_ns.value_at_quantile(0.99),
                "ring": ring,
                "ring_capacity": ring_capacity,
                "held": held,
                "fields": Value::Object(fields),
            }));
        }
        plugins.push(json!({
            "name": labels.name,
            "type": labels.type_name,
            "category": labels.category.to_string().to_lowercase(),
            "cores": cores,
        }));
    }
    let body = json!({
        "cores": sample.cores,
        "lane_capacity": sample.lane_capacity,
        "sample_every": sample.sample_every,
        "problems": sample.problems,
        "router_pending": sample.router_pending,
        "plugins": plugins,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hekate_config::Category;
    use hekate_engine::telemetry::{LaneFill, PluginLabels};

    #[test]
    fn every_plugin_is_listed_with_its_lanes_by_core() {
        let sample = Sample {
            cores: vec![4],
            plugins: vec![
                Some(PluginLabels {
                    name: "in".into(),
                    type_name: "TcpInput".into(),
                    category: Category::Input,
                }),
                None,
                Some(PluginLabels {
                    name: "out".into(),
                    type_name: "LogOutput".into(),
                    category: Category::Output,
                }),
            ],
            shards: vec![None],
            lanes: vec![LaneFill {
                plugin: 2,
                from: 0,
                to: 0,
                messages: 7,
            }],
            ..Sample::default()
        };
        let v: Value = serde_json::from_slice(&render(&sample)).unwrap();
        let plugins = v["plugins"].as_array().unwrap();
        assert_eq!(plugins.len(), 2);
        assert_eq!(plugins[0]["name"], "in");
        assert_eq!(plugins[1]["category"], "output");
        assert_eq!(plugins[1]["cores"][0]["core"], 4);
        assert_eq!(plugins[1]["cores"][0]["ring"], 7);
    }
}

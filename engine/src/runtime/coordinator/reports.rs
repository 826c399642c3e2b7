//! Stats and reports: the shards' snapshots merged, the `heka.all-report` and `heka.memstat`
//! messages injected every `report_interval`, and the report SIGUSR1 prints.
//!
//! Each shard pushes a snapshot of its counters every second (or at once when the coordinator
//! raises the snapshot epoch); the coordinator keeps the newest per shard and sums them per
//! plugin ([`PluginSnapshot::merge`]: counts add up, histograms combine, a plugin's own fields
//! merge by kind — `Max…` the largest, `…AvgDuration` weighted by samples).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hekate_config::Category;

use super::Coordinator;
use super::placement::ConsumerInfo;
use crate::runtime::pipeline::PluginInfo;
use crate::stats::{PluginSnapshot, Report, ReportEntry, ReportField, ShardSnapshot};
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};

impl Coordinator {
    /// Asks every shard for a fresh snapshot and waits (briefly) for them.
    pub(super) fn refresh(&mut self) {
        let epoch = self.control.snapshot_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.control.bell.ring();
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            self.collect();
            let fresh = self
                .latest
                .iter()
                .all(|s| s.as_ref().is_some_and(|s| s.epoch >= epoch));
            if fresh || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Takes the newest snapshot of every shard.
    pub(super) fn collect(&mut self) {
        for (i, rx) in self.snapshots.iter_mut().enumerate() {
            while let Ok(s) = rx.pop() {
                self.latest[i] = Some(Arc::new(s));
                self.fresh = true;
            }
        }
    }

    /// The current report (from the latest snapshots, at most a second old).
    pub fn report(&self) -> Report {
        let pending: u64 = self.pending.iter().map(|p| p.load(Ordering::Acquire)).sum();
        build_report(
            &self.plugins,
            &self.consumers,
            &self.latest,
            pending,
            self.lane_messages,
        )
    }

    /// Injects a `heka.all-report` message into the first shard's router.
    pub(super) fn inject_report(&mut self) {
        let payload = self.report().to_json();
        let mut bytes = Vec::with_capacity(payload.len() + 128);
        MessageWriter::new(&mut bytes)
            .uuid(&random_uuid())
            .timestamp(now_ns())
            .msg_type(b"heka.all-report")
            .logger(b"hekad")
            .hostname(self.hostname.as_bytes())
            .pid(std::process::id() as i32)
            .payload(payload.as_bytes());
        self.inject(bytes);
        self.inject_memstat();
    }

    /// Injects a `heka.memstat` message beside the report, as hekad does, with the allocator's
    /// figures in Go's names (glibc's `mallinfo2`: HeapSys = arena + mmapped, HeapAlloc =
    /// HeapInuse = allocated + mmapped, HeapIdle = free in the arena, HeapReleased = what the top
    /// of the heap could give back; glibc does not count objects, so HeapObjects is the number
    /// of free chunks, its nearest figure).
    fn inject_memstat(&mut self) {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let m = unsafe { libc::mallinfo2() };
        let int = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let mut bytes = Vec::with_capacity(256);
        MessageWriter::new(&mut bytes)
            .uuid(&random_uuid())
            .timestamp(now_ns())
            .msg_type(b"heka.memstat")
            .logger(b"hekad")
            .hostname(self.hostname.as_bytes())
            .pid(std::process::id() as i32)
            .field_int_as("HeapSys", int(m.arena + m.hblkhd), "B")
            .field_int_as("HeapAlloc", int(m.uordblks + m.hblkhd), "B")
            .field_int_as("HeapIdle", int(m.fordblks), "B")
            .field_int_as("HeapInuse", int(m.uordblks + m.hblkhd), "B")
            .field_int_as("HeapReleased", int(m.keepcost), "B")
            .field_int_as("HeapObjects", int(m.ordblks), "count");
        self.inject(bytes);
    }

    /// Routes a message through the first shard's router.
    pub(super) fn inject(&mut self, bytes: Vec<u8>) {
        if self.injections.push(bytes).is_ok() {
            self.control.bell.ring();
        } else {
            tracing::warn!("the coordinator's injection ring is full; a message was dropped");
        }
    }
}

/// Every plugin's counters summed over the shards' latest snapshots, with the messages routed
/// and the injections refused.
fn merge_shards(
    latest: &[Option<Arc<ShardSnapshot>>],
    plugins: usize,
) -> (Vec<PluginSnapshot>, u64, u64) {
    // A plugin's sum starts as a copy of its first shard's numbers: an empty snapshot would
    // allocate and zero two histograms per plugin for every report (most of an idle hekate's
    // CPU with `report_interval = 1`).
    let mut merged: Vec<Option<PluginSnapshot>> = vec![None; plugins];
    let (mut routed, mut refused) = (0, 0);
    for snap in latest.iter().flatten() {
        for (m, s) in merged.iter_mut().zip(&snap.plugins) {
            match m {
                Some(m) => m.merge(s),
                None => *m = Some(s.clone()),
            }
        }
        routed += snap.routed;
        refused += snap.inject_refused;
    }
    let merged = merged.into_iter().map(Option::unwrap_or_default).collect();
    (merged, routed, refused)
}

/// The report of `plugins` (a slot per plugin number, `None` while free) from the shards'
/// latest snapshots; `pending` messages wait in routers, a lane holds `lane_messages`.
fn build_report(
    plugins: &[Option<PluginInfo>],
    consumers: &[ConsumerInfo],
    latest: &[Option<Arc<ShardSnapshot>>],
    pending: u64,
    lane_messages: u64,
) -> Report {
    let (merged, routed, refused) = merge_shards(latest, plugins.len());
    let mut report = Report::default();
    report.categories[0].push(ReportEntry {
        name: "Router".into(),
        fields: vec![
            ReportField::count("ProcessMessageCount", routed),
            ReportField::count("InChanLength", pending),
            ReportField::count("InjectRefusedCount", refused),
        ],
    });
    for (p, info) in plugins.iter().enumerate() {
        let Some(info) = info else { continue };
        let s = &merged[p];
        let mut fields = Vec::new();
        let slot = match info.category {
            Category::Input => {
                fields.push(ReportField::count("ProcessMessageCount", s.received));
                fields.push(ReportField::count("DeliveredCount", s.delivered));
                fields.push(ReportField::count("DecodeFailureCount", s.decode_failures));
                fields.push(ReportField::count("DroppedCount", s.dropped));
                fields.push(ReportField::count("SkippedBytes", s.skipped_bytes));
                fields.push(ReportField::count("RejectedCount", s.rejected));
                1
            }
            Category::Splitter => 2,
            Category::Decoder => 3,
            Category::Encoder => 6,
            Category::Filter | Category::Output => {
                let consumer = consumers.iter().find(|c| c.plugin == p);
                let (cap, len) = consumer.map_or((0, 0), |c| {
                    (
                        c.lanes.len() as u64 * lane_messages,
                        c.lanes.iter().map(|l| l.2.in_flight()).sum::<u64>(),
                    )
                });
                fields.push(ReportField::count("InChanCapacity", cap));
                fields.push(ReportField::count("InChanLength", len));
                fields.push(ReportField::count("MatchChanCapacity", cap));
                fields.push(ReportField::count("MatchChanLength", len));
                fields.push(ReportField::count("LeakCount", 0));
                fields.push(ReportField::ns(
                    "MatchAvgDuration",
                    s.match_ns.mean() as u64,
                ));
                fields.push(ReportField::count("ProcessMessageCount", s.received));
                if info.category == Category::Filter {
                    fields.push(ReportField::count("InjectMessageCount", s.injected));
                }
                fields.push(ReportField::ns(
                    "ProcessMessageAvgDuration",
                    s.process_ns.mean() as u64,
                ));
                fields.push(ReportField::count("MatchedCount", s.matched));
                fields.push(ReportField::count("DeliveredCount", s.delivered));
                fields.push(ReportField::count("DroppedCount", s.dropped));
                fields.push(ReportField::count("RejectedCount", s.rejected));
                fields.push(ReportField::ns(
                    "MatchP99Duration",
                    s.match_ns.value_at_quantile(0.99),
                ));
                fields.push(ReportField::ns(
                    "ProcessMessageP99Duration",
                    s.process_ns.value_at_quantile(0.99),
                ));
                if info.category == Category::Filter {
                    4
                } else {
                    5
                }
            }
        };
        // The plugin's own numbers replace the runtime's of the same name (a sandbox counts
        // its process_message calls and injections itself).
        for f in &s.extra {
            match fields.iter_mut().find(|g| g.name == f.name) {
                Some(g) => *g = f.clone(),
                None => fields.push(f.clone()),
            }
        }
        report.categories[slot].push(ReportEntry {
            name: info.name.clone(),
            fields,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::super::tests::{consumer, decoder, filter, input, output, some};
    use super::*;
    use crate::mesh::Batch;
    use crate::plugin::{InputPlacement, Placement};
    use crate::stats::{ReportValue, ShardStats, add};
    use hekate_model::message::{Message, MessageView};

    fn value(report: &Report, category: usize, entry: &str, field: &str) -> ReportValue {
        let e = report.categories[category]
            .iter()
            .find(|e| e.name == entry)
            .unwrap_or_else(|| panic!("no entry {entry} in {:?}", report.categories[category]));
        e.fields
            .iter()
            .find(|f| f.name == field)
            .unwrap_or_else(|| panic!("no field {field} in {:?}", e.fields))
            .value
            .clone()
    }

    fn int(v: i64) -> ReportValue {
        ReportValue::Int(v)
    }

    #[test]
    fn counts_of_every_shard_are_summed_per_plugin() {
        let plugins = some(vec![
            input("Tcp", InputPlacement::EveryShard),
            output("File", Placement::PerShard),
        ]);
        let (a, b) = (ShardStats::new(0, 2), ShardStats::new(1, 2));
        add(&a.plugins[0].received, 3);
        add(&b.plugins[0].received, 4);
        add(&a.plugins[1].delivered, 2);
        add(&b.plugins[1].delivered, 5);
        add(&a.routed, 5);
        add(&b.routed, 6);
        add(&b.inject_refused, 1);
        let latest = [Some(Arc::new(a.snapshot())), Some(Arc::new(b.snapshot()))];
        let report = build_report(&plugins, &[], &latest, 7, 100);
        assert_eq!(value(&report, 0, "Router", "ProcessMessageCount"), int(11));
        assert_eq!(value(&report, 0, "Router", "InChanLength"), int(7));
        assert_eq!(value(&report, 0, "Router", "InjectRefusedCount"), int(1));
        assert_eq!(value(&report, 1, "Tcp", "ProcessMessageCount"), int(7));
        assert_eq!(value(&report, 5, "File", "DeliveredCount"), int(7));
    }

    #[test]
    fn a_plugins_own_fields_merge_by_kind_and_replace_the_runtimes() {
        let plugins = some(vec![filter("Sandbox", Placement::PerShard)]);
        let own = |memory, max, samples, avg, count| {
            vec![
                ReportField::count("Memory", memory),
                ReportField::count("MaxMemory", max),
                ReportField::count("ProcessMessageSamples", samples),
                ReportField::ns("ProcessMessageAvgDuration", avg),
                ReportField::count("ProcessMessageCount", count),
            ]
        };
        let (a, b) = (ShardStats::new(0, 1), ShardStats::new(1, 1));
        add(&a.plugins[0].received, 1000);
        a.plugins[0].set_extra(own(100, 300, 1, 100, 10));
        b.plugins[0].set_extra(own(50, 200, 3, 200, 20));
        let latest = [Some(Arc::new(a.snapshot())), Some(Arc::new(b.snapshot()))];
        let report = build_report(&plugins, &[], &latest, 0, 100);
        // Sums, the largest maximum, the mean weighted by samples.
        assert_eq!(value(&report, 4, "Sandbox", "Memory"), int(150));
        assert_eq!(value(&report, 4, "Sandbox", "MaxMemory"), int(300));
        assert_eq!(
            value(&report, 4, "Sandbox", "ProcessMessageSamples"),
            int(4)
        );
        assert_eq!(
            value(&report, 4, "Sandbox", "ProcessMessageAvgDuration"),
            int(175)
        );
        // The sandbox's own count wins over the runtime's.
        assert_eq!(value(&report, 4, "Sandbox", "ProcessMessageCount"), int(30));
        let names: Vec<&str> = report.categories[4][0]
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names
                .iter()
                .filter(|n| **n == "ProcessMessageCount")
                .count(),
            1
        );
    }

    #[test]
    fn a_shard_without_a_snapshot_yet_counts_nothing() {
        let plugins = some(vec![input("Tcp", InputPlacement::EveryShard)]);
        let a = ShardStats::new(0, 1);
        add(&a.plugins[0].received, 3);
        let report = build_report(&plugins, &[], &[Some(Arc::new(a.snapshot())), None], 0, 1);
        assert_eq!(value(&report, 1, "Tcp", "ProcessMessageCount"), int(3));
    }

    #[test]
    fn a_consumers_channel_is_its_lanes() {
        let plugins = some(vec![
            input("Tcp", InputPlacement::EveryShard),
            filter("Counter", Placement::Single),
        ]);
        let (c, mut lanes) = consumer(1, &[(0, 0), (1, 0)], &[0]);
        let bytes = Message::new_now().to_bytes();
        let mut batch = Batch::default();
        batch.push(&MessageView::new(&bytes).unwrap(), 0);
        batch.push(&MessageView::new(&bytes).unwrap(), 0);
        lanes[1].0.try_push(batch).unwrap();
        let report = build_report(&plugins, &[c], &[None, None], 0, 64);
        assert_eq!(value(&report, 4, "Counter", "InChanCapacity"), int(128));
        assert_eq!(value(&report, 4, "Counter", "InChanLength"), int(2));
        assert_eq!(value(&report, 4, "Counter", "MatchChanLength"), int(2));
    }

    #[test]
    fn each_category_has_its_slot_and_free_slots_are_left_out() {
        let mut plugins = some(vec![
            decoder("Protobuf"),
            input("Tcp", InputPlacement::EveryShard),
            output("File", Placement::PerShard),
        ]);
        plugins.push(None);
        let report = build_report(&plugins, &[], &[], 0, 1);
        let names: Vec<Vec<&str>> = report
            .categories
            .iter()
            .map(|c| c.iter().map(|e| e.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["Router"],
                vec!["Tcp"],
                vec![],
                vec!["Protobuf"],
                vec![],
                vec!["File"],
                vec![]
            ]
        );
    }
}

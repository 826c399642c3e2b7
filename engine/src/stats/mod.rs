//! What shards count and the coordinator reports: per-plugin counters and sampled latency
//! histograms kept in `Cell`s on the shard that owns them ([`ShardStats`]), the snapshots shards
//! push every second ([`ShardSnapshot`]), and Heka's reports built from them ([`Report`]).
//!
//! Plugins see their counters through [`plugin`](crate::plugin); this module is public for the
//! micro-benches.

mod counters;
mod report;

pub use counters::{PluginCounters, PluginSnapshot, ShardSnapshot, ShardStats, add, new_histogram};
pub use report::{CATEGORIES, Report, ReportEntry, ReportField, ReportValue};

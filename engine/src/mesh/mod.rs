//! The ring mesh: the message path between shards. A router shard ([`RouterShard`]) copies each
//! matched message into a [`Batch`] per destination and pushes full batches into **lanes**
//! ([`lane`]: an rtrb SPSC ring of batches from one source shard to one filter or output
//! instance, with a return ring for emptied batches); [`Doorbell`]s wake a parked consumer or
//! producer without a spin loop.
//!
//! Plugins do not use this module (they get what they need from [`plugin`](crate::plugin)); it
//! is public for the micro-benches of the router and the lanes.

mod batch;
mod doorbell;
mod ring;
mod router;

pub use batch::Batch;
pub use doorbell::{Doorbell, LocalEvent, LocalWait, TaskGroup, Wait};
pub use ring::{LaneCounters, LaneRx, LaneTx, lane};
pub use router::{AckMark, BATCH_BYTES, OverflowHook, Route, RouterShard};

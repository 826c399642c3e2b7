//! The thread-per-core runtime, used by the binary: it starts a [`Pipeline`] and coordinates it.
//! See the crate docs for the picture; this module's rooms:
//!
//! - `pipeline.rs`: [`Pipeline::build`] turns a [`Config`](hekate_config::Config) into built
//!   plugins and compiled matchers, refusing a bad config with every error at once;
//! - `coordinator/`: [`start`] resolves the core layout, builds the ring mesh, starts one pinned
//!   glommio executor per worker core and returns the [`Coordinator`] once every input listens;
//!   [`Coordinator::run`] takes signals, collects stats snapshots, injects `heka.all-report`
//!   messages, prints the SIGUSR1 report, loads and unloads filters, and shuts down in order;
//! - `shard.rs`: one worker shard — its executor, router, instances, inputs and control task;
//! - `runner.rs`: how filter and output instances are driven from their lanes;
//! - `layout.rs`: worker and coordinator cores, io_uring memory; `signals.rs`: the signals the
//!   coordinator takes.
//!
//! The lower rooms are [`mesh`](crate::mesh) (router shards, lanes, doorbells) and
//! [`stats`](crate::stats) (counters, snapshots, reports); plugins see all they need through
//! [`plugin`](crate::plugin).

mod buffered;
mod claim;
mod coordinator;
mod layout;
mod pipeline;
mod runner;
mod shard;
mod signals;

pub use coordinator::reload::Reloader;
pub use coordinator::start::start;
pub use coordinator::{Coordinator, DEFAULT_SHUTDOWN_TIMEOUT, RunOutcome, StopHandle};
pub use layout::{Layout, allowed_cores};
pub use pipeline::{Pipeline, PluginInfo, StartError, check_matcher};
pub use signals::block as block_signals;

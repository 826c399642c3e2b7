//! The plugin API: the one module a plugin uses. It owns the plugin traits, the registry types,
//! what an input gets from its shard ([`InputContext`], [`RecordStream`]), the handle that loads
//! filters at run time ([`PipelineControl`]) and the rate-limited log of repeated warnings
//! ([`log`]). The runtime depends on this module, never the other way round.
//!
//! Every plugin exists in two forms, kept apart as in the rest of hekate:
//!
//! - a **plugin** (`…Plugin` traits): built once at start from its config section by a
//!   [`PluginType`]'s `build` function, validated, `Send + Sync`, shared by every shard;
//! - a **running instance** ([`Splitter`], [`Decoder`], [`Filter`], [`Encoder`], [`Output`], and
//!   the future an [`InputPlugin`] starts): created on the shard that runs it, free to hold
//!   `!Send` state (glommio sockets, `Rc`s).
//!
//! Inputs own their sockets and drive a [`RecordStream`] per
//! connection: split, decode and route inline. Filters and outputs are driven by the runtime: it
//! pops batches from their rings and calls [`Filter::process`] / [`Output::process`] once per
//! message, synchronously; an output does its I/O in [`Output::flush`], which the runtime awaits
//! (that await is the back-pressure).
//!
//! A plugin built on a crate that runs on tokio (hyper, database and broker clients) runs it
//! on a [`bridge::ForeignRuntime`] pinned to its core and trades work with its shard over
//! [`bridge::channel`]s: bounded SPSC rings with doorbells, so the shard never blocks on it.

mod ack;
pub mod bridge;
mod control;
pub mod handover;
mod input;
mod kinds;
pub mod log;
mod options;
mod registry;
mod rendezvous;
mod reopen;
mod stream;
mod trace;

pub use crate::mesh::{AckMark, LocalWait, TaskGroup};
pub use crate::stats::PluginCounters;
pub use ack::Acknowledgements;
pub(crate) use control::{ControlRequest, ShardEvent};
pub use control::{DynamicFilter, PipelineControl};
pub(crate) use input::Connections;
pub use input::{ConnectionGuard, InputContext, InputPlacement, InputPlugin, ListenAddress};
pub use kinds::{
    DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, Delivery, EncodeError, Encoder,
    EncoderPlugin, FieldCollector, Filter, FilterPlugin, Inject, LocalBoxFuture, Output,
    OutputError, OutputPlugin, Placement, PluginContext, PluginError, ProcessError, RecordSource,
    ReportSink, Split, SplitOutcome, Splitter, SplitterPlugin, Termination,
};
pub use options::{NoOptions, OptionSpec, options_of, without};
pub use registry::{BuildContext, BuildFn, Built, PluginType, Registry};
pub use rendezvous::Rendezvous;
pub use reopen::{reopen_requests, request_reopen};
pub(crate) use stream::DecoderCache;
pub use stream::{RecordStream, StreamSpec};
pub use trace::{TraceOrigin, Traced, trace};

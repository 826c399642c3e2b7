//! hekate's engine: the plugin traits and the thread-per-core runtime. The message model, Heka
//! framing, the matcher language and the message writer are the room below, `hekate-model`
//! (`engine/model/`), which depends on no crate of the workspace.
//!
//! # Threads
//!
//! ```text
//!  shard s: one per worker core, a pinned glommio executor
//!
//!   socket ──io_uring──▶ splitter ──▶ view / decoder ──▶ router shard s
//!                                                          │ one lane per (s, instance):
//!                                                          │ an rtrb SPSC ring of batches
//!               ┌──────────────────────────────────────────┼──────────────────────────┐
//!               ▼                                          ▼                          ▼
//!     per-shard instance on s                    single plugin on its home    … on another
//!     (FileOutput, TcpOutput)                    shard (CounterFilter),       home shard
//!                                                fed by every shard's router
//!   filters inject ──▶ the router of their shard (loop count ≤ max_message_loops)
//!
//!  coordinator (the main thread, pinned): signals, stats snapshots, reports, shutdown
//!  metrics endpoint (`http_address`; a tokio thread on the coordinator's core): /metrics, /health
//! ```
//!
//! - **One shard per worker core.** Each runs a glommio `LocalExecutor` pinned to its core;
//!   tasks are `!Send` and never migrate. No lock is taken on the message path.
//! - **Inputs run on every shard.** Listeners are bound with SO_REUSEPORT on every shard, so
//!   the kernel spreads connections and datagrams. A connection is read by one task into a buffer
//!   it reuses (io_uring via glommio); split, decode and routing happen inline on that task —
//!   no hop between read and route ([`plugin::RecordStream`]).
//! - **Every shard has a router** ([`mesh::RouterShard`]) holding the compiled matchers of
//!   every filter and output. A message is viewed in place ([`hekate_model::message::MessageView`]: headers
//!   located, nothing copied or decoded); its fields are indexed on the first `Fields[...]` test
//!   and the index serves every matcher ([`hekate_model::message::IndexedView`]); each matcher is evaluated
//!   once, and the message bytes, with the layout the view found ([`hekate_model::message::ViewLayout`]), are
//!   copied into the pending batch of each destination that matched, so the consumer gets its
//!   view back without scanning the message again. A message hekate itself just wrote (a
//!   payload message, or one from a native decoder) is not scanned at all: its
//!   [`hekate_model::writer::MessageWriter`] kept the layout as it wrote, and a native decoder's
//!   writer also recorded where each field's name and value lie
//!   ([`hekate_model::message::WrittenField`]), so its `Fields[...]` tests parse no field
//!   either. A message that only passes through is never
//!   re-encoded: ProtobufEncoder writes the bytes it arrived in.
//! - **Placement** ([`plugin::Placement`]). A *per-shard* plugin has an instance on every shard,
//!   fed only by that shard's router. A *single* plugin has one instance on a home shard, fed by
//!   every shard. Either way the path is a **lane**: an rtrb SPSC ring of batches from one source
//!   shard to one instance — a full mesh, no MPSC queue, no lock. Emptied batches return on a
//!   second ring, so steady traffic allocates nothing.
//! - **Parking.** A runner whose lanes are empty registers its waker on a doorbell and sleeps in
//!   the executor; a producer rings after each batch it pushes (a fence and a load when nobody
//!   sleeps). An idle hekate only wakes for its once-a-second stats and signal checks: well
//!   under 1% of a core.
//! - **Back-pressure, not loss.** Lanes are bounded. When one is full the router keeps the batch
//!   and the inputs of that shard stop reading until the consumer makes room; TCP flow control
//!   then holds the sender. An output that cannot write (a slow peer, a reconnect) stops taking
//!   batches, which propagates the same way — for outputs whose `full_action` is `block` (the
//!   default without `use_buffering`). **Outputs never stall each other:** with
//!   `[X.buffering] full_action = "drop"` the router drops what the output's full lane cannot
//!   take (counted as the output's dropped messages, warned rate-limited), with `"shutdown"` it
//!   drops and asks the coordinator to stop hekate. A **buffered output** (`use_buffering`, the
//!   default for TcpOutput) is a single instance fed through a disk queue
//!   (`<base_dir>/output_queue/<name>/`, [`queue`]): its lanes drain into the queue whatever the
//!   upstream does, the output reads from the queue, and `full_action` applies when the queue
//!   reaches `max_buffer_size` (`runtime/buffered.rs`).
//! - **End-to-end acknowledgements** ([`plugin::Acknowledgements`]). Batches do not carry the
//!   inputs' cursors (a batch mixes the messages of every input of its shard, and a cursor list
//!   per batch would cost on every batch for the few inputs that replay). Instead each lane numbers
//!   its batches and its consumer publishes a watermark: the number of the last batch it has made
//!   durable (an output after a flush that left nothing buffered, a buffered output after its
//!   queue write, a filter after processing). An input that can replay takes a mark — per lane of
//!   its shard, the number of the last batch holding anything routed so far — after each read,
//!   keeps it with its cursor, and moves its checkpoint once every lane's watermark has passed the
//!   mark. Batches a `full_action = "drop"` output lost are followed by an empty batch so the
//!   watermark passes them; a removed route is not waited for. The hot path pays one counter per
//!   sealed batch and one atomic store per acknowledged batch.
//! - **Filters inject** messages back into their shard's router after each batch; an injected
//!   message carries its loop count (limited by `max_message_loops`), and a filter whose own
//!   matcher selects what it injects is refused (circular reference), as in Heka. A runner
//!   waits for room only in outputs' lanes, and only after it routed something: outputs never
//!   wait for a lane, so no cycle of runners waiting for each other's full lanes can form;
//!   what a full filter lane cannot take yet stays with the router, which the inputs of that
//!   shard then wait for ([`mesh::RouterShard::flush_runner`]).
//! - **Plugins that meet by name** ([`plugin::Rendezvous`], through
//!   [`plugin::BuildContext::provide`] and [`plugin::BuildContext::join`]). An aggregator that
//!   must see what every shard counts (Heka's StatAccumInput, fed by StatsdInputs and
//!   StatFilters on every shard) provides an object under its section name; the sections that
//!   feed it join it by the name their config gives, in any config order, and a name nobody
//!   provides is a config error. The rule for what is shared is **one slot per writer
//!   instance**: each instance on each shard accumulates into its own slot, behind a lock that
//!   only the owner's periodic tick also takes, once per interval, to swap the slot for an empty
//!   one and merge everything once on its home core. So no message per item crosses the ring
//!   mesh, and the hot path takes one uncontended lock per datagram, not per item.
//! - **The coordinator** runs on the thread that started the pipeline, pinned to
//!   `coordinator_core`. It is never on the message path: it takes signals (SIGINT/SIGTERM
//!   shutdown, SIGUSR1 text report, SIGUSR2 sandbox abort — the sandbox owns the abort, the
//!   binary hands it to [`runtime::Coordinator::on_sandbox_abort`]), merges the counters each
//!   shard pushes every second ([`stats::ShardSnapshot`]), injects `heka.all-report` every
//!   `report_interval`, and shuts down in order: stop inputs (pending reads return end-of-stream, what was read is routed),
//!   wait until every lane is drained, stop filters, drain again, stop outputs (they flush).
//! - **Filters come and go while traffic flows.** The coordinator talks to each shard's control
//!   task over a command ring. To load a filter ([`plugin::PipelineControl`], used by Heka's
//!   SandboxManagerFilter) it creates the lanes, has the home shard build the instance (a Lua
//!   sandbox is `!Send`: it is created where it runs), then adds the route to every router
//!   shard. To take one out — unloaded, or a sandbox that terminated ([`plugin::Termination`])
//!   — every router shard drops the route first; then the instance finishes (or, terminated,
//!   counts as dropped) what its lanes still hold and its lanes are released.
//! - **The metrics endpoint** ([`telemetry`]), when `[hekate] http_address` is set: `/metrics`
//!   in Prometheus text format (per plugin and core: counts, queue depth, ring fill, matcher
//!   and process time histograms, sandbox memory) and `/health` (503 naming each output that
//!   does not deliver). Hyper serves it on a tokio thread of its own, pinned to the coordinator's
//!   core; it renders what the coordinator publishes each time the shards' snapshots arrive
//!   (`runtime/coordinator/telemetry.rs`), so it adds nothing to the message path but one
//!   timestamp per output flush. Other pages — the dashboard — hook in with
//!   [`telemetry::Telemetry::add_page`].
//! - **Foreign runtimes** ([`plugin::bridge`]). A plugin that needs a well-kept crate running on
//!   tokio (HttpListenInput and HttpInput on hyper; database and broker clients next) starts a
//!   [`plugin::bridge::ForeignRuntime`]: a current-thread tokio runtime on a thread of its own,
//!   pinned to the plugin's core. Work crosses to and from the shard over
//!   [`plugin::bridge::channel`]s — bounded rtrb SPSC rings whose ends park on doorbells — so the
//!   shard never blocks on tokio, and a full ring makes the tokio side wait (or give up after a
//!   bound it chooses) instead of buffering without end.
//!
//! # Rooms
//!
//! Five modules, each depending only on the ones below it (no module cycle; checked with
//! `cargo modules dependencies`):
//!
//! ```text
//!  runtime   the binary's door: Pipeline::build, start, the Coordinator (placement, start,
//!            reports, dynamic filters, shutdown), shards, runners, core layout, signals
//!  telemetry the metrics endpoint: the samples the coordinator publishes, Prometheus text,
//!            health, the HTTP server (on plugin's foreign-runtime bridge), and the pages
//!            plugins add (DashboardOutput, which finds the board with Telemetry::of)
//!  plugin    the plugins' door: the plugin traits and registry, InputContext and RecordStream,
//!            PipelineControl, the rate-limited log; plugins import nothing else of the engine
//!  mesh      router shards, lanes (SPSC rings of batches), doorbells
//!  stats     counters, snapshots, reports
//! ```
//!
//! Log lines go through `tracing` (levels; the binary installs the subscriber); repeated
//! warnings go through [`plugin::log::warn_limited`].
//!
//! # Where to start reading
//!
//! [`plugin`] (the traits a plugin implements), [`runtime::start`] and
//! [`runtime::Coordinator::run`] (start and coordination), `mesh/router.rs` (the hot path),
//! `runtime/runner.rs` (how filters and outputs are driven), `runtime/coordinator/` (the
//! control plane, one room per duty).

pub mod mesh;
pub mod plugin;
pub mod queue;
pub mod runtime;
pub mod stats;
pub mod telemetry;

//! One worker shard: a thread pinned to its core running a glommio `LocalExecutor` with the
//! shard's router, its filter and output instances, its inputs and a control task.

use std::rc::Rc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::{CpuSet, LocalExecutorBuilder, Placement, PoolPlacement};

use super::buffered::run_buffered_output;
use super::runner::{Inbound, Lifecycle, RunnerCtx, run_filter, run_output};
use crate::mesh::{Doorbell, LaneRx, LocalEvent, Route, RouterShard};
use crate::plugin::{
    Connections, DecoderCache, DecoderPlugin, FieldCollector, FilterPlugin, InputContext,
    InputPlugin, OutputPlugin, PluginContext, ShardEvent,
};
use crate::queue::{DiskQueue, QueueError, QueueOptions, queue_dir};
use crate::stats::{ShardSnapshot, ShardStats, add};
use hekate_config::{BufferingOptions, FullAction};
use hekate_model::matcher::MatcherSpec;

/// How often a shard sends its counters to the coordinator.
pub(crate) const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

/// The pipeline's phase, advanced by the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    Running = 0,
    StopInputs = 1,
    StopFilters = 2,
    StopOutputs = 3,
}

/// State every shard and the coordinator share.
#[derive(Debug)]
pub(crate) struct Control {
    phase: AtomicU8,
    /// Rung on every phase change and every coordinator injection.
    pub(crate) bell: Doorbell,
    pub(crate) inputs_live: Arc<AtomicUsize>,
    pub(crate) filters_live: Arc<AtomicUsize>,
    pub(crate) outputs_live: Arc<AtomicUsize>,
    /// Raised by the coordinator when it wants fresh snapshots (SIGUSR1, reports).
    pub(crate) snapshot_epoch: AtomicU64,
}

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Running as u8),
            bell: Doorbell::new(),
            inputs_live: Arc::new(AtomicUsize::new(0)),
            filters_live: Arc::new(AtomicUsize::new(0)),
            outputs_live: Arc::new(AtomicUsize::new(0)),
            snapshot_epoch: AtomicU64::new(0),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::StopInputs,
            2 => Phase::StopFilters,
            _ => Phase::StopOutputs,
        }
    }

    pub(crate) fn advance(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        self.bell.ring();
    }
}

/// How long the connections of an input a reload stops are still read before their reads end
/// (the listener passed to its successor at once).
const RELOAD_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Settings every shard needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) shards: usize,
    pub(crate) plugin_count: usize,
    pub(crate) hostname: String,
    pub(crate) max_message_size: u32,
    pub(crate) max_loops: u32,
    pub(crate) sample_every: u32,
    pub(crate) batch_size: usize,
    pub(crate) io_memory: usize,
    /// `base_dir`: buffered outputs keep their queues under it.
    pub(crate) base_dir: std::path::PathBuf,
}

/// A filter or output instance to create on a shard.
#[derive(Clone)]
pub(crate) enum InstanceKind {
    Filter(Arc<dyn FilterPlugin>),
    Output(Arc<dyn OutputPlugin>),
}

pub(crate) struct InstancePlan {
    pub(crate) plugin: usize,
    pub(crate) name: String,
    pub(crate) kind: InstanceKind,
    pub(crate) lanes: Vec<LaneRx>,
    pub(crate) bell: Arc<Doorbell>,
    pub(crate) held: Arc<AtomicU64>,
    pub(crate) matcher: MatcherSpec,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// An output with `use_buffering`: its disk queue's options.
    pub(crate) buffering: Option<BufferingOptions>,
    /// A reload's successor: the plugin it replaces, run instead when the new one cannot
    /// start (its lanes hold what was routed to it meanwhile); the flag says it was.
    pub(crate) fallback: Option<(InstanceKind, Arc<std::sync::atomic::AtomicBool>)>,
}

pub(crate) struct InputPlan {
    pub(crate) plugin: usize,
    pub(crate) name: String,
    pub(crate) input: Arc<dyn InputPlugin>,
}

/// What the coordinator asks of a running shard, applied by its control task between batches.
pub(crate) enum ShardCommand {
    /// Zero the counters of a plugin slot about to be reused.
    ResetCounters(usize),
    /// Build and start a filter instance here; the outcome goes back on `ack`.
    StartFilter {
        plan: InstancePlan,
        ack: mpsc::Sender<Result<(), String>>,
    },
    /// Route to a new destination.
    AddRoute(Route),
    /// Stop routing to `plugin`; `done` is incremented once it is so.
    RemoveRoutes {
        plugin: usize,
        done: Arc<AtomicUsize>,
    },
    /// Stop routing to `plugin` without loss (a reload): what the router holds for it still
    /// goes into its lanes; `done` is incremented once it has. `then` (its successor, a changed
    /// plugin) takes over in the same step.
    CloseRoutes {
        plugin: usize,
        done: Arc<AtomicUsize>,
        then: Option<Route>,
    },
    /// Start an input here (a reload); the outcome goes back on `ack`.
    StartInput {
        plan: InputPlan,
        ack: mpsc::Sender<Result<(), String>>,
    },
    /// Stop input `plugin` here (a reload): it stops accepting (its listener passes to a
    /// successor on the same address), its connections are half-closed [`RELOAD_GRACE`] later
    /// and end once they routed what they read; `done` is incremented then.
    StopInput {
        plugin: usize,
        done: Arc<AtomicUsize>,
    },
    /// A reload started its inputs: listeners stopped inputs left here for a successor and no
    /// successor took are closed.
    ReleaseHandovers,
}

impl std::fmt::Debug for ShardCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardCommand::ResetCounters(p) => write!(f, "ResetCounters({p})"),
            ShardCommand::StartFilter { plan, .. } => write!(f, "StartFilter({})", plan.name),
            ShardCommand::AddRoute(r) => write!(f, "AddRoute({})", r.plugin),
            ShardCommand::RemoveRoutes { plugin, .. } => write!(f, "RemoveRoutes({plugin})"),
            ShardCommand::CloseRoutes { plugin, then, .. } => match then {
                Some(r) => write!(f, "CloseRoutes({plugin} -> {})", r.plugin),
                None => write!(f, "CloseRoutes({plugin})"),
            },
            ShardCommand::StartInput { plan, .. } => write!(f, "StartInput({})", plan.name),
            ShardCommand::StopInput { plugin, .. } => write!(f, "StopInput({plugin})"),
            ShardCommand::ReleaseHandovers => write!(f, "ReleaseHandovers"),
        }
    }
}

/// Everything one shard starts with.
pub(crate) struct ShardPlan {
    pub(crate) shard: usize,
    pub(crate) core: usize,
    pub(crate) settings: Settings,
    pub(crate) control: Arc<Control>,
    pub(crate) routes: Vec<Route>,
    pub(crate) space: Arc<Doorbell>,
    pub(crate) pending: Arc<AtomicU64>,
    pub(crate) instances: Vec<InstancePlan>,
    pub(crate) inputs: Vec<InputPlan>,
    pub(crate) snapshots: rtrb::Producer<ShardSnapshot>,
    pub(crate) injections: Option<rtrb::Consumer<Vec<u8>>>,
    pub(crate) commands: rtrb::Consumer<ShardCommand>,
    pub(crate) events: mpsc::Sender<ShardEvent>,
    /// Every decoder plugin with its plugin number (for their report fields).
    pub(crate) decoders: Vec<(Arc<dyn DecoderPlugin>, usize)>,
}

/// Starts the shard's thread; it reports on `ready` once its inputs listen (or why it failed).
pub(crate) fn spawn(
    plan: ShardPlan,
    ready: mpsc::Sender<Result<(), Vec<String>>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = format!("hekate-shard{}", plan.shard);
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            // Blocking calls (a FileOutput's write) run on threads of the shard's core, one per
            // plugin instance at most, so that one stalled call never queues another's.
            // A few more for outputs a reload starts.
            let threads = (plan.instances.len() + 4).min(64);
            let pool = match CpuSet::online() {
                Ok(cpus) => {
                    let core = plan.core;
                    PoolPlacement::Fenced(threads, cpus.filter(|l| l.cpu == core))
                }
                Err(_) => PoolPlacement::Unbound(threads),
            };
            let ex = LocalExecutorBuilder::new(Placement::Fixed(plan.core))
                .io_memory(plan.settings.io_memory)
                .blocking_thread_pool_placement(pool)
                .name(&name)
                .make();
            match ex {
                Ok(ex) => ex.run(shard_main(plan, ready)),
                Err(e) => {
                    let _ = ready.send(Err(vec![format!(
                        "cannot start the executor of shard {} on core {}: {e}",
                        plan.shard, plan.core
                    )]));
                }
            }
        })
}

/// What creating a filter or output instance on this shard needs.
struct ShardEnv {
    shard: usize,
    core: usize,
    settings: Settings,
    control: Arc<Control>,
    stats: Rc<ShardStats>,
    router: Rc<RouterShard>,
    stop_filters: LocalEvent,
    stop_outputs: LocalEvent,
    events: mpsc::Sender<ShardEvent>,
}

impl ShardEnv {
    /// Opens the disk queue of buffered output `name` (`<base_dir>/output_queue/<name>/`) and
    /// logs what it recovered.
    fn open_queue(&self, name: &str, b: &BufferingOptions) -> Result<DiskQueue, QueueError> {
        let options = QueueOptions {
            max_file_size: b.max_file_size,
            max_buffer_size: b.max_buffer_size.unwrap_or(0),
            cursor_update_count: u32::try_from(b.cursor_update_count).unwrap_or(u32::MAX),
            checkpoint_interval: super::buffered::CHECKPOINT_INTERVAL,
            max_message_size: self.settings.max_message_size,
            ..QueueOptions::default()
        };
        let mut queue = DiskQueue::open(queue_dir(&self.settings.base_dir, name), options)?;
        for w in queue.take_warnings() {
            tracing::warn!("Output '{name}': {w}");
        }
        let backlog = queue.pending_records();
        if backlog > 0 {
            tracing::info!(
                "Output '{name}': {backlog} messages queued in {} from an earlier run are delivered first",
                queue.dir().display()
            );
        }
        Ok(queue)
    }

    /// Creates the instance and spawns its runner.
    fn start(&self, inst: InstancePlan) -> Result<glommio::task::JoinHandle<()>, String> {
        let pctx = PluginContext {
            name: inst.name.clone(),
            shard: self.shard,
            core: self.core,
            shards: self.settings.shards,
            hostname: self.settings.hostname.clone(),
            max_message_size: self.settings.max_message_size,
        };
        let (live, stop) = match inst.kind {
            InstanceKind::Filter(_) => (&self.control.filters_live, &self.stop_filters),
            InstanceKind::Output(_) => (&self.control.outputs_live, &self.stop_outputs),
        };
        let rctx = RunnerCtx {
            name: Rc::from(inst.name.as_str()),
            plugin: inst.plugin,
            stats: Rc::clone(&self.stats),
            sample_every: self.settings.sample_every,
            router: Rc::clone(&self.router),
            stop: stop.clone(),
            held: inst.held,
            live: Arc::clone(live),
            max_loops: self.settings.max_loops,
            matcher: inst.matcher,
            lifecycle: Arc::clone(&inst.lifecycle),
            events: self.events.clone(),
        };
        let inbound = Inbound::new(inst.lanes, inst.bell, Arc::clone(&inst.lifecycle));
        enum Made {
            Filter(Box<dyn crate::plugin::Filter>),
            Output(Box<dyn crate::plugin::Output>),
        }
        let make = |kind: &InstanceKind| match kind {
            InstanceKind::Filter(p) => p.new_filter(&pctx).map(Made::Filter),
            InstanceKind::Output(p) => p.new_output(&pctx).map(Made::Output),
        };
        let what = match inst.kind {
            InstanceKind::Filter(_) => "filter",
            InstanceKind::Output(_) => "output",
        };
        let made = match (make(&inst.kind), &inst.fallback) {
            (Err(e), Some((previous, used))) => {
                tracing::error!(
                    "Reload: {what} '{}' cannot start with its new configuration: {e}; it runs its previous one (with the new message_matcher) until a reload that starts",
                    inst.name
                );
                used.store(true, Ordering::Release);
                make(previous)
            }
            (made, _) => made,
        };
        let made = match made {
            Ok(m) => m,
            Err(e) => {
                inst.lifecycle.finished.store(true, Ordering::Release);
                return Err(format!("{what} '{}' cannot start: {e}", inst.name));
            }
        };
        match made {
            Made::Filter(f) => {
                live.fetch_add(1, Ordering::AcqRel);
                Ok(glommio::spawn_local(run_filter(f, inbound, rctx)).detach())
            }
            Made::Output(o) => match inst.buffering {
                None => {
                    live.fetch_add(1, Ordering::AcqRel);
                    Ok(glommio::spawn_local(run_output(o, inbound, rctx)).detach())
                }
                Some(b) => {
                    let queue = match self.open_queue(&inst.name, &b) {
                        Ok(q) => q,
                        Err(e) => {
                            inst.lifecycle.finished.store(true, Ordering::Release);
                            return Err(format!("output '{}' cannot start: {e}", inst.name));
                        }
                    };
                    live.fetch_add(1, Ordering::AcqRel);
                    let run = run_buffered_output(o, inbound, rctx, queue, b.full_action);
                    Ok(glommio::spawn_local(run).detach())
                }
            },
        }
    }
}

/// An input running on this shard, with its own stop event and connections, so that a reload
/// can stop it alone.
struct RunningInput {
    plugin: usize,
    stop: LocalEvent,
    conns: Rc<Connections>,
    task: glommio::task::JoinHandle<()>,
}

/// What starting an input on this shard needs.
struct InputsEnv {
    shard: usize,
    core: usize,
    settings: Settings,
    hostname: Rc<str>,
    router: Rc<RouterShard>,
    stats: Rc<ShardStats>,
    decoders: Rc<DecoderCache>,
    events: mpsc::Sender<ShardEvent>,
    control: Arc<Control>,
}

impl InputsEnv {
    /// Starts `input` (it binds now) and spawns its task.
    fn start(&self, input: InputPlan) -> Result<RunningInput, String> {
        let stop = LocalEvent::new();
        let conns = Rc::new(Connections::default());
        let ctx = InputContext {
            name: Rc::from(input.name.as_str()),
            shard: self.shard,
            core: self.core,
            shards: self.settings.shards,
            hostname: Rc::clone(&self.hostname),
            max_message_size: self.settings.max_message_size,
            plugin: input.plugin,
            router: Rc::clone(&self.router),
            stats: Rc::clone(&self.stats),
            stop: stop.clone(),
            conns: Rc::clone(&conns),
            decoders: Rc::clone(&self.decoders),
            events: self.events.clone(),
        };
        let fut = input
            .input
            .start(ctx)
            .map_err(|e| format!("input '{}' cannot start: {e}", input.name))?;
        self.control.inputs_live.fetch_add(1, Ordering::AcqRel);
        let control = Arc::clone(&self.control);
        let name = input.name.clone();
        let core = self.core;
        let task = glommio::spawn_local(async move {
            if let Err(e) = fut.await {
                tracing::error!("Input '{name}' on core {core} stopped: {e}");
            }
            control.inputs_live.fetch_sub(1, Ordering::AcqRel);
        })
        .detach();
        Ok(RunningInput {
            plugin: input.plugin,
            stop,
            conns,
            task,
        })
    }
}

/// What the router of the shard on `core` does when an output that does not block overflows:
/// `drop` warns (rate-limited); `shutdown` says why and asks the coordinator to stop hekate.
fn overflow_hook(core: usize, events: mpsc::Sender<ShardEvent>) -> crate::mesh::OverflowHook {
    Box::new(move |name, action, n| match action {
        FullAction::Shutdown => {
            let reason = format!(
                "Output '{name}' on core {core} cannot keep up: its queue is full and its \
                 full_action is \"shutdown\" ({n} messages dropped)"
            );
            // The coordinator logs the reason as it shuts down.
            let _ = events.send(ShardEvent::Shutdown { reason });
        }
        _ => crate::plugin::log::warn_limited!(
            "Output '{name}' on core {core}: its queue is full (full_action = \"drop\"); {n} messages were dropped"
        ),
    })
}

async fn shard_main(plan: ShardPlan, ready: mpsc::Sender<Result<(), Vec<String>>>) {
    let ShardPlan {
        shard,
        core,
        settings,
        control,
        routes,
        space,
        pending,
        instances,
        inputs,
        mut snapshots,
        mut injections,
        mut commands,
        events,
        decoders: decoder_plugins,
    } = plan;
    let stats = Rc::new(ShardStats::new(shard, settings.plugin_count));
    let router = Rc::new(RouterShard::new(
        routes,
        space,
        Rc::clone(&stats),
        settings.sample_every,
        settings.batch_size,
        pending,
    ));
    router.set_overflow_hook(overflow_hook(core, events.clone()));
    let env = ShardEnv {
        shard,
        core,
        settings: settings.clone(),
        control: Arc::clone(&control),
        stats: Rc::clone(&stats),
        router: Rc::clone(&router),
        stop_filters: LocalEvent::new(),
        stop_outputs: LocalEvent::new(),
        events: events.clone(),
    };
    let mut errors = Vec::new();
    let mut runners = Vec::new();

    for inst in instances {
        match env.start(inst) {
            Ok(task) => runners.push(task),
            Err(e) => errors.push(e),
        }
    }

    let decoders = Rc::new(DecoderCache::default());
    let inputs_env = InputsEnv {
        shard,
        core,
        settings: settings.clone(),
        hostname: Rc::from(settings.hostname.as_str()),
        router: Rc::clone(&router),
        stats: Rc::clone(&stats),
        decoders: Rc::clone(&decoders),
        events: events.clone(),
        control: Arc::clone(&control),
    };
    let mut running_inputs: Vec<RunningInput> = Vec::new();
    for input in inputs {
        match inputs_env.start(input) {
            Ok(r) => running_inputs.push(r),
            Err(e) => errors.push(e),
        }
    }

    let _ = ready.send(if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    });

    // The control loop: follow the coordinator's phases and commands, route its injections,
    // send snapshots.
    let mut seen = Phase::Running;
    let mut last_snapshot = Instant::now();
    let mut epoch = control.snapshot_epoch.load(Ordering::Acquire);
    loop {
        let phase = control.phase();
        if phase >= Phase::StopInputs && seen < Phase::StopInputs {
            for i in &running_inputs {
                i.stop.set();
                i.conns.shutdown_reads();
            }
        }
        if phase >= Phase::StopFilters && seen < Phase::StopFilters {
            env.stop_filters.set();
        }
        if phase >= Phase::StopOutputs && seen < Phase::StopOutputs {
            env.stop_outputs.set();
        }
        seen = phase;
        while let Ok(cmd) = commands.pop() {
            match cmd {
                ShardCommand::ResetCounters(p) => stats.plugins[p].reset(),
                ShardCommand::StartFilter { plan, ack } => {
                    let result = env.start(plan).map(|task| runners.push(task));
                    let _ = ack.send(result);
                }
                ShardCommand::AddRoute(route) => router.add_route(route),
                ShardCommand::RemoveRoutes { plugin, done } => {
                    let lost = router.remove_routes(plugin);
                    add(&stats.plugins[plugin].dropped, lost);
                    done.fetch_add(1, Ordering::AcqRel);
                }
                ShardCommand::CloseRoutes { plugin, done, then } => {
                    if router.close_routes(plugin, done, then) {
                        // Batches wait for room in its lanes: push them even if no input
                        // routes anything (every flush of this shard pushes them too).
                        let router = Rc::clone(&router);
                        glommio::spawn_local(async move { router.flush(false).await }).detach();
                    }
                }
                ShardCommand::StartInput { plan, ack } => {
                    // Later phases never start anything.
                    let result = if seen >= Phase::StopInputs {
                        Err(format!("input '{}' not started: shutting down", plan.name))
                    } else {
                        inputs_env.start(plan).map(|r| running_inputs.push(r))
                    };
                    let _ = ack.send(result);
                }
                ShardCommand::ReleaseHandovers => crate::plugin::handover::release_local(),
                ShardCommand::StopInput { plugin, done } => {
                    let (stopping, keep): (Vec<_>, Vec<_>) =
                        running_inputs.drain(..).partition(|i| i.plugin == plugin);
                    running_inputs = keep;
                    for i in &stopping {
                        i.stop.set();
                    }
                    glommio::spawn_local(async move {
                        // A connection accepted just now may not have sent yet: its first
                        // bytes are read before its reads end.
                        glommio::timer::sleep(RELOAD_GRACE).await;
                        for i in &stopping {
                            i.conns.shutdown_reads();
                        }
                        for i in stopping {
                            i.task.await;
                        }
                        done.fetch_add(1, Ordering::AcqRel);
                    })
                    .detach();
                }
            }
        }
        if let Some(rx) = injections.as_mut() {
            while let Ok(bytes) = rx.pop() {
                if router.route_bytes(&bytes, None, 0).is_err() {
                    tracing::error!("the coordinator injected a malformed message");
                }
            }
        }
        // Never wait here: this task must keep following the phases even when the lanes are
        // full. What does not fit now goes with the next flush of any task of this shard.
        router.flush_now(true);
        let wanted = control.snapshot_epoch.load(Ordering::Acquire);
        if last_snapshot.elapsed() >= SNAPSHOT_INTERVAL || wanted != epoch {
            epoch = wanted;
            decoders.report(&decoder_plugins, &stats);
            let mut snap = stats.snapshot();
            snap.epoch = epoch;
            let _ = snapshots.push(snap);
            last_snapshot = Instant::now();
        }
        if seen == Phase::StopOutputs {
            break;
        }
        let changed = control.bell.wait(|| {
            control.phase() != seen
                || control.snapshot_epoch.load(Ordering::Acquire) != epoch
                || injections.as_ref().is_some_and(|rx| !rx.is_empty())
                || !commands.is_empty()
        });
        let tick = glommio::timer::sleep(SNAPSHOT_INTERVAL.saturating_sub(last_snapshot.elapsed()));
        future::or(changed, tick).await;
    }
    // Runners started by a command may still be added while inputs finish: take them all.
    for i in running_inputs {
        i.task.await;
    }
    for t in runners {
        t.await;
    }
    decoders.report(&decoder_plugins, &stats);
    let mut snap = stats.snapshot();
    snap.epoch = control.snapshot_epoch.load(Ordering::Acquire);
    let _ = snapshots.push(snap);
    // Decoders keep state (a Lua sandbox preserving its data) until the shard ends.
    drop(decoders);
}

/// Collects the report fields of every decoder instance of a shard.
impl DecoderCache {
    fn report(&self, plugins: &[(Arc<dyn DecoderPlugin>, usize)], stats: &ShardStats) {
        for (plugin, p) in plugins {
            let mut sink = FieldCollector::default();
            if self.report_of(plugin, &mut sink) {
                stats.plugins[*p].set_extra(sink.fields);
            }
        }
    }
}

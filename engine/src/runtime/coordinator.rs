//! Starting the shards and the coordinator: signals, stats snapshots, reports and shutdown.
//!
//! The coordinator runs on the thread that called [`Running::run`], pinned to the coordinator
//! core. It never touches a message: it waits for signals with a timeout, merges the snapshots the
//! shards push every second, injects a `heka.all-report` message every `report_interval`, and
//! drives shutdown through its phases (inputs, then filters, then outputs), checking between
//! phases that every lane has drained.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use hekate_config::Category;

use super::PipelineControl;
use super::doorbell::Doorbell;
use super::dynamic::{ControlRequest, DynamicFilter};
use super::layout::{Layout, allowed_cores, format_cores, memlock_limit, resolve};
use super::report::{Report, ReportEntry, ReportField};
use super::ring::{LaneCounters, lane};
use super::router::Route;
use super::shard::{
    Control, InputPlan, InstanceKind, InstancePlan, Lifecycle, Phase, Settings, ShardCommand,
    ShardEvent, ShardPlan, spawn,
};
use super::signals::{self, Signal};
use super::stats::{PluginSnapshot, ShardSnapshot};
use super::{Pipeline, PluginInfo, StartError};
use crate::hlog;
use crate::plugin::{Built, InputPlacement, Placement};
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{Field, Message};
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};

/// How long shutdown may take before hekate exits anyway, saying what was left.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the coordinator waits for a shard to take a command or start a filter.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A filter or output as the coordinator sees it: its lanes and what its instances hold.
#[derive(Debug)]
struct ConsumerInfo {
    plugin: usize,
    /// (source shard, home shard, counters) per lane.
    lanes: Vec<(usize, usize, Arc<LaneCounters>)>,
    /// (home shard, messages held) per instance.
    held: Vec<(usize, Arc<AtomicU64>)>,
    /// (doorbell, lifecycle) per instance.
    instances: Vec<(Arc<Doorbell>, Arc<Lifecycle>)>,
}

/// A filter or output being taken out of the running pipeline (unloaded or terminated).
#[derive(Debug)]
struct Retirement {
    plugin: usize,
    /// Router shards that dropped its routes.
    removed: Arc<AtomicUsize>,
    /// Its instances were told to finish.
    released: bool,
}

/// A consumer planned: its lanes' producing ends go into router shards, its instances onto
/// their home shards.
struct ConsumerPlan {
    info: ConsumerInfo,
    /// (home shard, instance).
    instances: Vec<(usize, InstancePlan)>,
    /// (source shard, route).
    routes: Vec<(usize, Route)>,
}

/// What planning a consumer needs to know of the ring mesh.
struct Mesh<'a> {
    shards: usize,
    ring_capacity: usize,
    spaces: &'a [Arc<Doorbell>],
}

impl Mesh<'_> {
    /// Lanes, routes and instances for filter or output `plugin`, its instances on `homes`.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        plugin: usize,
        name: &str,
        kind: &Built,
        matcher: &MatcherSpec,
        signer: &Option<String>,
        placement: Placement,
        homes: Vec<usize>,
    ) -> ConsumerPlan {
        let mut plan = ConsumerPlan {
            info: ConsumerInfo {
                plugin,
                lanes: Vec::new(),
                held: Vec::new(),
                instances: Vec::new(),
            },
            instances: Vec::new(),
            routes: Vec::new(),
        };
        for home in homes {
            let bell = Arc::new(Doorbell::new());
            let sources: Vec<usize> = match placement {
                Placement::PerShard => vec![home],
                Placement::Single => (0..self.shards).collect(),
            };
            let mut lanes = Vec::new();
            for s in sources {
                let (tx, rx) = lane(
                    self.ring_capacity,
                    Arc::clone(&bell),
                    Arc::clone(&self.spaces[s]),
                );
                plan.info.lanes.push((s, home, Arc::clone(tx.counters())));
                let route = Route::new(plugin, matcher.clone(), signer.clone(), tx);
                let route = match kind {
                    Built::Output(_) => route.feeding_output(),
                    _ => route,
                };
                plan.routes.push((s, route));
                lanes.push(rx);
            }
            let held = Arc::new(AtomicU64::new(0));
            plan.info.held.push((home, Arc::clone(&held)));
            let lifecycle = Arc::new(Lifecycle::default());
            plan.info
                .instances
                .push((Arc::clone(&bell), Arc::clone(&lifecycle)));
            let kind = match kind {
                Built::Filter(f) => InstanceKind::Filter(Arc::clone(f)),
                Built::Output(o) => InstanceKind::Output(Arc::clone(o)),
                _ => unreachable!("only filters and outputs have routes"),
            };
            plan.instances.push((
                home,
                InstancePlan {
                    plugin,
                    name: name.to_string(),
                    kind,
                    lanes,
                    bell,
                    held,
                    matcher: matcher.clone(),
                    lifecycle,
                },
            ));
        }
        plan
    }
}

/// Asks a running pipeline to shut down, as SIGTERM does (for embedding and tests).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Requests shutdown.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// One sentence per plugin that could not deliver everything before the shutdown timeout:
    /// how many messages were left and where. Empty after a clean shutdown.
    pub undelivered: Vec<String>,
}

/// A started pipeline; [`Running::run`] coordinates it until shutdown.
#[derive(Debug)]
pub struct Running {
    control: Arc<Control>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Every plugin slot: the configured plugins, then slots for filters loaded at run time
    /// (`None` while free).
    plugins: Vec<Option<PluginInfo>>,
    /// The first slot for run-time filters.
    first_dynamic: usize,
    consumers: Vec<ConsumerInfo>,
    commands: Vec<rtrb::Producer<ShardCommand>>,
    events: mpsc::Receiver<ShardEvent>,
    requests: PipelineControl,
    retiring: Vec<Retirement>,
    spaces: Vec<Arc<Doorbell>>,
    ring_capacity: usize,
    next_home: usize,
    snapshots: Vec<rtrb::Consumer<ShardSnapshot>>,
    latest: Vec<Option<ShardSnapshot>>,
    injections: rtrb::Producer<Vec<u8>>,
    pending: Vec<Arc<AtomicU64>>,
    layout: Layout,
    report_interval: Duration,
    hostname: String,
    lane_messages: u64,
    stop: Arc<AtomicBool>,
    shutdown_timeout: Duration,
    /// A second SIGINT/SIGTERM during shutdown: stop waiting.
    forced: std::cell::Cell<bool>,
}

fn prepare_base_dir(dir: &Path) -> Result<(), StartError> {
    let hint = "set `base_dir` in the [hekate] section to a directory hekate may write";
    std::fs::create_dir_all(dir).map_err(|e| {
        StartError::BaseDir(format!(
            "base_dir {} cannot be created: {e}; {hint}",
            dir.display()
        ))
    })?;
    let probe = dir.join(format!(".hekate-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        StartError::BaseDir(format!(
            "base_dir {} is not writable: {e}; {hint}",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Starts the pipeline: resolves the core layout, creates `base_dir`, builds the ring mesh and
/// starts one pinned executor per worker core. Returns once every input listens, or the first
/// reason it could not.
///
/// Blocks hekate's signals in the calling thread (and so in every thread started from now on):
/// call it from the main thread before starting other threads.
pub fn start(pipeline: Pipeline) -> Result<Running, StartError> {
    signals::block();
    let global = &pipeline.global;
    let layout = resolve(global, &allowed_cores(), memlock_limit())?;
    prepare_base_dir(&global.base_dir)?;
    super::claim::claim_listen_addresses(&pipeline)?;
    let shards = layout.workers.len();
    let spare: usize = pipeline
        .plugins
        .iter()
        .map(|p| match &p.built {
            Built::Filter(f) => f.dynamic_filters(),
            _ => 0,
        })
        .sum();
    let settings = Settings {
        shards,
        plugin_count: pipeline.plugins.len() + spare,
        hostname: global.hostname.clone(),
        max_message_size: global.max_message_size,
        max_loops: global.max_message_loops,
        sample_every: global.sample_denominator.max(1),
        batch_size: global.batch_size.max(1),
        io_memory: layout.io_memory as usize,
    };
    let ring_capacity = global.ring_capacity.max(1);
    let control = Arc::new(Control::new());
    let spaces: Vec<Arc<Doorbell>> = (0..shards).map(|_| Arc::new(Doorbell::new())).collect();
    let mut routes: Vec<Vec<Route>> = (0..shards).map(|_| Vec::new()).collect();
    let mut instances: Vec<Vec<InstancePlan>> = (0..shards).map(|_| Vec::new()).collect();
    let mut inputs: Vec<Vec<InputPlan>> = (0..shards).map(|_| Vec::new()).collect();
    let mut consumers = Vec::new();
    let mut next_home = 0usize;

    for (p, info) in pipeline.plugins.iter().enumerate() {
        if let Built::Input(input) = &info.built {
            let on: Vec<usize> = match input.placement() {
                InputPlacement::EveryShard => (0..shards).collect(),
                InputPlacement::OneShard => {
                    next_home += 1;
                    vec![(next_home - 1) % shards]
                }
            };
            for s in on {
                inputs[s].push(InputPlan {
                    plugin: p,
                    name: info.name.clone(),
                    input: Arc::clone(input),
                });
            }
            continue;
        }
        let Some((matcher, signer)) = &info.route else {
            continue;
        };
        let placement = pipeline.placement(p).unwrap_or(Placement::PerShard);
        let homes: Vec<usize> = match placement {
            Placement::PerShard => (0..shards).collect(),
            Placement::Single => {
                next_home += 1;
                vec![(next_home - 1) % shards]
            }
        };
        let mesh = Mesh {
            shards,
            ring_capacity,
            spaces: &spaces,
        };
        let plan = mesh.plan(
            p,
            &info.name,
            &info.built,
            matcher,
            signer,
            placement,
            homes,
        );
        for (s, route) in plan.routes {
            routes[s].push(route);
        }
        for (home, inst) in plan.instances {
            instances[home].push(inst);
        }
        consumers.push(plan.info);
    }
    let decoders: Vec<_> = pipeline
        .plugins
        .iter()
        .enumerate()
        .filter_map(|(p, info)| match &info.built {
            Built::Decoder(d) => Some((Arc::clone(d), p)),
            _ => None,
        })
        .collect();

    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::new();
    let mut snapshots = Vec::new();
    let mut pending = Vec::new();
    let (inject_tx, inject_rx) = rtrb::RingBuffer::new(16);
    let mut inject_rx = Some(inject_rx);
    let mut spawn_error = None;
    let (events_tx, events_rx) = mpsc::channel();
    let mut commands = Vec::new();
    for (shard, ((r, inst), inp)) in routes.into_iter().zip(instances).zip(inputs).enumerate() {
        let (snap_tx, snap_rx) = rtrb::RingBuffer::new(4);
        snapshots.push(snap_rx);
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(256);
        commands.push(cmd_tx);
        let published = Arc::new(AtomicU64::new(0));
        pending.push(Arc::clone(&published));
        let plan = ShardPlan {
            shard,
            core: layout.workers[shard],
            settings: settings.clone(),
            control: Arc::clone(&control),
            routes: r,
            space: Arc::clone(&spaces[shard]),
            pending: published,
            instances: inst,
            inputs: inp,
            snapshots: snap_tx,
            injections: if shard == 0 { inject_rx.take() } else { None },
            commands: cmd_rx,
            events: events_tx.clone(),
            decoders: decoders.clone(),
        };
        match spawn(plan, ready_tx.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                spawn_error = Some(format!("cannot start the thread of shard {shard}: {e}"));
                break;
            }
        }
    }
    drop(ready_tx);
    let mut errors: Vec<String> = spawn_error.into_iter().collect();
    for _ in 0..threads.len() {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(shard_errors)) => {
                // Per-shard plugins fail the same way on every shard: say it once.
                for e in shard_errors {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
            Err(_) => {
                errors.push("a shard did not start within 30 seconds".to_string());
                break;
            }
        }
    }
    let first_dynamic = pipeline.plugins.len();
    let mut plugins: Vec<Option<PluginInfo>> = pipeline.plugins.into_iter().map(Some).collect();
    plugins.resize_with(first_dynamic + spare, || None);
    let running = Running {
        control,
        threads,
        plugins,
        first_dynamic,
        consumers,
        commands,
        events: events_rx,
        requests: pipeline.control,
        retiring: Vec::new(),
        spaces,
        ring_capacity,
        next_home,
        latest: (0..shards).map(|_| None).collect(),
        snapshots,
        injections: inject_tx,
        pending,
        layout,
        report_interval: global.report_interval,
        hostname: global.hostname.clone(),
        lane_messages: (ring_capacity * settings.batch_size) as u64,
        stop: Arc::new(AtomicBool::new(false)),
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        forced: std::cell::Cell::new(false),
    };
    if !errors.is_empty() {
        running.control.advance(Phase::StopOutputs);
        let deadline = Instant::now() + Duration::from_secs(5);
        for t in &running.threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        return Err(StartError::Shard(errors.join("; ")));
    }
    let mut running = running;
    // Filters requested while the shards started (a sandbox manager loading the filters of an
    // earlier run) start now, before the first round of the coordinator.
    running.serve_requests();
    Ok(running)
}

impl Running {
    /// The resolved core layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A handle that requests shutdown from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// How long shutdown may take (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn set_shutdown_timeout(&mut self, timeout: Duration) {
        self.shutdown_timeout = timeout;
    }

    /// Coordinates until SIGINT, SIGTERM or [`StopHandle::stop`], then shuts down in order.
    pub fn run(mut self) -> RunOutcome {
        let _ = core_affinity::set_for_current(core_affinity::CoreId {
            id: self.layout.coordinator,
        });
        hlog!(
            "hekate started: {} worker shards on cores {}, coordinator on core {}",
            self.layout.workers.len(),
            format_cores(&self.layout.workers),
            self.layout.coordinator
        );
        let mut next_report = Instant::now() + self.report_interval;
        loop {
            let now = Instant::now();
            // Signals come at once; load and unload requests and terminations are looked at
            // every 50 ms (a syscall, nothing more, when there are none), and every 5 ms while
            // one is being carried out.
            let busy = !self.retiring.is_empty() || self.requests.has_requests();
            let wait = next_report
                .saturating_duration_since(now)
                .min(Duration::from_millis(if busy { 5 } else { 50 }));
            match signals::wait(wait) {
                Some(Signal::Shutdown) => break,
                Some(Signal::Report) => {
                    self.refresh();
                    let text = self.report().to_text();
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
                Some(Signal::Reload) => {
                    hlog!("SIGHUP received; hekate does not reload its config yet")
                }
                Some(Signal::AbortSandboxes) => {
                    hlog!("SIGUSR2 received: aborting every Lua sandbox");
                    super::signals::abort_sandboxes();
                }
                None => {}
            }
            self.serve_events();
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            self.serve_requests();
            self.advance_retirements();
            self.collect();
            if Instant::now() >= next_report {
                self.refresh();
                self.inject_report();
                next_report += self.report_interval;
                if next_report < Instant::now() {
                    next_report = Instant::now() + self.report_interval;
                }
            }
        }
        self.shutdown()
    }

    /// Asks every shard for a fresh snapshot and waits (briefly) for them.
    fn refresh(&mut self) {
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
    fn collect(&mut self) {
        for (i, rx) in self.snapshots.iter_mut().enumerate() {
            while let Ok(s) = rx.pop() {
                self.latest[i] = Some(s);
            }
        }
    }

    /// Every plugin's counters, summed over the shards' latest snapshots.
    fn merged(&self) -> (Vec<PluginSnapshot>, u64, u64) {
        let mut merged: Vec<PluginSnapshot> = (0..self.plugins.len())
            .map(|_| PluginSnapshot::default())
            .collect();
        let (mut routed, mut refused) = (0, 0);
        for snap in self.latest.iter().flatten() {
            for (m, s) in merged.iter_mut().zip(&snap.plugins) {
                m.merge(s);
            }
            routed += snap.routed;
            refused += snap.inject_refused;
        }
        (merged, routed, refused)
    }

    /// The current report (from the latest snapshots, at most a second old).
    pub fn report(&self) -> Report {
        let (merged, routed, refused) = self.merged();
        let mut report = Report::default();
        let pending: u64 = self.pending.iter().map(|p| p.load(Ordering::Acquire)).sum();
        report.categories[0].push(ReportEntry {
            name: "Router".into(),
            fields: vec![
                ReportField::count("ProcessMessageCount", routed),
                ReportField::count("InChanLength", pending),
                ReportField::count("InjectRefusedCount", refused),
            ],
        });
        for (p, info) in self.plugins.iter().enumerate() {
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
                    let consumer = self.consumers.iter().find(|c| c.plugin == p);
                    let (cap, len) = consumer.map_or((0, 0), |c| {
                        (
                            c.lanes.len() as u64 * self.lane_messages,
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

    /// Injects a `heka.all-report` message into the first shard's router.
    fn inject_report(&mut self) {
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
    fn inject(&mut self, bytes: Vec<u8>) {
        if self.injections.push(bytes).is_ok() {
            self.control.bell.ring();
        } else {
            hlog!("the coordinator's injection ring is full; a message was dropped");
        }
    }

    /// Sends a command to a shard, waiting (bounded) while its command ring is full.
    fn command(&mut self, shard: usize, mut cmd: ShardCommand) -> bool {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            match self.commands[shard].push(cmd) {
                Ok(()) => {
                    self.control.bell.ring();
                    return true;
                }
                Err(rtrb::PushError::Full(c)) => {
                    if Instant::now() >= deadline {
                        hlog!(
                            "the shard on core {} takes no commands; giving up",
                            self.layout.workers[shard]
                        );
                        return false;
                    }
                    cmd = c;
                    self.control.bell.ring();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Acts on what the shards reported: terminated plugins are taken out of routing; a plugin
    /// that may not exit stops the pipeline.
    fn serve_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                ShardEvent::Terminated {
                    plugin,
                    reason,
                    can_exit,
                } => {
                    let name = self.plugins[plugin]
                        .as_ref()
                        .map_or("?", |p| p.name.as_str())
                        .to_string();
                    if !can_exit {
                        hlog!(
                            "Plugin '{name}' terminated and may not exit (can_exit = false): shutting down. Reason: {reason}"
                        );
                        self.stop.store(true, Ordering::Release);
                    }
                    self.retire(plugin);
                }
                ShardEvent::Shutdown { reason } => {
                    hlog!("{reason}: shutting down");
                    self.stop.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Carries out the queued requests to load and unload filters.
    fn serve_requests(&mut self) {
        for request in self.requests.take_requests() {
            match request {
                ControlRequest::Load(filter) => self.load(filter),
                ControlRequest::Unload { name } => {
                    let found = (self.first_dynamic..self.plugins.len())
                        .find(|&p| self.plugins[p].as_ref().is_some_and(|i| i.name == name));
                    match found {
                        Some(p) => {
                            hlog!("Unloading filter '{name}'");
                            self.retire(p);
                        }
                        None => hlog!("Cannot unload filter '{name}': it is not running"),
                    }
                }
            }
        }
    }

    /// Starts a filter while traffic flows: lanes from every shard, the instance built on its
    /// home shard, then its route added to every router shard.
    fn load(&mut self, filter: DynamicFilter) {
        let Some(p) = (self.first_dynamic..self.plugins.len())
            .find(|&p| self.plugins[p].is_none() && !self.retiring.iter().any(|r| r.plugin == p))
        else {
            self.load_failed(&filter, "no free plugin slot is left".to_string());
            return;
        };
        let shards = self.layout.workers.len();
        let placement = filter.plugin.placement();
        let homes: Vec<usize> = match placement {
            Placement::PerShard => (0..shards).collect(),
            Placement::Single => {
                self.next_home += 1;
                vec![(self.next_home - 1) % shards]
            }
        };
        let built = Built::Filter(Arc::clone(&filter.plugin));
        let mesh = Mesh {
            shards,
            ring_capacity: self.ring_capacity,
            spaces: &self.spaces,
        };
        let plan = mesh.plan(
            p,
            &filter.name,
            &built,
            &filter.matcher,
            &filter.signer,
            placement,
            homes.clone(),
        );
        for s in 0..shards {
            self.command(s, ShardCommand::ResetCounters(p));
        }
        let mut acks = Vec::new();
        for (home, inst) in plan.instances {
            let (tx, rx) = mpsc::channel();
            if self.command(
                home,
                ShardCommand::StartFilter {
                    plan: inst,
                    ack: tx,
                },
            ) {
                acks.push(rx);
            }
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut error =
            (acks.len() < homes.len()).then(|| "a shard did not take the filter".to_string());
        for rx in acks {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error = error.or(Some(e)),
                Err(_) => {
                    error = error.or(Some("the filter did not start in time".to_string()));
                }
            }
        }
        if let Some(e) = error {
            // Instances that did start have no route: they end at once.
            for (bell, lifecycle) in &plan.info.instances {
                lifecycle.retire.store(true, Ordering::Release);
                bell.ring();
            }
            self.load_failed(&filter, e);
            return;
        }
        for (s, route) in plan.routes {
            self.command(s, ShardCommand::AddRoute(route));
        }
        let cores: Vec<usize> = homes.iter().map(|&h| self.layout.workers[h]).collect();
        hlog!(
            "Loaded filter '{}' ({}) on core {}",
            filter.name,
            filter.type_name,
            format_cores(&cores)
        );
        self.plugins[p] = Some(PluginInfo {
            name: filter.name,
            type_name: filter.type_name,
            category: Category::Filter,
            built,
            route: Some((filter.matcher, filter.signer)),
        });
        self.consumers.push(plan.info);
    }

    /// A filter could not start: say so, remove its files, and announce it as Heka's sandbox
    /// manager does, with a `heka.sandbox-terminated` message naming the plugin that asked.
    fn load_failed(&mut self, filter: &DynamicFilter, error: String) {
        hlog!("Cannot load filter '{}': {error}", filter.name);
        for f in &filter.files {
            let _ = std::fs::remove_file(f);
        }
        self.requests.forget(&filter.name);
        let mut m = Message::new_now();
        m.r#type = Some("heka.sandbox-terminated".into());
        m.logger = Some("hekad".into());
        m.hostname = Some(self.hostname.clone());
        m.payload = Some(format!("loading {} failed: {error}", filter.name));
        m.fields.push(Field::string("plugin", filter.owner.clone()));
        self.inject(m.to_bytes());
    }

    /// Takes a filter or output out of every router shard; its instances then finish.
    fn retire(&mut self, plugin: usize) {
        if self.retiring.iter().any(|r| r.plugin == plugin)
            || !self.consumers.iter().any(|c| c.plugin == plugin)
        {
            return;
        }
        let removed = Arc::new(AtomicUsize::new(0));
        for s in 0..self.layout.workers.len() {
            let done = Arc::clone(&removed);
            if !self.command(s, ShardCommand::RemoveRoutes { plugin, done }) {
                // The shard is gone or wedged; count it as done so the rest can proceed.
                removed.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.retiring.push(Retirement {
            plugin,
            removed,
            released: false,
        });
    }

    /// Moves retirements on: once no router shard routes to the plugin, its instances are told
    /// to finish; once they have, its lanes and (for a run-time filter) its slot are released.
    fn advance_retirements(&mut self) {
        let shards = self.layout.workers.len();
        let mut finished = Vec::new();
        for r in &mut self.retiring {
            let Some(c) = self.consumers.iter().find(|c| c.plugin == r.plugin) else {
                finished.push(r.plugin);
                continue;
            };
            if !r.released {
                if r.removed.load(Ordering::Acquire) < shards {
                    continue;
                }
                for (bell, lifecycle) in &c.instances {
                    lifecycle.retire.store(true, Ordering::Release);
                    bell.ring();
                }
                r.released = true;
            }
            if c.instances
                .iter()
                .all(|(_, l)| l.finished.load(Ordering::Acquire))
            {
                finished.push(r.plugin);
            }
        }
        for p in finished {
            self.retiring.retain(|r| r.plugin != p);
            self.consumers.retain(|c| c.plugin != p);
            if p >= self.first_dynamic
                && let Some(info) = self.plugins[p].take()
            {
                hlog!("Filter '{}' removed", info.name);
                self.requests.forget(&info.name);
            }
        }
    }

    /// Messages in lanes and routers, and the sum of all pushes (to notice movement).
    fn scan(&self) -> (u64, u64) {
        let mut in_flight: u64 = self.pending.iter().map(|p| p.load(Ordering::Acquire)).sum();
        let mut pushed = 0;
        for c in &self.consumers {
            for (_, _, l) in &c.lanes {
                in_flight += l.in_flight();
                pushed += l.pushed();
            }
        }
        (in_flight, pushed)
    }

    /// Waits until nothing is in flight, twice in a row with no push in between.
    fn wait_quiescent(&self, deadline: Instant) -> bool {
        loop {
            let (a, pa) = self.scan();
            if a == 0 {
                std::thread::sleep(Duration::from_millis(5));
                let (b, pb) = self.scan();
                if b == 0 && pa == pb {
                    return true;
                }
            }
            if !self.pause(deadline) {
                return false;
            }
        }
    }

    fn wait_zero(&self, counter: &AtomicUsize, deadline: Instant) -> bool {
        while counter.load(Ordering::Acquire) > 0 {
            if !self.pause(deadline) {
                return false;
            }
        }
        true
    }

    /// Waits a few milliseconds during shutdown; false once the deadline passed or a second
    /// SIGINT/SIGTERM asked to stop waiting.
    fn pause(&self, deadline: Instant) -> bool {
        if self.forced.get() || Instant::now() >= deadline {
            return false;
        }
        if signals::wait(Duration::from_millis(5)) == Some(Signal::Shutdown) {
            hlog!("Second shutdown signal: not waiting for the outputs any longer.");
            self.forced.set(true);
            return false;
        }
        true
    }

    /// Stops inputs, drains, stops filters, drains, stops outputs (which flush), and reports
    /// whatever could not be delivered before the shutdown timeout.
    fn shutdown(mut self) -> RunOutcome {
        hlog!("Shutdown initiated.");
        let deadline = Instant::now() + self.shutdown_timeout;
        self.control.advance(Phase::StopInputs);
        self.wait_zero(&self.control.inputs_live, deadline);
        self.wait_quiescent(deadline);
        self.control.advance(Phase::StopFilters);
        self.wait_zero(&self.control.filters_live, deadline);
        self.wait_quiescent(deadline);
        self.control.advance(Phase::StopOutputs);
        let clean = self.wait_zero(&self.control.outputs_live, deadline);
        let mut outcome = RunOutcome::default();
        if !clean || self.control.inputs_live.load(Ordering::Acquire) > 0 {
            outcome.undelivered = self.leftovers();
        }
        let join_by = Instant::now() + Duration::from_secs(1);
        for t in std::mem::take(&mut self.threads) {
            while !t.is_finished() && Instant::now() < join_by {
                std::thread::sleep(Duration::from_millis(2));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.collect();
        outcome
    }

    /// One sentence per plugin or shard that still holds messages.
    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.consumers {
            let Some(info) = &self.plugins[c.plugin] else {
                continue;
            };
            let queued: u64 = c.lanes.iter().map(|l| l.2.in_flight()).sum();
            let held: u64 = c.held.iter().map(|h| h.1.load(Ordering::Acquire)).sum();
            // `held` counts messages popped from a lane but not finished too; those are also
            // in `queued`, so report the larger as the total for outputs that buffer.
            let total = queued.max(held);
            if total == 0 {
                continue;
            }
            let mut cores: Vec<usize> = c
                .held
                .iter()
                .filter(|h| h.1.load(Ordering::Acquire) > 0)
                .map(|h| self.layout.workers[h.0])
                .chain(
                    c.lanes
                        .iter()
                        .filter(|l| l.2.in_flight() > 0)
                        .map(|l| self.layout.workers[l.1]),
                )
                .collect();
            cores.sort_unstable();
            cores.dedup();
            out.push(format!(
                "{} '{}' ({}) on core {} could not deliver {total} messages before shutdown ended (timeout {:?}); they were lost",
                if info.category == Category::Filter {
                    "filter"
                } else {
                    "output"
                },
                info.name,
                info.type_name,
                format_cores(&cores),
                self.shutdown_timeout
            ));
        }
        for (shard, p) in self.pending.iter().enumerate() {
            let n = p.load(Ordering::Acquire);
            if n > 0 {
                out.push(format!(
                    "the router on core {} still held {n} messages waiting for a full lane; they were lost",
                    self.layout.workers[shard]
                ));
            }
        }
        if self.control.inputs_live.load(Ordering::Acquire) > 0 {
            out.push(
                "some inputs were still blocked by back-pressure; data they had not read yet stays with the senders"
                    .to_string(),
            );
        }
        out
    }
}

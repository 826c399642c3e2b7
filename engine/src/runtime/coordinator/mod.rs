//! The coordinator: the control plane of a started pipeline, on the thread that started it,
//! pinned to `coordinator_core`. It never touches a message. Its rooms:
//!
//! - [`placement`](self::placement): which shards run each plugin, and the lanes that feed
//!   filters and outputs (pure planning);
//! - [`start`](self::start): the core layout, `base_dir`, and the shards started with their
//!   plans;
//! - this file: [`Coordinator`] and its control loop — signals, shard events, commands;
//! - [`reports`](self::reports): the shards' snapshots merged into reports;
//! - [`telemetry`](self::telemetry): what the metrics endpoint serves, published from the
//!   same snapshots, and whether every output delivers;
//! - [`dynamic`](self::dynamic): filters loaded and unloaded while traffic flows, and
//!   retirements;
//! - [`shutdown`](self::shutdown): inputs, then filters, then outputs, checking between phases
//!   that every lane has drained, and what could not be delivered.

mod dynamic;
mod placement;
pub(super) mod reload;
mod reports;
mod shutdown;
pub(super) mod start;
mod telemetry;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use self::placement::{ConsumerInfo, Homes};
use super::layout::{Layout, format_cores};
use super::pipeline::PluginInfo;
use super::shard::{Control, ShardCommand};
use super::signals::{self, Signal};
use crate::mesh::Doorbell;
use crate::plugin::{PipelineControl, ShardEvent};
use crate::stats::ShardSnapshot;

/// How long shutdown may take before hekate exits anyway, saying what was left.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the coordinator waits for a shard to take a command or start a filter.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A filter or output being taken out of the running pipeline (unloaded or terminated).
#[derive(Debug)]
struct Retirement {
    plugin: usize,
    /// Router shards that dropped its routes.
    removed: Arc<AtomicUsize>,
    /// Its instances were told to finish.
    released: bool,
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
    /// Why hekate stopped on its own (a plugin that may not exit terminated, an output whose
    /// `full_action` is "shutdown" overflowed); `None` after a stop by signal.
    pub failure: Option<String>,
}

/// A started pipeline's control plane; [`Coordinator::run`] coordinates it until shutdown.
#[derive(Debug)]
pub struct Coordinator {
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
    homes: Homes,
    snapshots: Vec<rtrb::Consumer<ShardSnapshot>>,
    latest: Vec<Option<Arc<ShardSnapshot>>>,
    /// A snapshot arrived since the metrics endpoint's sample was last published.
    fresh: bool,
    /// The metrics endpoint, when `http_address` is set.
    telemetry: Option<telemetry::Telemetered>,
    injections: rtrb::Producer<Vec<u8>>,
    pending: Vec<Arc<AtomicU64>>,
    layout: Layout,
    report_interval: Duration,
    hostname: String,
    lane_messages: u64,
    stop: Arc<AtomicBool>,
    /// Why hekate is stopping on its own, if it is (see [`RunOutcome::failure`]).
    failure: Option<String>,
    /// What plugins reported lost while they closed ([`ShardEvent::Lost`]).
    lost: Vec<String>,
    shutdown_timeout: Duration,
    /// A second SIGINT/SIGTERM during shutdown: stop waiting.
    forced: std::cell::Cell<bool>,
    /// What SIGUSR2 calls (see [`Coordinator::on_sandbox_abort`]).
    abort_sandboxes: Option<fn()>,
    /// What SIGHUP builds the configuration with (see [`Coordinator::on_reload`]).
    reloader: Option<reload::Reloader>,
    /// The `[hekate]` section running: a reload that changes it is refused.
    global: hekate_config::GlobalConfig,
    /// Successors of changed plugins, started once the old ones finished.
    pending_starts: Vec<reload::PendingStart>,
    /// Plugins a reload took out: their slots are freed once they have finished.
    vacate: Vec<usize>,
    /// Slots never to reuse (a decoder a reload removed may still report into its slot).
    burnt: Vec<usize>,
}

impl Coordinator {
    /// The resolved core layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A handle that requests shutdown from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// What SIGUSR2 does: `abort` terminates every Lua sandbox that exists (the daemon passes
    /// `hekate_sandbox::abort_all`; the engine does not know the sandbox).
    pub fn on_sandbox_abort(&mut self, abort: fn()) {
        self.abort_sandboxes = Some(abort);
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
        tracing::info!(
            "hekate started: {} worker shards on cores {}, coordinator on core {}",
            self.layout.workers.len(),
            format_cores(&self.layout.workers),
            self.layout.coordinator
        );
        let mut next_report = Instant::now() + self.report_interval;
        loop {
            let now = Instant::now();
            // Signals come at once; load and unload requests and terminations are looked at
            // every 100 ms (a syscall, nothing more, when there are none: 10 wake-ups a second
            // of an idle hekate's budget), and every 5 ms while one is being carried out.
            let busy = !self.retiring.is_empty() || self.requests.has_requests();
            let wait = next_report
                .saturating_duration_since(now)
                .min(Duration::from_millis(if busy { 5 } else { 100 }));
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
                Some(Signal::Reload) => self.reload(),
                Some(Signal::AbortSandboxes) => match self.abort_sandboxes {
                    Some(abort) => {
                        tracing::info!("SIGUSR2 received: aborting every Lua sandbox");
                        abort();
                    }
                    None => tracing::warn!(
                        "SIGUSR2 received, but this pipeline has no sandbox to abort"
                    ),
                },
                None => {}
            }
            self.serve_events();
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            self.serve_requests();
            self.advance_retirements();
            self.collect();
            self.publish_if_fresh();
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

    /// Sends a command to a shard, waiting (bounded) while its command ring is full.
    pub(super) fn command(&mut self, shard: usize, mut cmd: ShardCommand) -> bool {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            match self.commands[shard].push(cmd) {
                Ok(()) => {
                    self.control.bell.ring();
                    return true;
                }
                Err(rtrb::PushError::Full(c)) => {
                    if Instant::now() >= deadline {
                        tracing::error!(
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
                        tracing::error!(
                            "Plugin '{name}' terminated and may not exit (can_exit = false): shutting down. Reason: {reason}"
                        );
                        self.failure.get_or_insert(format!(
                            "plugin '{name}' terminated and may not exit: {reason}"
                        ));
                        self.stop.store(true, Ordering::Release);
                    }
                    self.note_termination(plugin, &reason);
                    self.retire(plugin);
                }
                ShardEvent::Shutdown { reason } => {
                    tracing::error!("{reason}: shutting down");
                    self.failure.get_or_insert(reason);
                    self.stop.store(true, Ordering::Release);
                }
                ShardEvent::Lost { reason } => self.lost.push(reason),
            }
        }
    }
}

/// Test fixtures for the coordinator's rooms: plugins that do nothing, consumers with real
/// lanes, and a coordinator whose shards are played by the test.
#[cfg(test)]
mod tests {
    use std::thread::JoinHandle;

    use super::*;
    use crate::mesh::{LaneRx, LaneTx, lane};
    use crate::plugin::DynamicFilter;
    use crate::plugin::{
        Built, Decoder, DecoderPlugin, Filter, FilterPlugin, InputPlacement, InputPlugin,
        LocalBoxFuture, Output, OutputPlugin, Placement, PluginContext, PluginError,
    };
    use crate::runtime::runner::Lifecycle;
    use hekate_config::Category;
    use hekate_model::matcher::MatcherSpec;

    #[derive(Debug)]
    struct TestInput(InputPlacement);
    impl InputPlugin for TestInput {
        fn placement(&self) -> InputPlacement {
            self.0
        }
        fn start(
            &self,
            _ctx: crate::plugin::InputContext,
        ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
            Err(PluginError::Other("a test input does not start".into()))
        }
    }

    #[derive(Debug)]
    struct TestFilter(Placement, usize);
    impl FilterPlugin for TestFilter {
        fn placement(&self) -> Placement {
            self.0
        }
        fn new_filter(&self, _ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
            Err(PluginError::Other("a test filter does not start".into()))
        }
        fn dynamic_filters(&self) -> usize {
            self.1
        }
    }

    #[derive(Debug)]
    struct TestOutput(Placement);
    impl OutputPlugin for TestOutput {
        fn placement(&self) -> Placement {
            self.0
        }
        fn new_output(&self, _ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
            Err(PluginError::Other("a test output does not start".into()))
        }
    }

    #[derive(Debug)]
    struct TestDecoder;
    impl DecoderPlugin for TestDecoder {
        fn new_decoder(&self) -> Box<dyn Decoder> {
            unreachable!("a test decoder is never run")
        }
    }

    fn info(name: &str, type_name: &str, category: Category, built: Built) -> PluginInfo {
        let route = matches!(category, Category::Filter | Category::Output)
            .then(|| (MatcherSpec::parse("TRUE").unwrap(), None));
        PluginInfo {
            name: name.into(),
            type_name: type_name.into(),
            category,
            built,
            route,
            full_action: hekate_config::FullAction::Block,
            buffering: None,
            section: format!("type = {type_name:?}"),
            uses: Vec::new(),
        }
    }

    pub(super) fn input(name: &str, placement: InputPlacement) -> PluginInfo {
        let built = Built::Input(Arc::new(TestInput(placement)));
        info(name, "TestInput", Category::Input, built)
    }

    pub(super) fn filter(name: &str, placement: Placement) -> PluginInfo {
        let built = Built::Filter(Arc::new(TestFilter(placement, 0)));
        info(name, "TestFilter", Category::Filter, built)
    }

    /// A filter that may load `slots` filters at run time (a sandbox manager).
    pub(super) fn dynamic_loader(name: &str, slots: usize) -> PluginInfo {
        let built = Built::Filter(Arc::new(TestFilter(Placement::Single, slots)));
        info(name, "TestFilter", Category::Filter, built)
    }

    pub(super) fn output(name: &str, placement: Placement) -> PluginInfo {
        let built = Built::Output(Arc::new(TestOutput(placement)));
        info(name, "TestOutput", Category::Output, built)
    }

    pub(super) fn decoder(name: &str) -> PluginInfo {
        let built = Built::Decoder(Arc::new(TestDecoder));
        info(name, "TestDecoder", Category::Decoder, built)
    }

    /// Plugin slots, all taken.
    pub(super) fn some(plugins: Vec<PluginInfo>) -> Vec<Option<PluginInfo>> {
        plugins.into_iter().map(Some).collect()
    }

    /// A run-time filter `owner` asks for.
    pub(super) fn dynamic_filter(name: &str, owner: &str) -> DynamicFilter {
        DynamicFilter {
            name: name.into(),
            owner: owner.into(),
            type_name: "TestFilter".into(),
            plugin: Arc::new(TestFilter(Placement::Single, 0)),
            matcher: MatcherSpec::parse("TRUE").unwrap(),
            signer: None,
            files: Vec::new(),
        }
    }

    /// One doorbell per shard.
    pub(super) fn spaces(shards: usize) -> Vec<Arc<Doorbell>> {
        (0..shards).map(|_| Arc::new(Doorbell::new())).collect()
    }

    /// A consumer of `plugin` with real lanes ((source, home) each) and instances on `homes`.
    pub(super) fn consumer(
        plugin: usize,
        lanes: &[(usize, usize)],
        homes: &[usize],
    ) -> (ConsumerInfo, Vec<(LaneTx, LaneRx)>) {
        let bell = Arc::new(Doorbell::new());
        let mut ends = Vec::new();
        let mut info = ConsumerInfo {
            plugin,
            lanes: Vec::new(),
            held: Vec::new(),
            instances: Vec::new(),
        };
        for &(source, home) in lanes {
            let (tx, rx) = lane(4, Arc::clone(&bell), Arc::new(Doorbell::new()));
            info.lanes.push((source, home, Arc::clone(tx.counters())));
            ends.push((tx, rx));
        }
        for &home in homes {
            info.held.push((home, Arc::new(AtomicU64::new(0))));
            info.instances
                .push((Arc::new(Doorbell::new()), Arc::new(Lifecycle::default())));
        }
        (info, ends)
    }

    /// The shards' ends of a coordinator made by [`coordinator`]: no thread, no executor.
    pub(super) struct FakeShards {
        control: Arc<Control>,
        commands: Vec<rtrb::Consumer<ShardCommand>>,
        injections: rtrb::Consumer<Vec<u8>>,
        _snapshots: Vec<rtrb::Producer<ShardSnapshot>>,
        events: mpsc::Sender<ShardEvent>,
        refuse: bool,
    }

    impl FakeShards {
        /// The state shards and coordinator share.
        pub(super) fn control(&self) -> Arc<Control> {
            Arc::clone(&self.control)
        }

        /// Where shards tell the coordinator what happened.
        pub(super) fn events(&self) -> mpsc::Sender<ShardEvent> {
            self.events.clone()
        }

        /// Shards that cannot start filters.
        pub(super) fn refusing(mut self) -> Self {
            self.refuse = true;
            self
        }

        /// Plays the shards on a thread: filters start (or not), routes are added and removed,
        /// and an instance told to retire finishes.
        pub(super) fn serve(self) -> ServedShards {
            let stop = Arc::new(AtomicBool::new(false));
            let refuse = self.refuse;
            let mut commands = self.commands;
            let done = Arc::clone(&stop);
            let thread = std::thread::spawn(move || {
                let mut log = Vec::new();
                let mut started: Vec<Arc<Lifecycle>> = Vec::new();
                while !done.load(Ordering::Acquire) {
                    for rx in &mut commands {
                        while let Ok(cmd) = rx.pop() {
                            log.push(format!("{cmd:?}"));
                            match cmd {
                                ShardCommand::StartFilter { plan, ack } => {
                                    if refuse {
                                        let _ = ack.send(Err("no room here".into()));
                                    } else {
                                        started.push(Arc::clone(&plan.lifecycle));
                                        let _ = ack.send(Ok(()));
                                    }
                                }
                                ShardCommand::RemoveRoutes { done, .. }
                                | ShardCommand::CloseRoutes { done, .. }
                                | ShardCommand::StopInput { done, .. } => {
                                    done.fetch_add(1, Ordering::AcqRel);
                                }
                                ShardCommand::StartInput { ack, .. } => {
                                    let _ = ack.send(Ok(()));
                                }
                                ShardCommand::ResetCounters(_)
                                | ShardCommand::AddRoute(_)
                                | ShardCommand::ReleaseHandovers => {}
                            }
                        }
                    }
                    for l in &started {
                        if l.retire.load(Ordering::Acquire) {
                            l.finished.store(true, Ordering::Release);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                log
            });
            ServedShards {
                stop,
                thread: Some(thread),
                injections: self.injections,
            }
        }
    }

    /// Shards played on a thread by [`FakeShards::serve`].
    pub(super) struct ServedShards {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<Vec<String>>>,
        injections: rtrb::Consumer<Vec<u8>>,
    }

    impl ServedShards {
        /// The messages the coordinator injected since the last call.
        pub(super) fn injected(&mut self) -> Vec<Vec<u8>> {
            std::iter::from_fn(|| self.injections.pop().ok()).collect()
        }

        /// Stops the thread; every command the shards took, in order.
        pub(super) fn stop(mut self) -> Vec<String> {
            self.stop.store(true, Ordering::Release);
            self.thread.take().unwrap().join().unwrap()
        }
    }

    impl Drop for ServedShards {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// A coordinator of `shards` shards (on cores 0, 1, …) for `configured` plugins and `spare`
    /// slots for run-time filters, its shards played by the test.
    pub(super) fn coordinator(
        shards: usize,
        configured: Vec<PluginInfo>,
        spare: usize,
    ) -> (Coordinator, FakeShards) {
        let control = Arc::new(Control::new());
        let first_dynamic = configured.len();
        let mut plugins = some(configured);
        plugins.resize_with(first_dynamic + spare, || None);
        let (commands, command_ends): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| rtrb::RingBuffer::new(256)).unzip();
        let (snapshot_ends, snapshots): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| rtrb::RingBuffer::new(4)).unzip();
        let (injections, injection_end) = rtrb::RingBuffer::new(16);
        let (events_tx, events) = mpsc::channel();
        let coordinator = Coordinator {
            control: Arc::clone(&control),
            threads: Vec::new(),
            plugins,
            first_dynamic,
            consumers: Vec::new(),
            commands,
            events,
            requests: PipelineControl::new(),
            retiring: Vec::new(),
            spaces: spaces(shards),
            ring_capacity: 4,
            homes: Homes::new(shards),
            snapshots,
            latest: (0..shards).map(|_| None).collect(),
            fresh: false,
            telemetry: None,
            injections,
            pending: (0..shards).map(|_| Arc::new(AtomicU64::new(0))).collect(),
            layout: Layout {
                workers: (0..shards).collect(),
                coordinator: 0,
                io_memory: 0,
            },
            report_interval: Duration::from_secs(60),
            hostname: "test".into(),
            lane_messages: 4,
            stop: Arc::new(AtomicBool::new(false)),
            failure: None,
            lost: Vec::new(),
            shutdown_timeout: Duration::from_secs(5),
            forced: std::cell::Cell::new(false),
            abort_sandboxes: None,
            reloader: None,
            global: hekate_config::GlobalConfig::default(),
            pending_starts: Vec::new(),
            vacate: Vec::new(),
            burnt: Vec::new(),
        };
        let shards = FakeShards {
            control,
            commands: command_ends,
            injections: injection_end,
            _snapshots: snapshot_ends,
            events: events_tx,
            refuse: false,
        };
        (coordinator, shards)
    }

    #[test]
    fn a_plugin_that_may_not_exit_stops_the_pipeline_when_it_terminates() {
        let (mut coord, shards) = coordinator(1, vec![filter("Lua", Placement::Single)], 0);
        let (lua, _lanes) = consumer(0, &[(0, 0)], &[0]);
        coord.consumers.push(lua);
        let events = shards.events();
        let served = shards.serve();
        events
            .send(ShardEvent::Terminated {
                plugin: 0,
                reason: "out of memory".into(),
                can_exit: true,
            })
            .unwrap();
        coord.serve_events();
        assert!(!coord.stop.load(Ordering::Acquire), "can_exit = true");
        assert_eq!(coord.retiring.len(), 1, "taken out of routing");
        events
            .send(ShardEvent::Terminated {
                plugin: 0,
                reason: "out of memory".into(),
                can_exit: false,
            })
            .unwrap();
        coord.serve_events();
        assert!(coord.stop.load(Ordering::Acquire));
        assert_eq!(coord.retiring.len(), 1, "retired once");
        drop(served);
    }

    #[test]
    fn an_input_asking_for_shutdown_stops_the_pipeline() {
        let (mut coord, shards) = coordinator(1, vec![], 0);
        shards
            .events()
            .send(ShardEvent::Shutdown {
                reason: "Input 'x' ended".into(),
            })
            .unwrap();
        coord.serve_events();
        assert!(coord.stop.load(Ordering::Acquire));
    }

    #[test]
    fn a_stop_handle_stops_the_control_loop() {
        let (coord, _shards) = coordinator(1, vec![], 0);
        let handle = coord.stop_handle();
        handle.stop();
        let outcome = coord.run();
        assert_eq!(outcome, RunOutcome::default());
    }
}

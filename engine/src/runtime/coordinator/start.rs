//! Starting the pipeline: the core layout, `base_dir`, the ring mesh planned by
//! [`placement`](super::placement), and one pinned executor per worker core, each reporting
//! once its inputs listen.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::placement::{Mesh, plan_shards};
use super::{Coordinator, DEFAULT_SHUTDOWN_TIMEOUT};
use crate::mesh::Doorbell;
use crate::plugin::Built;
use crate::runtime::layout::{allowed_cores, memlock_limit, resolve};
use crate::runtime::pipeline::{Pipeline, PluginInfo, StartError};
use crate::runtime::shard::{Control, Phase, Settings, ShardPlan, spawn};
use crate::runtime::signals;
use crate::telemetry::Telemetry;

/// How long a shard may take to start.
const SHARD_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates `dir` if needed and checks that hekate may write there.
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

/// Refuses an `http_address` that an input listens on too.
fn refuse_input_address(pipeline: &Pipeline, at: std::net::SocketAddr) -> Result<(), StartError> {
    for info in &pipeline.plugins {
        let Built::Input(input) = &info.built else {
            continue;
        };
        if input
            .listen_addresses()
            .iter()
            .any(|a| matches!(a, crate::plugin::ListenAddress::Tcp(t) if *t == at))
        {
            return Err(StartError::AddressInUse(format!(
                "`http_address` {at} in the [hekate] section is also the address of input '{}'",
                info.name
            )));
        }
    }
    Ok(())
}

/// Plugin slots to reserve for filters loaded at run time: as many as the plugins that load
/// them may load.
fn spare_slots(plugins: &[PluginInfo]) -> usize {
    plugins
        .iter()
        .map(|p| match &p.built {
            Built::Filter(f) => f.dynamic_filters(),
            _ => 0,
        })
        .sum()
}

/// Adds a shard's start errors to `errors`, each once: per-shard plugins fail the same way on
/// every shard.
fn add_once(errors: &mut Vec<String>, shard_errors: Vec<String>) {
    for e in shard_errors {
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
}

/// Starts the pipeline: resolves the core layout, creates `base_dir`, builds the ring mesh and
/// starts one pinned executor per worker core. Returns once every input listens, or the first
/// reason it could not.
///
/// Blocks hekate's signals in the calling thread (and so in every thread started from now on):
/// call it from the main thread before starting other threads.
pub fn start(pipeline: Pipeline) -> Result<Coordinator, StartError> {
    signals::block();
    let global = &pipeline.global;
    let layout = resolve(global, &allowed_cores(), memlock_limit())?;
    // The coordinator is on its core before any shard listens, so that nothing a client can
    // see of a started hekate runs elsewhere.
    let _ = core_affinity::set_for_current(core_affinity::CoreId {
        id: layout.coordinator,
    });
    prepare_base_dir(&global.base_dir)?;
    crate::runtime::claim::claim_listen_addresses(&pipeline)?;
    // The metrics endpoint's address, bound before any shard binds an input's.
    let metrics_listener = match global.http_address {
        Some(at) => {
            refuse_input_address(&pipeline, at)?;
            Some(super::telemetry::bind(at)?)
        }
        None => None,
    };
    let shards = layout.workers.len();
    let spare = spare_slots(&pipeline.plugins) + super::reload::RELOAD_SLOTS;
    let settings = Settings {
        shards,
        plugin_count: pipeline.plugins.len() + spare,
        hostname: global.hostname.clone(),
        max_message_size: global.max_message_size,
        max_loops: global.max_message_loops,
        sample_every: global.sample_denominator.max(1),
        batch_size: global.batch_size.max(1),
        io_memory: layout.io_memory as usize,
        base_dir: global.base_dir.clone(),
    };
    let ring_capacity = global.ring_capacity.max(1);
    let control = Arc::new(Control::new());
    let spaces: Vec<Arc<Doorbell>> = (0..shards).map(|_| Arc::new(Doorbell::new())).collect();
    let plans = plan_shards(
        &pipeline.plugins,
        &Mesh {
            shards,
            ring_capacity,
            spaces: &spaces,
        },
    );
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
    let per_shard = plans
        .routes
        .into_iter()
        .zip(plans.instances)
        .zip(plans.inputs);
    for (shard, ((routes, instances), inputs)) in per_shard.enumerate() {
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
            routes,
            space: Arc::clone(&spaces[shard]),
            pending: published,
            instances,
            inputs,
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
        match ready_rx.recv_timeout(SHARD_START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(shard_errors)) => add_once(&mut errors, shard_errors),
            Err(_) => {
                errors.push("a shard did not start within 30 seconds".to_string());
                break;
            }
        }
    }
    // A DashboardOutput's `ticker_interval`, when shorter.
    let report_interval = pipeline
        .control
        .requested_report_period()
        .map_or(global.report_interval, |p| p.min(global.report_interval));
    let first_dynamic = pipeline.plugins.len();
    let mut plugins: Vec<Option<PluginInfo>> = pipeline.plugins.into_iter().map(Some).collect();
    plugins.resize_with(first_dynamic + spare, || None);
    let mut coordinator = Coordinator {
        control,
        threads,
        plugins,
        first_dynamic,
        consumers: plans.consumers,
        commands,
        events: events_rx,
        requests: pipeline.control,
        retiring: Vec::new(),
        spaces,
        ring_capacity,
        homes: plans.homes,
        latest: (0..shards).map(|_| None).collect(),
        fresh: false,
        telemetry: None,
        snapshots,
        injections: inject_tx,
        pending,
        layout,
        report_interval,
        hostname: global.hostname.clone(),
        lane_messages: (ring_capacity * settings.batch_size) as u64,
        stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        failure: None,
        lost: Vec::new(),
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        forced: std::cell::Cell::new(false),
        abort_sandboxes: None,
        reloader: None,
        global: pipeline.global.clone(),
        pending_starts: Vec::new(),
        vacate: Vec::new(),
        burnt: Vec::new(),
    };
    let wanted_board = coordinator.requests.shared_if_asked::<Telemetry>();
    if errors.is_empty()
        && (metrics_listener.is_some() || wanted_board.is_some())
        && let Err(e) =
            coordinator.start_telemetry(metrics_listener, wanted_board, settings.sample_every)
    {
        errors.push(e.to_string());
    }
    if !errors.is_empty() {
        coordinator.control.advance(Phase::StopOutputs);
        let deadline = Instant::now() + Duration::from_secs(5);
        for t in &coordinator.threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        return Err(StartError::Shard(errors.join("; ")));
    }
    // Filters requested while the shards started (a sandbox manager loading the filters of an
    // earlier run) start now, before the first round of the coordinator.
    coordinator.serve_requests();
    Ok(coordinator)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dynamic_loader, filter, input};
    use super::*;
    use crate::plugin::{InputPlacement, Placement};

    #[test]
    fn base_dir_is_created_and_probed() {
        let dir = std::env::temp_dir().join(format!("hekate-start-{}/a/b", std::process::id()));
        prepare_base_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the probe is gone"
        );
        let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn a_base_dir_under_a_file_is_refused_with_the_option_to_change() {
        let file = std::env::temp_dir().join(format!("hekate-start-file-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let err = prepare_base_dir(&file.join("sub")).unwrap_err().to_string();
        let _ = std::fs::remove_file(&file);
        assert!(err.contains("cannot be created"), "{err}");
        assert!(
            err.contains("set `base_dir` in the [hekate] section"),
            "{err}"
        );
    }

    #[test]
    fn slots_are_reserved_for_the_filters_plugins_may_load() {
        let plugins = [
            input("Tcp", InputPlacement::EveryShard),
            filter("Counter", Placement::Single),
            dynamic_loader("Manager", 3),
            dynamic_loader("Other", 2),
        ];
        assert_eq!(spare_slots(&plugins), 5);
        assert_eq!(spare_slots(&plugins[..2]), 0);
    }

    #[test]
    fn a_failure_repeated_by_every_shard_is_said_once() {
        let mut errors = vec!["a".to_string()];
        add_once(&mut errors, vec!["b".into(), "a".into()]);
        add_once(&mut errors, vec!["b".into(), "c".into()]);
        assert_eq!(errors, ["a", "b", "c"]);
    }
}

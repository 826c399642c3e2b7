//! Reload (SIGHUP, `hekate reload`): the configuration built anew and applied to the running
//! pipeline, or refused as a whole.
//!
//! The new configuration is built completely first (by the daemon's [`Reloader`]); a config that
//! does not build, a change of the `[hekate]` section, a change of a plugin that loads filters
//! at run time (a sandbox manager), an input address held by someone else, or too few free
//! plugin slots refuse the reload with one log line, and nothing changes. Otherwise the running
//! plugins are compared with the new ones by section name and canonical options
//! ([`PluginInfo::section`], which ends with a digest of the files the plugin read to build:
//! its script, its certificates); a plugin whose splitter, decoder or encoder changed counts as
//! changed. Then, in this order:
//!
//! 1. removed and changed **inputs** stop (they stop accepting; their connections route what they
//!    read and end); unchanged inputs are not touched; a stopping input whose address a starting
//!    one takes leaves its sockets for it ([`crate::plugin::handover`]);
//! 2. removed **filters and outputs** are taken out without loss: every router stops routing to
//!    them, pushes what it held for them into their lanes, and their instances finish what the
//!    lanes hold and close;
//! 3. changed filters and outputs are swapped on every router in one step (each message goes to
//!    the old or the new one, never both, never neither); the new instances start once the old
//!    ones have finished and closed, so that an output writing the same file or queue directory
//!    never has two writers; meanwhile their lanes fill (the inputs wait if they fill up); a new
//!    instance that cannot start runs the old plugin instead, on the same lanes
//!    ([`InstancePlan::fallback`]);
//! 4. added filters and outputs start, then get their routes;
//! 5. added and changed inputs start.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hekate_config::{Category, GlobalConfig};

use super::placement::{ConsumerInfo, Mesh, consumer_placement};
use super::{COMMAND_TIMEOUT, Coordinator, Retirement};
use crate::plugin::{Built, ListenAddress, Placement};
use crate::runtime::pipeline::{Pipeline, PluginInfo};
use crate::runtime::shard::{InputPlan, InstanceKind, InstancePlan, ShardCommand};

/// Plugin slots reserved at start for plugins a reload adds or changes.
pub(super) const RELOAD_SLOTS: usize = 32;

/// Builds the configuration anew (the daemon reads its config file again); `Err` says why it
/// does not build, in one line.
pub struct Reloader(pub Box<dyn FnMut() -> Result<Pipeline, String>>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// New instances of a changed filter or output, started once the old ones have finished.
#[derive(Default)]
pub(super) struct PendingStart {
    /// The slots of the plugins that must finish first: the old plugin (a changed one), or the
    /// outputs the same reload removed (an added output may write a removed one's file).
    pub(super) after: Vec<usize>,
    /// The slot of the new one.
    pub(super) plugin: usize,
    pub(super) instances: Vec<(usize, InstancePlan)>,
    /// A changed plugin: the one it replaces, which runs again if the new one cannot start
    /// (raised: it did).
    pub(super) previous: Option<(PluginInfo, Arc<std::sync::atomic::AtomicBool>)>,
}

impl std::fmt::Debug for PendingStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingStart({} after {:?})", self.plugin, self.after)
    }
}

/// What a reload changes, by plugin: running slots and indices into the new pipeline's plugins.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Diff {
    pub(super) removed: Vec<usize>,
    pub(super) added: Vec<usize>,
    /// (running slot, new index).
    pub(super) changed: Vec<(usize, usize)>,
    pub(super) unchanged: usize,
}

impl Diff {
    pub(super) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.changed.is_empty()
    }
}

/// The `[hekate]` options that differ (any of them needs a restart).
pub(super) fn global_changes(old: &GlobalConfig, new: &GlobalConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! cmp {
        ($($field:ident),* $(,)?) => {
            $(if old.$field != new.$field {
                changed.push(stringify!($field));
            })*
        };
    }
    cmp!(
        maxprocs,
        poolsize,
        plugin_chansize,
        max_message_loops,
        max_process_inject,
        max_process_duration,
        max_timer_inject,
        max_pack_idle,
        base_dir,
        share_dir,
        sample_denominator,
        pid_file,
        hostname,
        max_message_size,
        log_flags,
        log_level,
        full_buffer_max_retries,
        worker_cores,
        coordinator_core,
        io_memory,
        ring_capacity,
        batch_size,
        report_interval,
        http_address,
    );
    if changed.is_empty() && old != new {
        changed.push("(another option)");
    }
    changed
}

/// Compares the configured plugins running (`running`, by slot; run-time filters, which have no
/// section, are not configured) with `new`.
pub(super) fn diff(running: &[Option<PluginInfo>], new: &[PluginInfo]) -> Diff {
    let configured = |p: &&PluginInfo| !p.section.is_empty();
    let mut d = Diff::default();
    for (slot, info) in running.iter().enumerate() {
        let Some(info) = info.as_ref().filter(configured) else {
            continue;
        };
        match new.iter().position(|n| n.name == info.name) {
            None => d.removed.push(slot),
            // A name now used by another kind of plugin: one goes, the other comes.
            Some(i) if new[i].category != info.category => {
                d.removed.push(slot);
                d.added.push(i);
            }
            Some(i) if new[i].section != info.section => d.changed.push((slot, i)),
            Some(_) => {}
        }
    }
    for (i, n) in new.iter().enumerate() {
        if !running
            .iter()
            .flatten()
            .filter(configured)
            .any(|r| r.name == n.name)
        {
            d.added.push(i);
        }
    }
    d.added.sort_unstable();
    // A plugin using a splitter, decoder or encoder that changed, came or went changed too
    // (a MultiDecoder through its subs, and so on).
    loop {
        let mut touched: HashSet<&str> = HashSet::new();
        touched.extend(
            d.removed
                .iter()
                .filter_map(|&s| running[s].as_ref())
                .map(|i| i.name.as_str()),
        );
        touched.extend(d.added.iter().map(|&i| new[i].name.as_str()));
        touched.extend(d.changed.iter().map(|&(_, i)| new[i].name.as_str()));
        let mut more = Vec::new();
        for (slot, info) in running.iter().enumerate() {
            let Some(info) = info.as_ref().filter(configured) else {
                continue;
            };
            if d.changed.iter().any(|&(s, _)| s == slot) || d.removed.contains(&slot) {
                continue;
            }
            let Some(i) = new.iter().position(|n| n.name == info.name) else {
                continue;
            };
            let uses = info.uses.iter().chain(&new[i].uses);
            if uses.into_iter().any(|u| touched.contains(u.as_str())) {
                more.push((slot, i));
            }
        }
        if more.is_empty() {
            break;
        }
        d.changed.extend(more);
    }
    d.changed.sort_unstable();
    d.unchanged =
        running.iter().flatten().filter(configured).count() - d.removed.len() - d.changed.len();
    d
}

/// Whether the plugin loads filters at run time (a sandbox manager): its slots are reserved at
/// start, so adding, removing or changing it needs a restart.
fn loads_filters(info: &PluginInfo) -> bool {
    matches!(&info.built, Built::Filter(f) if f.dynamic_filters() > 0)
}

fn runs(info: &PluginInfo) -> bool {
    matches!(
        info.category,
        Category::Input | Category::Filter | Category::Output
    )
}

fn addresses(info: &PluginInfo) -> Vec<ListenAddress> {
    match &info.built {
        Built::Input(i) => i.listen_addresses(),
        _ => Vec::new(),
    }
}

impl Coordinator {
    /// Sets what builds the configuration anew on SIGHUP; without it, SIGHUP only reopens files.
    pub fn on_reload(&mut self, reloader: Reloader) {
        self.reloader = Some(reloader);
    }

    /// SIGHUP: files are reopened; the configuration is built anew and applied, or refused.
    pub(super) fn reload(&mut self) {
        crate::plugin::request_reopen();
        let Some(reloader) = self.reloader.as_mut() else {
            tracing::info!(
                "SIGHUP received: outputs reopen their files before their next write (no configuration to reload)"
            );
            return;
        };
        tracing::info!(
            "SIGHUP received: outputs reopen their files before their next write; reloading the configuration"
        );
        let started = Instant::now();
        let new = match (reloader.0)() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(
                    "Reload refused: the configuration does not build; the running pipeline goes on unchanged. {e}"
                );
                return;
            }
        };
        match self.check_reload(&new) {
            Err(why) => {
                tracing::error!("Reload refused: {why}; the running pipeline goes on unchanged")
            }
            Ok(d) if d.is_empty() => {
                tracing::info!("Reload: the configuration is unchanged; nothing to do")
            }
            Ok(d) => {
                let summary = self.summary(&d, &new);
                self.apply(d, new);
                tracing::info!(
                    "Reload applied in {} ms: {summary}",
                    started.elapsed().as_millis()
                );
            }
        }
    }

    fn summary(&self, d: &Diff, new: &Pipeline) -> String {
        let names = |v: Vec<&str>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let added = names(
            d.added
                .iter()
                .map(|&i| new.plugins[i].name.as_str())
                .collect(),
        );
        let removed = names(
            d.removed
                .iter()
                .filter_map(|&s| self.plugins[s].as_ref())
                .map(|i| i.name.as_str())
                .collect(),
        );
        let changed = names(
            d.changed
                .iter()
                .map(|&(_, i)| new.plugins[i].name.as_str())
                .collect(),
        );
        format!(
            "added {added}; removed {removed}; changed {changed}; {} unchanged",
            d.unchanged
        )
    }

    /// The reload's diff, or why it cannot be applied without a restart.
    fn check_reload(&self, new: &Pipeline) -> Result<Diff, String> {
        let global = global_changes(&self.global, &new.global);
        if !global.is_empty() {
            return Err(format!(
                "the [hekate] section changed ({}), which needs a restart",
                global.join(", ")
            ));
        }
        // Plugins an earlier reload took out and that are still finishing are gone already.
        let running: Vec<Option<PluginInfo>> = self
            .plugins
            .iter()
            .enumerate()
            .map(|(p, i)| i.clone().filter(|_| !self.vacate.contains(&p)))
            .collect();
        let d = diff(&running, &new.plugins);
        let touched = d
            .removed
            .iter()
            .chain(d.changed.iter().map(|(s, _)| s))
            .filter_map(|&s| self.plugins[s].as_ref())
            .chain(d.added.iter().map(|&i| &new.plugins[i]))
            .chain(d.changed.iter().map(|&(_, i)| &new.plugins[i]));
        for info in touched {
            if loads_filters(info) {
                return Err(format!(
                    "filter '{}' loads filters at run time; adding, removing or changing it needs a restart",
                    info.name
                ));
            }
        }
        let wanted = d.added.len()
            + d.changed
                .iter()
                .filter(|&&(_, i)| runs(&new.plugins[i]))
                .count();
        let free = self.free_slots().len();
        if wanted > free {
            return Err(format!(
                "it needs {wanted} plugin slots and {free} are free (a restart frees them all)"
            ));
        }
        // The new inputs' addresses: free, or held by an input this reload stops.
        let stopping: Vec<usize> = d
            .removed
            .iter()
            .chain(d.changed.iter().map(|(s, _)| s))
            .copied()
            .collect();
        let mut claimed: Vec<(ListenAddress, &str)> = Vec::new();
        for (slot, info) in self.plugins.iter().enumerate() {
            if let Some(info) = info
                && !stopping.contains(&slot)
            {
                claimed.extend(addresses(info).into_iter().map(|a| (a, info.name.as_str())));
            }
        }
        let starting = d
            .added
            .iter()
            .chain(d.changed.iter().map(|(_, i)| i))
            .map(|&i| &new.plugins[i]);
        let released: Vec<ListenAddress> = stopping
            .iter()
            .filter_map(|&s| self.plugins[s].as_ref())
            .flat_map(addresses)
            .collect();
        for info in starting {
            for a in addresses(info) {
                let at = a.socket_addr();
                if at.port() == 0 {
                    continue;
                }
                if let Some((_, owner)) = claimed.iter().find(|(c, _)| *c == a) {
                    return Err(format!(
                        "input '{}': address {at} is also the address of input '{owner}'",
                        info.name
                    ));
                }
                claimed.push((a, info.name.as_str()));
                if !released.contains(&a)
                    && let Err(e) = crate::runtime::claim::probe_patiently(a)
                    && e.kind() == std::io::ErrorKind::AddrInUse
                {
                    return Err(format!(
                        "input '{}': address {at} is in use by another process",
                        info.name
                    ));
                }
            }
        }
        Ok(d)
    }

    /// Free slots, the last first (run-time filters take them from the first).
    fn free_slots(&self) -> Vec<usize> {
        (self.first_dynamic..self.plugins.len())
            .rev()
            .filter(|&p| {
                self.plugins[p].is_none()
                    && !self.retiring.iter().any(|r| r.plugin == p)
                    && !self.burnt.contains(&p)
            })
            .collect()
    }

    fn apply(&mut self, d: Diff, new: Pipeline) {
        let mut free = self.free_slots();
        let mut new_plugins: Vec<Option<PluginInfo>> = new.plugins.into_iter().map(Some).collect();
        let shards = self.layout.workers.len();

        // 1. Inputs that go or change stop; their messages are routed before they end.
        let stopping: Vec<usize> = d
            .removed
            .iter()
            .chain(d.changed.iter().map(|(s, _)| s))
            .copied()
            .filter(|&s| {
                self.plugins[s]
                    .as_ref()
                    .is_some_and(|i| i.category == Category::Input)
            })
            .collect();
        // Addresses a stopping input hands to a starting one: its sockets are kept for it.
        let starting_addresses: Vec<ListenAddress> = d
            .added
            .iter()
            .chain(d.changed.iter().map(|(_, i)| i))
            .filter_map(|&i| new_plugins[i].as_ref())
            .flat_map(addresses)
            .collect();
        crate::plugin::handover::expect(
            stopping
                .iter()
                .filter_map(|&s| self.plugins[s].as_ref())
                .flat_map(addresses)
                .filter(|a| a.socket_addr().port() != 0 && starting_addresses.contains(a)),
        );
        let mut stops = Vec::new();
        for p in stopping {
            let done = Arc::new(AtomicUsize::new(0));
            for s in 0..shards {
                let cmd = ShardCommand::StopInput {
                    plugin: p,
                    done: Arc::clone(&done),
                };
                if !self.command(s, cmd) {
                    done.fetch_add(1, Ordering::AcqRel);
                }
            }
            stops.push((p, done));
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        for (p, done) in stops {
            while done.load(Ordering::Acquire) < shards && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if done.load(Ordering::Acquire) < shards {
                tracing::warn!(
                    "Reload: input '{}' did not stop within {} s; going on",
                    self.name(p),
                    COMMAND_TIMEOUT.as_secs()
                );
                // It may still count into its slot.
                self.burnt.push(p);
            } else {
                tracing::info!("Reload: input '{}' stopped", self.name(p));
            }
            self.plugins[p] = None;
        }

        // 2. Removed filters and outputs: no route takes anything new; they finish their lanes.
        for &p in &d.removed {
            match self.plugins[p].as_ref().map(|i| i.category) {
                Some(Category::Filter | Category::Output) => {
                    self.close(p, |_| None);
                    self.vacate.push(p);
                }
                Some(_) => {
                    // Splitters, decoders, encoders: their users changed with them.
                    self.plugins[p] = None;
                    self.burnt.push(p);
                }
                None => {}
            }
        }

        // 3. Changed filters and outputs: swapped on every router; started after the old ones.
        // Changed splitters, decoders and encoders are replaced in their slots.
        for &(p, i) in &d.changed {
            let info = new_plugins[i].take().expect("each new plugin is used once");
            match info.category {
                Category::Filter | Category::Output => {
                    let q = free.pop().expect("slots were counted");
                    let (consumer, mut routes, mut instances) = self.plan_consumer(q, &info);
                    let previous = self.plugins[p].clone().and_then(|old| {
                        let kind = match &old.built {
                            Built::Filter(f) => InstanceKind::Filter(Arc::clone(f)),
                            Built::Output(o) => InstanceKind::Output(Arc::clone(o)),
                            _ => return None,
                        };
                        let used = Arc::new(std::sync::atomic::AtomicBool::new(false));
                        for (_, inst) in &mut instances {
                            inst.fallback = Some((kind.clone(), Arc::clone(&used)));
                        }
                        Some((old, used))
                    });
                    self.close(p, |s| routes[s].pop());
                    for (s, rest) in routes.iter_mut().enumerate() {
                        for route in rest.drain(..) {
                            self.command(s, ShardCommand::AddRoute(route));
                        }
                    }
                    self.vacate.push(p);
                    self.pending_starts.push(PendingStart {
                        after: vec![p],
                        plugin: q,
                        instances,
                        previous,
                    });
                    self.consumers.push(consumer);
                    self.plugins[q] = Some(info);
                }
                Category::Input => new_plugins[i] = Some(info),
                _ => self.plugins[p] = Some(info),
            }
        }

        // 4. Added filters and outputs start, then get their routes. An added output starts
        // after the outputs this reload removed have closed (it may write one's file, renamed).
        let removed_outputs: Vec<usize> = d
            .removed
            .iter()
            .copied()
            .filter(|&p| self.vacate.contains(&p) && self.is_output(p))
            .collect();
        for &i in &d.added {
            let Some(info) = new_plugins[i].take() else {
                continue;
            };
            match info.category {
                Category::Output if !removed_outputs.is_empty() => {
                    let q = free.pop().expect("slots were counted");
                    let (consumer, routes, instances) = self.plan_consumer(q, &info);
                    for (s, rs) in routes.into_iter().enumerate() {
                        for route in rs {
                            self.command(s, ShardCommand::AddRoute(route));
                        }
                    }
                    self.pending_starts.push(PendingStart {
                        after: removed_outputs.clone(),
                        plugin: q,
                        instances,
                        previous: None,
                    });
                    self.consumers.push(consumer);
                    self.plugins[q] = Some(info);
                }
                Category::Filter | Category::Output => {
                    let q = free.pop().expect("slots were counted");
                    let (consumer, routes, instances) = self.plan_consumer(q, &info);
                    if let Err(e) = self.start_instances(instances) {
                        tracing::error!(
                            "Reload: {} '{}' cannot start: {e}",
                            info.category,
                            info.name
                        );
                        for (bell, lifecycle) in &consumer.instances {
                            lifecycle.retire.store(true, Ordering::Release);
                            bell.ring();
                        }
                        self.burnt.push(q);
                        continue;
                    }
                    for (s, rs) in routes.into_iter().enumerate() {
                        for route in rs {
                            self.command(s, ShardCommand::AddRoute(route));
                        }
                    }
                    self.consumers.push(consumer);
                    self.plugins[q] = Some(info);
                }
                Category::Input => new_plugins[i] = Some(info),
                _ => {
                    let q = free.pop().expect("slots were counted");
                    self.plugins[q] = Some(info);
                }
            }
        }

        // 5. Added and changed inputs start (unchanged ones were never touched).
        let starting: Vec<usize> = d
            .added
            .iter()
            .copied()
            .chain(d.changed.iter().map(|&(_, i)| i))
            .collect();
        for i in starting {
            let Some(info) = new_plugins[i].take() else {
                continue;
            };
            if info.category != Category::Input {
                continue;
            }
            let Built::Input(input) = &info.built else {
                continue;
            };
            let q = free.pop().expect("slots were counted");
            for s in 0..shards {
                self.command(s, ShardCommand::ResetCounters(q));
            }
            let homes = self.homes.for_input(input.placement());
            let mut acks = Vec::new();
            for home in homes {
                let (tx, rx) = mpsc::channel();
                let plan = InputPlan {
                    plugin: q,
                    name: info.name.clone(),
                    input: Arc::clone(input),
                };
                if self.command(home, ShardCommand::StartInput { plan, ack: tx }) {
                    acks.push(rx);
                }
            }
            match wait_acks(acks) {
                Ok(()) => {
                    tracing::info!("Reload: input '{}' started", info.name);
                    self.plugins[q] = Some(info);
                }
                Err(e) => {
                    tracing::error!("Reload: input '{}' cannot start: {e}", info.name);
                    self.burnt.push(q);
                }
            }
        }
        crate::plugin::handover::finish();
        for s in 0..shards {
            self.command(s, ShardCommand::ReleaseHandovers);
        }
    }

    fn is_output(&self, p: usize) -> bool {
        self.plugins[p]
            .as_ref()
            .is_some_and(|i| i.category == Category::Output)
    }

    fn name(&self, p: usize) -> String {
        self.plugins[p]
            .as_ref()
            .map_or_else(|| format!("#{p}"), |i| i.name.clone())
    }

    /// Has every router take filter or output `p` out without loss, shard `s` putting
    /// `then(s)` in its place in the same step; its instances then finish (a retirement).
    fn close(&mut self, p: usize, mut then: impl FnMut(usize) -> Option<crate::mesh::Route>) {
        if self.retiring.iter().any(|r| r.plugin == p) {
            return;
        }
        let removed = Arc::new(AtomicUsize::new(0));
        for s in 0..self.layout.workers.len() {
            let cmd = ShardCommand::CloseRoutes {
                plugin: p,
                done: Arc::clone(&removed),
                then: then(s),
            };
            if !self.command(s, cmd) {
                removed.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.retiring.push(Retirement {
            plugin: p,
            removed,
            released: false,
        });
    }

    /// Lanes, routes (per shard) and instances of filter or output `info` in slot `q`.
    #[allow(clippy::type_complexity)]
    fn plan_consumer(
        &mut self,
        q: usize,
        info: &PluginInfo,
    ) -> (
        ConsumerInfo,
        Vec<Vec<crate::mesh::Route>>,
        Vec<(usize, InstancePlan)>,
    ) {
        let shards = self.layout.workers.len();
        for s in 0..shards {
            self.command(s, ShardCommand::ResetCounters(q));
        }
        let placement = if info.buffering.is_some() {
            Placement::Single
        } else {
            consumer_placement(&info.built)
        };
        let homes = self.homes.for_consumer(placement);
        let (matcher, signer) = info.route.clone().expect("filters and outputs have routes");
        let mesh = Mesh {
            shards,
            ring_capacity: self.ring_capacity,
            spaces: &self.spaces,
        };
        let plan = mesh.plan(
            q,
            &info.name,
            &info.built,
            &matcher,
            &signer,
            placement,
            info.full_action,
            homes,
        );
        let mut routes: Vec<Vec<crate::mesh::Route>> = (0..shards).map(|_| Vec::new()).collect();
        for (s, r) in plan.routes {
            routes[s].push(r);
        }
        let instances = plan
            .instances
            .into_iter()
            .map(|(home, mut inst)| {
                inst.buffering = info.buffering;
                (home, inst)
            })
            .collect();
        (plan.info, routes, instances)
    }

    /// Has each home shard start its instance; the first error, if any.
    pub(super) fn start_instances(
        &mut self,
        instances: Vec<(usize, InstancePlan)>,
    ) -> Result<(), String> {
        let mut acks = Vec::new();
        let wanted = instances.len();
        for (home, inst) in instances {
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
        if acks.len() < wanted {
            return Err("a shard did not take it".to_string());
        }
        wait_acks(acks)
    }

    /// Called once retirement `p` has finished: slots vacated by a reload are freed, and the
    /// successors of a changed plugin start.
    pub(super) fn retired(&mut self, p: usize) {
        if let Some(at) = self.vacate.iter().position(|&v| v == p) {
            self.vacate.swap_remove(at);
            if let Some(info) = self.plugins[p].take() {
                tracing::info!(
                    "Reload: {} '{}' finished and closed",
                    info.category,
                    info.name
                );
            }
        }
        for s in &mut self.pending_starts {
            s.after.retain(|&a| a != p);
        }
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_starts)
            .into_iter()
            .partition(|s| s.after.is_empty());
        self.pending_starts = later;
        for start in now {
            let q = start.plugin;
            match self.start_instances(start.instances) {
                Ok(()) => match start.previous {
                    // The previous configuration runs: a reload with the same new one tries
                    // it again.
                    Some((previous, used)) if used.load(Ordering::Acquire) => {
                        self.plugins[q] = Some(previous);
                    }
                    _ => tracing::info!("Reload: '{}' started", self.name(q)),
                },
                Err(e) => {
                    // Its routes fill lanes nobody empties: drop them (what they hold is lost).
                    tracing::error!(
                        "Reload: '{}' cannot start: {e}; messages for it are dropped",
                        self.name(q)
                    );
                    self.retire(q);
                    self.vacate.push(q);
                }
            }
        }
    }
}

/// Waits (bounded) for every shard's answer; the first error, if any.
fn wait_acks(acks: Vec<mpsc::Receiver<Result<(), String>>>) -> Result<(), String> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut error = None;
    for rx in acks {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = error.or(Some(e)),
            Err(_) => error = error.or(Some("it did not start in time".to_string())),
        }
    }
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{consumer, coordinator, decoder, filter, input, output, some};
    use super::*;
    use crate::plugin::{InputPlacement, PipelineControl};

    fn reloading(plugins: Vec<PluginInfo>, global: GlobalConfig) -> Reloader {
        Reloader(Box::new(move || {
            Ok(Pipeline {
                global: global.clone(),
                plugins: plugins.clone(),
                control: PipelineControl::new(),
            })
        }))
    }

    /// A changed output is swapped on every router in one step, and its successor starts only
    /// once the old instance has finished (the same file never has two writers).
    #[test]
    fn a_changed_output_starts_after_the_old_one_finished() {
        let old = with(output("Out", Placement::Single), "a", &[]);
        let (mut coord, shards) = coordinator(2, vec![old], 4);
        let (c, _lanes) = consumer(0, &[(0, 0), (1, 0)], &[0]);
        let life = Arc::clone(&c.instances[0].1);
        coord.consumers.push(c);
        let served = shards.serve();
        let new = vec![with(output("Out", Placement::Single), "b", &[])];
        coord.on_reload(reloading(new, GlobalConfig::default()));
        coord.reload();
        assert_eq!(coord.pending_starts.len(), 1);
        let q = coord.pending_starts[0].plugin;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !life.retire.load(Ordering::Acquire) && Instant::now() < deadline {
            coord.advance_retirements();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(life.retire.load(Ordering::Acquire), "told to finish");
        coord.advance_retirements();
        assert_eq!(coord.pending_starts.len(), 1, "waits for the old one");
        life.finished.store(true, Ordering::Release);
        coord.advance_retirements();
        assert!(coord.pending_starts.is_empty());
        assert!(coord.plugins[0].is_none());
        assert_eq!(coord.plugins[q].as_ref().unwrap().section, "b");
        let log = served.stop();
        let swap = format!("CloseRoutes(0 -> {q})");
        assert_eq!(log.iter().filter(|c| **c == swap).count(), 2, "{log:?}");
        let swapped = log.iter().rposition(|c| *c == swap).unwrap();
        let started = log.iter().position(|c| c == "StartFilter(Out)").unwrap();
        assert!(swapped < started, "{log:?}");
    }

    #[test]
    fn a_refused_reload_changes_nothing() {
        let old = with(output("Out", Placement::Single), "a", &[]);
        let (mut coord, shards) = coordinator(1, vec![old], 4);
        let served = shards.serve();
        let mut global = GlobalConfig::default();
        global.batch_size += 1;
        let new = vec![with(output("Out", Placement::Single), "b", &[])];
        coord.on_reload(reloading(new, global));
        coord.reload();
        coord.on_reload(Reloader(Box::new(|| Err("a typo".to_string()))));
        coord.reload();
        assert!(coord.retiring.is_empty() && coord.pending_starts.is_empty());
        assert_eq!(coord.plugins[0].as_ref().unwrap().section, "a");
        assert!(served.stop().is_empty(), "no command was sent");
    }

    fn with(mut info: PluginInfo, section: &str, uses: &[&str]) -> PluginInfo {
        info.section = section.to_string();
        info.uses = uses.iter().map(|u| u.to_string()).collect();
        info
    }

    #[test]
    fn plugins_are_compared_by_name_and_options_and_through_what_they_use() {
        let running = some(vec![
            with(decoder("Dec"), "a", &[]),
            with(input("In", InputPlacement::EveryShard), "x", &["Dec"]),
            with(input("Other", InputPlacement::EveryShard), "y", &[]),
            with(filter("F", Placement::Single), "m1", &[]),
            with(output("Gone", Placement::Single), "o", &[]),
            with(output("Same", Placement::Single), "s", &[]),
        ]);
        let new = vec![
            with(decoder("Dec"), "b", &[]),
            with(input("In", InputPlacement::EveryShard), "x", &["Dec"]),
            with(input("Other", InputPlacement::EveryShard), "y", &[]),
            with(filter("F", Placement::Single), "m2", &[]),
            with(output("Same", Placement::Single), "s", &[]),
            with(output("New", Placement::Single), "n", &[]),
        ];
        let d = diff(&running, &new);
        assert_eq!(d.removed, [4]);
        assert_eq!(d.added, [5]);
        // The decoder changed, so did the input using it.
        assert_eq!(d.changed, [(0, 0), (1, 1), (3, 3)]);
        assert_eq!(d.unchanged, 2);
        assert!(
            diff(
                &running,
                &running.iter().flatten().cloned().collect::<Vec<_>>()
            )
            .is_empty()
        );
    }

    #[test]
    fn a_name_taken_by_another_kind_of_plugin_is_a_removal_and_an_addition() {
        let running = some(vec![with(output("X", Placement::Single), "o", &[])]);
        let new = vec![with(filter("X", Placement::Single), "f", &[])];
        let d = diff(&running, &new);
        assert_eq!((d.removed, d.added, d.changed), (vec![0], vec![0], vec![]));
    }

    #[test]
    fn run_time_filters_are_not_part_of_the_configuration() {
        let mut running = some(vec![with(filter("F", Placement::Single), "m", &[])]);
        running.push(Some(with(filter("Manager-a", Placement::Single), "", &[])));
        running.push(None);
        let new = vec![with(filter("F", Placement::Single), "m", &[])];
        assert!(diff(&running, &new).is_empty());
    }

    #[test]
    fn a_global_change_is_named() {
        let old = GlobalConfig::default();
        let mut new = old.clone();
        assert!(global_changes(&old, &new).is_empty());
        new.ring_capacity += 1;
        new.base_dir = "/elsewhere".into();
        assert_eq!(global_changes(&old, &new), ["base_dir", "ring_capacity"]);
    }
}

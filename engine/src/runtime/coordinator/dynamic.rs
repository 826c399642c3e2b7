//! Filters that come and go while traffic flows: the coordinator's side of
//! [`PipelineControl`](crate::runtime::PipelineControl).
//!
//! Filters loaded at run time take the plugin slots reserved after the configured plugins; a
//! slot is free while it holds no plugin and no retirement. Loading creates the lanes, has the
//! home shards build the instance, and only then adds the route to every router shard. Taking a
//! filter or output out (unloaded, or terminated) is a **retirement**: every router shard drops
//! the route first; then its instances are told to finish what their lanes hold; once they have,
//! its lanes and — for a run-time filter — its slot are released.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hekate_config::Category;

use super::placement::{ConsumerInfo, ConsumerPlan, Mesh};
use super::{Coordinator, Retirement};
use crate::plugin::Built;
use crate::plugin::{ControlRequest, DynamicFilter};
use crate::runtime::layout::format_cores;
use crate::runtime::pipeline::PluginInfo;
use crate::runtime::shard::ShardCommand;
use hekate_model::message::{Field, Message};

/// The first free slot for a run-time filter: no plugin in it and none retiring from it.
fn free_slot(
    plugins: &[Option<PluginInfo>],
    first_dynamic: usize,
    retiring: &[Retirement],
    burnt: &[usize],
) -> Option<usize> {
    (first_dynamic..plugins.len()).find(|&p| {
        plugins[p].is_none() && !retiring.iter().any(|r| r.plugin == p) && !burnt.contains(&p)
    })
}

/// The slot of the run-time filter called `name`.
fn dynamic_slot(plugins: &[Option<PluginInfo>], first_dynamic: usize, name: &str) -> Option<usize> {
    (first_dynamic..plugins.len()).find(|&p| plugins[p].as_ref().is_some_and(|i| i.name == name))
}

/// Moves each retirement on by what the shards did since: once every one of `shards` router
/// shards dropped the routes, the instances are told to finish; returns the plugins whose
/// instances all have (or that have no instances left).
fn progress(retiring: &mut [Retirement], consumers: &[ConsumerInfo], shards: usize) -> Vec<usize> {
    let mut finished = Vec::new();
    for r in retiring {
        let Some(c) = consumers.iter().find(|c| c.plugin == r.plugin) else {
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
    finished
}

impl Coordinator {
    /// Carries out the queued requests to load and unload filters.
    pub(super) fn serve_requests(&mut self) {
        for request in self.requests.take_requests() {
            match request {
                ControlRequest::Load(filter) => self.load(filter),
                ControlRequest::Unload { name } => {
                    match dynamic_slot(&self.plugins, self.first_dynamic, &name) {
                        Some(p) => {
                            tracing::info!("Unloading filter '{name}'");
                            self.retire(p);
                        }
                        None => tracing::warn!("Cannot unload filter '{name}': it is not running"),
                    }
                }
            }
        }
    }

    /// Starts a filter while traffic flows: lanes from every shard, the instance built on its
    /// home shard, then its route added to every router shard.
    fn load(&mut self, filter: DynamicFilter) {
        let Some(p) = free_slot(
            &self.plugins,
            self.first_dynamic,
            &self.retiring,
            &self.burnt,
        ) else {
            self.load_failed(&filter, "no free plugin slot is left".to_string());
            return;
        };
        let shards = self.layout.workers.len();
        let placement = filter.plugin.placement();
        let homes = self.homes.for_consumer(placement);
        let built = Built::Filter(Arc::clone(&filter.plugin));
        let mesh = Mesh {
            shards,
            ring_capacity: self.ring_capacity,
            spaces: &self.spaces,
        };
        let plan: ConsumerPlan = mesh.plan(
            p,
            &filter.name,
            &built,
            &filter.matcher,
            &filter.signer,
            placement,
            hekate_config::FullAction::Block,
            homes.clone(),
        );
        for s in 0..shards {
            self.command(s, ShardCommand::ResetCounters(p));
        }
        let started = self.start_instances(plan.instances);
        if let Err(e) = started {
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
        tracing::info!(
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
            full_action: hekate_config::FullAction::Block,
            buffering: None,
            section: String::new(),
            uses: Vec::new(),
        });
        self.consumers.push(plan.info);
    }

    /// A filter could not start: say so, remove its files, and announce it as Heka's sandbox
    /// manager does, with a `heka.sandbox-terminated` message naming the plugin that asked.
    fn load_failed(&mut self, filter: &DynamicFilter, error: String) {
        tracing::warn!("Cannot load filter '{}': {error}", filter.name);
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
    pub(super) fn retire(&mut self, plugin: usize) {
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
    pub(super) fn advance_retirements(&mut self) {
        let shards = self.layout.workers.len();
        for p in progress(&mut self.retiring, &self.consumers, shards) {
            self.retiring.retain(|r| r.plugin != p);
            self.consumers.retain(|c| c.plugin != p);
            if p >= self.first_dynamic
                && !self.vacate.contains(&p)
                && let Some(info) = self.plugins[p].take()
            {
                tracing::info!("Filter '{}' removed", info.name);
                self.requests.forget(&info.name);
            }
            self.retired(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::{consumer, coordinator, dynamic_filter, filter, some};
    use super::*;
    use crate::plugin::Placement;

    fn retirement(plugin: usize) -> Retirement {
        Retirement {
            plugin,
            removed: Arc::new(AtomicUsize::new(0)),
            released: false,
        }
    }

    #[test]
    fn a_slot_is_free_when_empty_and_not_retiring() {
        let mut plugins = some(vec![filter("Manager", Placement::Single)]);
        plugins.extend([None, None, None]);
        assert_eq!(free_slot(&plugins, 1, &[], &[]), Some(1));
        plugins[1] = Some(filter("Manager-a", Placement::Single));
        assert_eq!(free_slot(&plugins, 1, &[], &[]), Some(2));
        assert_eq!(free_slot(&plugins, 1, &[retirement(2)], &[]), Some(3));
        assert_eq!(
            free_slot(&plugins, 1, &[retirement(2), retirement(3)], &[]),
            None
        );
        // Configured plugins are never taken for run-time filters.
        assert_eq!(free_slot(&plugins[..1], 1, &[], &[]), None);
    }

    #[test]
    fn only_run_time_filters_are_found_by_name() {
        let mut plugins = some(vec![filter("Counter", Placement::Single)]);
        plugins.extend([None, Some(filter("Manager-a", Placement::Single))]);
        assert_eq!(dynamic_slot(&plugins, 1, "Manager-a"), Some(2));
        assert_eq!(dynamic_slot(&plugins, 1, "Counter"), None);
        assert_eq!(dynamic_slot(&plugins, 1, "Manager-b"), None);
    }

    #[test]
    fn a_retirement_waits_for_every_router_then_for_every_instance() {
        let (c, _lanes) = consumer(4, &[(0, 0), (1, 1)], &[0, 1]);
        let consumers = [c];
        let mut retiring = [retirement(4)];
        assert!(progress(&mut retiring, &consumers, 2).is_empty());
        retiring[0].removed.fetch_add(1, Ordering::AcqRel);
        assert!(progress(&mut retiring, &consumers, 2).is_empty());
        let told = |c: &ConsumerInfo| {
            c.instances
                .iter()
                .filter(|(_, l)| l.retire.load(Ordering::Acquire))
                .count()
        };
        assert_eq!(told(&consumers[0]), 0, "a router still routes to it");
        retiring[0].removed.fetch_add(1, Ordering::AcqRel);
        assert!(progress(&mut retiring, &consumers, 2).is_empty());
        assert!(retiring[0].released);
        assert_eq!(told(&consumers[0]), 2);
        consumers[0].instances[0]
            .1
            .finished
            .store(true, Ordering::Release);
        assert!(progress(&mut retiring, &consumers, 2).is_empty());
        consumers[0].instances[1]
            .1
            .finished
            .store(true, Ordering::Release);
        assert_eq!(progress(&mut retiring, &consumers, 2), [4]);
    }

    #[test]
    fn a_retirement_of_a_plugin_without_instances_ends_at_once() {
        let mut retiring = [retirement(7)];
        assert_eq!(progress(&mut retiring, &[], 2), [7]);
    }

    #[test]
    fn a_loaded_filter_takes_a_slot_which_unloading_frees() {
        let (mut coord, shards) = coordinator(2, vec![filter("Manager", Placement::Single)], 2);
        let mut shard = shards.serve();
        coord
            .requests
            .load(dynamic_filter("Manager-a", "Manager"))
            .unwrap();
        coord.serve_requests();
        assert_eq!(coord.plugins[1].as_ref().unwrap().name, "Manager-a");
        assert_eq!(coord.consumers.len(), 1);
        assert_eq!(coord.consumers[0].lanes.len(), 2, "a lane from each shard");
        coord
            .requests
            .load(dynamic_filter("Manager-b", "Manager"))
            .unwrap();
        coord.serve_requests();
        assert_eq!(coord.plugins[2].as_ref().unwrap().name, "Manager-b");

        // Full: the third is refused, announced and forgotten.
        coord
            .requests
            .load(dynamic_filter("Manager-c", "Manager"))
            .unwrap();
        coord.serve_requests();
        assert!(!coord.requests.is_loaded("Manager-c"));
        let announced = shard.injected();
        assert_eq!(announced.len(), 1);
        let m = Message::decode_bytes(&announced[0]).unwrap();
        assert_eq!(m.r#type.as_deref(), Some("heka.sandbox-terminated"));

        coord.requests.unload("Manager", "Manager-a").unwrap();
        coord.serve_requests();
        // The slot stays taken until the routers dropped the route and the instance finished.
        assert_eq!(free_slot(&coord.plugins, 1, &coord.retiring, &[]), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while coord.plugins[1].is_some() && Instant::now() < deadline {
            coord.advance_retirements();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(coord.plugins[1].is_none());
        assert!(!coord.requests.is_loaded("Manager-a"));
        assert_eq!(coord.consumers.len(), 1);
        assert_eq!(free_slot(&coord.plugins, 1, &coord.retiring, &[]), Some(1));
        let log = shard.stop();
        assert_eq!(
            log.iter()
                .filter(|c| c.starts_with("StartFilter"))
                .collect::<Vec<_>>(),
            ["StartFilter(Manager-a)", "StartFilter(Manager-b)"]
        );
        assert!(log.contains(&"RemoveRoutes(1)".to_string()));
    }

    #[test]
    fn a_filter_a_shard_cannot_start_leaves_its_slot_free() {
        let (mut coord, shards) = coordinator(1, vec![filter("Manager", Placement::Single)], 1);
        let mut shard = shards.refusing().serve();
        coord
            .requests
            .load(dynamic_filter("Manager-a", "Manager"))
            .unwrap();
        coord.serve_requests();
        assert!(coord.plugins[1].is_none());
        assert!(coord.consumers.is_empty());
        assert!(!coord.requests.is_loaded("Manager-a"));
        let m = Message::decode_bytes(&shard.injected()[0]).unwrap();
        assert!(
            m.payload
                .as_deref()
                .unwrap()
                .contains("loading Manager-a failed"),
            "{m:?}"
        );
        shard.stop();
    }
}

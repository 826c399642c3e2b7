//! Placement: which shards run each plugin, and the lanes planned to feed filters and outputs.
//!
//! An input runs on every shard or on one. A *per-shard* filter or output has an instance on
//! every shard, fed by that shard's router alone (one lane each); a *single* one has one
//! instance on a home shard, fed by every shard's router (one lane per shard). Home shards are
//! dealt round robin, in config order, to inputs that run on one shard and to single filters and
//! outputs alike — and later to filters loaded at run time — so that they spread over the
//! workers. Planning creates lanes, doorbells and routes, nothing that runs: the shards get
//! their share when they start (or, for a filter loaded at run time, by command).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::mesh::{Doorbell, LaneCounters, Route, lane};
use crate::plugin::{Built, InputPlacement, Placement};
use crate::runtime::pipeline::PluginInfo;
use crate::runtime::runner::Lifecycle;
use crate::runtime::shard::{InputPlan, InstanceKind, InstancePlan};
use hekate_config::FullAction;
use hekate_model::matcher::MatcherSpec;

/// A filter or output as the coordinator sees it: its lanes and what its instances hold.
#[derive(Debug)]
pub(super) struct ConsumerInfo {
    pub(super) plugin: usize,
    /// (source shard, home shard, counters) per lane.
    pub(super) lanes: Vec<(usize, usize, Arc<LaneCounters>)>,
    /// (home shard, messages held) per instance.
    pub(super) held: Vec<(usize, Arc<AtomicU64>)>,
    /// (doorbell, lifecycle) per instance.
    pub(super) instances: Vec<(Arc<Doorbell>, Arc<Lifecycle>)>,
}

/// Deals home shards round robin to plugins that run on one shard.
#[derive(Debug, Clone)]
pub(super) struct Homes {
    shards: usize,
    next: usize,
}

impl Homes {
    /// The first home is shard 0.
    pub(super) fn new(shards: usize) -> Self {
        Self { shards, next: 0 }
    }

    fn deal(&mut self) -> usize {
        let home = self.next % self.shards;
        self.next += 1;
        home
    }

    /// The shards an input runs on.
    pub(super) fn for_input(&mut self, placement: InputPlacement) -> Vec<usize> {
        match placement {
            InputPlacement::EveryShard => (0..self.shards).collect(),
            InputPlacement::OneShard => vec![self.deal()],
        }
    }

    /// The shards a filter's or output's instances run on.
    pub(super) fn for_consumer(&mut self, placement: Placement) -> Vec<usize> {
        match placement {
            Placement::PerShard => (0..self.shards).collect(),
            Placement::Single => vec![self.deal()],
        }
    }
}

/// A filter or output planned: its lanes' producing ends go into router shards, its instances
/// onto their home shards.
pub(super) struct ConsumerPlan {
    pub(super) info: ConsumerInfo,
    /// (home shard, instance).
    pub(super) instances: Vec<(usize, InstancePlan)>,
    /// (source shard, route).
    pub(super) routes: Vec<(usize, Route)>,
}

/// What planning a consumer needs to know of the ring mesh.
pub(super) struct Mesh<'a> {
    pub(super) shards: usize,
    pub(super) ring_capacity: usize,
    /// Each shard's doorbell for room in its lanes.
    pub(super) spaces: &'a [Arc<Doorbell>],
}

impl Mesh<'_> {
    /// Lanes, routes and instances for filter or output `plugin`, its instances on `homes`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
        &self,
        plugin: usize,
        name: &str,
        kind: &Built,
        matcher: &MatcherSpec,
        signer: &Option<String>,
        placement: Placement,
        full_action: FullAction,
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
                    Built::Output(_) => route.feeding_output().on_full(name, full_action),
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
                    buffering: None,
                    fallback: None,
                },
            ));
        }
        plan
    }
}

/// The placement of a filter or output (per-shard for anything else).
pub(super) fn consumer_placement(built: &Built) -> Placement {
    match built {
        Built::Filter(f) => f.placement(),
        Built::Output(o) => o.placement(),
        _ => Placement::PerShard,
    }
}

/// What every shard starts with, planned from the configured plugins.
pub(super) struct ShardPlans {
    /// Per shard: the routes of its router.
    pub(super) routes: Vec<Vec<Route>>,
    /// Per shard: the filter and output instances it runs.
    pub(super) instances: Vec<Vec<InstancePlan>>,
    /// Per shard: the inputs it runs.
    pub(super) inputs: Vec<Vec<InputPlan>>,
    /// Every filter and output, as the coordinator follows it.
    pub(super) consumers: Vec<ConsumerInfo>,
    /// The dealer, to go on with filters loaded at run time.
    pub(super) homes: Homes,
}

/// Places every plugin of the pipeline on the shards of `mesh` and plans its lanes.
pub(super) fn plan_shards(plugins: &[PluginInfo], mesh: &Mesh<'_>) -> ShardPlans {
    let shards = mesh.shards;
    let mut plans = ShardPlans {
        routes: (0..shards).map(|_| Vec::new()).collect(),
        instances: (0..shards).map(|_| Vec::new()).collect(),
        inputs: (0..shards).map(|_| Vec::new()).collect(),
        consumers: Vec::new(),
        homes: Homes::new(shards),
    };
    for (p, info) in plugins.iter().enumerate() {
        if let Built::Input(input) = &info.built {
            for s in plans.homes.for_input(input.placement()) {
                plans.inputs[s].push(InputPlan {
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
        // A buffered output is one instance: one queue directory, Heka's layout.
        let placement = if info.buffering.is_some() {
            Placement::Single
        } else {
            consumer_placement(&info.built)
        };
        let homes = plans.homes.for_consumer(placement);
        let plan = mesh.plan(
            p,
            &info.name,
            &info.built,
            matcher,
            signer,
            placement,
            info.full_action,
            homes,
        );
        for (s, route) in plan.routes {
            plans.routes[s].push(route);
        }
        for (home, mut inst) in plan.instances {
            inst.buffering = info.buffering;
            plans.instances[home].push(inst);
        }
        plans.consumers.push(plan.info);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decoder, filter, input, output, spaces};
    use super::*;

    fn plan(plugins: &[PluginInfo], shards: usize) -> ShardPlans {
        let spaces = spaces(shards);
        let mesh = Mesh {
            shards,
            ring_capacity: 4,
            spaces: &spaces,
        };
        plan_shards(plugins, &mesh)
    }

    fn names<T>(per_shard: &[Vec<T>], name: impl Fn(&T) -> String) -> Vec<Vec<String>> {
        per_shard
            .iter()
            .map(|v| v.iter().map(&name).collect())
            .collect()
    }

    #[test]
    fn homes_are_dealt_round_robin_to_one_shard_plugins_only() {
        let mut homes = Homes::new(3);
        assert_eq!(homes.for_consumer(Placement::PerShard), [0, 1, 2]);
        assert_eq!(homes.for_input(InputPlacement::EveryShard), [0, 1, 2]);
        assert_eq!(homes.for_consumer(Placement::Single), [0]);
        assert_eq!(homes.for_input(InputPlacement::OneShard), [1]);
        assert_eq!(homes.for_consumer(Placement::Single), [2]);
        assert_eq!(homes.for_consumer(Placement::Single), [0]);
    }

    #[test]
    fn inputs_run_on_every_shard_or_on_their_home() {
        let plugins = [
            input("Tcp", InputPlacement::EveryShard),
            input("File", InputPlacement::OneShard),
            input("Process", InputPlacement::OneShard),
        ];
        let plans = plan(&plugins, 2);
        assert_eq!(
            names(&plans.inputs, |i| i.name.clone()),
            [vec!["Tcp", "File"], vec!["Tcp", "Process"]]
        );
        assert!(plans.consumers.is_empty());
    }

    #[test]
    fn a_single_filter_has_one_instance_fed_by_a_lane_from_every_shard() {
        let plugins = [
            input("Tcp", InputPlacement::EveryShard),
            filter("Counter", Placement::Single),
            filter("Sandbox", Placement::Single),
        ];
        let plans = plan(&plugins, 3);
        // Homes: shard 0 for Counter, shard 1 for Sandbox.
        assert_eq!(
            names(&plans.instances, |i| i.name.clone()),
            [vec!["Counter"], vec!["Sandbox"], vec![]]
        );
        let counter = &plans.consumers[0];
        assert_eq!(counter.plugin, 1);
        let lanes: Vec<(usize, usize)> = counter.lanes.iter().map(|l| (l.0, l.1)).collect();
        assert_eq!(lanes, [(0, 0), (1, 0), (2, 0)]);
        assert_eq!(plans.instances[0][0].lanes.len(), 3);
        assert_eq!(counter.instances.len(), 1);
        // Every router routes to both filters.
        for routes in &plans.routes {
            let to: Vec<usize> = routes.iter().map(|r| r.plugin).collect();
            assert_eq!(to, [1, 2]);
        }
    }

    #[test]
    fn a_per_shard_output_has_an_instance_per_shard_fed_by_its_own_router() {
        let plugins = [
            input("Tcp", InputPlacement::EveryShard),
            output("File", Placement::PerShard),
        ];
        let plans = plan(&plugins, 2);
        assert_eq!(
            names(&plans.instances, |i| i.name.clone()),
            [vec!["File"], vec!["File"]]
        );
        let file = &plans.consumers[0];
        let lanes: Vec<(usize, usize)> = file.lanes.iter().map(|l| (l.0, l.1)).collect();
        assert_eq!(lanes, [(0, 0), (1, 1)]);
        let held: Vec<usize> = file.held.iter().map(|h| h.0).collect();
        assert_eq!(held, [0, 1]);
        for shard in &plans.instances {
            assert_eq!(shard[0].lanes.len(), 1);
        }
        assert_eq!(plans.routes[0].len(), 1);
        assert_eq!(plans.routes[1].len(), 1);
    }

    #[test]
    fn plugins_without_a_route_get_neither_lanes_nor_instances() {
        let plugins = [
            decoder("Protobuf"),
            input("Tcp", InputPlacement::EveryShard),
            filter("Counter", Placement::Single),
        ];
        let plans = plan(&plugins, 1);
        assert_eq!(plans.consumers.len(), 1);
        assert_eq!(plans.consumers[0].plugin, 2);
        assert_eq!(plans.inputs[0][0].plugin, 1);
    }

    #[test]
    fn the_dealer_goes_on_where_start_left_it() {
        let plugins = [
            input("File", InputPlacement::OneShard),
            filter("Counter", Placement::Single),
        ];
        let mut plans = plan(&plugins, 3);
        assert_eq!(plans.homes.for_consumer(Placement::Single), [2]);
    }
}

//! How plugins act on the running pipeline. [`PipelineControl`] is the handle a plugin (Heka's
//! SandboxManagerFilter) uses to ask the coordinator to load or unload a filter; a
//! [`ShardEvent`] is what a shard tells the coordinator about its plugins (a termination, an
//! input that may not exit asking for shutdown).
//!
//! A request only queues work; the coordinator carries it out between its other duties, without
//! stopping traffic:
//!
//! - **load**: the coordinator takes a free plugin slot (the runtime reserves as many as the
//!   plugins asking for them may load, see [`FilterPlugin::dynamic_filters`]), creates one lane
//!   from every shard's router to the filter's home shard (or one per shard for a per-shard
//!   filter), asks the home shard to build the filter there — a Lua sandbox is `!Send`, so it is
//!   created on the core that runs it — and, once it is running, adds the filter's matcher to
//!   every router shard. From then on each shard routes matching messages to it.
//! - **unload**: every router shard drops the filter's route; once all have, the filter
//!   processes what its lanes still hold, runs its shutdown (preserving data), and its lanes and
//!   slot are released.
//!
//! A filter that terminates (a sandbox that broke a limit) goes the same way, except that what
//! its lanes still hold is counted as dropped.
//!
//! A plugin that shows the pipeline's health (DashboardOutput) asks through the same handle for
//! reports more often than `report_interval` ([`PipelineControl::report_every`]) and for objects
//! it shares with the coordinator ([`PipelineControl::shared`]: the telemetry board the
//! coordinator publishes its samples to, `Telemetry::of`).
//!
//! [`FilterPlugin::dynamic_filters`]: crate::plugin::FilterPlugin::dynamic_filters

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::kinds::FilterPlugin;
use hekate_model::matcher::MatcherSpec;

/// A filter to start while the pipeline runs.
#[derive(Clone)]
pub struct DynamicFilter {
    /// Its name, unique in the pipeline (SandboxManagerFilter: `<Manager>-<Name>`).
    pub name: String,
    /// The plugin that asked for it; only that plugin may unload it.
    pub owner: String,
    /// The Heka type name, for reports (`SandboxFilter`).
    pub type_name: String,
    /// The built filter.
    pub plugin: Arc<dyn FilterPlugin>,
    /// Its compiled `message_matcher`.
    pub matcher: MatcherSpec,
    /// Its `message_signer`.
    pub signer: Option<String>,
    /// Files written for it, removed when it cannot start.
    pub files: Vec<PathBuf>,
}

impl fmt::Debug for DynamicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicFilter")
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

/// What shards tell the coordinator.
#[derive(Debug)]
pub(crate) enum ShardEvent {
    /// A filter or output instance stopped for good.
    Terminated {
        plugin: usize,
        reason: String,
        can_exit: bool,
    },
    /// A plugin that may not exit has ended: the pipeline stops.
    Shutdown { reason: String },
    /// Messages a plugin had accepted were lost while it closed (a buffered output whose
    /// queue disk was full): `hekate run` says so and exits non-zero.
    Lost { reason: String },
}

/// A queued request.
#[derive(Debug)]
pub(crate) enum ControlRequest {
    Load(DynamicFilter),
    Unload { name: String },
}

#[derive(Debug, Default)]
struct Shared {
    requests: Vec<ControlRequest>,
    /// Every dynamic filter requested and not yet gone: name → owner.
    loaded: BTreeMap<String, String>,
    /// The shortest report period a plugin asked for.
    report_every: Option<Duration>,
    /// Objects shared with the coordinator, one per type, created by the first to ask.
    shared: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

/// The handle through which plugins change the filters of the running pipeline. Cheap to clone;
/// every clone talks to the same coordinator.
#[derive(Debug, Clone, Default)]
pub struct PipelineControl {
    shared: Arc<Mutex<Shared>>,
}

impl PipelineControl {
    /// A handle with nothing requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `filter` to be started. Refused when a dynamic filter of that name is already
    /// loaded or being loaded. Whether it then starts is logged by the coordinator, which also
    /// injects a `heka.sandbox-terminated` message naming the owner when it cannot.
    pub fn load(&self, filter: DynamicFilter) -> Result<(), String> {
        let mut s = self.lock();
        if s.loaded.contains_key(&filter.name) {
            return Err(format!("{} is already running", filter.name));
        }
        s.loaded.insert(filter.name.clone(), filter.owner.clone());
        s.requests.push(ControlRequest::Load(filter));
        Ok(())
    }

    /// Asks for the dynamic filter `name`, loaded by `owner`, to be stopped and removed.
    pub fn unload(&self, owner: &str, name: &str) -> Result<(), String> {
        let mut s = self.lock();
        match s.loaded.get(name) {
            Some(o) if o == owner => {
                s.requests.push(ControlRequest::Unload {
                    name: name.to_string(),
                });
                Ok(())
            }
            Some(_) => Err(format!("{name} was not loaded by {owner}")),
            None => Err(format!("{name} is not running")),
        }
    }

    /// Whether a dynamic filter of that name is loaded (or being loaded).
    pub fn is_loaded(&self, name: &str) -> bool {
        self.lock().loaded.contains_key(name)
    }

    /// The dynamic filters `owner` loaded that still run (or are starting).
    pub fn loaded_by(&self, owner: &str) -> Vec<String> {
        self.lock()
            .loaded
            .iter()
            .filter(|(_, o)| *o == owner)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Asks for a `heka.all-report` message at least every `period` (DashboardOutput's
    /// `ticker_interval`, as Heka's dashboard triggers the reports it shows). The shortest
    /// period asked for wins, and `report_interval` when it is shorter; asked for while the
    /// pipeline is built, it holds from the start.
    pub fn report_every(&self, period: Duration) {
        let period = period.max(Duration::from_secs(1));
        let mut s = self.lock();
        s.report_every = Some(s.report_every.map_or(period, |p| p.min(period)));
    }

    /// The object of type `T` that the plugins of this pipeline and the coordinator share,
    /// created by the first to ask. The coordinator looks at the ones it knows once the
    /// pipeline is built (the telemetry board: asked for, it is published to from the start,
    /// also without `http_address`).
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let object = Arc::clone(
            self.lock()
                .shared
                .entry(TypeId::of::<T>())
                .or_insert_with(|| Arc::new(T::default())),
        );
        object
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("entries are keyed by their type"))
    }

    /// The coordinator's side: the report period plugins asked for.
    pub(crate) fn requested_report_period(&self) -> Option<Duration> {
        self.lock().report_every
    }

    /// The coordinator's side: the shared object of type `T`, if a plugin asked for it.
    pub(crate) fn shared_if_asked<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let object = self.lock().shared.get(&TypeId::of::<T>()).cloned()?;
        object.downcast::<T>().ok()
    }

    /// The coordinator's side: every request queued so far.
    pub(crate) fn take_requests(&self) -> Vec<ControlRequest> {
        std::mem::take(&mut self.lock().requests)
    }

    /// The coordinator's side: `name` is gone (unloaded, terminated or failed to start).
    pub(crate) fn forget(&self, name: &str) {
        self.lock().loaded.remove(name);
    }

    /// Whether requests are waiting.
    pub(crate) fn has_requests(&self) -> bool {
        !self.lock().requests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Filter, Placement, PluginContext, PluginError};

    #[derive(Debug)]
    struct Nothing;
    impl FilterPlugin for Nothing {
        fn placement(&self) -> Placement {
            Placement::Single
        }
        fn new_filter(&self, _ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
            Err(PluginError::Other("never built".into()))
        }
    }

    fn filter(name: &str, owner: &str) -> DynamicFilter {
        DynamicFilter {
            name: name.into(),
            owner: owner.into(),
            type_name: "SandboxFilter".into(),
            plugin: Arc::new(Nothing),
            matcher: MatcherSpec::parse("TRUE").unwrap(),
            signer: None,
            files: Vec::new(),
        }
    }

    #[test]
    fn the_shortest_report_period_wins_and_every_clone_shares_one_object_per_type() {
        let c = PipelineControl::new();
        assert_eq!(c.requested_report_period(), None);
        c.report_every(Duration::from_secs(5));
        c.clone().report_every(Duration::from_secs(2));
        c.report_every(Duration::from_secs(9));
        assert_eq!(c.requested_report_period(), Some(Duration::from_secs(2)));
        c.report_every(Duration::ZERO);
        assert_eq!(c.requested_report_period(), Some(Duration::from_secs(1)));
        assert!(c.shared_if_asked::<Mutex<u32>>().is_none());
        let board = c.clone().shared::<Mutex<u32>>();
        *board.lock().unwrap() = 7;
        assert_eq!(*c.shared::<Mutex<u32>>().lock().unwrap(), 7);
        assert!(Arc::ptr_eq(&board, &c.shared_if_asked().unwrap()));
        assert!(c.shared_if_asked::<Mutex<u64>>().is_none());
    }

    #[test]
    fn names_are_unique_and_owned() {
        let c = PipelineControl::new();
        c.load(filter("M-a", "M")).unwrap();
        assert!(c.load(filter("M-a", "M")).is_err());
        c.load(filter("N-a", "N")).unwrap();
        assert_eq!(c.loaded_by("M"), ["M-a"]);
        assert!(c.unload("N", "M-a").is_err());
        assert!(c.unload("M", "M-b").is_err());
        c.unload("M", "M-a").unwrap();
        assert_eq!(c.take_requests().len(), 3);
        assert!(!c.has_requests());
        c.forget("M-a");
        assert!(!c.is_loaded("M-a"));
        assert!(c.is_loaded("N-a"));
    }
}

//! Plugins that meet by name: one plugin *provides* an object under its section name (Heka's
//! StatAccumInput provides the accumulator), others *join* it by the name their config gives
//! (StatsdInput's and StatFilter's `stat_accum_name`). Both get the same `Arc`, whatever order
//! the sections are built in; a name that no section provides is a config error at the joining
//! section's option once every plugin is built.
//!
//! The engine knows nothing of what is shared: the object is any `Send + Sync` type of the
//! plugins' choosing. What the shards then do with it is the plugins' business — the rule the
//! statsd plugins follow is **one slot per writer instance** (an instance on each shard writes
//! only its own slot, behind a lock nobody else takes except the owner, once per interval), so
//! no message per item crosses the ring mesh and nothing is contended on the hot path.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hekate_config::{ConfigError, PluginSection};

struct Entry {
    object: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
    provided: bool,
    /// Errors to report if nobody provides the name: one per joining section.
    unmet: Vec<ConfigError>,
}

type Entries = HashMap<String, Entry>;

/// The objects plugins share by name while a pipeline is built.
#[derive(Default)]
pub struct Rendezvous {
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Rendezvous")
            .field("names", &e.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Rendezvous {
    fn get_or_create<T: Default + Send + Sync + 'static>(
        &self,
        name: &str,
        what: &str,
        section: &PluginSection,
        key: &str,
    ) -> Result<(Arc<T>, MutexGuard<'_, Entries>), ConfigError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(name.to_string()).or_insert_with(|| Entry {
            object: Arc::new(T::default()),
            type_name: std::any::type_name::<T>(),
            provided: false,
            unmet: Vec::new(),
        });
        let object = Arc::clone(&entry.object)
            .downcast::<T>()
            .map_err(|_| {
                section.error_at_value(
                    key,
                    format!(
                        "section [{}] wants `{name}` to be {what}, but it is used as something else ({})",
                        section.name(),
                        entry.type_name
                    ),
                )
            })?;
        Ok((object, entries))
    }

    /// The object `section` provides under its own name.
    pub(crate) fn provide<T: Default + Send + Sync + 'static>(
        &self,
        section: &PluginSection,
        what: &str,
    ) -> Result<Arc<T>, ConfigError> {
        let name = section.name();
        let (object, mut entries) = self.get_or_create::<T>(name, what, section, "type")?;
        let entry = entries.get_mut(name).expect("created above");
        entry.provided = true;
        entry.unmet.clear();
        Ok(object)
    }

    /// The object named by `section`'s option `key` (value `name`), provided by another section
    /// (before or after this one).
    pub(crate) fn join<T: Default + Send + Sync + 'static>(
        &self,
        section: &PluginSection,
        key: &str,
        name: &str,
        what: &str,
    ) -> Result<Arc<T>, ConfigError> {
        let (object, mut entries) = self.get_or_create::<T>(name, what, section, key)?;
        let entry = entries.get_mut(name).expect("created above");
        if !entry.provided {
            let error = if section.get(key).is_some() {
                format!(
                    "section [{}] sends to `{name}`, which is not {what} of this config",
                    section.name()
                )
            } else {
                format!(
                    "section [{}] sends to `{name}` (the default `{key}`), which is not {what} of this config; add a [{name}] section or set `{key}`",
                    section.name()
                )
            };
            let error = section.error_at_value(key, error);
            entry.unmet.push(error);
        }
        Ok(object)
    }

    /// The errors of every joined name no section provided.
    pub(crate) fn unmet(&self) -> Vec<ConfigError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values_mut()
            .flat_map(|e| std::mem::take(&mut e.unmet))
            .collect()
    }
}

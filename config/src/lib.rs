//! Heka-compatible TOML configuration for hekate: loading, a typed model, and validation that
//! reports every problem at once.
//!
//! A config is one TOML file or a directory of them (every `*.toml`, in alphabetical order).
//! `%ENV[NAME]` tokens are replaced by environment variables before parsing, and section names
//! that Heka's older TOML parser accepted bare (`[TCP:5565]`) are quoted so that TOML 1.0 accepts
//! them too. The section
//! `[hekate]` (or Heka's `[hekad]`) holds the [`GlobalConfig`]; every other top-level section is
//! a [`PluginSection`]: its name is the instance name, its `type` key (or its name) the plugin
//! type, whose suffix gives the [`Category`].
//!
//! ```toml
//! [hekad]
//! maxprocs = 2
//! worker_cores = [1, 2, 3]
//!
//! [TcpInput]
//! address = ":5565"
//!
//! [counter]
//! type = "CounterFilter"
//! message_matcher = "Type != 'heka.counter-output'"
//! ```
//!
//! Loading ([`Config::load`]) checks what this crate knows by itself: TOML syntax, `%ENV`
//! tokens, the global options, and the types of the common plugin options. Validation
//! ([`Config::validate`]) checks what depends on the plugins a build has, injected as a
//! [`PluginCatalog`] and a [`MatcherCheck`]: unknown types and keys (with the closest known
//! names), `message_matcher` expressions, and references between sections (decoders,
//! splitters, encoders, MultiDecoder `subs`). [`Config::load_and_validate`] does both and
//! returns every problem found as [`ConfigErrors`], each with its file, line and column.
//!
//! A plugin reads its own options with [`PluginSection::options`] into a serde struct; its
//! errors are located like all others. That struct is the only declaration of the plugin's
//! options: this crate lists none (the engine's registry answers [`PluginCatalog::options_of`]
//! from the structs), only the bare names of Heka's plugin types ([`HEKA_TYPES`]), so that a
//! Heka type this build does not provide is told apart from a typo.

#![warn(missing_docs)]

mod catalog;
mod error;
mod global;
mod load;
mod plugin;
mod source;
mod suggest;
mod units;
mod validate;
mod value;

use std::path::Path;
use std::sync::Arc;

pub use catalog::{
    AcceptAllMatchers, DASHBOARD_MATCHER, DEFAULT_INSTANCES, HEKA_TYPES, HekaCatalog, MatcherCheck,
    PluginCatalog, SANDBOX_MANAGER_MATCHER,
};
pub use error::{ConfigError, ConfigErrors};
pub use global::{
    CoordinatorCore, CoreLayout, GLOBAL_OPTIONS, GlobalConfig, LogLevel, os_hostname,
};
pub use plugin::{
    BufferingOptions, Category, CommonOptions, FilterOptions, FullAction, InputOptions,
    OutputOptions, PluginSection, RetryOptions, SplitterOptions,
};
pub use source::SourceFile;
pub use suggest::did_you_mean;
pub use units::{parse_duration, parse_size};

/// A loaded configuration: the global options and every plugin instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `[hekate]` / `[hekad]` section, defaults filled in.
    pub global: GlobalConfig,
    /// Every plugin instance: declared sections in file order, then the default instances
    /// ([`DEFAULT_INSTANCES`]) that no section replaced.
    pub plugins: Vec<PluginSection>,
    sources: Vec<Arc<SourceFile>>,
}

impl Default for Config {
    /// The config of an empty file: default globals and the default instances.
    fn default() -> Self {
        let loaded = load::build(Vec::new(), &env_var, &HekaCatalog);
        Self {
            global: loaded.global,
            plugins: loaded.plugins,
            sources: Vec::new(),
        }
    }
}

fn env_var(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name)
}

impl Config {
    /// Loads a config file, or every `*.toml` file of a directory in alphabetical order.
    ///
    /// Files are merged as Heka merges them: a later file's plugin section replaces an earlier
    /// section of the same name, and a later file's global keys override earlier ones key by
    /// key. Plugin types and keys are not checked against a catalog; use
    /// [`Config::load_and_validate`] for that.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let files = load::read_path(path.as_ref())?;
        Self::finish(load::build(files, &env_var, &HekaCatalog), None)
    }

    /// Loads a config from text; `origin` names it in errors (e.g. a file name or `"<stdin>"`).
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let files = vec![(origin.to_string(), text.to_string())];
        Self::finish(load::build(files, &env_var, &HekaCatalog), None)
    }

    /// Loads a config (as [`Config::load`]) and validates it (as [`Config::validate`]),
    /// returning every problem of both steps at once.
    pub fn load_and_validate(
        path: impl AsRef<Path>,
        catalog: &dyn PluginCatalog,
        matcher: &dyn MatcherCheck,
    ) -> Result<Config, ConfigErrors> {
        let files = load::read_path(path.as_ref())?;
        Self::finish(
            load::build(files, &env_var, catalog),
            Some((catalog, matcher)),
        )
    }

    /// Loads a config from text (as [`Config::from_str`]) and validates it.
    pub fn from_str_and_validate(
        text: &str,
        origin: &str,
        catalog: &dyn PluginCatalog,
        matcher: &dyn MatcherCheck,
    ) -> Result<Config, ConfigErrors> {
        let files = vec![(origin.to_string(), text.to_string())];
        Self::finish(
            load::build(files, &env_var, catalog),
            Some((catalog, matcher)),
        )
    }

    /// The effective configuration as TOML (`hekate run --print-config`): where each part came
    /// from, the global section's keys as the files set them (a later file overrides an earlier
    /// one key by key; `%ENV[NAME]` substituted), then every declared plugin section as it won
    /// the merge. Defaults are not filled in: what is printed loads into the same config.
    pub fn effective_toml(&self) -> String {
        let mut out = String::from("# The effective configuration, from:\n");
        for source in &self.sources {
            out.push_str(&format!("#   {}\n", source.name()));
        }
        let mut global = toml::Table::new();
        for source in &self.sources {
            let Ok(table) = source.text().parse::<toml::Table>() else {
                continue;
            };
            for name in [load::GLOBAL_SECTION, load::HEKAD_ALIAS] {
                if let Some(toml::Value::Table(t)) = table.get(name) {
                    global.extend(t.clone());
                }
            }
        }
        let mut doc = toml::Table::new();
        doc.insert(load::GLOBAL_SECTION.to_string(), toml::Value::Table(global));
        for plugin in self.plugins.iter().filter(|p| !p.is_default_instance()) {
            doc.insert(
                plugin.name().to_string(),
                toml::Value::Table(plugin.values().clone()),
            );
        }
        out.push('\n');
        out.push_str(&toml::to_string(&doc).unwrap_or_default());
        out
    }

    /// Checks the plugin sections against a catalog and a matcher checker: unknown plugin types
    /// and keys (with the closest known names), missing required options, missing or invalid
    /// `message_matcher`s, and references to undefined decoders, splitters and encoders
    /// (including MultiDecoder `subs` and their cycles).
    pub fn validate(
        &self,
        catalog: &dyn PluginCatalog,
        matcher: &dyn MatcherCheck,
    ) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        validate::validate(&self.plugins, catalog, matcher, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(self.sorted(errors))
        }
    }

    /// The plugin instance named `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginSection> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// The plugin instances of one category, in config order.
    pub fn plugins_of(&self, category: Category) -> impl Iterator<Item = &PluginSection> {
        self.plugins
            .iter()
            .filter(move |p| p.category() == category)
    }

    /// The files the config was loaded from, in load order.
    pub fn sources(&self) -> &[Arc<SourceFile>] {
        &self.sources
    }

    fn finish(
        loaded: load::Loaded,
        validation: Option<(&dyn PluginCatalog, &dyn MatcherCheck)>,
    ) -> Result<Config, ConfigErrors> {
        Self::finish_keeping(loaded, validation).map_err(|(errors, _)| errors)
    }

    /// Loads and validates a file, a directory or a text, as [`Config::load_and_validate`];
    /// on failure it also hands back what did load (sections with problems included, globals
    /// with their defaults where a value was refused), for a caller that looks further:
    /// `hekate check` builds those sections too, to list every problem at once. `None` when
    /// nothing could be read.
    pub fn load_and_validate_keeping(
        path: Option<&Path>,
        text: (&str, &str),
        catalog: &dyn PluginCatalog,
        matcher: &dyn MatcherCheck,
    ) -> Result<Config, (ConfigErrors, Option<Box<Config>>)> {
        let files = match path {
            Some(path) => load::read_path(path).map_err(|e| (ConfigErrors::new(e), None))?,
            None => vec![(text.1.to_string(), text.0.to_string())],
        };
        Self::finish_keeping(
            load::build(files, &env_var, catalog),
            Some((catalog, matcher)),
        )
        .map_err(|(errors, config)| (errors, Some(config)))
    }

    fn finish_keeping(
        loaded: load::Loaded,
        validation: Option<(&dyn PluginCatalog, &dyn MatcherCheck)>,
    ) -> Result<Config, (ConfigErrors, Box<Config>)> {
        let config = Config {
            global: loaded.global,
            plugins: loaded.plugins,
            sources: loaded.sources,
        };
        let mut errors = loaded.errors;
        if let Some((catalog, matcher)) = validation {
            validate::validate(&config.plugins, catalog, matcher, &mut errors);
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            let errors = config.sorted(errors);
            Err((errors, Box::new(config)))
        }
    }

    /// Orders errors by file (load order), then line and column.
    fn sorted(&self, mut errors: Vec<ConfigError>) -> ConfigErrors {
        let file_index = |name: &str| {
            self.sources
                .iter()
                .position(|s| s.name() == name)
                .map_or(0, |i| i + 1)
        };
        errors.sort_by_key(|e| {
            (
                file_index(&e.file),
                e.line.unwrap_or(0),
                e.column.unwrap_or(0),
            )
        });
        errors.dedup();
        ConfigErrors::new(errors)
    }
}

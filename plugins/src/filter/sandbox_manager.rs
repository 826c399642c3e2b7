//! SandboxManagerFilter: loads and unloads SandboxFilters while hekate runs, on signed
//! `heka.control.sandbox` messages (reference §6; `hekate sbmgr` sends them).
//!
//! ```toml
//! [SandboxManager]
//! type = "SandboxManagerFilter"
//! message_signer = "ops"
//! max_filters = 10
//!
//! [TcpInput]
//! address = "127.0.0.1:5565"
//!
//! [TcpInput.signer.ops_0]
//! hmac_key = "a shared secret"
//! ```
//!
//! Control messages (Type `heka.control.sandbox`, Timestamp within 5 seconds of now, else
//! discarded and counted as `DiscardedCount`):
//!
//! - load: `Fields[action] = "load"`, `Fields[config]` = a TOML section `[Name]` of
//!   `type = "SandboxFilter"` (its `filename` is ignored), Payload = the Lua source. The filter
//!   runs as `<Manager>-<Name>` (non-word characters → `_`); the manager writes
//!   `<working_directory>/<Manager>-<Name>.toml` and `.lua`, and asks the coordinator to start it:
//!   the coordinator builds the sandbox on the filter's home core and adds its matcher to every
//!   router shard while traffic flows. A load that fails (bad TOML or Lua, a name already
//!   running) removes the files and injects a `heka.sandbox-terminated` message with Field
//!   `plugin` = the manager.
//! - unload: `Fields[action] = "unload"`, `Fields[name] = "Name"`: every router shard stops
//!   routing to it, it finishes what is queued for it, runs its shutdown (preserving data), and
//!   its files are removed. A loaded filter that terminated stops running but keeps its files
//!   (it is loaded again at the next start) until it is unloaded.
//!
//! At start the manager loads again every `<Manager>-*.toml` of its working directory (up to
//! `max_filters`), as soon as the pipeline runs: messages that arrive in the first instant,
//! before they do, are not seen by them.
//!
//! Options: `max_filters` (0: nothing can be loaded), `working_directory` (`sbxmgrs`, under
//! `base_dir`), and `module_directory`, `memory_limit`, `instruction_limit`, `output_limit`
//! (Heka's sandbox defaults), which replace whatever a loaded filter's config says; plus the
//! common filter options. The matcher defaults to `Type == 'heka.control.sandbox'`. Set
//! `message_signer`: control messages that are not signed by it never reach the manager and
//! are counted in its `RejectedCount`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hekate_config::{Config, ConfigError, GlobalConfig, PluginSection, SANDBOX_MANAGER_MATCHER};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, Filter, FilterPlugin, Inject, Placement, PluginContext,
    PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_engine::plugin::{DynamicFilter, PipelineControl};
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{FieldValue, Message, MessageAccess as _};
use hekate_model::writer::now_ns;
use hekate_sandbox::{SandboxConfig, termination_message};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::filter::sandbox::build_plugin;
use crate::sandbox::{ManagedLimits, normalize_name};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxManagerFilter",
    source: include_str!("sandbox_manager.rs"),
    options: options_of::<Options>,
    default_matcher: Some(SANDBOX_MANAGER_MATCHER),
    build,
};

/// Control messages further than this from now are discarded.
const MAX_SKEW: Duration = Duration::from_secs(5);

/// SandboxManagerFilter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// How many filters this manager may run at once.
    #[serde(default)]
    max_filters: usize,
    /// Where loaded scripts and configs are kept; relative to `base_dir`.
    working_directory: Option<String>,
    /// `module_directory` of every loaded filter.
    module_directory: Option<String>,
    /// `memory_limit` of every loaded filter.
    memory_limit: Option<u64>,
    /// `instruction_limit` of every loaded filter.
    instruction_limit: Option<u32>,
    /// `output_limit` of every loaded filter.
    output_limit: Option<u64>,
}

#[derive(Debug)]
struct SandboxManagerPlugin {
    max_filters: usize,
    working_directory: PathBuf,
    limits: ManagedLimits,
    global: GlobalConfig,
    control: PipelineControl,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let control = ctx.control().cloned().ok_or_else(|| {
        section.error_at_key(
            "type",
            format!(
                "[{}]: a SandboxManagerFilter cannot be loaded by another one",
                section.name()
            ),
        )
    })?;
    let global = ctx.global;
    let defaults = SandboxConfig::default();
    let working_directory = {
        let wd = opts.working_directory.as_deref().unwrap_or("sbxmgrs");
        let p = Path::new(wd);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            global.base_dir.join(p)
        }
    };
    Ok(Built::Filter(Arc::new(SandboxManagerPlugin {
        max_filters: opts.max_filters,
        working_directory,
        limits: ManagedLimits {
            script: PathBuf::new(),
            module_directory: opts.module_directory.unwrap_or_else(|| {
                global
                    .share_dir
                    .join("lua_modules")
                    .to_string_lossy()
                    .into_owned()
            }),
            memory_limit: opts.memory_limit.map_or(defaults.memory_limit, |v| {
                usize::try_from(v).unwrap_or(usize::MAX)
            }),
            instruction_limit: opts.instruction_limit.unwrap_or(defaults.instruction_limit),
            output_limit: opts.output_limit.map_or(defaults.output_limit, |v| {
                usize::try_from(v).unwrap_or(usize::MAX)
            }),
        },
        global: global.clone(),
        control,
    })))
}

impl FilterPlugin for SandboxManagerPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn dynamic_filters(&self) -> usize {
        self.max_filters
    }

    fn new_filter(&self, ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
        std::fs::create_dir_all(&self.working_directory).map_err(|e| {
            PluginError::io(
                format!(
                    "cannot create the working directory {}",
                    self.working_directory.display()
                ),
                e,
            )
        })?;
        let manager = SandboxManager {
            name: ctx.name.clone(),
            prefix: normalize_name(&ctx.name),
            hostname: ctx.hostname.clone(),
            max_filters: self.max_filters,
            wd: self.working_directory.clone(),
            limits: self.limits.clone(),
            global: self.global.clone(),
            control: self.control.clone(),
            processed: 0,
            discarded: 0,
        };
        manager.restore();
        Ok(Box::new(manager))
    }
}

struct SandboxManager {
    name: String,
    /// The manager's name, normalized: the prefix of its filters' names and files.
    prefix: String,
    hostname: String,
    max_filters: usize,
    wd: PathBuf,
    limits: ManagedLimits,
    global: GlobalConfig,
    control: PipelineControl,
    processed: u64,
    /// Control messages refused here (skew, unknown action, over max_filters, failed loads).
    discarded: u64,
}

fn string_field(view: &impl hekate_model::message::MessageAccess, name: &str) -> Option<String> {
    match view.field_value(name.as_bytes(), 0, 0)? {
        FieldValue::String(s) | FieldValue::Bytes(s) => {
            Some(String::from_utf8_lossy(s).into_owned())
        }
        _ => None,
    }
}

impl SandboxManager {
    fn full_name(&self, name: &str) -> String {
        format!("{}-{}", self.prefix, normalize_name(name))
    }

    fn files(&self, full: &str) -> (PathBuf, PathBuf) {
        (
            self.wd.join(format!("{full}.toml")),
            self.wd.join(format!("{full}.lua")),
        )
    }

    fn remove_files(&self, full: &str) {
        let (toml, lua) = self.files(full);
        let _ = std::fs::remove_file(toml);
        let _ = std::fs::remove_file(lua);
    }

    /// Builds the filter `full` from its config text (the script is already in place).
    fn dynamic(&self, full: &str, config_text: &str) -> Result<DynamicFilter, String> {
        let config = Config::from_str(config_text, &format!("{full}.toml"))
            .map_err(|e| e.to_string().trim_end().to_string())?;
        let section = first_section(&config)?;
        if section.type_name() != "SandboxFilter" {
            return Err(format!(
                "Plugin must be a SandboxFilter, received {}",
                section.type_name()
            ));
        }
        let (toml_path, lua_path) = self.files(full);
        let limits = ManagedLimits {
            script: lua_path.clone(),
            ..self.limits.clone()
        };
        let built = HashMap::new();
        let ctx = BuildContext::new(&self.global, &built);
        let plugin = build_plugin(section, &ctx, Some(&limits)).map_err(|e| e.to_string())?;
        let expr = section
            .message_matcher()
            .ok_or_else(|| format!("[{}] has no message_matcher", section.name()))?;
        let matcher =
            MatcherSpec::parse(expr).map_err(|e| format!("invalid message_matcher: {e}"))?;
        Ok(DynamicFilter {
            name: full.to_string(),
            owner: self.name.clone(),
            type_name: "SandboxFilter".into(),
            plugin: Arc::new(plugin),
            matcher,
            signer: section.filter().and_then(|f| f.message_signer.clone()),
            files: vec![toml_path, lua_path],
        })
    }

    /// Loads the filters of an earlier run (`<Manager>-*.toml` in the working directory).
    fn restore(&self) {
        let Ok(entries) = std::fs::read_dir(&self.wd) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|f| {
                f.strip_suffix(".toml")
                    .filter(|stem| stem.starts_with(&format!("{}-", self.prefix)))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        for full in names {
            if self.control.loaded_by(&self.name).len() >= self.max_filters {
                tracing::warn!(
                    "Filter '{}': not loading {full} again: max_filters ({}) are running",
                    self.name,
                    self.max_filters
                );
                continue;
            }
            let (toml_path, _) = self.files(&full);
            let loaded = std::fs::read_to_string(&toml_path)
                .map_err(|e| e.to_string())
                .and_then(|text| self.dynamic(&full, &text))
                .and_then(|f| self.control.load(f));
            match loaded {
                Ok(()) => tracing::info!("Filter '{}': loading {full} again", self.name),
                Err(e) => {
                    tracing::warn!("Filter '{}': cannot load {full} again: {e}", self.name);
                    self.remove_files(&full);
                }
            }
        }
    }

    fn load(&mut self, msg: &Delivery<'_>) -> Result<(), String> {
        let config_text =
            string_field(&msg.view, "config").ok_or("the control message has no config field")?;
        let config = Config::from_str(&config_text, "control message")
            .map_err(|e| format!("loadSandbox failed: {}", e.to_string().trim_end()))?;
        let section = first_section(&config)?;
        let full = self.full_name(section.name());
        if self.control.is_loaded(&full) {
            return Err(format!("loadSandbox failed: {full} is already running"));
        }
        let (toml_path, lua_path) = self.files(&full);
        std::fs::write(&toml_path, &config_text)
            .map_err(|e| format!("cannot write {}: {e}", toml_path.display()))?;
        if let Err(e) = std::fs::write(&lua_path, msg.view.payload()) {
            self.remove_files(&full);
            return Err(format!("cannot write {}: {e}", lua_path.display()));
        }
        let result = self
            .dynamic(&full, &config_text)
            .and_then(|f| self.control.load(f));
        if result.is_err() {
            self.remove_files(&full);
        }
        tracing::info!("Filter '{}': loading {full}", self.name);
        result
    }

    fn unload(&mut self, msg: &Delivery<'_>) -> Result<(), String> {
        let name =
            string_field(&msg.view, "name").ok_or("the control message has no name field")?;
        let full = self.full_name(&name);
        let (toml, _) = self.files(&full);
        match self.control.unload(&self.name, &full) {
            Ok(()) => {
                self.remove_files(&full);
                Ok(())
            }
            // A filter that terminated is gone but its files would load it again at the next
            // start: unloading it removes them.
            Err(_) if !self.control.is_loaded(&full) && toml.exists() => {
                self.remove_files(&full);
                tracing::info!(
                    "Filter '{}': {full} was not running; its files were removed",
                    self.name
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn refuse(&mut self, why: std::fmt::Arguments<'_>) {
        self.discarded += 1;
        hekate_engine::plugin::log::warn_limited!("Filter '{}': {why}", self.name);
    }
}

fn first_section(config: &Config) -> Result<&PluginSection, String> {
    config
        .plugins
        .iter()
        .find(|p| !p.is_default_instance())
        .ok_or_else(|| "the config declares no plugin section".to_string())
}

impl Filter for SandboxManager {
    fn process(&mut self, msg: &Delivery<'_>, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        self.processed += 1;
        let skew = now_ns() - msg.view.timestamp();
        if skew.unsigned_abs() >= MAX_SKEW.as_nanos() as u64 {
            self.refuse(format_args!(
                "Discarded control message: {} seconds skew",
                skew / 1_000_000_000
            ));
            return Ok(());
        }
        match string_field(&msg.view, "action").as_deref() {
            Some("load") => {
                let running = self.control.loaded_by(&self.name).len();
                if running >= self.max_filters {
                    let why = format!(
                        "{} attempted to load more than {} filters",
                        self.name, self.max_filters
                    );
                    self.refuse(format_args!("{why}"));
                    return Ok(());
                }
                if let Err(e) = self.load(msg) {
                    self.refuse(format_args!("{e}"));
                    let mut m: Message = termination_message(&self.name, &e);
                    m.hostname = Some(self.hostname.clone());
                    inject.inject(&m)?;
                }
            }
            Some("unload") => {
                if let Err(e) = self.unload(msg) {
                    self.refuse(format_args!("cannot unload: {e}"));
                }
            }
            other => self.refuse(format_args!(
                "Discarded control message: unknown action {other:?}"
            )),
        }
        Ok(())
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int(
            "RunningFilters",
            self.control.loaded_by(&self.name).len() as i64,
            "count",
        );
        sink.int("ProcessMessageCount", self.processed as i64, "count");
        sink.int("DiscardedCount", self.discarded as i64, "count");
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        let p = build_doc_sample(include_str!("sandbox_manager.rs"));
        let m = p
            .plugins
            .iter()
            .find(|p| p.name == "SandboxManager")
            .unwrap();
        let (_, signer) = m.route.as_ref().unwrap();
        assert_eq!(signer.as_deref(), Some("ops"));
    }

    #[test]
    fn unknown_options_are_refused() {
        let e = build(
            "[m]\ntype = \"SandboxManagerFilter\"\nmax_filter = 3\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n",
        )
        .unwrap_err();
        assert!(e.contains("max_filter"), "{e}");
    }
}

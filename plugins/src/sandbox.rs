//! What the Lua sandbox plugins (SandboxInput, SandboxDecoder, SandboxFilter, SandboxEncoder,
//! SandboxOutput and the filters SandboxManagerFilter loads) share: Heka's common sandbox
//! options (reference §5.6), turning them into a [`SandboxConfig`], timing samples and the
//! report fields of §7.1.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `script_type` | `"lua"` | the only script type |
//! | `filename` | required | the Lua script; a relative path is under `share_dir` |
//! | `preserve_data` | false | keep global data across restarts, in `<base_dir>/sandbox_preservation/<name>.data` |
//! | `memory_limit` | 8388608 | bytes of Lua heap |
//! | `instruction_limit` | 1000000 | Lua instructions per call, `string.find`/`match`/`gmatch`/`gsub` matcher steps included (not an input's `process_message`; 0: none) |
//! | `output_limit` | 64512 | bytes of one payload or injected message |
//! | `module_directory` | `<share_dir>/lua_modules` | where `require` looks (`;`-separated) |
//! | `[name.config]` | empty | values `read_config` returns (strings, numbers, booleans) |
//! | `profile` | false | accepted for compatibility; durations are always sampled |
//!
//! Breaking a limit, a Lua error or a fatal status terminates the sandbox: it gets no more
//! calls and a `heka.sandbox-terminated` message is injected (see each plugin for the rest).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, OptionSpec, ProcessError, ReportSink, options_of, without,
};
use hekate_sandbox::{
    ConfigValue, InjectError, PluginType, Sandbox, SandboxConfig, SandboxError, ScriptSource,
    preservation_file_name,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Heka's common sandbox options, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxOptions {
    /// The script language; only "lua".
    #[schemars(extend("default" = "lua"))]
    script_type: Option<String>,
    /// The Lua script; a relative path is under `share_dir`.
    #[schemars(required)]
    filename: Option<String>,
    /// Keep the script's global data across restarts, in
    /// `<base_dir>/sandbox_preservation/<name>.data`.
    #[serde(default)]
    preserve_data: bool,
    /// Bytes of Lua heap the script may use.
    #[schemars(extend("default" = 8388608))]
    memory_limit: Option<u64>,
    /// Lua instructions per call, the steps of `string.find`/`match`/`gmatch`/`gsub`'s pattern
    /// matcher included (not an input's `process_message`; 0: no limit).
    #[schemars(extend("default" = 1000000))]
    instruction_limit: Option<u64>,
    /// Bytes of one payload or injected message.
    #[schemars(extend("default" = 64512))]
    output_limit: Option<u64>,
    /// Where `require` looks (`;`-separated); `<share_dir>/lua_modules` when unset.
    module_directory: Option<String>,
    /// `[name.config]`: the values `read_config` returns (strings, numbers, booleans).
    #[serde(default)]
    #[schemars(schema_with = "crate::common::any_table")]
    config: toml::Table,
    /// Accepted for compatibility, without effect: durations are always sampled.
    #[serde(default)]
    #[allow(dead_code)]
    profile: bool,
    /// Run `timer_event` once more at shutdown (SandboxFilter, SandboxOutput).
    #[serde(default)]
    pub(crate) timer_event_on_shutdown: bool,
    /// Where the filter runs: "single" (one instance, sees every message) or "per_shard" (one
    /// instance per worker core).
    #[schemars(extend("default" = "single"))]
    pub(crate) placement: Option<String>,
}

/// Every `*.lua` file under `dir` (modules in subdirectories too, `a.b` being `a/b.lua`, at
/// most three levels down), in a stable order.
fn lua_files(dir: &Path, depth: u32, found: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            if depth < 3 {
                lua_files(&p, depth + 1, found);
            }
        } else if p.extension().is_some_and(|x| x == "lua") {
            found(&p);
        }
    }
}

/// Limits a SandboxManagerFilter imposes on the filters it loads, whatever they ask for.
#[derive(Debug, Clone)]
pub(crate) struct ManagedLimits {
    /// The script the manager wrote.
    pub(crate) script: PathBuf,
    pub(crate) module_directory: String,
    pub(crate) memory_limit: usize,
    pub(crate) instruction_limit: u32,
    pub(crate) output_limit: usize,
}

/// A sandbox plugin's resolved options: everything needed to build its sandboxes.
#[derive(Debug, Clone)]
pub(crate) struct SandboxSettings {
    /// The script file.
    pub(crate) script: PathBuf,
    /// Limits and environment; `preservation_path` is set per instance by [`Self::config_for`].
    pub(crate) config: SandboxConfig,
    /// `<base_dir>/sandbox_preservation`.
    preservation_dir: PathBuf,
    /// Global `sample_denominator`: one `process_message` call in this many is timed.
    pub(crate) sample_every: u32,
}

impl SandboxSettings {
    /// Reads the sandbox options of `section` for a plugin of type `kind`; `managed` replaces
    /// the script and limits (a filter loaded by SandboxManagerFilter).
    pub(crate) fn from_section(
        section: &PluginSection,
        ctx: &BuildContext<'_>,
        kind: PluginType,
        managed: Option<&ManagedLimits>,
    ) -> Result<(Self, SandboxOptions), ConfigError> {
        let opts: SandboxOptions = section.options()?;
        let name = section.name();
        if let Some(t) = &opts.script_type
            && t != "lua"
        {
            return Err(section.error_at_value(
                "script_type",
                format!("unsupported script type `{t}` in section [{name}]; only \"lua\" is"),
            ));
        }
        for (key, set, allowed) in [
            (
                "timer_event_on_shutdown",
                opts.timer_event_on_shutdown,
                matches!(kind, PluginType::Filter | PluginType::Output),
            ),
            (
                "placement",
                opts.placement.is_some(),
                kind == PluginType::Filter,
            ),
        ] {
            if set && !allowed {
                return Err(section.error_at_key(
                    key,
                    format!("`{key}` is not an option of a {kind} (section [{name}])"),
                ));
            }
        }
        let global = ctx.global;
        let script = match (managed, &opts.filename) {
            (Some(m), _) => m.script.clone(),
            (None, Some(f)) => resolve(&global.share_dir, f),
            (None, None) => {
                return Err(section.error_at_key(
                    "type",
                    format!("section [{name}] needs a `filename`: the Lua script to run"),
                ));
            }
        };
        ctx.reads_file(&script);
        let mut config = SandboxConfig {
            preserve_data: opts.preserve_data,
            hostname: global.hostname.clone(),
            max_process_inject: global.max_process_inject,
            max_timer_inject: global.max_timer_inject,
            module_directory: global
                .share_dir
                .join("lua_modules")
                .to_string_lossy()
                .into_owned(),
            ..SandboxConfig::default()
        };
        if let Some(v) = opts.memory_limit {
            config.memory_limit = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(v) = opts.instruction_limit {
            config.instruction_limit = u32::try_from(v).map_err(|_| {
                section.error_at_value(
                    "instruction_limit",
                    format!(
                        "instruction_limit of section [{name}] is larger than {}",
                        u32::MAX
                    ),
                )
            })?;
        }
        if let Some(v) = opts.output_limit {
            config.output_limit = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(d) = &opts.module_directory {
            config.module_directory = d.clone();
        }
        if let Some(m) = managed {
            config.module_directory = m.module_directory.clone();
            config.memory_limit = m.memory_limit;
            config.instruction_limit = m.instruction_limit;
            config.output_limit = m.output_limit;
        }
        // The modules the script may `require`: a reload sees them change too.
        for dir in config.module_directory.split(';').filter(|d| !d.is_empty()) {
            lua_files(Path::new(dir), 0, &mut |f| ctx.reads_file(f));
        }
        for (key, value) in &opts.config {
            let v = match value {
                toml::Value::String(s) => ConfigValue::String(s.clone()),
                toml::Value::Integer(i) => ConfigValue::Int(*i),
                toml::Value::Float(f) => ConfigValue::Float(*f),
                toml::Value::Boolean(b) => ConfigValue::Bool(*b),
                other => {
                    return Err(section.error_at_value(
                        &format!("config.{key}"),
                        format!(
                            "config value `{key}` of section [{name}] is a {}; read_config only returns strings, numbers and booleans",
                            other.type_str()
                        ),
                    ));
                }
            };
            config.config.insert(key.clone(), v);
        }
        let settings = SandboxSettings {
            script,
            config,
            preservation_dir: global.base_dir.join("sandbox_preservation"),
            sample_every: global.sample_denominator.max(1),
        };
        Ok((settings, opts))
    }

    /// The config of the instance named `instance` (its preservation file is
    /// `<base_dir>/sandbox_preservation/<instance with \W → _>.data`).
    pub(crate) fn config_for(&self, instance: &str) -> SandboxConfig {
        let mut c = self.config.clone();
        if c.preserve_data {
            c.preservation_path =
                Some(self.preservation_dir.join(preservation_file_name(instance)));
        }
        c
    }

    /// Builds the sandbox of the plugin instance named `instance` (plugin name `name`).
    pub(crate) fn sandbox(
        &self,
        kind: PluginType,
        name: &str,
        instance: &str,
    ) -> Result<Sandbox, SandboxError> {
        if self.config.preserve_data {
            let _ = std::fs::create_dir_all(&self.preservation_dir);
        }
        Sandbox::new(
            ScriptSource::File(self.script.clone()),
            kind,
            name,
            self.config_for(instance),
        )
    }

    /// Loads the script once, without preserved data, so that a script that does not compile,
    /// fails in its global code or lacks an entry point is refused with the config, not later.
    pub(crate) fn check(
        &self,
        section: &PluginSection,
        kind: PluginType,
        needs_timer: bool,
    ) -> Result<(), ConfigError> {
        let mut config = self.config.clone();
        config.preserve_data = false;
        let name = section.name();
        let at = |message: String| {
            let key = if section.get("filename").is_some() {
                "filename"
            } else {
                "type"
            };
            section.error_at_value(key, message)
        };
        let sb = Sandbox::new(ScriptSource::File(self.script.clone()), kind, name, config)
            .map_err(|e| {
                at(format!(
                    "the script of section [{name}] cannot be loaded: {e}"
                ))
            })?;
        if kind != PluginType::Input && !sb.has_process_message() {
            return Err(at(format!(
                "the script {} of section [{name}] has no process_message() function",
                self.script.display()
            )));
        }
        if needs_timer && !sb.has_timer_event() {
            return Err(at(format!(
                "section [{name}] sets a ticker_interval but its script {} has no timer_event() function",
                self.script.display()
            )));
        }
        Ok(())
    }
}

/// `path` under `dir` unless absolute.
fn resolve(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Heka's name normalisation: every character that is not a letter, a digit or `_` becomes `_`.
pub(crate) fn normalize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A refusal of the runtime's injector, as the Lua error Heka raises for it.
pub(crate) fn inject_error(e: ProcessError) -> InjectError {
    if e.0.contains("max_message_loops") {
        InjectError::MaxMsgLoops
    } else if e.0.contains("circular reference") {
        InjectError::CircularReference
    } else {
        InjectError::Other(e.0)
    }
}

/// Sampled durations of `process_message` and every `timer_event`, for the report.
#[derive(Debug)]
pub(crate) struct Timing {
    every: u32,
    tick: u32,
    process_samples: u64,
    process_ns: u64,
    timer_samples: u64,
    timer_ns: u64,
}

impl Timing {
    /// Times one `process_message` call in `every` (the first one included).
    pub(crate) fn new(every: u32) -> Self {
        let every = every.max(1);
        Timing {
            every,
            tick: every - 1,
            process_samples: 0,
            process_ns: 0,
            timer_samples: 0,
            timer_ns: 0,
        }
    }

    /// Before a `process_message` call: the start time if this call is sampled.
    #[inline]
    pub(crate) fn start(&mut self) -> Option<Instant> {
        self.tick += 1;
        if self.tick >= self.every {
            self.tick = 0;
            Some(Instant::now())
        } else {
            None
        }
    }

    /// After a `process_message` call.
    #[inline]
    pub(crate) fn end(&mut self, started: Option<Instant>) {
        if let Some(t) = started {
            self.process_samples += 1;
            self.process_ns += t.elapsed().as_nanos() as u64;
        }
    }

    /// After a `timer_event` call that started at `started`.
    pub(crate) fn timer(&mut self, started: Instant) {
        self.timer_samples += 1;
        self.timer_ns += started.elapsed().as_nanos() as u64;
    }
}

fn avg(total: u64, n: u64) -> i64 {
    total.checked_div(n).unwrap_or(0) as i64
}

/// Heka's report fields of a sandbox (reference §7.1).
pub(crate) fn report(sink: &mut dyn ReportSink, sb: &Sandbox, timing: &Timing) {
    let s = sb.stats();
    sink.int("Memory", s.memory as i64, "B");
    sink.int("MaxMemory", s.max_memory as i64, "B");
    sink.int("MaxInstructions", s.max_instructions as i64, "count");
    sink.int("MaxOutput", s.max_output as i64, "B");
    sink.int(
        "ProcessMessageCount",
        s.process_message_count as i64,
        "count",
    );
    sink.int(
        "ProcessMessageFailures",
        s.process_message_failures as i64,
        "count",
    );
    sink.int("InjectMessageCount", s.inject_message_count as i64, "count");
    sink.int(
        "ProcessMessageSamples",
        timing.process_samples as i64,
        "count",
    );
    sink.int("TimerEventSamples", timing.timer_samples as i64, "count");
    sink.int(
        "ProcessMessageAvgDuration",
        avg(timing.process_ns, timing.process_samples),
        "ns",
    );
    sink.int(
        "TimerEventAvgDuration",
        avg(timing.timer_ns, timing.timer_samples),
        "ns",
    );
}

#[cfg(test)]
pub(crate) mod testing {
    //! Scripts on disk for the plugins' tests.

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A fresh directory holding `script` as `<dir>/script.lua`; returns the directory.
    pub(crate) fn script_dir(script: &str) -> PathBuf {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hekate-plugins-sandbox-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("script.lua"), script).unwrap();
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_as_heka_does() {
        assert_eq!(normalize_name("Sbx Mgr-1.x"), "Sbx_Mgr_1_x");
    }

    #[test]
    fn timing_samples_one_in_n_starting_with_the_first() {
        let mut t = Timing::new(3);
        let sampled: Vec<bool> = (0..6)
            .map(|_| {
                let s = t.start();
                let yes = s.is_some();
                t.end(s);
                yes
            })
            .collect();
        assert_eq!(sampled, [true, false, false, true, false, false]);
        assert_eq!(t.process_samples, 2);
    }

    #[test]
    fn refusals_become_heka_errors() {
        assert_eq!(
            inject_error(ProcessError("more than max_message_loops 4".into())),
            InjectError::MaxMsgLoops
        );
        assert_eq!(
            inject_error(ProcessError("x (circular reference: y)".into())),
            InjectError::CircularReference
        );
    }
}

/// The options of SandboxInput, SandboxDecoder and SandboxEncoder (reference §5.6).
pub(crate) fn script_options() -> Vec<OptionSpec> {
    without(
        options_of::<SandboxOptions>(),
        &["timer_event_on_shutdown", "placement"],
    )
}

/// The options of SandboxOutput: those of every sandbox plus `timer_event_on_shutdown`.
pub(crate) fn output_script_options() -> Vec<OptionSpec> {
    without(options_of::<SandboxOptions>(), &["placement"])
}

/// The options of SandboxFilter: those of every sandbox plus `timer_event_on_shutdown` and
/// `placement`.
pub(crate) fn filter_script_options() -> Vec<OptionSpec> {
    options_of::<SandboxOptions>()
}

/// Names the per-shard instances of one sandbox plugin: the first one gets the plugin's name,
/// later ones `<name>-<i>`, so that reports and preserved data tell them apart.
#[derive(Debug, Default)]
pub(crate) struct InstanceNames(AtomicUsize);

impl InstanceNames {
    /// The name of the next instance of plugin `name`.
    pub(crate) fn next(&self, name: &str) -> String {
        match self.0.fetch_add(1, Ordering::Relaxed) {
            0 => name.to_string(),
            i => format!("{name}-{i}"),
        }
    }
}

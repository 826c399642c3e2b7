//! What a sandbox is built from: its script, its plugin type and its limits.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// The kind of Heka plugin a sandbox runs as; it decides which API functions exist and how strict
/// the environment is (reference §5.2, §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PluginType {
    /// `SandboxInput`: `process_message` is the long-running entry point, no instruction limit,
    /// looser environment (`io` and most of `os` available).
    Input,
    /// `SandboxDecoder`.
    Decoder,
    /// `SandboxFilter`.
    Filter,
    /// `SandboxEncoder`.
    Encoder,
    /// `SandboxOutput`: looser environment, cannot inject.
    Output,
}

impl PluginType {
    /// The Heka plugin type name (`SandboxFilter`, ...).
    pub fn heka_name(self) -> &'static str {
        match self {
            PluginType::Input => "SandboxInput",
            PluginType::Decoder => "SandboxDecoder",
            PluginType::Filter => "SandboxFilter",
            PluginType::Encoder => "SandboxEncoder",
            PluginType::Output => "SandboxOutput",
        }
    }

    /// True for the types whose environment is the strict template (no `io`, restricted `os`).
    pub fn is_strict(self) -> bool {
        matches!(
            self,
            PluginType::Decoder | PluginType::Filter | PluginType::Encoder
        )
    }

    /// True when `read_message` and `read_next_field` exist.
    pub fn can_read(self) -> bool {
        self != PluginType::Input
    }

    /// True when `inject_message` exists.
    pub fn can_inject_message(self) -> bool {
        self != PluginType::Output
    }

    /// True when `inject_payload` and `add_to_payload` exist.
    pub fn can_inject_payload(self) -> bool {
        self.is_strict()
    }

    /// True when `write_message` exists.
    pub fn can_write(self) -> bool {
        matches!(self, PluginType::Decoder | PluginType::Encoder)
    }
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.heka_name())
    }
}

/// One value of a sandbox's `config` table, as `read_config` returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// An integer (becomes a Lua number).
    Int(i64),
    /// A float (becomes a Lua number).
    Float(f64),
}

impl From<&str> for ConfigValue {
    fn from(v: &str) -> Self {
        ConfigValue::String(v.to_owned())
    }
}
impl From<String> for ConfigValue {
    fn from(v: String) -> Self {
        ConfigValue::String(v)
    }
}
impl From<bool> for ConfigValue {
    fn from(v: bool) -> Self {
        ConfigValue::Bool(v)
    }
}
impl From<i64> for ConfigValue {
    fn from(v: i64) -> Self {
        ConfigValue::Int(v)
    }
}
impl From<f64> for ConfigValue {
    fn from(v: f64) -> Self {
        ConfigValue::Float(v)
    }
}

/// Where the Lua source of a sandbox comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptSource {
    /// Lua source text; the string is the chunk name used in error messages.
    Source {
        /// Chunk name (e.g. the file name), shown in Lua error positions.
        name: String,
        /// The Lua source.
        code: String,
    },
    /// A Lua file, read when the sandbox is built.
    File(PathBuf),
}

impl ScriptSource {
    /// Lua source text with the chunk name `name`.
    pub fn source(name: impl Into<String>, code: impl Into<String>) -> Self {
        ScriptSource::Source {
            name: name.into(),
            code: code.into(),
        }
    }
}

/// Limits and environment of one sandbox (reference §5.4–5.6). `Default` gives Heka's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// Bytes of Lua heap (circular buffers included); exceeding it fails the allocation, which
    /// terminates the sandbox unless the script catches it. 0 = unlimited. Default 8 MiB.
    pub memory_limit: usize,
    /// Lua VM instructions per `process_message` / `timer_event` call (not applied to an input's
    /// `process_message`). 0 = unlimited. Default 1,000,000.
    pub instruction_limit: u32,
    /// Bytes of the payload buffer (`add_to_payload`/`inject_payload`), of an injected message and
    /// of a `cjson.encode` result. Default 64512 (63 KiB).
    pub output_limit: usize,
    /// `;`-separated directories searched by `require` for `<name>.lua`.
    pub module_directory: String,
    /// Serialise global data on [`Sandbox::preserve`](crate::Sandbox::preserve) and restore it
    /// when the sandbox is built.
    pub preserve_data: bool,
    /// File holding the preserved data (Heka: `<base_dir>/sandbox_preservation/<name>.data`, see
    /// [`preservation_file_name`](crate::preservation_file_name)).
    pub preservation_path: Option<PathBuf>,
    /// The plugin's `config` table, read by `read_config`.
    pub config: HashMap<String, ConfigValue>,
    /// Filters: messages a single `process_message` may inject. Default 1.
    pub max_process_inject: u32,
    /// Filters: messages a single `timer_event` may inject. Default 10.
    pub max_timer_inject: u32,
    /// The host name stamped on messages injected by filters (Heka's global hostname).
    pub hostname: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            memory_limit: 8 * 1024 * 1024,
            instruction_limit: 1_000_000,
            output_limit: 64512,
            module_directory: String::new(),
            preserve_data: false,
            preservation_path: None,
            config: HashMap::new(),
            max_process_inject: 1,
            max_timer_inject: 10,
            hostname: String::new(),
        }
    }
}

/// The file name Heka gives a sandbox's preserved data: the plugin name with every non-word
/// character replaced by `_`, plus `.data` (to be placed under `<base_dir>/sandbox_preservation`).
pub fn preservation_file_name(plugin_name: &str) -> String {
    let mut s: String = plugin_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.push_str(".data");
    s
}

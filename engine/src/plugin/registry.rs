//! The plugin registry: every plugin type a build can run, looked up by its Heka type name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hekate_config::{ConfigError, GlobalConfig, PluginCatalog, PluginSection};

use super::control::PipelineControl;
use super::input::InputPlugin;
use super::kinds::{DecoderPlugin, EncoderPlugin, FilterPlugin, OutputPlugin, SplitterPlugin};
use super::stream::StreamSpec;

/// A plugin built from its config section.
#[derive(Clone)]
pub enum Built {
    /// An input.
    Input(Arc<dyn InputPlugin>),
    /// A splitter.
    Splitter(Arc<dyn SplitterPlugin>),
    /// A decoder.
    Decoder(Arc<dyn DecoderPlugin>),
    /// A filter.
    Filter(Arc<dyn FilterPlugin>),
    /// An encoder.
    Encoder(Arc<dyn EncoderPlugin>),
    /// An output.
    Output(Arc<dyn OutputPlugin>),
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Built::Input(p) => f.debug_tuple("Input").field(p).finish(),
            Built::Splitter(p) => f.debug_tuple("Splitter").field(p).finish(),
            Built::Decoder(p) => f.debug_tuple("Decoder").field(p).finish(),
            Built::Filter(p) => f.debug_tuple("Filter").field(p).finish(),
            Built::Encoder(p) => f.debug_tuple("Encoder").field(p).finish(),
            Built::Output(p) => f.debug_tuple("Output").field(p).finish(),
        }
    }
}

/// What a `build` function can see besides its own section: the global options and the
/// splitters, decoders and encoders built before it (they are built first).
#[derive(Debug)]
pub struct BuildContext<'a> {
    /// The global section.
    pub global: &'a GlobalConfig,
    built: &'a HashMap<String, Built>,
    control: Option<&'a PipelineControl>,
}

impl<'a> BuildContext<'a> {
    /// A context over the plugins built so far.
    pub fn new(global: &'a GlobalConfig, built: &'a HashMap<String, Built>) -> Self {
        Self {
            global,
            built,
            control: None,
        }
    }

    /// The same context, with the handle plugins use to load filters at run time.
    pub fn with_control(mut self, control: &'a PipelineControl) -> Self {
        self.control = Some(control);
        self
    }

    /// The handle to load and unload filters while the pipeline runs; `None` when the plugin is
    /// built outside a pipeline (a dynamic filter itself).
    pub fn control(&self) -> Option<&'a PipelineControl> {
        self.control
    }

    /// The splitter section named `name`.
    pub fn splitter(&self, name: &str) -> Option<Arc<dyn SplitterPlugin>> {
        match self.built.get(name) {
            Some(Built::Splitter(s)) => Some(Arc::clone(s)),
            _ => None,
        }
    }

    /// The decoder section named `name`.
    pub fn decoder(&self, name: &str) -> Option<Arc<dyn DecoderPlugin>> {
        match self.built.get(name) {
            Some(Built::Decoder(d)) => Some(Arc::clone(d)),
            _ => None,
        }
    }

    /// The encoder section named `name`.
    pub fn encoder(&self, name: &str) -> Option<Arc<dyn EncoderPlugin>> {
        match self.built.get(name) {
            Some(Built::Encoder(e)) => Some(Arc::clone(e)),
            _ => None,
        }
    }
}

/// Builds a plugin from its section; the error is located in the config file.
pub type BuildFn = fn(&PluginSection, &BuildContext<'_>) -> Result<Built, ConfigError>;

/// One plugin type: its Heka name, its options and how to build it.
#[derive(Clone, Copy)]
pub struct PluginType {
    /// The Heka type name (`"TcpInput"`).
    pub name: &'static str,
    /// Plugin-specific options (the common options of its category are implied).
    pub options: &'static [&'static str],
    /// Options a section must set.
    pub required: &'static [&'static str],
    /// The matcher used when a filter or output section sets none.
    pub default_matcher: Option<&'static str>,
    /// Builds the plugin.
    pub build: BuildFn,
}

impl fmt::Debug for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginType")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every plugin type of a build. Implements [`PluginCatalog`] so that `hekate check` validates
/// against exactly what `hekate run` can start.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<PluginType>,
    names: Vec<&'static str>,
}

impl Registry {
    /// A registry of `types` (names must be unique).
    pub fn new(types: Vec<PluginType>) -> Self {
        let names = types.iter().map(|t| t.name).collect();
        Self { types, names }
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&PluginType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Every type, in registration order.
    pub fn types(&self) -> &[PluginType] {
        &self.types
    }
}

impl PluginCatalog for Registry {
    fn known_types(&self) -> &[&str] {
        &self.names
    }

    fn options_of(&self, type_name: &str) -> Option<&[&str]> {
        self.get(type_name).map(|t| t.options)
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        self.get(type_name).and_then(|t| t.default_matcher)
    }

    fn required_options(&self, type_name: &str) -> &[&str] {
        self.get(type_name).map_or(&[], |t| t.required)
    }
}

impl BuildContext<'_> {
    /// The [`StreamSpec`] of an input section: its `splitter` and `decoder` options (resolved
    /// among the splitters and decoders built before it), with the plugin's defaults. An empty
    /// `decoder = ""` means no decoder.
    pub fn stream_spec(
        &self,
        section: &PluginSection,
        default_splitter: &str,
        default_decoder: Option<&str>,
    ) -> Result<StreamSpec, ConfigError> {
        let ctx = self;
        let opts = section.input().cloned().unwrap_or_else(|| {
            panic!(
                "BuildContext::stream_spec called for a {} section",
                section.category()
            )
        });
        let splitter_name = opts.splitter.as_deref().unwrap_or(default_splitter);
        let splitter = ctx.splitter(splitter_name).ok_or_else(|| {
            section.error_at_key(
                "splitter",
                format!(
                    "section [{}] uses splitter `{splitter_name}`, which is not a splitter this build can run",
                    section.name()
                ),
            )
        })?;
        let decoder_name = match opts.decoder.as_deref() {
            Some("") => None,
            Some(d) => Some(d),
            None => default_decoder,
        };
        let decoder = match decoder_name {
            None => None,
            Some(name) => Some(ctx.decoder(name).ok_or_else(|| {
                section.error_at_key(
                    "decoder",
                    format!(
                        "section [{}] uses decoder `{name}`, which is not a decoder this build can run",
                        section.name()
                    ),
                )
            })?),
        };
        Ok(StreamSpec {
            splitter,
            decoder,
            send_decode_failures: opts.send_decode_failures,
            log_decode_failures: opts.log_decode_failures,
            signers: None,
        })
    }
}

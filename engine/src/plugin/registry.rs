//! The plugin registry: every plugin type a build can run, looked up by its Heka type name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hekate_config::{Category, ConfigError, GlobalConfig, PluginCatalog, PluginSection};

use super::control::PipelineControl;
use super::input::InputPlugin;
use super::kinds::{DecoderPlugin, EncoderPlugin, FilterPlugin, OutputPlugin, SplitterPlugin};
use super::options::OptionSpec;
use super::rendezvous::Rendezvous;
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
    rendezvous: Option<&'a Rendezvous>,
    files: std::cell::RefCell<Vec<std::path::PathBuf>>,
}

impl<'a> BuildContext<'a> {
    /// A context over the plugins built so far.
    pub fn new(global: &'a GlobalConfig, built: &'a HashMap<String, Built>) -> Self {
        Self {
            global,
            built,
            control: None,
            rendezvous: None,
            files: Default::default(),
        }
    }

    /// Notes a file the plugin reads to run (a Lua script, a TLS certificate or key): a reload
    /// applies the plugin anew when the file's content changed, even if its section did not.
    pub fn reads_file(&self, path: impl Into<std::path::PathBuf>) {
        self.files.borrow_mut().push(path.into());
    }

    /// The files noted with [`reads_file`](Self::reads_file), in order.
    pub fn files_read(&self) -> Vec<std::path::PathBuf> {
        self.files.borrow().clone()
    }

    /// The same context, with the objects plugins share by name ([`Rendezvous`]).
    pub fn with_rendezvous(mut self, rendezvous: &'a Rendezvous) -> Self {
        self.rendezvous = Some(rendezvous);
        self
    }

    /// The object this section provides to others under its own name (StatAccumInput's
    /// accumulator); `what` names it for errors ("a StatAccumInput"). Outside a pipeline build
    /// (a dynamic filter, a test) the object is new and shared with nobody.
    pub fn provide<T: Default + Send + Sync + 'static>(
        &self,
        section: &PluginSection,
        what: &str,
    ) -> Result<Arc<T>, ConfigError> {
        match self.rendezvous {
            Some(r) => r.provide(section, what),
            None => Ok(Arc::new(T::default())),
        }
    }

    /// The object another section provides under `name`, the value of this section's option
    /// `key` (StatsdInput's `stat_accum_name`). The providing section may come later in the
    /// config; if none does, the pipeline build fails with an error at `key`. Outside a pipeline
    /// build the object is new and shared with nobody.
    pub fn join<T: Default + Send + Sync + 'static>(
        &self,
        section: &PluginSection,
        key: &str,
        name: &str,
        what: &str,
    ) -> Result<Arc<T>, ConfigError> {
        match self.rendezvous {
            Some(r) => r.join(section, key, name, what),
            None => Ok(Arc::new(T::default())),
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

/// One plugin type: its Heka name, its documentation, its options and how to build it.
///
/// Everything here is read from the plugin's own file: `source` is the file itself
/// (`include_str!`), whose `//!` block documents the plugin and holds its sample configuration;
/// `options` reads the plugin's options struct ([`options_of`](super::options_of)).
#[derive(Clone, Copy)]
pub struct PluginType {
    /// The Heka type name (`"TcpInput"`).
    pub name: &'static str,
    /// The plugin's source file: its `//!` block is the plugin's documentation.
    pub source: &'static str,
    /// The plugin-specific options (the common options of its category are implied), from its
    /// options struct.
    pub options: fn() -> Vec<OptionSpec>,
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

impl PluginType {
    /// The category, from the type name's suffix.
    pub fn category(&self) -> Option<Category> {
        Category::of_type(self.name)
    }

    /// The `//!` block of the plugin's file, as Markdown.
    pub fn doc(&self) -> String {
        let mut out = String::new();
        for line in self.source.lines() {
            let Some(doc) = line.strip_prefix("//!") else {
                break;
            };
            out.push_str(doc.strip_prefix(' ').unwrap_or(doc));
            out.push('\n');
        }
        out
    }

    /// The first paragraph of [`PluginType::doc`], on one line.
    pub fn summary(&self) -> String {
        let doc = self.doc();
        let first = doc.split("\n\n").next().unwrap_or("");
        first.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The sample configuration: the first ```toml block of [`PluginType::doc`].
    pub fn sample(&self) -> Option<String> {
        let doc = self.doc();
        let mut out = String::new();
        let mut inside = false;
        for line in doc.lines() {
            if inside {
                if line.starts_with("```") {
                    return Some(out);
                }
                out.push_str(line);
                out.push('\n');
            } else if line.starts_with("```toml") {
                inside = true;
            }
        }
        None
    }
}

/// A type of the registry with its options read once.
#[derive(Debug, Clone)]
struct Entry {
    ty: PluginType,
    options: Vec<OptionSpec>,
}

/// Every plugin type of a build. Implements [`PluginCatalog`] so that `hekate check` validates
/// against exactly what `hekate run` can start.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    names: Vec<&'static str>,
}

impl Registry {
    /// A registry of `types` (names must be unique).
    pub fn new(types: Vec<PluginType>) -> Self {
        let names = types.iter().map(|t| t.name).collect();
        let entries = types
            .into_iter()
            .map(|ty| Entry {
                options: (ty.options)(),
                ty,
            })
            .collect();
        Self { entries, names }
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&PluginType> {
        self.entry(name).map(|e| &e.ty)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.ty.name == name)
    }

    /// Every type, in registration order.
    pub fn types(&self) -> impl Iterator<Item = &PluginType> {
        self.entries.iter().map(|e| &e.ty)
    }

    /// The plugin-specific options of the type named `name`.
    pub fn options(&self, name: &str) -> Option<&[OptionSpec]> {
        self.entry(name).map(|e| e.options.as_slice())
    }
}

impl PluginCatalog for Registry {
    fn known_types(&self) -> &[&str] {
        &self.names
    }

    fn options_of(&self, type_name: &str) -> Option<Vec<&str>> {
        self.entry(type_name)
            .map(|e| e.options.iter().map(|o| o.name.as_str()).collect())
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        self.get(type_name).and_then(|t| t.default_matcher)
    }

    fn required_options(&self, type_name: &str) -> Vec<&str> {
        self.entry(type_name)
            .map(|e| {
                e.options
                    .iter()
                    .filter(|o| o.required)
                    .map(|o| o.name.as_str())
                    .collect()
            })
            .unwrap_or_default()
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

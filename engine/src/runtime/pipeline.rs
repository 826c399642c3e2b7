//! A config turned into plugins: [`Pipeline::build`] builds every plugin of a [`Config`] with a
//! [`Registry`] and compiles every matcher, refusing a bad config with every error at once.

use std::collections::HashMap;

use hekate_config::{
    BufferingOptions, Category, Config, ConfigError, ConfigErrors, FullAction, OutputOptions,
    PluginCatalog as _,
};

use crate::plugin::{BuildContext, Built, PipelineControl, Placement, Registry, Rendezvous};
use hekate_model::matcher::MatcherSpec;

/// Why the pipeline could not start; one sentence.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The core layout or memory limits do not fit this machine.
    #[error("{0}")]
    Layout(String),
    /// `base_dir` cannot be created or written.
    #[error("{0}")]
    BaseDir(String),
    /// A shard could not start or an input could not open.
    #[error("{0}")]
    Shard(String),
    /// A listen address is held by another process (or by two inputs).
    #[error("{0}")]
    AddressInUse(String),
}

/// One plugin instance of the pipeline.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Section name.
    pub name: String,
    /// Heka type name.
    pub type_name: String,
    /// Category.
    pub category: Category,
    /// The built plugin.
    pub built: Built,
    /// Filters and outputs: the compiled matcher and `message_signer`.
    pub route: Option<(MatcherSpec, Option<String>)>,
    /// Outputs: what the router does with a batch when the output's lane is full (`full_action`
    /// of `[name.buffering]`; `block` when the section has none, and for filters).
    pub full_action: FullAction,
    /// Outputs with `use_buffering`: the options of their disk queue.
    pub buffering: Option<BufferingOptions>,
    /// The section as configured, in a canonical form (its type and options as TOML): a reload
    /// compares it to tell a changed plugin from an unchanged one.
    pub section: String,
    /// The splitters, decoders and encoders it uses (a reload restarts it when one changes).
    pub uses: Vec<String>,
}

/// A config turned into plugins, ready to start.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The global section.
    pub global: hekate_config::GlobalConfig,
    /// Every plugin, in build order (splitters, decoders, encoders, inputs, filters, outputs).
    pub plugins: Vec<PluginInfo>,
    /// The handle plugins were given to load filters at run time; the coordinator serves it.
    pub control: PipelineControl,
}

const BUILD_ORDER: [Category; 6] = [
    Category::Splitter,
    Category::Decoder,
    Category::Encoder,
    Category::Input,
    Category::Filter,
    Category::Output,
];

impl Pipeline {
    /// Builds every plugin of `config` with `registry` and compiles every matcher, returning all
    /// problems at once, each located in the config.
    pub fn build(config: &Config, registry: &Registry) -> Result<Pipeline, ConfigErrors> {
        let mut errors: Vec<ConfigError> = Vec::new();
        let mut built: HashMap<String, Built> = HashMap::new();
        let mut plugins = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        let control = PipelineControl::new();
        let rendezvous = Rendezvous::default();
        for category in BUILD_ORDER {
            let sections: Vec<&hekate_config::PluginSection> = if category == Category::Decoder {
                let (ordered, cycles) = decoder_build_order(config.plugins_of(category).collect());
                for (section, e) in cycles {
                    errors.push(e);
                    failed.push(section);
                }
                ordered
            } else {
                config.plugins_of(category).collect()
            };
            for section in sections {
                // A section that uses a splitter, decoder or encoder which failed to build is not
                // built either: its error would only repeat that one.
                if references(section).any(|r| failed.contains(&r)) {
                    failed.push(section.name());
                    continue;
                }
                let Some(ty) = registry.get(section.type_name()) else {
                    if !section.is_default_instance() {
                        let mut known: Vec<&str> = registry
                            .known_types()
                            .iter()
                            .copied()
                            .filter(|t| Category::of_type(t) == Some(category))
                            .collect();
                        known.sort_unstable();
                        errors.push(section.error_at_key(
                            "type",
                            format!(
                                "plugin type `{}` of section [{}] is not available in this build; the {category}s it has are {}",
                                section.type_name(),
                                section.name(),
                                known.join(", ")
                            ),
                        ));
                    }
                    continue;
                };
                let (result, files) = {
                    let ctx = BuildContext::new(&config.global, &built)
                        .with_control(&control)
                        .with_rendezvous(&rendezvous);
                    ((ty.build)(section, &ctx), ctx.files_read())
                };
                let plugin = match result {
                    Ok(p) => p,
                    Err(e) => {
                        errors.push(e);
                        failed.push(section.name());
                        continue;
                    }
                };
                let route = match category {
                    Category::Filter | Category::Output => {
                        let signer = section
                            .filter()
                            .map(|f| f.message_signer.clone())
                            .or_else(|| section.output().map(|o| o.message_signer.clone()))
                            .flatten();
                        match section.message_matcher().or(ty.default_matcher) {
                            None => {
                                errors.push(section.error_at_key(
                                    "message_matcher",
                                    format!(
                                        "{category} [{}] has no `message_matcher`, so it would receive nothing; add one, e.g. message_matcher = \"TRUE\"",
                                        section.name()
                                    ),
                                ));
                                continue;
                            }
                            Some(expr) => match MatcherSpec::parse(expr) {
                                Ok(m) => Some((m, signer)),
                                Err(e) => {
                                    errors.push(section.error_at_value(
                                        "message_matcher",
                                        format!(
                                            "invalid message_matcher in section [{}]: {e}",
                                            section.name()
                                        ),
                                    ));
                                    continue;
                                }
                            },
                        }
                    }
                    _ => None,
                };
                let (full_action, buffering) = match (&plugin, section.output()) {
                    (Built::Output(p), Some(o)) => output_buffering(o, &**p),
                    _ => (FullAction::Block, None),
                };
                built.insert(section.name().to_string(), plugin.clone());
                plugins.push(PluginInfo {
                    name: section.name().to_string(),
                    type_name: section.type_name().to_string(),
                    category,
                    built: plugin,
                    route,
                    full_action,
                    buffering,
                    section: canonical(section) + &fingerprint(&files),
                    uses: references(section).map(str::to_string).collect(),
                });
            }
        }
        errors.extend(rendezvous.unmet());
        if !plugins.iter().any(|p| p.category == Category::Input) && errors.is_empty() {
            errors.push(ConfigError::in_file(
                config
                    .sources()
                    .first()
                    .map_or("config", |s| s.name())
                    .to_string(),
                "the config declares no input, so hekate would receive nothing; add e.g. a [TcpInput] section",
            ));
        }
        if errors.is_empty() {
            Ok(Pipeline {
                global: config.global.clone(),
                plugins,
                control,
            })
        } else {
            Err(ConfigErrors::new(errors))
        }
    }

    /// What [`start`](super::start) checks before it starts anything, checked without starting,
    /// binding or writing anything (`hekate check`): the core layout fits this machine and its
    /// memory-lock limit, and `base_dir` exists as a writable directory or can be created.
    pub fn preflight(&self) -> Result<(), StartError> {
        super::layout::resolve(
            &self.global,
            &super::layout::allowed_cores(),
            super::layout::memlock_limit(),
        )?;
        base_dir_is_usable(&self.global.base_dir)
    }

    /// The placement of a filter or output.
    pub fn placement(&self, plugin: usize) -> Option<Placement> {
        match &self.plugins[plugin].built {
            Built::Filter(f) => Some(f.placement()),
            Built::Output(o) => Some(o.placement()),
            _ => None,
        }
    }
}

/// What the router does when an output's lane is full, and the output's disk queue options if
/// it is buffered. An output without `use_buffering` blocks unless its `[name.buffering]` says
/// `full_action = "drop"` or `"shutdown"`.
///
/// A buffered output (`use_buffering`, by default as the plugin says: TcpOutput's is true) has
/// a disk queue with the `[name.buffering]` options, or the plugin's defaults when the section
/// has none; its lane blocks (the queue applies `full_action`).
fn output_buffering(
    o: &OutputOptions,
    plugin: &dyn crate::plugin::OutputPlugin,
) -> (FullAction, Option<BufferingOptions>) {
    if o.use_buffering
        .unwrap_or_else(|| plugin.use_buffering_default())
    {
        let options = o.buffering.unwrap_or_else(|| plugin.buffering_defaults());
        return (FullAction::Block, Some(options));
    }
    let lane = o.buffering.map_or(FullAction::Block, |b| b.full_action);
    (lane, None)
}

/// A check for `message_matcher` expressions, for [`Config::validate`].
pub fn check_matcher(expr: &str) -> Result<(), String> {
    MatcherSpec::parse(expr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
/// A section's type and options as TOML, keys sorted: equal for equal sections.
fn canonical(section: &hekate_config::PluginSection) -> String {
    fn sorted(v: &toml::Value) -> String {
        match v {
            toml::Value::Table(t) => {
                let mut keys: Vec<&String> = t.keys().collect();
                keys.sort();
                let items: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{k:?} = {}", sorted(&t[k])))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            toml::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(sorted).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.to_string(),
        }
    }
    let mut doc = section.values().clone();
    doc.insert(
        "type".to_string(),
        toml::Value::String(section.type_name().to_string()),
    );
    sorted(&toml::Value::Table(doc))
}

/// The content of the files a plugin reads (its script, its certificates), as a digest appended
/// to its canonical section: a reload sees a changed script as a changed plugin. A file that
/// cannot be read counts as changed content too (its error names it at start).
fn fingerprint(files: &[std::path::PathBuf]) -> String {
    use std::hash::{Hash, Hasher};
    if files.is_empty() {
        return String::new();
    }
    // Old and new sections are compared within one process: std's fixed-key SipHash is enough.
    let mut h = std::hash::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        match std::fs::read(f) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.kind().to_string().hash(&mut h),
        }
    }
    format!(" # files {:016x}", h.finish())
}

/// The splitter, decoder and encoder sections a section uses.
fn references(section: &hekate_config::PluginSection) -> impl Iterator<Item = &str> {
    let input = section.input();
    [
        input.and_then(|i| i.splitter.as_deref()),
        input.and_then(|i| i.decoder.as_deref()),
        section.output().and_then(|o| o.encoder.as_deref()),
    ]
    .into_iter()
    .flatten()
    .chain(decoder_subs(section))
}

/// The decoders a decoder section uses: the names in its `subs` (MultiDecoder).
fn decoder_subs(section: &hekate_config::PluginSection) -> impl Iterator<Item = &str> {
    let subs = match section.category() {
        Category::Decoder => section.get("subs").and_then(|v| v.as_array()),
        _ => None,
    };
    subs.into_iter().flatten().filter_map(|v| v.as_str())
}

/// Decoder sections in an order where every decoder comes after the decoders its `subs` name,
/// so that a MultiDecoder finds them built; sections whose `subs` lead back to themselves are
/// left out, each with an error naming the cycle.
fn decoder_build_order(
    sections: Vec<&hekate_config::PluginSection>,
) -> (Vec<&hekate_config::PluginSection>, Vec<(&str, ConfigError)>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
        Cycle,
    }
    fn visit<'c>(
        i: usize,
        sections: &[&'c hekate_config::PluginSection],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<&'c hekate_config::PluginSection>,
        cycles: &mut Vec<(&'c str, ConfigError)>,
    ) {
        match marks[i] {
            Mark::Done | Mark::Cycle => return,
            Mark::Open => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let ring: Vec<&str> = path[start..]
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|&p| sections[p].name())
                    .collect();
                for &p in &path[start..] {
                    if marks[p] != Mark::Cycle {
                        marks[p] = Mark::Cycle;
                        let s = sections[p];
                        cycles.push((
                            s.name(),
                            s.error_at_value(
                                "subs",
                                format!(
                                    "decoder [{}] uses itself through `subs`: {}; a MultiDecoder cannot contain itself",
                                    s.name(),
                                    ring.join(" → ")
                                ),
                            ),
                        ));
                    }
                }
                return;
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        path.push(i);
        let subs: Vec<&str> = decoder_subs(sections[i]).collect();
        for sub in subs {
            if let Some(j) = sections.iter().position(|s| s.name() == sub) {
                visit(j, sections, marks, path, order, cycles);
            }
        }
        path.pop();
        if marks[i] == Mark::Open {
            marks[i] = Mark::Done;
            order.push(sections[i]);
        }
    }
    let mut marks = vec![Mark::New; sections.len()];
    let mut order = Vec::with_capacity(sections.len());
    let mut cycles = Vec::new();
    let mut path = Vec::new();
    for i in 0..sections.len() {
        visit(i, &sections, &mut marks, &mut path, &mut order, &mut cycles);
    }
    (order, cycles)
}

/// Whether `dir` is a directory hekate may write, or can be created: the nearest existing
/// ancestor must be a writable directory. Nothing is created or written.
fn base_dir_is_usable(dir: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::ffi::OsStrExt as _;
    let hint = "set `base_dir` in the [hekate] section to a directory hekate may write";
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut existing = absolute.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    if !existing.is_dir() {
        return Err(StartError::BaseDir(format!(
            "base_dir {} cannot be created: {} is not a directory; {hint}",
            dir.display(),
            existing.display()
        )));
    }
    let mut c_path = existing.as_os_str().as_bytes().to_vec();
    c_path.push(0);
    // SAFETY: `c_path` is a NUL-terminated path that outlives the call.
    let writable = unsafe { libc::access(c_path.as_ptr().cast(), libc::W_OK | libc::X_OK) } == 0;
    if writable {
        Ok(())
    } else {
        let what = if existing == absolute {
            "is not writable"
        } else {
            "cannot be created"
        };
        Err(StartError::BaseDir(format!(
            "base_dir {} {what}: {}: {}; {hint}",
            dir.display(),
            existing.display(),
            std::io::Error::last_os_error()
        )))
    }
}

#[cfg(test)]
mod preflight_tests {
    use super::base_dir_is_usable;

    #[test]
    fn base_dir_may_be_missing_under_a_writable_directory() {
        let tmp = std::env::temp_dir().join(format!("hekate-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        base_dir_is_usable(&tmp.join("a/b/c")).unwrap();
        base_dir_is_usable(&tmp).unwrap();
        assert!(!tmp.join("a").exists(), "preflight created a directory");
        let file = tmp.join("file");
        std::fs::write(&file, b"").unwrap();
        let e = base_dir_is_usable(&file.join("sub"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

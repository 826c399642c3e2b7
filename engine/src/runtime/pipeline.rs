//! A config turned into plugins: [`Pipeline::build`] builds every plugin of a [`Config`] with a
//! [`Registry`] and compiles every matcher, refusing a bad config with every error at once.

use std::collections::HashMap;

use hekate_config::{Category, Config, ConfigError, ConfigErrors, PluginCatalog as _};

use crate::plugin::{BuildContext, Built, PipelineControl, Placement, Registry};
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
        let control = PipelineControl::new();
        for category in BUILD_ORDER {
            for section in config.plugins_of(category) {
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
                let result = {
                    let ctx = BuildContext::new(&config.global, &built).with_control(&control);
                    (ty.build)(section, &ctx)
                };
                let plugin = match result {
                    Ok(p) => p,
                    Err(e) => {
                        errors.push(e);
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
                built.insert(section.name().to_string(), plugin.clone());
                plugins.push(PluginInfo {
                    name: section.name().to_string(),
                    type_name: section.type_name().to_string(),
                    category,
                    built: plugin,
                    route,
                });
            }
        }
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

    /// The placement of a filter or output.
    pub fn placement(&self, plugin: usize) -> Option<Placement> {
        match &self.plugins[plugin].built {
            Built::Filter(f) => Some(f.placement()),
            Built::Output(o) => Some(o.placement()),
            _ => None,
        }
    }
}

/// A check for `message_matcher` expressions, for [`Config::validate`].
pub fn check_matcher(expr: &str) -> Result<(), String> {
    MatcherSpec::parse(expr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

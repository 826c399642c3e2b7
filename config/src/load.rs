//! Reading files, parsing TOML, merging sections across files and building the typed model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::catalog::{DEFAULT_INSTANCES, PluginCatalog};
use crate::error::ConfigError;
use crate::global::GlobalConfig;
use crate::plugin::{Category, CommonOptions, PluginSection};
use crate::source::SourceFile;
use crate::suggest::did_you_mean;
use crate::value::{Reader, describe};

/// The global section's name, and Heka's name for it.
pub(crate) const GLOBAL_SECTION: &str = "hekate";
pub(crate) const HEKAD_ALIAS: &str = "hekad";

type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, std::env::VarError>;

/// The files of a config path: the file itself, or every `*.toml` of a directory in
/// alphabetical order. Returns (name, text) pairs.
pub(crate) fn read_path(path: &Path) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|e| {
        vec![ConfigError::in_file(
            &shown,
            format!("cannot read config: {e}"),
        )]
    })?;
    let mut paths = Vec::new();
    if metadata.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| {
            vec![ConfigError::in_file(
                &shown,
                format!("cannot list config directory: {e}"),
            )]
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                vec![ConfigError::in_file(
                    &shown,
                    format!("cannot list config directory: {e}"),
                )]
            })?;
            let file = entry.path();
            if file.extension().is_some_and(|ext| ext == "toml") && !file.is_dir() {
                paths.push(file);
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(vec![ConfigError::in_file(
                &shown,
                "config directory contains no *.toml files",
            )]);
        }
    } else {
        paths.push(path.to_path_buf());
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for file in paths {
        let name = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => files.push((name, text)),
            Err(e) => errors.push(ConfigError::in_file(
                name,
                format!("cannot read config file: {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// A section as found in one file, before merging.
struct Draft<'i> {
    file: usize,
    table: Spanned<DeTable<'i>>,
}

/// Everything loading produced: the model (partial where there were errors) and the errors.
pub(crate) struct Loaded {
    pub(crate) global: GlobalConfig,
    pub(crate) plugins: Vec<PluginSection>,
    pub(crate) sources: Vec<Arc<SourceFile>>,
    pub(crate) errors: Vec<ConfigError>,
}

/// Parses and merges `files` (in order; later wins) into the typed model, collecting every error.
/// `catalog` is only used to suggest names for a type with no category suffix.
pub(crate) fn build(
    files: Vec<(String, String)>,
    env: EnvLookup<'_>,
    catalog: &dyn PluginCatalog,
) -> Loaded {
    let mut errors = Vec::new();
    let mut sources = Vec::with_capacity(files.len());
    let mut parseable = Vec::with_capacity(files.len());
    for (name, text) in files {
        let substituted = SourceFile::substitute(name, text, env);
        errors.extend(substituted.errors);
        sources.push(Arc::new(substituted.source));
        parseable.push(!substituted.unparseable);
    }

    // Split each file into global and plugin sections; a later file's plugin section of the same
    // name replaces the earlier one whole (Heka keys plugins by name).
    let mut globals: Vec<(String, Draft<'_>)> = Vec::new();
    let mut sections: BTreeMap<String, Draft<'_>> = BTreeMap::new();
    for (file, source) in sources.iter().enumerate() {
        if !parseable[file] {
            continue;
        }
        let (root, syntax_errors) = DeTable::parse_recoverable(source.text());
        for e in syntax_errors {
            let offset = e.span().map_or(0, |s| s.start);
            errors.push(source.error_at(offset, format!("TOML syntax error: {}", e.message())));
        }
        let mut entries: Vec<_> = root.into_inner().into_iter().collect();
        entries.sort_by_key(|(key, value)| (value.span().start, key.span().start));
        for (key, value) in entries {
            let name = key.get_ref().to_string();
            let span = value.span();
            let table = match value.into_inner() {
                DeValue::Table(table) => Spanned::new(span, table),
                other => {
                    let message = if matches!(other, DeValue::Array(_)) {
                        format!(
                            "`{name}` is an array, not a section; each plugin instance needs its own [section] with a unique name"
                        )
                    } else {
                        format!(
                            "top-level key `{name}` (set to {}) is not a section; options belong under a [section] header",
                            describe(&other)
                        )
                    };
                    errors.push(source.error_at(key.span().start, message));
                    continue;
                }
            };
            let draft = Draft { file, table };
            if name == GLOBAL_SECTION || name == HEKAD_ALIAS {
                globals.push((name, draft));
            } else {
                sections.insert(name, draft);
            }
        }
    }

    let mut global = GlobalConfig::default();
    let first_global_name = globals.first().map(|(name, _)| name.clone());
    for (name, draft) in &globals {
        let source = &sources[draft.file];
        if Some(name) != first_global_name.as_ref() {
            let first = first_global_name.as_deref().unwrap_or_default();
            errors.push(source.error_at(
                draft.table.span().start,
                format!(
                    "both [{first}] and [{name}] are present; [hekad] is an alias of [hekate], keep only one"
                ),
            ));
            continue;
        }
        let mut reader = Reader {
            table: draft.table.get_ref(),
            section: name.clone(),
            source,
            errors: &mut errors,
        };
        global.apply(&mut reader);
    }

    let mut drafts: Vec<(String, Draft<'_>)> = sections.into_iter().collect();
    drafts.sort_by_key(|(_, d)| (d.file, d.table.span().start));
    let mut plugins = Vec::with_capacity(drafts.len() + DEFAULT_INSTANCES.len());
    for (name, draft) in drafts {
        let source = &sources[draft.file];
        if let Some(section) = build_section(name, &draft.table, source, catalog, &mut errors) {
            plugins.push(section);
        }
    }
    for (type_name, category) in DEFAULT_INSTANCES {
        if !plugins.iter().any(|p| p.name() == *type_name) {
            plugins.push(PluginSection::default_instance(type_name, *category));
        }
    }

    Loaded {
        global,
        plugins,
        sources,
        errors,
    }
}

fn build_section(
    name: String,
    table: &Spanned<DeTable<'_>>,
    source: &Arc<SourceFile>,
    catalog: &dyn PluginCatalog,
    errors: &mut Vec<ConfigError>,
) -> Option<PluginSection> {
    let (type_name, type_offset) = match table.get_ref().get("type") {
        None => (name.clone(), table.span().start),
        Some(item) => match item.get_ref() {
            DeValue::String(s) => (s.to_string(), item.span().start),
            other => {
                errors.push(source.error_at(
                    item.span().start,
                    format!(
                        "`type` in section [{name}] must be a string naming a plugin type, not {}",
                        describe(other)
                    ),
                ));
                return None;
            }
        },
    };
    let Some(category) = Category::of_type(&type_name) else {
        let mut hint = did_you_mean(&type_name, catalog.known_types().iter().copied());
        if hint.is_empty() {
            hint = "; a type name ends in Input, Splitter, Decoder, Filter, Encoder or Output"
                .to_string();
        }
        errors.push(source.error_at(
            type_offset,
            format!("unknown plugin type `{type_name}` in section [{name}]{hint}"),
        ));
        return None;
    };
    let mut reader = Reader {
        table: table.get_ref(),
        section: name.clone(),
        source,
        errors,
    };
    let common = CommonOptions::read(category, &mut reader);
    Some(PluginSection::declared(
        name,
        type_name,
        common,
        table,
        Arc::clone(source),
    ))
}

//! Checks that need the plugin catalog or the whole config: known types and keys, matchers,
//! references between sections.

use std::collections::BTreeMap;

use toml::Value;

use crate::catalog::{MatcherCheck, PluginCatalog};
use crate::error::ConfigError;
use crate::plugin::{Category, PluginSection};
use crate::suggest::did_you_mean;

/// Appends every problem of `plugins` to `errors`.
pub(crate) fn validate(
    plugins: &[PluginSection],
    catalog: &dyn PluginCatalog,
    matcher: &dyn MatcherCheck,
    errors: &mut Vec<ConfigError>,
) {
    for plugin in plugins.iter().filter(|p| !p.is_default_instance()) {
        check_type_and_keys(plugin, catalog, errors);
        check_matcher(plugin, catalog, matcher, errors);
        check_references(plugin, plugins, errors);
    }
    check_decoder_cycles(plugins, errors);
}

fn check_type_and_keys(
    p: &PluginSection,
    catalog: &dyn PluginCatalog,
    errors: &mut Vec<ConfigError>,
) {
    let type_name = p.type_name();
    let category = p.category();
    if !catalog.is_known(type_name) {
        let mut hint = did_you_mean(type_name, catalog.known_types().iter().copied());
        if hint.is_empty() {
            let same: Vec<&str> = catalog
                .known_types()
                .iter()
                .copied()
                .filter(|t| Category::of_type(t) == Some(category))
                .collect();
            if !same.is_empty() {
                hint = format!("; known {category} types: {}", same.join(", "));
            }
        }
        let what = if crate::catalog::HEKA_TYPES.contains(&type_name) {
            format!("Heka plugin type `{type_name}` is not provided by this build")
        } else {
            format!("unknown plugin type `{type_name}`")
        };
        errors.push(p.error_at_value("type", format!("{what} in section [{}]{hint}", p.name())));
        return;
    }
    if let Some(options) = catalog.options_of(type_name) {
        let common = category.common_options();
        for key in p.values().keys() {
            let key = key.as_str();
            if key == "type" || common.contains(&key) || options.contains(&key) {
                continue;
            }
            let mut hint = did_you_mean(key, options.iter().chain(common).copied());
            if hint.is_empty() {
                hint = if options.is_empty() {
                    format!("; {type_name} has no options besides the common {category} ones")
                } else {
                    format!("; {type_name} options are: {}", options.join(", "))
                };
            }
            errors.push(p.error_at_key(
                key,
                format!(
                    "unknown option `{key}` in section [{}] ({type_name}){hint}",
                    p.name()
                ),
            ));
        }
    }
    for required in catalog.required_options(type_name) {
        if p.get(required).is_none() {
            errors.push(p.error_at(
                p.header_span(),
                format!(
                    "section [{}] ({type_name}) is missing the required option `{required}`",
                    p.name()
                ),
            ));
        }
    }
}

fn check_matcher(
    p: &PluginSection,
    catalog: &dyn PluginCatalog,
    matcher: &dyn MatcherCheck,
    errors: &mut Vec<ConfigError>,
) {
    let category = p.category();
    // An unknown type was reported already; whether it needs a matcher is not known.
    if !matches!(category, Category::Filter | Category::Output) || !catalog.is_known(p.type_name())
    {
        return;
    }
    match p.message_matcher().map(str::trim) {
        Some(expr) if !expr.is_empty() => {
            if let Err(why) = matcher.check(expr) {
                errors.push(p.error_at_value(
                    "message_matcher",
                    format!("invalid `message_matcher` in section [{}]: {why}", p.name()),
                ));
            }
        }
        _ => {
            if catalog.default_matcher(p.type_name()).is_none() {
                errors.push(p.error_at_value(
                    "message_matcher",
                    format!(
                        "section [{}] ({}) has no `message_matcher`; a {category} receives only the messages its matcher selects",
                        p.name(),
                        p.type_name()
                    ),
                ));
            }
        }
    }
}

fn check_references(p: &PluginSection, plugins: &[PluginSection], errors: &mut Vec<ConfigError>) {
    if let Some(input) = p.input() {
        // `decoder = ""` means no decoder: records become payloads.
        if let Some(decoder) = input.decoder.as_deref().filter(|d| !d.is_empty()) {
            check_reference(p, "decoder", decoder, Category::Decoder, plugins, errors);
        }
        if let Some(splitter) = &input.splitter {
            check_reference(p, "splitter", splitter, Category::Splitter, plugins, errors);
        }
    }
    if let Some(encoder) = p.output().and_then(|o| o.encoder.as_ref()) {
        check_reference(p, "encoder", encoder, Category::Encoder, plugins, errors);
    }
    match p.type_name() {
        "MultiDecoder" => {
            for (i, sub) in multi_decoder_subs(p, errors).into_iter().enumerate() {
                if sub == p.name() {
                    errors.push(p.error_at_value(
                        &format!("subs.{i}"),
                        format!("MultiDecoder [{}] lists itself in `subs`", p.name()),
                    ));
                } else {
                    check_reference(
                        p,
                        &format!("subs.{i}"),
                        &sub,
                        Category::Decoder,
                        plugins,
                        errors,
                    );
                }
            }
        }
        "StatsdInput" | "StatFilter" => {
            let target = p.get_str("stat_accum_name").unwrap_or("StatAccumInput");
            if !plugins
                .iter()
                .any(|q| q.name() == target && q.type_name() == "StatAccumInput")
            {
                errors.push(p.error_at_value(
                    "stat_accum_name",
                    format!(
                        "{} [{}] sends its stats to `{target}`, but no StatAccumInput section of that name exists",
                        p.type_name(),
                        p.name()
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// The `subs` of a MultiDecoder as names; reports values that are not an array of strings.
fn multi_decoder_subs(p: &PluginSection, errors: &mut Vec<ConfigError>) -> Vec<String> {
    let Some(value) = p.get("subs") else {
        return Vec::new(); // reported as a missing required option
    };
    let Some(array) = value.as_array() else {
        errors.push(p.error_at_value(
            "subs",
            format!(
                "`subs` in section [{}] must be an array of decoder names, not {}",
                p.name(),
                a_type(value)
            ),
        ));
        return Vec::new();
    };
    if array.is_empty() {
        errors.push(p.error_at_value(
            "subs",
            format!(
                "`subs` in section [{}] must name at least one decoder",
                p.name()
            ),
        ));
    }
    let mut subs = Vec::with_capacity(array.len());
    for (i, element) in array.iter().enumerate() {
        match element {
            Value::String(name) => subs.push(name.clone()),
            other => errors.push(p.error_at_value(
                &format!("subs.{i}"),
                format!(
                    "`subs` in section [{}] must list decoder names, not {}",
                    p.name(),
                    a_type(other)
                ),
            )),
        }
    }
    subs
}

/// Reports `target` (written at `path` of `p`) unless it names a section of category `want`.
fn check_reference(
    p: &PluginSection,
    path: &str,
    target: &str,
    want: Category,
    plugins: &[PluginSection],
    errors: &mut Vec<ConfigError>,
) {
    match plugins.iter().find(|q| q.name() == target) {
        Some(q) if q.category() == want => {}
        Some(q) => errors.push(p.error_at_value(
            path,
            format!(
                "section [{}] uses `{target}` as its {want}, but [{target}] is a {} ({})",
                p.name(),
                q.category(),
                q.type_name()
            ),
        )),
        None => {
            let defined: Vec<&str> = plugins
                .iter()
                .filter(|q| q.category() == want)
                .map(PluginSection::name)
                .collect();
            let mut hint = did_you_mean(target, defined.iter().copied());
            if hint.is_empty() && !defined.is_empty() {
                hint = format!("; defined {want}s: {}", defined.join(", "));
            }
            errors.push(p.error_at_value(
                path,
                format!(
                    "{want} `{target}` used by section [{}] is not defined{hint}",
                    p.name()
                ),
            ));
        }
    }
}

/// MultiDecoders whose `subs` lead back to themselves (Heka rejects such configs).
fn check_decoder_cycles(plugins: &[PluginSection], errors: &mut Vec<ConfigError>) {
    let graph: BTreeMap<&str, (usize, Vec<&str>)> = plugins
        .iter()
        .enumerate()
        .filter(|(_, p)| p.type_name() == "MultiDecoder")
        .map(|(i, p)| {
            let subs = p
                .get("subs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (p.name(), (i, subs))
        })
        .collect();
    let mut reported: Vec<&str> = Vec::new();
    for (&start, (index, _)) in &graph {
        if reported.contains(&start) {
            continue;
        }
        if let Some(cycle) = find_cycle(start, &graph) {
            // Self-reference is reported on its own, at the `subs` entry.
            if cycle.len() > 2 {
                let p = &plugins[*index];
                errors.push(p.error_at_value(
                    "subs",
                    format!("MultiDecoder sections form a cycle: {}", cycle.join(" -> ")),
                ));
            }
            reported.extend(cycle);
        }
    }
}

/// A path `start -> … -> start` through MultiDecoder `subs`, if there is one.
fn find_cycle<'a>(
    start: &'a str,
    graph: &BTreeMap<&'a str, (usize, Vec<&'a str>)>,
) -> Option<Vec<&'a str>> {
    fn walk<'a>(
        node: &'a str,
        start: &'a str,
        graph: &BTreeMap<&'a str, (usize, Vec<&'a str>)>,
        path: &mut Vec<&'a str>,
    ) -> bool {
        let Some((_, subs)) = graph.get(node) else {
            return false;
        };
        for &sub in subs {
            if sub == start {
                path.push(sub);
                return true;
            }
            if path.contains(&sub) {
                continue;
            }
            path.push(sub);
            if walk(sub, start, graph, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start];
    walk(start, start, graph, &mut path).then_some(path)
}

/// "a string", "an integer", … for a plain TOML value.
fn a_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

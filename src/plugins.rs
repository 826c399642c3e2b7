//! `hekate plugins [TYPE]`: the plugin types this build provides, and one type's options and
//! sample configuration, read from the plugins' own declarations (their options structs and
//! `//!` blocks).

use std::process::ExitCode;

use hekate_config::Category;
use hekate_engine::plugin::{OptionSpec, PluginType, Registry};

/// Prints every type by category, or the options and sample of `type_name`.
pub fn show(type_name: Option<&str>) -> ExitCode {
    let registry = hekate_plugins::registry();
    match type_name {
        None => {
            print!("{}", list(&registry));
            ExitCode::SUCCESS
        }
        Some(name) => match registry.get(name) {
            Some(ty) => {
                print!("{}", describe(ty, registry.options(name).unwrap_or(&[])));
                ExitCode::SUCCESS
            }
            None => {
                let names: Vec<&str> = registry.types().map(|t| t.name).collect();
                let hint = hekate_config::did_you_mean(name, names.iter().copied());
                eprintln!(
                    "hekate plugins: `{name}` is not a plugin type of this build{hint}; `hekate plugins` lists them"
                );
                ExitCode::FAILURE
            }
        },
    }
}

/// One line per type, grouped by category.
fn list(registry: &Registry) -> String {
    let width = registry.types().map(|t| t.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for category in Category::ALL {
        let types: Vec<&PluginType> = registry
            .types()
            .filter(|t| t.category() == Some(category))
            .collect();
        if types.is_empty() {
            continue;
        }
        out.push_str(&format!("{}s:\n", capitalised(category)));
        for t in types {
            let summary = t.summary();
            let summary = summary
                .strip_prefix(&format!("{}: ", t.name))
                .unwrap_or(&summary);
            out.push_str(&format!(
                "  {:width$}  {}\n",
                t.name,
                first_sentence(summary)
            ));
        }
    }
    out
}

/// A type's summary, options and sample configuration.
fn describe(ty: &PluginType, options: &[OptionSpec]) -> String {
    let mut out = format!("{}\n\n{}\n", ty.name, wrap(&ty.summary(), 96, ""));
    let category = ty.category();
    out.push_str("\nOptions:\n");
    if options.is_empty() {
        out.push_str("  (none of its own)\n");
    }
    for o in options {
        let default = match (&o.default, o.required) {
            (_, true) => " (required)".to_string(),
            (Some(d), false) => format!(" (default {d})"),
            (None, false) => String::new(),
        };
        out.push_str(&format!("  {}: {}{default}\n", o.name, o.kind));
        if !o.doc.is_empty() {
            out.push_str(&wrap(&o.doc, 92, "      "));
            out.push('\n');
        }
    }
    if let Some(category) = category {
        let common = category.common_options();
        if !common.is_empty() {
            out.push_str(&format!(
                "\nCommon {category} options: {}\n",
                common.join(", ")
            ));
        }
    }
    if let Some(sample) = ty.sample() {
        out.push_str("\nSample:\n");
        for line in sample.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn capitalised(category: Category) -> String {
    let s = category.to_string();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

/// Up to the first full stop followed by a capital letter (so "e.g. x" does not end it).
fn first_sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(". ") {
        if bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase) {
            return &text[..=i];
        }
    }
    text
}

/// `text` wrapped at `width` columns, each line indented by `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::replace(&mut line, String::from(indent)));
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        lines.push(line);
    }
    lines.join("\n")
}

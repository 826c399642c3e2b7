//! A plugin's options, read from the one place they are declared: its options struct.
//!
//! A plugin declares its options once, as a serde struct with `#[serde(deny_unknown_fields)]`,
//! `#[derive(JsonSchema)]` and a `///` comment on every field (that comment is the user
//! documentation). [`options_of`] turns the struct's schema into [`OptionSpec`]s: name, type,
//! default, doc and whether it is required. Validation (`hekate check`), `hekate plugins` and
//! the docs all read them from there; nothing else lists a plugin's options.

use schemars::JsonSchema;
use serde_json::{Map, Value};

/// One plugin-specific option, as its options struct declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// The TOML key.
    pub name: String,
    /// The TOML type, for people: `string`, `integer`, `boolean`, `table`, `array of string`,
    /// `"a" | "b"`, …
    pub kind: String,
    /// The default, written as TOML; `None` when the option has none (required, or unset means
    /// "not used").
    pub default: Option<String>,
    /// The field's doc comment.
    pub doc: String,
    /// Whether a section must set it.
    pub required: bool,
}

/// The options struct of a plugin that has none besides the common options of its category:
/// `section.options::<NoOptions>()` refuses every other key.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// The options declared by the struct `T`, in declaration order.
pub fn options_of<T: JsonSchema>() -> Vec<OptionSpec> {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, prop)| OptionSpec {
            name: name.clone(),
            kind: kind_of(prop, &defs),
            default: prop.get("default").map(toml_literal),
            doc: prop
                .get("description")
                .and_then(Value::as_str)
                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            required: required.contains(&name.as_str()),
        })
        .collect()
}

/// Drops the options named in `names` (a struct shared by several plugin types, where some
/// options belong to some types only).
pub fn without(mut options: Vec<OptionSpec>, names: &[&str]) -> Vec<OptionSpec> {
    options.retain(|o| !names.contains(&o.name.as_str()));
    options
}

fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| defs.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

fn kind_of(schema: &Value, defs: &Map<String, Value>) -> String {
    let schema = resolve(schema, defs);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(toml_literal)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(value) = schema.get("const") {
        return toml_literal(value);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let mut kinds: Vec<String> = Vec::new();
            for alt in alternatives {
                let k = kind_of(alt, defs);
                if k != "null" && !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            return kinds.join(" | ");
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) => simple_kind(t, schema, defs),
        Some(Value::Array(types)) => {
            let kinds: Vec<String> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .map(|t| simple_kind(t, schema, defs))
                .collect();
            kinds.join(" | ")
        }
        _ => "any".to_string(),
    }
}

fn simple_kind(t: &str, schema: &Value, defs: &Map<String, Value>) -> String {
    match t {
        "string" => "string".into(),
        "integer" => "integer".into(),
        "number" => "number".into(),
        "boolean" => "boolean".into(),
        "null" => "null".into(),
        "array" => match schema.get("items") {
            Some(items) => format!("array of {}", kind_of(items, defs)),
            None => "array".into(),
        },
        "object" => match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) if schema.get("properties").is_none() => {
                format!("table of {}", kind_of(values, defs))
            }
            _ => "table".into(),
        },
        other => other.to_string(),
    }
}

/// A JSON value written as TOML.
fn toml_literal(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(toml_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", toml_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::Deserialize;

    use super::*;

    fn default_period() -> u32 {
        7200
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Safe,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Signer {
        /// The key.
        hmac_key: String,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Options {
        /// Listen address,
        /// `host:port`.
        address: String,
        /// Idle period, in seconds.
        #[serde(default = "default_period")]
        period: u32,
        /// Whether to be loud.
        #[serde(default)]
        loud: bool,
        /// A name, if any.
        name: Option<String>,
        /// How.
        #[serde(default)]
        mode: Option<Mode>,
        /// Paths.
        #[serde(default)]
        paths: Vec<String>,
        /// Trusted signers.
        #[serde(default)]
        signer: BTreeMap<String, Signer>,
    }

    #[test]
    fn options_come_from_the_struct_with_types_defaults_docs_and_requirement() {
        let specs = options_of::<Options>();
        let by = |n: &str| specs.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(
            specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            [
                "address", "period", "loud", "name", "mode", "paths", "signer"
            ]
        );
        let address = by("address");
        assert!(address.required);
        assert_eq!(address.kind, "string");
        assert_eq!(address.doc, "Listen address, `host:port`.");
        assert_eq!(address.default, None);
        let period = by("period");
        assert!(!period.required);
        assert_eq!(period.kind, "integer");
        assert_eq!(period.default.as_deref(), Some("7200"));
        assert_eq!(by("loud").default.as_deref(), Some("false"));
        assert_eq!(by("name").kind, "string");
        assert!(!by("name").required);
        assert_eq!(by("mode").kind, "\"fast\" | \"safe\"");
        assert_eq!(by("paths").kind, "array of string");
        assert_eq!(by("paths").default.as_deref(), Some("[]"));
        assert_eq!(by("signer").kind, "table of table");
    }

    #[test]
    fn without_drops_named_options() {
        let specs = without(options_of::<Options>(), &["loud", "mode"]);
        assert!(specs.iter().all(|s| s.name != "loud" && s.name != "mode"));
        assert_eq!(specs.len(), 5);
    }
}

//! Heka's `message_fields` (its `MessageTemplate`): each key names a header (`Logger`, `Type`,
//! `Payload`, `Hostname`, `Pid`, `Severity`, `Uuid`) or a field (`name`, `name|representation`,
//! `name|representation|type` with type `int`, `float`, `bool` or `bytes`); each value is a
//! template where `%name%` (letters, digits, `_`) is replaced by the capture of that name, or by
//! `<name>` when there is none. A header name with a `|` suffix is a field of that name.

use std::borrow::Cow;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::DecodeError;
use hekate_model::message::parse_uuid;
use hekate_model::writer::MessageWriter;

use super::original::{Headers, Value, write_field};

/// The value of a capture by name (Heka's substitutions); `None` when there is no such
/// capture.
pub(crate) type Captures<'f, 'c> = &'f dyn Fn(&str) -> Option<&'c str>;

/// `message_fields` as a template; every value must be a string.
pub(crate) fn message_template(
    section: &PluginSection,
    table: &toml::Table,
) -> Result<MessageTemplate, ConfigError> {
    let mut entries = Vec::with_capacity(table.len());
    for (k, v) in table {
        let Some(s) = v.as_str() else {
            return Err(section.error_at_value(
                &format!("message_fields.{k}"),
                format!(
                    "`message_fields` of [{}]: the value of {k:?} must be a string (a template), not {}",
                    section.name(),
                    v.type_str()
                ),
            ));
        };
        entries.push((k.as_str(), s));
    }
    Ok(MessageTemplate::new(entries))
}

/// A piece of a template value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Capture(String),
}

/// A template value, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Piece>);

impl Template {
    fn new(raw: &str) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = raw;
        while let Some(at) = rest.find('%') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let n = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if n > 0 && after.as_bytes().get(n) == Some(&b'%') {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Capture(after[..n].to_string()));
                rest = &after[n + 1..];
            } else {
                text.push('%');
                rest = after;
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Template(pieces)
    }

    /// The value with `captures` in place (`None`: Heka's nil substitutions, the raw value).
    fn render<'t, 'c>(&'t self, raw: &'t str, captures: Option<Captures<'_, 'c>>) -> Cow<'t, str> {
        let Some(lookup) = captures else {
            return Cow::Borrowed(raw);
        };
        match self.0.as_slice() {
            [] => Cow::Borrowed(""),
            [Piece::Text(t)] => Cow::Borrowed(t),
            _ => {
                let mut out = String::new();
                for p in &self.0 {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Capture(name) => match lookup(name) {
                            Some(v) => out.push_str(v),
                            None => {
                                out.push('<');
                                out.push_str(name);
                                out.push('>');
                            }
                        },
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

/// What a key sets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Logger,
    Type,
    Payload,
    Hostname,
    Pid,
    Severity,
    Uuid,
    Field {
        name: String,
        representation: String,
        kind: Kind,
    },
}

/// The value type of a field (`|type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Int,
    Float,
    Bool,
    Bytes,
}

/// One `message_fields` entry.
#[derive(Debug, Clone)]
struct Entry {
    target: Target,
    raw: String,
    template: Template,
}

/// A parsed `message_fields` table.
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageTemplate(Vec<Entry>);

impl MessageTemplate {
    /// The entries of a `message_fields` table, in the table's order.
    pub(crate) fn new<'e>(
        entries: impl IntoIterator<Item = (&'e str, &'e str)>,
    ) -> MessageTemplate {
        MessageTemplate(
            entries
                .into_iter()
                .map(|(key, raw)| Entry {
                    target: target(key),
                    raw: raw.to_string(),
                    template: Template::new(raw),
                })
                .collect(),
        )
    }

    /// Sets the headers the template names in `headers` (the caller writes them), then writes
    /// its fields with `w`, as Heka's `PopulateMessage` does: a Pid takes the integer part of its
    /// value, a Severity must be an integer, a Uuid 16 bytes or UUID text; a field whose typed
    /// value does not convert stays text.
    pub(crate) fn headers<'t, 'c>(
        &'t self,
        captures: Option<Captures<'_, 'c>>,
        headers: &mut Headers<'t>,
    ) -> Result<(), DecodeError> {
        for e in &self.0 {
            let value = || e.template.render(&e.raw, captures);
            match &e.target {
                Target::Logger => headers.logger = Some(value()),
                Target::Type => headers.msg_type = Some(value()),
                Target::Payload => headers.payload = Some(value()),
                Target::Hostname => headers.hostname = Some(value()),
                Target::Pid => {
                    let v = value();
                    let int = v.split('.').next().unwrap_or("");
                    headers.pid = Some(int.parse().map_err(|_| {
                        DecodeError(format!("message_fields: Pid {v:?} is not an integer"))
                    })?);
                }
                Target::Severity => {
                    let v = value();
                    headers.severity = Some(v.parse().map_err(|_| {
                        DecodeError(format!("message_fields: Severity {v:?} is not an integer"))
                    })?);
                }
                Target::Uuid => {
                    let v = value();
                    headers.uuid = Some(
                        <[u8; 16]>::try_from(v.as_bytes())
                            .ok()
                            .or_else(|| parse_uuid(&v))
                            .ok_or_else(|| {
                                DecodeError(format!("message_fields: invalid UUID {v:?}"))
                            })?,
                    );
                }
                Target::Field { .. } => {}
            }
        }
        Ok(())
    }

    /// Writes the template's fields.
    pub(crate) fn fields<'c>(
        &self,
        captures: Option<Captures<'_, 'c>>,
        w: &mut MessageWriter<'_>,
        scratch: &mut Vec<u8>,
    ) {
        for e in &self.0 {
            let Target::Field {
                name,
                representation,
                kind,
            } = &e.target
            else {
                continue;
            };
            let v = e.template.render(&e.raw, captures);
            let value = match kind {
                Kind::Int => v.parse().map(Value::Integer).ok(),
                Kind::Float => v.parse().map(Value::Double).ok(),
                Kind::Bool => go_bool(&v).map(Value::Bool),
                Kind::Bytes => Some(Value::Bytes(v.as_bytes())),
                Kind::String => None,
            }
            .unwrap_or(Value::String(&v));
            write_field(w, name, representation, &value, scratch);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn target(key: &str) -> Target {
    match key {
        "Logger" => Target::Logger,
        "Type" => Target::Type,
        "Payload" => Target::Payload,
        "Hostname" => Target::Hostname,
        "Pid" => Target::Pid,
        "Severity" => Target::Severity,
        "Uuid" => Target::Uuid,
        _ => {
            let mut parts = key.splitn(3, '|');
            let name = parts.next().unwrap_or("").to_string();
            let representation = parts.next().unwrap_or("").to_string();
            let kind = match parts.next().unwrap_or("") {
                "int" => Kind::Int,
                "float" => Kind::Float,
                "bool" => Kind::Bool,
                "bytes" => Kind::Bytes,
                _ => Kind::String,
            };
            Target::Field {
                name,
                representation,
                kind,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_interpolate_as_heka_does() {
        let subs = |n: &str| match n {
            "host" => Some("otherhost"),
            "substitution" => Some("a test"),
            "x_1" => Some("X"),
            _ => None,
        };
        let lookup: &dyn Fn(&str) -> Option<&'static str> = &subs;
        for (raw, want) in [
            ("this is %substitution%", "this is a test"),
            ("%host%.example.com", "otherhost.example.com"),
            ("%missing% here", "<missing> here"),
            ("100%", "100%"),
            ("%%host%%", "%otherhost%"),
            ("%not a name% %x_1%", "%not a name% X"),
            ("", ""),
        ] {
            let t = Template::new(raw);
            assert_eq!(t.render(raw, Some(lookup)), want, "{raw:?}");
            assert_eq!(t.render(raw, None), raw, "no substitutions: the raw value");
        }
    }

    #[test]
    fn keys_name_headers_or_fields_with_representation_and_type() {
        assert_eq!(target("Payload"), Target::Payload);
        assert_eq!(
            target("Payload|json"),
            Target::Field {
                name: "Payload".into(),
                representation: "json".into(),
                kind: Kind::String
            }
        );
        assert_eq!(
            target("RequestSize|B|int"),
            Target::Field {
                name: "RequestSize".into(),
                representation: "B".into(),
                kind: Kind::Int
            }
        );
        assert_eq!(
            target("Timestamp"),
            Target::Field {
                name: "Timestamp".into(),
                representation: "".into(),
                kind: Kind::String
            }
        );
    }
}

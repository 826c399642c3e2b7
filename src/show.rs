//! How `hekate cat` prints a message: readable text or one JSON object per line.

use std::io::{self, Write};

use base64::Engine as _;
use hekate_model::message::{FieldValue, MessageAccess, MessageView, ValueType, uuid_string};
use serde_json::{Map, Value, json};

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// RFC 3339 with nanoseconds in UTC, or the raw number when out of range.
pub fn format_timestamp(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
    .unwrap_or_else(|| ns.to_string())
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::String => "string",
        ValueType::Bytes => "bytes",
        ValueType::Integer => "integer",
        ValueType::Double => "double",
        ValueType::Bool => "bool",
    }
}

fn value_text(v: &FieldValue<'_>) -> String {
    match v {
        FieldValue::String(s) => format!("{:?}", lossy(s)),
        FieldValue::Bytes(b) => format!(
            "0x{}",
            b.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        FieldValue::Integer(i) => i.to_string(),
        FieldValue::Double(d) => d.to_string(),
        FieldValue::Bool(b) => b.to_string(),
    }
}

fn value_json(v: &FieldValue<'_>) -> Value {
    match v {
        FieldValue::String(s) => Value::String(lossy(s).into_owned()),
        FieldValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        FieldValue::Integer(i) => json!(i),
        FieldValue::Double(d) => json!(d),
        FieldValue::Bool(b) => json!(b),
    }
}

/// Writes the readable text form of a message, followed by a blank line.
pub fn write_text(out: &mut impl Write, m: &MessageView<'_>) -> io::Result<()> {
    writeln!(out, "Timestamp: {}", format_timestamp(m.timestamp()))?;
    writeln!(out, "Type: {}", lossy(m.msg_type()))?;
    writeln!(out, "Hostname: {}", lossy(m.hostname()))?;
    writeln!(out, "Pid: {}", m.pid())?;
    writeln!(out, "Uuid: {}", uuid_string(m.uuid()))?;
    writeln!(out, "Logger: {}", lossy(m.logger()))?;
    writeln!(out, "Payload: {}", lossy(m.payload()))?;
    writeln!(out, "EnvVersion: {}", lossy(m.env_version()))?;
    writeln!(out, "Severity: {}", m.severity())?;
    writeln!(out, "Fields:")?;
    for f in m.fields() {
        let values: Vec<String> = f.values().iter().map(value_text).collect();
        write!(
            out,
            "    | name: {:?} type: {}",
            lossy(f.name()),
            type_name(f.value_type())
        )?;
        let repr = f.representation();
        if !repr.is_empty() {
            write!(out, " representation: {:?}", lossy(repr))?;
        }
        writeln!(out, " value: [{}]", values.join(", "))?;
    }
    writeln!(out)
}

/// The JSON object form of a message (field values are always arrays; bytes are base64).
pub fn to_json(m: &MessageView<'_>) -> Value {
    let mut obj = Map::new();
    obj.insert("Uuid".into(), json!(uuid_string(m.uuid())));
    obj.insert("Timestamp".into(), json!(m.timestamp()));
    obj.insert("Type".into(), json!(lossy(m.msg_type())));
    obj.insert("Logger".into(), json!(lossy(m.logger())));
    obj.insert("Severity".into(), json!(m.severity()));
    obj.insert("Payload".into(), json!(lossy(m.payload())));
    obj.insert("EnvVersion".into(), json!(lossy(m.env_version())));
    obj.insert("Pid".into(), json!(m.pid()));
    obj.insert("Hostname".into(), json!(lossy(m.hostname())));
    let fields: Vec<Value> = m
        .fields()
        .map(|f| {
            json!({
                "name": lossy(f.name()),
                "value_type": type_name(f.value_type()),
                "representation": lossy(f.representation()),
                "value": f.values().iter().map(value_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    obj.insert("Fields".into(), Value::Array(fields));
    Value::Object(obj)
}

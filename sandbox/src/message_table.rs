//! [`Message`] to the Lua message table (`decode_message`, `read_next_field` values).

use hekate_model::message::{FieldValue, Message};
use mlua::{Lua, Table, Value};

/// A Lua value for one field value (bytes and strings become Lua strings).
pub(crate) fn field_value_to_lua(lua: &Lua, v: FieldValue<'_>) -> mlua::Result<Value> {
    Ok(match v {
        FieldValue::String(s) | FieldValue::Bytes(s) => Value::String(lua.create_string(s)?),
        FieldValue::Integer(i) => Value::Number(i as f64),
        FieldValue::Double(d) => Value::Number(d),
        FieldValue::Bool(b) => Value::Boolean(b),
    })
}

/// `decode_message`'s table: headers, and array-form Fields whose `value` is always an array.
pub(crate) fn message_to_table(lua: &Lua, m: &Message) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("Uuid", lua.create_string(&m.uuid)?)?;
    t.raw_set("Timestamp", m.timestamp as f64)?;
    let strings = [
        ("Type", &m.r#type),
        ("Logger", &m.logger),
        ("Payload", &m.payload),
        ("EnvVersion", &m.env_version),
        ("Hostname", &m.hostname),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            t.raw_set(k, lua.create_string(v)?)?;
        }
    }
    if let Some(s) = m.severity {
        t.raw_set("Severity", s as f64)?;
    }
    if let Some(p) = m.pid {
        t.raw_set("Pid", p as f64)?;
    }
    if !m.fields.is_empty() {
        let fields = lua.create_table_with_capacity(m.fields.len(), 0)?;
        for (i, f) in m.fields.iter().enumerate() {
            let ft = lua.create_table_with_capacity(0, 4)?;
            ft.raw_set("name", lua.create_string(&f.name)?)?;
            ft.raw_set("value_type", f.kind() as i32 as f64)?;
            if let Some(r) = &f.representation {
                ft.raw_set("representation", lua.create_string(r)?)?;
            }
            let values = lua.create_table_with_capacity(f.len(), 0)?;
            for ai in 0..f.len() {
                if let Some(v) = f.value(ai) {
                    values.raw_set(ai + 1, field_value_to_lua(lua, v)?)?;
                }
            }
            ft.raw_set("value", values)?;
            fields.raw_set(i + 1, ft)?;
        }
        t.raw_set("Fields", fields)?;
    }
    Ok(t)
}

//! `read_next_field`, `read_config` (`read_message` is in [`crate::cfunc`]).

use hekate_model::message::{FieldValue, ValueType};
use mlua::{Lua, Value};

use crate::config::ConfigValue;
use crate::message_table::field_value_to_lua;
use crate::state::{MessageRef, Shared};

/// `read_next_field()` → value_type, name, value, representation, count (all nil at the end).
pub(crate) fn read_next_field(
    lua: &Lua,
    shared: &Shared,
) -> mlua::Result<(Value, Value, Value, Value, Value)> {
    let nil = || Ok((Value::Nil, Value::Nil, Value::Nil, Value::Nil, Value::Nil));
    let i = shared.next_field.get();
    // SAFETY: used within this API call only; write_message is not running.
    let Some(msg) = (unsafe { shared.message() }) else {
        return nil();
    };
    let (vt, name, value, repr, count): (ValueType, &[u8], Option<FieldValue<'_>>, &[u8], usize) =
        match msg {
            MessageRef::View(v) => match v.fields().nth(i) {
                Some(f) => (
                    f.value_type(),
                    f.name(),
                    f.value(0),
                    f.representation(),
                    f.len(),
                ),
                None => return nil(),
            },
            MessageRef::Owned(m) => match m.fields.get(i) {
                Some(f) => (
                    f.kind(),
                    f.name.as_bytes(),
                    f.value(0),
                    f.representation.as_deref().unwrap_or("").as_bytes(),
                    f.len(),
                ),
                None => return nil(),
            },
        };
    shared.next_field.set(i + 1);
    let value = match value {
        Some(v) => field_value_to_lua(lua, v)?,
        None => Value::Nil,
    };
    Ok((
        Value::Number(vt as i32 as f64),
        Value::String(lua.create_string(name)?),
        value,
        Value::String(lua.create_string(repr)?),
        Value::Number(count as f64),
    ))
}

/// `read_config(name)`.
pub(crate) fn read_config(lua: &Lua, shared: &Shared, name: &str) -> mlua::Result<Value> {
    Ok(match shared.config.get(name) {
        None => Value::Nil,
        Some(ConfigValue::String(s)) => Value::String(lua.create_string(s)?),
        Some(ConfigValue::Bool(b)) => Value::Boolean(*b),
        Some(ConfigValue::Int(i)) => Value::Number(*i as f64),
        Some(ConfigValue::Float(f)) => Value::Number(*f),
    })
}

//! The output side of the Lua API: `add_to_payload`, `inject_payload`, `inject_message`,
//! `write_message`, `decode_message` (reference §5.2).

use hekate_model::message::{Field, Message, ValueType, parse_uuid};
use hekate_model::writer::random_uuid;
use mlua::{Lua, Value, Variadic};
use prost::Message as _;

use crate::circular_buffer::CircularBuffer;
use crate::config::PluginType;
use crate::error::InjectError;
use crate::hyperloglog::HyperLogLog;
use crate::lua_util::{arg_error, check_bytes, check_integer, check_string, rt};
use crate::message_table::message_to_table;
use crate::number::{format_g, write_number};
use crate::raw_table::Stamp;
use crate::sax;
use crate::state::{MessageRef, Shared};
use crate::time_util::parse_timestamp;

/// Appends `args` to the payload buffer; `first` is the 1-based position of `args[0]` in the
/// Lua call (for error messages).
fn append_payload(shared: &Shared, args: &[Value], first: usize, fname: &str) -> mlua::Result<()> {
    let mut buf = shared.payload.borrow_mut();
    let start = buf.len();
    for (i, v) in args.iter().enumerate() {
        match v {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(n) => write_number(&mut buf, *n as f64),
            Value::Number(d) => write_number(&mut buf, *d),
            Value::Boolean(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => buf.extend_from_slice(b"nil"),
            Value::UserData(ud) if ud.is::<CircularBuffer>() => {
                ud.borrow_mut::<CircularBuffer>()?.write_output(&mut buf);
            }
            // as lua_sandbox's output functions of these modules write them
            Value::UserData(ud) if ud.is::<HyperLogLog>() => {
                buf.extend_from_slice(&ud.borrow::<HyperLogLog>()?.to_bytes());
            }
            Value::UserData(ud) if ud.is::<sax::Window>() => {
                buf.extend_from_slice(ud.borrow::<sax::Window>()?.sax_string().as_bytes());
            }
            Value::UserData(ud) if ud.is::<sax::Word>() => {
                buf.extend_from_slice(ud.borrow::<sax::Word>()?.sax_string().as_bytes());
            }
            _ => {
                buf.truncate(start);
                return Err(arg_error(first + i, fname, "unsupported type"));
            }
        }
        if buf.len() > shared.output_limit {
            buf.truncate(start);
            return Err(rt("output_limit exceeded"));
        }
    }
    if buf.len() > shared.max_output.get() {
        shared.max_output.set(buf.len());
    }
    Ok(())
}

/// `add_to_payload(...)`.
pub(crate) fn add_to_payload(shared: &Shared, args: Variadic<Value>) -> mlua::Result<()> {
    append_payload(shared, &args, 1, "add_to_payload")
}

/// Counts an injection against the filter's per-call limit.
fn count_injection(shared: &Shared, fname: &str) -> Result<(), String> {
    if shared.plugin_type != PluginType::Filter {
        return Ok(());
    }
    let c = shared.inject_count.get() + 1;
    shared.inject_count.set(c);
    let limit = shared.inject_limit.get();
    if limit > 0 && c > limit {
        let e = format!("{fname}() exceeded InjectMessage count");
        *shared.fatal.borrow_mut() = Some(e.clone());
        return Err(e);
    }
    Ok(())
}

/// Hands encoder output (`output`) or an encoded message to the host.
pub(crate) fn to_host(shared: &Shared, fname: &str, bytes: &[u8]) -> Result<(), String> {
    let encoder = shared.plugin_type == PluginType::Encoder;
    let r = shared.with_host(|h| {
        if encoder {
            h.output(bytes)
        } else {
            h.inject(bytes)
        }
    });
    match r {
        None => Err(format!(
            "{fname}() cannot inject while the sandbox is loading"
        )),
        Some(Err(e)) => {
            if e == InjectError::Aborted {
                shared.aborted.set(true);
            }
            Err(format!("{fname}() {e}"))
        }
        Some(Ok(())) => {
            shared.injected.set(shared.injected.get() + 1);
            Ok(())
        }
    }
}

/// Hands a finished message (or, in encoders, its bytes) to the host. `check_size` applies the
/// output_limit to the encoding (inject_message); inject_payload's limit is its payload buffer.
fn deliver(shared: &Shared, msg: Message, fname: &str, check_size: bool) -> Result<(), String> {
    if check_size && msg.encoded_len() > shared.output_limit {
        return Err("output_limit exceeded".into());
    }
    to_host(shared, fname, &msg.to_bytes())
}

/// Fills Uuid/Timestamp and, in filters, Type prefix, Logger and Hostname.
fn finish_message(shared: &Shared, msg: &mut Message, has_timestamp: bool, filter_rules: bool) {
    if msg.uuid.len() != 16 {
        msg.uuid = random_uuid().to_vec();
    }
    if !has_timestamp {
        msg.timestamp = shared.now_ns();
    }
    if filter_rules && shared.plugin_type == PluginType::Filter {
        let t = msg.r#type.take().unwrap_or_default();
        msg.r#type = Some(format!("heka.sandbox.{t}"));
        msg.logger = Some(shared.name.clone());
        msg.hostname = Some(shared.hostname.clone());
    }
}

/// `inject_payload([type[, name[, ...]]])`.
pub(crate) fn inject_payload(shared: &Shared, args: Variadic<Value>) -> mlua::Result<()> {
    let f = "inject_payload";
    let payload_type = match args.first() {
        None | Some(Value::Nil) => "txt".to_owned(),
        Some(v) => check_string(v, 1, f)?,
    };
    let payload_name = match args.get(1) {
        None | Some(Value::Nil) => String::new(),
        Some(v) => check_string(v, 2, f)?,
    };
    if args.len() > 2 {
        append_payload(shared, &args[2..], 3, f)?;
    }
    let payload = std::mem::take(&mut *shared.payload.borrow_mut());
    if payload.is_empty() {
        return Ok(());
    }
    count_injection(shared, f).map_err(rt)?;
    if shared.plugin_type == PluginType::Encoder {
        return to_host(shared, f, &payload).map_err(rt);
    }
    let mut msg = Message {
        r#type: Some("heka.sandbox-output".into()),
        logger: Some(shared.name.clone()),
        hostname: Some(shared.hostname.clone()),
        payload: Some(match String::from_utf8(payload) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
        ..Default::default()
    };
    msg.fields
        .push(Field::string("payload_type", payload_type).with_representation("file-extension"));
    msg.fields.push(Field::string("payload_name", payload_name));
    finish_message(shared, &mut msg, false, false);
    deliver(shared, msg, f, false).map_err(rt)
}

/// Counts an `inject_message(table)` call and builds its [`Stamp`].
pub(crate) fn table_stamp(shared: &Shared) -> Result<Stamp<'_>, String> {
    count_injection(shared, "inject_message")?;
    Ok(Stamp {
        uuid: random_uuid(),
        now: shared.now_ns(),
        filter: (shared.plugin_type == PluginType::Filter).then_some((
            "heka.sandbox.",
            shared.name.as_str(),
            shared.hostname.as_str(),
        )),
    })
}

/// `inject_message(table)` once the table is encoded into `encoded`.
pub(crate) fn inject_encoded(shared: &Shared, encoded: &[u8]) -> Result<(), String> {
    if encoded.len() > shared.output_limit {
        return Err("output_limit exceeded".into());
    }
    to_host(shared, "inject_message", encoded)
}

/// `inject_message(protobuf string)`.
pub(crate) fn inject_protobuf(shared: &Shared, bytes: &[u8]) -> Result<(), String> {
    let f = "inject_message";
    if shared.plugin_type == PluginType::Encoder {
        count_injection(shared, f)?;
        if bytes.len() > shared.output_limit {
            return Err("output_limit exceeded".into());
        }
        return to_host(shared, f, bytes);
    }
    let mut msg =
        Message::decode_bytes(bytes).map_err(|_| format!("{f}() protobuf unmarshal failed"))?;
    count_injection(shared, f)?;
    finish_message(shared, &mut msg, true, true);
    deliver(shared, msg, f, true)
}

/// `decode_message(protobuf string)`.
pub(crate) fn decode_message(lua: &Lua, arg: Value) -> mlua::Result<mlua::Table> {
    let bytes = check_bytes(&arg, 1, "decode_message")?;
    let m = Message::decode_bytes(&bytes)
        .map_err(|_| rt("decode_message() could not decode protobuf string"))?;
    message_to_table(lua, &m)
}

/// `write_message(name, value[, representation[, fi[, ai]]])`.
pub(crate) fn write_message(shared: &Shared, args: Variadic<Value>) -> mlua::Result<()> {
    let f = "write_message";
    let n = args.len();
    if !(2..=5).contains(&n) {
        return Err(rt("write_message() incorrect number of arguments"));
    }
    let name = check_string(&args[0], 1, f)?;
    let value = &args[1];
    let repr = match args.get(2) {
        None | Some(Value::Nil) => String::new(),
        Some(v) => check_string(v, 3, f)?,
    };
    let fi = match args.get(3) {
        None | Some(Value::Nil) => 0,
        Some(v) => {
            let i = check_integer(v, 4, f)?;
            if i < 0 {
                return Err(arg_error(4, f, "field index must be >= 0"));
            }
            i as usize
        }
    };
    let ai = match args.get(4) {
        None | Some(Value::Nil) => None,
        Some(v) => {
            let i = check_integer(v, 5, f)?;
            if i < 0 {
                return Err(arg_error(5, f, "array index must be >= 0"));
            }
            Some(i as usize)
        }
    };
    let failed = || rt("write_message() failed");
    let mut written = shared.written.borrow_mut();
    if written.is_none() {
        // SAFETY: used right here, within this API call.
        let copy = match unsafe { shared.original_message() } {
            Some(MessageRef::View(v)) => v.to_owned_message().map_err(|_| failed())?,
            Some(MessageRef::Owned(m)) => m.clone(),
            None => return Err(failed()),
        };
        *written = Some(copy);
    }
    *shared.raw_cache.borrow_mut() = None;
    let Some(msg) = written.as_mut() else {
        return Err(failed());
    };
    write_item(msg, &name, value, &repr, fi, ai).ok_or_else(failed)
}

fn value_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Nil => Some(None),
        Value::String(s) => Some(Some(String::from_utf8_lossy(&s.as_bytes()).into_owned())),
        Value::Integer(i) => Some(Some(i.to_string())),
        Value::Number(d) => Some(Some(format_g(*d, 14))),
        _ => None,
    }
}

fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(d) => Some(*d as i64),
        Value::String(s) => std::str::from_utf8(&s.as_bytes()).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn write_item(
    msg: &mut Message,
    name: &str,
    value: &Value,
    repr: &str,
    fi: usize,
    ai: Option<usize>,
) -> Option<()> {
    match name {
        "Type" => msg.r#type = value_string(value)?,
        "Logger" => msg.logger = value_string(value)?,
        "Payload" => msg.payload = value_string(value)?,
        "EnvVersion" => msg.env_version = value_string(value)?,
        "Hostname" => msg.hostname = value_string(value)?,
        "Uuid" => {
            let Value::String(s) = value else { return None };
            let b = s.as_bytes();
            msg.uuid = if b.len() == 16 {
                b.to_vec()
            } else {
                parse_uuid(std::str::from_utf8(&b).ok()?)?.to_vec()
            };
        }
        "Timestamp" => {
            msg.timestamp = match value {
                Value::Integer(i) => *i,
                Value::Number(d) => *d as i64,
                Value::String(s) => parse_timestamp(std::str::from_utf8(&s.as_bytes()).ok()?)?,
                _ => return None,
            }
        }
        "Severity" => msg.severity = Some(i32::try_from(value_int(value)?).ok()?),
        "Pid" => msg.pid = Some(i32::try_from(value_int(value)?).ok()?),
        _ => {
            let field = name.strip_prefix("Fields[")?.strip_suffix(']')?;
            return write_field(msg, field, value, repr, fi, ai);
        }
    }
    Some(())
}

fn write_field(
    msg: &mut Message,
    name: &str,
    value: &Value,
    repr: &str,
    fi: usize,
    ai: Option<usize>,
) -> Option<()> {
    let positions: Vec<usize> = msg
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name == name)
        .map(|(i, _)| i)
        .collect();
    if fi > positions.len() {
        return None;
    }
    if value.is_nil() {
        let Some(&pos) = positions.get(fi) else {
            return Some(()); // deleting a missing field is a no-op
        };
        match ai {
            None => {
                msg.fields.remove(pos);
            }
            Some(ai) => {
                let f = &mut msg.fields[pos];
                match f.kind() {
                    ValueType::String if ai < f.value_string.len() => {
                        f.value_string.remove(ai);
                    }
                    ValueType::Bytes if ai < f.value_bytes.len() => {
                        f.value_bytes.remove(ai);
                    }
                    ValueType::Integer if ai < f.value_integer.len() => {
                        f.value_integer.remove(ai);
                    }
                    ValueType::Double if ai < f.value_double.len() => {
                        f.value_double.remove(ai);
                    }
                    ValueType::Bool if ai < f.value_bool.len() => {
                        f.value_bool.remove(ai);
                    }
                    _ => {}
                }
            }
        }
        return Some(());
    }
    let vt = match value {
        Value::Boolean(_) => ValueType::Bool,
        Value::Integer(_) | Value::Number(_) => ValueType::Double,
        Value::String(_) => ValueType::String,
        _ => return None,
    };
    let ai = ai.unwrap_or(0);
    let field = match positions.get(fi) {
        None => {
            if ai != 0 {
                return None;
            }
            msg.fields.push(Field {
                name: name.to_owned(),
                value_type: Some(vt as i32),
                representation: (!repr.is_empty()).then(|| repr.to_owned()),
                ..Default::default()
            });
            msg.fields.last_mut()?
        }
        Some(&pos) => {
            let f = &mut msg.fields[pos];
            if f.kind() != vt {
                return None;
            }
            if !repr.is_empty() {
                f.representation = Some(repr.to_owned());
            }
            f
        }
    };
    let len = field.len();
    if ai > len {
        return None;
    }
    fn put<T>(v: &mut Vec<T>, ai: usize, x: T) {
        if ai < v.len() {
            v[ai] = x;
        } else {
            v.push(x);
        }
    }
    match value {
        Value::Boolean(b) => put(&mut field.value_bool, ai, *b),
        Value::Integer(i) => put(&mut field.value_double, ai, *i as f64),
        Value::Number(d) => put(&mut field.value_double, ai, *d),
        Value::String(s) => put(
            &mut field.value_string,
            ai,
            String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        ),
        _ => return None,
    }
    Some(())
}

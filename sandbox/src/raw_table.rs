//! Encoding a Lua message table (reference §5.3) straight from the Lua stack into Heka's
//! protobuf encoding.
//!
//! This is `inject_message`'s hot path (a decoder injects one table per line): no intermediate
//! [`Message`](hekate_model::message::Message), no per-call allocation once the scratch
//! buffers have grown. It uses only Lua API calls that neither allocate nor raise (`lua_next`,
//! `lua_rawgeti`, `lua_type`, `lua_tolstring` on strings only, `lua_tonumber`,
//! `lua_toboolean`, `lua_objlen`, pushes into stack space reserved by the caller), so Rust values
//! may be alive while it runs. String slices borrowed from Lua stay valid because the table is
//! on the stack and nothing here can trigger a garbage collection step.

use std::borrow::Cow;
use std::ffi::c_int;

use hekate_model::message::{UUID_SIZE, ValueType, parse_uuid};
use hekate_model::varint;
use mlua::ffi::{self, lua_State};

use crate::number::format_g;

/// Stack slots [`encode_message_table`] needs above the table.
pub(crate) const STACK_NEEDED: c_int = 16;

/// Why a table is not a valid message; the text follows "could not encode protobuf - ".
pub(crate) type EncodeError = String;

/// Reusable buffers of the encoder.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The encoded message handed to the host.
    pub(crate) out: Vec<u8>,
    fields: Vec<u8>,
    field: Vec<u8>,
    ints: Vec<i64>,
    doubles: Vec<f64>,
    bools: Vec<bool>,
    strings: Vec<(*const u8, usize)>,
}

/// What the injecting plugin imposes on the message.
pub(crate) struct Stamp<'a> {
    /// A fresh UUID, used when the table has none (or a malformed one).
    pub(crate) uuid: [u8; UUID_SIZE],
    /// The time used when the table has no Timestamp.
    pub(crate) now: i64,
    /// Filters: (Type prefix, Logger, Hostname).
    pub(crate) filter: Option<(&'a str, &'a str, &'a str)>,
}

// --- protobuf writing -------------------------------------------------------------------------

const WT_VARINT: u8 = 0;
const WT_LEN: u8 = 2;

fn put_key(out: &mut Vec<u8>, tag: u32, wt: u8) {
    varint::put(out, u64::from(tag << 3 | u32::from(wt)));
}

fn put_len_field(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, WT_LEN);
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_varint_field(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(out, tag, WT_VARINT);
    varint::put(out, v);
}

// --- Lua stack helpers -----------------------------------------------------------------------

fn type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => "userdata",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        _ => "no value",
    }
}

/// The bytes of the string at `idx`.
///
/// # Safety
/// `idx` is a valid index holding a string; the slice lives while the value is referenced.
unsafe fn bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: a string value: lua_tolstring returns its interned bytes without converting.
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

/// Bytes as valid UTF-8 (the owned model and prost require it): borrowed when already valid.
fn utf8(b: &[u8]) -> Cow<'_, [u8]> {
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        return Cow::Borrowed(b);
    }
    Cow::Owned(String::from_utf8_lossy(b).into_owned().into_bytes())
}

/// A header value as string bytes: strings as is, numbers as Lua's `tostring` prints them.
///
/// # Safety
/// `idx` is a valid index.
unsafe fn string_value<'a>(l: *mut lua_State, idx: c_int) -> Option<Cow<'a, [u8]>> {
    // SAFETY: forwarded.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => Some(utf8(bytes(l, idx))),
            ffi::LUA_TNUMBER => Some(Cow::Owned(
                format_g(ffi::lua_tonumber(l, idx), 14).into_bytes(),
            )),
            _ => None,
        }
    }
}

/// # Safety
/// `idx` is a valid index.
unsafe fn number_value(l: *mut lua_State, idx: c_int) -> Option<f64> {
    // SAFETY: forwarded.
    unsafe { (ffi::lua_type(l, idx) == ffi::LUA_TNUMBER).then(|| ffi::lua_tonumber(l, idx)) }
}

/// Absolute form of a relative stack index.
///
/// # Safety
/// `l` is a live state.
unsafe fn abs(l: *mut lua_State, idx: c_int) -> c_int {
    if idx > 0 || idx <= ffi::LUA_REGISTRYINDEX {
        idx
    } else {
        // SAFETY: forwarded.
        unsafe { ffi::lua_gettop(l) + idx + 1 }
    }
}

/// Pushes `t[i]` and returns its type.
///
/// # Safety
/// `t` is an absolute index of a table; a stack slot is free.
unsafe fn rawgeti(l: *mut lua_State, t: c_int, i: usize) -> c_int {
    // SAFETY: forwarded; rawget neither allocates nor raises.
    unsafe {
        ffi::lua_rawgeti_(l, t, c_int::try_from(i).unwrap_or(c_int::MAX));
        ffi::lua_type(l, -1)
    }
}

// --- the encoder -----------------------------------------------------------------------------

#[derive(Default)]
struct Headers<'a> {
    uuid: Option<[u8; UUID_SIZE]>,
    timestamp: Option<i64>,
    msg_type: Option<Cow<'a, [u8]>>,
    logger: Option<Cow<'a, [u8]>>,
    severity: Option<i32>,
    payload: Option<Cow<'a, [u8]>>,
    env_version: Option<Cow<'a, [u8]>>,
    pid: Option<i32>,
    hostname: Option<Cow<'a, [u8]>>,
}

/// Encodes the message table at `idx` into `scratch.out`.
///
/// # Safety
/// `l` is a live state, `idx` holds a table, and [`STACK_NEEDED`] slots are free.
pub(crate) unsafe fn encode_message_table(
    l: *mut lua_State,
    idx: c_int,
    scratch: &mut Scratch,
    stamp: &Stamp<'_>,
) -> Result<(), EncodeError> {
    // SAFETY (whole function): see the contract; the stack top is restored on every path.
    unsafe {
        let t = abs(l, idx);
        let top = ffi::lua_gettop(l);
        let r = encode_at(l, t, scratch, stamp);
        ffi::lua_settop(l, top);
        r
    }
}

/// # Safety
/// As [`encode_message_table`]; may leave values on the stack.
unsafe fn encode_at(
    l: *mut lua_State,
    t: c_int,
    scratch: &mut Scratch,
    stamp: &Stamp<'_>,
) -> Result<(), EncodeError> {
    // SAFETY (whole function): see the contract.
    unsafe {
        let mut h = Headers::default();
        scratch.fields.clear();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TSTRING {
                match bytes(l, -2) {
                    b"Uuid" => match ffi::lua_type(l, -1) {
                        ffi::LUA_TSTRING => {
                            let b = bytes(l, -1);
                            h.uuid = match <[u8; UUID_SIZE]>::try_from(b) {
                                Ok(u) => Some(u),
                                Err(_) => std::str::from_utf8(b).ok().and_then(parse_uuid),
                            };
                        }
                        ffi::LUA_TNIL => {}
                        other => {
                            return Err(format!("Uuid must be a string, got {}", type_name(other)));
                        }
                    },
                    b"Timestamp" => h.timestamp = number_value(l, -1).map(|d| d as i64),
                    b"Type" => h.msg_type = string_value(l, -1),
                    b"Logger" => h.logger = string_value(l, -1),
                    b"Payload" => h.payload = string_value(l, -1),
                    b"EnvVersion" => h.env_version = string_value(l, -1),
                    b"Hostname" => h.hostname = string_value(l, -1),
                    b"Severity" => h.severity = number_value(l, -1).map(|d| d as i32),
                    b"Pid" => h.pid = number_value(l, -1).map(|d| d as i32),
                    b"Fields" => match ffi::lua_type(l, -1) {
                        ffi::LUA_TTABLE => encode_fields(l, abs(l, -1), scratch)?,
                        ffi::LUA_TNIL => {}
                        other => {
                            return Err(format!(
                                "Fields must be a table, got {}",
                                type_name(other)
                            ));
                        }
                    },
                    _ => {}
                }
            }
            ffi::lua_pop(l, 1);
        }

        let out = &mut scratch.out;
        out.clear();
        put_len_field(out, 1, h.uuid.as_ref().unwrap_or(&stamp.uuid));
        put_varint_field(out, 2, h.timestamp.unwrap_or(stamp.now) as u64);
        match stamp.filter {
            Some((prefix, logger, hostname)) => {
                let t = h.msg_type.as_deref().unwrap_or(b"");
                put_key(out, 3, WT_LEN);
                varint::put(out, (prefix.len() + t.len()) as u64);
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(t);
                put_len_field(out, 4, logger.as_bytes());
                h.hostname = Some(Cow::Borrowed(hostname.as_bytes()));
            }
            None => {
                if let Some(v) = &h.msg_type {
                    put_len_field(out, 3, v);
                }
                if let Some(v) = &h.logger {
                    put_len_field(out, 4, v);
                }
            }
        }
        if let Some(s) = h.severity {
            put_varint_field(out, 5, i64::from(s) as u64);
        }
        if let Some(v) = &h.payload {
            put_len_field(out, 6, v);
        }
        if let Some(v) = &h.env_version {
            put_len_field(out, 7, v);
        }
        if let Some(p) = h.pid {
            put_varint_field(out, 8, i64::from(p) as u64);
        }
        if let Some(v) = &h.hostname {
            put_len_field(out, 9, v);
        }
        out.extend_from_slice(&scratch.fields);
        Ok(())
    }
}

/// # Safety
/// `fields` is an absolute index of a table; [`STACK_NEEDED`] - 2 slots are free.
unsafe fn encode_fields(
    l: *mut lua_State,
    fields: c_int,
    s: &mut Scratch,
) -> Result<(), EncodeError> {
    // SAFETY (whole function): see the contract; the caller resets the stack top on error.
    unsafe {
        let array_form = rawgeti(l, fields, 1) == ffi::LUA_TTABLE;
        ffi::lua_pop(l, 1);
        if array_form {
            let n = ffi::lua_objlen(l, fields);
            for i in 1..=n {
                if rawgeti(l, fields, i) != ffi::LUA_TTABLE {
                    return Err("array form Fields entries must be tables".into());
                }
                let entry = ffi::lua_gettop(l);
                let meta = scan_meta(l, entry);
                let Some(name) = meta.name else {
                    return Err("field name must be a string".into());
                };
                if meta.value_type == Some(-1) {
                    return Err(format!(
                        "invalid value_type for field '{}'",
                        String::from_utf8_lossy(name)
                    ));
                }
                encode_field(l, entry + 1, name, meta.value_type, meta.representation, s)?;
                ffi::lua_settop(l, entry - 1);
            }
            return Ok(());
        }
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, fields) != 0 {
            let v = ffi::lua_gettop(l);
            let owned_name;
            let name: &[u8] = match ffi::lua_type(l, -2) {
                ffi::LUA_TSTRING => bytes(l, -2),
                ffi::LUA_TNUMBER => {
                    owned_name = format_g(ffi::lua_tonumber(l, -2), 14);
                    owned_name.as_bytes()
                }
                other => {
                    return Err(format!(
                        "field name must be a string, got {}",
                        type_name(other)
                    ));
                }
            };
            // A table is either an array of values or {value=…, value_type=…, representation=…}.
            let is_meta = ffi::lua_type(l, v) == ffi::LUA_TTABLE && {
                let first = rawgeti(l, v, 1);
                ffi::lua_pop(l, 1);
                first == ffi::LUA_TNIL
            };
            if is_meta {
                let meta = scan_meta(l, v);
                if let Some(vt) = meta.value_type
                    && !(0..=4).contains(&vt)
                {
                    return Err(format!(
                        "invalid value_type for field '{}'",
                        String::from_utf8_lossy(name)
                    ));
                }
                encode_field(l, v + 1, name, meta.value_type, meta.representation, s)?;
                ffi::lua_settop(l, v);
            } else {
                encode_field(l, v, name, None, None, s)?;
            }
            ffi::lua_pop(l, 1);
        }
        Ok(())
    }
}

/// The keys of a field table, read in one pass.
struct Meta<'a> {
    name: Option<&'a [u8]>,
    value_type: Option<i32>,
    representation: Option<&'a [u8]>,
}

/// Scans the field table at absolute index `t` once, pushing its `value` (nil when absent) at
/// `t + 1` and returning the other keys (`value_type` -1 when invalid). Strings borrowed from
/// the table stay valid while the table is on the stack.
///
/// # Safety
/// `t` is an absolute index of a table and the top of the stack; three slots are free.
unsafe fn scan_meta<'a>(l: *mut lua_State, t: c_int) -> Meta<'a> {
    // SAFETY: forwarded; leaves exactly one value (the `value` slot) above `t`.
    unsafe {
        let mut meta = Meta {
            name: None,
            value_type: None,
            representation: None,
        };
        ffi::lua_pushnil(l); // the value slot, t + 1
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TSTRING {
                match bytes(l, -2) {
                    b"value" => {
                        ffi::lua_pushvalue(l, -1);
                        ffi::lua_replace(l, t + 1);
                    }
                    b"value_type" => match ffi::lua_type(l, -1) {
                        ffi::LUA_TNUMBER => {
                            let n = ffi::lua_tonumber(l, -1);
                            meta.value_type = Some(if (0.0..=4.0).contains(&n) {
                                n as i32
                            } else {
                                -1
                            });
                        }
                        ffi::LUA_TNIL => {}
                        _ => meta.value_type = Some(-1),
                    },
                    b"representation" if ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {
                        meta.representation = Some(bytes(l, -1)).filter(|b| !b.is_empty());
                    }
                    b"name" if ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {
                        meta.name = Some(bytes(l, -1));
                    }
                    _ => {}
                }
            }
            ffi::lua_pop(l, 1);
        }
        meta
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Bool,
}

/// Appends one field (tag 10) for the scalar or array at absolute index `v` to `s.fields`;
/// nothing for nil / empty arrays.
///
/// # Safety
/// `v` is a valid absolute index; two stack slots are free.
unsafe fn encode_field(
    l: *mut lua_State,
    v: c_int,
    name: &[u8],
    vt: Option<i32>,
    repr: Option<&[u8]>,
    s: &mut Scratch,
) -> Result<(), EncodeError> {
    // SAFETY (whole function): forwarded; every rawgeti is popped.
    unsafe {
        let (is_array, count) = match ffi::lua_type(l, v) {
            ffi::LUA_TNIL | ffi::LUA_TLIGHTUSERDATA => return Ok(()),
            ffi::LUA_TTABLE => (true, ffi::lua_objlen(l, v)),
            _ => (false, 1),
        };
        if count == 0 {
            return Ok(());
        }
        s.ints.clear();
        s.doubles.clear();
        s.bools.clear();
        s.strings.clear();
        let mut kind = None;
        for i in 1..=count {
            let t = if is_array {
                rawgeti(l, v, i)
            } else {
                ffi::lua_pushvalue(l, v);
                ffi::lua_type(l, -1)
            };
            let k = match t {
                ffi::LUA_TSTRING => Kind::String,
                ffi::LUA_TNUMBER => Kind::Number,
                ffi::LUA_TBOOLEAN => Kind::Bool,
                other => {
                    ffi::lua_pop(l, 1);
                    return Err(format!("unsupported type: {}", type_name(other)));
                }
            };
            if kind.is_some_and(|prev| prev != k) {
                ffi::lua_pop(l, 1);
                return Err("array has mixed types".into());
            }
            kind = Some(k);
            match k {
                Kind::String => {
                    // referenced by the array table (or the field table) on the stack
                    let b = bytes(l, -1);
                    s.strings.push((b.as_ptr(), b.len()));
                }
                Kind::Number if vt == Some(ValueType::Integer as i32) => {
                    s.ints.push(ffi::lua_tonumber(l, -1) as i64)
                }
                Kind::Number => s.doubles.push(ffi::lua_tonumber(l, -1)),
                Kind::Bool => s.bools.push(ffi::lua_toboolean(l, -1) != 0),
            }
            ffi::lua_pop(l, 1);
        }
        let value_type = match (kind, vt) {
            (Some(Kind::String), Some(1)) => ValueType::Bytes,
            (Some(Kind::String), _) => ValueType::String,
            (Some(Kind::Number), Some(2)) => ValueType::Integer,
            (Some(Kind::Number), _) => ValueType::Double,
            (Some(Kind::Bool), _) | (None, _) => ValueType::Bool,
        };
        let f = &mut s.field;
        f.clear();
        put_len_field(f, 1, &utf8(name));
        put_varint_field(f, 2, value_type as u64);
        if let Some(r) = repr {
            put_len_field(f, 3, &utf8(r));
        }
        match value_type {
            ValueType::String => {
                for &(p, n) in &s.strings {
                    put_len_field(f, 4, &utf8(std::slice::from_raw_parts(p, n)));
                }
            }
            ValueType::Bytes => {
                for &(p, n) in &s.strings {
                    put_len_field(f, 5, std::slice::from_raw_parts(p, n));
                }
            }
            ValueType::Integer => {
                put_key(f, 6, WT_LEN);
                let len: usize = s.ints.iter().map(|&i| varint::encoded_len(i as u64)).sum();
                varint::put(f, len as u64);
                for &i in &s.ints {
                    varint::put(f, i as u64);
                }
            }
            ValueType::Double => {
                put_key(f, 7, WT_LEN);
                varint::put(f, (s.doubles.len() * 8) as u64);
                for &d in &s.doubles {
                    f.extend_from_slice(&d.to_le_bytes());
                }
            }
            ValueType::Bool => {
                put_key(f, 8, WT_LEN);
                varint::put(f, s.bools.len() as u64);
                for &b in &s.bools {
                    f.push(u8::from(b));
                }
            }
        }
        put_len_field(&mut s.fields, 10, &s.field);
        Ok(())
    }
}

//! The `cjson` module as Heka's sandbox provides it (lua-cjson 2.1 semantics): `encode`,
//! `decode`, `null`, `decode_null`, and the usual configuration functions. `new()` and
//! `encode_keep_buffer()` are disabled, as in Heka. The encode result is bounded by the
//! sandbox's output_limit; JSON `null` is dropped on decode unless `decode_null(true)`.
//! Nesting is limited to [`MAX_DEPTH`] levels both ways (lua-cjson allows 1000), so that deep
//! input can never exhaust the native stack.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, Table, Value};

use crate::lua_util::{check_bytes, loc, rt, to_number, type_name};
use crate::number::format_g;

/// The deepest nesting `encode` and `decode` accept (and the most `encode_max_depth` /
/// `decode_max_depth` can set).
pub(crate) const MAX_DEPTH: usize = 128;

#[derive(Debug)]
struct Options {
    decode_null: Cell<bool>,
    precision: Cell<usize>,
    encode_invalid_numbers: Cell<bool>,
    max_depth: Cell<usize>,
    decode_max_depth: Cell<usize>,
    sparse_convert: Cell<bool>,
    sparse_ratio: Cell<usize>,
    sparse_safe: Cell<usize>,
    output_limit: usize,
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

struct Encoder<'a> {
    opts: &'a Options,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn check_size(&self) -> mlua::Result<()> {
        if self.out.len() > self.opts.output_limit {
            return Err(rt("output_limit exceeded"));
        }
        Ok(())
    }

    fn number(&mut self, d: f64) -> mlua::Result<()> {
        if !d.is_finite() {
            if self.opts.encode_invalid_numbers.get() {
                let s = if d.is_nan() {
                    "nan"
                } else if d > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                self.out.extend_from_slice(s.as_bytes());
                return Ok(());
            }
            return Err(rt("Cannot serialise number: must not be NaN or Inf"));
        }
        self.out
            .extend_from_slice(format_g(d, self.opts.precision.get()).as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                c if c < 0x20 || c == 0x7f => {
                    self.out
                        .extend_from_slice(format!("\\u{:04x}", c).as_bytes());
                }
                c => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }

    /// The array length of `t` if it is an array (all keys positive integers), `None` for an
    /// object.
    fn array_len(&self, t: &Table) -> mlua::Result<Option<usize>> {
        let mut max = 0usize;
        let mut count = 0usize;
        for pair in t.pairs::<Value, Value>() {
            let (k, _) = pair?;
            let idx = match k {
                Value::Integer(i) if i >= 1 => i as usize,
                Value::Number(d) if d >= 1.0 && d.fract() == 0.0 && d < 1e15 => d as usize,
                _ => return Ok(None),
            };
            max = max.max(idx);
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let ratio = self.opts.sparse_ratio.get();
        if ratio > 0 && max > count.saturating_mul(ratio) && max > self.opts.sparse_safe.get() {
            if self.opts.sparse_convert.get() {
                return Ok(None);
            }
            return Err(rt("Cannot serialise table: excessively sparse array"));
        }
        Ok(Some(max))
    }

    fn value(&mut self, v: &Value, depth: usize) -> mlua::Result<()> {
        match v {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(i) => self.number(*i as f64)?,
            Value::Number(d) => self.number(*d)?,
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Table(t) => {
                let depth = depth + 1;
                if depth > self.opts.max_depth.get() {
                    return Err(rt(format!("Cannot serialise, excessive nesting ({depth})")));
                }
                match self.array_len(t)? {
                    Some(len) => {
                        self.out.push(b'[');
                        for i in 1..=len {
                            if i > 1 {
                                self.out.push(b',');
                            }
                            let item: Value = t.raw_get(i)?;
                            self.value(&item, depth)?;
                            self.check_size()?;
                        }
                        self.out.push(b']');
                    }
                    None => {
                        self.out.push(b'{');
                        let mut first = true;
                        for pair in t.pairs::<Value, Value>() {
                            let (k, item) = pair?;
                            if !first {
                                self.out.push(b',');
                            }
                            first = false;
                            match &k {
                                Value::String(s) => self.string(&s.as_bytes()),
                                Value::Integer(_) | Value::Number(_) => {
                                    let d = to_number(&k).unwrap_or(0.0);
                                    self.string(format_g(d, self.opts.precision.get()).as_bytes())
                                }
                                _ => {
                                    return Err(rt(
                                        "Cannot serialise table: table key must be a number or string",
                                    ));
                                }
                            }
                            self.out.push(b':');
                            self.value(&item, depth)?;
                            self.check_size()?;
                        }
                        self.out.push(b'}');
                    }
                }
            }
            other => {
                return Err(rt(format!(
                    "Cannot serialise {}: type not supported",
                    type_name(other)
                )));
            }
        }
        self.check_size()
    }
}

fn to_lua(lua: &Lua, v: serde_json::Value, opts: &Options) -> mlua::Result<Value> {
    Ok(match v {
        serde_json::Value::Null => {
            if opts.decode_null.get() {
                null()
            } else {
                Value::Nil
            }
        }
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(lua.create_string(&s)?),
        serde_json::Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, item) in a.into_iter().enumerate() {
                let v = to_lua(lua, item, opts)?;
                if !v.is_nil() {
                    t.raw_set(i + 1, v)?;
                }
            }
            Value::Table(t)
        }
        serde_json::Value::Object(o) => {
            let t = lua.create_table_with_capacity(0, o.len())?;
            for (k, item) in o {
                let v = to_lua(lua, item, opts)?;
                if !v.is_nil() {
                    t.raw_set(lua.create_string(&k)?, v)?;
                }
            }
            Value::Table(t)
        }
    })
}

fn depth_of(b: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in b {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `cjson.decode(text)`.
fn decode(lua: &Lua, o: &Options, v: &Value) -> mlua::Result<Value> {
    let text = check_bytes(v, 1, "decode")?;
    let max = o.decode_max_depth.get();
    if depth_of(&text) > max {
        return Err(rt(format!(
            "Found too many nested data structures ({}) at character 1",
            max + 1
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(&text);
    de.disable_recursion_limit();
    let parsed: serde_json::Value = serde::Deserialize::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| rt(format!("Expected value but found invalid token ({e})")))?;
    to_lua(lua, parsed, o)
}

/// Builds the `cjson` module table.
pub(crate) fn module(lua: &Lua, output_limit: usize) -> mlua::Result<Table> {
    let opts = Rc::new(Options {
        decode_null: Cell::new(false),
        precision: Cell::new(14),
        encode_invalid_numbers: Cell::new(false),
        max_depth: Cell::new(MAX_DEPTH),
        decode_max_depth: Cell::new(MAX_DEPTH),
        sparse_convert: Cell::new(false),
        sparse_ratio: Cell::new(2),
        sparse_safe: Cell::new(10),
        output_limit,
    });
    let t = lua.create_table()?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    t.set("null", null())?;

    let o = opts.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut enc = Encoder {
                opts: &o,
                out: Vec::new(),
            };
            loc(lua, enc.value(&v, 0))?;
            lua.create_string(&enc.out)
        })?,
    )?;

    let o = opts.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, v: Value| loc(lua, decode(lua, &o, &v)))?,
    )?;

    let o = opts.clone();
    t.set(
        "decode_null",
        lua.create_function(move |_, v: Value| {
            if let Value::Boolean(b) = v {
                o.decode_null.set(b);
            }
            Ok(o.decode_null.get())
        })?,
    )?;

    let o = opts.clone();
    t.set(
        "encode_number_precision",
        lua.create_function(move |_, v: Value| {
            if let Some(p) = to_number(&v) {
                if !(1.0..=14.0).contains(&p) {
                    return Err(rt(
                        "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
                    ));
                }
                o.precision.set(p as usize);
            }
            Ok(o.precision.get() as f64)
        })?,
    )?;

    let o = opts.clone();
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |_, v: Value| {
            if let Value::Boolean(b) = v {
                o.encode_invalid_numbers.set(b);
            }
            Ok(o.encode_invalid_numbers.get())
        })?,
    )?;

    let o = opts.clone();
    t.set(
        "encode_max_depth",
        lua.create_function(move |_, v: Value| {
            if let Some(d) = to_number(&v).filter(|d| *d >= 1.0) {
                o.max_depth.set((d as usize).min(MAX_DEPTH));
            }
            Ok(o.max_depth.get() as f64)
        })?,
    )?;

    let o = opts.clone();
    t.set(
        "decode_max_depth",
        lua.create_function(move |_, v: Value| {
            if let Some(d) = to_number(&v).filter(|d| *d >= 1.0) {
                o.decode_max_depth.set((d as usize).min(MAX_DEPTH));
            }
            Ok(o.decode_max_depth.get() as f64)
        })?,
    )?;

    let o = opts;
    t.set(
        "encode_sparse_array",
        lua.create_function(move |_, (c, r, s): (Value, Value, Value)| {
            if let Value::Boolean(b) = c {
                o.sparse_convert.set(b);
            }
            if let Some(r) = to_number(&r).filter(|d| *d >= 0.0) {
                o.sparse_ratio.set(r as usize);
            }
            if let Some(s) = to_number(&s).filter(|d| *d >= 0.0) {
                o.sparse_safe.set(s as usize);
            }
            Ok((
                o.sparse_convert.get(),
                o.sparse_ratio.get() as f64,
                o.sparse_safe.get() as f64,
            ))
        })?,
    )?;
    Ok(t)
}

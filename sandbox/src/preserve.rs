//! `preserve_data`: global data serialised as Lua source (reference §5.5).
//!
//! The file starts with a guard that discards it when the script's `_PRESERVATION_VERSION`
//! (default 0) differs from the one it was written with, then assigns every global that holds
//! data: strings, numbers, booleans, tables (shared and cyclic references kept), circular
//! buffers, hyperloglogs, bloom and cuckoo filters, SAX windows and words. Functions, threads,
//! light userdata, the standard library and module tables are skipped. The file is run after the script's own global code,
//! so restored values win.

use std::collections::HashMap;
use std::ffi::c_void;

use mlua::{AnyUserData, Table, Value};

use crate::bloom_filter::BloomFilter;
use crate::circular_buffer::CircularBuffer;
use crate::cuckoo_filter::CuckooFilter;
use crate::hyperloglog::HyperLogLog;
use crate::lua_literal::{is_identifier, number_literal, quote};
use crate::sax;

const MAX_DEPTH: usize = 100;

/// A literal for a primitive value usable as a table key or value; `None` otherwise.
fn primitive(v: &Value) -> Option<String> {
    match v {
        Value::Boolean(b) => Some(b.to_string()),
        Value::Integer(i) => Some(number_literal(*i as f64)),
        Value::Number(d) => Some(number_literal(*d)),
        Value::String(s) => Some(quote(&s.as_bytes())),
        _ => None,
    }
}

struct Serializer<'a> {
    out: String,
    seen: HashMap<*const c_void, String>,
    skip: &'a [*const c_void],
}

impl Serializer<'_> {
    fn value(&mut self, path: &str, v: &Value, depth: usize) -> mlua::Result<()> {
        if let Some(lit) = primitive(v) {
            self.out.push_str(&format!("{path} = {lit}\n"));
            return Ok(());
        }
        match v {
            Value::Table(t) => self.table(path, t, depth),
            Value::UserData(ud) => self.userdata(path, ud),
            _ => Ok(()),
        }
    }

    fn userdata(&mut self, path: &str, ud: &AnyUserData) -> mlua::Result<()> {
        if !ud.is::<CircularBuffer>()
            && !ud.is::<HyperLogLog>()
            && !ud.is::<BloomFilter>()
            && !ud.is::<CuckooFilter>()
            && !ud.is::<sax::Window>()
            && !ud.is::<sax::Word>()
        {
            return Ok(());
        }
        let p = ud.to_pointer();
        if let Some(first) = self.seen.get(&p) {
            self.out.push_str(&format!("{path} = {first}\n"));
            return Ok(());
        }
        self.seen.insert(p, path.to_owned());
        if let Ok(cb) = ud.borrow::<CircularBuffer>() {
            cb.serialize_lua(path, &mut self.out);
        } else if let Ok(hll) = ud.borrow::<HyperLogLog>() {
            hll.serialize_lua(path, &mut self.out);
        } else if let Ok(bf) = ud.borrow::<BloomFilter>() {
            bf.serialize_lua(path, &mut self.out);
        } else if let Ok(cf) = ud.borrow::<CuckooFilter>() {
            cf.serialize_lua(path, &mut self.out);
        } else if let Ok(w) = ud.borrow::<sax::Window>() {
            w.serialize_lua(path, &mut self.out);
        } else if let Ok(w) = ud.borrow::<sax::Word>() {
            w.serialize_lua(path, &mut self.out);
        }
        Ok(())
    }

    fn table(&mut self, path: &str, t: &Table, depth: usize) -> mlua::Result<()> {
        let p = t.to_pointer();
        if self.skip.contains(&p) {
            return Ok(());
        }
        if let Some(first) = self.seen.get(&p) {
            self.out.push_str(&format!("{path} = {first}\n"));
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(mlua::Error::RuntimeError(format!(
                "{path}: tables nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.seen.insert(p, path.to_owned());
        self.out.push_str(&format!("{path} = {{}}\n"));
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let Some(key) = primitive(&k) else { continue };
            let child = format!("{path}[{key}]");
            self.value(&child, &v, depth + 1)?;
        }
        Ok(())
    }
}

/// Serialises the globals of `globals`, skipping the tables in `skip` (library and module
/// tables).
pub(crate) fn serialize(
    globals: &Table,
    skip: &[*const c_void],
    version: i64,
) -> mlua::Result<String> {
    let mut s = Serializer {
        out: format!("if (_PRESERVATION_VERSION or 0) ~= {version} then return end\n"),
        seen: HashMap::new(),
        skip,
    };
    for pair in globals.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let path = match &k {
            Value::String(name) if name.as_bytes().as_ref() == b"_VERSION" => continue,
            Value::String(name) if is_identifier(&name.as_bytes()) => {
                String::from_utf8_lossy(&name.as_bytes()).into_owned()
            }
            other => match primitive(other) {
                Some(key) => format!("_G[{key}]"),
                None => continue,
            },
        };
        s.value(&path, &v, 0)?;
    }
    Ok(s.out)
}

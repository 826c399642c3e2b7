//! Argument checks and error texts shared by the Lua API functions, worded like Lua 5.1's
//! `luaL_check*` so scripts see the messages they saw under hekad.

use mlua::{Error, Lua, Value};

use crate::number::format_g;

/// The Lua type name of a value, as `type()` returns it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// An error raised by one of the sandbox's API functions; [`located`] turns it into a Lua
/// runtime error prefixed with the calling line, as `luaL_error` does.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiError {}

/// An API error carrying `msg`.
pub(crate) fn rt(msg: impl Into<String>) -> Error {
    Error::external(ApiError(msg.into()))
}

/// Prefixes an [`ApiError`] with `source:line:` of the Lua code that called the API function
/// (nothing when the caller is not Lua code), like `luaL_error`. Other errors pass unchanged.
pub(crate) fn located(lua: &Lua, e: Error) -> Error {
    if let Error::ExternalError(inner) = &e
        && let Some(api) = inner.downcast_ref::<ApiError>()
    {
        let loc = lua
            .inspect_stack(1, |d| match (d.source().short_src, d.current_line()) {
                (Some(src), Some(line)) if d.source().what != "C" => format!("{src}:{line}: "),
                _ => String::new(),
            })
            .unwrap_or_default();
        return Error::RuntimeError(loc + &api.0);
    }
    e
}

/// [`located`] for a result.
pub(crate) fn loc<T>(lua: &Lua, r: mlua::Result<T>) -> mlua::Result<T> {
    r.map_err(|e| located(lua, e))
}

/// `bad argument #n to 'fname' (msg)`.
pub(crate) fn arg_error(n: usize, fname: &str, msg: &str) -> Error {
    rt(format!("bad argument #{n} to '{fname}' ({msg})"))
}

/// `luaL_argcheck(lua, n == gettop, 0, ...)` as a method call reports it (`self` not counted).
pub(crate) fn count_error(fname: &str) -> Error {
    rt(format!(
        "bad argument #-1 to '{fname}' (incorrect number of arguments)"
    ))
}

/// Runs `f` over a hashed key's bytes, as lua_sandbox's probabilistic modules take keys: a
/// string in place, a number as the eight bytes of its double; anything else is argument #1's
/// error.
pub(crate) fn with_key<R>(key: &Value, fname: &str, f: impl FnOnce(&[u8]) -> R) -> mlua::Result<R> {
    match key {
        Value::String(s) => Ok(f(&s.as_bytes())),
        Value::Integer(i) => Ok(f(&(*i as f64).to_ne_bytes())),
        Value::Number(d) => Ok(f(&d.to_ne_bytes())),
        _ => Err(arg_error(1, fname, "must be a string or number")),
    }
}

fn type_error(n: usize, fname: &str, expected: &str, got: &Value) -> Error {
    arg_error(
        n,
        fname,
        &format!("{expected} expected, got {}", type_name(got)),
    )
}

/// The number a value converts to under Lua 5.1's rules (numbers, numeric strings).
pub(crate) fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_lua_number(&s.as_bytes()),
        _ => None,
    }
}

/// Lua 5.1's `lua_str2number`: decimal (C `strtod`) or hexadecimal integer, surrounding spaces
/// allowed.
pub(crate) fn parse_lua_number(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?.trim();
    if s.is_empty() {
        return None;
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = u64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if neg { -v } else { v });
    }
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("inf") || lower.starts_with("nan") {
        // strtod accepts these
        return s.parse::<f64>().ok().or(match lower.as_str() {
            "inf" | "infinity" => Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            "nan" => Some(f64::NAN),
            _ => None,
        });
    }
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// `luaL_checknumber`.
pub(crate) fn check_number(v: &Value, n: usize, fname: &str) -> mlua::Result<f64> {
    to_number(v).ok_or_else(|| type_error(n, fname, "number", v))
}

/// `luaL_optnumber`.
pub(crate) fn opt_number(v: &Value, n: usize, fname: &str, default: f64) -> mlua::Result<f64> {
    match v {
        Value::Nil => Ok(default),
        _ => check_number(v, n, fname),
    }
}

/// `luaL_checkinteger` (truncates toward zero, saturating).
pub(crate) fn check_integer(v: &Value, n: usize, fname: &str) -> mlua::Result<i64> {
    check_number(v, n, fname).map(|d| d as i64)
}

/// `luaL_checklstring`: strings, and numbers converted with `%.14g`.
pub(crate) fn check_bytes(v: &Value, n: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(i) => Ok(i.to_string().into_bytes()),
        Value::Number(d) => Ok(format_g(*d, 14).into_bytes()),
        _ => Err(type_error(n, fname, "string", v)),
    }
}

/// [`check_bytes`] as UTF-8 (lossy).
pub(crate) fn check_string(v: &Value, n: usize, fname: &str) -> mlua::Result<String> {
    check_bytes(v, n, fname).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `luaL_checkoption`.
pub(crate) fn check_option<'a>(
    v: &Value,
    n: usize,
    fname: &str,
    default: Option<&'a str>,
    options: &[&'a str],
) -> mlua::Result<&'a str> {
    let name = match (v, default) {
        (Value::Nil, Some(d)) => d.to_owned(),
        _ => check_string(v, n, fname)?,
    };
    options
        .iter()
        .find(|o| **o == name)
        .copied()
        .ok_or_else(|| arg_error(n, fname, &format!("invalid option '{name}'")))
}

/// The message of a Lua error as the script would see it: the innermost cause of a callback
/// error, without mlua's traceback.
pub(crate) fn error_text(e: &Error) -> String {
    match e {
        Error::CallbackError { cause, .. } => error_text(cause),
        Error::RuntimeError(s) => strip_traceback(s).to_owned(),
        Error::MemoryError(_) => "not enough memory".to_owned(),
        Error::SyntaxError { message, .. } => strip_traceback(message).to_owned(),
        Error::BadArgument { to, pos, cause, .. } => {
            let f = to.as_deref().unwrap_or("?");
            let f = f.rsplit(['.', ':']).next().unwrap_or(f);
            format!("bad argument #{pos} to '{f}' ({})", error_text(cause))
        }
        Error::FromLuaConversionError { from, to, .. } => format!("{to} expected, got {from}"),
        Error::WithContext { cause, .. } => error_text(cause),
        Error::ExternalError(inner) => strip_traceback(&inner.to_string()).to_owned(),
        other => strip_traceback(&other.to_string()).to_owned(),
    }
}

fn strip_traceback(s: &str) -> &str {
    match s.find("\nstack traceback:") {
        Some(i) => &s[..i],
        None => s,
    }
}

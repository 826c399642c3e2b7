//! The `struct` module: Roberto Ierusalimschy's library for converting Lua values to and from
//! C structs, as Heka's lua_sandbox builds it (struct 0.2, `struct.c` v1.4), so that scripts
//! see the bytes, results and error messages they saw under hekad.
//!
//! ```lua
//! local s = struct.pack(">I2 c0", 5, "hello")    -- "\0\5hello"
//! local n, str, nxt = struct.unpack(">I2 c5", s)  -- 5, "hello", 8
//! local str2 = struct.unpack(">I2 c0", s)         -- "hello" (c0 consumes the length)
//! struct.size("<!4 b i4")                         -- 8
//! ```
//!
//! # Format
//!
//! A format is read byte by byte up to its end (or its first NUL, as the C string it was):
//!
//! | option | meaning |
//! |--------|---------|
//! | ` ` | ignored |
//! | `>` / `<` | big / little endian from here on (initially native) |
//! | `!n` | maximum alignment `n`, a power of 2; `!` alone is the native alignment (8) |
//! | `x` | one zero byte, no value |
//! | `b` `B` | signed / unsigned `char` (1 byte) |
//! | `h` `H` | `short` (2) |
//! | `l` `L` | `long` (8 on LP64) |
//! | `T` | `size_t` (8) |
//! | `in` `In` | integer of `n` bytes, `n` up to 32 (absent: `int`, 4) |
//! | `f` `d` | `float` (4), `double` (8), in the current byte order |
//! | `cn` | exactly `n` bytes of one string (absent `n`: 1) |
//! | `c0` | pack: the whole string; unpack: as many bytes as the previous value says (that value is not returned) |
//! | `s` | zero-terminated string |
//!
//! There is no `=` option in this version: it is an invalid format option, like any other byte.
//! An element of size `k` (not `c`, `s`) is aligned to `min(k, alignment)` from the start of
//! the packed string (`unpack`: from the start of the data, whatever the initial position).
//! `struct.unpack` returns the values and then the position after the last byte read.
//!
//! # C behaviour kept
//!
//! The code follows `struct.c` v1.4 on x86-64 step by step, including its quirks:
//!
//! - Numbers become integers with C casts: `(long)n` for negative values, `(unsigned long)n`
//!   otherwise, truncating toward zero; out-of-range values and NaN give what x86-64 gives
//!   (`0x8000000000000000`, and `0` for `2^64` and above), on any host. The low `n` bytes are
//!   written; with sizes above 8, the bytes past the eighth are zero (no sign extension).
//! - Unpacked integers are read into 64 bits (larger sizes keep their 8 least significant
//!   bytes) and sign-extended with the C shift `~0 << (8n - 1)`, whose count x86-64 takes
//!   modulo 64.
//! - Size digits are read into a C `int` that wraps; the `i`/`I` limit check is `n > 32` only.
//! - `pack` reports a short `c`/`s` string against the argument after it (`arg` was already
//!   incremented in the C code).
//! - `unpack`'s position arithmetic wraps like `size_t`: position 0 starts at `SIZE_MAX`. `c0`
//!   takes its size from the top of the C stack: the previous result (a number or a numeric
//!   string), or, when there is none, the data string itself, which is then popped and so
//!   hides the string read from the results. Before each option the C stack (arguments
//!   included) must have room for one more value under Lua 5.1's 8000 ("stack overflow (too
//!   many results)"), so 7998 values at most; mlua's callback machinery needs a few slots
//!   of its own and may refuse a little earlier, with its own message.
//! - `size` ignores unknown letters and digits (only non-alphanumeric bytes are checked).
//!
//! Where the C code reads or copies outside the data string (an initial position of 0 or one
//! that wraps, a negative `c0` size, a negative size from an overflowing number), this module
//! raises "data string too short" instead; `pack` with such an integer size (C: a huge copy)
//! raises the "integral size" error. A format byte above 127 shows as U+FFFD in
//! "invalid format option" messages (C puts the raw byte in).

use std::ffi::{c_int, c_long, c_short};
use std::mem::{align_of, size_of};

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use crate::lua_util::{arg_error, check_bytes, check_number, loc, parse_lua_number, rt};

/// Largest `n` of `in` / `In` (`MAXINTSIZE`).
const MAX_INT_SIZE: i32 = 32;

/// The native alignment `!` sets: that of a `double` in a struct, at least `sizeof(int)`.
const MAX_ALIGN: i32 = if align_of::<f64>() > size_of::<c_int>() {
    align_of::<f64>() as i32
} else {
    size_of::<c_int>() as i32
};

/// Lua 5.1's `LUAI_MAXCSTACK`: the most values a C function can have on its stack.
const MAX_C_STACK: usize = 8000;

const NATIVE_LITTLE: bool = cfg!(target_endian = "little");

/// 2^63 as a double.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// `(long)n` as x86-64 computes it (`cvttsd2si`): truncation toward zero, and
/// `0x8000000000000000` for NaN and values out of range.
fn c_long_cast(n: f64) -> i64 {
    if (-TWO_63..TWO_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// `(unsigned long)n` / `(size_t)n` as compiled for x86-64: below 2^63 (negative values
/// included) through `(long)`, above through `(long)(n - 2^63)` with the top bit flipped.
fn c_ulong_cast(n: f64) -> u64 {
    if n >= TWO_63 {
        (c_long_cast(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_long_cast(n) as u64
    }
}

/// The current byte order and alignment (`Header`).
#[derive(Debug, Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: NATIVE_LITTLE,
            align: 1,
        }
    }
}

/// A format string read as the C code reads it: up to the first NUL.
#[derive(Debug)]
struct Format<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Format<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Format {
            bytes: &bytes[..end],
            at: 0,
        }
    }

    fn next_opt(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// `getnum`: the decimal number at the current position (in a wrapping C `int`), or `df`.
    fn getnum(&mut self, df: i32) -> i32 {
        let mut a: Option<i32> = None;
        while let Some(&d) = self.bytes.get(self.at).filter(|d| d.is_ascii_digit()) {
            a = Some(
                a.unwrap_or(0)
                    .wrapping_mul(10)
                    .wrapping_add(i32::from(d - b'0')),
            );
            self.at += 1;
        }
        a.unwrap_or(df)
    }
}

/// `(size_t)` of a C `int`: negative values sign-extend to huge sizes.
fn int_to_size(n: i32) -> usize {
    n as isize as usize
}

/// `optsize`: the size of option `opt`, reading its digits; 0 for options without one.
fn optsize(opt: u8, fmt: &mut Format) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => size_of::<c_short>(),
        b'L' | b'l' => size_of::<c_long>(),
        b'T' => size_of::<usize>(),
        b'f' => size_of::<f32>(),
        b'd' => size_of::<f64>(),
        b'x' => 1,
        b'c' => int_to_size(fmt.getnum(1)),
        b'i' | b'I' => {
            let sz = fmt.getnum(size_of::<c_int>() as i32);
            if sz > MAX_INT_SIZE {
                return Err(int_size_error(sz));
            }
            int_to_size(sz)
        }
        _ => 0,
    })
}

fn int_size_error(sz: i32) -> mlua::Error {
    rt(format!(
        "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
    ))
}

/// `gettoalign`: padding needed before an element of `size` bytes at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

/// `controloptions`: byte order, alignment and spaces; anything else is an invalid option.
fn controloptions(opt: u8, fmt: &mut Format, h: &mut Header, fname: &str) -> mlua::Result<()> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.little = false;
            Ok(())
        }
        b'<' => {
            h.little = true;
            Ok(())
        }
        b'!' => {
            let a = fmt.getnum(MAX_ALIGN);
            if a <= 0 || a & (a - 1) != 0 {
                return Err(rt(format!("alignment {a} is not a power of 2")));
            }
            h.align = a as usize;
            Ok(())
        }
        _ => Err(arg_error(
            1,
            fname,
            &format!(
                "invalid format option '{}'",
                String::from_utf8_lossy(&[opt])
            ),
        )),
    }
}

/// `luaL_checknumber` of argument `n` (1-based), "no value" past the last one.
fn number_arg(args: &[Value], n: usize, fname: &str) -> mlua::Result<f64> {
    match args.get(n - 1) {
        Some(v) => check_number(v, n, fname),
        None => Err(arg_error(n, fname, "number expected, got no value")),
    }
}

/// `luaL_checklstring` of argument `n` (1-based), "no value" past the last one.
fn bytes_arg(args: &[Value], n: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1) {
        Some(v) => check_bytes(v, n, fname),
        None => Err(arg_error(n, fname, "string expected, got no value")),
    }
}

/// `putinteger`: the low `size` bytes of `n` as a C integer, in the given byte order.
fn putinteger(out: &mut Vec<u8>, n: f64, little: bool, size: usize) -> mlua::Result<()> {
    let value = if n < 0.0 {
        c_long_cast(n) as u64
    } else {
        c_ulong_cast(n)
    };
    // the C function takes the size as an int
    let size_int = size as i32;
    if size_int < 0 {
        return Err(int_size_error(size_int));
    }
    let byte = |i: usize| if i < 8 { (value >> (8 * i)) as u8 } else { 0 };
    let size = size_int as usize;
    if little {
        out.extend((0..size).map(byte));
    } else {
        out.extend((0..size).rev().map(byte));
    }
    Ok(())
}

/// `struct.pack(fmt, ...)`.
fn pack(args: &[Value]) -> mlua::Result<Vec<u8>> {
    const F: &str = "pack";
    let fmt_bytes = bytes_arg(args, 1, F)?;
    let mut fmt = Format::new(&fmt_bytes);
    let mut h = Header::default();
    let mut arg = 2;
    let mut total: usize = 0;
    let mut out = Vec::new();
    while let Some(opt) = fmt.next_opt() {
        let mut size = optsize(opt, &mut fmt)?;
        let toalign = gettoalign(total, &h, opt, size);
        total = total.wrapping_add(toalign);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg(args, arg, F)?;
                arg += 1;
                putinteger(&mut out, n, h.little, size)?;
            }
            b'x' => out.push(0),
            b'f' => {
                let f = number_arg(args, arg, F)? as f32;
                arg += 1;
                out.extend(if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = number_arg(args, arg, F)?;
                arg += 1;
                out.extend(if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = bytes_arg(args, arg, F)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // reported against `arg` after the increment, as the C code does
                    return Err(arg_error(arg, F, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(opt, &mut fmt, &mut h, F)?,
        }
        total = total.wrapping_add(size);
    }
    Ok(out)
}

/// A value on `unpack`'s (emulated) C stack.
#[derive(Debug, Clone, Copy)]
enum Slot<'a> {
    Num(f64),
    Str(&'a [u8]),
}

impl Slot<'_> {
    /// `lua_isnumber` / `lua_tonumber`.
    fn number(&self) -> Option<f64> {
        match self {
            Slot::Num(n) => Some(*n),
            Slot::Str(b) => parse_lua_number(b),
        }
    }
}

/// `data[pos .. pos + len]`; where the C code would read outside the string (its checks wrap
/// around), "data string too short".
fn window(data: &[u8], pos: usize, len: usize) -> mlua::Result<&[u8]> {
    pos.checked_add(len)
        .and_then(|end| data.get(pos..end))
        .ok_or_else(too_short)
}

fn too_short() -> mlua::Error {
    arg_error(2, "unpack", "data string too short")
}

/// `getinteger`: `bytes` (`size` of them, none when `size` is not positive) as an integer,
/// sign-extended when `signed`.
fn getinteger(bytes: &[u8], size: i32, little: bool, signed: bool) -> f64 {
    let fold = |l: u64, b: &u8| (l << 8) | u64::from(*b);
    let l = if little {
        bytes.iter().rev().fold(0, fold)
    } else {
        bytes.iter().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    // `~0 << (size*8 - 1)` with an int count; x86-64 takes it modulo 64
    let count = size.wrapping_mul(8).wrapping_sub(1);
    let mask = (!0u64).wrapping_shl(count as u32);
    let l = if l & mask != 0 { l | mask } else { l };
    l as i64 as f64
}

/// `struct.unpack(fmt, s [, i])`.
fn unpack(lua: &Lua, args: &[Value]) -> mlua::Result<MultiValue> {
    const F: &str = "unpack";
    let fmt_bytes = bytes_arg(args, 1, F)?;
    let data_bytes = bytes_arg(args, 2, F)?;
    let data = data_bytes.as_slice();
    let ld = data.len();
    // luaL_optinteger: a (lua_Integer) cast, minus one, as a size_t
    let init = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(v) => c_long_cast(check_number(v, 3, F)?),
    };
    let mut pos = init.wrapping_sub(1) as usize;
    let mut fmt = Format::new(&fmt_bytes);
    let mut h = Header::default();
    // lua_settop(L, 2): the format and the data string stay below the results
    let mut stack: Vec<Slot> = vec![Slot::Str(&fmt_bytes), Slot::Str(data)];
    while let Some(opt) = fmt.next_opt() {
        let mut size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if pos.wrapping_add(size) > ld {
            return Err(too_short());
        }
        if stack.len() + 1 > MAX_C_STACK {
            return Err(rt("stack overflow (too many results)"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                // the C function takes the size as an int: a negative one reads nothing
                let size_int = size as i32;
                let bytes = if size_int > 0 {
                    window(data, pos, size_int as usize)?
                } else {
                    &[]
                };
                stack.push(Slot::Num(getinteger(
                    bytes,
                    size_int,
                    h.little,
                    opt.is_ascii_lowercase(),
                )));
            }
            b'x' => {}
            b'f' => {
                let b = window(data, pos, size)?;
                let b = [b[0], b[1], b[2], b[3]];
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                stack.push(Slot::Num(f64::from(f)));
            }
            b'd' => {
                let b: [u8; 8] = window(data, pos, size)?
                    .try_into()
                    .map_err(|_| too_short())?;
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                stack.push(Slot::Num(d));
            }
            b'c' => {
                if size == 0 {
                    let Some(n) = stack.last().and_then(Slot::number) else {
                        return Err(rt("format `c0' needs a previous size"));
                    };
                    size = c_ulong_cast(n) as usize;
                    stack.pop();
                    if pos.wrapping_add(size) > ld {
                        return Err(too_short());
                    }
                }
                stack.push(Slot::Str(window(data, pos, size)?));
            }
            b's' => {
                let rest = data.get(pos..).ok_or_else(too_short)?;
                let Some(len) = rest.iter().position(|&b| b == 0) else {
                    return Err(rt("unfinished string in data"));
                };
                stack.push(Slot::Str(&rest[..len]));
                size = len + 1;
            }
            _ => controloptions(opt, &mut fmt, &mut h, F)?,
        }
        pos = pos.wrapping_add(size);
    }
    // lua_pushinteger(L, pos + 1): size_t arithmetic, then a lua_Integer
    stack.push(Slot::Num(pos.wrapping_add(1) as i64 as f64));
    // return lua_gettop(L) - 2: the values above the first two slots
    stack[2..]
        .iter()
        .map(|s| match s {
            Slot::Num(n) => Ok(Value::Number(*n)),
            Slot::Str(b) => lua.create_string(b).map(Value::String),
        })
        .collect()
}

/// `struct.size(fmt)`.
fn size(args: &[Value]) -> mlua::Result<f64> {
    const F: &str = "size";
    let fmt_bytes = bytes_arg(args, 1, F)?;
    let mut fmt = Format::new(&fmt_bytes);
    let mut h = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next_opt() {
        let size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(1, F, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(1, F, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, &mut fmt, &mut h, F)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}

/// Builds the `struct` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            let out = loc(lua, pack(&args))?;
            lua.create_string(out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| loc(lua, unpack(lua, &args)))?,
    )?;
    t.set(
        "size",
        lua.create_function(|lua, args: Variadic<Value>| loc(lua, size(&args)))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", module(&lua).unwrap()).unwrap();
        lua
    }

    fn err(lua: &Lua, code: &str) -> String {
        crate::lua_util::error_text(&lua.load(code).set_name("=test").exec().unwrap_err())
    }

    /// Runs Lua statements that `assert` their expectations.
    fn check(lua: &Lua, code: &str) {
        if let Err(e) = lua.load(code).set_name("=check").exec() {
            panic!("{}", crate::lua_util::error_text(&e));
        }
    }

    fn bytes(lua: &Lua, expr: &str) -> Vec<u8> {
        let s: mlua::LuaString = lua.load(format!("return {expr}")).eval().unwrap();
        s.as_bytes().to_vec()
    }

    #[test]
    fn byte_exact_packs() {
        let lua = lua();
        let cases: &[(&str, &[u8])] = &[
            (r#"struct.pack(">I2", 258)"#, b"\x01\x02"),
            (r#"struct.pack("<I2", 258)"#, b"\x02\x01"),
            (r#"struct.pack("b", 10)"#, b"\x0a"),
            (r#"struct.pack("bbb", 10, 20, 30)"#, b"\x0a\x14\x1e"),
            (r#"struct.pack("<h", -10)"#, b"\xf6\xff"),
            (r#"struct.pack(">h", 10)"#, b"\x00\x0a"),
            (
                r#"struct.pack("<l", -10)"#,
                b"\xf6\xff\xff\xff\xff\xff\xff\xff",
            ),
            (r#"struct.pack(">L", 10)"#, b"\0\0\0\0\0\0\0\x0a"),
            (r#"struct.pack("<T", 10)"#, b"\x0a\0\0\0\0\0\0\0"),
            (r#"struct.pack(">i", 1)"#, b"\0\0\0\x01"),
            (r#"struct.pack("<i3", 10)"#, b"\x0a\0\0"),
            (r#"struct.pack("<I3", -10)"#, b"\xf6\xff\xff"),
            (r#"struct.pack(">i8", 1000)"#, b"\0\0\0\0\0\0\x03\xe8"),
            (r#"struct.pack("<i8", 5000)"#, b"\x88\x13\0\0\0\0\0\0"),
            (r#"struct.pack(">i8", 2^52)"#, b"\0\x10\0\0\0\0\0\0"),
            (
                r#"struct.pack("<i8", 2^52 - 1)"#,
                b"\xff\xff\xff\xff\xff\xff\x0f\0",
            ),
            (
                r#"struct.pack(">i8", -2^52 - 1)"#,
                b"\xff\xef\xff\xff\xff\xff\xff\xff",
            ),
            (
                r#"struct.pack("<i8", -2^52 - 1)"#,
                b"\xff\xff\xff\xff\xff\xff\xef\xff",
            ),
            (r#"struct.pack(">f", 1.5)"#, b"\x3f\xc0\0\0"),
            (r#"struct.pack("<f", 1.5)"#, b"\0\0\xc0\x3f"),
            (r#"struct.pack(">d", 1.5)"#, b"\x3f\xf8\0\0\0\0\0\0"),
            (r#"struct.pack("<d", -2)"#, b"\0\0\0\0\0\0\0\xc0"),
            (r#"struct.pack("x")"#, b"\0"),
            (r#"struct.pack("c", "alo alo")"#, b"a"),
            (r#"struct.pack("c4", "alo alo")"#, b"alo "),
            (r#"struct.pack(" c0 ", "alo alo")"#, b"alo alo"),
            (r#"struct.pack("!4b>c7", 1, "alo alo")"#, b"\x01alo alo"),
            (r#"struct.pack("!2<s", "alo alo")"#, b"alo alo\0"),
            (r#"struct.pack("s", "a\0b")"#, b"a\0b\0"),
            (r#"struct.pack("cc3b", "hello", "hello", 0)"#, b"hhel\0"),
            (r#"struct.pack(">sh", "aloi", 3)"#, b"aloi\0\0\x03"),
            (r#"struct.pack(">!sh", "aloi", 3)"#, b"aloi\0\0\0\x03"),
            (r#"struct.pack(">>>h <!!!<h", 10, 10)"#, b"\0\x0a\x0a\0"),
            (r#"struct.pack("")"#, b""),
            (r#"struct.pack("   ")"#, b""),
            (r#"struct.pack(">>><<<!!")"#, b""),
            // the format ends at its first NUL, as a C string
            ("struct.pack('b\\0b', 1, 2)", b"\x01"),
            // numbers are accepted for strings (%.14g), numeric strings for numbers
            (r#"struct.pack("c0", 12.5)"#, b"12.5"),
            (r#"struct.pack("B", "0x41")"#, b"A"),
        ];
        for (expr, want) in cases {
            assert_eq!(bytes(&lua, expr), *want, "{expr}");
        }
    }

    #[test]
    fn integer_conversions_follow_c_casts() {
        let lua = lua();
        let cases: &[(&str, &[u8])] = &[
            // truncation toward zero, low bytes kept
            (r#"struct.pack("B", 3.9)"#, b"\x03"),
            (r#"struct.pack("b", -3.9)"#, b"\xfd"),
            (r#"struct.pack("B", -1)"#, b"\xff"),
            (r#"struct.pack("b", 255)"#, b"\xff"),
            (r#"struct.pack("<H", 65537)"#, b"\x01\0"),
            (r#"struct.pack("<I", -0.5)"#, b"\0\0\0\0"),
            // 2^63 .. 2^64 through the unsigned cast
            (r#"struct.pack(">L", 2^63)"#, b"\x80\0\0\0\0\0\0\0"),
            (
                r#"struct.pack(">L", 2^64 - 2048)"#,
                b"\xff\xff\xff\xff\xff\xff\xf8\0",
            ),
            // out of range: x86-64's integer indefinite
            (r#"struct.pack(">L", 2^64)"#, b"\0\0\0\0\0\0\0\0"),
            (r#"struct.pack(">l", -2^63 - 4096)"#, b"\x80\0\0\0\0\0\0\0"),
            (r#"struct.pack(">l", 0/0)"#, b"\x80\0\0\0\0\0\0\0"),
            // sizes above 8: zero bytes, no sign extension
            (
                r#"struct.pack("<i10", -1)"#,
                b"\xff\xff\xff\xff\xff\xff\xff\xff\0\0",
            ),
            (r#"struct.pack(">I9", 258)"#, b"\0\0\0\0\0\0\0\x01\x02"),
            (r#"struct.pack("i0", 5)"#, b""),
        ];
        for (expr, want) in cases {
            assert_eq!(bytes(&lua, expr), *want, "{expr}");
        }
        check(
            &lua,
            r##"
            local big = struct.pack("<i32", 5001)
            assert(big == string.char(137, 19) .. string.rep("\0", 30))
            assert(struct.pack(">i32", 10000000) == string.rep("\0", 29) .. "\152\150\128")
            -- unpack keeps the 8 least significant bytes and sign-extends with a shift
            -- count taken modulo 64
            assert(struct.unpack(">i16", string.rep("\0", 8) .. string.rep("\255", 8)) == -1)
            assert(struct.unpack("<i16", string.rep("\255", 8) .. string.rep("\0", 8)) == -1)
            assert(struct.unpack(">I9", "\1\0\0\0\0\0\0\0\5") == 5)
            assert(struct.unpack(">i9", "\0\0\0\0\0\0\0\0\128") == -128)
            assert(struct.unpack("i0", "") == 0)
            assert(struct.unpack(">L", string.rep("\255", 8)) == 2^64)
            assert(struct.unpack(">l", "\128\0\0\0\0\0\0\0") == -2^63)
            "##,
        );
    }

    #[test]
    fn round_trips_every_option_both_orders() {
        let lua = lua();
        check(
            &lua,
            r##"
            local lims = {{'B', 255}, {'B', 0}, {'b', 127}, {'b', -128},
                          {'I1', 255}, {'i1', 127}, {'i1', -128},
                          {'H', 2^16 - 1}, {'h', 2^15 - 1}, {'h', -2^15},
                          {'I2', 2^16 - 1}, {'i2', 2^15 - 1}, {'i2', -2^15},
                          {'I3', 2^24 - 1}, {'i3', -2^23},
                          {'L', 2^53}, {'l', 2^53}, {'l', -2^53},
                          {'T', 2^40 + 3},
                          {'I', 2^32 - 1}, {'i', 2^31 - 1}, {'i', -2^31},
                          {'I4', 2^32 - 1}, {'i4', 2^31 - 1}, {'i4', -2^31},
                          {'I8', 2^53}, {'i8', -2^53}, {'i16', -12345},
                          {'f', 3.5}, {'f', -0.25}, {'d', 5.1}, {'d', -24e-5},
                          {'c3', 'abc'}, {'s', 'hello'}, {'s', ''}}
            for _, e in ipairs{'', '>', '<', '!', '>!4', '<!8'} do
              for _, l in ipairs(lims) do
                local fmt = e .. l[1]
                local packed = struct.pack(fmt, l[2])
                local v, nxt = struct.unpack(fmt, packed)
                assert(v == l[2], fmt)
                assert(nxt == #packed + 1, fmt)
                if l[1] ~= 's' then assert(struct.size(fmt) == #packed, fmt) end
              end
            end
            -- native order is little endian on the hosts hekate runs on
            assert(struct.pack("h", 1) == struct.pack("<h", 1))
            assert(struct.pack("d", 2) == struct.pack("<d", 2))
            assert(struct.pack(">h", 1) ~= struct.pack("<h", 1))
            -- several values in one call
            local a, b, c, d = struct.unpack("<lhbxxH", struct.pack("<lhbxxH", -2, 10, -10, 250))
            assert(a == -2 and b == 10 and c == -10 and d == 250)
            a, b, c, d = struct.unpack(">lBxxH", struct.pack(">lBxxH", -20, 10, 250))
            assert(a == -20 and b == 10 and c == 250 and d == struct.size(">lBxxH") + 1)
            local x = struct.pack(" > I2 f i4 I2 ", 10, 20, -30, 40001)
            assert(#x == 2 + 4 + 4 + 2)
            assert(struct.unpack(">f", x, 3) == 20)
            a, b, c, d = struct.unpack(">i2fi4I2", x)
            assert(a == 10 and b == 20 and c == -30 and d == 40001)
            -- floats are rounded to single precision
            assert(struct.unpack("f", struct.pack("f", 0.1)) ~= 0.1)
            assert(struct.unpack("d", struct.pack("d", 0.1)) == 0.1)
            assert(struct.unpack("f", struct.pack("f", 1e300)) == math.huge)
            "##,
        );
    }

    #[test]
    fn alignment() {
        let lua = lua();
        check(
            &lua,
            r##"
            local d = struct.pack("d", 5.1)
            local ali = {[1] = "\1" .. d, [2] = "\1\0" .. d, [4] = "\1\0\0\0" .. d,
                         [8] = "\1\0\0\0\0\0\0\0" .. d}
            for a, r in pairs(ali) do
              assert(struct.pack("!" .. a .. "bd", 1, 5.1) == r)
              local x, y, n = struct.unpack("!" .. a .. "bd", r)
              assert(x == 1 and y == 5.1 and n == #r + 1)
            end
            -- "!" alone: native alignment (8)
            assert(struct.pack("!bd", 1, 5.1) == ali[8])
            assert(struct.size("!bd") == 16)
            assert(struct.size("!4bi") > struct.size("!1bi"))
            assert(struct.pack("<!8i4", 3) == "\3\0\0\0")
            assert(struct.pack("<!8xi4", 3) == "\0\0\0\0\3\0\0\0")
            assert(struct.pack("<!8xxxi4", 3) == "\0\0\0\0\3\0\0\0")
            assert(struct.unpack("<!4xxi4", "\0\0\0\0\3\0\0\0") == 3)
            assert(struct.pack("<!2 b i4 h", 2, 3, 5) == "\2\0\3\0\0\0\5\0")
            local a, b, c = struct.unpack("<!2bi4h", "\2\0\3\0\0\0\5\0")
            assert(a == 2 and b == 3 and c == 5)
            assert(struct.pack("<!8bi4h", 2, 3, 5) == "\2\0\0\0\3\0\0\0\5\0")
            -- c and s are never aligned
            assert(struct.pack("!8bc2s", 1, "ab", "c") == "\1abc\0")
            -- non-power-of-two sizes align with C's mask arithmetic
            assert(struct.pack("<!4bi3", 1, 2) == "\1\0\0\2\0\0")
            -- alignment is relative to the start of the data, not the initial position
            local x = struct.pack("!8 xd", 12)
            assert(struct.unpack("!8d", x, 3) == 12)
            a, b = struct.unpack("<!si4", "aloi\0\0\0\0\3\2\0\0")
            assert(a == "aloi" and b == 2*256 + 3)
            "##,
        );
    }

    #[test]
    fn strings_and_c0() {
        let lua = lua();
        check(
            &lua,
            r##"
            local s = "hello hello"
            local x = struct.pack(" b c0 ", #s, s)
            assert(x == "\11hello hello")
            local v, n = struct.unpack("bc0", x)
            assert(v == s and n == #x + 1)
            -- the length is not returned
            assert(select("#", struct.unpack("bc0", x)) == 2)
            x = struct.pack("Lc0", #s, s)
            assert(struct.unpack("  L  c0   ", x) == s)
            for _, f in ipairs{"B", "l", "i2", "f", "d"} do
              for _, str in ipairs{"", "a", "alo", string.rep("x", 200)} do
                assert(struct.unpack(f .. "c0", struct.pack(f .. "c0", #str, str)) == str)
              end
            end
            -- a numeric string before c0 gives the size too (lua_isnumber)
            assert(struct.unpack("sc0", "3\0abcd") == "abc")
            -- with nothing unpacked before, c0 looks at the data string itself
            local r = {struct.unpack("c0", "1")}
            assert(#r == 1 and r[1] == 2)
            assert(struct.unpack("c3", "alo") == "alo")
            assert(struct.unpack("bc0", "\3alo") == "alo")
            -- s: zero-terminated, multiple in a row, from a position
            x = struct.pack("!4sss", "hi", "hello", "bye")
            local a, b, c = struct.unpack("sss", x)
            assert(a == "hi" and b == "hello" and c == "bye")
            local i
            a, i = struct.unpack("s", x, 1); assert(a == "hi" and i == 4)
            a, i = struct.unpack("s", x, i); assert(a == "hello" and i == 10)
            a, i = struct.unpack("s", x, i); assert(a == "bye" and i == 14)
            assert(struct.unpack("s", "alo\0") == "alo")
            assert(struct.unpack("s", "\0") == "")
            assert(struct.unpack("xxxxb", struct.pack("cc3b", s, s, 0)) == 0)
            "##,
        );
    }

    #[test]
    fn doc_examples() {
        let lua = lua();
        check(
            &lua,
            r##"
            local s = struct.pack(">I2 c0", 5, "hello")
            assert(s == "\0\5hello")
            local n, str, nxt = struct.unpack(">I2 c5", s)
            assert(n == 5 and str == "hello" and nxt == 8)
            local str2, nxt2, none = struct.unpack(">I2 c0", s)
            assert(str2 == "hello" and nxt2 == 8 and none == nil)
            assert(struct.size("<!4 b i4") == 8)
            "##,
        );
    }

    #[test]
    fn positions() {
        let lua = lua();
        check(
            &lua,
            r##"
            local x = struct.pack("!>iiiii", 1, 2, 3, 4, 5)
            local i, k = 1, 1
            while i < #x do
              local v, j = struct.unpack("!>i", x, i)
              assert(j == i + 4 and v == k)
              i = j; k = k + 1
            end
            assert(k == 6)
            local a, b, c, d, e = struct.unpack(">fdfH",
                "000" .. struct.pack(">fdfH", 3.5, -24e-5, 200.5, 30000), 4)
            assert(a == 3.5 and b == -24e-5 and c == 200.5 and d == 30000 and e == 22)
            a, b, c, d, e = struct.unpack("<fdxxfH",
                "000" .. struct.pack("<fdxxfH", -13.5, 24e5, 200.5, 300), 4)
            assert(a == -13.5 and b == 24e5 and c == 200.5 and d == 300 and e == 24)
            assert(struct.unpack("b", "alo\3", 4) == 3)
            assert(struct.unpack("b", "alo\3", "4") == 3)
            assert(struct.unpack("b", "alo\3", 4.9) == 3)
            assert(struct.unpack("b", "alo\3", nil) == 97)
            -- no values: only the next position
            assert(struct.pack(">!") == "")
            local p, y = struct.unpack(">!", "")
            assert(p == 1 and y == nil)
            assert(struct.unpack("", "abc", 3) == 3)
            assert(struct.unpack("", "abc", 4) == 4)
            -- position 0 starts at SIZE_MAX: an empty format returns position 0
            assert(struct.unpack("", "abc", 0) == 0)
            "##,
        );
    }

    #[test]
    fn sizes() {
        let lua = lua();
        check(
            &lua,
            r##"
            assert(struct.size("") == 0)
            assert(struct.size("bbb") == 3)
            assert(struct.size("h") == 2)
            assert(struct.size("l") == 8 and struct.size("L") == 8 and struct.size("T") == 8)
            assert(struct.size("i") == 4 and struct.size("I7") == 7 and struct.size("i32") == 32)
            assert(struct.size("f") == 4 and struct.size("d") == 8)
            assert(struct.size("x") == 1 and struct.size("c") == 1 and struct.size("c10") == 10)
            assert(struct.size("<lihT") == struct.size(">LIHT"))
            assert(struct.size("I4") == 4)
            assert(struct.size("!bxd") == 16)
            assert(struct.size("!4bd") == 12)
            assert(struct.size("bi!4bi") == 12)
            -- size ignores unknown letters and digits
            assert(struct.size("z") == 0)
            assert(struct.size("i4 3 q") == 4)
            "##,
        );
    }

    #[test]
    fn error_messages() {
        let lua = lua();
        let cases = [
            (
                "struct.pack('X')",
                "bad argument #1 to 'pack' (invalid format option 'X')",
            ),
            (
                "struct.pack('3', 10)",
                "bad argument #1 to 'pack' (invalid format option '3')",
            ),
            (
                "struct.pack('=i', 1)",
                "bad argument #1 to 'pack' (invalid format option '=')",
            ),
            (
                "struct.unpack('q', 'abc')",
                "bad argument #1 to 'unpack' (invalid format option 'q')",
            ),
            (
                "struct.size('b#')",
                "bad argument #1 to 'size' (invalid format option '#')",
            ),
            (
                "struct.pack('i33', 1)",
                "integral size 33 is larger than limit of 32",
            ),
            (
                "struct.unpack('I40', 'abc')",
                "integral size 40 is larger than limit of 32",
            ),
            (
                "struct.size('i64')",
                "integral size 64 is larger than limit of 32",
            ),
            ("struct.pack('!3l', 10)", "alignment 3 is not a power of 2"),
            ("struct.size('!0')", "alignment 0 is not a power of 2"),
            (
                "struct.pack('b')",
                "bad argument #2 to 'pack' (number expected, got no value)",
            ),
            (
                "struct.pack('bb', 1, nil)",
                "bad argument #3 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('d', {})",
                "bad argument #2 to 'pack' (number expected, got table)",
            ),
            (
                "struct.pack('s')",
                "bad argument #2 to 'pack' (string expected, got no value)",
            ),
            (
                "struct.pack('c4', 'alo')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack()",
                "bad argument #1 to 'pack' (string expected, got no value)",
            ),
            (
                "struct.unpack('b')",
                "bad argument #2 to 'unpack' (string expected, got no value)",
            ),
            (
                "struct.unpack('b', 'a', {})",
                "bad argument #3 to 'unpack' (number expected, got table)",
            ),
            (
                "struct.unpack('c4', 'alo')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('b', 'alo', 4)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('bc0', '\\4alo')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('>!', 'abc', 10)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('i', 'ffffffff', -10)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            // C reads or copies outside the string here; hekate refuses
            (
                "struct.unpack('bc0', '\\255')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('b', 'abc', 0)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('c0', 'alo')",
                "format `c0' needs a previous size",
            ),
            (
                "struct.unpack('c0', 'alo', 2)",
                "format `c0' needs a previous size",
            ),
            (
                "struct.unpack('xc0', 'alo')",
                "format `c0' needs a previous size",
            ),
            ("struct.unpack('s', 'alo')", "unfinished string in data"),
            (
                "struct.size('bbc0')",
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.size('s')",
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size()",
                "bad argument #1 to 'size' (string expected, got no value)",
            ),
            // a size wrapping to a negative C int
            (
                "struct.pack('i4294967295', 1)",
                "integral size -1 is larger than limit of 32",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("test:1: {want}"), "{code}");
        }
        // not called from Lua code: no position prefix
        let pack: mlua::Function = lua.load("return struct.pack").eval().unwrap();
        let e = pack.call::<mlua::LuaString>("X").unwrap_err();
        assert_eq!(
            crate::lua_util::error_text(&e),
            "bad argument #1 to 'pack' (invalid format option 'X')"
        );
    }

    #[test]
    fn wrapping_sizes_as_in_c() {
        let lua = lua();
        check(
            &lua,
            r##"
            -- 4294967300 wraps to 4 in a C int
            assert(struct.pack("<i4294967300", 1) == "\1\0\0\0")
            -- -1 as a size_t: size() wraps around to -1
            assert(struct.size("i4294967295") == -1)
            -- unpack: a negative int size reads nothing and moves the position back
            local v, p = struct.unpack("i4294967295", "abc", 2)
            assert(v == 0 and p == 1)
            "##,
        );
    }

    #[test]
    fn too_many_results() {
        let lua = lua();
        // Lua 5.1's C stack (LUAI_MAXCSTACK 8000) holds the two arguments and at most 7998
        // results before the check for the 7999th fails, as in struct.c. (mlua's callback
        // machinery needs a few slots of its own, so returning more than about 7990 values can
        // fail earlier with mlua's message.)
        let n: usize = lua
            .load("return select('#', struct.unpack(string.rep('b', 7900), string.rep('a', 7900)))")
            .eval()
            .unwrap();
        assert_eq!(n, 7901);
        let e = err(
            &lua,
            "struct.unpack(string.rep('b', 7999), string.rep('a', 7999))",
        );
        assert_eq!(e, "test:1: stack overflow (too many results)");
        // the check comes before each option, also one that returns nothing
        let e = err(
            &lua,
            "struct.unpack(string.rep('b', 7998) .. 'x', string.rep('a', 7999))",
        );
        assert_eq!(e, "test:1: stack overflow (too many results)");
    }
}

//! The `hyperloglog` module: cardinality estimates of large sets in 12 KiB, as Heka's
//! `lua_hyperloglog` (Redis' dense HyperLogLog: 16384 six-bit registers, MurmurHash64A with
//! Redis' seed, Redis' raw estimate with linear counting and bias correction), so that scripts
//! such as Heka's `unique_items.lua` count what they counted under hekad.
//!
//! ```lua
//! require "hyperloglog"
//! hll = hyperloglog.new()
//! if hll:add(read_message("Fields[uid]")) then n = hll:count() end
//! local both = hyperloglog.count(hll, other)   -- the union, without changing either
//! hll:merge(other); hll:clear()
//! ```
//!
//! Keys are strings or numbers (a number is hashed over the eight bytes of its double, as the
//! reference does). `tostring(hll)` is Redis' dense representation (`HYLL` header, cached
//! cardinality, packed registers) and `hll:fromstring(s)` loads it back; preserved data uses
//! them. The registers live outside the Lua heap and count against `memory_limit`.

use std::cell::Cell;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value, Variadic};

use crate::lua_literal::quote;
use crate::lua_util::{arg_error, loc, rt, with_key};
use crate::memory::Reservation;

/// Registers: 2^14.
const REGISTERS: usize = 1 << 14;
/// Bits per register in the dense representation.
const REGISTER_BITS: usize = 6;
/// Bytes of the packed registers.
const DENSE_BYTES: usize = REGISTERS * REGISTER_BITS / 8;
/// Bytes of the header: magic, encoding, 3 unused, cached cardinality.
const HEADER_BYTES: usize = 16;
/// Length of the string form.
const STRING_BYTES: usize = HEADER_BYTES + DENSE_BYTES;
/// Redis' MurmurHash64A seed.
const SEED: u64 = 0xadc8_3b19;
const VERSION: &str = "1.0.0";

/// MurmurHash64A (Austin Appleby), little-endian, as Redis hashes HyperLogLog elements.
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the length of its run of zeroes plus one.
fn pattern(key: &[u8]) -> (usize, u8) {
    let hash = murmur64a(key, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    // The bits above the index, with a stop bit so that the count ends.
    let rest = (hash >> 14) | (1 << 49);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Redis' estimate over the registers: the raw HyperLogLog estimate, linear counting while
/// registers are still empty and small, a polynomial bias correction up to 72,000.
fn estimate(registers: &[u8; REGISTERS]) -> u64 {
    let m = REGISTERS as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let mut sum = 0.0;
    let mut zeroes = 0u32;
    for &r in registers {
        if r == 0 {
            zeroes += 1;
        } else {
            sum += 1.0 / (1u64 << r) as f64;
        }
    }
    sum += f64::from(zeroes);
    let mut e = (1.0 / sum) * alpha * m * m;
    if e < m * 2.5 && zeroes != 0 {
        e = m * (m / f64::from(zeroes)).ln();
    } else if e < 72000.0 {
        let bias = 5.9119e-18 * (e * e * e * e) - 1.4253e-12 * (e * e * e) + 1.2940e-7 * (e * e)
            - 5.2921e-3 * e
            + 83.3216;
        e -= e * (bias / 100.0);
    }
    e as u64
}

/// A HyperLogLog userdata.
pub(crate) struct HyperLogLog {
    registers: Box<[u8; REGISTERS]>,
    cached: Cell<Option<u64>>,
    _memory: Reservation,
}

impl HyperLogLog {
    fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(HyperLogLog {
            registers: Box::new([0; REGISTERS]),
            cached: Cell::new(None),
            _memory: Reservation::new(lua, REGISTERS)?,
        })
    }

    /// Adds an element; true when a register grew (the estimate may have changed).
    fn add(&mut self, key: &[u8]) -> bool {
        let (index, count) = pattern(key);
        if count > self.registers[index] {
            self.registers[index] = count;
            self.cached.set(None);
            true
        } else {
            false
        }
    }

    fn count(&self) -> u64 {
        if let Some(c) = self.cached.get() {
            return c;
        }
        let c = estimate(&self.registers);
        self.cached.set(Some(c));
        c
    }

    fn merge(&mut self, other: &[u8; REGISTERS]) {
        for (r, &o) in self.registers.iter_mut().zip(other.iter()) {
            *r = (*r).max(o);
        }
        self.cached.set(None);
    }

    fn clear(&mut self) {
        self.registers.fill(0);
        self.cached.set(None);
    }

    /// Redis' dense representation (also what `add_to_payload(hll)` writes).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STRING_BYTES);
        out.extend_from_slice(b"HYLL");
        out.extend_from_slice(&[0, 0, 0, 0]); // dense encoding, unused
        let card = match self.cached.get() {
            Some(c) => c.to_le_bytes(),
            // the high bit of the last byte marks the cache invalid
            None => (1u64 << 63).to_le_bytes(),
        };
        out.extend_from_slice(&card);
        let mut packed = vec![0u8; DENSE_BYTES + 1];
        for (i, &r) in self.registers.iter().enumerate() {
            let bit = i * REGISTER_BITS;
            let (byte, shift) = (bit / 8, bit % 8);
            let v = u16::from(r) << shift;
            packed[byte] |= v as u8;
            packed[byte + 1] |= (v >> 8) as u8;
        }
        out.extend_from_slice(&packed[..DENSE_BYTES]);
        out
    }

    fn load(&mut self, s: &[u8]) -> Result<(), String> {
        if s.len() != STRING_BYTES {
            return Err(format!(
                "fromstring() bytes found: {}, expected {STRING_BYTES}",
                s.len()
            ));
        }
        if &s[..4] != b"HYLL" {
            return Err("fromstring() HYLL header not found".into());
        }
        if s[4] != 0 {
            return Err("fromstring() invalid encoding".into());
        }
        let packed = &s[HEADER_BYTES..];
        for (i, r) in self.registers.iter_mut().enumerate() {
            let bit = i * REGISTER_BITS;
            let (byte, shift) = (bit / 8, bit % 8);
            let lo = u16::from(packed[byte]);
            let hi = u16::from(packed.get(byte + 1).copied().unwrap_or(0));
            *r = (((lo | hi << 8) >> shift) & 0x3f) as u8;
        }
        // The cached cardinality in the header is not trusted: recomputed on the next count.
        self.cached.set(None);
        Ok(())
    }

    /// Lua statements re-creating this value as global expression `target` (preservation).
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        out.push_str(&format!(
            "{target} = require(\"hyperloglog\").new()\n{target}:fromstring({})\n",
            quote(&self.to_bytes())
        ));
    }
}

fn no_more(extra: &Value, n: usize, fname: &str) -> mlua::Result<()> {
    if extra.is_nil() {
        Ok(())
    } else {
        Err(arg_error(n, fname, "incorrect number of arguments"))
    }
}

impl UserData for HyperLogLog {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("add", |lua, hll, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    no_more(&extra, 2, "add")?;
                    with_key(&key, "add", |k| hll.add(k))
                })(),
            )
        });
        methods.add_method("count", |lua, hll, extra: Value| {
            loc(lua, no_more(&extra, 1, "count"))?;
            Ok(hll.count() as f64)
        });
        methods.add_method_mut("clear", |lua, hll, extra: Value| {
            loc(lua, no_more(&extra, 1, "clear"))?;
            hll.clear();
            Ok(())
        });
        methods.add_function("merge", |lua, (this, other): (AnyUserData, Value)| {
            let other = loc(lua, hll_arg(&other, 1, "merge"))?;
            if !this.to_pointer().eq(&other.to_pointer()) {
                let registers = *other.borrow::<HyperLogLog>()?.registers;
                this.borrow_mut::<HyperLogLog>()?.merge(&registers);
            }
            Ok(this)
        });
        methods.add_method_mut("fromstring", |lua, hll, s: Value| {
            let bytes = match &s {
                Value::String(s) => s.as_bytes().to_vec(),
                _ => return loc(lua, Err(arg_error(1, "fromstring", "string expected"))),
            };
            loc(lua, hll.load(&bytes).map_err(rt))
        });
        methods.add_meta_method(MetaMethod::ToString, |lua, hll, ()| {
            lua.create_string(hll.to_bytes())
        });
    }
}

fn hll_arg(v: &Value, n: usize, fname: &str) -> mlua::Result<AnyUserData> {
    match v {
        Value::UserData(ud) if ud.is::<HyperLogLog>() => Ok(ud.clone()),
        _ => Err(arg_error(n, fname, "hyperloglog expected")),
    }
}

/// Builds the `hyperloglog` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, args: Variadic<Value>| {
            if !args.is_empty() {
                return loc(
                    lua,
                    Err(arg_error(
                        args.len(),
                        "new",
                        "incorrect number of arguments",
                    )),
                );
            }
            loc(lua, HyperLogLog::new(lua))
        })?,
    )?;
    t.set(
        "count",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() < 2 {
                return loc(
                    lua,
                    Err(arg_error(
                        args.len(),
                        "count",
                        "incorrect number of arguments",
                    )),
                );
            }
            let mut union = Box::new([0u8; REGISTERS]);
            for (i, v) in args.iter().enumerate() {
                let ud = loc(lua, hll_arg(v, i + 1, "count"))?;
                let hll = ud.borrow::<HyperLogLog>()?;
                for (u, &r) in union.iter_mut().zip(hll.registers.iter()) {
                    *u = (*u).max(r);
                }
            }
            Ok(estimate(&union) as f64)
        })?,
    )?;
    t.set("version", lua.create_function(|_, ()| Ok(VERSION))?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals()
            .set("hyperloglog", module(&lua).unwrap())
            .unwrap();
        lua
    }

    #[test]
    fn counts_like_redis_within_its_error() {
        let lua = lua();
        // 110,000 distinct keys: the reference module's own test expects 110505.
        let (small, big): (f64, f64) = lua
            .load(
                r#"
                local hll, small = hyperloglog.new(), hyperloglog.new()
                for i = 1, 110000 do hll:add(string.format("%08d", i)) end
                for i = 1, 1000 do small:add(i) end
                return small:count(), hll:count()
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(big, 110505.0);
        assert!((small - 1000.0).abs() <= 10.0, "{small}");
    }

    #[test]
    fn add_reports_changes_and_repeats_change_nothing() {
        let lua = lua();
        let r: (bool, bool, f64, f64) = lua
            .load(
                r#"
                local hll = hyperloglog.new()
                local first = hll:add("x")
                local again = hll:add("x")
                local one = hll:count()
                hll:clear()
                return first, again, one, hll:count()
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(r, (true, false, 1.0, 0.0));
    }

    #[test]
    fn merge_and_set_count_give_the_union() {
        let lua = lua();
        let (a, b, union, merged): (f64, f64, f64, f64) = lua
            .load(
                r#"
                local a, b = hyperloglog.new(), hyperloglog.new()
                for i = 1, 5000 do a:add("k" .. i) end
                for i = 2501, 7500 do b:add("k" .. i) end
                local union = hyperloglog.count(a, b)
                local ca, cb = a:count(), b:count()
                assert(a:merge(b) == a)
                return ca, cb, union, a:count()
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(union, merged);
        assert!((union - 7500.0).abs() < 7500.0 * 0.02, "{union}");
        assert!(a < union && b < union);
    }

    #[test]
    fn string_form_round_trips_through_preservation() {
        let lua = lua();
        lua.load("h = hyperloglog.new() for i = 1, 3000 do h:add(i) end")
            .exec()
            .unwrap();
        let h: AnyUserData = lua.globals().get("h").unwrap();
        let mut src = String::new();
        h.borrow::<HyperLogLog>()
            .unwrap()
            .serialize_lua("_G[\"h\"]", &mut src);
        let (count, len): (f64, usize) = lua.load("return h:count(), #tostring(h)").eval().unwrap();
        assert_eq!(len, STRING_BYTES);

        let fresh = self::lua();
        fresh
            .globals()
            .set(
                "require",
                fresh
                    .create_function(|lua, _: String| lua.globals().get::<Table>("hyperloglog"))
                    .unwrap(),
            )
            .unwrap();
        fresh.load(&src).exec().unwrap();
        let restored: (f64, bool) = fresh.load("return h:count(), h:add(1)").eval().unwrap();
        assert_eq!(restored, (count, false));
    }

    #[test]
    fn bad_arguments_are_named() {
        let lua = lua();
        let err = |code: &str| lua.load(code).exec().unwrap_err().to_string();
        assert!(
            err("hyperloglog.new():add({})")
                .contains("bad argument #1 to 'add' (must be a string or number)")
        );
        assert!(
            err("hyperloglog.new():add('a', 'b')")
                .contains("bad argument #2 to 'add' (incorrect number of arguments)")
        );
        assert!(
            err("hyperloglog.new():fromstring('HYLL')")
                .contains("fromstring() bytes found: 4, expected 12304")
        );
        assert!(
            err("hyperloglog.count(hyperloglog.new())").contains("incorrect number of arguments")
        );
        assert!(err("hyperloglog.new():merge(1)").contains("hyperloglog expected"));
    }
}

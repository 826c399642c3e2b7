//! The `bloom_filter` module: set membership in a fixed bit array with a configurable
//! false-positive probability and no false negatives, as Heka's `lua_bloom_filter`
//! (lua_sandbox_extensions `bloom_filter`), so that scripts and preserved data behave as
//! under hekad.
//!
//! ```lua
//! require "bloom_filter"
//! bf = bloom_filter.new(1000, 0.01)   -- items > 1, 0 < probability < 1
//! if bf:add(key) then ... end         -- true when the key was new (a bit changed)
//! local found = bf:query(key)         -- may be a false positive, never a false negative
//! local n = bf:count()                -- adds that returned true since the last clear()
//! bf:clear()
//! bloom_filter.version()              -- "1.0.0"
//! ```
//!
//! Sizing follows the reference exactly: `bits = ceil(items × ln(p) / ln(1 / 2^ln 2))`
//! (i.e. `-items × ln p / (ln 2)²`), `hashes = round(ln 2 × bits / items)`, the array being
//! `ceil(bits / 8)` bytes. Hash `i` (from 0) of a key is XXH32 with seed `i`, taken modulo
//! `bits`; a string key is hashed over its bytes, a number over the eight bytes of its double.
//! The bit array lives outside the Lua heap and counts against `memory_limit`. Preserved data
//! re-creates the filter and loads the array and count back with `bf:fromstring(count, bytes)`.

use mlua::{Lua, Table, UserData, UserDataMethods, Value, Variadic};

use crate::lua_literal::quote;
use crate::lua_util::{
    arg_error, check_bytes, check_integer, check_number, count_error, loc, rt, with_key,
};
use crate::memory::Reservation;
use crate::number::format_g;
use xxhash_rust::xxh32::xxh32;

const VERSION: &str = "1.0.0";

/// A bloom filter, as Lua userdata.
#[derive(Debug)]
pub(crate) struct BloomFilter {
    /// The `items` given to `new`.
    items: u32,
    /// The `probability` given to `new`.
    probability: f64,
    /// Bits in use (`data` has `ceil(bits / 8)` bytes).
    bits: u64,
    hashes: u32,
    /// Adds that changed a bit since the last clear.
    count: u64,
    data: Vec<u8>,
    _memory: Reservation,
}

impl BloomFilter {
    /// `(bits, hashes)` for `items` and `probability`, computed as the reference does.
    fn sizing(items: u32, probability: f64) -> (u64, u32) {
        let ln2 = 2f64.ln();
        let n = f64::from(items);
        let bits = (n * probability.ln() / (1.0 / 2f64.powf(ln2)).ln()).ceil() as u64;
        let hashes = (ln2 * bits as f64 / n).round() as u32;
        (bits.max(1), hashes)
    }

    fn new(lua: &Lua, items: u32, probability: f64) -> mlua::Result<Self> {
        let (bits, hashes) = Self::sizing(items, probability);
        let bytes = usize::try_from(bits.div_ceil(8))
            .map_err(|_| mlua::Error::MemoryError("not enough memory".into()))?;
        let memory = Reservation::new(lua, bytes)?;
        let mut data = Vec::new();
        data.try_reserve_exact(bytes)
            .map_err(|_| mlua::Error::MemoryError("not enough memory".into()))?;
        data.resize(bytes, 0);
        Ok(BloomFilter {
            items,
            probability,
            bits,
            hashes,
            count: 0,
            data,
            _memory: memory,
        })
    }

    /// The (byte, mask) of hash `i` of `key`.
    fn bit(&self, key: &[u8], i: u32) -> (usize, u8) {
        let bit = u64::from(xxh32(key, i)) % self.bits;
        ((bit / 8) as usize, 1 << (bit % 8))
    }

    /// Sets the key's bits; true (and counted) when one of them was clear.
    fn add(&mut self, key: &[u8]) -> bool {
        let mut added = false;
        for i in 0..self.hashes {
            let (byte, mask) = self.bit(key, i);
            if self.data[byte] & mask == 0 {
                self.data[byte] |= mask;
                added = true;
            }
        }
        if added {
            self.count += 1;
        }
        added
    }

    /// True when every bit of the key is set.
    fn query(&self, key: &[u8]) -> bool {
        (0..self.hashes).all(|i| {
            let (byte, mask) = self.bit(key, i);
            self.data[byte] & mask != 0
        })
    }

    fn clear(&mut self) {
        self.data.fill(0);
        self.count = 0;
    }

    fn load(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        if bytes.len() != self.data.len() {
            return Err(rt(format!(
                "fromstring() bytes found: {}, expected {}",
                bytes.len(),
                self.data.len()
            )));
        }
        self.data.copy_from_slice(bytes);
        Ok(())
    }

    /// Lua statements re-creating this filter (array and count) as global expression `target`
    /// (preservation).
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        out.push_str(&format!(
            "{target} = require(\"bloom_filter\").new({}, {})\n{target}:fromstring({}, {})\n",
            self.items,
            format_g(self.probability, 17),
            self.count,
            quote(&self.data)
        ));
    }
}

impl UserData for BloomFilter {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The per-message methods take their arguments as a tuple: no allocation per call. A
        // missing key reads as nil, so `bf:add()` reports the key's type, not the count.
        methods.add_method_mut("add", |lua, bf, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(count_error("add"));
                    }
                    with_key(&key, "add", |k| bf.add(k))
                })(),
            )
        });
        methods.add_method("query", |lua, bf, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(count_error("query"));
                    }
                    with_key(&key, "query", |k| bf.query(k))
                })(),
            )
        });
        methods.add_method("count", |lua, bf, args: Variadic<Value>| {
            if !args.is_empty() {
                return loc(lua, Err(count_error("count")));
            }
            Ok(bf.count as f64)
        });
        methods.add_method_mut("clear", |lua, bf, args: Variadic<Value>| {
            if !args.is_empty() {
                return loc(lua, Err(count_error("clear")));
            }
            bf.clear();
            Ok(())
        });
        // `fromstring(bytes)` or `fromstring(count, bytes)` (what preservation writes).
        methods.add_method_mut("fromstring", |lua, bf, args: Variadic<Value>| {
            loc(
                lua,
                (|| match args.as_slice() {
                    [bytes] => bf.load(&check_bytes(bytes, 1, "fromstring")?),
                    [count, bytes] => {
                        let count = check_number(count, 1, "fromstring")?;
                        let bytes = check_bytes(bytes, 2, "fromstring")?;
                        // (size_t) cast; negative and NaN counts become 0
                        bf.count = count as u64;
                        bf.load(&bytes)
                    }
                    _ => Err(count_error("fromstring")),
                })(),
            )
        });
    }
}

/// `bloom_filter.new(items, probability)`.
fn bf_new(lua: &Lua, args: Variadic<Value>) -> mlua::Result<BloomFilter> {
    let [items, probability] = args.as_slice() else {
        return Err(rt(
            "bad argument #0 to 'new' (incorrect number of arguments)",
        ));
    };
    // luaL_checkint: truncated to a C int
    let items = check_integer(items, 1, "new")? as i32;
    if items <= 1 {
        return Err(arg_error(1, "new", "items must be > 1"));
    }
    let probability = check_number(probability, 2, "new")?;
    if !(probability > 0.0 && probability < 1.0) {
        return Err(arg_error(2, "new", "probability must be between 0 and 1"));
    }
    BloomFilter::new(lua, items as u32, probability)
}

/// Builds the `bloom_filter` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, args| loc(lua, bf_new(lua, args)))?,
    )?;
    t.set("version", lua.create_function(|_, ()| Ok(VERSION))?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        let m = module(&lua).unwrap();
        lua.globals().set("bloom_filter", &m).unwrap();
        let loaded: Table = lua.load("return package.loaded").eval().unwrap();
        loaded.set("bloom_filter", m).unwrap();
        lua
    }

    fn err(lua: &Lua, code: &str) -> String {
        crate::lua_util::error_text(&lua.load(code).set_name("=test").exec().unwrap_err())
    }

    #[test]
    fn sizing_matches_the_reference() {
        // 1000 items at 1%: 9586 bits, 7 hashes.
        assert_eq!(BloomFilter::sizing(1000, 0.01), (9586, 7));
        let lua = Lua::new();
        let bf = BloomFilter::new(&lua, 1000, 0.01).unwrap();
        assert_eq!(bf.data.len(), 1199);
    }

    #[test]
    fn reference_benchmark_count() {
        // The reference's benchmark adds the numbers 0..1e6 to new(2e6, 0.01) and expects
        // 999970 (30 false positives): same sizing, hash and key bytes.
        let lua = Lua::new();
        let mut bf = BloomFilter::new(&lua, 2_000_000, 0.01).unwrap();
        for x in 0..1_000_000 {
            bf.add(&f64::from(x).to_ne_bytes());
        }
        assert_eq!(bf.count, 999_970);
    }

    #[test]
    fn add_query_clear() {
        let lua = lua();
        let (fps, count, again, after_clear, version): (f64, f64, bool, bool, String) = lua
            .load(
                r#"
                local bf = bloom_filter.new(10000, 0.01)
                assert(not bf:query("k1"))
                local n = 0
                for i = 1, 10000 do if bf:add("k" .. i) then n = n + 1 end end
                for i = 1, 10000 do assert(bf:query("k" .. i), "false negative " .. i) end
                assert(bf:count() == n)
                local fps = 0
                for i = 10001, 20000 do if bf:query("k" .. i) then fps = fps + 1 end end
                local again = bf:add("k1")
                bf:clear()
                return fps, bf:count(), again, bf:query("k1"), bloom_filter.version()
                "#,
            )
            .eval()
            .unwrap();
        assert!(fps / 10000.0 < 0.02, "false positives {fps}");
        assert_eq!(count, 0.0);
        assert!(!again);
        assert!(!after_clear);
        assert_eq!(version, "1.0.0");
    }

    #[test]
    fn number_keys() {
        let lua = lua();
        let r: (f64, bool, bool, bool) = lua
            .load(
                r#"
                local bf = bloom_filter.new(1000, 0.01)
                for i = 1, 950 do assert(bf:add(i), "insert failed " .. i) end
                for i = 1, 950 do assert(bf:query(i), "query failed " .. i) end
                return bf:count(), bf:query(0.5), bf:add(1.5), bf:query(1.5)
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(r.0, 950.0);
        assert!(r.2 && r.3);
    }

    #[test]
    fn argument_errors() {
        let lua = lua();
        let cases = [
            (
                "bloom_filter.new(2)",
                "bad argument #0 to 'new' (incorrect number of arguments)",
            ),
            (
                "bloom_filter.new(nil, 0.01)",
                "bad argument #1 to 'new' (number expected, got nil)",
            ),
            (
                "bloom_filter.new(1, 0.01)",
                "bad argument #1 to 'new' (items must be > 1)",
            ),
            (
                "bloom_filter.new(2, nil)",
                "bad argument #2 to 'new' (number expected, got nil)",
            ),
            (
                "bloom_filter.new(2, 0)",
                "bad argument #2 to 'new' (probability must be between 0 and 1)",
            ),
            (
                "bloom_filter.new(2, 1)",
                "bad argument #2 to 'new' (probability must be between 0 and 1)",
            ),
            (
                "bloom_filter.new(20, 0.01):add({})",
                "bad argument #1 to 'add' (must be a string or number)",
            ),
            (
                "bloom_filter.new(20, 0.01):add()",
                "bad argument #1 to 'add' (must be a string or number)",
            ),
            (
                "bloom_filter.new(20, 0.01):add('a', 'b')",
                "bad argument #-1 to 'add' (incorrect number of arguments)",
            ),
            (
                "bloom_filter.new(20, 0.01):query({})",
                "bad argument #1 to 'query' (must be a string or number)",
            ),
            (
                "bloom_filter.new(20, 0.01):clear(1)",
                "bad argument #-1 to 'clear' (incorrect number of arguments)",
            ),
            (
                "bloom_filter.new(20, 0.01):count(1)",
                "bad argument #-1 to 'count' (incorrect number of arguments)",
            ),
            (
                "bloom_filter.new(20, 0.01):fromstring({})",
                "bad argument #1 to 'fromstring' (string expected, got table)",
            ),
            (
                "bloom_filter.new(20, 0.01):fromstring()",
                "bad argument #-1 to 'fromstring' (incorrect number of arguments)",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("test:1: {want}"), "{code}");
        }
    }

    #[test]
    fn fromstring_wrong_length() {
        let lua = lua();
        // new(20, 0.01): 192 bits, 24 bytes
        assert!(
            err(
                &lua,
                "bloom_filter.new(20, 0.01):fromstring(string.rep(' ', 23))"
            )
            .ends_with(":1: fromstring() bytes found: 23, expected 24")
        );
        assert!(
            err(
                &lua,
                "bloom_filter.new(20, 0.01):fromstring(3, string.rep(' ', 25))"
            )
            .ends_with(":1: fromstring() bytes found: 25, expected 24")
        );
    }

    #[test]
    fn round_trip_through_preservation() {
        let lua = lua();
        lua.load(
            "bf = bloom_filter.new(500, 0.001) for i = 1, 300 do bf:add('k' .. i) end bf:add(42)",
        )
        .exec()
        .unwrap();
        let ud: mlua::AnyUserData = lua.globals().get("bf").unwrap();
        let mut src = String::new();
        ud.borrow::<BloomFilter>()
            .unwrap()
            .serialize_lua("_G[\"bf\"]", &mut src);
        assert!(src.starts_with("_G[\"bf\"] = require(\"bloom_filter\").new(500, 0.001)\n"));
        let count: f64 = lua.load("return bf:count()").eval().unwrap();

        let fresh = self::lua();
        fresh.load(&src).exec().unwrap();
        let r: (f64, bool, bool, bool, bool) = fresh
            .load(
                r#"
                local all = true
                for i = 1, 300 do all = all and bf:query('k' .. i) end
                return bf:count(), all, bf:query(42), bf:add(42), bf:query('k301')
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(r.0, count);
        assert!(r.1 && r.2 && !r.3);
        let _ = r.4; // may be a false positive
    }

    #[test]
    fn array_counts_against_the_memory_limit() {
        let lua = lua();
        let account = crate::memory::MemoryAccount::new(lua.used_memory() + 64 * 1024);
        lua.set_app_data(account.clone());
        // 1e6 items at 1%: about 1.2 MB of bits
        let e = err(&lua, "big = bloom_filter.new(1000000, 0.01)");
        assert!(e.contains("not enough memory"), "{e}");
        lua.load("small = bloom_filter.new(1000, 0.01)")
            .exec()
            .unwrap();
        assert_eq!(account.external.get(), 1199);
        lua.load("small = nil collectgarbage() collectgarbage()")
            .exec()
            .unwrap();
        assert_eq!(account.external.get(), 0);
    }
}

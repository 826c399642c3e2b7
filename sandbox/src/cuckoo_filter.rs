//! The `cuckoo_filter` module: approximate set membership with deletion, as Heka's
//! lua_sandbox_extensions `cuckoo_filter`, so that scripts and preserved data behave as under
//! hekad.
//!
//! ```lua
//! require "cuckoo_filter"
//! cf = cuckoo_filter.new(1000)        -- items > 4; here 256 buckets of 4 (1024 items)
//! if cf:add(key) then ... end         -- true when added, false when (probably) present
//! local found = cf:query(key)         -- may be a false positive, never a false negative
//! local deleted = cf:delete(key)      -- true when a matching fingerprint was removed
//! local n = cf:count()                -- adds that returned true minus successful deletes
//! cf:clear()
//! cuckoo_filter.version()             -- "1.1.1"
//! ```
//!
//! Everything follows the reference: `new(items)` makes `clp2(items / 4)` buckets (integer
//! division, then the next power of two) of four 16-bit fingerprints (false-positive rate
//! about 0.00012). A key (a string's bytes, or the eight bytes of a number's double) hashes to
//! `h = XXH64(key, seed 1)`; its fingerprint is `h >> 48` (0 becomes 1, 0 marking an empty
//! slot), its first bucket `h % buckets` and its second `i1 ^ (XXH64(fingerprint, seed 1) >>
//! (64 - log2 buckets))`. `add` first looks the fingerprint up in both buckets and reports a
//! duplicate when found (so distinct keys sharing a fingerprint and bucket count once); else it
//! takes a free slot of the first, then the second bucket, else evicts: a random one of the two
//! buckets, then up to 512 times a random slot's fingerprint is swapped out and moved to its
//! alternate bucket, stopping (false, not counted) when that bucket already holds it, and
//! raising "the cuckoo filter is full" after the 512th kick. The reference draws these random
//! numbers from C `rand()`; here each filter has its own copy of glibc's `rand()` generator in
//! its default state (seed 1), so a script sees the same results as the reference on glibc
//! (when nothing else in the process called `rand()`). The fingerprint array lives outside the
//! Lua heap and counts against `memory_limit`. Preserved data re-creates the filter and loads
//! the array and count back with `cf:fromstring(count, bytes, 1)` (the trailing binary version
//! must be 1, else the bytes are ignored).

use mlua::{Lua, Table, UserData, UserDataMethods, Value, Variadic};
use xxhash_rust::xxh64::xxh64;

use crate::lua_literal::quote;
use crate::lua_util::{
    arg_error, check_bytes, check_integer, check_number, count_error, loc, rt, with_key,
};
use crate::memory::Reservation;

const VERSION: &str = "1.1.1";
/// Fingerprints per bucket.
const BUCKET_SIZE: usize = 4;
/// Evictions tried before the filter is declared full.
const MAX_KICKS: usize = 512;
/// The `fromstring` binary format version.
const BINARY_VERSION: i32 = 1;

type Bucket = [u16; BUCKET_SIZE];

/// glibc's `rand()`: the TYPE_3 additive feedback generator of `random_r`, in the state
/// `srand(1)` (the default) leaves it.
#[derive(Debug, Clone)]
struct CRand {
    state: [u32; 31],
    front: usize,
    rear: usize,
}

impl CRand {
    fn new() -> Self {
        let mut state = [0u32; 31];
        let mut word: i64 = 1;
        state[0] = 1;
        for slot in state.iter_mut().skip(1) {
            // 16807 * word % (2^31 - 1) without overflow (Schrage), as srandom_r
            let (hi, lo) = (word / 127_773, word % 127_773);
            word = 16807 * lo - 2836 * hi;
            if word < 0 {
                word += 2_147_483_647;
            }
            *slot = word as u32;
        }
        let mut g = CRand {
            state,
            front: 3,
            rear: 0,
        };
        for _ in 0..310 {
            g.next();
        }
        g
    }

    /// The next `rand()` value, in `0..2^31`.
    fn next(&mut self) -> u32 {
        let v = self.state[self.front].wrapping_add(self.state[self.rear]);
        self.state[self.front] = v;
        self.front += 1;
        if self.front >= self.state.len() {
            self.front = 0;
            self.rear += 1;
        } else {
            self.rear += 1;
            if self.rear >= self.state.len() {
                self.rear = 0;
            }
        }
        v >> 1
    }
}

/// `add` could not place the key (the table has changed: one evicted fingerprint is lost).
#[derive(Debug)]
struct Full;

/// A cuckoo filter, as Lua userdata.
#[derive(Debug)]
pub(crate) struct CuckooFilter {
    /// Capacity: buckets × 4 (what preservation passes to `new`).
    items: u32,
    /// A power-of-two number of buckets.
    buckets: Vec<Bucket>,
    /// Right shift of a fingerprint's hash giving the bucket offset: `64 - log2(buckets)`
    /// (the reference's `nlz(buckets) + 1 + 32`).
    shift: u32,
    /// Adds that returned true minus deletes that returned true since the last clear.
    count: u64,
    rng: CRand,
    _memory: Reservation,
}

impl CuckooFilter {
    /// The number of buckets for `items`, as the reference computes it.
    fn bucket_count(items: u32) -> u32 {
        // (unsigned)ceil(items / BUCKET_SIZE) is an integer division; clp2 of it
        (items / BUCKET_SIZE as u32).max(1).next_power_of_two()
    }

    fn new(lua: &Lua, items: u32) -> mlua::Result<Self> {
        let n = Self::bucket_count(items);
        let bytes = n as usize * size_of::<Bucket>();
        let memory = Reservation::new(lua, bytes)?;
        let mut buckets = Vec::new();
        buckets
            .try_reserve_exact(n as usize)
            .map_err(|_| mlua::Error::MemoryError("not enough memory".into()))?;
        buckets.resize(n as usize, [0; BUCKET_SIZE]);
        Ok(CuckooFilter {
            items: n * BUCKET_SIZE as u32,
            buckets,
            shift: 64 - n.trailing_zeros(),
            count: 0,
            rng: CRand::new(),
            _memory: memory,
        })
    }

    /// The size of the fingerprint array in bytes.
    fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }

    /// The key's fingerprint and first bucket.
    fn locate(&self, key: &[u8]) -> (u16, usize) {
        let h = xxh64(key, 1);
        let fp = match (h >> 48) as u16 {
            0 => 1,
            fp => fp,
        };
        (fp, (h % self.buckets.len() as u64) as usize)
    }

    /// The other bucket of fingerprint `fp` stored in bucket `i`.
    fn alternate(&self, i: usize, fp: u16) -> usize {
        // A single bucket (shift 64, undefined in the reference's C) is its own alternate.
        let offset = xxh64(&fp.to_ne_bytes(), 1)
            .checked_shr(self.shift)
            .unwrap_or(0);
        i ^ offset as usize
    }

    fn bucket_lookup(&self, i: usize, fp: u16) -> bool {
        self.buckets[i].contains(&fp)
    }

    /// Empties the first slot holding `fp`.
    fn bucket_delete(&mut self, i: usize, fp: u16) -> bool {
        match self.buckets[i].iter_mut().find(|e| **e == fp) {
            Some(e) => {
                *e = 0;
                true
            }
            None => false,
        }
    }

    /// Puts `fp` in the first free slot.
    fn bucket_add(&mut self, i: usize, fp: u16) -> bool {
        match self.buckets[i].iter_mut().find(|e| **e == 0) {
            Some(e) => {
                *e = fp;
                true
            }
            None => false,
        }
    }

    /// The reference's `bucket_insert`: false for a duplicate (a fingerprint match in either
    /// bucket, or an evicted fingerprint already in its alternate bucket).
    fn insert(&mut self, i1: usize, i2: usize, mut fp: u16) -> Result<bool, Full> {
        if self.bucket_lookup(i1, fp) || self.bucket_lookup(i2, fp) {
            return Ok(false);
        }
        if self.bucket_add(i1, fp) || self.bucket_add(i2, fp) {
            return Ok(true);
        }
        // rand() % 2: odd picks the first bucket
        let mut ri = if self.rng.next() & 1 == 1 { i1 } else { i2 };
        for _ in 0..MAX_KICKS {
            let entry = self.rng.next() as usize % BUCKET_SIZE;
            fp = std::mem::replace(&mut self.buckets[ri][entry], fp);
            ri = self.alternate(ri, fp);
            if self.bucket_lookup(ri, fp) {
                return Ok(false);
            }
            if self.bucket_add(ri, fp) {
                return Ok(true);
            }
        }
        Err(Full)
    }

    /// Adds the key; true (and counted) when it was not found.
    fn add(&mut self, key: &[u8]) -> Result<bool, Full> {
        let (fp, i1) = self.locate(key);
        let i2 = self.alternate(i1, fp);
        let added = self.insert(i1, i2, fp)?;
        if added {
            self.count += 1;
        }
        Ok(added)
    }

    fn query(&self, key: &[u8]) -> bool {
        let (fp, i1) = self.locate(key);
        self.bucket_lookup(i1, fp) || self.bucket_lookup(self.alternate(i1, fp), fp)
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        let (fp, i1) = self.locate(key);
        let deleted = self.bucket_delete(i1, fp) || {
            let i2 = self.alternate(i1, fp);
            self.bucket_delete(i2, fp)
        };
        if deleted {
            // size_t in the reference: wraps after a restore with a low count
            self.count = self.count.wrapping_sub(1);
        }
        deleted
    }

    /// Empties the filter (the eviction generator carries on, as the reference's `rand()`).
    fn clear(&mut self) {
        self.buckets.fill([0; BUCKET_SIZE]);
        self.count = 0;
    }

    /// The fingerprint array as the reference lays it out in memory (little-endian `uint16_t`s,
    /// bucket after bucket).
    fn to_bytes(&self) -> Vec<u8> {
        self.buckets
            .iter()
            .flatten()
            .flat_map(|fp| fp.to_le_bytes())
            .collect()
    }

    fn load(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        if bytes.len() != self.bytes() {
            return Err(rt(format!(
                "fromstring() bytes found: {}, expected {}",
                bytes.len(),
                self.bytes()
            )));
        }
        for (bucket, chunk) in self
            .buckets
            .iter_mut()
            .zip(bytes.chunks_exact(size_of::<Bucket>()))
        {
            for (fp, b) in bucket.iter_mut().zip(chunk.chunks_exact(2)) {
                *fp = u16::from_le_bytes([b[0], b[1]]);
            }
        }
        Ok(())
    }

    /// Lua statements re-creating this filter (array and count) as global expression `target`
    /// (preservation).
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        // A one-bucket filter (new(5..7)) has 4 items, which new() refuses: ask for 5 instead
        // (the reference writes new(4) and cannot restore it).
        out.push_str(&format!(
            "{target} = require(\"cuckoo_filter\").new({})\n{target}:fromstring({}, {}, {})\n",
            self.items.max(5),
            self.count,
            quote(&self.to_bytes()),
            BINARY_VERSION
        ));
    }
}

impl UserData for CuckooFilter {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The per-message methods take their arguments as a tuple: no allocation per call. A
        // missing key reads as nil, so `cf:add()` reports the key's type, not the count.
        methods.add_method_mut("add", |lua, cf, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(count_error("add"));
                    }
                    with_key(&key, "add", |k| cf.add(k))?
                        .map_err(|Full| rt("the cuckoo filter is full"))
                })(),
            )
        });
        methods.add_method("query", |lua, cf, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(count_error("query"));
                    }
                    with_key(&key, "query", |k| cf.query(k))
                })(),
            )
        });
        methods.add_method_mut("delete", |lua, cf, (key, extra): (Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(count_error("delete"));
                    }
                    with_key(&key, "delete", |k| cf.delete(k))
                })(),
            )
        });
        methods.add_method("count", |lua, cf, args: Variadic<Value>| {
            if !args.is_empty() {
                return loc(lua, Err(count_error("count")));
            }
            Ok(cf.count as f64)
        });
        methods.add_method_mut("clear", |lua, cf, args: Variadic<Value>| {
            if !args.is_empty() {
                return loc(lua, Err(count_error("clear")));
            }
            cf.clear();
            Ok(())
        });
        // `fromstring(count, bytes, version)`, what preservation writes.
        methods.add_method_mut("fromstring", |lua, cf, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let [count, bytes, version] = args.as_slice() else {
                        return Err(count_error("fromstring"));
                    };
                    // (size_t) cast; negative and NaN counts become 0. Set before the version
                    // check, as the reference does.
                    cf.count = check_number(count, 1, "fromstring")? as u64;
                    let bytes = check_bytes(bytes, 2, "fromstring")?;
                    // luaL_optint(lua, 4, 0): another version leaves the array alone
                    let version = match version {
                        Value::Nil => 0,
                        v => check_integer(v, 3, "fromstring")? as i32,
                    };
                    if version != BINARY_VERSION {
                        return Ok(());
                    }
                    cf.load(&bytes)
                })(),
            )
        });
    }
}

/// `cuckoo_filter.new(items)`.
fn cf_new(lua: &Lua, args: Variadic<Value>) -> mlua::Result<CuckooFilter> {
    let [items] = args.as_slice() else {
        return Err(rt(
            "bad argument #0 to 'new' (incorrect number of arguments)",
        ));
    };
    // luaL_checkint: truncated to a C int
    let items = check_integer(items, 1, "new")? as i32;
    if items <= 4 {
        return Err(arg_error(1, "new", "items must be > 4"));
    }
    CuckooFilter::new(lua, items as u32)
}

/// Builds the `cuckoo_filter` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, args| loc(lua, cf_new(lua, args)))?,
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
        lua.globals().set("cuckoo_filter", &m).unwrap();
        let loaded: Table = lua.load("return package.loaded").eval().unwrap();
        loaded.set("cuckoo_filter", m).unwrap();
        lua
    }

    fn err(lua: &Lua, code: &str) -> String {
        crate::lua_util::error_text(&lua.load(code).set_name("=test").exec().unwrap_err())
    }

    fn num(x: u32) -> [u8; 8] {
        f64::from(x).to_ne_bytes()
    }

    #[test]
    fn glibc_rand_sequence() {
        // The first values of glibc's rand() without srand().
        let mut g = CRand::new();
        let got: Vec<u32> = (0..5).map(|_| g.next()).collect();
        assert_eq!(
            got,
            [1804289383, 846930886, 1681692777, 1714636915, 1957747793]
        );
    }

    #[test]
    fn sizing_matches_the_reference() {
        assert_eq!(CuckooFilter::bucket_count(1000), 256); // "rounded up to 1024"
        assert_eq!(CuckooFilter::bucket_count(1024), 256);
        assert_eq!(CuckooFilter::bucket_count(1025), 256); // integer division first
        assert_eq!(CuckooFilter::bucket_count(1028), 512);
        assert_eq!(CuckooFilter::bucket_count(20), 8);
        assert_eq!(CuckooFilter::bucket_count(8), 2);
        assert_eq!(CuckooFilter::bucket_count(5), 1);
        assert_eq!(CuckooFilter::bucket_count(1_000_000), 262_144);
        let lua = Lua::new();
        let cf = CuckooFilter::new(&lua, 1000).unwrap();
        assert_eq!((cf.items, cf.bytes(), cf.shift), (1024, 2048, 56));
    }

    #[test]
    fn reference_test_counts() {
        // The reference's tests/test.lua: numbers 1..800000 into new(1000000) count 799977
        // (fingerprint collisions are duplicates), all found, 799977 deleted; then, after a
        // clear, the same numbers as strings count 799967, and deleting "500000" leaves 799966.
        let lua = Lua::new();
        let mut cf = CuckooFilter::new(&lua, 1_000_000).unwrap();
        assert!(!cf.query(&num(1)));
        for i in 1..=800_000 {
            cf.add(&num(i)).unwrap();
        }
        assert_eq!(cf.count, 799_977);
        assert!((1..=800_000).all(|i| cf.query(&num(i))));
        let deleted = (1..=800_000).filter(|&i| cf.delete(&num(i))).count();
        assert_eq!(deleted, 799_977);
        assert_eq!(cf.count, 0);
        cf.clear();
        assert!(!cf.query(&num(1)));
        for i in 1..=800_000 {
            cf.add(i.to_string().as_bytes()).unwrap();
        }
        assert_eq!(cf.count, 799_967);
        assert!((1..=800_000).all(|i| cf.query(i.to_string().as_bytes())));
        assert!(cf.delete(b"500000"));
        assert_eq!(cf.count, 799_966);
    }

    #[test]
    fn reference_benchmark_count() {
        // The reference's benchmark adds the numbers 0..1e6 to new(2e6) and expects 999983.
        let lua = Lua::new();
        let mut cf = CuckooFilter::new(&lua, 2_000_000).unwrap();
        for x in 0..1_000_000 {
            cf.add(&num(x)).unwrap();
        }
        assert_eq!(cf.count, 999_983);
    }

    #[test]
    fn add_query_delete_count_clear() {
        let lua = lua();
        let r: (
            bool,
            bool,
            bool,
            bool,
            f64,
            bool,
            bool,
            bool,
            f64,
            bool,
            f64,
            String,
        ) = lua
            .load(
                r#"
                local cf = cuckoo_filter.new(1000)
                local before = cf:query("test")
                local added = cf:add("test")
                local found = cf:query("test")
                local again = cf:add("test")
                cf:add("other")
                local n = cf:count()
                local deleted = cf:delete("test")
                local gone = cf:query("test")
                local deleted_again = cf:delete("test")
                local n2 = cf:count()
                cf:clear()
                return before, added, found, again, n, deleted, gone, deleted_again, n2,
                    cf:query("other"), cf:count(), cuckoo_filter.version()
                "#,
            )
            .eval()
            .unwrap();
        assert!(!r.0 && r.1 && r.2 && !r.3);
        assert_eq!(r.4, 2.0);
        assert!(r.5 && !r.6 && !r.7);
        assert_eq!(r.8, 1.0);
        assert!(!r.9);
        assert_eq!(r.10, 0.0);
        assert_eq!(r.11, "1.1.1");
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let lua = lua();
        let (count, fps): (f64, f64) = lua
            .load(
                r#"
                local cf = cuckoo_filter.new(8192)
                for i = 1, 5000 do cf:add("k" .. i) end
                for i = 1, 5000 do assert(cf:query("k" .. i), "false negative " .. i) end
                local fps = 0
                for i = 5001, 15000 do if cf:query("k" .. i) then fps = fps + 1 end end
                return cf:count(), fps
                "#,
            )
            .eval()
            .unwrap();
        assert!(count > 4990.0 && count <= 5000.0, "count {count}");
        assert!(fps / 10000.0 < 0.001, "false positives {fps}");
    }

    #[test]
    fn number_keys() {
        let lua = lua();
        let r: (f64, bool, bool, bool, bool, bool) = lua
            .load(
                r#"
                local cf = cuckoo_filter.new(1024)
                for i = 1, 700 do cf:add(i) end
                for i = 1, 700 do assert(cf:query(i), "query failed " .. i) end
                local half = cf:add(1.5)
                return cf:count(), cf:query(0.5), half, cf:query(1.5), cf:add(2), cf:query("1")
                "#,
            )
            .eval()
            .unwrap();
        assert!(r.0 > 695.0 && r.0 <= 701.0, "count {}", r.0);
        assert!(r.2 && r.3 && !r.4);
        // a numeric string is hashed as a string, not as the number
        assert!(!r.5);
        // a number is hashed over its double
        let lua2 = Lua::new();
        let mut cf = CuckooFilter::new(&lua2, 1024).unwrap();
        cf.add(&42f64.to_ne_bytes()).unwrap();
        let found: bool = {
            let lua = self::lua();
            let ud = lua.create_userdata(cf).unwrap();
            lua.globals().set("cf", ud).unwrap();
            lua.load("return cf:query(42)").eval().unwrap()
        };
        assert!(found);
    }

    #[test]
    fn full_filter_raises() {
        let lua = lua();
        // The reference's test: adding the same key repeatedly to new(8) never fails.
        lua.load(
            "local cf = cuckoo_filter.new(8) for i = 1, 8 do assert(cf:add(8) == (i == 1)) end",
        )
        .exec()
        .unwrap();
        // Distinct keys into 8 slots: the 9th insertion at the latest cannot be placed.
        let e = err(
            &lua,
            "local cf = cuckoo_filter.new(8)\nfor i = 1, 100 do cf:add(i) end",
        );
        assert_eq!(e, "test:2: the cuckoo filter is full");
    }

    #[test]
    fn argument_errors() {
        let lua = lua();
        let cases = [
            (
                "cuckoo_filter.new(2, 99)",
                "bad argument #0 to 'new' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new()",
                "bad argument #0 to 'new' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(nil)",
                "bad argument #1 to 'new' (number expected, got nil)",
            ),
            (
                "cuckoo_filter.new(0)",
                "bad argument #1 to 'new' (items must be > 4)",
            ),
            (
                "cuckoo_filter.new(4)",
                "bad argument #1 to 'new' (items must be > 4)",
            ),
            (
                "cuckoo_filter.new(20):add({})",
                "bad argument #1 to 'add' (must be a string or number)",
            ),
            (
                "cuckoo_filter.new(20):add()",
                "bad argument #1 to 'add' (must be a string or number)",
            ),
            (
                "cuckoo_filter.new(20):add('a', 'b')",
                "bad argument #-1 to 'add' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):query({})",
                "bad argument #1 to 'query' (must be a string or number)",
            ),
            (
                "cuckoo_filter.new(20):query(1, 2)",
                "bad argument #-1 to 'query' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):delete(true)",
                "bad argument #1 to 'delete' (must be a string or number)",
            ),
            (
                "cuckoo_filter.new(20):delete(1, 2)",
                "bad argument #-1 to 'delete' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):clear(1)",
                "bad argument #-1 to 'clear' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):count(1)",
                "bad argument #-1 to 'count' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):fromstring({})",
                "bad argument #-1 to 'fromstring' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):fromstring('                       ')",
                "bad argument #-1 to 'fromstring' (incorrect number of arguments)",
            ),
            (
                "cuckoo_filter.new(20):fromstring({}, '', 1)",
                "bad argument #1 to 'fromstring' (number expected, got table)",
            ),
            (
                "cuckoo_filter.new(20):fromstring(1, {}, 1)",
                "bad argument #2 to 'fromstring' (string expected, got table)",
            ),
            (
                "cuckoo_filter.new(20):fromstring(1, '', {})",
                "bad argument #3 to 'fromstring' (number expected, got table)",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("test:1: {want}"), "{code}");
        }
    }

    #[test]
    fn fromstring_length_and_version() {
        let lua = lua();
        // new(20): 8 buckets, 64 bytes
        assert_eq!(
            err(
                &lua,
                "cuckoo_filter.new(20):fromstring(0, string.rep(' ', 23), 1)"
            ),
            "test:1: fromstring() bytes found: 23, expected 64"
        );
        // Another binary version (nil reads as 0): the count is taken, the bytes ignored.
        let (count, found): (f64, bool) = lua
            .load(
                r#"
                local cf = cuckoo_filter.new(20)
                cf:fromstring(3, string.rep('\255', 64), 2)
                local count = cf:count()
                cf:fromstring(5, string.rep('\255', 64), nil)
                return count + cf:count(), cf:query("x")
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(count, 8.0);
        assert!(!found);
    }

    #[test]
    fn round_trip_through_preservation() {
        let lua = lua();
        lua.load(
            "cf = cuckoo_filter.new(500) for i = 1, 300 do cf:add('k' .. i) end cf:add(42) cf:delete('k7')",
        )
        .exec()
        .unwrap();
        let ud: mlua::AnyUserData = lua.globals().get("cf").unwrap();
        let mut src = String::new();
        ud.borrow::<CuckooFilter>()
            .unwrap()
            .serialize_lua("_G[\"cf\"]", &mut src);
        assert!(src.starts_with("_G[\"cf\"] = require(\"cuckoo_filter\").new(512)\n"));
        assert!(src.ends_with(", 1)\n"), "{src}");
        let count: f64 = lua.load("return cf:count()").eval().unwrap();

        let fresh = self::lua();
        fresh.load(&src).exec().unwrap();
        let r: (f64, bool, bool, bool, bool) = fresh
            .load(
                r#"
                local all = true
                for i = 1, 300 do if i ~= 7 then all = all and cf:query('k' .. i) end end
                return cf:count(), all, cf:query(42), cf:add(42), cf:query('k7')
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(r.0, count);
        assert!(r.1 && r.2 && !r.3);
        let _ = r.4; // may be a false positive
        let restored: mlua::AnyUserData = fresh.globals().get("cf").unwrap();
        assert_eq!(
            restored.borrow::<CuckooFilter>().unwrap().buckets,
            ud.borrow::<CuckooFilter>().unwrap().buckets
        );

        // A one-bucket filter restores too.
        let lua = self::lua();
        lua.load("one = cuckoo_filter.new(5) one:add('a')")
            .exec()
            .unwrap();
        let ud: mlua::AnyUserData = lua.globals().get("one").unwrap();
        let mut src = String::new();
        ud.borrow::<CuckooFilter>()
            .unwrap()
            .serialize_lua("one", &mut src);
        let fresh = self::lua();
        fresh.load(&src).exec().unwrap();
        let r: (f64, bool) = fresh
            .load("return one:count(), one:query('a')")
            .eval()
            .unwrap();
        assert_eq!(r, (1.0, true));
    }

    #[test]
    fn array_counts_against_the_memory_limit() {
        let lua = lua();
        let account = crate::memory::MemoryAccount::new(lua.used_memory() + 64 * 1024);
        lua.set_app_data(account.clone());
        // 1e6 items: 2 MiB of fingerprints
        let e = err(&lua, "big = cuckoo_filter.new(1000000)");
        assert!(e.contains("not enough memory"), "{e}");
        lua.load("small = cuckoo_filter.new(1000)").exec().unwrap();
        assert_eq!(account.external.get(), 2048);
        lua.load("small = nil collectgarbage() collectgarbage()")
            .exec()
            .unwrap();
        assert_eq!(account.external.get(), 0);
    }
}

//! `require`: the built-in modules (`lpeg`, `re`, `cjson`, `struct`, `circular_buffer`,
//! `hyperloglog`, `bloom_filter`, `cuckoo_filter`, `sax`, and the standard library tables) and
//! `.lua` modules from the module directories.

use std::ffi::c_int;
use std::path::PathBuf;

use mlua::chunk::ChunkMode;
use mlua::{Lua, Table, Value};

use crate::lua_util::{check_string, rt};

unsafe extern "C-unwind" {
    /// LPeg's module entry point: LPeg 1.0.2, `csrc/lpeg/` (see build.rs), its matching
    /// machine charging the instruction budget.
    fn luaopen_lpeg(l: *mut mlua::ffi::lua_State) -> c_int;
}

/// LPeg's `re` module, of the same LPeg release as `csrc/lpeg/`.
const RE_LUA: &str = include_str!("../lua/re.lua");

/// Registry key of the table of loaded modules.
pub(crate) const LOADED_KEY: &str = "hekate.loaded";
/// Registry key of the table of standard library tables `require` may hand out.
pub(crate) const BUILTINS_KEY: &str = "hekate.builtins";
const LOADING: &str = "hekate.loading";

/// What `require` may load.
#[derive(Clone, Debug)]
pub(crate) struct ModuleConfig {
    pub(crate) dirs: Vec<String>,
    pub(crate) output_limit: usize,
}

impl ModuleConfig {
    pub(crate) fn new(module_directory: &str, output_limit: usize) -> Self {
        ModuleConfig {
            dirs: module_directory
                .split(';')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            output_limit,
        }
    }

    /// Candidate files for module `name` with extension `ext`.
    fn candidates(&self, name: &str, ext: &str) -> Vec<PathBuf> {
        let rel = name.replace('.', "/");
        self.dirs
            .iter()
            .map(|d| {
                if d.contains('?') {
                    PathBuf::from(d.replace('?', &rel).replace(".lua", &format!(".{ext}")))
                } else {
                    PathBuf::from(d).join(format!("{rel}.{ext}"))
                }
            })
            .collect()
    }
}

fn open_lpeg(lua: &Lua) -> mlua::Result<Value> {
    // SAFETY: luaopen_lpeg is a regular lua_CFunction compiled against the Lua 5.1 ABI.
    let f = unsafe { lua.create_c_function(luaopen_lpeg)? };
    f.call::<Value>(())
}

fn load_text(lua: &Lua, code: &[u8], chunk_name: &str, module: &str) -> mlua::Result<Value> {
    if code.first() == Some(&0x1b) {
        return Err(rt(format!(
            "module '{module}': loading precompiled (bytecode) chunks is not allowed"
        )));
    }
    let f = lua
        .load(code)
        .set_name(chunk_name)
        .set_mode(ChunkMode::Text)
        .into_function()?;
    f.call::<Value>(module)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `require(name)`.
pub(crate) fn require(
    lua: &Lua,
    cfg: &ModuleConfig,
    strict: bool,
    arg: Value,
) -> mlua::Result<Value> {
    let name = check_string(&arg, 1, "require")?;
    let loaded: Table = lua.named_registry_value(LOADED_KEY)?;
    match loaded.raw_get::<Value>(name.as_str())? {
        Value::Nil => {}
        Value::String(s) if s.as_bytes().as_ref() == LOADING.as_bytes() => {
            return Err(rt(format!(
                "loop or previous error loading module '{name}'"
            )));
        }
        v => return Ok(v),
    }
    let builtins: Table = lua.named_registry_value(BUILTINS_KEY)?;
    let value = match name.as_str() {
        "io" | "coroutine" if strict => {
            return Err(rt(format!("module '{name}' is disabled")));
        }
        "string" | "table" | "math" | "os" | "io" | "coroutine" | "_G" => {
            match builtins.raw_get::<Value>(name.as_str())? {
                Value::Nil => return Err(rt(format!("module '{name}' not found"))),
                v => v,
            }
        }
        "lpeg" => open_lpeg(lua)?,
        "re" => {
            require(lua, cfg, strict, Value::String(lua.create_string("lpeg")?))?;
            load_text(lua, RE_LUA.as_bytes(), "=re", "re")?
        }
        "cjson" => {
            let t = crate::cjson::module(lua, cfg.output_limit)?;
            lua.globals().raw_set("cjson", &t)?;
            Value::Table(t)
        }
        "circular_buffer" => {
            let t = crate::circular_buffer::module(lua)?;
            lua.globals().raw_set("circular_buffer", &t)?;
            Value::Table(t)
        }
        "hyperloglog" => {
            let t = crate::hyperloglog::module(lua)?;
            lua.globals().raw_set("hyperloglog", &t)?;
            Value::Table(t)
        }
        "bloom_filter" => {
            let t = crate::bloom_filter::module(lua)?;
            lua.globals().raw_set("bloom_filter", &t)?;
            Value::Table(t)
        }
        "cuckoo_filter" => {
            let t = crate::cuckoo_filter::module(lua)?;
            lua.globals().raw_set("cuckoo_filter", &t)?;
            Value::Table(t)
        }
        "struct" => {
            let t = crate::struct_lib::module(lua)?;
            lua.globals().raw_set("struct", &t)?;
            Value::Table(t)
        }
        "sax" => {
            let t = crate::sax::module(lua)?;
            lua.globals().raw_set("sax", &t)?;
            Value::Table(t)
        }
        _ => {
            if !valid_name(&name) {
                return Err(rt(format!("invalid module name '{name}'")));
            }
            let candidates = cfg.candidates(&name, "lua");
            let Some(path) = candidates.iter().find(|p| p.is_file()) else {
                if cfg.candidates(&name, "so").iter().any(|p| p.is_file()) {
                    return Err(rt(format!("module '{name}': C modules are not supported")));
                }
                let tried: Vec<String> = candidates
                    .iter()
                    .map(|p| format!("\n\tno file '{}'", p.display()))
                    .collect();
                return Err(rt(format!("module '{name}' not found:{}", tried.concat())));
            };
            let code = std::fs::read(path).map_err(|e| {
                rt(format!(
                    "module '{name}': cannot read {}: {e}",
                    path.display()
                ))
            })?;
            loaded.raw_set(name.as_str(), LOADING)?;
            let r = load_text(lua, &code, &format!("@{}", path.display()), &name);
            match r {
                Ok(v) => v,
                Err(e) => {
                    loaded.raw_set(name.as_str(), Value::Nil)?;
                    return Err(e);
                }
            }
        }
    };
    let value = if value.is_nil() {
        Value::Boolean(true)
    } else {
        value
    };
    loaded.raw_set(name.as_str(), &value)?;
    Ok(value)
}

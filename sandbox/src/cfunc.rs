//! The hot API functions as raw Lua C functions: `read_message` and `inject_message`.
//!
//! They work on the Lua stack directly (no argument conversion, no registry references, no
//! protected calls). Lua raises errors with `longjmp`, which must not cross a Rust frame that
//! still owns a value with a destructor. So each function is split in phases:
//! 1. argument checks with `luaL_check*` (may raise; nothing owned yet);
//! 2. the work, inside `catch_unwind`, using only Lua API calls that cannot raise, producing a
//!    plain result (what to push, or an error text parked in [`Shared::error_text`]);
//! 3. pushing the result or raising the parked error (may raise; nothing owned any more).

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use hekate_model::message::{FieldValue, MessageAccess, UUID_STRING_LEN, format_uuid};
use mlua::Lua;
use mlua::ffi::{self, lua_State};

use crate::api::{inject_encoded, inject_protobuf, table_stamp};
use crate::raw_table::{STACK_NEEDED, encode_message_table};
use crate::state::{MessageRef, Shared};

/// Creates a C closure over `f` whose upvalue points at `shared`.
///
/// # Safety
/// `shared` must outlive the Lua state.
pub(crate) unsafe fn create(
    lua: &Lua,
    shared: *const Shared,
    f: ffi::lua_CFunction,
) -> mlua::Result<mlua::Function> {
    // SAFETY: the closure only pushes a light userdata and a C closure, in protected mode.
    unsafe {
        lua.exec_raw::<mlua::Function>((), |state| {
            ffi::lua_pushlightuserdata(state, shared as *mut c_void);
            ffi::lua_pushcclosure(state, f, 1);
        })
    }
}

/// # Safety
/// Called from a C closure made by [`create`].
unsafe fn shared<'a>(l: *mut lua_State) -> &'a Shared {
    // SAFETY: the upvalue is the Shared pointer given to `create`, alive as long as the state.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Shared) }
}

/// Raises the error text parked in `shared`.
///
/// # Safety
/// No value with a destructor may be alive in the calling frames up to the Lua call.
unsafe fn raise(l: *mut lua_State, shared: &Shared) -> ! {
    let (ptr, len) = {
        let e = shared.error_text.borrow();
        (e.as_ptr(), e.len())
    };
    // SAFETY: the buffer is not touched again before lua_pushlstring copied it.
    unsafe {
        // like luaL_error: the position of the calling Lua line first
        ffi::luaL_where(l, 1);
        ffi::lua_pushlstring(l, ptr as *const _, len);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

fn park(shared: &Shared, text: String) {
    *shared.error_text.borrow_mut() = text;
}

/// What `read_message` pushes.
enum Push {
    Nil,
    Bytes(*const u8, usize),
    Uuid([u8; UUID_STRING_LEN]),
    Number(f64),
    Bool(bool),
}

fn access<'a>(m: &'a MessageRef<'a>) -> &'a dyn MessageAccess {
    match m {
        MessageRef::View(v) => *v,
        MessageRef::Owned(o) => *o,
    }
}

fn bytes(b: &[u8]) -> Push {
    Push::Bytes(b.as_ptr(), b.len())
}

/// Looks up `read_message(name, fi, ai)`. Pointers in the result stay valid until the current
/// message changes (the end of this call at the earliest).
fn lookup(shared: &Shared, name: &[u8], fi: usize, ai: usize) -> Push {
    // SAFETY: the reference is used within this API call only.
    let Some(msg) = (unsafe { shared.message() }) else {
        return Push::Nil;
    };
    let m = access(&msg);
    match name {
        b"Type" => bytes(m.msg_type()),
        b"Logger" => bytes(m.logger()),
        b"Payload" => bytes(m.payload()),
        b"EnvVersion" => bytes(m.env_version()),
        b"Hostname" => bytes(m.hostname()),
        b"Uuid" => {
            let mut buf = [0u8; UUID_STRING_LEN];
            match format_uuid(m.uuid(), &mut buf) {
                Some(()) => Push::Uuid(buf),
                None => bytes(b""),
            }
        }
        b"Timestamp" => Push::Number(m.timestamp() as f64),
        b"Severity" => Push::Number(m.severity() as f64),
        b"Pid" => Push::Number(m.pid() as f64),
        b"raw" => {
            let (ptr, len) = match msg {
                MessageRef::View(v) => (v.bytes().as_ptr(), v.bytes().len()),
                MessageRef::Owned(o) => {
                    let mut cache = shared.raw_cache.borrow_mut();
                    let b = cache.get_or_insert_with(|| o.to_bytes());
                    // The Vec stays in place until write_message or the next call replaces it.
                    (b.as_ptr(), b.len())
                }
            };
            if len == 0 {
                Push::Nil
            } else {
                Push::Bytes(ptr, len)
            }
        }
        _ => {
            let Some(field) = name
                .strip_prefix(b"Fields[")
                .and_then(|r| r.strip_suffix(b"]"))
            else {
                return Push::Nil;
            };
            match m.field_value(field, fi, ai) {
                Some(FieldValue::String(s)) => bytes(s),
                Some(FieldValue::Bytes(b)) if !b.is_empty() => bytes(b),
                Some(FieldValue::Integer(i)) => Push::Number(i as f64),
                Some(FieldValue::Double(d)) => Push::Number(d),
                Some(FieldValue::Bool(b)) => Push::Bool(b),
                Some(FieldValue::Bytes(_)) | None => Push::Nil,
            }
        }
    }
}

/// `read_message(name[, fi[, ai]])`.
pub(crate) unsafe extern "C-unwind" fn read_message(l: *mut lua_State) -> c_int {
    // SAFETY (whole function): `l` is the live state calling us; see the module docs for the
    // phases that keep longjmp away from owned values.
    unsafe {
        let shared = shared(l);
        let n = ffi::lua_gettop(l);
        if !(1..=3).contains(&n) {
            ffi::luaL_error(l, c"read_message() incorrect number of arguments".as_ptr());
        }
        let (mut fi, mut ai) = (0, 0);
        if n == 3 {
            ai = ffi::luaL_checkinteger(l, 3);
            if ai < 0 {
                ffi::luaL_argerror(l, 3, c"array index must be >= 0".as_ptr());
            }
        }
        if n >= 2 {
            fi = ffi::luaL_checkinteger(l, 2);
            if fi < 0 {
                ffi::luaL_argerror(l, 2, c"field index must be >= 0".as_ptr());
            }
        }
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        let name = std::slice::from_raw_parts(p as *const u8, len);
        let push = catch_unwind(AssertUnwindSafe(|| {
            lookup(shared, name, fi as usize, ai as usize)
        }))
        .unwrap_or(Push::Nil);
        match push {
            Push::Nil => ffi::lua_pushnil(l),
            Push::Bytes(p, n) => {
                ffi::lua_pushlstring(l, p as *const _, n);
            }
            Push::Uuid(buf) => {
                ffi::lua_pushlstring(l, buf.as_ptr() as *const _, buf.len());
            }
            Push::Number(d) => ffi::lua_pushnumber(l, d),
            Push::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
        }
        1
    }
}

/// Encodes the table at index 1 and hands it to the host.
///
/// # Safety
/// `l` is the live state calling `inject_message`, with [`STACK_NEEDED`] free slots.
unsafe fn inject_table(l: *mut lua_State, shared: &Shared) -> Result<(), String> {
    let stamp = table_stamp(shared)?;
    let mut scratch = shared.scratch.borrow_mut();
    // SAFETY: forwarded.
    unsafe { encode_message_table(l, 1, &mut scratch, &stamp) }
        .map_err(|e| format!("inject_message() could not encode protobuf - {e}"))?;
    inject_encoded(shared, &scratch.out)
}

/// `inject_message(table | protobuf string)`.
pub(crate) unsafe extern "C-unwind" fn inject_message(l: *mut lua_State) -> c_int {
    // SAFETY (whole function): as read_message.
    unsafe {
        let shared = shared(l);
        if ffi::lua_checkstack(l, STACK_NEEDED) == 0 {
            ffi::luaL_error(l, c"inject_message() stack overflow".as_ptr());
        }
        let ok = catch_unwind(AssertUnwindSafe(|| {
            let r = match ffi::lua_type(l, 1) {
                ffi::LUA_TTABLE => inject_table(l, shared),
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(l, 1, &mut len);
                    inject_protobuf(shared, std::slice::from_raw_parts(p as *const u8, len))
                }
                t => {
                    let got = std::ffi::CStr::from_ptr(ffi::lua_typename(l, t)).to_string_lossy();
                    Err(format!(
                        "bad argument #1 to 'inject_message' (table or string expected, got {got})"
                    ))
                }
            };
            match r {
                Ok(()) => true,
                Err(e) => {
                    park(shared, e);
                    false
                }
            }
        }))
        .unwrap_or_else(|_| {
            park(shared, "inject_message() internal error".into());
            false
        });
        if ok { 0 } else { raise(l, shared) }
    }
}

/// `os.time([table])` in UTC (the sandbox's local time zone), as a C function: decoders call it
/// once per line.
pub(crate) unsafe extern "C-unwind" fn os_time(l: *mut lua_State) -> c_int {
    // SAFETY (whole function): `l` is the live state calling us; nothing owned is alive across
    // the calls that may raise.
    unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => {
                let now = crate::host::system_now_ns().div_euclid(1_000_000_000);
                ffi::lua_pushnumber(l, now as f64);
                return 1;
            }
            ffi::LUA_TTABLE => {}
            _ => {
                ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
            }
        }
        ffi::lua_settop(l, 1);
        if ffi::lua_checkstack(l, 3) == 0 {
            ffi::luaL_error(l, c"os.time() stack overflow".as_ptr());
        }
        // sec, min, hour, day, month, year
        let mut v: [Option<f64>; 6] = [None; 6];
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, 1) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, -2, &mut len);
                let slot = match std::slice::from_raw_parts(p as *const u8, len) {
                    b"sec" => Some(0),
                    b"min" => Some(1),
                    b"hour" => Some(2),
                    b"day" => Some(3),
                    b"month" => Some(4),
                    b"year" => Some(5),
                    _ => None,
                };
                if let Some(i) = slot
                    && ffi::lua_isnumber(l, -1) != 0
                {
                    v[i] = Some(ffi::lua_tonumber(l, -1));
                }
            }
            ffi::lua_pop(l, 1);
        }
        let Some(day) = v[3] else {
            return ffi::luaL_error(l, c"field 'day' missing in date table".as_ptr());
        };
        let Some(month) = v[4] else {
            return ffi::luaL_error(l, c"field 'month' missing in date table".as_ptr());
        };
        let Some(year) = v[5] else {
            return ffi::luaL_error(l, c"field 'year' missing in date table".as_ptr());
        };
        // Clamped so that no arithmetic below can overflow.
        let clamp = |d: f64| (d as i64).clamp(-100_000_000, 100_000_000);
        let days = crate::time_util::days_from_civil(clamp(year), clamp(month), clamp(day));
        let secs = days * 86_400
            + clamp(v[2].unwrap_or(12.0)) * 3600
            + clamp(v[1].unwrap_or(0.0)) * 60
            + clamp(v[0].unwrap_or(0.0));
        ffi::lua_pushnumber(l, secs as f64);
        1
    }
}

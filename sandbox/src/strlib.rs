//! `string.find`, `match`, `gmatch` and `gsub` (and `gfind`, 5.1's old name of `gmatch`) with a
//! budget: Lua 5.1.5's own pattern matcher (`csrc/hekate_strlib.c`, a copy of `lstrlib.c`'s)
//! counting its steps and charging them to the running call's instruction budget.
//!
//! Lua's instruction-count hook does not fire inside a C function, so stock `string.match`
//! with a backtracking pattern (`^(.-) (.-) (.-) (.-) end$` on a long line) ran for minutes,
//! past `instruction_limit` and deaf to SIGUSR2. Here every matcher step — an entry into the
//! matcher, a character a repetition or `%b` tries — counts as one instruction; every 1000 steps
//! (`CHARGE_STEPS` in the C file), and when the call ends, the count is added to the call's
//! budget (`sandbox::charge`), and the matcher stops with the hook's own errors:
//! "instruction_limit exceeded" once the budget is spent, "aborted by SIGUSR2" once the sandbox
//! is aborted. Results and error messages are stock Lua 5.1.5's.

use std::ffi::c_int;

use mlua::ffi::lua_State;
use mlua::{Lua, Table, Value};

unsafe extern "C-unwind" {
    fn hekate_str_find(l: *mut lua_State) -> c_int;
    fn hekate_str_match(l: *mut lua_State) -> c_int;
    fn hekate_gmatch(l: *mut lua_State) -> c_int;
    fn hekate_str_gsub(l: *mut lua_State) -> c_int;
}

/// What the matcher is told after charging its steps (the C side raises the error).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charged {
    /// Go on.
    Go = 0,
    /// The instruction limit is exceeded.
    LimitExceeded = 1,
    /// The sandbox was aborted (SIGUSR2).
    Aborted = 2,
}

/// Called by the C matchers (through `hekate_charge`, `csrc/hekate_budget.h`: the string
/// library's and LPeg's) with the steps they ran since they last called.
#[unsafe(no_mangle)]
extern "C" fn hekate_match_charge(l: *mut lua_State, steps: c_int) -> c_int {
    crate::sandbox::charge(l, u32::try_from(steps).unwrap_or(0)) as c_int
}

/// Replaces the pattern-matching functions of the `string` table with the budgeted ones.
pub(crate) fn install(lua: &Lua, string: &Table) -> mlua::Result<()> {
    let old_gmatch: Value = string.raw_get("gmatch")?;
    // SAFETY: plain lua_CFunctions following the Lua 5.1 C API.
    let (find, matchf, gmatch, gsub) = unsafe {
        (
            lua.create_c_function(hekate_str_find)?,
            lua.create_c_function(hekate_str_match)?,
            lua.create_c_function(hekate_gmatch)?,
            lua.create_c_function(hekate_str_gsub)?,
        )
    };
    string.raw_set("find", find)?;
    string.raw_set("match", matchf)?;
    string.raw_set("gsub", gsub)?;
    // LUA_COMPAT_GFIND: `gfind` is the same function as `gmatch`.
    let gfind: Value = string.raw_get("gfind")?;
    if matches!(gfind, Value::Function(_)) && gfind == old_gmatch {
        string.raw_set("gfind", &gmatch)?;
    }
    string.raw_set("gmatch", gmatch)?;
    Ok(())
}

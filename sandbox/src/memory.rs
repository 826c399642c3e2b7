//! Memory that userdata (circular buffers, bloom filters, hyperloglogs) hold outside the Lua
//! heap, counted against the sandbox's `memory_limit` together with the heap.

use std::cell::Cell;
use std::rc::Rc;

use mlua::Lua;

/// Bytes held outside the Lua heap (circular buffers, bloom filters, hyperloglogs), counted
/// against the sandbox's memory limit.
#[derive(Debug)]
pub(crate) struct MemoryAccount {
    /// The sandbox's memory_limit (0 = unlimited).
    pub(crate) limit: usize,
    /// Bytes currently held outside the Lua heap.
    pub(crate) external: Cell<usize>,
    /// Set when `external` changed, so the Lua heap limit is recomputed before the next call.
    pub(crate) dirty: Cell<bool>,
}

impl MemoryAccount {
    pub(crate) fn new(limit: usize) -> Rc<Self> {
        Rc::new(MemoryAccount {
            limit,
            external: Cell::new(0),
            dirty: Cell::new(false),
        })
    }

    /// The limit left for the Lua heap.
    pub(crate) fn lua_limit(&self) -> usize {
        if self.limit == 0 {
            0
        } else {
            self.limit.saturating_sub(self.external.get()).max(1)
        }
    }

    pub(crate) fn reserve(&self, lua: &Lua, bytes: usize) -> mlua::Result<()> {
        if self.limit != 0 && lua.used_memory() + self.external.get() + bytes > self.limit {
            return Err(mlua::Error::MemoryError("not enough memory".into()));
        }
        self.external.set(self.external.get() + bytes);
        // Lower the Lua heap limit right away so the script cannot overshoot in this call.
        let _ = lua.set_memory_limit(self.lua_limit());
        Ok(())
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.external.set(self.external.get().saturating_sub(bytes));
        self.dirty.set(true);
    }
}

/// Bytes reserved in the sandbox's account for as long as the value lives (none when the state
/// has no account, as in a bare Lua state).
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    account: Option<Rc<MemoryAccount>>,
    bytes: usize,
}

impl Reservation {
    /// Reserves `bytes`; fails with a memory error when the limit would be exceeded.
    pub(crate) fn new(lua: &Lua, bytes: usize) -> mlua::Result<Self> {
        let account = lua.app_data_ref::<Rc<MemoryAccount>>().map(|a| a.clone());
        if let Some(a) = &account {
            a.reserve(lua, bytes)?;
        }
        Ok(Reservation { account, bytes })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(a) = &self.account {
            a.release(self.bytes);
        }
    }
}

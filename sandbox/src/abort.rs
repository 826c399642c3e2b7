//! SIGUSR2's abort, owned by the sandbox: every Lua sandbox that exists when [`abort_all`] is
//! called terminates — one running a script stops at its next instruction-count check (every
//! 1000 instructions, or 100 000 without an instruction limit; inside `string.find`, `match`,
//! `gmatch` or `gsub`, or an LPeg match, every 1000 matcher steps), an idle one
//! before its next call — and the pipeline carries on without it (its
//! `heka.sandbox-terminated` message says "aborted by SIGUSR2"). Sandboxes created afterwards are
//! not affected. The daemon wires SIGUSR2 to [`abort_all`]; `tests/abort.rs` tests it in a
//! process of its own, since the abort is process-wide.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many times [`abort_all`] was called.
static ABORTS: AtomicU64 = AtomicU64::new(0);

/// Aborts every sandbox that exists now, on every thread.
pub fn abort_all() {
    ABORTS.fetch_add(1, Ordering::Release);
}

/// How many times [`abort_all`] was called: a sandbox that saw a smaller number when it was
/// created is aborted.
#[inline]
pub(crate) fn aborts() -> u64 {
    ABORTS.load(Ordering::Acquire)
}

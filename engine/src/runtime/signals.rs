//! Signals are taken synchronously by the coordinator: they are blocked in every thread (the mask
//! is set before any thread starts and inherited), and the coordinator collects them with
//! `sigtimedwait`. No handler runs at an arbitrary point of a shard's work.

use std::time::Duration;

/// A signal hekate acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT or SIGTERM: orderly shutdown.
    Shutdown,
    /// SIGUSR1: print the text report.
    Report,
    /// SIGHUP: outputs reopen their files (after log rotation) and the config is reloaded.
    Reload,
    /// SIGUSR2: abort every Lua sandbox (what [`Coordinator::on_sandbox_abort`] was given).
    ///
    /// [`Coordinator::on_sandbox_abort`]: super::Coordinator::on_sandbox_abort
    AbortSandboxes,
}

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGHUP,
        ] {
            libc::sigaddset(&mut s, sig);
        }
        s
    }
}

/// Blocks hekate's signals in the calling thread and every thread it starts afterwards.
pub fn block() {
    let s = set();
    // SAFETY: changes the calling thread's signal mask only.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &s, std::ptr::null_mut());
    }
}

/// Waits up to `timeout` for one of hekate's signals.
pub(crate) fn wait(timeout: Duration) -> Option<Signal> {
    let s = set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait reads the set and timeout we pass; no siginfo is requested.
    let sig = unsafe { libc::sigtimedwait(&s, std::ptr::null_mut(), &ts) };
    match sig {
        libc::SIGINT | libc::SIGTERM => Some(Signal::Shutdown),
        libc::SIGUSR1 => Some(Signal::Report),
        libc::SIGHUP => Some(Signal::Reload),
        libc::SIGUSR2 => Some(Signal::AbortSandboxes),
        _ => None,
    }
}

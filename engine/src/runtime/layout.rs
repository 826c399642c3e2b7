//! Which cores run what, and how much io_uring memory each shard may lock.

use hekate_config::{CoordinatorCore, CoreLayout, GlobalConfig};

use super::pipeline::StartError;

/// glommio refuses to start below this RLIMIT_MEMLOCK.
pub(crate) const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// glommio always reserves at least this much io memory per executor.
pub(crate) const GLOMMIO_MIN_IO_MEMORY: u64 = 64 * 1024;
/// io memory per shard when the limit leaves room for it (hekate's own I/O does not use glommio's
/// DMA buffers on the hot path, so a small pool is enough).
pub(crate) const DEFAULT_IO_MEMORY: u64 = 1024 * 1024;

/// The resolved core layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// One core per worker shard, in shard order.
    pub workers: Vec<usize>,
    /// The coordinator's core (may be a worker's).
    pub coordinator: usize,
    /// io_uring buffer memory per shard, in bytes.
    pub io_memory: u64,
}

/// The cores this process may run on (its CPU affinity mask).
pub fn allowed_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cores.sort_unstable();
    if cores.is_empty() {
        cores.push(0);
    }
    cores
}

/// Renders a core list compactly: `0-3,6`.
pub(crate) fn format_cores(cores: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}-{}", cores[i], cores[j]));
        } else {
            out.push_str(&cores[i].to_string());
        }
        i = j + 1;
    }
    out
}

/// The soft RLIMIT_MEMLOCK in bytes (`u64::MAX` when unlimited).
pub(crate) fn memlock_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0;
    if !ok || r.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        r.rlim_cur
    }
}

fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

/// Resolves the configured layout against the cores this process may use and the memlock limit.
pub(crate) fn resolve(
    global: &GlobalConfig,
    allowed: &[usize],
    memlock: u64,
) -> Result<Layout, StartError> {
    let workers = match &global.worker_cores {
        CoreLayout::Auto => allowed.to_vec(),
        CoreLayout::Cores(cores) => {
            for c in cores {
                if !allowed.contains(c) {
                    return Err(StartError::Layout(format!(
                        "worker core {c} in `worker_cores` does not exist or is not available to this process (it may use cores {})",
                        format_cores(allowed)
                    )));
                }
            }
            cores.clone()
        }
    };
    let coordinator = match global.coordinator_core {
        CoordinatorCore::Core(c) => {
            if !allowed.contains(&c) {
                return Err(StartError::Layout(format!(
                    "`coordinator_core` {c} does not exist or is not available to this process (it may use cores {})",
                    format_cores(allowed)
                )));
            }
            c
        }
        CoordinatorCore::Auto => allowed
            .iter()
            .copied()
            .find(|c| !workers.contains(c))
            .unwrap_or(workers[0]),
    };
    let shards = workers.len() as u64;
    if memlock < GLOMMIO_MIN_MEMLOCK {
        return Err(StartError::Layout(format!(
            "the locked-memory limit (RLIMIT_MEMLOCK) is {} KiB but io_uring needs at least {} KiB; raise it with `ulimit -l {}` (or LimitMEMLOCK= in a systemd unit, memlock in /etc/security/limits.conf)",
            kib(memlock),
            kib(GLOMMIO_MIN_MEMLOCK),
            kib(3 * DEFAULT_IO_MEMORY * shards).max(8192)
        )));
    }
    let io_memory = match global.io_memory {
        Some(io) => {
            let need = io.saturating_mul(3).saturating_mul(shards);
            if need > memlock {
                return Err(StartError::Layout(format!(
                    "io_memory of {} KiB × 3 io_uring rings × {shards} shards needs {} KiB of locked memory but RLIMIT_MEMLOCK is {} KiB; lower `io_memory` or raise the limit with `ulimit -l {}`",
                    kib(io),
                    kib(need),
                    kib(memlock),
                    kib(need)
                )));
            }
            io
        }
        None => {
            let fit = (memlock / 3 / shards) & !4095;
            if fit < GLOMMIO_MIN_IO_MEMORY {
                return Err(StartError::Layout(format!(
                    "the locked-memory limit (RLIMIT_MEMLOCK) of {} KiB is too low for {shards} shards, each needs {} KiB; raise it with `ulimit -l {}` or list fewer `worker_cores`",
                    kib(memlock),
                    kib(3 * GLOMMIO_MIN_IO_MEMORY),
                    kib(3 * GLOMMIO_MIN_IO_MEMORY * shards)
                )));
            }
            fit.min(DEFAULT_IO_MEMORY)
        }
    };
    Ok(Layout {
        workers,
        coordinator,
        io_memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(workers: CoreLayout, coord: CoordinatorCore, io: Option<u64>) -> GlobalConfig {
        GlobalConfig {
            worker_cores: workers,
            coordinator_core: coord,
            io_memory: io,
            ..GlobalConfig::default()
        }
    }

    #[test]
    fn auto_uses_every_allowed_core() {
        let g = global(CoreLayout::Auto, CoordinatorCore::Auto, None);
        let l = resolve(&g, &[0, 1], 8192 * 1024).unwrap();
        assert_eq!(l.workers, [0, 1]);
        assert_eq!(l.coordinator, 0);
        assert_eq!(l.io_memory, DEFAULT_IO_MEMORY);
        assert!(3 * l.io_memory * 2 <= 8192 * 1024);
        let l = resolve(&g, &[0, 1, 2, 3], 2048 * 1024).unwrap();
        assert_eq!(l.io_memory, (2048 * 1024 / 12) & !4095);
    }

    #[test]
    fn missing_cores_are_refused() {
        let g = global(CoreLayout::Cores(vec![1, 7]), CoordinatorCore::Auto, None);
        let e = resolve(&g, &[0, 1], u64::MAX).unwrap_err().to_string();
        assert!(e.contains("worker core 7"), "{e}");
        assert!(e.contains("0-1"), "{e}");
        let g = global(CoreLayout::Cores(vec![1]), CoordinatorCore::Core(9), None);
        assert!(resolve(&g, &[0, 1], u64::MAX).is_err());
        let g = global(CoreLayout::Cores(vec![1]), CoordinatorCore::Auto, None);
        assert_eq!(resolve(&g, &[0, 1], u64::MAX).unwrap().coordinator, 0);
    }

    #[test]
    fn memlock_limits_say_how_to_raise_them() {
        let g = global(CoreLayout::Auto, CoordinatorCore::Auto, None);
        let e = resolve(&g, &[0, 1], 64 * 1024).unwrap_err().to_string();
        assert!(e.contains("ulimit -l"), "{e}");
        let g = global(CoreLayout::Auto, CoordinatorCore::Auto, Some(4 << 20));
        let e = resolve(&g, &[0, 1], 8 << 20).unwrap_err().to_string();
        assert!(e.contains("io_memory"), "{e}");
        assert!(e.contains("ulimit -l 24576"), "{e}");
    }

    #[test]
    fn core_lists_are_compact() {
        assert_eq!(format_cores(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}

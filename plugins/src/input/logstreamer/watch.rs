//! File events for LogstreamerInput, through inotify (the `inotify` crate).
//!
//! One watch per directory under `log_directory` (a directory watch reports events on the
//! files in it, so one watch covers every file). A thread of its own waits on the inotify
//! descriptor (`poll` with a timeout, so it notices when the input stops), sorts each event and
//! rings the shard's doorbell; the shard drains what it collected:
//!
//! - a file written (`IN_MODIFY`): the stream reading that path looks for new data now instead
//!   of at its next poll;
//! - a file or directory created, moved or deleted: the input rescans now instead of at its
//!   next `rescan_interval`.
//!
//! Events are coalesced (a path is kept once until drained), so the queue is bounded by the
//! number of files; when the kernel's own queue overflows (`IN_Q_OVERFLOW`), a rescan and a
//! look at every stream stand in for what was lost. Without inotify (its limits reached, a file
//! system that does not report events) the input falls back to polling, as Heka does.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hekate_engine::mesh::Doorbell;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};

/// What happened since the last drain.
#[derive(Debug, Default)]
pub struct Drained {
    /// Directories changed: rescan.
    pub rescan: bool,
    /// Every stream should look (events were lost).
    pub everything: bool,
    /// Files written.
    pub modified: Vec<PathBuf>,
}

#[derive(Debug, Default)]
struct Pending {
    rescan: bool,
    everything: bool,
    modified: HashSet<PathBuf>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    dirs: Mutex<HashMap<WatchDescriptor, PathBuf>>,
    bell: Doorbell,
    stop: AtomicBool,
}

/// The inotify watches of one input instance and the thread reading their events.
#[derive(Debug)]
pub struct Watcher {
    shared: Arc<Shared>,
    watches: Mutex<Watches>,
    watched: Mutex<HashSet<PathBuf>>,
    thread: Option<JoinHandle<()>>,
}

const DIR_EVENTS: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::MODIFY);

impl Watcher {
    /// Starts the event thread; `name` names it (`ls-<input>`).
    pub fn start(name: &str) -> std::io::Result<Watcher> {
        let inotify = Inotify::init()?;
        let watches = inotify.watches();
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            dirs: Mutex::default(),
            bell: Doorbell::new(),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("ls-{name}"))
            .spawn(move || read_events(inotify, &s))?;
        Ok(Watcher {
            shared,
            watches: Mutex::new(watches),
            watched: Mutex::default(),
            thread: Some(thread),
        })
    }

    /// Watches every directory of `dirs` not watched yet. Returns the first error (the
    /// directories before it are watched).
    pub fn watch<'a>(&self, dirs: impl IntoIterator<Item = &'a Path>) -> std::io::Result<()> {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        for dir in dirs {
            if watched.contains(dir) {
                continue;
            }
            let wd = watches.add(dir, DIR_EVENTS)?;
            watched.insert(dir.to_path_buf());
            self.shared
                .dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(wd, dir.to_path_buf());
        }
        Ok(())
    }

    /// Rung when events are waiting (see [`Watcher::has_pending`]).
    pub fn bell(&self) -> &Doorbell {
        &self.shared.bell
    }

    /// Whether events wait to be drained.
    pub fn has_pending(&self) -> bool {
        let p = self.lock_pending();
        p.rescan || p.everything || !p.modified.is_empty()
    }

    /// Takes what happened since the last call.
    pub fn drain(&self) -> Drained {
        let mut p = self.lock_pending();
        let drained = Drained {
            rescan: p.rescan,
            everything: p.everything,
            modified: p.modified.drain().collect(),
        };
        p.rescan = false;
        p.everything = false;
        drained
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The event thread: waits at most this long at a time, so that it notices a stop.
const POLL_MS: i32 = 200;

fn read_events(mut inotify: Inotify, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::Acquire) {
        let mut fds = libc::pollfd {
            fd: inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, POLL_MS) };
        if ready <= 0 {
            continue;
        }
        let events = match inotify.read_events(&mut buf) {
            Ok(events) => events,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(POLL_MS as u64));
                continue;
            }
        };
        let mut any = false;
        {
            let dirs = shared.dirs.lock().unwrap_or_else(|e| e.into_inner());
            let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            for ev in events {
                any = true;
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    p.rescan = true;
                    p.everything = true;
                    continue;
                }
                let file_event =
                    ev.mask.contains(EventMask::MODIFY) && !ev.mask.contains(EventMask::ISDIR);
                match (file_event, dirs.get(&ev.wd), ev.name) {
                    (true, Some(dir), Some(name)) => {
                        p.modified.insert(dir.join(name));
                    }
                    _ => p.rescan = true,
                }
            }
        }
        if any {
            shared.bell.ring();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Writes are reported by path; creations, renames and deletions ask for a rescan; the
    /// thread stops when the watcher is dropped.
    #[test]
    fn sorts_file_writes_from_directory_changes() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        std::fs::write(&log, "a\n").unwrap();
        let w = Watcher::start("test").unwrap();
        w.watch([d.path()]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"b\n")
            .unwrap();
        assert!(wait_until(|| w.has_pending()));
        let got = w.drain();
        assert_eq!(got.modified, vec![log.clone()]);
        assert!(!got.rescan);
        std::fs::rename(&log, d.path().join("app.log.1")).unwrap();
        assert!(wait_until(|| w.has_pending()));
        assert!(w.drain().rescan);
        let started = Instant::now();
        drop(w);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    use std::io::Write as _;
}

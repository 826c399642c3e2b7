//! The `pid_file`: this process's id, in a file locked for the life of the process.
//!
//! The file is opened, then locked with `flock(LOCK_EX | LOCK_NB)`; a second hekate that finds it
//! locked is refused with the id of the process that holds it. The lock, not the file's contents,
//! says whether hekate runs: the kernel releases it when the process ends however it ends, so a
//! file left behind by a crashed hekate does not stop the next start. The file is removed at
//! exit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A locked `pid_file`; unlocked and removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Holds the lock while open; closed after the file is removed.
    _lock: File,
}

impl PidFile {
    /// Locks `path` (created if missing) and writes this process's id into it. Fails with one
    /// sentence when another process holds the lock or the file cannot be written.
    pub fn lock(path: &Path) -> Result<PidFile, String> {
        let cannot = |e: io::Error| format!("cannot write pid_file {}: {e}", path.display());
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(cannot)?;
            if !try_lock(&file).map_err(cannot)? {
                return Err(match holder(&mut file) {
                    Some(pid) => format!(
                        "pid_file {} is locked by process {pid}; is hekate already running?",
                        path.display()
                    ),
                    None => format!(
                        "pid_file {} is locked by another process; is hekate already running?",
                        path.display()
                    ),
                });
            }
            // A hekate that was exiting may have removed the file between our open and our
            // lock: the lock is then on a file nobody else can find. Start again on the path.
            if !same_file(&file, path) {
                continue;
            }
            file.set_len(0).map_err(cannot)?;
            file.rewind().map_err(cannot)?;
            writeln!(file, "{}", std::process::id()).map_err(cannot)?;
            return Ok(PidFile {
                path: path.to_path_buf(),
                _lock: file,
            });
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked (`_lock` closes after this), so that no other hekate
        // locks the file we remove.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The id of the hekate holding the lock on `path` (`hekate reload`): a file nobody holds
/// locked names no running process, whatever it says.
pub fn running_pid(path: &Path) -> Result<u32, String> {
    let mut file =
        File::open(path).map_err(|e| format!("cannot read pid_file {}: {e}", path.display()))?;
    match try_lock(&file) {
        Ok(false) => holder(&mut file).ok_or_else(|| {
            format!(
                "pid_file {} is locked but names no process id",
                path.display()
            )
        }),
        Ok(true) => Err(format!(
            "pid_file {} is not locked: no hekate runs with it",
            path.display()
        )),
        Err(e) => Err(format!("cannot lock pid_file {}: {e}", path.display())),
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` when another open file description holds the lock.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns and keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The process id written in a locked file. The holder writes it right after taking the lock,
/// so a file found empty is read again for a moment.
fn holder(file: &mut File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        if file.rewind().is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Whether `path` still names the file `file` has open.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hekate-pid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("hekate.pid")
    }

    #[test]
    fn a_locked_pid_file_is_refused_with_the_holders_pid() {
        let path = temp_path("locked");
        // Another holder: a separate open file description, as another process would have.
        let other = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        assert!(try_lock(&other).unwrap());
        std::fs::write(&path, "4242\n").unwrap();
        let err = PidFile::lock(&path).unwrap_err();
        assert_eq!(
            err,
            format!(
                "pid_file {} is locked by process 4242; is hekate already running?",
                path.display()
            )
        );
        drop(other);
        let mine = PidFile::lock(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(mine);
        assert!(!path.exists(), "removed at exit");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_stale_pid_file_is_taken_over_and_truncated() {
        let path = temp_path("stale");
        std::fs::write(&path, "99999999 and some longer leftover text\n").unwrap();
        let mine = PidFile::lock(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(mine);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}

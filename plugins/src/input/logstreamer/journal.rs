//! A stream's journal, in Heka's format: `<journal_directory>/<stream name>` holds
//! `{"seek":N,"file_name":"/abs/path","last_hash":"<sha1 hex>"}`, where `last_hash` is the SHA-1
//! of the 500 bytes before `seek`, zero-padded at the front when `seek` < 500. A Heka user's
//! journals therefore resume where hekad stopped, and hekad can resume from ours.
//!
//! Unlike Heka (which truncates and rewrites the file in place), the journal is written to a
//! temporary file and renamed over the old one, so a crash never leaves half a journal.
//!
//! Resuming ([`locate`]): if the file the journal names still has the same 500 bytes before
//! `seek`, reading goes on there; else the stream's files are searched for those bytes (the
//! file was rotated while hekate was down); else reading starts at the stream's oldest file.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// Bytes hashed before the position.
pub const HASHED: usize = 500;

/// Where a stream was read up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Offset in `file_name` of the first byte not yet acknowledged.
    pub seek: u64,
    /// The file being read.
    pub file_name: String,
    /// SHA-1 (hex) of the [`HASHED`] bytes before `seek`.
    pub last_hash: String,
}

/// The SHA-1 (hex) of the [`HASHED`] bytes before `seek` in `file`, zero-padded at the front;
/// `None` if the file is shorter than `seek`.
pub fn hash_at(file: &File, seek: u64) -> std::io::Result<Option<String>> {
    let mut buf = [0u8; HASHED];
    let start = seek.saturating_sub(HASHED as u64);
    let len = (seek - start) as usize;
    let dst = &mut buf[HASHED - len..];
    let mut got = 0;
    while got < len {
        let n = file.read_at(&mut dst[got..], start + got as u64)?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(hex(&Sha1::digest(buf))))
}

/// The hash [`hash_at`] gives for a position the `tail` bytes (at most [`HASHED`], the last
/// ones read) end at.
pub fn hash_of_tail(tail: &[u8]) -> String {
    let mut buf = [0u8; HASHED];
    let tail = &tail[tail.len().saturating_sub(HASHED)..];
    buf[HASHED - tail.len()..].copy_from_slice(tail);
    hex(&Sha1::digest(buf))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Why a journal could not be read; the stream then starts as if it had none.
#[derive(Debug)]
pub enum LoadError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// It does not hold a journal.
    Garbage(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Garbage(e) => write!(f, "it is not a journal ({e})"),
        }
    }
}

impl Journal {
    /// The journal at `path`: `Ok(None)` when there is none (or it is empty, as Heka treats it).
    pub fn load(path: &Path) -> Result<Option<Journal>, LoadError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::Io(e)),
        };
        let trimmed = text.trim_ascii();
        if trimmed.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(trimmed)
            .map(Some)
            .map_err(|e| LoadError::Garbage(e.to_string()))
    }

    /// Writes the journal to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).expect("a journal serializes"))?;
        drop(f);
        std::fs::rename(&tmp, path)
    }

    /// Whether `file` holds this journal's bytes before its `seek`.
    fn matches(&self, file: &File) -> bool {
        if self.seek == 0 {
            return true;
        }
        matches!(hash_at(file, self.seek), Ok(Some(h)) if h == self.last_hash)
    }
}

/// Where to resume a stream whose files are `files` (oldest first): the file and offset the
/// journal points to, found by name or, after a rotation, by content; `None` when it is in none
/// of them.
pub fn locate(journal: &Journal, files: &[PathBuf]) -> Option<(PathBuf, u64)> {
    let named = Path::new(&journal.file_name);
    if files.iter().any(|f| f == named)
        && let Ok(f) = File::open(named)
        && journal.matches(&f)
    {
        return Some((named.to_path_buf(), journal.seek));
    }
    if journal.seek == 0 {
        return None;
    }
    files.iter().find_map(|path| {
        let f = File::open(path).ok()?;
        (f.metadata().ok()?.len() >= journal.seek && journal.matches(&f))
            .then(|| (path.clone(), journal.seek))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash of the 500 bytes before the position, zero-padded: what Heka's
    /// `LogstreamLocation.GenerateHash` writes (checked against `sha1sum`).
    #[test]
    fn hashes_as_heka_does() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..1200u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let sha = |b: &[u8]| hex(&Sha1::digest(b));
        assert_eq!(hash_at(&f, 1000).unwrap().unwrap(), sha(&data[500..1000]));
        let mut padded = vec![0u8; 500 - 120];
        padded.extend_from_slice(&data[..120]);
        assert_eq!(hash_at(&f, 120).unwrap().unwrap(), sha(&padded));
        assert_eq!(hash_at(&f, 1201).unwrap(), None);
        assert_eq!(hash_of_tail(&data[..1000]), sha(&data[500..1000]));
        assert_eq!(hash_of_tail(&data[..120]), sha(&padded));
        // A known value: 500 bytes of 'a'.
        std::fs::write(&p, [b'a'; 500]).unwrap();
        let f = File::open(&p).unwrap();
        let out = std::process::Command::new("sha1sum")
            .arg(&p)
            .output()
            .unwrap();
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            hash_at(&f, 500).unwrap().unwrap(),
            expected.split_whitespace().next().unwrap()
        );
    }

    /// Heka's own journal fixture format loads; ours round-trips with Heka's field names and
    /// order; garbage is an error, an empty file no journal.
    #[test]
    fn reads_and_writes_heka_journals() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nginx");
        std::fs::write(
            &p,
            r#"{"seek":4021,"file_name":"/var/log/nginx/access.log","last_hash":"cca4d46df4cc0fbdec8b7b2d9e3d35d8bcd8e26b"}"#,
        )
        .unwrap();
        let j = Journal::load(&p).unwrap().unwrap();
        assert_eq!(j.seek, 4021);
        assert_eq!(j.file_name, "/var/log/nginx/access.log");
        let q = d.path().join("sub/ours");
        j.save(&q).unwrap();
        assert_eq!(std::fs::read(&q).unwrap(), std::fs::read(&p).unwrap());
        std::fs::write(&p, "  \n").unwrap();
        assert!(Journal::load(&p).unwrap().is_none());
        std::fs::write(&p, "{\"seek\": \"x\"").unwrap();
        assert!(matches!(Journal::load(&p), Err(LoadError::Garbage(_))));
        assert!(Journal::load(&d.path().join("none")).unwrap().is_none());
    }

    /// Resume in place; after a rename (rotation while down) find the bytes in the renamed file;
    /// after the content changed, nowhere.
    #[test]
    fn locates_the_position_after_a_rotation() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        let old = d.path().join("app.log.1");
        let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, &lines).unwrap();
        let seek = 600;
        let j = Journal {
            seek,
            file_name: log.to_string_lossy().into_owned(),
            last_hash: hash_at(&File::open(&log).unwrap(), seek).unwrap().unwrap(),
        };
        let files = vec![log.clone()];
        assert_eq!(locate(&j, &files), Some((log.clone(), seek)));
        std::fs::rename(&log, &old).unwrap();
        std::fs::write(&log, "new file\n").unwrap();
        let files = vec![old.clone(), log.clone()];
        assert_eq!(locate(&j, &files), Some((old.clone(), seek)));
        std::fs::write(&old, lines.replace("line 5", "LINE 5")).unwrap();
        assert_eq!(locate(&j, &files), None);
    }
}

//! Positions in a queue ([`Cursor`], `"<segment> <offset>"`) and `checkpoint.txt`, the
//! acknowledged one, written so that a crash leaves either the old or the new checkpoint.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Name of the checkpoint file in a queue directory (Heka's).
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";
/// The temporary file a new checkpoint is written to before it is renamed over the old one.
const CHECKPOINT_TEMP: &str = "checkpoint.txt.tmp";

/// A position in a queue: a segment id and a byte offset in it. The cursor of a record is the
/// position just past it; the checkpoint is the cursor of the last acknowledged record.
///
/// Written and parsed as Heka's `"<fileId> <byteOffset>"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Segment id (`<segment>.log`).
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

impl Cursor {
    /// The position `offset` bytes into `segment`.
    pub const fn new(segment: u64, offset: u64) -> Self {
        Cursor { segment, offset }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.segment, self.offset)
    }
}

/// Why a checkpoint string is not a cursor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not `<segment> <offset>`")]
pub struct ParseCursorError(String);

impl FromStr for Cursor {
    type Err = ParseCursorError;

    /// Parses `"<segment> <offset>"`: two unsigned decimal numbers and one space, as Heka writes
    /// it. Surrounding whitespace (a trailing newline from an editor) is tolerated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseCursorError(s.chars().take(64).collect());
        let (segment, offset) = s.trim().split_once(' ').ok_or_else(bad)?;
        let number = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        Ok(Cursor::new(number(segment)?, number(offset)?))
    }
}

/// What `checkpoint.txt` held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredCheckpoint {
    /// No checkpoint file: a new queue, or one never acknowledged.
    Missing,
    /// A well-formed cursor (which may still name a missing segment or be past its end).
    Cursor(Cursor),
    /// A file that could not be read or is not a cursor; the reason, in a few words.
    Unusable(String),
}

/// The checkpoint file of the queue in `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// Reads `dir/checkpoint.txt`. Never fails: a file that cannot be read is [`Unusable`]
/// (StoredCheckpoint::Unusable), which the caller turns into a reset it reports.
pub fn read(dir: &Path) -> StoredCheckpoint {
    match fs::read(checkpoint_path(dir)) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => match text.parse::<Cursor>() {
                Ok(cursor) => StoredCheckpoint::Cursor(cursor),
                Err(e) => StoredCheckpoint::Unusable(e.to_string()),
            },
            Err(_) => StoredCheckpoint::Unusable("not text".into()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => StoredCheckpoint::Missing,
        Err(e) => StoredCheckpoint::Unusable(e.to_string()),
    }
}

/// Writes `cursor` to `dir/checkpoint.txt` atomically: the temporary file is written and (with
/// `durable`) fsynced, renamed over the checkpoint, and the directory fsynced, so after a crash or
/// power loss the file holds the old or the new cursor, whole.
///
/// Returns the path of the file that failed with the error.
pub fn write(dir: &Path, cursor: Cursor, durable: bool) -> Result<(), (PathBuf, io::Error)> {
    let temp = dir.join(CHECKPOINT_TEMP);
    let with = |path: &Path| {
        let path = path.to_path_buf();
        move |e| (path, e)
    };
    let mut file = File::create(&temp).map_err(with(&temp))?;
    file.write_all(cursor.to_string().as_bytes())
        .map_err(with(&temp))?;
    if durable {
        file.sync_all().map_err(with(&temp))?;
    }
    drop(file);
    let path = checkpoint_path(dir);
    fs::rename(&temp, &path).map_err(with(&path))?;
    if durable {
        sync_dir(dir).map_err(with(dir))?;
    }
    Ok(())
}

/// Fsyncs a directory, so that files created, renamed or removed in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_is_hekas() {
        let c = Cursor::new(12, 3456);
        assert_eq!(c.to_string(), "12 3456");
        assert_eq!("12 3456".parse::<Cursor>(), Ok(c));
        assert_eq!("12 3456\n".parse::<Cursor>(), Ok(c));
        for bad in [
            "",
            "12",
            "12  3456",
            "-1 0",
            "1 +2",
            "a b",
            "1 2 3",
            "99999999999999999999 0",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
        assert!(Cursor::new(1, 900) < Cursor::new(2, 0));
    }

    #[test]
    fn write_replaces_atomically_and_read_reports_problems() {
        let dir = crate::queue::tests::temp_dir("checkpoint");
        assert_eq!(read(&dir), StoredCheckpoint::Missing);
        write(&dir, Cursor::new(3, 17), true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap(),
            "3 17"
        );
        assert!(!dir.join(CHECKPOINT_TEMP).exists());
        assert_eq!(read(&dir), StoredCheckpoint::Cursor(Cursor::new(3, 17)));
        write(&dir, Cursor::new(4, 0), false).unwrap();
        assert_eq!(read(&dir), StoredCheckpoint::Cursor(Cursor::new(4, 0)));
        fs::write(dir.join(CHECKPOINT_FILE), b"4 \xff").unwrap();
        assert_eq!(read(&dir), StoredCheckpoint::Unusable("not text".into()));
        fs::write(dir.join(CHECKPOINT_FILE), b"garbage").unwrap();
        assert_eq!(
            read(&dir),
            StoredCheckpoint::Unusable("\"garbage\" is not `<segment> <offset>`".into())
        );
    }
}

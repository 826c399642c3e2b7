//! A Heka stream file's tail, checked before appending: a record cut short by a crash (kill -9
//! or power loss in the middle of a `write(2)`) is cut off, so that the records appended after
//! it are read back, instead of being swallowed as the rest of the torn record.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use hekate_model::framing::{HekaSplitter, RECORD_SEPARATOR, SplitOutcome, max_record_size};

/// What [`cut_torn_tail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TailCheck {
    /// Bytes cut from the end of the file (0 when it ended with a whole record).
    pub(crate) cut: u64,
}

/// Looks at the last records of the Heka stream at `path` and truncates a final record that
/// is cut short, through `file` (the output's append handle on the same file). Only a tail that starts like a record (a record separator and, if complete
/// enough, a valid header) and ends before its declared length is cut: anything else (a file
/// that is not a Heka stream, garbage) is left alone.
pub(crate) fn cut_torn_tail(
    path: &Path,
    file: &File,
    max_message_size: u32,
) -> std::io::Result<TailCheck> {
    let meta = file.metadata()?;
    // A FIFO, a device: nothing to cut.
    if !meta.is_file() || meta.len() == 0 {
        return Ok(TailCheck::default());
    }
    let len = meta.len();
    let mut reader = File::open(path)?;
    // Two whole records fit in the window: the last complete one, and the torn one after it.
    let window = (2 * max_record_size(max_message_size) as u64).min(len);
    let start = len - window;
    let mut buf = Vec::with_capacity(window as usize);
    reader.seek(SeekFrom::Start(start))?;
    reader.take(window).read_to_end(&mut buf)?;
    let Some(torn_at) = torn_record_start(&buf, max_message_size) else {
        return Ok(TailCheck::default());
    };
    let keep = start + torn_at as u64;
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(TailCheck { cut: len - keep })
}

/// Where the record cut short at the end of `buf` starts, if `buf` ends in one.
fn torn_record_start(buf: &[u8], max_message_size: u32) -> Option<usize> {
    let mut splitter = HekaSplitter::new(max_message_size);
    let mut pos = 0usize;
    loop {
        let r = splitter.split(&buf[pos..]);
        pos += r.consumed;
        if matches!(r.outcome, SplitOutcome::NeedData | SplitOutcome::End { .. }) {
            break;
        }
    }
    // `split` leaves an incomplete record (or nothing) unconsumed: what remains after the last
    // whole record must start with a record separator to be a torn record; bytes skipped on
    // the way that never became a record are not ours to judge.
    let rest = &buf[pos..];
    if rest.is_empty() || rest[0] != RECORD_SEPARATOR {
        return None;
    }
    let r = splitter.finish(rest);
    match r.outcome {
        SplitOutcome::End {
            truncated: Some(region),
        } if region.len as usize == rest.len() => Some(pos),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use hekate_model::framing::encode_record;
    use hekate_model::message::Message;

    use super::*;

    fn record(payload: &str) -> Vec<u8> {
        let m = Message {
            payload: Some(payload.to_string()),
            r#type: Some("t".into()),
            ..Message::default()
        };
        let mut out = Vec::new();
        encode_record(&prost::Message::encode_to_vec(&m), None, &mut out).unwrap();
        out
    }

    fn file_with(bytes: &[u8]) -> (std::path::PathBuf, File) {
        // As the output opens it: append only.
        let path = std::env::temp_dir().join(format!(
            "hekate-tail-{}-{}",
            std::process::id(),
            fastrand_name()
        ));
        std::fs::write(&path, bytes).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"").unwrap();
        (path, f)
    }

    fn fastrand_name() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn a_whole_stream_is_left_alone() {
        let mut bytes = record("one");
        bytes.extend(record("two"));
        let (path, f) = file_with(&bytes);
        assert_eq!(cut_torn_tail(&path, &f, 65536).unwrap().cut, 0);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_record_cut_short_is_cut_at_every_possible_length() {
        let whole = record("first");
        let torn = record("second, the one the crash cut");
        for cut_at in 1..torn.len() {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&torn[..cut_at]);
            let (path, f) = file_with(&bytes);
            let check = cut_torn_tail(&path, &f, 65536).unwrap();
            assert_eq!(check.cut, cut_at as u64, "cut at {cut_at}");
            assert_eq!(std::fs::read(&path).unwrap(), whole, "cut at {cut_at}");
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn a_file_that_is_not_a_heka_stream_is_left_alone() {
        for bytes in [&b"plain text lines\nmore\n"[..], b"", b"\x1f\x1f garbage"] {
            let (path, f) = file_with(bytes);
            assert_eq!(cut_torn_tail(&path, &f, 65536).unwrap().cut, 0);
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn only_the_tail_window_is_read() {
        // Many records before the torn one: the check reads a bounded window, not the file.
        let mut bytes = Vec::new();
        for i in 0..5000 {
            bytes.extend(record(&format!("record {i}")));
        }
        let whole_len = bytes.len();
        let torn = record("torn");
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        let (path, f) = file_with(&bytes);
        assert_eq!(
            cut_torn_tail(&path, &f, 1024).unwrap().cut,
            (torn.len() - 3) as u64
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole_len as u64);
        std::fs::remove_file(path).unwrap();
    }
}

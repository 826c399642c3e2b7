//! What hekate holds durably, read from its files with hekate's own framing
//! ([`hekate_model::framing`]), not through hekate:
//!
//! - [`StreamReader`]: the messages of the FileOutput's Heka stream, read incrementally (the
//!   file only grows, except for a torn last record that hekate cuts at start), whole records
//!   only — what the cut of a torn tail leaves;
//! - [`scan_queue`]: the records of a disk queue after its checkpoint (appended, not yet
//!   acknowledged: what a restart replays), with their positions. A record counts when its
//!   framing is whole and its checksum (hekate's header field 15, CRC-32C of the message)
//!   matches, as hekate's own reader requires; damaged bytes are skipped up to the next record
//!   separator that starts a valid record, as hekate skips them.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hekate_model::framing::{
    DEFAULT_MAX_MESSAGE_SIZE, FrameStatus, HekaSplitter, RECORD_SEPARATOR, SplitOutcome, frame_at,
};

use crate::parse::heka_stamp;

/// What one [`StreamReader::read_new`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStep {
    /// Whole records read.
    pub records: u64,
    /// Records without a stamp (hekate's own messages).
    pub foreign: u64,
    /// Bytes skipped between records (not a record: damage).
    pub skipped_bytes: u64,
}

/// Reads a growing Heka stream file, each call from where the last one ended.
#[derive(Debug)]
pub struct StreamReader {
    path: PathBuf,
    /// End of the last whole record read.
    offset: u64,
}

impl StreamReader {
    /// A reader of `path` from its start.
    pub fn new(path: &Path) -> Self {
        StreamReader {
            path: path.to_owned(),
            offset: 0,
        }
    }

    /// End of the last whole record read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the whole records written since the last call and hands the stamp of each to
    /// `visit`, with the file offset just past the record. A record cut short at the end is
    /// left for the next call (a missing file reads as empty).
    pub fn read_new(&mut self, mut visit: impl FnMut(u64, u64, u64)) -> io::Result<StreamStep> {
        let mut step = StreamStep::default();
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(step),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut splitter =
            HekaSplitter::new(DEFAULT_MAX_MESSAGE_SIZE).with_skip_authentication(true);
        let mut buf = vec![0u8; 4 << 20];
        let (mut len, mut base) = (0usize, self.offset);
        loop {
            let n = file.read(&mut buf[len..])?;
            if n == 0 {
                break;
            }
            len += n;
            let mut pos = 0;
            loop {
                let split = splitter.split(&buf[pos..len]);
                pos += split.consumed;
                match split.outcome {
                    SplitOutcome::Record(record) => {
                        if let Some(region) = split.skipped {
                            step.skipped_bytes += region.len;
                        }
                        step.records += 1;
                        self.offset = base + pos as u64;
                        match heka_stamp(record.message) {
                            Some(s) => visit(s.conn, s.seq, self.offset),
                            None => step.foreign += 1,
                        }
                    }
                    SplitOutcome::Rejected(_) => self.offset = base + pos as u64,
                    SplitOutcome::NeedData | SplitOutcome::End { .. } => break,
                }
            }
            buf.copy_within(pos..len, 0);
            len -= pos;
            base += pos as u64;
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        Ok(step)
    }

    /// Bytes after the last whole record (a torn tail, or damage the reader could not place).
    pub fn trailing_bytes(&self) -> u64 {
        fs::metadata(&self.path)
            .map(|m| m.len().saturating_sub(self.offset))
            .unwrap_or(0)
    }
}

/// One record found in a queue segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    /// Segment id (`<id>.log`).
    pub segment: u64,
    /// Offset of its record separator.
    pub start: u64,
    /// Offset just past it.
    pub end: u64,
    /// Its stamp (connection, sequence number), when it has one.
    pub stamp: Option<(u64, u64)>,
}

/// The pending part of a disk queue, as read from its files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueScan {
    /// `checkpoint.txt`, when present and readable.
    pub checkpoint: Option<(u64, u64)>,
    /// The segments: id and length.
    pub segments: Vec<(u64, u64)>,
    /// The records after the checkpoint, in queue order.
    pub records: Vec<QueueRecord>,
    /// Damaged regions skipped (adjacent damaged bytes form one).
    pub corrupt_regions: u64,
    /// Bytes in them.
    pub corrupt_bytes: u64,
    /// Bytes after the last whole record of the last segment (a torn tail).
    pub tail_bytes: u64,
}

/// The segment files of the queue in `dir`: id and length, oldest first.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // A segment deleted between the listing and here was acknowledged: skip it.
        if let Ok(meta) = entry.metadata() {
            out.push((id, meta.len()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `checkpoint.txt` of the queue in `dir`: `"<segment> <offset>"`.
pub fn checkpoint(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join("checkpoint.txt")).ok()?;
    let (a, b) = text.trim().split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Bytes of the queue in `dir` not yet acknowledged, from the file sizes and the checkpoint
/// alone (cheap enough to sample often).
pub fn pending_bytes(dir: &Path) -> u64 {
    let Ok(segs) = segments(dir) else { return 0 };
    let cp = checkpoint(dir).unwrap_or((0, 0));
    segs.iter()
        .filter(|(id, _)| *id >= cp.0)
        .map(|&(id, len)| {
            if id == cp.0 {
                len.saturating_sub(cp.1)
            } else {
                len
            }
        })
        .sum()
}

/// Reads the records after the checkpoint of the queue in `dir` (a missing directory is an empty
/// queue). Safe while hekate writes the queue: what is being appended reads as a torn tail.
pub fn scan_queue(dir: &Path) -> io::Result<QueueScan> {
    let mut scan = QueueScan::default();
    let segs = match segments(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(e),
    };
    scan.checkpoint = checkpoint(dir);
    let (from_seg, from_off) = scan.checkpoint.unwrap_or((0, 0));
    let last = segs.last().map(|s| s.0);
    for &(id, _) in &segs {
        if id < from_seg {
            continue;
        }
        let bytes = match fs::read(dir.join(format!("{id}.log"))) {
            Ok(b) => b,
            // Acknowledged and deleted meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let start = if id == from_seg { from_off } else { 0 };
        scan_segment(id, &bytes, start as usize, Some(id) == last, &mut scan);
    }
    scan.segments = segs;
    Ok(scan)
}

fn scan_segment(id: u64, bytes: &[u8], from: usize, last: bool, scan: &mut QueueScan) {
    let mut pos = from.min(bytes.len());
    let mut damaged: Option<usize> = None;
    while pos < bytes.len() {
        if bytes[pos] != RECORD_SEPARATOR {
            damaged.get_or_insert(pos);
            pos = memchr::memchr(RECORD_SEPARATOR, &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            continue;
        }
        match frame_at(&bytes[pos..], DEFAULT_MAX_MESSAGE_SIZE) {
            FrameStatus::Complete(frame) => {
                let message = frame.message(&bytes[pos..]);
                if frame.checksum_matches(message) == Some(false) {
                    damaged.get_or_insert(pos);
                    pos += 1;
                    continue;
                }
                end_damage(&mut damaged, pos, scan);
                scan.records.push(QueueRecord {
                    segment: id,
                    start: pos as u64,
                    end: (pos + frame.len()) as u64,
                    stamp: heka_stamp(message).map(|s| (s.conn, s.seq)),
                });
                pos += frame.len();
            }
            FrameStatus::Incomplete if last && damaged.is_none() => {
                scan.tail_bytes += (bytes.len() - pos) as u64;
                return;
            }
            FrameStatus::Incomplete | FrameStatus::Corrupt(_) => {
                damaged.get_or_insert(pos);
                pos += 1;
            }
        }
    }
    end_damage(&mut damaged, bytes.len(), scan);
}

/// Closes the damaged region that started at `damaged`, if one did, at `at`.
fn end_damage(damaged: &mut Option<usize>, at: usize, scan: &mut QueueScan) {
    if let Some(from) = damaged.take() {
        scan.corrupt_regions += 1;
        scan.corrupt_bytes += (at - from) as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use hekate_model::framing::{encode_checksummed_record, encode_record};

    use super::*;
    use crate::load::{LoadSpec, Ring};

    /// `n` stamped messages of connection 3, sequence numbers from `first`.
    fn messages(first: u64, n: usize) -> Vec<Vec<u8>> {
        let spec = LoadSpec::default();
        let mut ring = Ring::build(&spec, 3, 1 << 16).unwrap();
        (0..n)
            .map(|i| {
                ring.stamp(i, first + i as u64, 1);
                let rec = ring.record(i);
                let start = 3 + rec[1] as usize;
                rec[start..].to_vec()
            })
            .collect()
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hekate-torture-durable-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_stream_is_read_in_whole_records_across_calls() {
        let dir = temp("stream");
        let path = dir.join("out.hekad");
        let mut bytes = Vec::new();
        for m in messages(0, 5) {
            encode_record(&m, None, &mut bytes).unwrap();
        }
        let whole = bytes.len();
        fs::write(&path, &bytes[..whole - 10]).unwrap();
        let mut r = StreamReader::new(&path);
        let mut seen = Vec::new();
        let step = r.read_new(|c, s, _| seen.push((c, s))).unwrap();
        assert_eq!(step.records, 4);
        assert_eq!(seen, (0..4).map(|s| (3, s)).collect::<Vec<_>>());
        assert!(r.trailing_bytes() > 0);
        // The rest of the torn record arrives, then more.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&bytes[whole - 10..]).unwrap();
        let mut more = Vec::new();
        for m in messages(5, 2) {
            encode_record(&m, None, &mut more).unwrap();
        }
        f.write_all(&more).unwrap();
        seen.clear();
        let mut ends = Vec::new();
        let step = r.read_new(|c, s, end| {
            seen.push((c, s));
            ends.push(end);
        });
        assert_eq!(step.unwrap().records, 3);
        assert_eq!(*ends.last().unwrap(), (whole + more.len()) as u64);
        assert_eq!(seen, vec![(3, 4), (3, 5), (3, 6)]);
        assert_eq!(r.trailing_bytes(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_queue_reads_after_its_checkpoint_and_skips_damage() {
        let dir = temp("queue");
        let msgs = messages(0, 10);
        let mut seg0 = Vec::new();
        let mut ends = Vec::new();
        for m in &msgs[..6] {
            encode_checksummed_record(m, DEFAULT_MAX_MESSAGE_SIZE, &mut seg0).unwrap();
            ends.push(seg0.len());
        }
        // Damage inside record 3 (its checksum no longer matches).
        seg0[ends[2] + 40] ^= 0xff;
        fs::write(dir.join("0.log"), &seg0).unwrap();
        let mut seg1 = Vec::new();
        for m in &msgs[6..] {
            encode_checksummed_record(m, DEFAULT_MAX_MESSAGE_SIZE, &mut seg1).unwrap();
        }
        seg1.truncate(seg1.len() - 7); // torn tail
        fs::write(dir.join("1.log"), &seg1).unwrap();
        // Records 0 and 1 acknowledged.
        fs::write(dir.join("checkpoint.txt"), format!("0 {}", ends[1])).unwrap();

        let scan = scan_queue(&dir).unwrap();
        assert_eq!(scan.checkpoint, Some((0, ends[1] as u64)));
        let seqs: Vec<u64> = scan.records.iter().map(|r| r.stamp.unwrap().1).collect();
        assert_eq!(seqs, vec![2, 4, 5, 6, 7, 8]);
        assert_eq!(scan.corrupt_regions, 1);
        assert_eq!(scan.corrupt_bytes, (ends[3] - ends[2]) as u64);
        assert!(scan.tail_bytes > 0);
        assert_eq!(scan.records[1].start, ends[3] as u64);
        assert_eq!(
            pending_bytes(&dir),
            (seg0.len() - ends[1] + seg1.len()) as u64
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

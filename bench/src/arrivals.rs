//! The sink's arrival log (`hekate-sink --arrivals FILE`): every stamped message the sink
//! received, as (connection id, sequence number), with the time of the read that brought it.
//!
//! The sink's JSON report says how many messages arrived; a harness that restarts the sink, or
//! must know *which* messages arrived (every record a crashed pipeline had queued, say), reads
//! this log instead. It is written with one `write(2)` per read of the sink, so it survives the
//! sink being killed (what the sink had read but not yet logged is lost with it, as it would be
//! for any receiver).
//!
//! Layout: little-endian pairs of `u64`, 16 bytes each.
//!
//! ```text
//! (TIME,    t)      the following messages arrived in a read that returned at t (ns since the epoch)
//! (FOREIGN, n)      n records without a stamp arrived in that read
//! (conn,    seq)    one stamped message
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

/// Marks a time entry.
const TIME: u64 = u64::MAX;
/// Marks a count of records without a stamp.
const FOREIGN: u64 = u64::MAX - 1;

/// The writing side, owned by the sink.
#[derive(Debug)]
pub struct ArrivalLog {
    file: File,
    buf: Vec<u8>,
}

impl ArrivalLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(ArrivalLog {
            file,
            buf: Vec::new(),
        })
    }

    /// Logs what one read brought, at `at_ns`: the stamped messages and the count of records
    /// without a stamp. One write; nothing is written for an empty read.
    pub fn record(
        &mut self,
        at_ns: u64,
        stamps: impl Iterator<Item = (u64, u64)>,
        foreign: u64,
    ) -> io::Result<()> {
        self.buf.clear();
        let mut push = |a: u64, b: u64| {
            self.buf.extend_from_slice(&a.to_le_bytes());
            self.buf.extend_from_slice(&b.to_le_bytes());
        };
        push(TIME, at_ns);
        let mut any = false;
        for (conn, seq) in stamps {
            push(conn, seq);
            any = true;
        }
        if foreign > 0 {
            push(FOREIGN, foreign);
            any = true;
        }
        if !any {
            return Ok(());
        }
        self.file.write_all(&self.buf)
    }
}

/// One entry of the log, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A stamped message arrived at `at_ns`.
    Message {
        /// Connection id.
        conn: u64,
        /// Sequence number.
        seq: u64,
        /// When the read that brought it returned.
        at_ns: u64,
    },
    /// `count` records without a stamp arrived at `at_ns`.
    Foreign {
        /// How many.
        count: u64,
        /// When.
        at_ns: u64,
    },
}

/// Reads the log at `path` in order, handing each entry to `visit`. A torn last entry (the sink
/// killed mid-write) is ignored.
pub fn read(path: &Path, mut visit: impl FnMut(Arrival)) -> io::Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut at_ns = 0;
    let mut entry = [0u8; 16];
    loop {
        match r.read_exact(&mut entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let a = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        match a {
            TIME => at_ns = b,
            FOREIGN => visit(Arrival::Foreign { count: b, at_ns }),
            conn => visit(Arrival::Message {
                conn,
                seq: b,
                at_ns,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_logged_reads_back_in_order() {
        let path = std::env::temp_dir().join(format!("hekate-arrivals-{}", std::process::id()));
        let mut log = ArrivalLog::create(&path).unwrap();
        log.record(10, [(0, 1), (1, 7)].into_iter(), 0).unwrap();
        log.record(11, std::iter::empty(), 0).unwrap();
        log.record(12, [(0, 2)].into_iter(), 3).unwrap();
        drop(log);
        // A torn last entry is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let mut seen = Vec::new();
        read(&path, |a| seen.push(a)).unwrap();
        assert_eq!(
            seen,
            vec![
                Arrival::Message {
                    conn: 0,
                    seq: 1,
                    at_ns: 10
                },
                Arrival::Message {
                    conn: 1,
                    seq: 7,
                    at_ns: 10
                },
                Arrival::Message {
                    conn: 0,
                    seq: 2,
                    at_ns: 12
                },
                Arrival::Foreign {
                    count: 3,
                    at_ns: 12
                },
            ]
        );
        let _ = std::fs::remove_file(&path);
    }
}

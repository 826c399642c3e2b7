//! Graphite's whisper file format, as `whisper.py` (Graphite's own) writes and reads it.
//!
//! All numbers are big-endian. A file is a header — aggregation method (u32), maximum
//! retention in seconds (u32), x-files factor (f32), archive count (u32) — then one
//! `(offset, seconds per point, points)` triple of u32 per archive, highest precision first,
//! then each archive's points: `(interval start u32, value f64)`, a ring whose slot is found
//! from the timestamp of the archive's first slot. An update writes the highest-precision
//! archive that covers the timestamp, then rolls the value up into each lower archive while
//! enough of its higher points are known (the x-files factor), aggregated by the file's method.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

const METADATA: u64 = 16;
const ARCHIVE_INFO: u64 = 12;
const POINT: u64 = 12;

/// How points roll up into lower-precision archives (Heka's and whisper's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregation {
    Average = 1,
    Sum = 2,
    Last = 3,
    Max = 4,
    Min = 5,
}

impl Aggregation {
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Aggregation::Average,
            2 => Aggregation::Sum,
            3 => Aggregation::Last,
            4 => Aggregation::Max,
            5 => Aggregation::Min,
            _ => return None,
        })
    }

    fn apply(self, known: &[f64]) -> f64 {
        match self {
            Aggregation::Average => known.iter().sum::<f64>() / known.len() as f64,
            Aggregation::Sum => known.iter().sum(),
            Aggregation::Last => known[known.len() - 1],
            Aggregation::Max => known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Min => known.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
}

/// One archive: `points` slots of `seconds_per_point` seconds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Archive {
    pub(crate) seconds_per_point: u32,
    pub(crate) points: u32,
}

impl Archive {
    fn retention(&self) -> u64 {
        u64::from(self.seconds_per_point) * u64::from(self.points)
    }
}

/// Checks an archive list: sorted by precision (the highest first), each precision dividing
/// the next, and enough points in each archive to fill one point of the next. Unlike
/// `whisper.py`'s check, a lower archive may retain less than a higher one: Heka's default
/// archives do (a minute for a day, then 15 minutes for 2 hours), and whisper reads such files.
pub(crate) fn validate(archives: &[Archive]) -> Result<(), String> {
    if archives.is_empty() {
        return Err("at least one archive is needed".into());
    }
    for a in archives {
        if a.seconds_per_point == 0 || a.points == 0 {
            return Err("seconds per point and points must be at least 1".into());
        }
    }
    for w in archives.windows(2) {
        let (hi, lo) = (w[0], w[1]);
        if hi.seconds_per_point >= lo.seconds_per_point {
            return Err(format!(
                "archives must go from the highest precision to the lowest ({} s before {} s)",
                hi.seconds_per_point, lo.seconds_per_point
            ));
        }
        if lo.seconds_per_point % hi.seconds_per_point != 0 {
            return Err(format!(
                "{} s per point does not divide {} s per point",
                hi.seconds_per_point, lo.seconds_per_point
            ));
        }
        if hi.points < lo.seconds_per_point / hi.seconds_per_point {
            return Err(format!(
                "{} points of {} s are too few to make one point of {} s",
                hi.points, hi.seconds_per_point, lo.seconds_per_point
            ));
        }
    }
    Ok(())
}

/// A whisper file's header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    aggregation: Aggregation,
    max_retention: u64,
    x_files_factor: f32,
    /// (offset, archive).
    archives: Vec<(u64, Archive)>,
}

/// Creates a new file at `path` (which must not exist): header and zeroed points.
pub(crate) fn create(
    path: &std::path::Path,
    archives: &[Archive],
    aggregation: Aggregation,
    x_files_factor: f32,
) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let max_retention = archives.iter().map(Archive::retention).max().unwrap_or(0);
    let mut head = Vec::new();
    head.extend_from_slice(&(aggregation as u32).to_be_bytes());
    head.extend_from_slice(&(max_retention as u32).to_be_bytes());
    head.extend_from_slice(&x_files_factor.to_be_bytes());
    head.extend_from_slice(&(archives.len() as u32).to_be_bytes());
    let mut offset = METADATA + ARCHIVE_INFO * archives.len() as u64;
    for a in archives {
        head.extend_from_slice(&(offset as u32).to_be_bytes());
        head.extend_from_slice(&a.seconds_per_point.to_be_bytes());
        head.extend_from_slice(&a.points.to_be_bytes());
        offset += POINT * u64::from(a.points);
    }
    file.write_all_at(&head, 0)?;
    // The points are zero: set_len extends with zeros.
    file.set_len(offset)?;
    Ok(file)
}

/// Reads a file's header.
pub(crate) fn read_header(file: &File) -> io::Result<Header> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut meta = [0u8; METADATA as usize];
    file.read_exact_at(&mut meta, 0)?;
    let word = |b: &[u8], i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let aggregation =
        Aggregation::from_code(word(&meta, 0)).ok_or_else(|| bad("unknown aggregation method"))?;
    let max_retention = u64::from(word(&meta, 4));
    let x_files_factor = f32::from_bits(word(&meta, 8));
    let count = word(&meta, 12) as usize;
    if count == 0 || count > 64 {
        return Err(bad("bad archive count"));
    }
    let mut info = vec![0u8; count * ARCHIVE_INFO as usize];
    file.read_exact_at(&mut info, METADATA)?;
    let archives = info
        .chunks_exact(ARCHIVE_INFO as usize)
        .map(|c| {
            (
                u64::from(word(c, 0)),
                Archive {
                    seconds_per_point: word(c, 4),
                    points: word(c, 8),
                },
            )
        })
        .collect::<Vec<_>>();
    if archives
        .iter()
        .any(|(_, a)| a.seconds_per_point == 0 || a.points == 0)
    {
        return Err(bad("bad archive"));
    }
    Ok(Header {
        aggregation,
        max_retention,
        x_files_factor,
        archives,
    })
}

fn read_point(file: &File, at: u64) -> io::Result<(u32, f64)> {
    let mut b = [0u8; POINT as usize];
    file.read_exact_at(&mut b, at)?;
    Ok((
        u32::from_be_bytes(b[..4].try_into().expect("4 bytes")),
        f64::from_be_bytes(b[4..].try_into().expect("8 bytes")),
    ))
}

fn write_point(file: &File, at: u64, interval: u32, value: f64) -> io::Result<()> {
    let mut b = [0u8; POINT as usize];
    b[..4].copy_from_slice(&interval.to_be_bytes());
    b[4..].copy_from_slice(&value.to_be_bytes());
    file.write_all_at(&b, at)
}

/// The offset of the slot for `interval` in the archive at `offset`.
fn slot(file: &File, offset: u64, archive: &Archive, interval: i64) -> io::Result<u64> {
    let (base, _) = read_point(file, offset)?;
    if base == 0 {
        return Ok(offset);
    }
    let distance = (interval - i64::from(base)).div_euclid(i64::from(archive.seconds_per_point));
    let size = i64::from(archive.points) * POINT as i64;
    Ok(offset + (distance * POINT as i64).rem_euclid(size) as u64)
}

/// Why a point was not stored.
#[derive(Debug)]
pub(crate) enum UpdateError {
    /// The timestamp is in the future or older than the file's retention.
    NotCovered,
    Io(io::Error),
}

impl From<io::Error> for UpdateError {
    fn from(e: io::Error) -> Self {
        UpdateError::Io(e)
    }
}

/// Stores `value` at `timestamp` (unix seconds), `now` being the current time, as whisper's
/// `update` does.
pub(crate) fn update(
    file: &File,
    header: &Header,
    timestamp: u32,
    value: f64,
    now: u64,
) -> Result<(), UpdateError> {
    let diff = now as i64 - i64::from(timestamp);
    if diff < 0 || diff >= header.max_retention as i64 {
        return Err(UpdateError::NotCovered);
    }
    let Some(i) = header
        .archives
        .iter()
        .position(|(_, a)| a.retention() as i64 >= diff)
    else {
        return Err(UpdateError::NotCovered);
    };
    let (offset, archive) = header.archives[i];
    let ts = i64::from(timestamp);
    let interval = ts - ts.rem_euclid(i64::from(archive.seconds_per_point));
    let at = slot(file, offset, &archive, interval)?;
    write_point(file, at, interval as u32, value)?;
    let mut higher = (offset, archive);
    for &lower in &header.archives[i + 1..] {
        if !propagate(file, header, interval, higher, lower)? {
            break;
        }
        higher = lower;
    }
    Ok(())
}

/// Rolls the higher archive's points of one lower interval up into the lower archive.
fn propagate(
    file: &File,
    header: &Header,
    interval: i64,
    (h_offset, higher): (u64, Archive),
    (l_offset, lower): (u64, Archive),
) -> io::Result<bool> {
    let lower_start = interval - interval.rem_euclid(i64::from(lower.seconds_per_point));
    let first = slot(file, h_offset, &higher, lower_start)?;
    let count = (lower.seconds_per_point / higher.seconds_per_point) as usize;
    let size = u64::from(higher.points) * POINT;
    let mut known = Vec::with_capacity(count);
    let mut expected = lower_start;
    let mut at = first;
    for _ in 0..count {
        let (t, v) = read_point(file, at)?;
        if i64::from(t) == expected {
            known.push(v);
        }
        expected += i64::from(higher.seconds_per_point);
        at = h_offset + (at - h_offset + POINT) % size;
    }
    if known.is_empty() || (known.len() as f32 / count as f32) < header.x_files_factor {
        return Ok(false);
    }
    let value = header.aggregation.apply(&known);
    let at = slot(file, l_offset, &lower, lower_start)?;
    write_point(file, at, lower_start as u32, value)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archives(list: &[(u32, u32)]) -> Vec<Archive> {
        list.iter()
            .map(|&(s, p)| Archive {
                seconds_per_point: s,
                points: p,
            })
            .collect()
    }

    #[test]
    fn archive_lists_are_checked_as_whisper_checks_them() {
        assert!(
            validate(&archives(&[
                (60, 1440),
                (900, 8),
                (3600, 168),
                (43200, 1456)
            ]))
            .is_ok()
        );
        assert!(validate(&archives(&[(60, 10), (60, 20)])).is_err());
        assert!(validate(&archives(&[(60, 10), (90, 20)])).is_err());
        assert!(validate(&archives(&[(60, 100), (120, 10)])).is_ok());
        assert!(validate(&archives(&[(60, 2), (300, 100)])).is_err());
        assert!(validate(&[]).is_err());
    }

    #[test]
    fn updates_land_in_their_slot_and_roll_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wsp");
        let list = archives(&[(1, 60), (10, 60)]);
        let f = create(&path, &list, Aggregation::Sum, 0.5).unwrap();
        let h = read_header(&f).unwrap();
        assert_eq!(h.max_retention, 600);
        let now = 1_000_000u64;
        for t in 0..10u32 {
            update(&f, &h, 999_990 + t, 1.0, now).unwrap();
        }
        assert!(matches!(
            update(&f, &h, 2_000_000, 1.0, now),
            Err(UpdateError::NotCovered)
        ));
        // The ten points of the 1 s archive, summed into one point of the 10 s archive.
        let (hi, lo) = (h.archives[0], h.archives[1]);
        let (t, v) = read_point(&f, slot(&f, lo.0, &lo.1, 999_990).unwrap()).unwrap();
        assert_eq!((t, v), (999_990, 10.0));
        let (t, v) = read_point(&f, slot(&f, hi.0, &hi.1, 999_995).unwrap()).unwrap();
        assert_eq!((t, v), (999_995, 1.0));
    }
}

//! The queue as its owner uses it: append, read, acknowledge, crash, reopen — and what damage
//! does to that.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use hekate_model::framing::{HekaSplitter, SplitOutcome, checksummed_record_len, encode_record};
use proptest::prelude::*;

use super::*;

/// A fresh, empty directory for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hekate-queue-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Small limits so a few records fill segments, and no fsync (tests on a shared disk).
fn small() -> QueueOptions {
    QueueOptions {
        max_file_size: 2000,
        max_message_size: 1024,
        fsync: FsyncPolicy::Never,
        ..QueueOptions::default()
    }
}

fn message(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!("message {i:04} ").into_bytes();
    m.resize(len.max(m.len()), b'a' + (i % 26) as u8);
    m
}

fn append_all(q: &mut DiskQueue, messages: &[Vec<u8>]) {
    for m in messages {
        assert_eq!(q.append(m).unwrap(), Appended::Queued);
    }
    q.flush().unwrap();
}

/// Reads until `next` has nothing more: the messages and their cursors.
fn read_all(q: &mut DiskQueue) -> Vec<(Vec<u8>, Cursor)> {
    let mut out = Vec::new();
    while let Some(r) = q.next().unwrap() {
        out.push((r.message.to_vec(), r.cursor));
    }
    out
}

fn messages_of(read: &[(Vec<u8>, Cursor)]) -> Vec<Vec<u8>> {
    read.iter().map(|(m, _)| m.clone()).collect()
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segment::list(dir).unwrap().into_keys().collect()
}

fn disk_bytes(dir: &Path) -> u64 {
    segment::list(dir).unwrap().values().sum()
}

#[test]
fn queue_dir_follows_heka() {
    let base = Path::new("/var/cache/hekad");
    assert_eq!(
        queue_dir(base, "TcpOutput"),
        Path::new("/var/cache/hekad/output_queue/TcpOutput")
    );
    assert_eq!(
        queue_dir(base, "es-out.v2:main/é"),
        Path::new("/var/cache/hekad/output_queue/es_out_v2_main__")
    );
}

#[test]
fn records_replay_from_the_checkpoint_after_reopen() {
    let dir = temp_dir("replay");
    let messages: Vec<Vec<u8>> = (0..10).map(|i| message(i, 40)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    assert_eq!(q.pending_records(), 10);
    let read = read_all(&mut q);
    assert_eq!(messages_of(&read), messages);
    q.ack(read[3].1).unwrap();
    assert_eq!(q.pending_records(), 6);
    assert_eq!(q.stats().acked, 4);
    assert_eq!(q.checkpoint(), read[3].1);
    assert_eq!(
        fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap(),
        read[3].1.to_string()
    );
    q.close().unwrap();

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert!(q.take_warnings().is_empty());
    assert_eq!(q.pending_records(), 6);
    assert_eq!(messages_of(&read_all(&mut q)), messages[4..]);
    // Nothing more was acknowledged: a third open replays the same six.
    drop(q);
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(read_all(&mut q).len(), 6);
    assert_eq!(q.stats(), QueueStats::default());
}

#[test]
fn segments_are_heka_framed_and_read_by_the_splitter() {
    let dir = temp_dir("cat");
    let messages: Vec<Vec<u8>> = (0..30).map(|i| message(i, 100)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    q.close().unwrap();
    let mut found = Vec::new();
    for id in segment_files(&dir) {
        let bytes = fs::read(segment_path(&dir, id)).unwrap();
        let mut splitter = HekaSplitter::new(1024);
        let mut pos = 0;
        loop {
            let step = splitter.finish(&bytes[pos..]);
            pos += step.consumed;
            assert_eq!(step.skipped, None);
            match step.outcome {
                SplitOutcome::Record(r) => found.push(r.message.to_vec()),
                SplitOutcome::End { truncated } => {
                    assert_eq!(truncated, None);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(found, messages);
}

#[test]
fn rollover_starts_a_new_segment_past_max_file_size() {
    let dir = temp_dir("rollover");
    let messages: Vec<Vec<u8>> = (0..20).map(|i| message(i, 300)).collect();
    let record = checksummed_record_len(300) as u64;
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    let per_segment = 2000 / record;
    let segments = 20u64.div_ceil(per_segment);
    assert_eq!(q.segments() as u64, segments);
    let ids = segment_files(&dir);
    assert_eq!(ids, (0..segments).collect::<Vec<_>>());
    for id in &ids[..ids.len() - 1] {
        let len = fs::metadata(segment_path(&dir, *id)).unwrap().len();
        assert_eq!(len, per_segment * record, "segment {id}");
    }
    assert_eq!(q.len_bytes(), disk_bytes(&dir));
    assert_eq!(messages_of(&read_all(&mut q)), messages);
}

#[test]
fn acks_across_segments_delete_the_segments_left_behind() {
    let dir = temp_dir("ack-delete");
    let messages: Vec<Vec<u8>> = (0..20).map(|i| message(i, 300)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    let read = read_all(&mut q);
    assert_eq!(segment_files(&dir), [0, 1, 2, 3]);

    // The middle of segment 2: 0 and 1 go.
    let mid = read.iter().position(|(_, c)| c.segment == 2).unwrap();
    q.ack(read[mid].1).unwrap();
    assert_eq!(segment_files(&dir), [2, 3]);
    assert_eq!(q.len_bytes(), disk_bytes(&dir));
    assert_eq!(q.pending_records(), (20 - mid - 1) as u64);

    // The last record of segment 2: the checkpoint moves to the start of 3, and 2 goes.
    let last_of_2 = read.iter().rposition(|(_, c)| c.segment == 2).unwrap();
    q.ack(read[last_of_2].1).unwrap();
    assert_eq!(q.checkpoint(), Cursor::new(3, 0));
    assert_eq!(segment_files(&dir), [3]);

    // Everything: the segment being written stays.
    q.ack(read[19].1).unwrap();
    assert_eq!(segment_files(&dir), [3]);
    assert_eq!(q.pending_records(), 0);
    assert_eq!(q.stats().acked, 20);
    // Stale and future cursors.
    q.ack(read[0].1).unwrap();
    let err = q.ack(Cursor::new(3, 1_000_000)).unwrap_err();
    assert!(matches!(err, QueueError::AckAhead { .. }), "{err}");
    q.close().unwrap();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.pending_records(), 0);
    assert!(read_all(&mut q).is_empty());
}

#[test]
fn the_checkpoint_is_written_every_cursor_update_count_acks_and_on_close() {
    let dir = temp_dir("update-count");
    let options = QueueOptions {
        cursor_update_count: 3,
        ..small()
    };
    let mut q = DiskQueue::open(&dir, options.clone()).unwrap();
    append_all(&mut q, &(0..5).map(|i| message(i, 10)).collect::<Vec<_>>());
    let read = read_all(&mut q);
    let stored = || fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok();
    q.ack(read[0].1).unwrap();
    q.ack(read[1].1).unwrap();
    assert_eq!(stored(), None);
    q.ack(read[2].1).unwrap();
    assert_eq!(stored(), Some(read[2].1.to_string()));
    q.ack(read[3].1).unwrap();
    assert_eq!(stored(), Some(read[2].1.to_string()));
    q.close().unwrap();
    assert_eq!(stored(), Some(read[3].1.to_string()));
    let mut q = DiskQueue::open(&dir, options).unwrap();
    assert_eq!(read_all(&mut q).len(), 1);
}

#[test]
fn the_checkpoint_waits_for_its_interval_then_is_written_when_due() {
    let dir = temp_dir("checkpoint-interval");
    let options = QueueOptions {
        checkpoint_interval: std::time::Duration::from_millis(200),
        ..small()
    };
    let mut q = DiskQueue::open(&dir, options.clone()).unwrap();
    append_all(&mut q, &(0..3).map(|i| message(i, 10)).collect::<Vec<_>>());
    let read = read_all(&mut q);
    let stored = || fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok();
    // Within the interval of the open: acknowledged in memory only.
    q.ack(read[0].1).unwrap();
    assert_eq!(stored(), None);
    assert!(!q.checkpoint_if_due().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(250));
    // Due: the next look writes it, then the interval starts again.
    assert!(q.checkpoint_if_due().unwrap());
    assert_eq!(stored(), Some(read[0].1.to_string()));
    q.ack(read[1].1).unwrap();
    assert_eq!(stored(), Some(read[0].1.to_string()));
    assert!(!q.checkpoint_if_due().unwrap());
    // Closing writes what was acknowledged, whatever the interval.
    q.close().unwrap();
    assert_eq!(stored(), Some(read[1].1.to_string()));
    let mut q = DiskQueue::open(&dir, options).unwrap();
    assert_eq!(read_all(&mut q).len(), 1);
}

#[test]
fn reading_follows_appends_without_an_explicit_flush() {
    let dir = temp_dir("follow");
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert!(q.next().unwrap().is_none());
    assert_eq!(q.append(b"one").unwrap(), Appended::Queued);
    assert_eq!(q.next().unwrap().unwrap().message, b"one");
    assert!(q.next().unwrap().is_none());
    for i in 0..10 {
        assert_eq!(q.append(&message(i, 300)).unwrap(), Appended::Queued);
    }
    assert_eq!(read_all(&mut q).len(), 10);
    assert!(q.segments() > 1);
}

#[test]
fn a_torn_tail_is_cut_at_open_and_appending_carries_on() {
    let dir = temp_dir("torn");
    let messages: Vec<Vec<u8>> = (0..5).map(|i| message(i, 50)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    drop(q);
    // The crash: the last record only half written.
    let path = segment_path(&dir, 0);
    let full = fs::metadata(&path).unwrap().len();
    let record = checksummed_record_len(50) as u64;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full - record / 2)
        .unwrap();

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    let cut = record - record / 2;
    assert_eq!(q.stats().torn_tail_bytes_cut, cut);
    let warnings = q.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].to_string(),
        format!(
            "cut a torn tail of {cut} bytes at offset {} of {} (record cut short)",
            4 * record,
            path.display()
        )
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 4 * record);
    assert_eq!(q.pending_records(), 4);
    assert_eq!(q.append(b"after the crash").unwrap(), Appended::Queued);
    let read = messages_of(&read_all(&mut q));
    assert_eq!(read[..4], messages[..4]);
    assert_eq!(read[4], b"after the crash");
    assert_eq!(q.stats().corrupt_records_skipped, 0);
    q.close().unwrap();

    // Garbage after the last record (bytes that never made it whole) is a torn tail too.
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0x1E, 9, 8, 1, 0x7D, 0, 0, 0, 0, 0x1F, 0, 0x55, 0x1E])
        .unwrap();
    let q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.stats().torn_tail_bytes_cut, 13);
    assert_eq!(q.pending_records(), 5);
}

#[test]
fn a_checksum_mismatch_is_detected_skipped_and_counted() {
    let dir = temp_dir("crc");
    let messages: Vec<Vec<u8>> = (0..6).map(|i| message(i, 60)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    drop(q);
    // One flipped bit in the message of record 2: the framing is intact, the checksum is not.
    let path = segment_path(&dir, 0);
    let mut bytes = fs::read(&path).unwrap();
    let record = checksummed_record_len(60);
    bytes[2 * record + 30] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    // The plain splitter (hekate cat, Heka) cannot tell.
    let mut splitter = HekaSplitter::new(1024);
    let mut found = 0;
    let mut pos = 0;
    while let SplitOutcome::Record(_) = {
        let step = splitter.finish(&bytes[pos..]);
        pos += step.consumed;
        step.outcome
    } {
        found += 1;
    }
    assert_eq!(found, 6);

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    let read = messages_of(&read_all(&mut q));
    assert_eq!(read.len(), 5);
    assert!(!read.contains(&messages[2]));
    assert_eq!(read[2..], messages[3..]);
    let stats = q.stats();
    assert_eq!(stats.corrupt_records_skipped, 1);
    assert_eq!(stats.corrupt_bytes_skipped, record as u64);
    let warnings = q.take_warnings();
    assert_eq!(
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "skipped {record} corrupt bytes at offset {} of {} (checksum mismatch)",
            2 * record,
            path.display()
        )]
    );
}

#[test]
fn random_bytes_in_the_middle_are_skipped_and_the_records_after_them_read() {
    let dir = temp_dir("middle");
    let messages: Vec<Vec<u8>> = (0..8).map(|i| message(i, 100)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages[..4]);
    drop(q);
    // Garbage lands between records 1 and 3, over the end of 1 and most of 2.
    let path = segment_path(&dir, 0);
    let mut bytes = fs::read(&path).unwrap();
    let record = checksummed_record_len(100);
    let mut rng = fastrand_bytes(7);
    for b in &mut bytes[record + 50..3 * record - 5] {
        *b = rng();
    }
    fs::write(&path, &bytes).unwrap();

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(
        q.stats().torn_tail_bytes_cut,
        0,
        "damage in the middle is not cut"
    );
    append_all(&mut q, &messages[4..]);
    let read = messages_of(&read_all(&mut q));
    assert_eq!(read[0], messages[0]);
    assert_eq!(read[1..], messages[3..]);
    assert_eq!(q.stats().corrupt_records_skipped, 1);
    assert_eq!(q.stats().corrupt_bytes_skipped, 2 * record as u64);
}

/// A small deterministic byte generator, so a failing case can be replayed.
fn fastrand_bytes(seed: u64) -> impl FnMut() -> u8 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    }
}

#[test]
fn an_unparsable_checkpoint_replays_from_the_oldest_segment() {
    let dir = temp_dir("bad-checkpoint");
    let messages: Vec<Vec<u8>> = (0..12).map(|i| message(i, 300)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    let read = read_all(&mut q);
    q.ack(read[2].1).unwrap();
    q.close().unwrap();
    fs::write(dir.join(CHECKPOINT_FILE), "1 2 3 ¤").unwrap();

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.stats().checkpoint_resets, 1);
    let warnings = q.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert!(matches!(warnings[0], QueueError::CheckpointReset { .. }));
    assert_eq!(
        warnings[0].to_string(),
        format!(
            "checkpoint {} is unusable (\"1 2 3 ¤\" is not `<segment> <offset>`); replaying from \
             the oldest segment, 0 0",
            dir.join(CHECKPOINT_FILE).display()
        )
    );
    // The reset is written at once, so the next open does not report it again.
    assert_eq!(
        fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap(),
        "0 0"
    );
    assert_eq!(messages_of(&read_all(&mut q)), messages);
    drop(q);
    let q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.stats().checkpoint_resets, 0);
}

#[test]
fn a_checkpoint_naming_a_missing_segment_moves_to_the_next_one() {
    let dir = temp_dir("missing-segment");
    let messages: Vec<Vec<u8>> = (0..20).map(|i| message(i, 300)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    let read = read_all(&mut q);
    drop(q);
    let first_of_2 = read.iter().position(|(_, c)| c.segment == 2).unwrap();
    fs::remove_file(segment_path(&dir, 1)).unwrap();
    fs::write(dir.join(CHECKPOINT_FILE), "1 600").unwrap();

    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.stats().checkpoint_resets, 1);
    let warnings = q.take_warnings();
    assert!(
        matches!(warnings[..], [QueueError::CheckpointSegmentMissing { named: 1, resumed, .. }] if resumed == Cursor::new(2, 0)),
        "{warnings:?}"
    );
    // Segment 0 is older than the checkpoint: acknowledged, deleted.
    assert_eq!(segment_files(&dir)[0], 2);
    assert_eq!(messages_of(&read_all(&mut q)), messages[first_of_2..]);

    // Ahead of every segment: damage, replay everything.
    drop(q);
    fs::write(dir.join(CHECKPOINT_FILE), "99 0").unwrap();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert!(matches!(
        q.take_warnings()[..],
        [QueueError::CheckpointReset { .. }]
    ));
    assert_eq!(read_all(&mut q).len(), 20 - first_of_2);
}

#[test]
fn a_checkpoint_past_the_end_of_its_segment_resumes_at_that_end() {
    let dir = temp_dir("beyond-end");
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &(0..3).map(|i| message(i, 20)).collect::<Vec<_>>());
    drop(q);
    let len = fs::metadata(segment_path(&dir, 0)).unwrap().len();
    fs::write(dir.join(CHECKPOINT_FILE), format!("0 {}", len + 100)).unwrap();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert!(matches!(
        q.take_warnings()[..],
        [QueueError::CheckpointBeyondEnd { segment: 0, .. }]
    ));
    assert_eq!(q.checkpoint(), Cursor::new(0, len));
    assert!(read_all(&mut q).is_empty());
    assert_eq!(q.append(b"new").unwrap(), Appended::Queued);
    assert_eq!(messages_of(&read_all(&mut q)), [b"new".to_vec()]);
}

#[test]
fn max_buffer_size_returns_full_until_acknowledged_records_are_freed() {
    let dir = temp_dir("full");
    let record = checksummed_record_len(300) as u64;
    let options = QueueOptions {
        max_buffer_size: 5 * record,
        ..small()
    };
    let mut q = DiskQueue::open(&dir, options).unwrap();
    for i in 0..5 {
        assert_eq!(q.append(&message(i, 300)).unwrap(), Appended::Queued);
    }
    assert_eq!(q.append(&message(5, 300)).unwrap(), Appended::Full);
    assert_eq!(q.append(&message(5, 300)).unwrap(), Appended::Full);
    assert_eq!(q.stats().full, 2);
    assert_eq!(q.stats().appended, 5);
    assert_eq!(q.len_bytes(), 5 * record);
    // Reading alone frees nothing; acknowledging does (the acknowledged segments are deleted,
    // the one being written is sealed and replaced once all of it is acknowledged).
    let read = read_all(&mut q);
    assert_eq!(q.append(&message(5, 300)).unwrap(), Appended::Full);
    q.ack(read[4].1).unwrap();
    assert_eq!(q.append(&message(5, 300)).unwrap(), Appended::Queued);
    assert_eq!(q.len_bytes(), record);
    q.flush().unwrap();
    assert_eq!(q.len_bytes(), disk_bytes(&dir));
    assert_eq!(messages_of(&read_all(&mut q)), [message(5, 300)]);
}

#[test]
fn bad_options_and_oversized_messages_are_refused() {
    let dir = temp_dir("options");
    let err = DiskQueue::open(
        &dir,
        QueueOptions {
            max_file_size: 1000,
            ..small()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid options for disk queue {}: max_file_size 1000 is smaller than the largest \
             record (1282 bytes for max_message_size 1024)",
            dir.display()
        )
    );
    // Zeros are defaults.
    let q = DiskQueue::open(
        &dir,
        QueueOptions {
            max_file_size: 0,
            cursor_update_count: 0,
            max_message_size: 0,
            ..small()
        },
    )
    .unwrap();
    assert_eq!(q.options().max_file_size, DEFAULT_MAX_FILE_SIZE);
    assert_eq!(q.options().cursor_update_count, 1);
    drop(q);
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    let err = q.append(&[0; 1025]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "message of 1025 bytes exceeds max_message_size 1024 of disk queue {}",
            dir.display()
        )
    );
    assert_eq!(q.pending_records(), 0);
}

#[test]
fn an_unusable_directory_is_a_clear_error_at_open() {
    let dir = temp_dir("unusable");
    let file = dir.join("a-file");
    fs::write(&file, b"").unwrap();
    let err = DiskQueue::open(file.join("queue"), small()).unwrap_err();
    assert!(matches!(err, QueueError::CreateDir { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot create queue directory {}: Not a directory (os error 20)",
            file.join("queue").display()
        )
    );

    // Root writes anywhere; elsewhere, a read-only directory is refused up front.
    let ro = dir.join("read-only");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    match DiskQueue::open(&ro, small()) {
        Err(e @ QueueError::NotWritable { .. }) => {
            assert!(!is_root);
            assert!(
                e.to_string()
                    .starts_with(&format!("queue directory {} is not writable", ro.display()))
            );
        }
        Ok(_) => assert!(is_root),
        Err(e) => panic!("{e}"),
    }
    fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
}

#[test]
fn one_queue_per_directory() {
    let dir = temp_dir("locked");
    let q = DiskQueue::open(&dir, small()).unwrap();
    let err = DiskQueue::open(&dir, small()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "queue directory {} is in use by another process (it holds the lock on it)",
            dir.display()
        )
    );
    drop(q);
    DiskQueue::open(&dir, small()).unwrap();
}

#[test]
fn a_queue_heka_left_behind_is_read_and_never_appended_to() {
    let dir = temp_dir("heka");
    let mut heka = Vec::new();
    for i in 0..3 {
        encode_record(&message(i, 30), None, &mut heka).unwrap();
    }
    fs::write(segment_path(&dir, 4), &heka).unwrap();
    fs::write(dir.join(CHECKPOINT_FILE), "4 0").unwrap();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert!(q.take_warnings().is_empty());
    assert_eq!(q.pending_records(), 3);
    assert_eq!(q.append(b"hekate's").unwrap(), Appended::Queued);
    assert_eq!(segment_files(&dir), [4, 5]);
    let read = read_all(&mut q);
    assert_eq!(read.len(), 4);
    assert_eq!(read[3], (b"hekate's".to_vec(), Cursor::new(5, 18)));
    assert_eq!(fs::read(segment_path(&dir, 4)).unwrap(), heka);
}

#[test]
fn warnings_and_stats_are_reported_once() {
    let dir = temp_dir("warnings");
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &[message(0, 10)]);
    drop(q);
    fs::OpenOptions::new()
        .append(true)
        .open(segment_path(&dir, 0))
        .unwrap()
        .write_all(b"\x1e")
        .unwrap();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.take_warnings().len(), 1);
    assert!(q.take_warnings().is_empty());
    assert_eq!(q.stats().torn_tail_bytes_cut, 1);
}

/// Where each written record sits, from a clean read before any damage.
fn layout(dir: &Path, options: &QueueOptions) -> Vec<(Cursor, u64)> {
    let mut q = DiskQueue::open(dir, options.clone()).unwrap();
    let read = read_all(&mut q);
    read.iter()
        .map(|(m, c)| (*c, checksummed_record_len(m.len()) as u64))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random messages, random damage (overwritten ranges, and perhaps a cut last segment): the
    /// queue opens, reading never panics, never returns a byte that was not written, returns the
    /// records in order, and returns every record the damage did not touch.
    #[test]
    fn damage_never_replays_garbage_and_loses_only_what_it_hit(
        lens in prop::collection::vec(0usize..400, 1..40),
        damage in prop::collection::vec((any::<prop::sample::Index>(), 0.0f64..1.0, 1usize..80, any::<u64>()), 0..5),
        cut in prop::option::of(0.0f64..1.0),
    ) {
        let dir = temp_dir("prop");
        let options = small();
        let messages: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut rng = fastrand_bytes(i as u64 + 1);
                let mut m = (i as u32).to_le_bytes().to_vec();
                m.extend((0..len).map(|_| rng()));
                m
            })
            .collect();
        let mut q = DiskQueue::open(&dir, options.clone()).unwrap();
        append_all(&mut q, &messages);
        drop(q);
        let places = layout(&dir, &options);
        prop_assert_eq!(places.len(), messages.len());

        let ids = segment_files(&dir);
        let mut hits: Vec<(u64, u64, u64)> = Vec::new(); // segment, start, end
        for (which, at, len, seed) in &damage {
            let id = ids[which.index(ids.len())];
            let path = segment_path(&dir, id);
            let mut bytes = fs::read(&path).unwrap();
            if bytes.is_empty() {
                continue;
            }
            let start = ((bytes.len() - 1) as f64 * at) as usize;
            let end = (start + len).min(bytes.len());
            let mut rng = fastrand_bytes(*seed);
            for b in &mut bytes[start..end] {
                *b = rng();
            }
            fs::write(&path, &bytes).unwrap();
            hits.push((id, start as u64, end as u64));
        }
        let last = *ids.last().unwrap();
        let mut cut_at = u64::MAX;
        if let Some(f) = cut {
            let path = segment_path(&dir, last);
            let len = fs::metadata(&path).unwrap().len();
            cut_at = (len as f64 * f) as u64;
            OpenOptions::new().write(true).open(&path).unwrap().set_len(cut_at).unwrap();
        }

        let mut q = DiskQueue::open(&dir, options.clone()).unwrap();
        let read = read_all(&mut q);
        // Nothing but written messages, each once, in the order written.
        let mut next = 0;
        for (m, _) in &read {
            let i = messages[next..].iter().position(|w| w == m);
            prop_assert!(i.is_some(), "read a record that was not written (or out of order)");
            next += i.unwrap() + 1;
        }
        // Every untouched record is there.
        let intact: Vec<&Vec<u8>> = places
            .iter()
            .zip(&messages)
            .filter(|((c, len), _)| {
                let start = c.offset - len;
                let hit = hits.iter().any(|&(id, s, e)| id == c.segment && s < c.offset && start < e);
                let cut_off = c.segment == last && c.offset > cut_at;
                !hit && !cut_off
            })
            .map(|(_, m)| m)
            .collect();
        let got: Vec<&Vec<u8>> = read.iter().map(|(m, _)| m).collect();
        let mut it = got.iter();
        for m in &intact {
            prop_assert!(it.any(|g| g == m), "an untouched record was lost");
        }
        // The queue still works after recovery.
        prop_assert_eq!(q.append(b"after").unwrap(), Appended::Queued);
        let after = read_all(&mut q);
        prop_assert_eq!(messages_of(&after), vec![b"after".to_vec()]);
        if let Some((_, c)) = after.last() {
            q.ack(*c).unwrap();
        }
        q.close().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn repair_rewrites_a_damaged_segment_and_the_checkpoint_follows_its_records() {
    let dir = temp_dir("repair");
    let messages: Vec<Vec<u8>> = (0..6).map(|i| message(i, 80)).collect();
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    append_all(&mut q, &messages);
    let read = read_all(&mut q);
    q.ack(read[3].1).unwrap();
    q.close().unwrap();
    // Damage record 1, before the checkpoint: rewriting moves the records after it.
    let path = segment_path(&dir, 0);
    let mut bytes = fs::read(&path).unwrap();
    let record = checksummed_record_len(80);
    bytes[record + 20] ^= 1;
    fs::write(&path, &bytes).unwrap();

    let report = inspect(&dir, 1024).unwrap();
    assert!(!report.is_healthy());
    assert_eq!((report.records(), report.pending_records()), (5, 2));
    assert_eq!(fs::read(&path).unwrap(), bytes, "inspect changes nothing");

    let actions = repair(&dir, 1024).unwrap();
    let moved = Cursor::new(0, read[3].1.offset - record as u64);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(
        matches!(&actions[0], RepairAction::Rewrote { kept: 5, removed, .. } if removed.len() == 1)
    );
    assert_eq!(
        actions[1],
        RepairAction::CheckpointMoved {
            path: dir.join(CHECKPOINT_FILE),
            from: read[3].1,
            to: moved,
        }
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 5 * record as u64);
    assert!(inspect(&dir, 1024).unwrap().is_healthy());
    assert!(repair(&dir, 1024).unwrap().is_empty());
    let mut q = DiskQueue::open(&dir, small()).unwrap();
    assert_eq!(q.checkpoint(), moved);
    assert_eq!(messages_of(&read_all(&mut q)), messages[4..]);
}

/// One step of a queue's life, for the property below.
#[derive(Debug, Clone)]
enum Step {
    Append(usize),
    Flush,
    Read(usize),
    AckAll,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..300).prop_map(Step::Append),
        1 => Just(Step::Flush),
        3 => (1usize..20).prop_map(Step::Read),
        1 => Just(Step::AckAll),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A reader that follows the writer takes what was just written from memory, one that falls
    /// behind reads the file, across rollovers and reopens: either way every message comes in
    /// order, once between acknowledgements, with the cursor of its record on the disk, and
    /// after a reopen the unacknowledged ones come again.
    #[test]
    fn reading_from_memory_or_from_the_file_returns_the_same_records(
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let dir = temp_dir("tail-prop");
        let options = QueueOptions { max_file_size: 3000, ..small() };
        let mut q = DiskQueue::open(&dir, options.clone()).unwrap();
        let mut appended: Vec<Vec<u8>> = Vec::new();
        // Index in `appended` of the next message expected, and of the first unacknowledged.
        let mut next = 0usize;
        let mut acked = 0usize;
        let mut last: Option<Cursor> = None;
        let mut cursors: Vec<Cursor> = Vec::new();
        for s in steps {
            match s {
                Step::Append(len) => {
                    let m = message(appended.len(), len);
                    prop_assert_eq!(q.append(&m).unwrap(), Appended::Queued);
                    appended.push(m);
                }
                Step::Flush => q.flush().unwrap(),
                Step::Read(n) => {
                    for _ in 0..n {
                        let Some(r) = q.next().unwrap() else { break };
                        prop_assert!(next < appended.len(), "read more than was appended");
                        prop_assert_eq!(r.message, &appended[next][..]);
                        if let Some(c) = cursors.get(next) {
                            prop_assert_eq!(r.cursor, *c, "a record read again has its cursor");
                        } else {
                            cursors.push(r.cursor);
                        }
                        last = Some(r.cursor);
                        next += 1;
                    }
                }
                Step::AckAll => {
                    if let Some(c) = last {
                        q.ack(c).unwrap();
                        acked = next;
                    }
                }
                Step::Reopen => {
                    q.close().unwrap();
                    q = DiskQueue::open(&dir, options.clone()).unwrap();
                    next = acked;
                    last = None;
                }
            }
        }
        // Whatever is left comes in order.
        while let Some(r) = q.next().unwrap() {
            prop_assert_eq!(r.message, &appended[next][..]);
            if let Some(c) = cursors.get(next) {
                prop_assert_eq!(r.cursor, *c);
            } else {
                cursors.push(r.cursor);
            }
            next += 1;
        }
        prop_assert_eq!(next, appended.len());
        q.close().unwrap();
        // The cursors handed out are the records' places on the disk, as a fresh reader of the
        // files finds them (from the checkpoint on).
        let on_disk: Vec<Cursor> = layout(&dir, &options).into_iter().map(|(c, _)| c).collect();
        prop_assert!(cursors.ends_with(&on_disk), "{cursors:?} vs {on_disk:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

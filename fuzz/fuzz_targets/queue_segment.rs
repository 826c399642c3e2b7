//! Arbitrary bytes as a disk-queue segment, read in arbitrary sizes: the scanner never panics,
//! every byte is in exactly one record or damaged run, every record it hands out is well framed
//! and carries a matching checksum (or none, in a segment read as Heka's), and the read size does
//! not change the answer.
#![no_main]

use hekate_engine::queue::{Checksums, Scanned, SegmentScanner};
use hekate_model::framing::{FrameStatus, frame_at};
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGE_SIZE: u32 = 1024;

/// (offset, length, is a record) for everything the scanner reports.
fn scan(data: &[u8], read_size: usize, checksums: Checksums) -> Vec<(u64, u64, bool)> {
    let mut scanner =
        SegmentScanner::new(data, 0, checksums, MAX_MESSAGE_SIZE).with_read_size(read_size);
    let mut items = Vec::new();
    loop {
        match scanner.next().expect("reading a slice cannot fail") {
            Scanned::Record(span) => {
                let framed = scanner.framed(&span);
                let FrameStatus::Complete(frame) = frame_at(framed, MAX_MESSAGE_SIZE) else {
                    panic!("a record that is not one whole frame");
                };
                assert_eq!(frame.len(), framed.len());
                assert_eq!(frame.message(framed), scanner.message(&span));
                match frame.checksum_matches(scanner.message(&span)) {
                    Some(true) => assert!(span.checksummed),
                    None => assert_eq!(checksums, Checksums::Optional),
                    Some(false) => panic!("a record whose checksum does not match"),
                }
                items.push((span.offset, span.len, true));
            }
            Scanned::Corrupt(c) => {
                assert!(c.len > 0);
                items.push((c.offset, c.len, false));
            }
            Scanned::End => return items,
        }
    }
}

fuzz_target!(|input: (u8, bool, &[u8])| {
    let (chunk, heka, data) = input;
    let checksums = if heka {
        Checksums::Optional
    } else {
        Checksums::Required
    };
    let whole = scan(data, data.len().max(1), checksums);
    let mut at = 0;
    for &(offset, len, _) in &whole {
        assert_eq!(offset, at, "records and damaged runs tile the segment");
        at += len;
    }
    assert_eq!(at, data.len() as u64);
    let pieces = scan(data, chunk as usize % 64 + 1, checksums);
    assert_eq!(whole, pieces, "the read size does not change the answer");
});

//! Arbitrary bytes, cut into arbitrary reads, into the streaming splitter: it must never panic,
//! every byte is accounted for (records + skipped regions + rejected records), and the records
//! found do not depend on where the reads were cut.
#![no_main]

use hekate_model::framing::{HekaSplitter, SignerKeys, SplitOutcome};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fn run(data: &[u8], chunk: usize) -> (Vec<(u64, Vec<u8>)>, u64) {
    let mut keys = SignerKeys::new();
    keys.insert("ops", 1, b"key");
    let mut splitter = HekaSplitter::new(1024).with_signers(Arc::new(keys));
    let mut records = Vec::new();
    let mut accounted = 0u64;
    let mut buf = Vec::new();
    let mut feed = |buf: &mut Vec<u8>, eof: bool, splitter: &mut HekaSplitter| {
        let mut pos = 0;
        loop {
            let step = if eof { splitter.finish(&buf[pos..]) } else { splitter.split(&buf[pos..]) };
            pos += step.consumed;
            if let Some(region) = step.skipped {
                accounted += region.len;
            }
            match step.outcome {
                SplitOutcome::Record(r) => {
                    accounted += r.framed.len() as u64;
                    records.push((r.offset, r.message.to_vec()));
                }
                SplitOutcome::Rejected(r) => accounted += r.len as u64,
                SplitOutcome::NeedData => break,
                SplitOutcome::End { truncated } => {
                    if let Some(region) = truncated {
                        accounted += region.len;
                    }
                    break;
                }
            }
        }
        buf.drain(..pos);
    };
    for read in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(read);
        feed(&mut buf, false, &mut splitter);
    }
    feed(&mut buf, true, &mut splitter);
    (records, accounted)
}

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    let (whole, accounted) = run(data, data.len());
    assert_eq!(accounted, data.len() as u64, "every byte is a record, a rejection or skipped");
    let (pieces, _) = run(data, chunk as usize % 64 + 1);
    assert_eq!(whole, pieces, "records do not depend on read boundaries");
});

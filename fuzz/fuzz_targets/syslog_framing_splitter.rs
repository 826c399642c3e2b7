//! Arbitrary bytes, cut into arbitrary reads, into SyslogFramingSplitter: it must never panic,
//! the records and the skipped byte count do not depend on where the reads were cut, no record
//! is longer than the limit, and no record keeps its line end.
#![no_main]

use std::collections::HashMap;

use hekate_config::Config;
use hekate_engine::plugin::{BuildContext, Built, SplitOutcome, Splitter, SplitterPlugin};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

/// The limit: small, so that inputs reach the too-long paths.
const MAX: usize = 64;

fn plugin() -> Arc<dyn SplitterPlugin> {
    let toml = format!("[hekate]\nmax_message_size = {MAX}\n[SyslogFramingSplitter]\n");
    let config = Config::from_str(&toml, "fuzz.toml").expect("the config parses");
    let registry = hekate_plugins::registry();
    let built = HashMap::new();
    let ctx = BuildContext::new(&config.global, &built);
    let t = registry.get("SyslogFramingSplitter").expect("registered");
    match (t.build)(config.plugin("SyslogFramingSplitter").expect("the section"), &ctx) {
        Ok(Built::Splitter(s)) => s,
        _ => panic!("SyslogFramingSplitter builds"),
    }
}

/// Feeds `data` in reads of `chunk` bytes into a growing buffer, as an input's record stream
/// does, then ends the stream: the records and the skipped byte count.
fn run(plugin: &dyn SplitterPlugin, data: &[u8], chunk: usize) -> (Vec<Vec<u8>>, u64) {
    let mut s = plugin.new_splitter(None);
    let mut records = Vec::new();
    let mut skipped = 0u64;
    let mut buf = Vec::new();
    let mut feed = |buf: &mut Vec<u8>, eof: bool, s: &mut Box<dyn Splitter>| {
        let mut pos = 0;
        loop {
            let step = if eof {
                s.finish(&buf[pos..])
            } else {
                s.split(&buf[pos..])
            };
            pos += step.consumed;
            skipped += step.skipped;
            match step.outcome {
                SplitOutcome::Record { bytes, .. } => records.push(bytes.to_vec()),
                _ => break,
            }
            if step.consumed == 0 {
                break;
            }
        }
        buf.drain(..pos);
        assert!(buf.len() <= plugin.max_record_size(), "the buffer outgrew the limit");
    };
    for read in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(read);
        feed(&mut buf, false, &mut s);
    }
    feed(&mut buf, true, &mut s);
    (records, skipped)
}

thread_local! {
    static PLUGIN: Arc<dyn SplitterPlugin> = plugin();
}

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    let plugin = PLUGIN.with(Arc::clone);
    let whole = run(plugin.as_ref(), data, data.len());
    for r in &whole.0 {
        assert!(r.len() <= MAX, "a record of {} bytes", r.len());
        assert!(!r.ends_with(b"\n"), "a record kept its line end");
    }
    let pieces = run(plugin.as_ref(), data, chunk as usize % 64 + 1);
    assert_eq!(whole, pieces, "records do not depend on read boundaries");
});

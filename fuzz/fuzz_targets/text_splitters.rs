//! Arbitrary bytes, cut into arbitrary reads, into the text splitters file inputs use
//! (TokenSplitter, RegexSplitter with a capture kept at the start of records,
//! PatternGroupingSplitter): they must never panic, never report a record longer than what they
//! were given, and find the same records wherever the reads were cut.
#![no_main]

use std::sync::{Arc, OnceLock};

use hekate_engine::plugin::{Built, SplitOutcome, SplitterPlugin};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[lines]
type = "TokenSplitter"
deliver_incomplete_final = true

[dated]
type = "RegexSplitter"
delimiter = '\n(\d{4}-\d\d-\d\d )'
delimiter_eol = false
deliver_incomplete_final = true

[traces]
type = "PatternGroupingSplitter"
delimiter = '\n'
grouping = '(\A\s*.+Exception: .)|(\A\s+at \S+)'
max_lines = 5
deliver_incomplete_final = true

[in]
type = "TcpInput"
address = "127.0.0.1:0"
"#;

fn splitters() -> &'static [Arc<dyn SplitterPlugin>] {
    static S: OnceLock<Vec<Arc<dyn SplitterPlugin>>> = OnceLock::new();
    S.get_or_init(|| {
        let registry = hekate_plugins::registry();
        let config = hekate_config::Config::from_str(CONFIG, "fuzz.toml").expect("config");
        let pipeline =
            hekate_engine::runtime::Pipeline::build(&config, &registry).expect("pipeline");
        ["lines", "dated", "traces"]
            .iter()
            .map(|name| {
                let p = pipeline.plugins.iter().find(|p| p.name == *name).expect(name);
                match &p.built {
                    Built::Splitter(s) => Arc::clone(s),
                    _ => unreachable!("a splitter section"),
                }
            })
            .collect()
    })
}

fn run(plugin: &Arc<dyn SplitterPlugin>, data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut splitter = plugin.new_splitter(None);
    let mut records = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut feed = |buf: &mut Vec<u8>, eof: bool| loop {
        let step = if eof {
            splitter.finish(buf)
        } else {
            splitter.split(buf)
        };
        assert!(step.consumed <= buf.len());
        let consumed = step.consumed;
        match step.outcome {
            SplitOutcome::Record { bytes, .. } => {
                assert!(bytes.len() <= buf.len());
                records.push(bytes.to_vec());
            }
            _ => {
                buf.drain(..consumed);
                break;
            }
        }
        buf.drain(..consumed);
        if consumed == 0 {
            break;
        }
    };
    for read in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(read);
        feed(&mut buf, false);
    }
    feed(&mut buf, true);
    records
}

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (which, chunk, data) = input;
    let plugin = &splitters()[which as usize % 3];
    let whole = run(plugin, data, data.len());
    let pieces = run(plugin, data, chunk as usize % 64 + 1);
    assert_eq!(whole, pieces, "records do not depend on read boundaries");
});

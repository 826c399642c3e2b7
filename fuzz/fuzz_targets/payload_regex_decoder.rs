//! Arbitrary bytes into PayloadRegexDecoder (a Timestamp read with a Go layout and Go's standard
//! layouts behind it, a Severity map, typed template fields): it must never panic; a record it
//! accepts becomes one well-formed message whose strings are UTF-8, and a record it refuses
//! leaves nothing behind.
#![no_main]

mod common;

use std::cell::RefCell;

use hekate_engine::plugin::{Decoded, DecodedMessages, Decoder};
use hekate_model::message::{Message, MessageView};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[d]
type = "PayloadRegexDecoder"
match_regex = '^(?P<Timestamp>[^|]*)\|(?P<Severity>[^|]*)\|(?P<pid>[^|]*)\|(?P<rest>.*)$'
timestamp_layout = "02/Jan/2006:15:04:05.000 -0700"
timestamp_location = "Europe/Berlin"

[d.severity_map]
error = 3
info = 6

[d.message_fields]
Type = "fuzz.%rest%"
"Count|n|int" = "%pid%"
"Ratio||float" = "%pid%"
"Flag||bool" = "%rest%"
"Raw||bytes" = "%rest%"
Text = "%rest% %missing%"
"#;

thread_local! {
    static DECODER: RefCell<Box<dyn Decoder>> = RefCell::new(common::decoder(CONFIG));
}

fuzz_target!(|data: &[u8]| {
    let mut out = DecodedMessages::default();
    let result = DECODER.with_borrow_mut(|d| d.decode(data, &common::SOURCE, &mut out));
    match result {
        Ok(Decoded::Messages(1)) => {
            assert_eq!(out.len(), 1);
            let bytes = out.iter().next().unwrap();
            MessageView::new(bytes).expect("a well-formed message");
            let m = Message::decode_bytes(bytes).expect("decodes as a message");
            assert!(!m.payload.unwrap_or_default().ends_with('\n'));
        }
        Ok(other) => panic!("one message per record, not {other:?}"),
        Err(_) => assert!(out.is_empty(), "a refused record left a message"),
    }
});

//! Arbitrary bytes into PayloadXmlDecoder (XPaths that select elements, attributes, the whole
//! document's text and computed values; a Timestamp read with a Go layout, a Severity map,
//! typed template fields): it must never panic nor run out of stack; a record it accepts
//! becomes one well-formed message whose strings are UTF-8, and a record it refuses leaves
//! nothing behind. Seed the corpus with a few XML documents to get past the parser quickly.
#![no_main]

mod common;

use std::cell::RefCell;

use hekate_engine::plugin::{Decoded, DecodedMessages, Decoder};
use hekate_model::message::{Message, MessageView};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[d]
type = "PayloadXmlDecoder"
timestamp_layout = "2006-01-02T15:04:05.000Z07:00"
timestamp_location = "Europe/Berlin"

[d.xpath_map]
Timestamp = "/*/@ts"
Severity = "//level"
Text = "string(/)"
First = "//*[2]"
Attr = "//@*[last()]"
Count = "count(//*)"
Ns = "//*[local-name()='x']/@y"

[d.severity_map]
error = 3
info = 6

[d.message_fields]
Type = "fuzz.%First%"
"Count|n|int" = "%Count%"
"Ratio||float" = "%Attr%"
"Flag||bool" = "%Ns%"
"Raw||bytes" = "%Text%"
Text = "%Text% %missing%"
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
            Message::decode_bytes(bytes).expect("decodes as a message");
        }
        Ok(other) => panic!("one message per record, not {other:?}"),
        Err(_) => assert!(out.is_empty(), "a refused record left a message"),
    }
});

//! Arbitrary bytes into JsonDecoder (headers mapped, a timestamp format): it must never panic, a
//! record it accepts becomes exactly one well-formed message whose strings are UTF-8, whose
//! field names are unique and whose Payload is the record without its line end, and a record it
//! refuses leaves nothing behind.
#![no_main]

mod common;

use std::cell::RefCell;
use std::collections::HashSet;

use hekate_engine::plugin::{Decoded, DecodedMessages, Decoder};
use hekate_model::message::{Message, MessageView};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[d]
type = "JsonDecoder"
payload_keep = true
map_fields = true
Severity = "severity"
Hostname = "host"
Uuid = "id"
Pid = "pid"
EnvVersion = "v"
Timestamp = "time"
timestamp_format = "%Y-%m-%dT%H:%M:%S%z"
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
            // prost checks every string is UTF-8.
            let m = Message::decode_bytes(bytes).expect("decodes as a message");
            // payload_keep: the record without its one line end.
            let kept = data.strip_suffix(b"\n").unwrap_or(data);
            let kept = kept.strip_suffix(b"\r").unwrap_or(kept);
            if std::str::from_utf8(kept).is_ok() {
                assert_eq!(m.payload.unwrap_or_default().as_bytes(), kept);
            }
            let mut names = HashSet::new();
            for f in &m.fields {
                assert!(names.insert(f.name.clone()), "field {} twice", f.name);
            }
        }
        Ok(other) => panic!("one message per record, not {other:?}"),
        Err(_) => assert!(out.is_empty(), "a refused record left a message"),
    }
});

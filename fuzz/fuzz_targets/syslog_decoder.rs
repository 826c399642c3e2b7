//! Arbitrary bytes into SyslogDecoder (every field on, a zone with summer time): it must never
//! panic, a line it accepts becomes exactly one well-formed message whose strings are UTF-8 and
//! whose Payload has no line end, and a line it refuses leaves nothing behind.
#![no_main]

mod common;

use std::cell::RefCell;

use hekate_engine::plugin::{Decoded, DecodedMessages, Decoder};
use hekate_model::message::{Message, MessageView};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[d]
type = "SyslogDecoder"
tz = "Europe/Berlin"
message_type = "syslog"
fields = ["syslogfacility", "programname", "syslogtag", "app-name", "procid", "msgid",
          "protocol-version", "structured-data", "sd"]
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
            let payload = m.payload.unwrap_or_default();
            assert!(!payload.ends_with('\n'), "a line end in the Payload");
            assert_eq!(m.logger.as_deref(), Some("fuzz"));
        }
        Ok(other) => panic!("one message per line, not {other:?}"),
        Err(_) => assert!(out.is_empty(), "a refused line left a message"),
    }
});

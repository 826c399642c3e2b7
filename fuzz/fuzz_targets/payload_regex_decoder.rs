//! Arbitrary bytes into PayloadRegexDecoder (a Timestamp read with a Go layout and Go's standard
//! layouts behind it, a Severity map, typed template fields): it must never panic; a record it
//! accepts becomes one well-formed message whose strings are UTF-8, and a record it refuses
//! leaves nothing behind.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;

use hekate_config::Config;
use hekate_engine::plugin::{BuildContext, Built, Decoded, DecodedMessages, Decoder, RecordSource};
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

fn decoder() -> Box<dyn Decoder> {
    let config = Config::from_str(CONFIG, "fuzz.toml").expect("the config parses");
    let registry = hekate_plugins::registry();
    let built = HashMap::new();
    let ctx = BuildContext::new(&config.global, &built);
    let t = registry.get("PayloadRegexDecoder").expect("registered");
    match (t.build)(config.plugin("d").expect("the section"), &ctx) {
        Ok(Built::Decoder(d)) => d.new_decoder(),
        _ => panic!("PayloadRegexDecoder builds"),
    }
}

thread_local! {
    static DECODER: RefCell<Box<dyn Decoder>> = RefCell::new(decoder());
}

fuzz_target!(|data: &[u8]| {
    let source = RecordSource {
        input: "fuzz",
        hostname: "fuzz-host",
        message_bytes: false,
        msg_type: None,
        fields: &[],
    };
    let mut out = DecodedMessages::default();
    let result = DECODER.with_borrow_mut(|d| d.decode(data, &source, &mut out));
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

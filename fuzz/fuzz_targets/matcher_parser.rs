//! Arbitrary text into the matcher parser: it must never panic, and whatever parses evaluates
//! without panicking on a message with every kind of header and field.
#![no_main]

use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{Field, Message, MessageView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = MatcherSpec::parse(text) else {
        return;
    };
    let mut msg = Message::new_now();
    msg.r#type = Some("t".into());
    msg.add_field(Field::string("a", "x"))
        .add_field(Field::integer("b", 3))
        .add_field(Field::boolean("c", true))
        .add_field(Field::double("d", 1.5))
        .add_field(Field::bytes("e", vec![0, 1]));
    let bytes = msg.to_bytes();
    let view = MessageView::new(&bytes).unwrap();
    assert_eq!(spec.matches(&msg), spec.matches(&view));
});

//! Arbitrary bytes into the lazy view: it must never panic, and whatever the owned decode accepts
//! the view must read identically.
#![no_main]

use hekate_engine::message::{Message, MessageAccess, MessageView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(view) = MessageView::new(data) else {
        return;
    };
    for f in view.fields() {
        let _ = (f.name(), f.value_type(), f.representation(), f.values(), f.len());
    }
    let _ = view.field_value(b"a", 0, 0);
    if let Ok(msg) = Message::decode_bytes(data) {
        assert_eq!(view.uuid(), MessageAccess::uuid(&msg));
        assert_eq!(view.timestamp(), MessageAccess::timestamp(&msg));
        assert_eq!(view.msg_type(), MessageAccess::msg_type(&msg));
        assert_eq!(view.logger(), MessageAccess::logger(&msg));
        assert_eq!(view.severity(), MessageAccess::severity(&msg));
        assert_eq!(view.payload(), MessageAccess::payload(&msg));
        assert_eq!(view.pid(), MessageAccess::pid(&msg));
        assert_eq!(view.hostname(), MessageAccess::hostname(&msg));
        assert_eq!(view.field_count(), msg.fields.len());
        for (fv, f) in view.fields().zip(&msg.fields) {
            assert_eq!(fv.name(), f.name.as_bytes());
            assert_eq!(fv.len(), f.len());
            for ai in 0..f.len() {
                let a = fv.value(ai).unwrap();
                let b = f.value(ai).unwrap();
                // NaN != NaN: compare bit patterns for doubles.
                match (a, b) {
                    (
                        hekate_engine::message::FieldValue::Double(x),
                        hekate_engine::message::FieldValue::Double(y),
                    ) => assert_eq!(x.to_bits(), y.to_bits()),
                    _ => assert_eq!(a, b),
                }
            }
        }
    }
});

//! Arbitrary bytes into the lazy view: it must never panic, whatever the owned decode accepts
//! the view must read identically, and field lookups through the router's field index must
//! read what the plain view reads.
#![no_main]

use hekate_model::message::{
    FieldIndex, FieldValue, IndexedView, Message, MessageAccess, MessageView,
};
use libfuzzer_sys::fuzz_target;

/// Equality with doubles compared by their bits (NaN included).
fn same(a: Option<FieldValue<'_>>, b: Option<FieldValue<'_>>) -> bool {
    match (a, b) {
        (Some(FieldValue::Double(x)), Some(FieldValue::Double(y))) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(view) = MessageView::new(data) else {
        return;
    };
    for f in view.fields() {
        let _ = (f.name(), f.value_type(), f.representation(), f.values(), f.len());
    }
    let _ = view.field_value(b"a", 0, 0);
    let mut index = FieldIndex::default();
    let indexed = IndexedView::new(&view, &mut index);
    for f in view.fields() {
        for fi in 0..2 {
            for ai in 0..3 {
                assert!(same(
                    indexed.field_value(f.name(), fi, ai),
                    view.field_value(f.name(), fi, ai)
                ));
            }
        }
    }
    assert!(same(indexed.field_value(b"", 0, 0), view.field_value(b"", 0, 0)));
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
                        hekate_model::message::FieldValue::Double(x),
                        hekate_model::message::FieldValue::Double(y),
                    ) => assert_eq!(x.to_bits(), y.to_bits()),
                    _ => assert_eq!(a, b),
                }
            }
        }
    }
});

//! The lazy view must agree with the owned decode on every header and field.

use hekate_model::message::{
    Field, FieldIndex, FieldValue, IndexedView, Message, MessageAccess, MessageView, ValueType,
    ViewError, uuid_string,
};
use proptest::prelude::*;
use prost::Message as _;

fn field_strategy() -> impl Strategy<Value = Field> {
    // Names of every length class the index's key tells apart: short, exactly eight bytes,
    // and longer ones that share their first eight bytes.
    let name = prop::sample::select(vec![
        "status",
        "host",
        "bytes",
        "ratio",
        "ok",
        "raw",
        "a b",
        "duration",
        "duration_ms",
        "duration_us",
    ]);
    let repr = prop::option::of(prop::sample::select(vec!["", "B", "ns", "count"]));
    (name, repr, 0..5usize, 1..4usize, any::<u64>()).prop_map(|(name, repr, kind, n, seed)| {
        let mut f = Field {
            name: name.to_string(),
            representation: repr.map(str::to_string),
            ..Default::default()
        };
        let mut s = seed;
        for i in 0..n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match kind {
                0 => f.value_string.push(format!("v{i}-{}", s % 1000)),
                1 => f
                    .value_bytes
                    .push(s.to_le_bytes()[..(s % 8) as usize].to_vec()),
                2 => f.value_integer.push(s as i64),
                3 => f.value_double.push((s % 100_000) as f64 / 7.0 - 5000.0),
                _ => f.value_bool.push(s % 2 == 0),
            }
        }
        f.value_type = Some(kind as i32);
        f
    })
}

fn message_strategy() -> impl Strategy<Value = Message> {
    (
        prop::collection::vec(any::<u8>(), 16..=16),
        any::<i64>(),
        prop::option::of("[a-z.]{0,12}"),
        prop::option::of("[A-Za-z]{0,8}"),
        prop::option::of(-1i32..9),
        prop::option::of(".{0,40}"),
        prop::option::of("[0-9.]{0,4}"),
        prop::option::of(any::<i32>()),
        prop::option::of("[a-z0-9-]{0,10}"),
        prop::collection::vec(field_strategy(), 0..8),
    )
        .prop_map(
            |(uuid, timestamp, t, logger, severity, payload, env, pid, host, fields)| Message {
                uuid,
                timestamp,
                r#type: t,
                logger,
                severity,
                payload,
                env_version: env,
                pid,
                hostname: host,
                fields,
            },
        )
}

fn assert_agree(msg: &Message, view: &MessageView<'_>) {
    assert_eq!(view.uuid(), MessageAccess::uuid(msg));
    assert_eq!(view.timestamp(), MessageAccess::timestamp(msg));
    assert_eq!(view.msg_type(), MessageAccess::msg_type(msg));
    assert_eq!(view.logger(), MessageAccess::logger(msg));
    assert_eq!(view.severity(), MessageAccess::severity(msg));
    assert_eq!(view.payload(), MessageAccess::payload(msg));
    assert_eq!(view.env_version(), MessageAccess::env_version(msg));
    assert_eq!(view.pid(), MessageAccess::pid(msg));
    assert_eq!(view.hostname(), MessageAccess::hostname(msg));
    assert_eq!(view.field_count(), msg.fields.len());
    for (fv, f) in view.fields().zip(&msg.fields) {
        assert_eq!(fv.name(), f.name.as_bytes());
        assert_eq!(fv.value_type(), f.kind());
        assert_eq!(
            fv.representation(),
            f.representation.as_deref().unwrap_or("").as_bytes()
        );
        assert_eq!(fv.len(), f.len());
        let owned: Vec<_> = (0..f.len()).map(|ai| f.value(ai).unwrap()).collect();
        assert_eq!(fv.values(), owned);
    }
    // Lookup by name, field index and array index, including past the end.
    for f in &msg.fields {
        for fi in 0..4 {
            for ai in 0..5 {
                assert_eq!(
                    view.field_value(f.name.as_bytes(), fi, ai),
                    msg.field_value(f.name.as_bytes(), fi, ai),
                    "{}[{fi}][{ai}]",
                    f.name
                );
            }
        }
    }
    assert_eq!(view.field_value(b"missing", 0, 0), None);
}

proptest! {
    #[test]
    fn encode_decode_round_trips(msg in message_strategy()) {
        let bytes = msg.to_bytes();
        let back = Message::decode_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn view_agrees_with_owned_decode(msg in message_strategy()) {
        let bytes = msg.to_bytes();
        let view = MessageView::new(&bytes).unwrap();
        assert_agree(&msg, &view);
        prop_assert_eq!(view.to_owned_message().unwrap(), msg);
    }

    /// Damaged encodings (two bytes changed) exercise the one-byte-key fast paths of the scan
    /// and their fallback: whatever both decoders accept, they read alike.
    #[test]
    fn view_agrees_with_owned_decode_on_damaged_messages(
        msg in message_strategy(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 2),
    ) {
        let mut bytes = msg.to_bytes();
        for (at, byte) in damage {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let view = MessageView::new(&bytes);
        if let (Ok(view), Ok(owned)) = (view, Message::decode(bytes.as_slice())) {
            assert_agree(&owned, &view);
        }
    }

    #[test]
    fn view_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(view) = MessageView::new(&bytes) {
            let _ = view.field_value(b"x", 0, 0);
            let mut index = FieldIndex::default();
            let indexed = IndexedView::new(&view, &mut index);
            for f in view.fields() {
                let _ = (f.name(), f.value_type(), f.representation(), f.values());
                // malformed fields included: the index reads what the view reads
                for ai in 0..2 {
                    prop_assert_eq!(
                        indexed.field_value(f.name(), 0, ai),
                        view.field_value(f.name(), 0, ai)
                    );
                }
            }
            prop_assert_eq!(indexed.field_value(b"", 1, 0), view.field_value(b"", 1, 0));
            // Whatever the owned decode accepts, the view reads the same headers.
            if let Ok(msg) = Message::decode(bytes.as_slice()) {
                prop_assert_eq!(view.msg_type(), MessageAccess::msg_type(&msg));
                prop_assert_eq!(view.severity(), MessageAccess::severity(&msg));
                prop_assert_eq!(view.timestamp(), MessageAccess::timestamp(&msg));
            }
        }
    }
}

#[test]
fn later_header_occurrence_wins_and_unknown_tags_are_skipped() {
    let mut bytes = Message {
        uuid: vec![1; 16],
        timestamp: 5,
        r#type: Some("first".into()),
        ..Default::default()
    }
    .to_bytes();
    // Unknown tag 15 (varint), then a second Type.
    bytes.extend_from_slice(&[15 << 3, 0x96, 0x01]);
    bytes.extend_from_slice(&[3 << 3 | 2, 6]);
    bytes.extend_from_slice(b"second");
    let view = MessageView::new(&bytes).unwrap();
    let msg = Message::decode_bytes(&bytes).unwrap();
    assert_eq!(view.msg_type(), b"second");
    assert_eq!(msg.r#type(), "second");
}

#[test]
fn unpacked_and_split_packed_arrays_read_as_one_array() {
    // Field { name: "n", value_type: INTEGER, value_integer: [1, 2] unpacked, then packed [3, 4] }
    let mut field = vec![1 << 3 | 2, 1, b'n', 2 << 3, 2];
    field.extend_from_slice(&[6 << 3, 1, 6 << 3, 2]);
    field.extend_from_slice(&[6 << 3 | 2, 2, 3, 4]);
    let mut bytes = vec![1 << 3 | 2, 16];
    bytes.extend_from_slice(&[0u8; 16]);
    bytes.extend_from_slice(&[2 << 3, 1]);
    bytes.push(10 << 3 | 2);
    bytes.push(field.len() as u8);
    bytes.extend_from_slice(&field);
    let view = MessageView::new(&bytes).unwrap();
    let msg = Message::decode_bytes(&bytes).unwrap();
    assert_eq!(msg.fields[0].value_integer, vec![1, 2, 3, 4]);
    for ai in 0..4 {
        assert_eq!(
            view.field_value(b"n", 0, ai),
            Some(FieldValue::Integer(ai as i64 + 1))
        );
    }
    assert_eq!(view.field_value(b"n", 0, 4), None);
}

#[test]
fn missing_headers_read_as_schema_defaults() {
    let msg = Message {
        uuid: vec![0xab; 16],
        timestamp: 1,
        ..Default::default()
    };
    let bytes = msg.to_bytes();
    let view = MessageView::new(&bytes).unwrap();
    assert_eq!(view.severity(), 7);
    assert_eq!(view.pid(), 0);
    assert_eq!(view.msg_type(), b"");
    assert_eq!(
        uuid_string(view.uuid()),
        "abababab-abab-abab-abab-abababababab"
    );
}

#[test]
fn repeated_field_names_are_indexed_in_order() {
    let mut msg = Message::new_now();
    msg.add_field(Field::string("tag", "a"))
        .add_field(Field::integer("tag", 7))
        .add_field(Field::boolean("tag", true));
    let bytes = msg.to_bytes();
    let view = MessageView::new(&bytes).unwrap();
    assert_eq!(
        view.field_value(b"tag", 0, 0),
        Some(FieldValue::String(b"a"))
    );
    assert_eq!(view.field_value(b"tag", 1, 0), Some(FieldValue::Integer(7)));
    assert_eq!(view.field_value(b"tag", 2, 0), Some(FieldValue::Bool(true)));
    assert_eq!(view.field_value(b"tag", 3, 0), None);
    assert_eq!(
        view.fields().nth(1).unwrap().value_type(),
        ValueType::Integer
    );
}

#[test]
fn malformed_top_level_is_refused() {
    // Type (tag 3) with a varint wire type.
    assert!(MessageView::new(&[3 << 3, 1]).is_err());
    // Length past the end.
    assert!(MessageView::new(&[6 << 3 | 2, 10, b'x']).is_err());
    // Truncated varint.
    assert!(MessageView::new(&[2 << 3, 0x80]).is_err());
    // An unterminated group, and an end group without a start.
    assert!(MessageView::new(&[11 << 3 | 3]).is_err());
    assert!(MessageView::new(&[11 << 3 | 4]).is_err());
    // A known tag as a group.
    assert!(MessageView::new(&[3 << 3 | 3, 3 << 3 | 4]).is_err());
}

#[test]
fn a_varint_above_2_64_is_refused_as_a_full_decode_refuses_it() {
    // Timestamp (tag 2) as ten bytes whose last one carries bits above 2^64, then as eleven.
    let mut above = vec![2 << 3];
    above.extend([0xFF; 9]);
    above.push(0x02);
    let mut eleven = vec![2 << 3];
    eleven.extend([0x80; 10]);
    eleven.push(0x00);
    for bytes in [above, eleven] {
        assert!(Message::decode(&bytes[..]).is_err(), "{bytes:02x?}");
        assert_eq!(
            MessageView::new(&bytes).unwrap_err(),
            ViewError::BadVarint(1),
            "{bytes:02x?}"
        );
    }
    // The largest ten-byte varint is a value like any other.
    let mut max = vec![2 << 3];
    max.extend([0xFF; 9]);
    max.push(0x01);
    assert_eq!(MessageView::new(&max).unwrap().timestamp(), -1);
    assert_eq!(Message::decode(&max[..]).unwrap().timestamp, -1);
}

#[test]
fn unknown_groups_are_skipped_like_a_full_decode_does() {
    // Unknown group 11 holding a varint and a nested group 12, then Type = "t".
    let bytes = [
        11 << 3 | 3,
        1 << 3,
        5,
        12 << 3 | 3,
        12 << 3 | 4,
        11 << 3 | 4,
        3 << 3 | 2,
        1,
        b't',
    ];
    let view = MessageView::new(&bytes).unwrap();
    let msg = Message::decode_bytes(&bytes).unwrap();
    assert_eq!(view.msg_type(), b"t");
    assert_eq!(msg.r#type(), "t");
}

/// Field lookups through a shared [`FieldIndex`] read what the plain view reads, for every name
/// (present, repeated, absent) and index, message after message with the same index.
fn assert_indexed_agrees(msg: &Message, index: &mut FieldIndex) {
    let bytes = msg.to_bytes();
    let view = MessageView::new(&bytes).unwrap();
    let indexed = IndexedView::new(&view, index);
    let mut names: Vec<&[u8]> = msg.fields.iter().map(|f| f.name.as_bytes()).collect();
    names.extend([
        &b"missing"[..],
        b"",
        b"duration_ns",
        b"duratio",
        b"durationX",
    ]);
    for name in names {
        for fi in 0..4 {
            for ai in 0..5 {
                assert_eq!(
                    indexed.field_value(name, fi, ai),
                    view.field_value(name, fi, ai),
                    "{}[{fi}][{ai}]",
                    String::from_utf8_lossy(name)
                );
            }
        }
    }
    assert_eq!(indexed.msg_type(), view.msg_type());
    assert_eq!(indexed.payload(), view.payload());
}

proptest! {
    #[test]
    fn indexed_view_agrees_with_view(msgs in prop::collection::vec(message_strategy(), 1..4)) {
        // One index for all messages, as the router keeps it.
        let mut index = FieldIndex::default();
        for msg in &msgs {
            assert_indexed_agrees(msg, &mut index);
        }
    }
}

//! Property tests: no input makes the sandbox panic or fail unexpectedly.

mod common;

use common::*;
use hekate_model::message::{Field, Message, MessageView};
use hekate_sandbox::{Outcome, PluginType, Sandbox, VecHost};
use proptest::prelude::*;

fn field() -> impl Strategy<Value = Field> {
    let name = "[a-z\\[\\] ]{0,8}";
    prop_oneof![
        (name, ".{0,20}").prop_map(|(n, v)| Field::string(n, v)),
        (name, proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(n, v)| Field::bytes(n, v)),
        (name, proptest::collection::vec(any::<i64>(), 0..4)).prop_map(|(n, v)| {
            let mut f = Field::integer(n, 0);
            f.value_integer = v;
            f
        }),
        (name, any::<f64>()).prop_map(|(n, v)| Field::double(n, v)),
        (name, any::<bool>()).prop_map(|(n, v)| Field::boolean(n, v)),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec(any::<u8>(), 0..20),
        any::<i64>(),
        proptest::option::of(".{0,10}"),
        proptest::option::of(".{0,40}"),
        proptest::option::of(any::<i32>()),
        proptest::collection::vec(field(), 0..6),
    )
        .prop_map(|(uuid, timestamp, t, payload, severity, fields)| Message {
            uuid,
            timestamp,
            r#type: t,
            payload,
            severity,
            fields,
            ..Default::default()
        })
}

fn sandbox(ty: PluginType) -> Sandbox {
    Sandbox::new(script("everything.lua"), ty, "Everything", config()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_message(m in message()) {
        for ty in [PluginType::Decoder, PluginType::Encoder] {
            let mut sb = sandbox(ty);
            let bytes = m.to_bytes();
            let view = MessageView::new(&bytes).unwrap();
            let mut host = VecHost::at(NOW);
            prop_assert_eq!(sb.process_message(&view, &mut host), Ok(Outcome::Ok));
            prop_assert_eq!(sb.process_message(&m, &mut host), Ok(Outcome::Ok));
        }
    }

    #[test]
    fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(view) = MessageView::new(&bytes) {
            let mut sb = sandbox(PluginType::Decoder);
            let mut host = VecHost::at(NOW);
            prop_assert_eq!(sb.process_message(&view, &mut host), Ok(Outcome::Ok));
        }
    }

    #[test]
    fn any_json(s in ".{0,60}") {
        let sb = new("require 'cjson' function process_message() return 0 end", PluginType::Filter);
        let quoted: String = std::iter::once("\"".to_owned())
            .chain(s.bytes().map(|b| format!("\\{b:03}")))
            .chain(std::iter::once("\"".to_owned()))
            .collect();
        let r = sb.eval::<mlua::Value>(&format!(
            "local ok, v = pcall(cjson.decode, {quoted}) if ok then return cjson.encode(v) end"
        ));
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

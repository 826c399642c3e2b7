//! What the decoder targets share: a decoder built through the registry from a config, as
//! hekate builds it, and the record source they decode from.

use std::collections::HashMap;

use hekate_config::Config;
use hekate_engine::plugin::{BuildContext, Built, Decoder, RecordSource};

/// The decoder of section `[d]` of `config`, built as `hekate run` builds it.
pub fn decoder(config: &str) -> Box<dyn Decoder> {
    let config = Config::from_str(config, "fuzz.toml").expect("the config parses");
    let registry = hekate_plugins::registry();
    let built = HashMap::new();
    let ctx = BuildContext::new(&config.global, &built);
    let section = config.plugin("d").expect("the section [d]");
    let t = registry.get(section.type_name()).expect("registered");
    match (t.build)(section, &ctx) {
        Ok(Built::Decoder(d)) => d.new_decoder(),
        _ => panic!("{} builds", section.type_name()),
    }
}

/// A text record from an input named "fuzz" on host "fuzz-host".
pub const SOURCE: RecordSource<'static> = RecordSource {
    input: "fuzz",
    hostname: "fuzz-host",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

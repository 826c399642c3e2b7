//! hekate's built-in plugins: one module per plugin, found by its Heka type name
//! (`TcpInput` → `input/tcp.rs`), each starting with a `//!` block that says what it does and
//! shows a sample configuration (a unit test builds every sample).
//!
//! [`registry`] lists every plugin this build can run, explicitly: adding a plugin means adding
//! its module and one line there.

mod common;
mod sandbox;

/// Inputs.
pub mod input {
    pub mod sandbox;
    pub mod tcp;
    pub mod udp;
}

/// Splitters.
pub mod splitter {
    pub mod heka_framing;
    pub mod null;
    pub mod token;
}

/// Decoders.
pub mod decoder {
    pub mod protobuf;
    pub mod sandbox;
}

/// Filters.
pub mod filter {
    pub mod counter;
    pub mod sandbox;
    pub mod sandbox_manager;
}

/// Encoders.
pub mod encoder {
    pub mod payload;
    pub mod protobuf;
    pub mod rst;
    pub mod sandbox;
}

pub mod output;

use hekate_engine::plugin::Registry;

/// Every plugin type of this build.
pub fn registry() -> Registry {
    Registry::new(vec![
        // Inputs
        input::tcp::TYPE,
        input::udp::TYPE,
        input::sandbox::TYPE,
        // Splitters
        splitter::heka_framing::TYPE,
        splitter::token::TYPE,
        splitter::null::TYPE,
        // Decoders
        decoder::protobuf::TYPE,
        decoder::sandbox::TYPE,
        // Filters
        filter::counter::TYPE,
        filter::sandbox::TYPE,
        filter::sandbox_manager::TYPE,
        // Encoders
        encoder::protobuf::TYPE,
        encoder::payload::TYPE,
        encoder::rst::TYPE,
        encoder::sandbox::TYPE,
        // Outputs
        output::tcp::TYPE,
        output::file::TYPE,
        output::log::TYPE,
        output::sandbox::TYPE,
        output::udp::TYPE,
    ])
}

#[cfg(test)]
mod tests {
    use hekate_config::PluginCatalog as _;

    #[test]
    fn type_names_are_unique_and_categorised() {
        let r = super::registry();
        let names = r.known_types();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} registered twice");
            assert!(hekate_config::Category::of_type(n).is_some(), "{n}");
        }
    }
}

//! hekate's built-in plugins: one module per plugin, found by its Heka type name
//! (`TcpInput` → `input/tcp.rs`). A plugin file is the plugin's one declaration:
//!
//! - a `//!` block that says what it does and holds a sample configuration (```toml);
//! - its options struct: serde with `deny_unknown_fields`, `JsonSchema`, and a `///` doc on
//!   every field, which is the user documentation (`hekate plugins TYPE` prints it);
//! - `pub const TYPE: PluginType` naming the type, `include_str!` of the file itself (for the
//!   docs and sample), `options_of::<Options>` and the build function.
//!
//! [`registry`] lists every plugin this build can run, explicitly: adding a plugin means adding
//! its file, its module line and one line there. Tests below check that every type documents
//! every option and that every sample builds.

mod common;
mod http;
mod sandbox;
mod tls;
mod unix;

/// Inputs.
pub mod input {
    pub mod file_polling;
    pub mod http;
    pub mod http_listen;
    pub mod logstreamer;
    pub mod process;
    pub mod process_directory;
    pub mod sandbox;
    pub mod stat_accum;
    pub mod statsd;
    pub mod tcp;
    pub mod udp;
}

/// Splitters.
pub mod splitter {
    pub mod heka_framing;
    pub mod null;
    pub mod pattern_grouping;
    pub mod regex;
    pub mod syslog_framing;
    pub mod token;
}

/// Decoders.
pub mod decoder {
    mod capture_headers;
    mod go_time;
    pub mod json;
    pub mod multi;
    mod original;
    pub mod payload_regex;
    pub mod payload_xml;
    pub mod protobuf;
    pub mod sandbox;
    pub mod scribble;
    pub mod stats_to_fields;
    pub mod syslog;
    mod template;
}

/// Filters.
pub mod filter {
    pub mod counter;
    pub mod sandbox;
    pub mod sandbox_manager;
    pub mod stat;
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
        input::logstreamer::TYPE,
        input::file_polling::TYPE,
        input::process::TYPE,
        input::process_directory::TYPE,
        input::statsd::TYPE,
        input::stat_accum::TYPE,
        input::http_listen::TYPE,
        input::http::TYPE,
        // Splitters
        splitter::heka_framing::TYPE,
        splitter::token::TYPE,
        splitter::syslog_framing::TYPE,
        splitter::null::TYPE,
        splitter::regex::TYPE,
        splitter::pattern_grouping::TYPE,
        // Decoders
        decoder::protobuf::TYPE,
        decoder::sandbox::TYPE,
        decoder::syslog::TYPE,
        decoder::json::TYPE,
        decoder::payload_regex::TYPE,
        decoder::payload_xml::TYPE,
        decoder::multi::TYPE,
        decoder::scribble::TYPE,
        decoder::stats_to_fields::TYPE,
        // Filters
        filter::counter::TYPE,
        filter::sandbox::TYPE,
        filter::sandbox_manager::TYPE,
        filter::stat::TYPE,
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
        output::carbon::TYPE,
        output::whisper::TYPE,
        output::dashboard::TYPE,
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

    /// Every type documents itself: a summary, a sample configuration, and a doc comment on
    /// each of its options.
    #[test]
    fn every_type_has_a_summary_a_sample_and_documented_options() {
        let r = super::registry();
        for t in r.types() {
            assert!(
                t.summary().starts_with(&format!("{}: ", t.name)),
                "{}: the //! block should start with the type name",
                t.name
            );
            assert!(t.sample().is_some(), "{} has no ```toml sample", t.name);
            for o in r.options(t.name).unwrap() {
                assert!(
                    !o.doc.is_empty(),
                    "{} option `{}` has no doc",
                    t.name,
                    o.name
                );
            }
        }
    }

    /// The sample of every type builds as `hekate run` would build it. Lua scripts the samples
    /// name are written (a script with every entry point) under a temporary `share_dir`.
    #[test]
    fn every_sample_config_builds() {
        let share = std::env::temp_dir().join(format!("hekate-samples-{}", std::process::id()));
        let r = super::registry();
        for t in r.types() {
            let sample = t.sample().unwrap();
            let table: toml::Table = sample
                .parse()
                .unwrap_or_else(|e| panic!("{}: the sample is not TOML: {e}", t.name));
            for section in table.values().filter_map(toml::Value::as_table) {
                if let Some(file) = section.get("filename").and_then(toml::Value::as_str) {
                    let path = share.join(file);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(
                        &path,
                        "function process_message() return 0 end\nfunction timer_event() end\n",
                    )
                    .unwrap();
                }
            }
            let mut config = format!(
                "[hekate]\nshare_dir = {:?}\nbase_dir = {:?}\n\n{sample}",
                share.display().to_string(),
                share.join("base").display().to_string()
            );
            if !table.keys().any(|k| k.ends_with("Input"))
                && !table.values().any(|v| {
                    v.get("type")
                        .and_then(toml::Value::as_str)
                        .is_some_and(|t| t.ends_with("Input"))
                })
            {
                config
                    .push_str("\n[SampleInput]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n");
            }
            if let Err(e) = crate::common::testing::build(&config) {
                panic!("the sample of {} does not build: {e}\n{config}", t.name);
            }
        }
        let _ = std::fs::remove_dir_all(&share);
    }
}

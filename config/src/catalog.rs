//! What the config is checked against: the plugin types a build can run (injected by the engine)
//! and the matcher-expression checker.
//!
//! This crate lists no plugin's options: each plugin declares them once, in its options struct,
//! and the engine's registry answers [`PluginCatalog::options_of`] from there. The crate only
//! keeps the bare names of Heka's plugin types ([`HEKA_TYPES`]), so that a Heka type this build
//! does not provide gets a clearer error than an unknown one.

use crate::plugin::Category;

/// The plugin types a build knows, and what each one accepts.
///
/// The engine implements this over its plugin registry; [`HekaCatalog`] is the default, listing
/// every plugin type of Heka v0.10.
pub trait PluginCatalog {
    /// Every known plugin type name (`"TcpInput"`, `"SandboxFilter"`, …).
    fn known_types(&self) -> &[&str];

    /// The plugin-specific options of `type_name`, besides the common options of its category
    /// ([`Category::common_options`]) and `type`. `None` means "not known here, don't check keys".
    fn options_of(&self, type_name: &str) -> Option<Vec<&str>>;

    /// The `message_matcher` a filter or output of this type uses when its section sets none.
    /// `None` (the default) means the section must set one.
    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        let _ = type_name;
        None
    }

    /// Options a section of this type must set (e.g. LogstreamerInput's `file_match`).
    fn required_options(&self, type_name: &str) -> Vec<&str> {
        let _ = type_name;
        Vec::new()
    }

    /// Whether `type_name` is known.
    fn is_known(&self, type_name: &str) -> bool {
        self.known_types().contains(&type_name)
    }
}

/// Checks a `message_matcher` expression; the engine implements it with its matcher compiler.
pub trait MatcherCheck {
    /// `Ok` if `expr` compiles, else one sentence saying what is wrong with it.
    fn check(&self, expr: &str) -> Result<(), String>;
}

impl<F: Fn(&str) -> Result<(), String>> MatcherCheck for F {
    fn check(&self, expr: &str) -> Result<(), String> {
        self(expr)
    }
}

/// A [`MatcherCheck`] that accepts every expression, for checking a config without a matcher
/// compiler at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAllMatchers;

impl MatcherCheck for AcceptAllMatchers {
    fn check(&self, _expr: &str) -> Result<(), String> {
        Ok(())
    }
}

/// The instances that exist without being declared, each named after its type (Heka registers
/// them always; a section of the same name replaces one).
pub const DEFAULT_INSTANCES: &[(&str, Category)] = &[
    ("ProtobufDecoder", Category::Decoder),
    ("ProtobufEncoder", Category::Encoder),
    ("TokenSplitter", Category::Splitter),
    ("PatternGroupingSplitter", Category::Splitter),
    ("HekaFramingSplitter", Category::Splitter),
    ("NullSplitter", Category::Splitter),
];

/// SandboxManagerFilter's matcher when its section sets none.
pub const SANDBOX_MANAGER_MATCHER: &str = "Type == 'heka.control.sandbox'";
/// DashboardOutput's matcher when its section sets none.
pub const DASHBOARD_MATCHER: &str = "Type == 'heka.all-report' || Type == 'heka.sandbox-terminated' || Type == 'heka.sandbox-output'";

/// Every plugin type of Heka v0.10 (reference §4.4–§4.9, §6, §7.2), by name only.
pub static HEKA_TYPES: &[&str] = &[
    "NullSplitter",
    "TokenSplitter",
    "RegexSplitter",
    "PatternGroupingSplitter",
    "HekaFramingSplitter",
    "TcpInput",
    "UdpInput",
    "LogstreamerInput",
    "FilePollingInput",
    "ProcessInput",
    "HttpInput",
    "HttpListenInput",
    "StatsdInput",
    "StatAccumInput",
    "DockerLogInput",
    "SandboxInput",
    "AMQPInput",
    "KafkaInput",
    "DockerEventInput",
    "DockerStatsInput",
    "ProcessDirectoryInput",
    "ProtobufDecoder",
    "PayloadRegexDecoder",
    "PayloadXmlDecoder",
    "SandboxDecoder",
    "MultiDecoder",
    "ScribbleDecoder",
    "GeoIpDecoder",
    "StatsToFieldsDecoder",
    "CounterFilter",
    "StatFilter",
    "SandboxFilter",
    "SandboxManagerFilter",
    "TcpOutput",
    "UdpOutput",
    "FileOutput",
    "LogOutput",
    "HttpOutput",
    "ElasticSearchOutput",
    "CarbonOutput",
    "NagiosOutput",
    "DashboardOutput",
    "WhisperOutput",
    "SandboxOutput",
    "AMQPOutput",
    "KafkaOutput",
    "IrcOutput",
    "SmtpOutput",
    "ProtobufEncoder",
    "PayloadEncoder",
    "ESJsonEncoder",
    "RstEncoder",
    "SandboxEncoder",
];

/// A catalog of every Heka v0.10 type name, with no option lists: it checks type names and
/// default matchers, not keys. What `hekate check` uses is the engine's registry, which knows
/// the options of every plugin it provides.
#[derive(Debug, Clone, Copy, Default)]
pub struct HekaCatalog;

impl PluginCatalog for HekaCatalog {
    fn known_types(&self) -> &[&str] {
        HEKA_TYPES
    }

    fn options_of(&self, _type_name: &str) -> Option<Vec<&str>> {
        None
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        match type_name {
            "SandboxManagerFilter" => Some(SANDBOX_MANAGER_MATCHER),
            "DashboardOutput" => Some(DASHBOARD_MATCHER),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_heka_type_has_a_category_and_is_listed_once() {
        for (i, name) in HEKA_TYPES.iter().enumerate() {
            assert!(Category::of_type(name).is_some(), "{name}");
            assert!(!HEKA_TYPES[..i].contains(name), "{name} listed twice");
        }
    }

    #[test]
    fn default_instances_are_known_types() {
        for (name, category) in DEFAULT_INSTANCES {
            assert!(HekaCatalog.is_known(name));
            assert_eq!(Category::of_type(name), Some(*category));
        }
    }
}

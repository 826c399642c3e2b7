//! What the config is checked against: the plugin types a build can run (injected by the engine)
//! and the matcher-expression checker. A default catalog of every Heka type lets `hekate check`
//! flag unknown types and keys before any plugin exists.

use std::sync::LazyLock;

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
    fn options_of(&self, type_name: &str) -> Option<&[&str]>;

    /// The `message_matcher` a filter or output of this type uses when its section sets none.
    /// `None` (the default) means the section must set one.
    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        let _ = type_name;
        None
    }

    /// Options a section of this type must set (e.g. LogstreamerInput's `file_match`).
    fn required_options(&self, type_name: &str) -> &[&str] {
        let _ = type_name;
        &[]
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

/// What the default catalog knows about one plugin type.
#[derive(Debug, Clone, Copy)]
pub struct PluginSpec {
    /// The Heka type name.
    pub type_name: &'static str,
    /// Plugin-specific options; `None` = not listed, keys are not checked.
    pub options: Option<&'static [&'static str]>,
    /// Options the section must set.
    pub required: &'static [&'static str],
    /// Matcher used when the section sets none (filters and outputs).
    pub default_matcher: Option<&'static str>,
}

const fn spec(type_name: &'static str, options: &'static [&'static str]) -> PluginSpec {
    PluginSpec {
        type_name,
        options: Some(options),
        required: &[],
        default_matcher: None,
    }
}

const fn unlisted(type_name: &'static str) -> PluginSpec {
    PluginSpec {
        type_name,
        options: None,
        required: &[],
        default_matcher: None,
    }
}

const fn requiring(mut s: PluginSpec, required: &'static [&'static str]) -> PluginSpec {
    s.required = required;
    s
}

const fn matching(mut s: PluginSpec, matcher: &'static str) -> PluginSpec {
    s.default_matcher = Some(matcher);
    s
}

/// Options of every Lua sandbox plugin (reference §5.6).
macro_rules! sandbox_options {
    ($($extra:literal),*) => {
        &[
            "script_type", "filename", "preserve_data", "memory_limit", "instruction_limit",
            "output_limit", "module_directory", "config", "profile" $(, $extra)*
        ]
    };
}

/// Every Heka v0.10 plugin type (reference §4.4–§4.9, §6, §7.2).
pub static HEKA_PLUGINS: &[PluginSpec] = &[
    // Splitters
    spec("NullSplitter", &[]),
    spec("TokenSplitter", &["delimiter", "count"]),
    spec("RegexSplitter", &["delimiter", "delimiter_eol"]),
    spec(
        "PatternGroupingSplitter",
        &["delimiter", "grouping", "max_lines"],
    ),
    spec("HekaFramingSplitter", &["signer", "skip_authentication"]),
    // Inputs
    requiring(
        spec(
            "TcpInput",
            &[
                "address",
                "net",
                "use_tls",
                "tls",
                "keep_alive",
                "keep_alive_period",
                "signer",
            ],
        ),
        &["address"],
    ),
    requiring(
        spec("UdpInput", &["address", "net", "signer", "set_hostname"]),
        &["address"],
    ),
    requiring(
        spec(
            "LogstreamerInput",
            &[
                "log_directory",
                "file_match",
                "priority",
                "differentiator",
                "translation",
                "oldest_duration",
                "journal_directory",
                "rescan_interval",
                "check_data_interval",
                "initial_tail",
                "hostname",
            ],
        ),
        &["file_match"],
    ),
    requiring(spec("FilePollingInput", &["file_path"]), &["file_path"]),
    requiring(
        spec(
            "ProcessInput",
            &[
                "command",
                "immediate_start",
                "stdout",
                "stderr",
                "timeout",
                "trim",
            ],
        ),
        &["command"],
    ),
    spec(
        "HttpInput",
        &[
            "url",
            "urls",
            "method",
            "body",
            "user",
            "password",
            "headers",
            "success_severity",
            "error_severity",
        ],
    ),
    spec(
        "HttpListenInput",
        &[
            "address",
            "headers",
            "request_headers",
            "auth_type",
            "username",
            "password",
            "api_key",
            "use_tls",
            "tls",
        ],
    ),
    spec(
        "StatsdInput",
        &["address", "stat_accum_name", "max_msg_size"],
    ),
    spec(
        "StatAccumInput",
        &[
            "emit_in_payload",
            "emit_in_fields",
            "percent_threshold",
            "message_type",
            "legacy_namespaces",
            "global_prefix",
            "counter_prefix",
            "timer_prefix",
            "gauge_prefix",
            "statsd_prefix",
            "delete_idle_stats",
        ],
    ),
    spec(
        "DockerLogInput",
        &[
            "endpoint",
            "cert_path",
            "name_from_env_var",
            "fields_from_env",
            "fields_from_labels",
            "since_path",
            "since_interval",
            "container_expiry_days",
            "new_containers_replay_logs",
        ],
    ),
    requiring(spec("SandboxInput", sandbox_options!()), &["filename"]),
    unlisted("AMQPInput"),
    unlisted("KafkaInput"),
    unlisted("DockerEventInput"),
    unlisted("DockerStatsInput"),
    unlisted("ProcessDirectoryInput"),
    // Decoders
    spec("ProtobufDecoder", &[]),
    requiring(
        spec(
            "PayloadRegexDecoder",
            &[
                "match_regex",
                "severity_map",
                "message_fields",
                "timestamp_layout",
                "timestamp_location",
                "log_errors",
            ],
        ),
        &["match_regex"],
    ),
    requiring(
        spec(
            "PayloadXmlDecoder",
            &[
                "xpath_map",
                "severity_map",
                "message_fields",
                "timestamp_layout",
                "timestamp_location",
            ],
        ),
        &["xpath_map"],
    ),
    requiring(spec("SandboxDecoder", sandbox_options!()), &["filename"]),
    requiring(
        spec(
            "MultiDecoder",
            &["subs", "cascade_strategy", "log_sub_errors"],
        ),
        &["subs"],
    ),
    spec("ScribbleDecoder", &["message_fields"]),
    spec(
        "GeoIpDecoder",
        &["db_file", "source_ip_field", "target_field"],
    ),
    spec("StatsToFieldsDecoder", &[]),
    // Filters
    spec("CounterFilter", &[]),
    spec("StatFilter", &["Metric", "stat_accum_name"]),
    requiring(
        spec("SandboxFilter", sandbox_options!("timer_event_on_shutdown")),
        &["filename"],
    ),
    matching(
        spec(
            "SandboxManagerFilter",
            &[
                "max_filters",
                "working_directory",
                "module_directory",
                "memory_limit",
                "instruction_limit",
                "output_limit",
            ],
        ),
        SANDBOX_MANAGER_MATCHER,
    ),
    // Outputs
    requiring(
        spec(
            "TcpOutput",
            &[
                "address",
                "local_address",
                "use_tls",
                "tls",
                "keep_alive",
                "keep_alive_period",
                "reconnect_after",
            ],
        ),
        &["address"],
    ),
    requiring(
        spec(
            "UdpOutput",
            &["net", "address", "local_address", "max_message_size"],
        ),
        &["address"],
    ),
    requiring(
        spec(
            "FileOutput",
            &[
                "path",
                "perm",
                "folder_perm",
                "flush_interval",
                "flush_count",
                "flush_operator",
                "rotation_interval",
            ],
        ),
        &["path"],
    ),
    requiring(spec("LogOutput", &[]), &["encoder"]),
    requiring(
        spec(
            "HttpOutput",
            &[
                "address",
                "method",
                "username",
                "password",
                "headers",
                "http_timeout",
                "tls",
            ],
        ),
        &["address"],
    ),
    spec(
        "ElasticSearchOutput",
        &[
            "server",
            "flush_interval",
            "flush_count",
            "connect_timeout",
            "http_timeout",
            "http_disable_keepalives",
            "username",
            "password",
            "tls",
        ],
    ),
    spec("CarbonOutput", &["address", "protocol", "tcp_keep_alive"]),
    spec(
        "NagiosOutput",
        &[
            "url",
            "username",
            "password",
            "response_header_timeout",
            "nagios_service_description",
            "nagios_host",
            "send_nsca_bin",
            "send_nsca_args",
            "send_nsca_timeout",
            "use_tls",
            "tls",
        ],
    ),
    matching(
        spec(
            "DashboardOutput",
            &[
                "address",
                "working_directory",
                "static_directory",
                "headers",
            ],
        ),
        DASHBOARD_MATCHER,
    ),
    spec(
        "WhisperOutput",
        &[
            "base_path",
            "default_agg_method",
            "default_archive_info",
            "folder_perm",
        ],
    ),
    requiring(
        spec("SandboxOutput", sandbox_options!("timer_event_on_shutdown")),
        &["filename"],
    ),
    unlisted("AMQPOutput"),
    unlisted("KafkaOutput"),
    unlisted("IrcOutput"),
    unlisted("SmtpOutput"),
    // Encoders
    spec("ProtobufEncoder", &[]),
    spec(
        "PayloadEncoder",
        &[
            "append_newlines",
            "prefix_ts",
            "ts_from_message",
            "ts_format",
        ],
    ),
    spec(
        "ESJsonEncoder",
        &[
            "index",
            "type_name",
            "fields",
            "timestamp",
            "es_index_from_timestamp",
            "id",
            "raw_bytes_fields",
            "field_mappings",
            "dynamic_fields",
            "replace_dots_with",
        ],
    ),
    spec(
        "ESLogstashV0Encoder",
        &[
            "index",
            "type_name",
            "use_message_type",
            "fields",
            "timestamp",
            "es_index_from_timestamp",
            "id",
            "raw_bytes_fields",
            "field_mappings",
            "dynamic_fields",
            "replace_dots_with",
        ],
    ),
    spec("RstEncoder", &[]),
    requiring(spec("SandboxEncoder", sandbox_options!()), &["filename"]),
];

static HEKA_TYPE_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| HEKA_PLUGINS.iter().map(|s| s.type_name).collect());

/// The default catalog: every plugin type of Heka v0.10 with its options ([`HEKA_PLUGINS`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct HekaCatalog;

impl HekaCatalog {
    /// What the catalog knows about `type_name`.
    pub fn spec(&self, type_name: &str) -> Option<&'static PluginSpec> {
        HEKA_PLUGINS.iter().find(|s| s.type_name == type_name)
    }
}

impl PluginCatalog for HekaCatalog {
    fn known_types(&self) -> &[&str] {
        &HEKA_TYPE_NAMES
    }

    fn options_of(&self, type_name: &str) -> Option<&[&str]> {
        self.spec(type_name).and_then(|s| s.options)
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        self.spec(type_name).and_then(|s| s.default_matcher)
    }

    fn required_options(&self, type_name: &str) -> &[&str] {
        self.spec(type_name).map_or(&[], |s| s.required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_heka_type_has_a_category_and_is_listed_once() {
        for (i, spec) in HEKA_PLUGINS.iter().enumerate() {
            assert!(
                Category::of_type(spec.type_name).is_some(),
                "{}",
                spec.type_name
            );
            assert!(
                !HEKA_PLUGINS[..i]
                    .iter()
                    .any(|s| s.type_name == spec.type_name),
                "{} listed twice",
                spec.type_name
            );
        }
    }

    #[test]
    fn default_instances_are_known_types() {
        for (name, category) in DEFAULT_INSTANCES {
            assert!(HekaCatalog.is_known(name));
            assert_eq!(Category::of_type(name), Some(*category));
        }
    }

    #[test]
    fn options_do_not_repeat_common_ones() {
        for spec in HEKA_PLUGINS {
            let category = Category::of_type(spec.type_name).unwrap();
            for option in spec.options.unwrap_or(&[]) {
                assert!(
                    !category.common_options().contains(option),
                    "{} lists common option {option}",
                    spec.type_name
                );
            }
        }
    }
}

//! Validation against a plugin catalog and a matcher checker: every problem at once, each at its
//! line, with the closest known names.

use hekate_config::{
    AcceptAllMatchers, Config, ConfigError, ConfigErrors, HEKA_TYPES, HekaCatalog, MatcherCheck,
    PluginCatalog,
};
use serde::Deserialize;

/// Stands in for the engine's matcher compiler: refuses a single `=`.
fn strict_matcher(expr: &str) -> Result<(), String> {
    if expr.contains(" = ") {
        Err("expected `==` where `=` is written".into())
    } else {
        Ok(())
    }
}

/// Stands in for the engine's registry, which reads each plugin's options from its options
/// struct: every Heka type is known, and a few have their options.
struct TestCatalog;

impl PluginCatalog for TestCatalog {
    fn known_types(&self) -> &[&str] {
        HEKA_TYPES
    }

    fn options_of(&self, type_name: &str) -> Option<Vec<&str>> {
        Some(match type_name {
            "TcpInput" => vec!["address", "net", "keep_alive", "signer"],
            "SandboxFilter" => vec!["filename", "preserve_data", "memory_limit"],
            "CarbonOutput" => vec!["address", "protocol", "tcp_keep_alive"],
            "CounterFilter" | "LogOutput" => vec![],
            _ => return None,
        })
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        HekaCatalog.default_matcher(type_name)
    }

    fn required_options(&self, type_name: &str) -> Vec<&str> {
        match type_name {
            "TcpInput" => vec!["address"],
            _ => vec![],
        }
    }
}

fn check(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_str_and_validate(text, "hekad.toml", &TestCatalog, &strict_matcher)
}

fn errors(text: &str) -> Vec<ConfigError> {
    match check(text) {
        Ok(_) => panic!("should fail:\n{text}"),
        Err(e) => e.into_vec(),
    }
}

fn only_error(text: &str) -> ConfigError {
    let mut e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.pop().unwrap()
}

const TEN_MISTAKES: &str = r#"[hekad]
maxprocs = 2
max_mesage_size = 1024
worker_cores = [1, -2]

[tcp]
type = "TcpImput"
address = ":5565"

[logs]
type = "LogstreamerInput"
file_match = 'access\.log'
decoder = "nginx_decoder"
ticker_interval = "abc"

[counter]
type = "CounterFilter"

[sandbox]
type = "SandboxFilter"
filename = "x.lua"
message_matcher = "Type = 'x'"
preserv_data = true

[out]
type = "FileOutput"
path = "/tmp/x"
message_matcher = "TRUE"
encoder = "JsonEncoder"
  [out.buffering]
  full_action = "explode"
"#;

#[test]
fn ten_mistakes_give_ten_located_errors() {
    let e = errors(TEN_MISTAKES);
    let found: Vec<(usize, &str)> = e
        .iter()
        .map(|e| (e.line.unwrap(), e.message.as_str()))
        .collect();
    let expected: [(usize, &str); 10] = [
        (
            3,
            "unknown option `max_mesage_size` in section [hekad]; did you mean `max_message_size`?",
        ),
        (
            4,
            "core ids in `worker_cores` of section [hekad] must be non-negative integers, not the integer -2",
        ),
        (
            7,
            "unknown plugin type `TcpImput` in section [tcp]; did you mean `TcpInput`?",
        ),
        (
            13,
            "decoder `nginx_decoder` used by section [logs] is not defined; defined decoders: ProtobufDecoder",
        ),
        (
            14,
            "`ticker_interval` in section [logs] must be a whole number of seconds, not the string \"abc\"",
        ),
        (
            16,
            "section [counter] (CounterFilter) has no `message_matcher`; a filter receives only the messages its matcher selects",
        ),
        (
            22,
            "invalid `message_matcher` in section [sandbox]: expected `==` where `=` is written",
        ),
        (
            23,
            "unknown option `preserv_data` in section [sandbox] (SandboxFilter); did you mean `preserve_data`?",
        ),
        (
            29,
            "encoder `JsonEncoder` used by section [out] is not defined; defined encoders: ProtobufEncoder",
        ),
        (
            31,
            "`full_action` in section [out.buffering] must be one of \"shutdown\", \"drop\", \"block\", not \"explode\"",
        ),
    ];
    assert_eq!(found, expected, "\n{}", ConfigErrors::new(e.clone()));
    assert!(
        e.iter()
            .all(|e| e.file == "hekad.toml" && e.column.is_some())
    );
}

#[test]
fn misspelled_types_get_suggestions() {
    let e = only_error("[es]\ntype = 'ElasticsearchOutput'\nmessage_matcher = 'TRUE'\n");
    assert_eq!(
        e.message,
        "unknown plugin type `ElasticsearchOutput` in section [es]; did you mean `ElasticSearchOutput`?"
    );
    assert_eq!((e.line, e.column), (Some(2), Some(8)));

    // Type taken from the section name.
    let e = only_error("[LogstreamInput]\nfile_match = 'x'\n");
    assert!(
        e.message.ends_with("did you mean `LogstreamerInput`?"),
        "{e}"
    );
    assert_eq!(e.line, Some(1));

    // Nothing close: the known types of the category are listed.
    let e = only_error("[q]\ntype = 'QuantumEncoder'\n");
    assert!(
        e.message
            .contains("known encoder types: ProtobufEncoder, PayloadEncoder"),
        "{e}"
    );
}

#[test]
fn misspelled_keys_get_suggestions() {
    let e = only_error("[tcp]\ntype = 'TcpInput'\nadress = ':5565'\naddress = ':5566'\n");
    assert_eq!(
        e.message,
        "unknown option `adress` in section [tcp] (TcpInput); did you mean `address`?"
    );
    assert_eq!((e.line, e.column), (Some(3), Some(1)));

    // The misspelled matcher is flagged, and so is the matcher it leaves missing.
    let e = errors("[c]\ntype = 'CounterFilter'\nmessage_mather = 'TRUE'\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].message.contains("has no `message_matcher`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].message.contains("did you mean `message_matcher`?"),
        "{}",
        e[1]
    );
}

#[test]
fn unknown_keys_without_a_close_match_list_the_options() {
    let e = only_error("[f]\ntype = 'CarbonOutput'\nmessage_matcher = 'TRUE'\nzzz = 1\n");
    assert_eq!(
        e.message,
        "unknown option `zzz` in section [f] (CarbonOutput); CarbonOutput options are: address, protocol, tcp_keep_alive"
    );
}

#[test]
fn subsection_keys_are_checked() {
    let e = only_error(
        "[o]\ntype = 'TcpOutput'\naddress = 'x:1'\nmessage_matcher = 'TRUE'\n[o.retries]\nmax_dealy = '1s'\n",
    );
    assert_eq!(e.line, Some(6));
    assert!(
        e.message
            .contains("in section [o.retries]; did you mean `max_delay`?"),
        "{e}"
    );
}

#[test]
fn references_must_name_sections_of_the_right_category() {
    let e = only_error("[in]\ntype = 'TcpInput'\naddress = ':1'\ndecoder = 'TokenSplitter'\n");
    assert_eq!(
        e.message,
        "section [in] uses `TokenSplitter` as its decoder, but [TokenSplitter] is a splitter (TokenSplitter)"
    );
    assert_eq!(e.line, Some(4));

    let e = only_error(
        "[json]\ntype = 'SandboxDecoder'\nfilename = 'j.lua'\n[in]\ntype = 'UdpInput'\naddress = ':1'\ndecoder = 'jsn'\nsplitter = 'NullSplitter'\n",
    );
    assert!(e.message.ends_with("did you mean `json`?"), "{e}");

    // Declared sections and default instances both count.
    check(
        "[d]\ntype = 'PayloadRegexDecoder'\nmatch_regex = '(?P<x>.)'\n[in]\ntype = 'UdpInput'\naddress = ':1'\ndecoder = 'd'\nsplitter = 'HekaFramingSplitter'\n",
    )
    .unwrap();
}

#[test]
fn multi_decoder_subs_are_checked() {
    let text = r#"
[multi]
type = "MultiDecoder"
subs = ["ProtobufDecoder", "missing", 7]

[a]
type = "MultiDecoder"
subs = ["b"]

[b]
type = "MultiDecoder"
subs = ["a"]

[me]
type = "MultiDecoder"
subs = ["me"]
"#;
    let e = errors(text);
    let found: Vec<(usize, &str)> = e
        .iter()
        .map(|e| (e.line.unwrap(), e.message.as_str()))
        .collect();
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(found[0].0, 4);
    assert!(
        found[0]
            .1
            .starts_with("decoder `missing` used by section [multi]")
    );
    assert_eq!(
        found[1],
        (
            4,
            "`subs` in section [multi] must list decoder names, not an integer"
        )
    );
    assert_eq!(
        found[2],
        (8, "MultiDecoder sections form a cycle: a -> b -> a")
    );
    assert_eq!(found[3], (16, "MultiDecoder [me] lists itself in `subs`"));
}

#[test]
fn default_matchers_make_message_matcher_optional() {
    check("[SandboxManagerFilter]\nmax_filters = 5\n[DashboardOutput]\nticker_interval = 5\n")
        .unwrap();
    let e = only_error("[LogOutput]\nencoder = 'ProtobufEncoder'\n");
    assert!(e.message.contains("has no `message_matcher`"), "{e}");
    let e = only_error("[tcp]\ntype = 'TcpInput'\n");
    assert_eq!(
        e.message,
        "section [tcp] (TcpInput) is missing the required option `address`"
    );
}

#[test]
fn stat_accumulator_must_exist() {
    let e = only_error("[StatsdInput]\naddress = ':8125'\n");
    assert!(e.message.contains("no StatAccumInput section"), "{e}");
    check("[StatsdInput]\naddress = ':8125'\n[StatAccumInput]\nticker_interval = 10\n").unwrap();
}

#[test]
fn load_errors_and_validation_errors_come_together() {
    let e = errors("[hekad]\nmaxprocs = 'x'\n[o]\ntype = 'FileOutput'\npath = 'p'\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].line, Some(2));
    assert_eq!(e[1].line, Some(3));
}

#[test]
fn a_custom_catalog_replaces_the_heka_one() {
    #[derive(Debug)]
    struct OnlyNull;
    impl PluginCatalog for OnlyNull {
        fn known_types(&self) -> &[&str] {
            &["NullSplitter", "FooOutput"]
        }
        fn options_of(&self, type_name: &str) -> Option<Vec<&str>> {
            (type_name == "FooOutput").then(|| vec!["bar"])
        }
        fn default_matcher(&self, _type_name: &str) -> Option<&str> {
            Some("TRUE")
        }
    }
    let text =
        "[x]\ntype = 'FooOutput'\nbar = 1\n[y]\ntype = 'TcpInput'\n[z]\ntype = 'BazOutput'\n";
    let e =
        Config::from_str_and_validate(text, "c.toml", &OnlyNull, &AcceptAllMatchers).unwrap_err();
    assert_eq!(e.len(), 2, "{e}");
    assert!(
        e.errors()[1]
            .message
            .starts_with("unknown plugin type `BazOutput`"),
        "{e}"
    );
    assert!(
        e.errors()[0]
            .message
            .starts_with("Heka plugin type `TcpInput` is not provided by this build"),
        "{e}"
    );
}

#[test]
fn validate_can_run_on_a_loaded_config() {
    let config = Config::from_str(
        "[c]\ntype = 'CounterFilter'\nmessage_matcher = 'x = 1'\n",
        "c.toml",
    )
    .unwrap();
    let matcher: &dyn MatcherCheck = &strict_matcher;
    let e = config.validate(&HekaCatalog, matcher).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c.toml:3:19: invalid `message_matcher` in section [c]: expected `==` where `=` is written"
    );
    config.validate(&HekaCatalog, &AcceptAllMatchers).unwrap();
}

/// A plugin's own options struct.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FileOutputOptions {
    path: String,
    #[serde(default)]
    flush_count: u32,
}

#[test]
fn plugin_option_errors_carry_the_line() {
    let config = Config::from_str(
        "[out]\ntype = 'FileOutput'\nmessage_matcher = 'TRUE'\npath = '/x'\n\nflush_count = -4\n",
        "c.toml",
    )
    .unwrap();
    let err = config
        .plugin("out")
        .unwrap()
        .options::<FileOutputOptions>()
        .unwrap_err();
    assert_eq!((err.line, err.column), (Some(6), Some(15)));
    assert!(err.message.ends_with("in section [out]"), "{err}");

    let config =
        Config::from_str("[out]\ntype = 'FileOutput'\nflush_cuont = 1\n", "c.toml").unwrap();
    let err = config
        .plugin("out")
        .unwrap()
        .options::<FileOutputOptions>()
        .unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(
        err.message.starts_with("unknown field `flush_cuont`"),
        "{err}"
    );

    let config = Config::from_str("[out]\ntype = 'FileOutput'\n", "c.toml").unwrap();
    let err = config
        .plugin("out")
        .unwrap()
        .options::<FileOutputOptions>()
        .unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.message.contains("missing field `path`"), "{err}");
}

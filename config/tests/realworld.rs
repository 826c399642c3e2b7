//! A realistic Heka v0.10 config loads and validates clean, and its values come out typed.

use std::collections::BTreeMap;
use std::time::Duration;

use hekate_config::{AcceptAllMatchers, Category, Config, FullAction, HekaCatalog, PluginSection};
use serde::Deserialize;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/realworld.toml");

fn load() -> Config {
    match Config::load_and_validate(PATH, &HekaCatalog, &AcceptAllMatchers) {
        Ok(config) => config,
        Err(errors) => panic!("realworld.toml should load clean:\n{errors}"),
    }
}

fn plugin<'a>(config: &'a Config, name: &str) -> &'a PluginSection {
    config
        .plugin(name)
        .unwrap_or_else(|| panic!("no section [{name}]"))
}

#[test]
fn loads_clean_with_hekad_globals() {
    let config = load();
    let g = &config.global;
    assert_eq!(g.maxprocs, 4);
    assert_eq!(g.poolsize, 200);
    assert_eq!(g.max_message_size, 1_048_576);
    assert_eq!(g.max_pack_idle, Duration::from_secs(300));
    assert_eq!(g.hostname, "web-01.example.org");
    // Untouched options keep Heka's defaults.
    assert_eq!(g.max_message_loops, 4);
    assert_eq!(g.plugin_chansize, 30);
}

#[test]
fn sections_get_names_types_and_categories() {
    let config = load();
    let declared: Vec<(&str, &str, Category)> = config
        .plugins
        .iter()
        .filter(|p| !p.is_default_instance())
        .map(|p| (p.name(), p.type_name(), p.category()))
        .collect();
    assert_eq!(
        declared,
        [
            ("TCP:5565", "TcpInput", Category::Input),
            ("nginx_access_logs", "LogstreamerInput", Category::Input),
            ("nginx_access_decoder", "SandboxDecoder", Category::Decoder),
            ("http_status", "SandboxFilter", Category::Filter),
            ("ESJsonEncoder", "ESJsonEncoder", Category::Encoder),
            (
                "ElasticSearchOutput",
                "ElasticSearchOutput",
                Category::Output
            ),
            ("DashboardOutput", "DashboardOutput", Category::Output),
            ("upstream", "TcpOutput", Category::Output),
        ]
    );
    // The default instances exist without being declared.
    for name in [
        "ProtobufDecoder",
        "ProtobufEncoder",
        "TokenSplitter",
        "HekaFramingSplitter",
    ] {
        assert!(plugin(&config, name).is_default_instance(), "{name}");
    }
}

#[test]
fn common_options_are_typed() {
    let config = load();
    let tcp = plugin(&config, "TCP:5565").input().unwrap();
    assert_eq!(tcp.decoder.as_deref(), Some("ProtobufDecoder"));
    assert_eq!(tcp.splitter.as_deref(), Some("HekaFramingSplitter"));
    assert_eq!(tcp.retries.max_delay, Duration::from_secs(60));
    assert_eq!(tcp.retries.delay, Duration::from_millis(250));
    assert_eq!(tcp.retries.max_retries, Some(10));

    let filter = plugin(&config, "http_status").filter().unwrap();
    assert_eq!(filter.ticker_interval, Some(Duration::from_secs(60)));
    assert_eq!(
        filter.message_matcher.as_deref(),
        Some("Type == 'logfile' && Logger == 'nginx.access'")
    );

    let es = plugin(&config, "ElasticSearchOutput").output().unwrap();
    assert_eq!(es.encoder.as_deref(), Some("ESJsonEncoder"));
    assert_eq!(es.use_buffering, Some(true));
    let buffering = es.buffering.unwrap();
    assert_eq!(buffering.max_file_size, 268_435_456);
    assert_eq!(buffering.max_buffer_size, Some(1 << 30));
    assert_eq!(buffering.full_action, FullAction::Block);
    assert_eq!(buffering.cursor_update_count, 100);

    let dashboard = plugin(&config, "DashboardOutput").output().unwrap();
    assert_eq!(dashboard.message_matcher, None);
    assert_eq!(dashboard.ticker_interval, Some(Duration::from_secs(15)));
}

/// TcpInput's own options, as the plugin would declare them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpInputOptions {
    address: String,
    #[serde(default)]
    keep_alive: bool,
    keep_alive_period: Option<u64>,
    #[serde(default)]
    signer: BTreeMap<String, Signer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signer {
    hmac_key: String,
}

#[test]
fn plugins_deserialize_their_own_options() {
    let config = load();
    let tcp: TcpInputOptions = plugin(&config, "TCP:5565").options().unwrap();
    assert_eq!(tcp.address, "0.0.0.0:5565");
    assert!(tcp.keep_alive);
    assert_eq!(tcp.keep_alive_period, Some(300));
    assert_eq!(
        tcp.signer["PlatformDevs_1"].hmac_key,
        "4865ey9urgkidls xtb0[7lf9rzcivthkm"
    );

    let sandbox = plugin(&config, "http_status").plugin_values();
    let cfg = sandbox["config"].as_table().unwrap();
    assert_eq!(cfg["rows"].as_integer(), Some(1440));
    assert!(!sandbox.contains_key("message_matcher"));
    assert!(!sandbox.contains_key("type"));
}

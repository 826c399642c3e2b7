//! The hekate configs the harness runs are valid Heka configs: they pass the config crate's
//! validation against the Heka plugin catalog (plus the few types of hekate's own they use) and
//! the matcher parser, with the `%ENV` values the harness sets. (`scripts/bench` also runs `hekate check` on each before starting it, against
//! the plugins the build actually has.)

use std::fs;
use std::path::Path;

use hekate_config::{Config, HEKA_TYPES, HekaCatalog, PluginCatalog};
use hekate_model::matcher::MatcherSpec;

const VARS: &[(&str, &str)] = &[
    ("BENCH_WORKER_CORES", "[1]"),
    ("BENCH_COORDINATOR_CORE", "1"),
    ("BENCH_BASE_DIR", "/tmp/hekate-bench-config-test"),
    ("BENCH_INPUT_PORT", "5565"),
    ("BENCH_SINK_PORT", "5566"),
    ("BENCH_BUFFERING", "true"),
    ("BENCH_LOG_DIR", "/tmp/hekate-bench-config-test/logs"),
    ("BENCH_RESCAN_INTERVAL", "1s"),
    ("BENCH_DECODER", "syslog"),
    (
        "BENCH_OUTPUT_FILE",
        "/tmp/hekate-bench-config-test/out.hekad",
    ),
    ("BENCH_HEKA_SHARE_DIR", "/usr/share/heka"),
    (
        "BENCH_REPORT_FILE",
        "/tmp/hekate-bench-config-test/reports.hekad",
    ),
];

/// Heka's plugin types and the types of hekate's own that the bench configs use.
struct BenchCatalog(Vec<&'static str>);

/// hekate's types that Heka does not have.
const HEKATE_TYPES: &[&str] = &["SyslogDecoder", "SyslogFramingSplitter", "JsonDecoder"];

impl BenchCatalog {
    fn new() -> Self {
        BenchCatalog(HEKA_TYPES.iter().chain(HEKATE_TYPES).copied().collect())
    }
}

impl PluginCatalog for BenchCatalog {
    fn known_types(&self) -> &[&str] {
        &self.0
    }

    fn options_of(&self, _type_name: &str) -> Option<Vec<&str>> {
        None
    }

    fn default_matcher(&self, type_name: &str) -> Option<&str> {
        HekaCatalog.default_matcher(type_name)
    }
}

fn substituted(text: &str) -> String {
    let mut t = text.to_owned();
    for (k, v) in VARS {
        t = t.replace(&format!("%ENV[{k}]"), v);
    }
    assert!(!t.contains("%ENV["), "a variable the harness does not set");
    t
}

fn matcher_ok(expr: &str) -> Result<(), String> {
    MatcherSpec::parse(expr)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn every_bench_config_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = substituted(&fs::read_to_string(&path).unwrap());
        let origin = path.display().to_string();
        if let Err(errors) =
            Config::from_str_and_validate(&text, &origin, &BenchCatalog::new(), &matcher_ok)
        {
            panic!("{errors}");
        }
        seen += 1;
    }
    assert!(seen >= 3);
}

/// The sections of a config other than `[out]` (and its subsections), without comments, in order.
fn sections_but_out(text: &str) -> Vec<String> {
    let mut sections: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            sections.push(String::new());
        }
        if let Some(s) = sections.last_mut() {
            s.push_str(line);
            s.push('\n');
        }
    }
    sections.retain(|s| !s.starts_with("[out]") && !s.starts_with("[out."));
    sections
}

#[test]
fn the_route_variants_differ_only_in_their_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let read = |name: &str| sections_but_out(&fs::read_to_string(dir.join(name)).unwrap());
    let tcp = read("route-tcp.toml");
    assert_eq!(
        tcp.len(),
        11,
        "[hekate], [in] and nine matchers besides [out]"
    );
    assert_eq!(tcp, read("route-file.toml"));
    assert_eq!(tcp, read("route-null.toml"));
}

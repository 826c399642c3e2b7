//! Loading: defaults, the `[hekad]` alias, `%ENV[NAME]`, directories, and typed global options.

use std::path::PathBuf;
use std::time::Duration;

use hekate_config::{
    Category, Config, ConfigErrors, CoordinatorCore, CoreLayout, GlobalConfig, LogLevel,
};

fn load(text: &str) -> Config {
    Config::from_str(text, "test.toml").unwrap_or_else(|e| panic!("should load:\n{e}"))
}

fn errors(text: &str) -> ConfigErrors {
    match Config::from_str(text, "test.toml") {
        Ok(_) => panic!("should fail:\n{text}"),
        Err(e) => e,
    }
}

/// A fresh, empty directory under cargo's scratch space for integration tests.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hekate-config-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn empty_config_has_heka_defaults() {
    let config = load("");
    let g = &config.global;
    assert_eq!(g.maxprocs, 1);
    assert_eq!(g.poolsize, 100);
    assert_eq!(g.plugin_chansize, 30);
    assert_eq!(g.max_message_loops, 4);
    assert_eq!(g.max_process_inject, 1);
    assert_eq!(g.max_process_duration, Duration::from_micros(100));
    assert_eq!(g.max_timer_inject, 10);
    assert_eq!(g.max_pack_idle, Duration::from_secs(120));
    assert_eq!(g.base_dir, PathBuf::from("/var/cache/hekad"));
    assert_eq!(g.share_dir, PathBuf::from("/usr/share/heka"));
    assert_eq!(g.sample_denominator, 1000);
    assert_eq!(g.pid_file, None);
    assert!(!g.hostname.is_empty());
    assert_eq!(g.max_message_size, 65536);
    assert_eq!(g.log_flags, 3);
    assert_eq!(g.log_level, LogLevel::Info);
    assert_eq!(g.full_buffer_max_retries, 10);
    assert_eq!(g.worker_cores, CoreLayout::Auto);
    assert_eq!(g.coordinator_core, CoordinatorCore::Auto);
    assert_eq!(g.io_memory, None);
    assert_eq!(g.ring_capacity, 1024);
    assert_eq!(g.batch_size, 64);
    assert_eq!(g.report_interval, Duration::from_secs(60));
    assert_eq!(*g, GlobalConfig::default());
}

#[test]
fn default_instances_exist_and_can_be_replaced() {
    let config = load("");
    let names: Vec<&str> = config.plugins.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "ProtobufDecoder",
            "ProtobufEncoder",
            "TokenSplitter",
            "PatternGroupingSplitter",
            "HekaFramingSplitter",
            "NullSplitter"
        ]
    );
    assert!(config.plugins.iter().all(|p| p.is_default_instance()));

    let config = load("[TokenSplitter]\ndelimiter = \"\\r\"\n");
    let splitter = config.plugin("TokenSplitter").unwrap();
    assert!(!splitter.is_default_instance());
    assert_eq!(
        splitter.get("delimiter").and_then(|v| v.as_str()),
        Some("\r")
    );
    assert_eq!(
        config
            .plugins
            .iter()
            .filter(|p| p.name() == "TokenSplitter")
            .count(),
        1
    );
}

#[test]
fn hekate_section_sets_hekate_options() {
    let config = load(
        r#"
[hekate]
worker_cores = [1, 2, 3]
coordinator_core = 0
io_memory = "2MiB"
ring_capacity = 4096
batch_size = 128
report_interval = "30s"
max_process_duration = 250000
pid_file = "/run/hekate.pid"
cpuprof = "/tmp/cpu.prof"
"#,
    );
    let g = &config.global;
    assert_eq!(g.worker_cores, CoreLayout::Cores(vec![1, 2, 3]));
    assert_eq!(g.coordinator_core, CoordinatorCore::Core(0));
    assert_eq!(g.io_memory, Some(2 << 20));
    assert_eq!(g.ring_capacity, 4096);
    assert_eq!(g.batch_size, 128);
    assert_eq!(g.report_interval, Duration::from_secs(30));
    assert_eq!(g.max_process_duration, Duration::from_micros(250));
    assert_eq!(g.pid_file, Some(PathBuf::from("/run/hekate.pid")));

    let g =
        load("[hekate]\nio_memory = 1048576\nreport_interval = 5\nworker_cores = 'auto'\n").global;
    assert_eq!(g.io_memory, Some(1 << 20));
    assert_eq!(g.report_interval, Duration::from_secs(5));
    assert_eq!(g.worker_cores, CoreLayout::Auto);
}

#[test]
fn hekad_is_an_alias_of_hekate() {
    let a = load("[hekad]\nmaxprocs = 8\nhostname = 'h1'\n").global;
    let b = load("[hekate]\nmaxprocs = 8\nhostname = 'h1'\n").global;
    assert_eq!(a, b);
    assert_eq!(a.maxprocs, 8);

    let e = errors("[hekad]\nmaxprocs = 2\n\n[hekate]\nmaxprocs = 3\n");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.errors()[0].line, Some(4));
    assert!(
        e.errors()[0].message.contains("both [hekad] and [hekate]"),
        "{e}"
    );
}

#[test]
fn global_section_errors_are_located() {
    let e = errors(
        "[hekate]\nworker_cores = [0, 1, 1, -3]\ncoordinator_core = 'atuo'\nmax_message_size = 0\nmax_proces_inject = 2\nbatch_size = 'many'\n",
    );
    let found: Vec<(Option<usize>, &str)> =
        e.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(found.len(), 6, "{e}");
    assert_eq!(found[0].0, Some(2));
    assert!(found[0].1.contains("core 1 appears twice"), "{e}");
    assert!(
        found[1]
            .1
            .contains("non-negative integers, not the integer -3"),
        "{e}"
    );
    assert_eq!(found[2].0, Some(3));
    assert!(found[2].1.contains("did you mean `auto`?"), "{e}");
    assert_eq!(found[3].0, Some(4));
    assert!(found[3].1.contains("`max_message_size`"), "{e}");
    assert_eq!(found[4].0, Some(5));
    assert!(
        found[4].1.contains("did you mean `max_process_inject`?"),
        "{e}"
    );
    assert_eq!(found[5].0, Some(6));
}

#[test]
fn env_substitution() {
    // Cargo sets CARGO_MANIFEST_DIR for the test process.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let config = load("[hekad]\nshare_dir = \"%ENV[CARGO_MANIFEST_DIR]/share\"\n");
    assert_eq!(
        config.global.share_dir,
        PathBuf::from(format!("{dir}/share"))
    );
}

#[test]
fn env_substitution_errors() {
    let e = errors("[hekad]\nhostname = \"%ENV[HEKATE_CONFIG_TEST_SURELY_UNSET]\"\n");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(
        (e.errors()[0].line, e.errors()[0].column),
        (Some(2), Some(13))
    );
    assert!(
        e.errors()[0]
            .message
            .contains("`HEKATE_CONFIG_TEST_SURELY_UNSET`"),
        "{e}"
    );

    let e = errors("[hekad]\nhostname = \"%ENV[UNCLOSED\"\n");
    assert!(e.errors()[0].message.contains("no closing `]`"), "{e}");

    let e = errors("[hekad]\nhostname = \"%ENV[TWO WORDS]\"\n");
    assert_eq!(e.len(), 1, "{e}");
    assert!(
        e.errors()[0].message.contains("may not contain spaces"),
        "{e}"
    );
}

#[test]
fn directory_files_merge_in_alphabetical_order() {
    let dir = scratch_dir("merge");
    std::fs::write(
        dir.join("10-global.toml"),
        "[hekad]\nmaxprocs = 2\npoolsize = 50\n\n[counter]\ntype = 'CounterFilter'\nmessage_matcher = 'TRUE'\nticker_interval = 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("20-override.toml"),
        "[hekad]\nmaxprocs = 4\n\n[counter]\ntype = 'CounterFilter'\nmessage_matcher = \"Type == 'x'\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("05-input.toml"), "[TcpInput]\naddress = ':5565'\n").unwrap();
    std::fs::write(dir.join("README.md"), "not toml [").unwrap();

    let config = Config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    // Global keys merge key by key; the later file wins.
    assert_eq!(config.global.maxprocs, 4);
    assert_eq!(config.global.poolsize, 50);
    // A later section of the same name replaces the earlier one whole.
    let counter = config.plugin("counter").unwrap();
    assert_eq!(counter.message_matcher(), Some("Type == 'x'"));
    assert_eq!(counter.filter().unwrap().ticker_interval, None);
    assert!(
        counter
            .source()
            .unwrap()
            .name()
            .ends_with("20-override.toml")
    );
    let files: Vec<&str> = config.sources().iter().map(|s| s.name()).collect();
    assert!(files[0].ends_with("05-input.toml") && files[2].ends_with("20-override.toml"));
    assert_eq!(config.plugins_of(Category::Input).count(), 1);

    // Errors come back in file order, each naming its file.
    std::fs::write(dir.join("30-bad.toml"), "[hekad]\nmaxprocs = 'x'\n").unwrap();
    std::fs::write(dir.join("01-bad.toml"), "[oops]\ntype = 'Nope'\n").unwrap();
    let e = Config::load(&dir).unwrap_err();
    assert_eq!(e.len(), 2, "{e}");
    assert!(e.errors()[0].file.ends_with("01-bad.toml"), "{e}");
    assert!(e.errors()[1].file.ends_with("30-bad.toml"), "{e}");
}

#[test]
fn missing_paths_and_empty_directories_are_errors() {
    let e = Config::load("/nonexistent/hekate.toml").unwrap_err();
    assert_eq!(e.errors()[0].line, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/hekate.toml: cannot read config"),
        "{e}"
    );
    let e = Config::load(scratch_dir("empty")).unwrap_err();
    assert!(e.to_string().contains("no *.toml files"), "{e}");
}

#[test]
fn syntax_errors_are_all_reported_with_lines() {
    let e = errors("[a]\ntype = 'NullSplitter'\nx = \n\n[b]\ntype = 'NullSplitter'\ny = [1,\n");
    assert!(e.len() >= 2, "{e}");
    assert!(
        e.iter().all(|e| e.message.starts_with("TOML syntax error")),
        "{e}"
    );
    assert_eq!(e.errors()[0].line, Some(3));
    assert_eq!(e.errors().last().unwrap().line, Some(7));
}

#[test]
fn heka_style_section_names_load() {
    let config = load(
        "[TCP:5565]\ntype = 'TcpInput'\naddress = ':5565'\n[TCP:5565.signer.Ops_0]\nhmac_key = 'k'\n",
    );
    let tcp = config.plugin("TCP:5565").unwrap();
    assert_eq!(tcp.type_name(), "TcpInput");
    let signer = tcp.get("signer").unwrap().as_table().unwrap();
    assert!(signer.contains_key("Ops_0"));
}

#[test]
fn top_level_values_and_bad_types_are_errors() {
    let e = errors("maxprocs = 4\n[x]\ntype = 7\n[Whatever]\n");
    let lines: Vec<Option<usize>> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(1), Some(3), Some(4)], "{e}");
    assert!(e.errors()[0].message.contains("not a section"), "{e}");
    assert!(e.errors()[1].message.contains("must be a string"), "{e}");
    assert!(
        e.errors()[2].message.contains("ends in Input, Splitter"),
        "{e}"
    );
}

#[test]
fn error_display_is_one_located_line_each() {
    let e = errors("[hekad]\nmaxprocs = 'x'\npoolsize = -1\n");
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("test.toml:2:12: `maxprocs` in section [hekad] must be"),
        "{text}"
    );
    assert!(lines[1].starts_with("test.toml:3:12: "), "{text}");
}

#[test]
fn log_level_is_read_in_any_case() {
    let config = load("[hekate]\nlog_level = \"Debug\"\n");
    assert_eq!(config.global.log_level, LogLevel::Debug);
    let config = load("[hekad]\nlog_level = \"error\"\n");
    assert_eq!(config.global.log_level, LogLevel::Error);
}

#[test]
fn an_unknown_log_level_is_refused_with_the_levels_there_are() {
    let text = errors("[hekate]\nlog_level = \"warning\"\n").to_string();
    assert!(text.contains("test.toml:2"), "{text}");
    assert!(
        text.contains("`log_level` in section [hekate]: unknown log level \"warning\"; the levels are error, warn, info, debug and trace"),
        "{text}"
    );
    let text = errors("[hekate]\nlog_level = \"eror\"\n").to_string();
    assert!(text.contains("did you mean `error`?"), "{text}");
}

//! `hekate check` on real files: a valid config passes, a broken one lists every problem.

use std::process::Command;

fn check(text: &str, name: &str) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("hekate-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hekate.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_valid_heka_config_passes() {
    let (ok, stdout, stderr) = check(
        r#"
[hekad]
maxprocs = 2
base_dir = "/tmp/hekate"

[TcpInput]
address = "127.0.0.1:5565"

[counter]
type = "CounterFilter"
message_matcher = "Type != 'heka.counter-output'"

[out]
type = "FileOutput"
path = "/tmp/hekate/out.log"
message_matcher = "Type == 'nginx' && Fields[status] >= 500 || Logger =~ /^web/"
encoder = "ProtobufEncoder"
"#,
        "valid",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("configuration is valid"), "{stdout}");
}

#[test]
fn a_broken_config_lists_every_error_with_its_line() {
    let text = r#"[hekate]
max_mesage_size = 10
worker_cores = [0, 0]

[tcp]
type = "TcpImput"

[in2]
type = "TcpInput"
address = "127.0.0.1:5566"
decoder = "nginx_decoder"

[f]
type = "CounterFilter"
message_matcher = "Type == "

[g]
type = "CounterFilter"
message_matcher = "Fields[x] =~ /unterminated"

[h]
type = "CounterFilter"

[out]
type = "FileOutput"
path = "/tmp/x"
message_matcher = "TRUE"
encoder = "NoSuchEncoder"
flush_intervall = 5

[log]
type = "LogOutput"
message_matcher = "TRUE"

[x]
type = "Frobnicator"
"#;
    let (ok, _, stderr) = check(text, "broken");
    assert!(!ok);
    let expect_lines = [
        (2, "max_mesage_size"),
        (3, "worker_cores"),
        (6, "TcpImput"),
        (11, "nginx_decoder"),
        (15, "Type =="),
        (19, "regular expression"),
        (21, "message_matcher"),
        (28, "NoSuchEncoder"),
        (29, "flush_intervall"),
        (31, "encoder"),
        (36, "Frobnicator"),
    ];
    for (line, needle) in expect_lines {
        let hit = stderr.lines().any(|l| {
            l.contains(&format!("hekate.toml:{line}:"))
                && l.to_lowercase().contains(&needle.to_lowercase())
        });
        assert!(
            hit,
            "no error naming `{needle}` on line {line} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean `TcpInput`"), "{stderr}");
}

#[test]
fn a_syntax_error_is_reported_with_its_line() {
    let (ok, _, stderr) = check("[a]\ntype = \"TcpInput\"\naddress = \n", "syntax");
    assert!(!ok);
    assert!(stderr.contains("hekate.toml:3:"), "{stderr}");
}

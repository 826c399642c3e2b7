//! `hekate cat` on real files: counts, formats, garbage between records, bad arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hekate_model::framing::{SigningKey, encode_record};
use hekate_model::message::{Field, HmacHashFunction, Message};

fn hekate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(args)
        .output()
        .expect("run hekate")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hekate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 200 messages with varied headers and fields.
fn corpus() -> Vec<Message> {
    (0..200)
        .map(|i: i64| {
            let mut m = Message::new_now();
            m.timestamp = 1_700_000_000_000_000_000 + i;
            m.r#type = Some(
                if i % 3 == 0 {
                    "nginx.access"
                } else {
                    "app.log"
                }
                .into(),
            );
            m.logger = Some(format!("web-{:02}", i % 7));
            m.severity = if i % 5 == 0 {
                None
            } else {
                Some((i % 8) as i32)
            };
            m.hostname = Some("host-a".into());
            m.payload = Some(format!(
                "request {i} {}",
                if i % 11 == 0 { "error" } else { "ok" }
            ));
            m.add_field(Field::integer("status", 200 + (i % 4) * 100));
            if i % 2 == 0 {
                m.add_field(Field::string("path", format!("/api/{}", i % 9)));
            }
            m.add_field(Field::double("duration", i as f64 / 10.0));
            m.add_field(Field::boolean("cached", i % 4 == 0));
            m
        })
        .collect()
}

fn write_stream(path: &Path, msgs: &[Message], garbage: bool) {
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if garbage && i % 17 == 3 {
            out.extend_from_slice(b"\x1e\x05garbage\x1f\x1e\x00junk");
        }
        encode_record(&m.to_bytes(), None, &mut out).unwrap();
    }
    if garbage {
        out.extend_from_slice(&[0x1e, 0x02, 0x08]); // truncated final record
    }
    std::fs::write(path, out).unwrap();
}

fn count(path: &Path, expr: &str) -> u64 {
    let out = hekate(&[
        "cat",
        "--format",
        "count",
        "--match",
        expr,
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

type Pred = fn(&Message) -> bool;

fn int_field(m: &Message, name: &str) -> Option<i64> {
    m.find_first_field(name)
        .and_then(|f| f.value_integer.first().copied())
}

#[test]
fn count_agrees_with_the_rules_with_and_without_garbage() {
    let dir = temp_dir("count");
    let msgs = corpus();
    let clean = dir.join("clean.log");
    let dirty = dir.join("dirty.log");
    write_stream(&clean, &msgs, false);
    write_stream(&dirty, &msgs, true);
    let cases: &[(&str, Pred)] = &[
        ("TRUE", |_| true),
        ("FALSE", |_| false),
        ("Type == 'nginx.access'", |m| m.r#type() == "nginx.access"),
        ("Type != 'nginx.access' && Severity == 7", |m| {
            m.r#type() != "nginx.access" && m.severity() == 7
        }),
        ("Severity < 3 || Payload =~ /error$/", |m| {
            m.severity() < 3 || m.payload().ends_with("error")
        }),
        ("Logger =~ /^web-0[12]/", |m| {
            m.logger().starts_with("web-01") || m.logger().starts_with("web-02")
        }),
        ("Fields[status] >= 400", |m| {
            int_field(m, "status").unwrap() >= 400
        }),
        ("Fields[path] == NIL", |m| {
            m.find_first_field("path").is_none()
        }),
        ("Fields[path] != NIL && Fields[path] =~ /3$/", |m| {
            m.find_first_field("path")
                .is_some_and(|f| f.value_string[0].ends_with('3'))
        }),
        ("Fields[cached] == TRUE", |m| {
            m.find_first_field("cached").unwrap().value_bool[0]
        }),
        (
            "Fields[duration] > 9.95 && (Type == 'app.log' || Fields[status] == 200)",
            |m| {
                let d = m.find_first_field("duration").unwrap().value_double[0];
                d > 9.95 && (m.r#type() == "app.log" || int_field(m, "status") == Some(200))
            },
        ),
        ("Fields[status][1] == NIL", |_| true),
        ("Fields[status][0][1] != NIL", |_| false),
        ("Hostname == 'host-a' && Pid == 0", |_| true),
    ];
    for (expr, pred) in cases {
        let want = msgs.iter().filter(|m| pred(m)).count() as u64;
        assert_eq!(count(&clean, expr), want, "clean: {expr}");
        assert_eq!(count(&dirty, expr), want, "dirty: {expr}");
    }
}

#[test]
fn corrupt_regions_are_reported_with_offset_and_length() {
    let dir = temp_dir("corrupt");
    let path = dir.join("s.log");
    let mut out = b"xyz".to_vec();
    encode_record(&corpus()[0].to_bytes(), None, &mut out).unwrap();
    out.extend_from_slice(&[0x1e, 0x02, 0x08]);
    std::fs::write(&path, &out).unwrap();
    let o = hekate(&["cat", "--format", "count", path.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipped 3 bytes of corrupt data at offset 0"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "truncated record of 3 bytes at offset {}",
            out.len() - 3
        )),
        "{err}"
    );
}

#[test]
fn invalid_protobuf_inside_a_good_frame_is_skipped_with_a_warning() {
    let dir = temp_dir("badproto");
    let path = dir.join("s.log");
    let mut out = Vec::new();
    encode_record(&[0x1a, 0x50, b'x'], None, &mut out).unwrap(); // Type claims 80 bytes
    encode_record(&corpus()[1].to_bytes(), None, &mut out).unwrap();
    std::fs::write(&path, &out).unwrap();
    let o = hekate(&["cat", "--format", "count", path.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid message"));
}

#[test]
fn json_and_text_formats_show_headers_and_fields() {
    let dir = temp_dir("formats");
    let path = dir.join("s.log");
    let msgs = corpus();
    write_stream(&path, &msgs[..3], false);
    let o = hekate(&["cat", "--format", "json", path.to_str().unwrap()]);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["Type"], "app.log");
    assert_eq!(lines[1]["Logger"], "web-01");
    assert_eq!(lines[0]["Severity"], 7);
    assert_eq!(lines[0]["Fields"][0]["name"], "status");
    assert_eq!(lines[0]["Fields"][0]["value"][0], 200);
    assert_eq!(lines[0]["Fields"][3]["value"][0], true);
    assert_eq!(
        lines[2]["Uuid"],
        hekate_model::message::uuid_string(&msgs[2].uuid)
    );

    let o = hekate(&[
        "cat",
        "--match",
        "Logger == 'web-01'",
        path.to_str().unwrap(),
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("Type: app.log"), "{text}");
    assert!(
        text.contains("Timestamp: 2023-11-14T22:13:20.000000001Z"),
        "{text}"
    );
    assert!(
        !text.contains("name: \"path\""),
        "web-01 is message 1, which has no path"
    );
    assert!(
        text.contains("| name: \"status\" type: integer value: [300]"),
        "{text}"
    );
    assert_eq!(text.matches("Type: ").count(), 1);
}

#[test]
fn signed_records_are_read() {
    let dir = temp_dir("signed");
    let path = dir.join("s.log");
    let key = SigningKey::new("ops", 1, HmacHashFunction::Sha1, b"secret");
    let mut out = Vec::new();
    for m in &corpus()[..5] {
        encode_record(&m.to_bytes(), Some(&key), &mut out).unwrap();
    }
    std::fs::write(&path, &out).unwrap();
    assert_eq!(count(&path, "TRUE"), 5);
}

#[test]
fn bad_expression_and_missing_file_fail_clearly() {
    let o = hekate(&["cat", "--match", "Type == ", "/nonexistent"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid --match expression"));
    let o = hekate(&["cat", "/nonexistent/file.log"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/file.log"));
}

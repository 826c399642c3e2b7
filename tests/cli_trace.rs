//! `hekate trace`: sample records through a configured input's splitter and decoder, and every
//! matcher's verdict on each message with the first test that failed.

mod common;

use std::process::Command;

use common::temp_dir;

const CONFIG: &str = r#"
[syslog]
type = "TcpInput"
address = "127.0.0.1:15514"
splitter = "SyslogFramingSplitter"
decoder = "SyslogDecoder"
send_decode_failures = true

[SyslogFramingSplitter]

[SyslogDecoder]
message_type = "syslog"

[errors]
type = "FileOutput"
message_matcher = "Type == 'syslog' && Severity <= 3"
path = "errors.log"

[sshd]
type = "FileOutput"
message_matcher = "Type == 'syslog' && (Fields[programname] == 'sshd' || Hostname == 'bastion')"
path = "sshd.log"

[failures]
type = "CounterFilter"
message_matcher = "Fields[decode_failure] == TRUE"
"#;

fn trace(config: &str, args: &[&str], sample: &[u8]) -> (bool, String, String) {
    let dir = temp_dir("trace");
    let path = dir.join("hekate.toml");
    std::fs::write(&path, config).unwrap();
    std::fs::write(dir.join("sample"), sample).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["trace", "-c", path.to_str().unwrap()])
        .args(args)
        .arg(dir.join("sample"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The route verdicts of the `n`th message in the output, by plugin name.
fn verdicts(out: &str, n: usize) -> std::collections::BTreeMap<String, String> {
    let block = out.split("  routes:\n").nth(n).expect("a routes block");
    block
        .lines()
        .take_while(|l| l.starts_with("    "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap().to_string();
            let _kind = parts.next();
            (name, parts.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn each_message_shows_where_it_goes_and_the_first_test_that_failed() {
    let sample = b"<34>1 2026-12-07T10:00:00.5Z web1 sshd 42 - - Failed password for root\n\
<13>Dec  7 10:00:01 web2 cron[7]: job done\n\
not syslog at all\n\
<11>Dec  7 10:00:02 bastion";
    let (ok, out, err) = trace(CONFIG, &[], sample);
    assert!(ok, "{err}");
    assert!(
        out.contains("record 1 (70 bytes): <34>1 2026-12-07T10:00:00.5Z web1 sshd 42"),
        "{out}"
    );
    assert!(out.contains("Payload: Failed password for root"), "{out}");
    assert!(
        out.contains(r#"name: "programname" type: string value: ["sshd"]"#),
        "{out}"
    );
    let first = verdicts(&out, 1);
    assert_eq!(first["errors"], "yes");
    assert_eq!(first["sshd"], "yes");
    assert_eq!(
        first["failures"],
        "no first failed: Fields[decode_failure] == TRUE"
    );
    let second = verdicts(&out, 2);
    assert_eq!(second["errors"], "no first failed: Severity <= 3");
    assert_eq!(
        second["sshd"],
        "no first failed: Fields[programname] == 'sshd'"
    );
    // Not syslog: the decoder's reason, and the record passed on flagged as a failure.
    assert!(
        out.contains("record 3 (17 bytes): not syslog at all\n  decode failed: "),
        "{out}"
    );
    let third = verdicts(&out, 3);
    assert_eq!(third["errors"], "no first failed: Type == 'syslog'");
    assert_eq!(third["failures"], "yes");
    // The last record has no newline: the end of the sample ends it, as the end of a stream.
    assert_eq!(out.matches("record ").count(), 4, "{out}");
    let fourth = verdicts(&out, 4);
    assert_eq!(fourth["sshd"], "yes", "{out}");
}

#[test]
fn the_input_must_be_named_when_there_are_several() {
    let two = format!(
        "{CONFIG}\n[lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:15515\"\nsplitter = \"TokenSplitter\"\ndecoder = \"\"\n"
    );
    let (ok, _, err) = trace(&two, &[], b"x\n");
    assert!(!ok);
    assert!(err.contains("--input one of: syslog, lines"), "{err}");
    let (ok, out, err) = trace(&two, &["--input", "lines"], b"plain line\n");
    assert!(ok, "{err}");
    assert!(out.contains("Payload: plain line"), "{out}");
    assert!(out.contains("Logger: lines"), "{out}");
    let (ok, _, err) = trace(&two, &["--input", "nope"], b"x\n");
    assert!(!ok);
    assert!(err.contains("no input `nope`"), "{err}");
}

#[test]
fn heka_framed_samples_are_split_and_bad_bytes_reported() {
    let config = r#"
[in]
type = "TcpInput"
address = "127.0.0.1:15516"

[all]
type = "FileOutput"
message_matcher = "Type == 'hekate-test'"
path = "all.log"
"#;
    let mut sample = b"garbage".to_vec();
    let msg = common::message("hekate-test", 0, 7, 10);
    sample.extend(common::framed(std::iter::once(msg)));
    sample.extend_from_slice(&[0x1e, 0x05]);
    let (ok, out, err) = trace(config, &[], &sample);
    assert!(ok, "{err}");
    assert!(
        out.contains("skipped 7 bytes (not a valid record)"),
        "{out}"
    );
    assert!(out.contains("record 1 (86 bytes, framed)"), "{out}");
    assert!(out.contains("Type: hekate-test"), "{out}");
    assert_eq!(verdicts(&out, 1)["all"], "yes");
    assert!(out.contains("skipped 2 bytes at the end"), "{out}");
}

//! `hekate plugins`: what this build provides, read from each plugin's own declaration.

use std::process::Command;

fn plugins(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .arg("plugins")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_type_is_listed_once_under_its_category() {
    let (ok, out, err) = plugins(&[]);
    assert!(ok, "{err}");
    let inputs = out.find("Inputs:").expect("an Inputs heading");
    let outputs = out.find("Outputs:").expect("an Outputs heading");
    let tcp_input = out.find("  TcpInput ").expect("TcpInput listed");
    let file_output = out.find("  FileOutput ").expect("FileOutput listed");
    assert!(inputs < tcp_input && tcp_input < outputs, "{out}");
    assert!(outputs < file_output, "{out}");
    assert_eq!(out.matches("  SandboxFilter ").count(), 1, "{out}");
    // One line per type, with its summary.
    let line = out.lines().find(|l| l.contains("  FileOutput ")).unwrap();
    assert!(
        line.contains("appends encoded messages to a file"),
        "{line}"
    );
}

#[test]
fn one_type_shows_its_options_with_types_defaults_docs_and_sample() {
    let (ok, out, err) = plugins(&["TcpInput"]);
    assert!(ok, "{err}");
    assert!(out.contains("  address: string (required)\n"), "{out}");
    assert!(
        out.contains("  keep_alive_period: integer (default 7200)\n"),
        "{out}"
    );
    assert!(
        out.contains("Common input options: decoder, splitter"),
        "{out}"
    );
    assert!(out.contains("Sample:\n  [TcpInput]\n"), "{out}");

    let (ok, out, _) = plugins(&["SandboxFilter"]);
    assert!(ok);
    assert!(out.contains("  filename: string (required)\n"), "{out}");
    assert!(
        out.contains("  memory_limit: integer (default 8388608)\n"),
        "{out}"
    );
    // An option of SandboxFilter only is not shown for SandboxDecoder.
    assert!(out.contains("  placement: "), "{out}");
    let (_, out, _) = plugins(&["SandboxDecoder"]);
    assert!(!out.contains("placement"), "{out}");
}

#[test]
fn an_unknown_type_is_refused_with_a_suggestion() {
    let (ok, out, err) = plugins(&["TcpImput"]);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.contains("`TcpImput` is not a plugin type of this build; did you mean `TcpInput`?"),
        "{err}"
    );
}

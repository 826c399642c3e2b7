//! ProcessInput with real commands: a pipeline, exit statuses, a command that does not exist,
//! a hanging one killed by `timeout`, and a flooding one that is pushed back and killed with
//! hekate's stop.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use hekate_model::message::Message;

fn config(dir: &Path, inputs: &str) -> String {
    let core = hekate_engine::runtime::allowed_cores()[0];
    format!(
        r#"
[hekate]
base_dir = "{base}"
worker_cores = [{core}]
coordinator_core = {core}
report_interval = 1

{inputs}

[FileOutput]
message_matcher = "Type == 'ProcessInput' && Logger != 'floods'"
path = "out.hekad"
flush_interval = 50

{reports}"#,
        base = dir.join("base").display(),
        reports = REPORTS_OUTPUT,
    )
}

fn string(m: &Message, name: &str) -> Option<String> {
    m.find_first_field(name)
        .and_then(|f| f.value_string.first().cloned())
}

fn int(m: &Message, name: &str) -> Option<i64> {
    m.find_first_field(name)
        .and_then(|f| f.value_integer.first().copied())
}

fn of<'a>(msgs: &'a [Message], input: &str) -> Vec<&'a Message> {
    msgs.iter()
        .filter(|m| m.logger.as_deref() == Some(input))
        .collect()
}

/// Whether a process whose command line contains `marker` runs.
fn running(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pipelines_exit_statuses_and_failures_become_messages_and_counts() {
    let dir = temp_dir("process");
    let inputs = r#"
[upper]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
[upper.command.0]
bin = "/bin/printf"
args = ["alpha\nbeta\n"]
[upper.command.1]
bin = "tr"
args = ["a-z", "A-Z"]

[fails]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
[fails.command.0]
bin = "/bin/sh"
args = ["-c", "echo said before failing; exit 3"]

[loadavg]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
splitter = "NullSplitter"
[loadavg.command.0]
bin = "cat"
args = ["/proc/loadavg"]

[disk]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
[disk.command.0]
bin = "df"
args = ["-P", "-k", "/"]

[missing]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
[missing.command.0]
bin = "/nonexistent/hekate-no-such-command"
"#;
    let hekate = Hekate::start(&dir, &config(&dir, inputs), &[]);
    let out = dir.join("base").join("out.hekad");
    // Two runs of each: the ticker runs the chain again.
    assert!(
        wait_for(Duration::from_secs(15), || {
            let msgs = read_stream(&out);
            of(&msgs, "upper").len() >= 4 && of(&msgs, "fails").len() >= 2
        }),
        "{:#?}\n{}",
        read_stream(&out),
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    let upper = of(&msgs, "upper");
    assert_eq!(
        upper[..2]
            .iter()
            .map(|m| m.payload.clone().unwrap())
            .collect::<Vec<_>>(),
        ["ALPHA\n", "BETA\n"],
        "the first command's output went through the second (TokenSplitter keeps the line end, as Heka's)"
    );
    for m in &upper {
        assert_eq!(m.r#type.as_deref(), Some("ProcessInput"));
        assert_eq!(
            string(m, "ProcessInputName").as_deref(),
            Some("upper.stdout")
        );
        assert_eq!(int(m, "ExitStatus"), Some(0));
        assert_eq!(string(m, "SubcmdErrors"), None);
    }
    let failed = of(&msgs, "fails");
    assert_eq!(failed[0].payload.as_deref(), Some("said before failing\n"));
    assert_eq!(int(failed[0], "ExitStatus"), Some(3));
    assert_eq!(
        string(failed[0], "SubcmdErrors").as_deref(),
        Some("Subcommand[0] returned an error: exit status 3")
    );
    let load = of(&msgs, "loadavg");
    assert!(!load.is_empty());
    let fields = load[0]
        .payload
        .as_deref()
        .unwrap()
        .split_whitespace()
        .count();
    assert_eq!(
        fields, 5,
        "/proc/loadavg has five fields: {:?}",
        load[0].payload
    );
    // df: its header line, then one line for the root file system, one message each.
    let disk = of(&msgs, "disk");
    assert!(disk.len() >= 2, "{disk:?}");
    assert!(
        disk[0]
            .payload
            .as_deref()
            .unwrap()
            .starts_with("Filesystem")
    );
    assert!(
        disk[1]
            .payload
            .as_deref()
            .unwrap()
            .trim_end()
            .ends_with(" /")
    );
    // The command that does not exist is counted, again at each tick; the rest runs on.
    let reports = dir.join("base").join("reports.hekad");
    assert!(
        wait_for(Duration::from_secs(10), || last_report(&reports)
            .and_then(|r| report_value(&r, "inputs", "missing", "ProcessErrorCount"))
            .is_some_and(|n| n >= 2)),
        "{}",
        hekate.stderr()
    );
    assert!(hekate.stderr().contains("hekate-no-such-command"));
    assert!(of(&msgs, "missing").is_empty());
}

#[test]
fn a_hanging_run_is_killed_at_its_timeout_and_a_flood_is_pushed_back_then_killed_at_stop() {
    let dir = temp_dir("process-kill");
    let inputs = r#"
[hangs]
type = "ProcessInput"
ticker_interval = 1
immediate_start = true
timeout = 1
[hangs.command.0]
bin = "/bin/sh"
args = ["-c", "echo started; exec sleep 397.25"]

[floods]
type = "ProcessInput"
ticker_interval = 0
[floods.command.0]
bin = "yes"
args = ["hekate-flood-marker-8841"]

[floodsink]
type = "FileOutput"
message_matcher = "Logger == 'floods'"
path = "/dev/null"
"#;
    let mut hekate = Hekate::start(&dir, &config(&dir, inputs), &[]);
    let out = dir.join("base").join("out.hekad");
    assert!(
        wait_for(Duration::from_secs(15), || of(&read_stream(&out), "hangs")
            .len()
            >= 2),
        "{}",
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    let hung = of(&msgs, "hangs");
    assert_eq!(hung[0].payload.as_deref(), Some("started\n"));
    assert_eq!(int(hung[0], "ExitStatus"), Some(-1), "ended by a signal");
    let errors = string(hung[0], "SubcmdErrors").unwrap();
    assert!(
        errors.contains("Subcommand[0] returned an error: signal 9"),
        "{errors}"
    );
    assert!(errors.contains("timeout"), "{errors}");
    // The flood runs all along, pushed back: memory stays bounded.
    assert!(running("hekate-flood-marker-8841"));
    let rss = hekate.rss_kib();
    assert!(
        rss < 300 * 1024,
        "resident memory {rss} KiB with a flooding command"
    );
    let status = hekate.terminate();
    assert!(status.success(), "{status}: {}", hekate.stderr());
    assert!(
        wait_for(Duration::from_secs(5), || !running(
            "hekate-flood-marker-8841"
        ) && !running("sleep 397.25")),
        "children outlived hekate"
    );
}

/// A job file in `dir/<interval>/` printing `text` every interval.
fn job(dir: &Path, interval: u32, name: &str, text: &str) {
    let sub = dir.join(interval.to_string());
    std::fs::create_dir_all(&sub).unwrap();
    let tmp = sub.join(format!(".{name}.tmp"));
    std::fs::write(
        &tmp,
        format!(
            "[ProcessInput]\nimmediate_start = true\n[ProcessInput.command.0]\nbin = \"/bin/echo\"\nargs = [\"{text}\"]\n"
        ),
    )
    .unwrap();
    std::fs::rename(tmp, sub.join(format!("{name}.toml"))).unwrap();
}

#[test]
fn a_process_directory_is_followed_jobs_start_change_and_stop() {
    let dir = temp_dir("process-dir");
    let jobs = dir.join("jobs");
    job(&jobs, 1, "a", "job a");
    std::fs::create_dir_all(jobs.join("1")).unwrap();
    std::fs::write(
        jobs.join("1/broken.toml"),
        "[ProcessInput]\nno_such_option = 1\n",
    )
    .unwrap();
    let inputs = format!(
        r#"
[jobs]
type = "ProcessDirectoryInput"
process_dir = "{}"
ticker_interval = 1
"#,
        jobs.display()
    );
    let hekate = Hekate::start(&dir, &config(&dir, &inputs), &[]);
    let out = dir.join("base").join("out.hekad");
    let a = jobs.join("1/a.toml").display().to_string();
    let b = jobs.join("1/b.toml").display().to_string();
    let payloads = |logger: &str| -> Vec<String> {
        read_stream(&out)
            .iter()
            .filter(|m| m.logger.as_deref() == Some(logger))
            .map(|m| m.payload.clone().unwrap_or_default())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(10), || payloads(&a).len() >= 2),
        "{}",
        hekate.stderr()
    );
    assert_eq!(payloads(&a)[0], "job a\n");
    let m = read_stream(&out)
        .into_iter()
        .find(|m| m.logger.as_deref() == Some(a.as_str()))
        .unwrap();
    assert_eq!(string(&m, "ProcessInputName"), Some(format!("{a}.stdout")));
    assert_eq!(int(&m, "ExitStatus"), Some(0));
    // A new file starts its job; a changed one restarts with its new command.
    job(&jobs, 1, "b", "job b");
    job(&jobs, 1, "a", "job a, second version");
    assert!(
        wait_for(Duration::from_secs(10), || !payloads(&b).is_empty()
            && payloads(&a).contains(&"job a, second version\n".to_string())),
        "{}",
        hekate.stderr()
    );
    // A removed file stops its job.
    std::fs::remove_file(jobs.join("1/b.toml")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let after_removal = payloads(&b).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        payloads(&b).len(),
        after_removal,
        "a removed job still runs"
    );
    // The broken file was reported, and counted once.
    assert!(
        hekate.stderr().contains("broken.toml skipped"),
        "{}",
        hekate.stderr()
    );
    let reports = dir.join("base").join("reports.hekad");
    let report = last_report(&reports).unwrap();
    assert_eq!(
        report_value(&report, "inputs", "jobs", "JobFileErrorCount"),
        Some(1)
    );
    assert_eq!(report_value(&report, "inputs", "jobs", "JobCount"), Some(1));
}

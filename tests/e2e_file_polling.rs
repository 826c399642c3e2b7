//! FilePollingInput with the real binary: the whole file every tick, as one message with Heka's
//! Type and fields, the file's current contents each time; a missing file is warned about and
//! polled again.

mod common;

use std::time::Duration;

use common::*;
use hekate_model::message::{FieldValue, MessageAccess, MessageView};

#[test]
fn the_whole_file_arrives_every_tick_with_heka_fields() {
    let dir = temp_dir("file-polling");
    let polled = dir.join("stats.txt");
    let out = dir.join("out.hekad");
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"

[stats]
type = "FilePollingInput"
ticker_interval = 1
file_path = "{polled}"

[loadavg]
type = "FilePollingInput"
ticker_interval = 1
file_path = "/proc/loadavg"

[out]
type = "FileOutput"
message_matcher = "Type == 'heka.file.polling' && Logger == 'stats'"
path = "{out}"
flush_interval = 0

[proc]
type = "FileOutput"
message_matcher = "Logger == 'loadavg'"
path = "{proc}"
flush_interval = 0
"#,
        base = dir.join("base").display(),
        polled = polled.display(),
        out = out.display(),
        proc = dir.join("proc.hekad").display(),
    );
    let mut hekate = Hekate::start(&dir, &config, &[]);
    // Missing at first: warned about, then read once it exists.
    assert!(wait_for(Duration::from_secs(5), || hekate
        .stderr()
        .contains("cannot read")));
    std::fs::write(&polled, "0.42 0.30 0.21 1/123 4567\nsecond line\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || out.exists()
        && !read_stream(&out).is_empty()));
    std::fs::write(&polled, "changed\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || read_stream(&out)
        .iter()
        .any(|m| m.payload.as_deref() == Some("changed\n"))));
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    // A file in /proc says its size is 0: it is read to its end all the same.
    let loadavg = read_stream(&dir.join("proc.hekad"));
    let payload = loadavg[0].payload.as_deref().unwrap();
    assert_eq!(payload.split_whitespace().count(), 5, "{payload:?}");
    let msgs = read_stream(&out);
    let first = &msgs[0];
    assert_eq!(
        first.payload.as_deref(),
        Some("0.42 0.30 0.21 1/123 4567\nsecond line\n")
    );
    assert_eq!(first.logger.as_deref(), Some("stats"));
    let bytes = first.to_bytes();
    let view = MessageView::new(&bytes).unwrap();
    assert_eq!(
        view.field_value(b"TickerInterval", 0, 0),
        Some(FieldValue::Integer(1))
    );
    assert_eq!(
        view.field_value(b"FilePath", 0, 0),
        Some(FieldValue::String(polled.to_string_lossy().as_bytes()))
    );
}

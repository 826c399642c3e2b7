//! The files Heka's DashboardOutput writes under `working_directory/data/`, with Heka's names
//! and contents, so that dashboards and scripts written for Heka read them unchanged:
//!
//! | message | file |
//! |---|---|
//! | `heka.all-report` | `heka_report.json` (the payload) and `sandboxes.json` (`{"sandboxes":[{"Name":…,"Outputs":[{"Name":…,"Filename":"data/…"}]}]}`) |
//! | `heka.sandbox-output` | `<Logger>.<payload_name>.<payload_type>` (the payload; name and type without non-word characters, the name cut at 64) |
//! | `heka.sandbox-terminated` | a line appended to `heka_sandbox_termination.tsv`: seconds, plugin, payload |
//!
//! A message only updates what the next [`Batch`] holds: a file that changes many times between
//! two flushes is written once, with its newest content. The output hands each batch to a thread
//! of its own that writes it ([`Batch::write`]), so that no file system call ever blocks the
//! shard.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use hekate_model::message::{FieldValue, MessageAccess, MessageView};
use serde::Serialize;

/// The report's file.
pub(super) const REPORT: &str = "heka_report.json";
/// The list of sandboxes and their outputs.
pub(super) const SANDBOXES: &str = "sandboxes.json";
/// One line per terminated sandbox.
pub(super) const TERMINATIONS: &str = "heka_sandbox_termination.tsv";

/// One output of a sandbox in `sandboxes.json`.
#[derive(Debug, Clone, Serialize)]
struct SandboxOutput {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Filename")]
    filename: String,
}

/// One sandbox in `sandboxes.json`.
#[derive(Debug, Clone, Serialize)]
struct Sandbox {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Outputs")]
    outputs: Vec<SandboxOutput>,
}

/// `sandboxes.json`.
#[derive(Debug, Serialize)]
struct SandboxList<'a> {
    sandboxes: &'a [Sandbox],
}

/// Files to write in `working_directory/data/`.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// File name → content, each replacing the file whole.
    files: BTreeMap<String, Vec<u8>>,
    /// Lines to append to the termination file.
    terminations: Vec<u8>,
}

/// What the dashboard has to write, and the sandboxes it has seen.
#[derive(Debug)]
pub(super) struct DataFiles {
    /// What the next batch writes.
    pending: Batch,
    /// In the order they were first seen.
    sandboxes: Vec<Sandbox>,
}

impl DataFiles {
    /// Creates `dir` and removes what an earlier run left: every file in `dir` and, as Heka
    /// does, every `*.*` file in `working` (its parent).
    pub(super) fn create(dir: &Path, working: Option<&Path>) -> std::io::Result<DataFiles> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        if let Some(working) = working {
            for entry in std::fs::read_dir(working)? {
                let entry = entry?;
                if entry.file_type()?.is_file() && entry.file_name().to_string_lossy().contains('.')
                {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(DataFiles {
            pending: Batch::default(),
            sandboxes: Vec::new(),
        })
    }

    /// Bytes waiting to be written.
    pub(super) fn held_bytes(&self) -> usize {
        self.pending.files.values().map(Vec::len).sum::<usize>() + self.pending.terminations.len()
    }

    /// What the messages taken so far change, if anything; from now on nothing.
    pub(super) fn take_batch(&mut self) -> Option<Batch> {
        let b = std::mem::take(&mut self.pending);
        (!b.files.is_empty() || !b.terminations.is_empty()).then_some(b)
    }

    /// Takes what `msg` changes (other messages change nothing).
    pub(super) fn take(&mut self, msg: &MessageView<'_>) {
        match msg.msg_type() {
            b"heka.all-report" => {
                self.pending
                    .files
                    .insert(REPORT.to_string(), msg.payload().to_vec());
                let mut list = serde_json::to_vec(&SandboxList {
                    sandboxes: &self.sandboxes,
                })
                .unwrap_or_default();
                list.push(b'\n');
                self.pending.files.insert(SANDBOXES.to_string(), list);
            }
            b"heka.sandbox-output" => {
                let Some(kind) = string_field(msg, b"payload_type") else {
                    return;
                };
                let name = string_field(msg, b"payload_name").unwrap_or_default();
                let filter = String::from_utf8_lossy(msg.logger()).into_owned();
                let file = output_file_name(&filter, &name, &kind);
                self.pending
                    .files
                    .insert(file.clone(), msg.payload().to_vec());
                let output = SandboxOutput {
                    name,
                    filename: format!("data/{file}"),
                };
                match self.sandboxes.iter_mut().find(|s| s.name == filter) {
                    Some(s) => {
                        if !s.outputs.iter().any(|o| o.name == output.name) {
                            s.outputs.push(output);
                        }
                    }
                    None => self.sandboxes.push(Sandbox {
                        name: filter,
                        outputs: vec![output],
                    }),
                }
            }
            b"heka.sandbox-terminated" => {
                let Some(plugin) = string_field(msg, b"plugin") else {
                    return;
                };
                let mut line = format!(
                    "{}\t{plugin}\t{}",
                    msg.timestamp() / 1_000_000_000,
                    String::from_utf8_lossy(msg.payload())
                );
                if msg.field_value(b"ProcessMessageCount", 0, 0).is_some() {
                    for name in [
                        "ProcessMessageCount",
                        "ProcessMessageSamples",
                        "ProcessMessageAvgDuration",
                        "MatchAvgDuration",
                        "FilterChanLength",
                        "MatchChanLength",
                        "RouterChanLength",
                    ] {
                        let value = msg
                            .field_value(name.as_bytes(), 0, 0)
                            .map_or_else(|| "<nil>".to_string(), |v| display(&v));
                        line.push_str(&format!(" {name}:{value}"));
                    }
                }
                line.push('\n');
                self.pending.terminations.extend_from_slice(line.as_bytes());
                self.sandboxes.retain(|s| s.name != plugin);
            }
            _ => {}
        }
    }
}

impl Batch {
    /// Writes every file into `dir` (each replaced whole, through a temporary file, so that a
    /// reader never sees half of one) and appends the termination lines. Returns the first
    /// error; the other files are written all the same.
    pub(super) fn write(self, dir: &Path) -> std::io::Result<()> {
        let mut first_error = None;
        for (name, content) in self.files {
            let tmp = dir.join(format!(".{name}.tmp"));
            let done = std::fs::write(&tmp, &content)
                .and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
            if let Err(e) = done {
                first_error.get_or_insert(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.join(&name).display()),
                ));
            }
        }
        if !self.terminations.is_empty() {
            let path = dir.join(TERMINATIONS);
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&self.terminations));
            if let Err(e) = appended {
                first_error.get_or_insert(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The first value of a string field.
fn string_field(msg: &MessageView<'_>, name: &[u8]) -> Option<String> {
    match msg.field_value(name, 0, 0)? {
        FieldValue::String(s) | FieldValue::Bytes(s) => {
            Some(String::from_utf8_lossy(s).into_owned())
        }
        _ => None,
    }
}

/// A field value as Go's `%v` prints it.
fn display(v: &FieldValue<'_>) -> String {
    match v {
        FieldValue::String(s) | FieldValue::Bytes(s) => String::from_utf8_lossy(s).into_owned(),
        FieldValue::Integer(n) => n.to_string(),
        FieldValue::Double(d) => d.to_string(),
        FieldValue::Bool(b) => b.to_string(),
    }
}

/// `s` without the characters Go's `\W` matches (all but ASCII letters, digits and `_`).
fn word_characters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Heka's name for a sandbox output: `<filter>.<name>.<type>`, the name and type without
/// non-word characters, the name cut at 64 bytes. The filter name is Heka's too, except that a
/// character that would leave the directory (`/`, a leading `.`) becomes `_`.
pub(super) fn output_file_name(filter: &str, name: &str, kind: &str) -> String {
    let mut name = word_characters(name);
    name.truncate(64);
    let mut filter: String = filter
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if filter.starts_with('.') || filter.is_empty() {
        filter.insert(0, '_');
    }
    format!("{filter}.{name}.{}", word_characters(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hekate_model::message::{Field, Message};
    use prost::Message as _;

    fn view_of(m: &Message) -> Vec<u8> {
        m.encode_to_vec()
    }

    fn output(filter: &str, kind: &str, name: &str, payload: &str) -> Message {
        Message {
            r#type: Some("heka.sandbox-output".into()),
            logger: Some(filter.into()),
            payload: Some(payload.into()),
            fields: vec![
                Field::string("payload_type", kind),
                Field::string("payload_name", name),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn names_are_hekas() {
        assert_eq!(
            output_file_name("http_status", "HTTP Status", "cbuf"),
            "http_status.HTTPStatus.cbuf"
        );
        assert_eq!(output_file_name("f", "", "txt"), "f..txt");
        assert_eq!(output_file_name("../x", "a/b", "c.d"), "_.._x.ab.cd");
        assert_eq!(
            output_file_name("f", &"n".repeat(80), "t").len(),
            2 + 64 + 2
        );
    }

    #[test]
    fn outputs_the_report_and_terminations_are_written_as_heka_does() {
        let dir = std::env::temp_dir().join(format!("hekate-dash-files-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(dir.join("old.html"), "x").unwrap();
        std::fs::write(data.join("old.cbuf"), "x").unwrap();
        let mut files = DataFiles::create(&data, Some(&dir)).unwrap();
        assert!(!dir.join("old.html").exists() && !data.join("old.cbuf").exists());

        for m in [
            output("Stats", "cbuf", "Requests", "first"),
            output("Stats", "cbuf", "Requests", "second"),
            output("Stats", "txt", "", "text"),
        ] {
            files.take(&MessageView::new(&view_of(&m)).unwrap());
        }
        let report = Message {
            r#type: Some("heka.all-report".into()),
            payload: Some("{\"globals\":[]}\n".into()),
            ..Default::default()
        };
        files.take(&MessageView::new(&view_of(&report)).unwrap());
        files.take_batch().unwrap().write(&data).unwrap();
        assert!(files.take_batch().is_none());
        let read = |n: &str| std::fs::read_to_string(data.join(n)).unwrap();
        assert_eq!(read("Stats.Requests.cbuf"), "second");
        assert_eq!(read("Stats..txt"), "text");
        assert_eq!(read(REPORT), "{\"globals\":[]}\n");
        assert_eq!(
            read(SANDBOXES),
            "{\"sandboxes\":[{\"Name\":\"Stats\",\"Outputs\":[{\"Name\":\"Requests\",\"Filename\":\"data/Stats.Requests.cbuf\"},{\"Name\":\"\",\"Filename\":\"data/Stats..txt\"}]}]}\n"
        );

        let terminated = Message {
            r#type: Some("heka.sandbox-terminated".into()),
            timestamp: 1_700_000_000_123_456_789,
            payload: Some("instruction_limit exceeded".into()),
            fields: vec![Field::string("plugin", "Stats")],
            ..Default::default()
        };
        files.take(&MessageView::new(&view_of(&terminated)).unwrap());
        files.take(&MessageView::new(&view_of(&report)).unwrap());
        files.take_batch().unwrap().write(&data).unwrap();
        assert_eq!(
            read(TERMINATIONS),
            "1700000000\tStats\tinstruction_limit exceeded\n"
        );
        assert_eq!(read(SANDBOXES), "{\"sandboxes\":[]}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! `hekate cat`: read Heka-framed protobuf streams and print the messages that match.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use hekate_model::framing::{HekaSplitter, SplitOutcome};
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::MessageView;

use crate::show;

/// How matching messages are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Headers and fields, readably.
    Text,
    /// One JSON object per message per line.
    Json,
    /// Only the number of matching messages.
    Count,
}

/// What one `cat` run saw.
#[derive(Debug, Default)]
pub struct Summary {
    /// Messages that matched.
    pub matched: u64,
    /// Records whose message is not valid protobuf.
    pub invalid: u64,
    /// Corrupt or truncated regions skipped.
    pub regions: u64,
}

const READ_SIZE: usize = 1 << 20;

/// Reads every file in turn; warnings go to `warn`, messages to `out`.
pub fn cat(
    files: &[PathBuf],
    spec: &MatcherSpec,
    format: Format,
    max_message_size: u32,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut buf = Vec::with_capacity(READ_SIZE * 2);
    for path in files {
        let mut file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let name = path.display();
        // A file reader has no signer keys: records are shown whether or not they are signed.
        let mut splitter = HekaSplitter::new(max_message_size).with_skip_authentication(true);
        buf.clear();
        let mut eof = false;
        while !eof {
            let filled = buf.len();
            buf.resize(filled + READ_SIZE, 0);
            let n = file.read(&mut buf[filled..])?;
            buf.truncate(filled + n);
            eof = n == 0;
            let mut pos = 0;
            loop {
                let step = if eof {
                    splitter.finish(&buf[pos..])
                } else {
                    splitter.split(&buf[pos..])
                };
                pos += step.consumed;
                if let Some(region) = step.skipped {
                    summary.regions += 1;
                    writeln!(warn, "warning: {name}: {region}")?;
                }
                match step.outcome {
                    SplitOutcome::Record(record) => print_message(
                        record.message,
                        spec,
                        format,
                        &mut summary,
                        out,
                        warn,
                        format_args!(
                            "{name}: skipped the record of {} bytes at offset {}",
                            record.framed.len(),
                            record.offset
                        ),
                    )?,
                    SplitOutcome::Rejected(rejected) => {
                        writeln!(warn, "warning: {name}: {rejected}")?;
                    }
                    SplitOutcome::NeedData => break,
                    SplitOutcome::End { truncated } => {
                        if let Some(region) = truncated {
                            summary.regions += 1;
                            writeln!(warn, "warning: {name}: {region}")?;
                        }
                        break;
                    }
                }
            }
            buf.drain(..pos);
        }
    }
    if format == Format::Count {
        writeln!(out, "{}", summary.matched)?;
    }
    Ok(summary)
}

/// Prints one encoded message in `format` if it matches `spec`, counting it in `summary`. A
/// message that is not valid protobuf is counted and warned about as `<skipped>: invalid message
/// (why)`, `skipped` saying where it was.
pub fn print_message(
    message: &[u8],
    spec: &MatcherSpec,
    format: Format,
    summary: &mut Summary,
    out: &mut impl Write,
    warn: &mut impl Write,
    skipped: fmt::Arguments<'_>,
) -> io::Result<()> {
    match MessageView::new(message) {
        Ok(view) => {
            if spec.matches(&view) {
                summary.matched += 1;
                match format {
                    Format::Text => show::write_text(out, &view)?,
                    Format::Json => writeln!(out, "{}", show::to_json(&view))?,
                    Format::Count => {}
                }
            }
        }
        Err(e) => {
            summary.invalid += 1;
            writeln!(warn, "warning: {skipped}: invalid message ({e})")?;
        }
    }
    Ok(())
}

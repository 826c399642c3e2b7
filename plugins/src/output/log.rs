//! LogOutput: writes each encoded message to stdout as a log line (`YYYY/MM/DD HH:MM:SS
//! <encoded message>`), as Heka's LogOutput does through Go's log package. One instance, so that
//! lines stay whole and in order per source.
//!
//! ```toml
//! [LogOutput]
//! message_matcher = "Type == 'heka.counter-output'"
//! encoder = "PayloadEncoder"
//!
//! [PayloadEncoder]
//! ```
//!
//! Options: `encoder` (required, as in Heka: "Encoder required."). A trailing newline of the
//! encoded message is not doubled.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, NoOptions, Output, OutputError, OutputPlugin,
    Placement, PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};

use super::{EncodedWriter, Encoding};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "LogOutput",
    source: include_str!("log.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct LogOutputPlugin {
    encoding: Encoding,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    Ok(Built::Output(Arc::new(LogOutputPlugin {
        encoding: Encoding::from_section(section, ctx, None)?,
    })))
}

impl OutputPlugin for LogOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn new_output(&self, _ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        Ok(Box::new(LogOutput {
            writer: self.encoding.writer(),
            scratch: Vec::new(),
            buf: Vec::new(),
            pending: 0,
            written: 0,
        }))
    }
}

struct LogOutput {
    writer: EncodedWriter,
    scratch: Vec<u8>,
    buf: Vec<u8>,
    pending: u64,
    written: u64,
}

impl Output for LogOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        self.scratch.clear();
        if !self.writer.write(msg, &mut self.scratch)? {
            return Ok(());
        }
        // Go's log package: `YYYY/MM/DD HH:MM:SS ` before each line (UTC).
        let _ = write!(
            self.buf,
            "{} ",
            chrono::Utc::now().format("%Y/%m/%d %H:%M:%S")
        );
        let line = self.scratch.strip_suffix(b"\n").unwrap_or(&self.scratch);
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.pending += 1;
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.buf.len() >= 64 * 1024
    }

    fn should_flush(&self, _now: Instant) -> bool {
        !self.buf.is_empty()
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        let mut out = std::io::stdout().lock();
        let result = out
            .write_all(&self.buf)
            .and_then(|()| out.flush())
            .map_err(|e| OutputError::retry(format!("writing to stdout failed: {e}")));
        if result.is_ok() {
            self.buf.clear();
            self.written += std::mem::take(&mut self.pending);
        }
        Box::pin(std::future::ready(result))
    }

    fn buffered(&self) -> u64 {
        self.pending
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        self.writer.report(sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("log.rs"));
    }

    #[test]
    fn an_encoder_is_required() {
        let e = build(
            "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[LogOutput]\nmessage_matcher = \"TRUE\"\n",
        )
        .unwrap_err();
        assert!(e.contains("requires an `encoder`"), "{e}");
    }
}

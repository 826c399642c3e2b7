//! FilePollingInput: reads a whole file every `ticker_interval` seconds and hands its contents
//! on as one record, as Heka's does — the input of Heka's `linux_*stats` Lua decoders, which
//! read `/proc/loadavg`, `/proc/meminfo`, `/proc/diskstats` and `/proc/net/dev`.
//!
//! With the default NullSplitter the whole file is one record; with another splitter (a
//! TokenSplitter for one message per line) each of its records is. Messages built from records
//! have Type `heka.file.polling`, Logger = the input's name, and the fields `TickerInterval`
//! (seconds) and `FilePath`. A file that cannot be read is warned about (rate-limited) and tried
//! again at the next tick. The input runs on one worker shard.
//!
//! ```toml
//! [loadavg]
//! type = "FilePollingInput"
//! ticker_interval = 5
//! file_path = "/proc/loadavg"
//! # decoder = "loadavg_decoder"   (a SandboxDecoder running lua_decoders/linux_loadavg.lua,
//! #                                as in config/examples/linux-stats.toml)
//! ```
//!
//! Options: `file_path` (required), `ticker_interval` (5 s), plus the common input options.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, InputContext, InputPlacement, InputPlugin, LocalBoxFuture, PluginError,
    PluginType, StreamSpec, options_of,
};
use hekate_model::writer::MessageWriter;
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "FilePollingInput",
    source: include_str!("file_polling.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The most read of a file at a tick (a bigger file is cut here, with a warning).
const MAX_FILE: u64 = 64 << 20;

/// FilePollingInput's own options (`ticker_interval` is a common input option).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The file read at every tick.
    file_path: String,
}

#[derive(Debug)]
struct FilePolling {
    path: PathBuf,
    every: Duration,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let every = crate::common::ticker_period(
        section,
        Duration::from_secs(5),
        "how often the file is read",
    )?;
    let spec = ctx.stream_spec(section, "NullSplitter", None)?;
    Ok(Built::Input(Arc::new(FilePolling {
        path: PathBuf::from(opts.file_path),
        every,
        spec,
    })))
}

impl InputPlugin for FilePolling {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("heka.file.polling")))
    }

    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let mut records = ctx.stream(&self.spec, None);
        records.set_origin(&ctx.name, Some("heka.file.polling"));
        let mut fields = Vec::new();
        MessageWriter::new(&mut fields)
            .field_int("TickerInterval", self.every.as_secs() as i64)
            .field_string("FilePath", &self.path.to_string_lossy());
        records.set_fields(&fields);
        let (path, every) = (self.path.clone(), self.every);
        Ok(Box::pin(async move {
            loop {
                let stopped = ctx.sleep_unless_stopped(every).await;
                if stopped {
                    return Ok(());
                }
                // Files in /proc report a size of 0: read to the end whatever the size says.
                let mut data = Vec::new();
                let read = std::fs::File::open(&path)
                    .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut data));
                if let Err(e) = read {
                    warn_limited!("Input '{}': cannot read {}: {e}", ctx.name, path.display());
                    continue;
                }
                if data.len() as u64 > MAX_FILE {
                    warn_limited!(
                        "Input '{}': {} is larger than {MAX_FILE} bytes; only its start is read",
                        ctx.name,
                        path.display()
                    );
                    data.truncate(MAX_FILE as usize);
                }
                let data = &data[..];
                records.reserve(data.len());
                records.read_buf()[..data.len()].copy_from_slice(data);
                records.feed(data.len()).await;
                records.finish().await;
            }
        }))
    }
}

//! The kinds of plugin — splitter, decoder, filter, encoder, output — each in its two forms
//! (see [the module docs](super)), the errors they report and what the runtime hands them.
//! Inputs, which drive a record stream of their own, are in [`input`](super::input).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::{ReportField, ReportValue};
use hekate_model::framing::SignerKeys;
use hekate_model::message::{Message, MessageView, ViewLayout, WrittenField};
use hekate_model::writer::MessageWriter;

/// A boxed, `!Send` future, as a shard runs them.
pub type LocalBoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Why a running plugin failed; one sentence for the log.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "cannot listen on 127.0.0.1:5565".
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else, already phrased as a sentence.
    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        PluginError::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<glommio::GlommioError<()>> for PluginError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        PluginError::Other(e.to_string())
    }
}

/// Why a filter or output stopped for good (a Lua sandbox that broke a limit, failed or returned
/// a fatal status).
///
/// The runtime asks for it after a call returned an error. Once a plugin reports one, it gets
/// no more calls: every router shard drops its route, a `heka.sandbox-terminated` message
/// (Logger `hekad`, Field `plugin`, Payload = `reason`) is injected, what its lanes still hold is
/// counted as dropped, and the rest of the pipeline carries on — unless `can_exit` is false, in
/// which case hekate shuts down, as hekad does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The last error, as the termination message's payload.
    pub reason: String,
    /// Whether the pipeline may go on without the plugin (Heka's `can_exit`).
    pub can_exit: bool,
}

/// Why one message could not be processed; the runtime counts it as dropped and logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProcessError(pub String);

/// Where instances of a filter or output run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// One instance per worker shard, fed by that shard's router only (no ring hop between
    /// cores). For stateless or mergeable filters and outputs that open their own connection or
    /// file.
    PerShard,
    /// One instance on a home shard, fed by every shard through the SPSC ring mesh. For plugins
    /// that must see every message (aggregators, Lua sandboxes) or own one resource (stdout).
    Single,
}

// ---------------------------------------------------------------------------------------------
// Splitters

/// One step of a [`Splitter`] over the unconsumed bytes of a stream.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    /// Bytes of the input used up (the caller drops them before the next call).
    pub consumed: usize,
    /// Corrupt bytes skipped before the outcome (counted by the runtime).
    pub skipped: u64,
    /// What was found.
    pub outcome: SplitOutcome<'a>,
}

/// What a [`Split`] found.
#[derive(Debug, Clone, Copy)]
pub enum SplitOutcome<'a> {
    /// A complete record, borrowed from the input.
    Record {
        /// The record: an encoded message when the splitter uses message bytes, else a payload.
        bytes: &'a [u8],
        /// The signer whose signature verified, if any.
        signer: Option<&'a str>,
    },
    /// A well-framed record that was refused (bad or unknown signature); counted.
    Rejected,
    /// No complete record: keep the unconsumed bytes, read more, call again.
    NeedData,
}

/// A running splitter: one per connection or datagram source.
pub trait Splitter {
    /// Looks for the next record at the start of `buf`.
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a>;
    /// At the end of the stream: the final record if the splitter delivers incomplete records,
    /// else `NeedData` with the rest counted as skipped.
    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a>;
    /// Forgets stream state (between datagrams).
    fn reset(&mut self) {}
}

/// A configured splitter.
pub trait SplitterPlugin: Send + Sync + fmt::Debug {
    /// A fresh splitter for one stream. `signers` are the trusted keys of the input's `signer`
    /// subsections (only HekaFramingSplitter verifies signatures).
    fn new_splitter(&self, signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter>;
    /// Whether records are encoded messages (HekaFramingSplitter) rather than payloads.
    fn use_message_bytes(&self) -> bool;
    /// The initial read buffer size.
    fn min_buffer_size(&self) -> usize;
    /// The largest record: the read buffer grows to this size at most.
    fn max_record_size(&self) -> usize;
    /// `keep_truncated`: a record that does not fit the largest buffer is delivered cut short
    /// instead of skipped.
    fn keep_truncated(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Decoders

/// Where a record came from, for decoders that build messages.
#[derive(Debug, Clone, Copy)]
pub struct RecordSource<'a> {
    /// The Logger of messages built from payloads: the input's name, or the stream's for inputs
    /// that read several (LogstreamerInput).
    pub input: &'a str,
    /// The remote host (TcpInput, UdpInput with `set_hostname`) or the global hostname.
    pub hostname: &'a str,
    /// Whether the record is an encoded message (the splitter uses message bytes, e.g.
    /// HekaFramingSplitter) rather than a payload.
    pub message_bytes: bool,
    /// The Type of messages built from payloads, when the input sets one (LogstreamerInput:
    /// `logfile`).
    pub msg_type: Option<&'a str>,
    /// Encoded fields the input adds to every message built from a payload (FilePollingInput:
    /// `TickerInterval`, `FilePath`); empty for most inputs.
    pub fields: &'a [u8],
}

/// What a [`Decoder`] made of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The record itself is the encoded message: it is routed as is, without a copy.
    Record,
    /// The decoder appended this many encoded messages to the output buffer.
    Messages(usize),
}

/// A decode failure; counted, logged, and the record is dropped (or passed on with
/// `decode_failure = true` when the input sets `send_decode_failures`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Encoded messages a decoder produced from one record.
#[derive(Debug, Default)]
pub struct DecodedMessages {
    data: Vec<u8>,
    ends: Vec<usize>,
    /// Each message's layout when its writer knew it ([`DecodedMessages::push_written`]):
    /// routed without a scan.
    layouts: Vec<Option<ViewLayout>>,
    /// The fields of the messages whose layout is known, as their writer recorded them, one
    /// message after the other; each message's end in `field_ends`.
    fields: Vec<WrittenField>,
    field_ends: Vec<u32>,
}

impl DecodedMessages {
    /// Removes every message, keeping the memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.layouts.clear();
        self.fields.clear();
        self.field_ends.clear();
    }

    /// Appends one encoded message.
    pub fn push_encoded(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.end_message(None);
    }

    /// Closes the message written last, with its layout when its writer knew it.
    fn end_message(&mut self, layout: Option<ViewLayout>) {
        self.ends.push(self.data.len());
        self.layouts.push(layout);
        self.field_ends.push(self.fields.len() as u32);
    }

    /// Appends one message that `write` encodes straight into the buffer with the
    /// [`MessageWriter`] it is given, which records the message's layout and where each of its
    /// fields lies, so that the router neither scans the message nor parses its fields.
    pub fn push_written(&mut self, write: impl FnOnce(&mut MessageWriter<'_>)) {
        #[cfg(debug_assertions)]
        let mark = self.data.len();
        let field_mark = self.fields.len();
        let mut w = MessageWriter::recording(&mut self.data, &mut self.fields);
        write(&mut w);
        let layout = w.layout();
        if layout.is_none() {
            // Raw entries: the fields recorded may not be all of them.
            self.fields.truncate(field_mark);
        }
        #[cfg(debug_assertions)]
        check_written(&self.data[mark..], layout, &self.fields[field_mark..]);
        self.end_message(layout);
    }

    /// The messages, in order, each with its layout and its fields when its writer gave them.
    pub fn iter_written(
        &self,
    ) -> impl Iterator<Item = (&[u8], Option<(ViewLayout, &[WrittenField])>)> {
        let mut start = 0;
        self.iter()
            .zip(&self.layouts)
            .zip(&self.field_ends)
            .map(move |((msg, layout), &end)| {
                let fields = &self.fields[start..end as usize];
                start = end as usize;
                (msg, layout.map(|l| (l, fields)))
            })
    }

    /// Appends one message that `write` encodes straight into the buffer (with a
    /// [`MessageWriter`], say): no copy. When `write` fails, whatever it wrote is removed and
    /// nothing is appended.
    pub fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mark = self.data.len();
        match write(&mut self.data) {
            Ok(()) => {
                self.end_message(None);
                Ok(())
            }
            Err(e) => {
                self.data.truncate(mark);
                Err(e)
            }
        }
    }

    /// Appends one owned message, encoded.
    pub fn push(&mut self, msg: &Message) {
        use prost::Message as _;
        msg.encode(&mut self.data).expect("a Vec grows as needed");
        self.end_message(None);
    }

    /// The messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.data[start..end];
            start = end;
            s
        })
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The router trusts a writer's layout and fields: every test that decodes checks them against
/// a scan of the message.
#[cfg(debug_assertions)]
fn check_written(msg: &[u8], layout: Option<ViewLayout>, fields: &[WrittenField]) {
    use hekate_model::message::MessageAccess;
    let Some(layout) = layout else {
        return;
    };
    let scan = MessageView::new(msg).expect("a writer's message scans");
    assert_eq!(
        layout,
        scan.layout(),
        "a writer's layout differs from a scan of its message"
    );
    let written = MessageView::with_layout(msg, layout)
        .expect("same length")
        .with_written_fields(fields);
    for (i, f) in scan.fields().enumerate() {
        let name = f.name();
        let fi = scan.fields().take(i).filter(|g| g.name() == name).count();
        assert_eq!(
            written.field_value(name, fi, 0),
            scan.field_value(name, fi, 0),
            "a writer's record of field {i} differs from a scan of its message"
        );
    }
}

/// A running decoder.
pub trait Decoder {
    /// Decodes one record.
    ///
    /// On failure, messages the decoder left in `out` are still routed (a decoder announcing
    /// its own termination); the record itself is dropped or passed on as the input says.
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError>;

    /// Adds plugin-specific report fields (summed over the shards' instances, see
    /// [`ReportSink`]).
    fn report(&self, sink: &mut dyn ReportSink) {
        let _ = sink;
    }
}

/// A configured decoder.
pub trait DecoderPlugin: Send + Sync + fmt::Debug {
    /// A decoder for one shard.
    fn new_decoder(&self) -> Box<dyn Decoder>;
    /// Whether records are encoded messages routed as they are (ProtobufDecoder): the runtime
    /// then views them in place instead of calling the decoder.
    fn is_protobuf(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Filters, outputs, encoders

/// A message handed to a filter, an output or an encoder.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The message, viewed over its encoded bytes (`view.bytes()`).
    pub view: MessageView<'a>,
    /// How many times the message has been injected (0 for messages from inputs).
    pub loops: u8,
}

impl<'a> Delivery<'a> {
    /// The encoded message.
    pub fn bytes(&self) -> &'a [u8] {
        self.view.bytes()
    }
}

/// Collects the messages a filter injects; the runtime routes them after the call returns.
pub trait Inject {
    /// Injects a message built by the filter. Fails when the message would loop too often or
    /// would come back to this filter.
    fn inject(&mut self, msg: &Message) -> Result<(), ProcessError>;
    /// Injects an already encoded message.
    fn inject_encoded(&mut self, bytes: &[u8]) -> Result<(), ProcessError>;
}

/// Plugin-specific numbers for reports (`"Name": {"value": V, "representation": R}`).
///
/// When a plugin has an instance on several shards, the report merges their fields by name:
/// numbers are summed, except `Max…` fields (the largest wins) and `…AvgDuration` fields
/// (averaged, weighted by the matching `…Samples` field when there is one).
pub trait ReportSink {
    /// Adds an integer field.
    fn int(&mut self, name: &str, value: i64, representation: &str);
    /// Adds a floating-point field.
    fn float(&mut self, name: &str, value: f64, representation: &str);
    /// Adds a string field.
    fn string(&mut self, name: &str, value: &str);
}

/// A running filter.
pub trait Filter {
    /// Handles one matched message.
    fn process(&mut self, msg: &Delivery<'_>, inject: &mut dyn Inject) -> Result<(), ProcessError>;

    /// The period of [`Filter::timer_event`]; `None` for no timer.
    fn ticker_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every ticker interval.
    fn timer_event(&mut self, now_ns: i64, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        let _ = (now_ns, inject);
        Ok(())
    }

    /// Called once at shutdown (or unload), after the last message; not after a termination.
    fn shutdown(&mut self, inject: &mut dyn Inject) {
        let _ = inject;
    }

    /// Adds plugin-specific report fields.
    fn report(&self, sink: &mut dyn ReportSink) {
        let _ = sink;
    }

    /// Whether the filter stopped for good; asked after `process` or `timer_event` failed. See
    /// [`Termination`].
    fn termination(&self) -> Option<Termination> {
        None
    }
}

/// A configured filter.
pub trait FilterPlugin: Send + Sync + fmt::Debug {
    /// Where instances run.
    fn placement(&self) -> Placement;
    /// Creates the instance for one shard.
    fn new_filter(&self, ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError>;
    /// How many filters this plugin may load while the pipeline runs (SandboxManagerFilter's
    /// `max_filters`, through [`PipelineControl`](super::PipelineControl)); the runtime
    /// reserves that many plugin slots.
    fn dynamic_filters(&self) -> usize {
        0
    }
}

/// A failure to encode a message for an output; counted as dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// A running encoder.
pub trait Encoder {
    /// Encodes a message: the bytes are either the message's own (ProtobufEncoder) or the
    /// encoder's reused scratch buffer. `None` skips the message.
    fn encode<'a>(&'a mut self, msg: &'a Delivery<'a>) -> Result<Option<&'a [u8]>, EncodeError>;
    /// Adds encoder-specific report fields; they appear in the entry of the output that owns
    /// this encoder.
    fn report(&self, sink: &mut dyn ReportSink) {
        let _ = sink;
    }
}

/// A configured encoder.
pub trait EncoderPlugin: Send + Sync + fmt::Debug {
    /// An encoder for one output instance.
    fn new_encoder(&self) -> Box<dyn Encoder>;
    /// Whether this encoder writes the protobuf message (so outputs frame by default).
    fn is_protobuf(&self) -> bool {
        false
    }
}

/// Why an output could not write. The runtime logs it; when the output gave up on messages
/// (`dropped > 0`, e.g. after its `max_retries`) they are counted as dropped, otherwise the
/// runtime retries the flush after a pause, taking no new message meanwhile.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OutputError {
    /// One sentence.
    pub message: String,
    /// Messages the output discarded.
    pub dropped: u64,
}

impl OutputError {
    /// A failure that keeps the messages for the next attempt.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            dropped: 0,
        }
    }
}

/// A running output.
///
/// The runtime calls [`Output::process`] for each message (no I/O: encode into a buffer), then
/// [`Output::flush`] when [`Output::must_flush`] says the buffer is full, or after a batch when
/// [`Output::should_flush`] says so, or at [`Output::flush_deadline`]. While a flush is pending
/// the output takes no message: its rings fill and the inputs stop reading.
pub trait Output {
    /// Buffers one message.
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError>;
    /// Whether the buffer must be written before the next message (it is full).
    fn must_flush(&self) -> bool;
    /// Whether to write now, at the end of a batch or when idle.
    fn should_flush(&self, now: Instant) -> bool;
    /// When [`Output::should_flush`] turns true without new messages (a flush interval).
    fn flush_deadline(&self) -> Option<Instant> {
        None
    }
    /// Writes the buffer. Errors are retried by the plugin itself where its options say so;
    /// an error returned here leaves the messages buffered for the next flush.
    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>>;
    /// Messages accepted but not yet written.
    fn buffered(&self) -> u64;
    /// Messages written but kept until the destination confirms them, to be written again if
    /// it does not (a TcpOutput: until the peer's TCP acknowledged them and the connection
    /// stayed up a moment longer). While there are any, [`Output::flush_deadline`] says when to
    /// look again, and a flush looks. Messages leave an output (confirmed, or dropped and
    /// reported by [`OutputError::dropped`]) in the order they were given.
    fn unconfirmed(&self) -> u64 {
        0
    }
    /// Messages written (and confirmed, where the output waits for that) since the last call
    /// (for the `delivered` counter).
    fn take_written(&mut self) -> u64;
    /// Closes connections and files after the final flush.
    fn close(&mut self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Adds plugin-specific report fields.
    fn report(&self, sink: &mut dyn ReportSink) {
        let _ = sink;
    }

    /// Whether the output stopped for good; asked after `process` or `flush` failed. See
    /// [`Termination`].
    fn termination(&self) -> Option<Termination> {
        None
    }
}

/// A configured output.
pub trait OutputPlugin: Send + Sync + fmt::Debug {
    /// Where instances run.
    fn placement(&self) -> Placement;
    /// Creates the instance for one shard.
    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError>;
    /// Whether the output is fed through a disk queue when its section does not set
    /// `use_buffering` (false; TcpOutput's is true, as in Heka). A buffered output runs as one
    /// instance, whatever [`OutputPlugin::placement`] says.
    fn use_buffering_default(&self) -> bool {
        false
    }
    /// The queue options used when the section has no `[name.buffering]` subsection.
    fn buffering_defaults(&self) -> hekate_config::BufferingOptions {
        hekate_config::BufferingOptions::default()
    }
}

/// What a filter or output instance knows about where it runs.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The instance (section) name.
    pub name: String,
    /// The shard index (0-based) the instance runs on.
    pub shard: usize,
    /// The CPU core of that shard.
    pub core: usize,
    /// How many worker shards there are.
    pub shards: usize,
    /// Heka's hostname (global `hostname`).
    pub hostname: String,
    /// Global `max_message_size`.
    pub max_message_size: u32,
}

/// Collects a plugin's own report fields.
#[derive(Debug, Default)]
pub struct FieldCollector {
    /// The fields, in the order the plugin added them.
    pub fields: Vec<ReportField>,
}

impl ReportSink for FieldCollector {
    fn int(&mut self, name: &str, value: i64, representation: &str) {
        self.fields.push(ReportField::new(
            name,
            ReportValue::Int(value),
            representation,
        ));
    }

    fn float(&mut self, name: &str, value: f64, representation: &str) {
        self.fields.push(ReportField::new(
            name,
            ReportValue::Float(value),
            representation,
        ));
    }

    fn string(&mut self, name: &str, value: &str) {
        self.fields.push(ReportField::new(
            name,
            ReportValue::Str(value.to_string()),
            "",
        ));
    }
}

//! Plugin sections: every top-level table other than the global one is a plugin instance.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::ConfigError;
use crate::source::SourceFile;
use crate::value::Reader;

/// The six kinds of plugin, named by the suffix of a Heka type name (`TcpInput` → input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Produces messages from the outside world (`…Input`).
    Input,
    /// Cuts an input's byte stream into records (`…Splitter`).
    Splitter,
    /// Turns a record into a message (`…Decoder`).
    Decoder,
    /// Processes matched messages and may inject new ones (`…Filter`).
    Filter,
    /// Turns a message into bytes for an output (`…Encoder`).
    Encoder,
    /// Delivers matched messages to the outside world (`…Output`).
    Output,
}

impl Category {
    /// All categories, in pipeline order.
    pub const ALL: [Category; 6] = [
        Category::Input,
        Category::Splitter,
        Category::Decoder,
        Category::Filter,
        Category::Encoder,
        Category::Output,
    ];

    /// The category a type name belongs to, from its suffix; `None` when it has no known suffix.
    pub fn of_type(type_name: &str) -> Option<Category> {
        Self::ALL
            .into_iter()
            .find(|c| type_name.len() > c.suffix().len() && type_name.ends_with(c.suffix()))
    }

    /// The type-name suffix: `"Input"`, `"Splitter"`, …
    pub fn suffix(self) -> &'static str {
        match self {
            Category::Input => "Input",
            Category::Splitter => "Splitter",
            Category::Decoder => "Decoder",
            Category::Filter => "Filter",
            Category::Encoder => "Encoder",
            Category::Output => "Output",
        }
    }

    /// The options every plugin of this category accepts (Heka's common options; `type` not
    /// included). They are parsed by this crate into [`CommonOptions`].
    pub fn common_options(self) -> &'static [&'static str] {
        match self {
            Category::Input => INPUT_OPTIONS,
            Category::Splitter => SPLITTER_OPTIONS,
            Category::Decoder | Category::Encoder => &[],
            Category::Filter => FILTER_OPTIONS,
            Category::Output => OUTPUT_OPTIONS,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Input => "input",
            Category::Splitter => "splitter",
            Category::Decoder => "decoder",
            Category::Filter => "filter",
            Category::Encoder => "encoder",
            Category::Output => "output",
        })
    }
}

const INPUT_OPTIONS: &[&str] = &[
    "decoder",
    "splitter",
    "synchronous_decode",
    "send_decode_failures",
    "log_decode_failures",
    "can_exit",
    "ticker_interval",
    "retries",
];
const SPLITTER_OPTIONS: &[&str] = &[
    "keep_truncated",
    "use_message_bytes",
    "min_buffer_size",
    "deliver_incomplete_final",
];
const FILTER_OPTIONS: &[&str] = &[
    "message_matcher",
    "message_signer",
    "ticker_interval",
    "can_exit",
    "use_buffering",
    "buffering",
    "retries",
];
const OUTPUT_OPTIONS: &[&str] = &[
    "message_matcher",
    "message_signer",
    "ticker_interval",
    "can_exit",
    "use_buffering",
    "buffering",
    "retries",
    "encoder",
    "use_framing",
];
const RETRY_OPTIONS: &[&str] = &["max_delay", "delay", "max_jitter", "max_retries"];
const BUFFERING_OPTIONS: &[&str] = &[
    "max_file_size",
    "max_buffer_size",
    "full_action",
    "cursor_update_count",
];

/// The `[name.retries]` subsection: how a plugin retries a failed start or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOptions {
    /// `max_delay` ("30s"): the longest wait between attempts.
    pub max_delay: Duration,
    /// `delay` ("250ms"): the first wait; it doubles after each failure, up to `max_delay`.
    pub delay: Duration,
    /// `max_jitter` ("500ms"): a random extra wait up to this much is added to each delay.
    pub max_jitter: Duration,
    /// `max_retries` (-1): attempts before giving up; `None` (written -1) retries forever,
    /// `Some(0)` never retries.
    pub max_retries: Option<u64>,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_delay: Duration::from_secs(30),
            delay: Duration::from_millis(250),
            max_jitter: Duration::from_millis(500),
            max_retries: None,
        }
    }
}

/// What a disk-buffered plugin does when its queue reaches `max_buffer_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullAction {
    /// `"shutdown"`: stop hekate (Heka's default).
    #[default]
    Shutdown,
    /// `"drop"`: discard new messages (counted).
    Drop,
    /// `"block"`: stop taking messages, pushing back on the router.
    Block,
}

/// The `[name.buffering]` subsection: the disk queue in front of a filter or output.
///
/// As in Heka, when the subsection is present the plugin's own buffering defaults (e.g.
/// TcpOutput's `cursor_update_count = 50`) no longer apply: unspecified keys take the values below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferingOptions {
    /// `max_file_size` (512 MiB; bytes or a size string; 0 means the default): queue files roll
    /// over past this size.
    pub max_file_size: u64,
    /// `max_buffer_size` (0 = unlimited; bytes or a size string): total size of all queue files.
    pub max_buffer_size: Option<u64>,
    /// `full_action` ("shutdown"): what to do when `max_buffer_size` is reached.
    pub full_action: FullAction,
    /// `cursor_update_count` (1): the read position is checkpointed every this many deliveries.
    pub cursor_update_count: u64,
}

impl Default for BufferingOptions {
    fn default() -> Self {
        Self {
            max_file_size: 512 << 20,
            max_buffer_size: None,
            full_action: FullAction::Shutdown,
            cursor_update_count: 1,
        }
    }
}

/// Common options of an input section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOptions {
    /// `decoder`: the decoder section each record goes through; `None` = the plugin's default.
    pub decoder: Option<String>,
    /// `splitter`: the splitter section cutting the stream into records; `None` = the plugin's
    /// default (usually NullSplitter; TcpInput HekaFramingSplitter, LogstreamerInput TokenSplitter).
    pub splitter: Option<String>,
    /// `synchronous_decode` (false): decode on the input's own task rather than a decoder task.
    pub synchronous_decode: bool,
    /// `send_decode_failures` (false): pass on records that fail to decode, with field
    /// `decode_failure = true`, instead of dropping them.
    pub send_decode_failures: bool,
    /// `log_decode_failures` (true): log each decode failure.
    pub log_decode_failures: bool,
    /// `can_exit` (false): the input may stop without stopping hekate.
    pub can_exit: bool,
    /// `ticker_interval` (whole seconds): the period of polling inputs; `None` = the plugin's default.
    pub ticker_interval: Option<Duration>,
    /// `[name.retries]`.
    pub retries: RetryOptions,
}

/// Common options of a splitter section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitterOptions {
    /// `keep_truncated` (false): deliver a record that overflows the buffer, truncated, rather
    /// than drop it.
    pub keep_truncated: bool,
    /// `use_message_bytes`: records are encoded messages (true for HekaFramingSplitter) rather than
    /// payloads; `None` = the splitter's default.
    pub use_message_bytes: Option<bool>,
    /// `min_buffer_size` (bytes or a size string): the initial read buffer; `None` = the
    /// splitter's default (8 KiB, NullSplitter 64 KiB).
    pub min_buffer_size: Option<u64>,
    /// `deliver_incomplete_final` (false): emit a trailing partial record at end of stream.
    pub deliver_incomplete_final: bool,
}

/// Common options of a filter section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterOptions {
    /// `message_matcher`: the expression selecting the messages this plugin receives; `None` = the
    /// plugin's default (see [`crate::PluginCatalog::default_matcher`]).
    pub message_matcher: Option<String>,
    /// `message_signer`: only messages signed by this signer match.
    pub message_signer: Option<String>,
    /// `ticker_interval` (whole seconds, 0 = no timer): the period of `timer_event`;
    /// `None` = the plugin's default.
    pub ticker_interval: Option<Duration>,
    /// `can_exit`: the plugin may stop without stopping hekate; `None` = the plugin's default
    /// (true for sandboxes, false otherwise).
    pub can_exit: Option<bool>,
    /// `use_buffering`: put a disk queue in front of the plugin; `None` = the plugin's default.
    pub use_buffering: Option<bool>,
    /// `[name.buffering]`; `None` = the plugin's default buffering options.
    pub buffering: Option<BufferingOptions>,
    /// `[name.retries]`.
    pub retries: RetryOptions,
}

/// Common options of an output section: those of a filter plus the encoder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputOptions {
    /// `message_matcher`: the expression selecting the messages this plugin receives; `None` = the
    /// plugin's default (see [`crate::PluginCatalog::default_matcher`]).
    pub message_matcher: Option<String>,
    /// `message_signer`: only messages signed by this signer match.
    pub message_signer: Option<String>,
    /// `ticker_interval` (whole seconds, 0 = no timer); `None` = the plugin's default.
    pub ticker_interval: Option<Duration>,
    /// `can_exit`: the plugin may stop without stopping hekate; `None` = the plugin's default.
    pub can_exit: Option<bool>,
    /// `use_buffering`: put a disk queue in front of the output; `None` = the plugin's default
    /// (true for TcpOutput and ElasticSearchOutput).
    pub use_buffering: Option<bool>,
    /// `[name.buffering]`; `None` = the plugin's default buffering options.
    pub buffering: Option<BufferingOptions>,
    /// `[name.retries]`.
    pub retries: RetryOptions,
    /// `encoder`: the encoder section turning messages into bytes; `None` = the plugin's default.
    pub encoder: Option<String>,
    /// `use_framing`: wrap each encoded message in Heka stream framing; `None` = the plugin's
    /// default (true with ProtobufEncoder for TcpOutput and FileOutput).
    pub use_framing: Option<bool>,
}

/// The common options of a section, typed by category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommonOptions {
    /// An input's common options.
    Input(InputOptions),
    /// A splitter's common options.
    Splitter(SplitterOptions),
    /// Decoders have no common options.
    Decoder,
    /// A filter's common options.
    Filter(FilterOptions),
    /// Encoders have no common options.
    Encoder,
    /// An output's common options.
    Output(OutputOptions),
}

impl CommonOptions {
    /// The category these options belong to.
    pub fn category(&self) -> Category {
        match self {
            CommonOptions::Input(_) => Category::Input,
            CommonOptions::Splitter(_) => Category::Splitter,
            CommonOptions::Decoder => Category::Decoder,
            CommonOptions::Filter(_) => Category::Filter,
            CommonOptions::Encoder => Category::Encoder,
            CommonOptions::Output(_) => Category::Output,
        }
    }

    /// Reads the common options of `category` from a section, recording type errors.
    pub(crate) fn read(category: Category, r: &mut Reader<'_, '_>) -> CommonOptions {
        match category {
            Category::Input => CommonOptions::Input(InputOptions {
                decoder: r.string("decoder"),
                splitter: r.string("splitter"),
                synchronous_decode: r.bool("synchronous_decode").unwrap_or(false),
                send_decode_failures: r.bool("send_decode_failures").unwrap_or(false),
                log_decode_failures: r.bool("log_decode_failures").unwrap_or(true),
                can_exit: r.bool("can_exit").unwrap_or(false),
                ticker_interval: r.seconds("ticker_interval"),
                retries: read_retries(r),
            }),
            Category::Splitter => CommonOptions::Splitter(SplitterOptions {
                keep_truncated: r.bool("keep_truncated").unwrap_or(false),
                use_message_bytes: r.bool("use_message_bytes"),
                min_buffer_size: r.size("min_buffer_size"),
                deliver_incomplete_final: r.bool("deliver_incomplete_final").unwrap_or(false),
            }),
            Category::Decoder => CommonOptions::Decoder,
            Category::Encoder => CommonOptions::Encoder,
            Category::Filter => CommonOptions::Filter(read_filter(r)),
            Category::Output => {
                let f = read_filter(r);
                CommonOptions::Output(OutputOptions {
                    message_matcher: f.message_matcher,
                    message_signer: f.message_signer,
                    ticker_interval: f.ticker_interval,
                    can_exit: f.can_exit,
                    use_buffering: f.use_buffering,
                    buffering: f.buffering,
                    retries: f.retries,
                    encoder: r.string("encoder"),
                    use_framing: r.bool("use_framing"),
                })
            }
        }
    }

    /// Common options of a section that sets none of them.
    pub(crate) fn defaults(category: Category) -> CommonOptions {
        match category {
            Category::Input => CommonOptions::Input(InputOptions {
                decoder: None,
                splitter: None,
                synchronous_decode: false,
                send_decode_failures: false,
                log_decode_failures: true,
                can_exit: false,
                ticker_interval: None,
                retries: RetryOptions::default(),
            }),
            Category::Splitter => CommonOptions::Splitter(SplitterOptions::default()),
            Category::Decoder => CommonOptions::Decoder,
            Category::Encoder => CommonOptions::Encoder,
            Category::Filter => CommonOptions::Filter(FilterOptions::default()),
            Category::Output => CommonOptions::Output(OutputOptions::default()),
        }
    }
}

fn read_filter(r: &mut Reader<'_, '_>) -> FilterOptions {
    FilterOptions {
        message_matcher: r.string("message_matcher"),
        message_signer: r.string("message_signer"),
        ticker_interval: r.seconds("ticker_interval"),
        can_exit: r.bool("can_exit"),
        use_buffering: r.bool("use_buffering"),
        buffering: read_buffering(r),
        retries: read_retries(r),
    }
}

fn read_retries(r: &mut Reader<'_, '_>) -> RetryOptions {
    let mut retries = RetryOptions::default();
    let Some(table) = r.table("retries") else {
        return retries;
    };
    let mut sub = r.sub("retries", table);
    sub.reject_unknown_keys(RETRY_OPTIONS);
    if let Some(d) = sub.duration("max_delay") {
        retries.max_delay = d;
    }
    if let Some(d) = sub.duration("delay") {
        retries.delay = d;
    }
    if let Some(d) = sub.duration("max_jitter") {
        retries.max_jitter = d;
    }
    if let Some(n) = sub.int_in("max_retries", -1, i64::MAX, "an integer (-1 = forever)") {
        retries.max_retries = u64::try_from(n).ok();
    }
    retries
}

fn read_buffering(r: &mut Reader<'_, '_>) -> Option<BufferingOptions> {
    let table = r.table("buffering")?;
    let mut buffering = BufferingOptions::default();
    let mut sub = r.sub("buffering", table);
    sub.reject_unknown_keys(BUFFERING_OPTIONS);
    if let Some(size) = sub.size("max_file_size").filter(|&s| s > 0) {
        buffering.max_file_size = size;
    }
    if let Some(size) = sub.size("max_buffer_size") {
        buffering.max_buffer_size = (size > 0).then_some(size);
    }
    if let Some(action) = sub.choice("full_action", &["shutdown", "drop", "block"]) {
        buffering.full_action = match action.as_str() {
            "drop" => FullAction::Drop,
            "block" => FullAction::Block,
            _ => FullAction::Shutdown,
        };
    }
    if let Some(count) = sub.u64("cursor_update_count") {
        buffering.cursor_update_count = count.max(1);
    }
    Some(buffering)
}

/// The byte spans of one key of a section: the key itself and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeySpans {
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// One plugin instance: a top-level section of the config (or one of the default instances
/// that exist without being declared).
///
/// Common options are parsed into [`PluginSection::common`]; the plugin parses its own options
/// with [`PluginSection::options`], whose errors carry the file and line like every other
/// config error.
#[derive(Debug, Clone)]
pub struct PluginSection {
    pub(crate) name: String,
    pub(crate) type_name: String,
    pub(crate) common: CommonOptions,
    /// The whole section (including `type` and the common options).
    pub(crate) values: toml::Table,
    /// The span of the section header (`[name]`) in the source text.
    pub(crate) header: Range<usize>,
    /// Spans of every key and array element, by path (`address`, `retries.delay`, `subs.1`).
    pub(crate) spans: BTreeMap<String, KeySpans>,
    /// Where the section was written; `None` for a default instance.
    pub(crate) source: Option<Arc<SourceFile>>,
}

/// File name used in errors about default instances, which are in no file.
const DEFAULT_ORIGIN: &str = "(built-in default instance)";

impl PluginSection {
    /// Builds a declared section from its parsed table.
    pub(crate) fn declared(
        name: String,
        type_name: String,
        common: CommonOptions,
        table: &Spanned<DeTable<'_>>,
        source: Arc<SourceFile>,
    ) -> Self {
        let mut spans = BTreeMap::new();
        index_table("", table.get_ref(), &mut spans);
        Self {
            name,
            type_name,
            common,
            values: to_toml_table(table),
            header: table.span(),
            spans,
            source: Some(source),
        }
    }

    /// A default instance of `type_name` (named after its type, with no options).
    pub(crate) fn default_instance(type_name: &str, category: Category) -> Self {
        Self {
            name: type_name.to_string(),
            type_name: type_name.to_string(),
            common: CommonOptions::defaults(category),
            values: toml::Table::new(),
            header: 0..0,
            spans: BTreeMap::new(),
            source: None,
        }
    }

    /// The instance name: the section name, e.g. `TCP:5565` for `[TCP:5565]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin type: the `type` key, or the section name when `type` is absent.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The category, from the type name's suffix.
    pub fn category(&self) -> Category {
        self.common.category()
    }

    /// The common options of the section's category.
    pub fn common(&self) -> &CommonOptions {
        &self.common
    }

    /// The input common options, if this is an input.
    pub fn input(&self) -> Option<&InputOptions> {
        match &self.common {
            CommonOptions::Input(o) => Some(o),
            _ => None,
        }
    }

    /// The splitter common options, if this is a splitter.
    pub fn splitter(&self) -> Option<&SplitterOptions> {
        match &self.common {
            CommonOptions::Splitter(o) => Some(o),
            _ => None,
        }
    }

    /// The filter common options, if this is a filter.
    pub fn filter(&self) -> Option<&FilterOptions> {
        match &self.common {
            CommonOptions::Filter(o) => Some(o),
            _ => None,
        }
    }

    /// The output common options, if this is an output.
    pub fn output(&self) -> Option<&OutputOptions> {
        match &self.common {
            CommonOptions::Output(o) => Some(o),
            _ => None,
        }
    }

    /// The `message_matcher` of a filter or output, as written (`None` if unset or another category).
    pub fn message_matcher(&self) -> Option<&str> {
        match &self.common {
            CommonOptions::Filter(o) => o.message_matcher.as_deref(),
            CommonOptions::Output(o) => o.message_matcher.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a default instance that no file declared.
    pub fn is_default_instance(&self) -> bool {
        self.source.is_none()
    }

    /// The file the section was written in; `None` for a default instance.
    pub fn source(&self) -> Option<&SourceFile> {
        self.source.as_deref()
    }

    /// The whole section as written, including `type` and the common options.
    pub fn values(&self) -> &toml::Table {
        &self.values
    }

    /// One value of the section (any key, common or plugin-specific).
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.values.get(key)
    }

    /// The plugin-specific part of the section: every key except `type` and the category's common
    /// options (e.g. to hand a sandbox its `config` table).
    pub fn plugin_values(&self) -> toml::Table {
        let common = self.category().common_options();
        self.values
            .iter()
            .filter(|(key, _)| *key != "type" && !common.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// The byte span of the section header (`[name]`) in [`SourceFile::text`]; `0..0` for a
    /// default instance.
    pub fn header_span(&self) -> Range<usize> {
        self.header.clone()
    }

    /// The byte span of a value, by path: `"address"`, `"retries.delay"`, `"subs.1"` (array
    /// elements by index).
    pub fn value_span(&self, path: &str) -> Option<Range<usize>> {
        self.spans.get(path).map(|s| s.value.clone())
    }

    /// The byte span of a key (for array elements, of the element), by path as for
    /// [`PluginSection::value_span`].
    pub fn key_span(&self, path: &str) -> Option<Range<usize>> {
        self.spans.get(path).map(|s| s.key.clone())
    }

    /// Deserializes the plugin's own options struct from the plugin-specific part of the section
    /// ([`PluginSection::plugin_values`]).
    ///
    /// Put `#[serde(deny_unknown_fields)]` on the struct so that misspelled keys are refused, and
    /// wrap fields in [`toml::Spanned`] where the plugin wants to report its own errors at them
    /// (with [`PluginSection::error_at`]). An error comes back located at the offending key or
    /// value, e.g. `hekad.toml:12:1: unknown field `adress`, expected one of `address`, `net` in
    /// section [tcp]`.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let common = self.category().common_options();
        let keep = |key: &str| key != "type" && !common.contains(&key);
        let Some(source) = &self.source else {
            let empty = Spanned::new(0..0, DeTable::new());
            return T::deserialize(toml::de::Deserializer::from(empty)).map_err(|e| {
                self.error_at(0..0, format!("{} in section [{}]", e.message(), self.name))
            });
        };
        // The section is parsed again from its file's text rather than kept parsed, so that
        // spans survive without the config borrowing its sources.
        let (root, _) = DeTable::parse_recoverable(source.text());
        let table: DeTable<'_> = match root.get_ref().get(self.name.as_str()).map(|v| v.get_ref()) {
            Some(DeValue::Table(table)) => table
                .iter()
                .filter(|(key, _)| keep(key.get_ref()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            _ => DeTable::new(),
        };
        let table = Spanned::new(self.header.clone(), table);
        T::deserialize(toml::de::Deserializer::from(table)).map_err(|e| {
            let message = format!("{} in section [{}]", e.message().trim_end(), self.name);
            self.error_at(e.span().unwrap_or_else(|| self.header.clone()), message)
        })
    }

    /// An error located at a byte span of this section's source (e.g. from
    /// [`PluginSection::value_span`] or a [`toml::Spanned`] field), for problems a plugin finds itself.
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        match &self.source {
            Some(source) => source.error_at(span.start, message),
            None => ConfigError::in_file(DEFAULT_ORIGIN, message),
        }
    }

    /// An error located at the value at `path` (see [`PluginSection::value_span`]), or at the
    /// section header if there is no such value.
    pub fn error_at_value(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let span = self.value_span(path).unwrap_or_else(|| self.header.clone());
        self.error_at(span, message)
    }

    /// An error located at the key at `path`, or at the section header if there is no such key.
    pub fn error_at_key(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let span = self.key_span(path).unwrap_or_else(|| self.header.clone());
        self.error_at(span, message)
    }

    /// The value of `key` if it is a string.
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(toml::Value::as_str)
    }
}

fn index_table(prefix: &str, table: &DeTable<'_>, out: &mut BTreeMap<String, KeySpans>) {
    for (key, value) in table.iter() {
        let path = format!("{prefix}{}", key.get_ref());
        out.insert(
            path.clone(),
            KeySpans {
                key: key.span(),
                value: value.span(),
            },
        );
        index_value(&path, value, out);
    }
}

fn index_value(path: &str, value: &Spanned<DeValue<'_>>, out: &mut BTreeMap<String, KeySpans>) {
    match value.get_ref() {
        DeValue::Table(table) => index_table(&format!("{path}."), table, out),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                let element_path = format!("{path}.{i}");
                out.insert(
                    element_path.clone(),
                    KeySpans {
                        key: element.span(),
                        value: element.span(),
                    },
                );
                index_value(&element_path, element, out);
            }
        }
        _ => {}
    }
}

/// A parsed table as a plain `toml` table (values without spans).
fn to_toml_table(table: &Spanned<DeTable<'_>>) -> toml::Table {
    toml::Table::deserialize(toml::de::Deserializer::from(table.clone())).unwrap_or_default()
}

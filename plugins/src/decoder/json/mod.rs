//! JsonDecoder: turns a payload holding one JSON document into a message, natively (simd-json),
//! the way Heka's `lua_decoders/json.lua` does: a SandboxDecoder section running `json.lua`
//! switches by changing its `type` line — `filename`, the sandbox limits and the
//! `[X.config]` subsection are read as they are.
//!
//! ```toml
//! [app_json]
//! type = "JsonDecoder"
//! message_type = "artemis"
//! payload_keep = true
//! map_fields = true
//! Severity = "severity"
//! Hostname = "host"
//! Timestamp = "time"
//! timestamp_format = "%Y-%m-%dT%H:%M:%SZ"
//! ```
//!
//! The same, as a `json.lua` section wrote it (only the `type` line changed):
//!
//! ```text
//! [app_json]
//! type = "JsonDecoder"
//! filename = "lua_decoders/json.lua"
//!
//!     [app_json.config]
//!     type = "artemis"
//!     payload_keep = true
//!     map_fields = true
//!     Severity = "severity"
//! ```
//!
//! The message:
//!
//! | | from |
//! |---|---|
//! | Type | `message_type` ("json"); with `Type` mapped, the member (none when it is missing: the input's Type, if any) |
//! | Payload | the record without its line end with `payload_keep`, else none; with `Payload` mapped, the member |
//! | Uuid, Logger, Hostname | the mapped member (a Uuid as 36-character text or 16 bytes); else a random Uuid, the input's name, the input's Hostname |
//! | Severity, Pid | the mapped member, a number (truncated to an integer) |
//! | EnvVersion | the mapped member, a number, written as Lua writes it (`%.14g`) |
//! | Timestamp | the member `Timestamp` names: parsed with `timestamp_format` (strftime) when set, else a number of nanoseconds since the epoch (a number or numeric text); the time of decoding otherwise |
//! | Fields | every other member, flattened as `json.lua`'s `util.table_to_fields` does |
//!
//! Header mapping (`Payload`, `Uuid`, `Type`, `Logger`, `Hostname`, `Severity`, `EnvVersion`,
//! `Pid`: each names a top-level member) happens only with `map_fields`, and only for a member
//! of the expected type (text for the first five, a number for the others); a mapped member
//! becomes a header and no field, a member of another type stays a field. As in `json.lua`, a
//! mapped header whose member is missing is left empty (a mapped `Payload` then empties the
//! payload `payload_keep` kept). `Timestamp` is read with or without `map_fields`, and its member
//! is never a field.
//!
//! Fields, as Lua writes them: text is a STRING, a number a DOUBLE (every JSON number: Lua has
//! no integers), `true`/`false` a BOOL; `null` is dropped (lua_sandbox's cjson discards it).
//! Nested objects are flattened with dots (`{"extra":{"id":"x"}}` → `extra.id`), arrays with
//! their 1-based index (`{"tags":["a","b"]}` → `tags.1`, `tags.2`); an empty object or array
//! adds nothing. A name that occurs twice (a repeated member, or `{"a.b":1,"a":{"b":2}}`) is one
//! field, with the last value. A top-level array is flattened the same way (fields `1`, `2`, …).
//!
//! A record that is an encoded message (after HekaFramingSplitter, or in a MultiDecoder after
//! another decoder) is read as `json.lua` reads it: its Payload is the document, and its Type,
//! Logger and Hostname fill the headers left empty.
//!
//! A record that is not a JSON object or array (invalid JSON, a bare string or number, nesting
//! deeper than 1000 as cjson allows), or whose timestamp does not match `timestamp_format`, is a
//! decode failure: counted, and with the input's `send_decode_failures` passed on with
//! `decode_failure = true`. Text that is not UTF-8 is read with U+FFFD in place of the bad
//! bytes and counted (`InvalidUtf8Count`).
//!
//! Options: `message_type` ("json"; `type` in `[X.config]`), `payload_keep` (false),
//! `map_fields` (false), the mapped members (`Payload`, `Uuid`, `Type`, `Logger`, `Hostname`,
//! `Severity`, `EnvVersion`, `Pid`, `Timestamp`), `timestamp_format` (none), `config`.

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink, options_of,
};
use hekate_model::message::{MessageAccess as _, MessageView, parse_uuid};
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};
use schemars::JsonSchema;
use serde::Deserialize;
use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "JsonDecoder",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// cjson's default `decode_max_depth`.
const MAX_DEPTH: usize = 1000;

/// JsonDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// The sandbox options are accepted, never read.
#[allow(dead_code)]
struct Options {
    /// The Type of every message (`json.lua`'s `type`).
    #[serde(default = "default_type")]
    message_type: String,
    /// Keep the record (without its line end) as the Payload.
    #[serde(default)]
    payload_keep: bool,
    /// Map the members named by `Payload`, `Uuid`, `Type`, `Logger`, `Hostname`, `Severity`,
    /// `EnvVersion` and `Pid` to those headers.
    #[serde(default)]
    map_fields: bool,
    /// The top-level member that becomes the Payload (text), with `map_fields`.
    #[serde(default, rename = "Payload")]
    payload: Option<String>,
    /// The top-level member that becomes the Uuid (36-character text or 16 bytes), with
    /// `map_fields`.
    #[serde(default, rename = "Uuid")]
    uuid: Option<String>,
    /// The top-level member that becomes the Type (text), with `map_fields`; it takes precedence
    /// over `message_type`.
    #[serde(default, rename = "Type")]
    msg_type: Option<String>,
    /// The top-level member that becomes the Logger (text), with `map_fields`.
    #[serde(default, rename = "Logger")]
    logger: Option<String>,
    /// The top-level member that becomes the Hostname (text), with `map_fields`.
    #[serde(default, rename = "Hostname")]
    hostname: Option<String>,
    /// The top-level member that becomes the Severity (a number), with `map_fields`.
    #[serde(default, rename = "Severity")]
    severity: Option<String>,
    /// The top-level member that becomes the EnvVersion (a number), with `map_fields`.
    #[serde(default, rename = "EnvVersion")]
    env_version: Option<String>,
    /// The top-level member that becomes the Pid (a number), with `map_fields`.
    #[serde(default, rename = "Pid")]
    pid: Option<String>,
    /// The top-level member that becomes the Timestamp (with or without `map_fields`): parsed
    /// with `timestamp_format`, else nanoseconds since the epoch.
    #[serde(default, rename = "Timestamp")]
    timestamp: Option<String>,
    /// The strftime format of the `Timestamp` member (`%Y-%m-%dT%H:%M:%S%z`; `%S` takes a
    /// fraction, `%z` takes `+0100`, `+01:00` and `Z`; without an offset the time is UTC). Unset: the member is nanoseconds since the
    /// epoch.
    #[serde(default)]
    timestamp_format: Option<String>,
    /// `json.lua`'s options as a SandboxDecoder section held them (`[X.config]`, where the
    /// message type is `type`); they take precedence over the options above.
    #[serde(default)]
    #[schemars(schema_with = "crate::common::any_table")]
    config: Option<toml::Table>,
    /// Accepted (and ignored) so that a SandboxDecoder section running `json.lua` switches by
    /// changing its type.
    #[serde(default)]
    filename: Option<String>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    script_type: Option<String>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    memory_limit: Option<u64>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    instruction_limit: Option<u64>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    output_limit: Option<u64>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    module_directory: Option<String>,
    /// Accepted and ignored, as `filename` (`json.lua` keeps no data).
    #[serde(default)]
    preserve_data: Option<bool>,
    /// Accepted and ignored, as `filename`.
    #[serde(default)]
    profile: Option<bool>,
}

fn default_type() -> String {
    "json".into()
}

/// `json.lua`'s `[X.config]` keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LuaConfig {
    #[serde(default, rename = "type")]
    message_type: Option<String>,
    #[serde(default)]
    payload_keep: Option<bool>,
    #[serde(default)]
    map_fields: Option<bool>,
    #[serde(default, rename = "Payload")]
    payload: Option<String>,
    #[serde(default, rename = "Uuid")]
    uuid: Option<String>,
    #[serde(default, rename = "Type")]
    msg_type: Option<String>,
    #[serde(default, rename = "Logger")]
    logger: Option<String>,
    #[serde(default, rename = "Hostname")]
    hostname: Option<String>,
    #[serde(default, rename = "Severity")]
    severity: Option<String>,
    #[serde(default, rename = "EnvVersion")]
    env_version: Option<String>,
    #[serde(default, rename = "Pid")]
    pid: Option<String>,
    #[serde(default, rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(default)]
    timestamp_format: Option<String>,
}

/// The headers a member can be mapped to, in [`Plan::headers`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Payload,
    Uuid,
    Type,
    Logger,
    Hostname,
    Severity,
    EnvVersion,
    Pid,
}

const HEADER_COUNT: usize = 8;

impl Header {
    const ALL: [Header; HEADER_COUNT] = [
        Header::Payload,
        Header::Uuid,
        Header::Type,
        Header::Logger,
        Header::Hostname,
        Header::Severity,
        Header::EnvVersion,
        Header::Pid,
    ];

    /// Whether a member of this JSON kind maps (text for the first five, a number for the rest).
    fn takes(self, node: &Node<'_>) -> bool {
        match self {
            Header::Severity | Header::EnvVersion | Header::Pid => number(node).is_some(),
            _ => matches!(node, Node::String(_)),
        }
    }
}

/// What the options say, resolved once.
#[derive(Debug)]
struct Plan {
    message_type: String,
    payload_keep: bool,
    /// The member of each header (only with `map_fields`).
    headers: [Option<String>; HEADER_COUNT],
    /// The members that are not fields (the timestamp's, then the mapped headers'), each with
    /// its header (`None`: the timestamp), to check each top-level member against once; with
    /// the [`name_hash`] of each, compared first.
    special: Vec<(String, u64, Option<usize>)>,
    /// Bit `hash % 64` of each special member's hash: a member whose bit is clear is no special
    /// one, and most members are fields.
    special_bits: u64,
    /// The format, for jiff (`%S` followed by an optional fraction), and its variants for the
    /// offsets Lua's `%z` also reads (`+01:00`, `Z`); tried in turn.
    timestamp_formats: Vec<String>,
}

#[derive(Debug)]
struct JsonDecoderPlugin {
    plan: Arc<Plan>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Decoder(Arc::new(JsonDecoderPlugin {
        plan: Arc::new(configure(section)?),
    })))
}

fn configure(section: &PluginSection) -> Result<Plan, ConfigError> {
    let opts: Options = section.options()?;
    let lua: LuaConfig = match &opts.config {
        Some(t) => toml::Value::Table(t.clone()).try_into().map_err(|e| {
            section.error_at_value(
                "config",
                format!("`config` of [{}]: {}", section.name(), e.message()),
            )
        })?,
        None => LuaConfig::default(),
    };
    let map_fields = lua.map_fields.unwrap_or(opts.map_fields);
    let members = [
        lua.payload.or(opts.payload),
        lua.uuid.or(opts.uuid),
        lua.msg_type.or(opts.msg_type),
        lua.logger.or(opts.logger),
        lua.hostname.or(opts.hostname),
        lua.severity.or(opts.severity),
        lua.env_version.or(opts.env_version),
        lua.pid.or(opts.pid),
    ];
    let headers = if map_fields {
        members
    } else {
        Default::default()
    };
    let timestamp_format = lua.timestamp_format.or(opts.timestamp_format);
    let timestamp_formats = match timestamp_format.filter(|f| !f.is_empty()) {
        None => Vec::new(),
        Some(f) => {
            let f = jiff_format(&f);
            // A format jiff cannot use fails here, not on every record.
            let probe = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC);
            if let Err(e) = jiff::fmt::strtime::format(&f, &probe) {
                return Err(section.error_at_value(
                    "timestamp_format",
                    format!("`timestamp_format` of [{}]: {e}", section.name()),
                ));
            }
            let mut all = vec![f.clone()];
            if f.contains("%z") {
                all.push(f.replace("%z", "%:z"));
                all.push(f.replace("%z", "Z"));
            }
            all
        }
    };
    let timestamp = lua.timestamp.or(opts.timestamp);
    let special: Vec<(String, u64, Option<usize>)> = timestamp
        .iter()
        .map(|t| (t.clone(), None))
        .chain(
            headers
                .iter()
                .enumerate()
                .filter_map(|(h, m)| m.as_ref().map(|m| (m.clone(), Some(h)))),
        )
        .map(|(name, slot)| {
            let hash = name_hash(name.as_bytes());
            (name, hash, slot)
        })
        .collect();
    Ok(Plan {
        message_type: lua.message_type.unwrap_or(opts.message_type),
        payload_keep: lua.payload_keep.unwrap_or(opts.payload_keep),
        headers,
        special_bits: special
            .iter()
            .fold(0, |bits, (_, h, _)| bits | 1 << (h & 63)),
        special,
        timestamp_formats,
    })
}

/// Lua's date_time grammar reads fractional seconds after `%S`; jiff wants them asked for.
fn jiff_format(f: &str) -> String {
    let mut out = String::with_capacity(f.len() + 4);
    let mut rest = f;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let directive = &rest[at..];
        let len = directive.chars().nth(1).map_or(1, |c| 1 + c.len_utf8());
        out.push_str(&directive[..len]);
        rest = &directive[len..];
        let fraction_follows = ["%.f", "%f", "%N"].iter().any(|p| rest.starts_with(p));
        if (directive.starts_with("%S") || directive.starts_with("%T")) && !fraction_follows {
            out.push_str("%.f");
        }
    }
    out.push_str(rest);
    out
}

impl DecoderPlugin for JsonDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(JsonDecoder::new(Arc::clone(&self.plan)))
    }
}

/// A leaf that becomes a field: its flattened name in [`JsonDecoder::names`] (or, for a
/// top-level member, its key on the tape) and its node.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name_start: u32,
    name_end: u32,
    /// The tape index of the key that names a top-level member; `NO_KEY` for a name in the
    /// arena.
    key: u32,
    /// The tape index of the value; `u32::MAX` once a later entry of the same name replaced it.
    node: u32,
    /// A hash of the name, to find repeated names.
    hash: u64,
}

const REPLACED: u32 = u32::MAX;
const NO_KEY: u32 = u32::MAX;

impl Entry {
    fn name<'n>(&self, names: &'n str, nodes: &[Node<'n>]) -> &'n str {
        match nodes.get(self.key as usize) {
            Some(Node::String(k)) if self.key != NO_KEY => k,
            _ => &names[self.name_start as usize..self.name_end as usize],
        }
    }
}

/// One running JsonDecoder (one per shard).
struct JsonDecoder {
    plan: Arc<Plan>,
    /// The record, copied with simd-json's padding (parsing unescapes strings in place).
    input: Vec<u8>,
    buffers: Buffers,
    /// The tape's allocation, kept between records.
    tape: Option<Tape<'static>>,
    /// Flattened field names, one after the other.
    names: String,
    /// The name being built while walking.
    path: String,
    entries: Vec<Entry>,
    /// Entry indices, sorted by name to find repeated names in large documents.
    order: Vec<u32>,
    /// The record with bad UTF-8 replaced.
    repaired: Vec<u8>,
    invalid_utf8: u64,
}

/// The value of a JSON number, as Lua holds it.
fn number(node: &Node<'_>) -> Option<f64> {
    match node {
        Node::Static(StaticNode::I64(i)) => Some(*i as f64),
        Node::Static(StaticNode::U64(u)) => Some(*u as f64),
        Node::Static(StaticNode::F64(f)) => Some(*f),
        _ => None,
    }
}

/// The number of tape nodes of the value at `i`, itself included.
fn span(nodes: &[Node<'_>], i: usize) -> usize {
    match nodes[i] {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// Where the walk puts what it finds.
struct Walk<'a> {
    names: &'a mut String,
    path: &'a mut String,
    entries: &'a mut Vec<Entry>,
}

impl Walk<'_> {
    /// Adds the value at `i` under the name in `path`; returns the index after it.
    fn value(&mut self, nodes: &[Node<'_>], i: usize) -> usize {
        match nodes[i] {
            Node::Object { len, .. } => {
                let mut j = i + 1;
                for _ in 0..len {
                    let Node::String(key) = nodes[j] else {
                        return i + span(nodes, i);
                    };
                    let mark = self.path.len();
                    self.path.push('.');
                    self.path.push_str(key);
                    j = self.value(nodes, j + 1);
                    self.path.truncate(mark);
                }
                j
            }
            Node::Array { len, .. } => {
                let mut j = i + 1;
                let mut digits = itoa_buf();
                for k in 1..=len {
                    let mark = self.path.len();
                    self.path.push('.');
                    self.path.push_str(format_index(&mut digits, k));
                    j = self.value(nodes, j);
                    self.path.truncate(mark);
                }
                j
            }
            Node::Static(StaticNode::Null) => i + 1,
            _ => {
                self.leaf(i);
                i + 1
            }
        }
    }

    /// Adds the leaf at `i` named by `path`.
    fn leaf(&mut self, i: usize) {
        let start = self.names.len();
        self.names.push_str(self.path);
        self.entries.push(Entry {
            name_start: start as u32,
            name_end: self.names.len() as u32,
            key: NO_KEY,
            node: i as u32,
            hash: name_hash(self.path.as_bytes()),
        });
    }
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `k` in decimal, in `buf`.
fn format_index(buf: &mut [u8; 20], mut k: usize) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (k % 10) as u8;
        k /= 10;
        if k == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// The headers and timestamp found at the top level: tape indices.
#[derive(Default)]
struct Found {
    headers: [Option<u32>; HEADER_COUNT],
    timestamp: Option<u32>,
}

impl JsonDecoder {
    fn new(plan: Arc<Plan>) -> Self {
        Self {
            plan,
            input: Vec::new(),
            buffers: Buffers::with_max_depth(512, MAX_DEPTH),
            tape: Some(Tape::null()),
            names: String::new(),
            path: String::new(),
            entries: Vec::new(),
            order: Vec::new(),
            repaired: Vec::new(),
            invalid_utf8: 0,
        }
    }
}

/// A header as text; empty when it is not UTF-8.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// `record` without a trailing `\n` or `\r\n`.
fn without_line_end(record: &[u8]) -> &[u8] {
    let r = record.strip_suffix(b"\n").unwrap_or(record);
    r.strip_suffix(b"\r").unwrap_or(r)
}

impl Decoder for JsonDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        // A record that is an encoded message (after HekaFramingSplitter, or inside a
        // MultiDecoder): its Payload is the document, its headers what json.lua's
        // inject_message fills in.
        let view;
        let from_message;
        let (record, source) = if source.message_bytes {
            view = MessageView::new(record)
                .map_err(|e| DecodeError(format!("not a Heka message: {e}")))?;
            let t = text(view.msg_type());
            from_message = RecordSource {
                input: text(view.logger()),
                hostname: text(view.hostname()),
                message_bytes: false,
                msg_type: (!t.is_empty()).then_some(t),
                fields: &[],
            };
            (view.payload(), &from_message)
        } else {
            (record, source)
        };
        self.decode_text(without_line_end(record), source, out, true)
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("InvalidUtf8Count", self.invalid_utf8 as i64, "count");
    }
}

impl JsonDecoder {
    /// Decodes a document; when it does not parse and is not UTF-8 (simd-json checks UTF-8 as
    /// it parses, so a valid record is not checked twice), once more with the bad bytes
    /// replaced.
    fn decode_text(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
        may_repair: bool,
    ) -> Result<Decoded, DecodeError> {
        let Self {
            plan,
            input,
            buffers,
            tape: kept,
            names,
            path,
            entries,
            order,
            ..
        } = self;
        input.clear();
        input.extend_from_slice(record);
        input.resize(record.len() + INPUT_PADDING, 0);
        let mut tape = kept.take().unwrap_or_else(Tape::null).reset();
        let parsed = simd_json::fill_tape_padded(input, record.len(), buffers, &mut tape)
            .map_err(|e| DecodeError(format!("Failed to decode JSON: {e}")));
        if parsed.is_err() && may_repair && simdutf8::basic::from_utf8(record).is_err() {
            *kept = Some(tape.reset());
            let mut repaired = std::mem::take(&mut self.repaired);
            repaired.clear();
            for chunk in record.utf8_chunks() {
                repaired.extend_from_slice(chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    repaired.extend_from_slice("\u{FFFD}".as_bytes());
                }
            }
            self.invalid_utf8 += 1;
            let result = self.decode_text(&repaired, source, out, false);
            self.repaired = repaired;
            return result;
        }
        let result = parsed.and_then(|()| {
            let nodes = &tape.0[..];
            let found = collect(plan, nodes, names, path, entries)?;
            drop_repeated(names, nodes, entries, order);
            let timestamp = timestamp(plan, nodes, found.timestamp)?;
            out.push_written(|w| {
                w.reserve(record.len() + 64 + 8 * entries.len());
                write(
                    plan, nodes, &found, timestamp, names, entries, record, source, w,
                );
            });
            Ok(())
        });
        *kept = Some(tape.reset());
        result.map(|()| Decoded::Messages(1))
    }
}

/// Walks the document: mapped headers and the timestamp member into [`Found`], every other
/// leaf into `entries`.
fn collect(
    plan: &Plan,
    nodes: &[Node<'_>],
    names: &mut String,
    path: &mut String,
    entries: &mut Vec<Entry>,
) -> Result<Found, DecodeError> {
    names.clear();
    path.clear();
    entries.clear();
    let mut found = Found::default();
    let mut walk = Walk {
        names,
        path,
        entries,
    };
    match nodes.first() {
        Some(Node::Object { len, .. }) => {
            let mut j = 1;
            for _ in 0..*len {
                let Node::String(key) = nodes[j] else {
                    break;
                };
                let k = j;
                let v = j + 1;
                j = v + span(nodes, v);
                let hash = name_hash(key.as_bytes());
                let mut mapped = false;
                let specials: &[_] = if plan.special_bits & 1 << (hash & 63) != 0 {
                    &plan.special
                } else {
                    &[]
                };
                for (name, name_hash, slot) in specials {
                    if *name_hash != hash || name != key {
                        continue;
                    }
                    match slot {
                        None => {
                            found.timestamp = Some(v as u32);
                            mapped = true;
                            break;
                        }
                        // The last member of a name decides, as in a Lua table.
                        Some(h) if Header::ALL[*h].takes(&nodes[v]) => {
                            found.headers[*h] = Some(v as u32);
                            mapped = true;
                        }
                        Some(h) => found.headers[*h] = None,
                    }
                }
                if mapped {
                    continue;
                }
                match nodes[v] {
                    Node::Object { .. } | Node::Array { .. } => {
                        walk.path.clear();
                        walk.path.push_str(key);
                        walk.value(nodes, v);
                    }
                    Node::Static(StaticNode::Null) => {}
                    // A top-level scalar is named by its key, read where it lies.
                    _ => walk.entries.push(Entry {
                        name_start: 0,
                        name_end: 0,
                        key: k as u32,
                        node: v as u32,
                        hash,
                    }),
                }
            }
        }
        Some(Node::Array { len, .. }) => {
            let mut j = 1;
            let mut digits = itoa_buf();
            for k in 1..=*len {
                walk.path.clear();
                walk.path.push_str(format_index(&mut digits, k));
                j = walk.value(nodes, j);
            }
        }
        _ => {
            return Err(DecodeError(
                "Failed to decode JSON: not an object or an array".into(),
            ));
        }
    }
    Ok(found)
}

/// A quick hash of a field name (FxHash's mixing, eight bytes at a time).
fn name_hash(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let tail = hekate_model::bytes::head8(chunks.remainder());
    (h.rotate_left(5) ^ tail).wrapping_mul(K)
}

/// Entries beyond which repeated names are found by sorting rather than by scanning.
const SCAN_LIMIT: usize = 256;

/// Marks every entry whose name a later entry repeats as replaced (a Lua table keeps the last
/// value of a key).
fn drop_repeated(names: &str, nodes: &[Node<'_>], entries: &mut [Entry], order: &mut Vec<u32>) {
    let name = |e: &Entry| e.name(names, nodes).as_bytes();
    if entries.len() < 2 {
        return;
    }
    if entries.len() <= SCAN_LIMIT {
        // A 1024-bit filter of the hashes seen: a name whose bit is new repeats nothing before
        // it; the rare others are compared with the earlier entries of the same hash.
        let mut seen = [0u64; 16];
        for i in 0..entries.len() {
            let h = entries[i].hash;
            let (word, bit) = ((h >> 58) as usize & 15, 1u64 << (h & 63));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                continue;
            }
            let (before, rest) = entries.split_at_mut(i);
            let e = &rest[0];
            for b in before.iter_mut() {
                if b.hash == h && b.node != REPLACED && name(b) == name(e) {
                    b.node = REPLACED;
                }
            }
        }
        return;
    }
    order.clear();
    order.extend(0..entries.len() as u32);
    order.sort_by(|&a, &b| {
        name(&entries[a as usize])
            .cmp(name(&entries[b as usize]))
            .then(a.cmp(&b))
    });
    for w in 0..order.len() - 1 {
        let (a, b) = (order[w] as usize, order[w + 1] as usize);
        if name(&entries[a]) == name(&entries[b]) {
            entries[a].node = REPLACED;
        }
    }
}

/// The Timestamp from its member, as `json.lua` reads it.
fn timestamp(plan: &Plan, nodes: &[Node<'_>], at: Option<u32>) -> Result<Option<i64>, DecodeError> {
    let Some(i) = at else {
        return Ok(None);
    };
    let node = &nodes[i as usize];
    if !plan.timestamp_formats.is_empty() {
        let owned;
        let text = match node {
            Node::String(s) => *s,
            _ => match number(node) {
                Some(n) => {
                    owned = hekate_sandbox::format_g(n, 14);
                    &owned
                }
                None => return Err(DecodeError("Failed to decode timestamp.".into())),
            },
        };
        return plan
            .timestamp_formats
            .iter()
            .find_map(|f| parse_time(f, text))
            .map(Some)
            .ok_or_else(|| DecodeError("Failed to decode timestamp.".into()));
    }
    // Nanoseconds since the epoch, as inject_message reads a Timestamp: a number, or text
    // holding one; anything else leaves the time of decoding.
    Ok(match node {
        Node::String(s) => s.trim().parse::<f64>().ok().map(|n| n as i64),
        _ => number(node).map(|n| n as i64),
    })
}

/// The format most JSON logs use (`%Y-%m-%dT%H:%M:%SZ`, which [`jiff_format`] turns into
/// this), read without jiff when the text has its plain shape.
const ISO_UTC: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z` read directly (`None`: another shape, or out of range;
/// jiff then decides): what [`parse_time`] gives for [`ISO_UTC`], at a tenth of the cost (the
/// jiff parser was 6–8% of the JSON path). Checked against jiff by a property test.
fn iso_utc_ns(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits = |d: &[u8]| -> Option<u32> {
        d.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        // One to nine digits after the dot; anything else is jiff's to judge.
        [b'.', f @ ..] if (1..=9).contains(&f.len()) => digits(f)? * 10u32.pow(9 - f.len() as u32),
        _ => return None,
    };
    let civil = crate::decoder::syslog::time::Civil {
        year: digits(&b[0..4])? as i32,
        month: digits(&b[5..7])? as u8,
        day: digits(&b[8..10])? as u8,
        hour: digits(&b[11..13])? as u8,
        minute: digits(&b[14..16])? as u8,
        second: digits(&b[17..19])? as u8,
        nanos,
    };
    // A leap second is left to jiff.
    (civil.is_valid() && civil.second < 60).then(|| civil.as_utc_ns())?
}

/// `text` read with a jiff strftime `format`; UTC without an offset.
fn parse_time(format: &str, text: &str) -> Option<i64> {
    if format == ISO_UTC
        && let Some(ns) = iso_utc_ns(text)
    {
        return Some(ns);
    }
    jiff_time(format, text)
}

/// `text` read with jiff's strftime parser.
fn jiff_time(format: &str, text: &str) -> Option<i64> {
    let tm = jiff::fmt::strtime::parse(format, text).ok()?;
    // Without an offset, UTC (asking jiff for a timestamp first would build an error).
    let ts = match tm.offset() {
        Some(_) => tm.to_timestamp().ok()?,
        None => jiff::tz::TimeZone::UTC
            .to_timestamp(tm.to_datetime().ok()?)
            .ok()?,
    };
    i64::try_from(ts.as_nanosecond()).ok()
}

#[allow(clippy::too_many_arguments)]
fn write(
    plan: &Plan,
    nodes: &[Node<'_>],
    found: &Found,
    timestamp: Option<i64>,
    names: &str,
    entries: &[Entry],
    record: &[u8],
    source: &RecordSource<'_>,
    w: &mut MessageWriter<'_>,
) {
    let text = |h: Header| match found.headers[h as usize].map(|i| &nodes[i as usize]) {
        Some(Node::String(s)) => Some(*s),
        _ => None,
    };
    let num = |h: Header| {
        found.headers[h as usize]
            .map(|i| &nodes[i as usize])
            .and_then(number)
    };
    let mapped = |h: Header| plan.headers[h as usize].is_some();
    let uuid = text(Header::Uuid).and_then(|u| {
        <[u8; 16]>::try_from(u.as_bytes())
            .ok()
            .or_else(|| parse_uuid(u))
    });
    w.uuid(&uuid.unwrap_or_else(random_uuid));
    w.timestamp(timestamp.unwrap_or_else(now_ns));
    if mapped(Header::Type) {
        match text(Header::Type) {
            Some(t) => {
                w.msg_type(t.as_bytes());
            }
            None => {
                if let Some(t) = source.msg_type {
                    w.msg_type(t.as_bytes());
                }
            }
        }
    } else {
        w.msg_type(plan.message_type.as_bytes());
    }
    w.logger(text(Header::Logger).unwrap_or(source.input).as_bytes());
    if let Some(s) = num(Header::Severity) {
        w.severity(s as i32);
    }
    if mapped(Header::Payload) {
        if let Some(p) = text(Header::Payload) {
            w.payload(p.as_bytes());
        }
    } else if plan.payload_keep {
        w.payload(record);
    }
    if let Some(v) = num(Header::EnvVersion) {
        w.env_version(hekate_sandbox::format_g(v, 14).as_bytes());
    }
    if let Some(p) = num(Header::Pid) {
        w.pid(p as i32);
    }
    w.hostname(text(Header::Hostname).unwrap_or(source.hostname).as_bytes());
    for e in entries {
        if e.node == REPLACED {
            continue;
        }
        let name = e.name(names, nodes);
        match &nodes[e.node as usize] {
            Node::String(s) => {
                w.field_string(name, s);
            }
            Node::Static(StaticNode::Bool(b)) => {
                w.field_bool(name, *b);
            }
            n => {
                if let Some(v) = number(n) {
                    w.field_double(name, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

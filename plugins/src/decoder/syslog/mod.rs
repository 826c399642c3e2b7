//! SyslogDecoder: turns syslog lines — RFC 5424, and RFC 3164 as real senders write it — into
//! messages the way Heka's `rsyslog.lua` decoder does, natively: no Lua, no regex, no
//! allocation per message.
//!
//! ```toml
//! [syslog]
//! type = "TcpInput"
//! address = ":5514"
//! splitter = "SyslogFramingSplitter"
//! decoder = "SyslogDecoder"
//!
//! [SyslogFramingSplitter]
//!
//! [SyslogDecoder]
//! tz = "Europe/Berlin"
//! hostname_keep = false
//! # message_type = "syslog"
//! # headers = ["Timestamp", "Severity", "Hostname", "Pid"]
//! # fields = ["syslogfacility", "programname", "app-name", "procid", "msgid", "sd"]
//! ```
//!
//! The message, as `rsyslog.lua` builds it with rsyslog's forwarding templates
//! (`RSYSLOG_SyslogProtocol23Format`, `RSYSLOG_TraditionalForwardFormat`), so that matchers
//! and filters written for Heka keep working:
//!
//! | | from |
//! |---|---|
//! | Timestamp | the message's timestamp (see below); the time of decoding when it has none |
//! | Severity | PRI % 8 |
//! | Hostname | HOSTNAME; the input's (the sender's address, or the global hostname) when the message has none or with `hostname_keep` |
//! | Pid | the `[pid]` of an RFC 3164 tag; a numeric RFC 5424 PROCID |
//! | Payload | MSG, without a UTF-8 BOM and without the line end |
//! | Logger | the input's name |
//! | Type | `message_type`; none by default, as `rsyslog.lua` |
//! | `Fields[syslogfacility]` | PRI / 8, a DOUBLE (a Lua number, as `rsyslog.lua` writes it) |
//! | `Fields[programname]` | the tag's program (`sshd` of `sshd[42]:`); RFC 5424's APP-NAME (rsyslog's `programname`) |
//! | `Fields[app-name]`, `Fields[procid]`, `Fields[msgid]` | RFC 5424's header fields, unless NILVALUE |
//! | `Fields[sd.<SD-ID>.<PARAM-NAME>]` | every parameter of every structured data element, unescaped; an element without parameters is a field `sd.<SD-ID>` with an empty value; a repeated parameter is a repeated field |
//!
//! Off by default, for `fields`: `syslogtag` (the RFC 3164 tag as written, `sshd[42]:`),
//! `protocol-version` ("1") and `structured-data` (the STRUCTURED-DATA text as written). A line
//! without a PRI has rsyslog's default, facility user (1) and severity notice (5).
//!
//! Timestamps: RFC 3339 with fractions (down to nanoseconds) and offsets; one without an offset
//! (rsyslog's local ISO timestamps, RFC 3164's `Mmm dd hh:mm:ss`) is read in the zone `tz` (an
//! IANA name, from the system's zoneinfo or the copy built in). An RFC 3164 timestamp has no
//! year: it is the current year of `tz`, or the previous one when that would put it more than a
//! day in the future (a December line read in January), or the next one for a January line
//! read on 31 December.
//!
//! RFC 3164 variants taken: single-digit days padded with a space or not, no hostname (local
//! senders), tags with or without `[pid]` and with or without the colon (a first word not shaped
//! like a tag starts the message), ISO 8601 timestamps (rsyslog's high-precision format), Cisco's
//! `seq: ` prefix with or without the device name, `*` before and `.mmm` after the time, the
//! year before the time, lines with no PRI (they then need a timestamp). RFC 5424 is read
//! strictly: a version other than 1, an impossible date, a year of five digits, a header field
//! that is not printable ASCII, malformed or truncated structured data (an unescaped `]` in a
//! value included) fail. A line that is not syslog is a decode failure: counted, and with the
//! input's `send_decode_failures` passed on with `decode_failure = true`. A payload or value that
//! is not UTF-8 is kept with U+FFFD in place of the bad bytes and counted (`InvalidUtf8Count`).
//! A line end (`\n`, `\r\n`) never reaches the Payload.
//!
//! Options: `message_type` (none), `tz` ("UTC"), `hostname_keep` (false), `headers` (all of
//! Timestamp, Severity, Hostname, Pid), `fields` (`syslogfacility`, `programname`, `app-name`,
//! `procid`, `msgid`, `sd`).

mod parse;
pub(crate) mod time;

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink, options_of,
};
use hekate_model::writer::{MessageWriter, random_uuid};
use schemars::JsonSchema;
use serde::Deserialize;

use parse::{Format, Syslog, parse, sd_params, unescape};
use time::{Clock, Zone};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SyslogDecoder",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

const HEADERS: [&str; 4] = ["Timestamp", "Severity", "Hostname", "Pid"];
const FIELDS: [&str; 9] = [
    "syslogfacility",
    "programname",
    "syslogtag",
    "app-name",
    "procid",
    "msgid",
    "protocol-version",
    "structured-data",
    "sd",
];
const DEFAULT_FIELDS: [&str; 6] = [
    "syslogfacility",
    "programname",
    "app-name",
    "procid",
    "msgid",
    "sd",
];

fn default_tz() -> String {
    "UTC".into()
}

fn default_headers() -> Vec<String> {
    HEADERS.iter().map(|h| (*h).to_string()).collect()
}

fn default_fields() -> Vec<String> {
    DEFAULT_FIELDS.iter().map(|f| (*f).to_string()).collect()
}

/// SyslogDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The Type of every message (`rsyslog.lua`'s `type`); none by default.
    #[serde(default)]
    message_type: Option<String>,
    /// The zone of timestamps written without an offset: "UTC" or an IANA name
    /// ("Europe/Berlin").
    #[serde(default = "default_tz")]
    tz: String,
    /// Keep the Hostname the input gives (the sender's address or the global hostname) rather
    /// than the message's HOSTNAME.
    #[serde(default)]
    hostname_keep: bool,
    /// Headers taken from the message: any of "Timestamp", "Severity", "Hostname", "Pid".
    /// Without Timestamp a message has the time of decoding, without Hostname the input's.
    #[serde(default = "default_headers")]
    headers: Vec<String>,
    /// Fields set: any of "syslogfacility", "programname", "syslogtag", "app-name", "procid",
    /// "msgid", "protocol-version", "structured-data" and "sd" (the `sd.<id>.<param>` fields).
    #[serde(default = "default_fields")]
    fields: Vec<String>,
}

/// What to set, as bits.
#[derive(Debug, Clone, Copy, Default)]
struct Set(u32);

impl Set {
    const TIMESTAMP: u32 = 1;
    const SEVERITY: u32 = 1 << 1;
    const HOSTNAME: u32 = 1 << 2;
    const PID: u32 = 1 << 3;
    const FACILITY: u32 = 1 << 4;
    const PROGRAMNAME: u32 = 1 << 5;
    const SYSLOGTAG: u32 = 1 << 6;
    const APP_NAME: u32 = 1 << 7;
    const PROCID: u32 = 1 << 8;
    const MSGID: u32 = 1 << 9;
    const VERSION: u32 = 1 << 10;
    const STRUCTURED_DATA: u32 = 1 << 11;
    const SD: u32 = 1 << 12;

    fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

#[derive(Debug)]
struct SyslogDecoderPlugin {
    message_type: Option<String>,
    zone: Zone,
    set: Set,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Decoder(Arc::new(configure(section)?)))
}

fn configure(section: &PluginSection) -> Result<SyslogDecoderPlugin, ConfigError> {
    let opts: Options = section.options()?;
    let zone = Zone::named(&opts.tz)
        .map_err(|e| section.error_at_value("tz", format!("`tz` of [{}]: {e}", section.name())))?;
    let mut set = Set::default();
    for h in &opts.headers {
        let Some(i) = HEADERS.iter().position(|k| k == h) else {
            return Err(section.error_at_value(
                "headers",
                format!(
                    "`headers` of [{}]: unknown header {h:?}; the headers are {}",
                    section.name(),
                    HEADERS.join(", ")
                ),
            ));
        };
        set.0 |= 1 << i;
    }
    for f in &opts.fields {
        let Some(i) = FIELDS.iter().position(|k| k == f) else {
            return Err(section.error_at_value(
                "fields",
                format!(
                    "`fields` of [{}]: unknown field {f:?}; the fields are {}",
                    section.name(),
                    FIELDS.join(", ")
                ),
            ));
        };
        set.0 |= 1 << (i + HEADERS.len());
    }
    if opts.hostname_keep {
        set.0 &= !Set::HOSTNAME;
    }
    Ok(SyslogDecoderPlugin {
        message_type: opts.message_type.filter(|t| !t.is_empty()),
        zone,
        set,
    })
}

impl SyslogDecoderPlugin {
    fn decoder(&self) -> SyslogDecoder {
        SyslogDecoder {
            message_type: self.message_type.clone(),
            set: self.set,
            clock: Clock::new(self.zone.clone()),
            scratch: Vec::new(),
            field_name: Vec::new(),
            unescaped: Vec::new(),
            invalid_utf8: 0,
        }
    }
}

impl DecoderPlugin for SyslogDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(self.decoder())
    }
}

/// One running SyslogDecoder (one per shard).
struct SyslogDecoder {
    message_type: Option<String>,
    set: Set,
    clock: Clock,
    /// Text repaired to UTF-8, reused.
    scratch: Vec<u8>,
    /// `sd.<id>.<param>`, reused.
    field_name: Vec<u8>,
    /// A PARAM-VALUE with its escapes resolved, reused.
    unescaped: Vec<u8>,
    /// Payloads and values that were not UTF-8.
    invalid_utf8: u64,
}

/// `bytes` as UTF-8: itself when valid, else a copy in `scratch` with U+FFFD for each bad
/// sequence (and `bad` counts it).
fn utf8<'a>(bytes: &'a [u8], scratch: &'a mut Vec<u8>, bad: &mut u64) -> &'a [u8] {
    if simdutf8::basic::from_utf8(bytes).is_ok() {
        return bytes;
    }
    *bad += 1;
    scratch.clear();
    for chunk in bytes.utf8_chunks() {
        scratch.extend_from_slice(chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            scratch.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    scratch
}

impl SyslogDecoder {
    fn write(&mut self, s: &Syslog<'_>, source: &RecordSource<'_>, w: &mut MessageWriter<'_>) {
        let set = self.set;
        w.uuid(&random_uuid());
        let timestamp = match s.timestamp {
            Some(ts) if set.has(Set::TIMESTAMP) => ts,
            _ => self.clock.now(),
        };
        w.timestamp(timestamp);
        if let Some(t) = &self.message_type {
            w.msg_type(t.as_bytes());
        }
        w.logger(source.input.as_bytes());
        // rsyslog's default for a line without PRI: user.notice.
        let pri = s.pri.unwrap_or(13);
        if set.has(Set::SEVERITY) {
            w.severity(i32::from(pri & 7));
        }
        if let Some(msg) = s.msg {
            w.payload(utf8(msg, &mut self.scratch, &mut self.invalid_utf8));
        }
        if set.has(Set::PID)
            && let Some(pid) = s.pid
        {
            w.pid(pid);
        }
        match s.hostname {
            Some(h) if set.has(Set::HOSTNAME) => w.hostname(h),
            _ => w.hostname(source.hostname.as_bytes()),
        };
        // Header tokens are printable ASCII (the parser checked), hence UTF-8.
        if set.has(Set::FACILITY) {
            w.field_double("syslogfacility", f64::from(pri >> 3));
        }
        if set.has(Set::PROGRAMNAME)
            && let Some(p) = s.programname
        {
            w.field_string_bytes(b"programname", p);
        }
        if set.has(Set::SYSLOGTAG)
            && let Some(t) = s.tag
        {
            w.field_string_bytes(b"syslogtag", t);
        }
        let header_fields = [
            (Set::APP_NAME, &b"app-name"[..], s.app_name),
            (Set::PROCID, b"procid", s.procid),
            (Set::MSGID, b"msgid", s.msgid),
        ];
        for (bit, name, value) in header_fields {
            if set.has(bit)
                && let Some(v) = value
            {
                w.field_string_bytes(name, v);
            }
        }
        if s.format != Format::Rfc5424 {
            return;
        }
        if set.has(Set::VERSION) {
            w.field_string_bytes(b"protocol-version", b"1");
        }
        if set.has(Set::STRUCTURED_DATA) && !s.structured_data.is_empty() {
            w.field_string_bytes(
                b"structured-data",
                utf8(s.structured_data, &mut self.scratch, &mut self.invalid_utf8),
            );
        }
        if set.has(Set::SD) {
            for p in sd_params(s.structured_data) {
                self.field_name.clear();
                self.field_name.extend_from_slice(b"sd.");
                self.field_name.extend_from_slice(p.id);
                let Some(name) = p.name else {
                    w.field_string_bytes(&self.field_name, b"");
                    continue;
                };
                self.field_name.push(b'.');
                self.field_name.extend_from_slice(name);
                let value: &[u8] = if memchr::memchr(b'\\', p.value).is_some() {
                    self.unescaped.clear();
                    unescape(p.value, &mut self.unescaped);
                    &self.unescaped
                } else {
                    p.value
                };
                w.field_string_bytes(
                    &self.field_name,
                    utf8(value, &mut self.scratch, &mut self.invalid_utf8),
                );
            }
        }
    }
}

impl Decoder for SyslogDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let parsed = parse(record, &mut self.clock)
            .map_err(|e| DecodeError(format!("not a syslog line: {e}")))?;
        out.push_written(|w| {
            // Room for the message (headers, and field names beside SD values), so that the
            // writes below never grow the buffer one step at a time.
            w.reserve(2 * record.len() + 128);
            self.write(&parsed, source, w);
        });
        Ok(Decoded::Messages(1))
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("InvalidUtf8Count", self.invalid_utf8 as i64, "count");
    }
}

#[cfg(test)]
mod tests;

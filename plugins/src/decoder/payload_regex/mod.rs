//! PayloadRegexDecoder: Heka's regular-expression decoder. The Payload is matched against
//! `match_regex`; its captures set the Timestamp and Severity and fill the `message_fields`
//! templates, which set headers and add fields to the message.
//!
//! ```toml
//! [apache]
//! type = "PayloadRegexDecoder"
//! match_regex = '^(?P<RemoteIP>\S+) \S+ \S+ \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>[^\s]+)[^"]*" (?P<StatusCode>\d+) (?P<RequestSize>\d+)'
//! timestamp_layout = "02/Jan/2006:15:04:05 -0700"
//! timestamp_location = "UTC"
//!
//! [apache.severity_map]
//! DEBUG = 7
//! WARNING = 4
//!
//! [apache.message_fields]
//! Type = "ApacheLogfile"
//! Logger = "apache"
//! "Url|uri" = "%Url%"
//! Method = "%Method%"
//! "StatusCode||int" = "%StatusCode%"
//! "RequestSize|B|int" = "%RequestSize%"
//! ```
//!
//! As Heka does it (`plugins/payload/payloadregex_decoder.go`):
//!
//! - The message starts as the input makes it (Uuid, the time of decoding, Logger = the input's
//!   name, Hostname, Payload = the record without its line end) — or, for a record that is an
//!   encoded message, as that message; the regex is matched against its Payload, anywhere in it
//!   (anchor with `^`/`$`). Regex syntax is RE2's, as in Go (named groups `(?P<name>…)`);
//!   unnamed groups are captures named by their number (`%1%`).
//! - A capture named `Timestamp` is read with `timestamp_layout` in `timestamp_location`
//!   (below); one that does not parse leaves the time of decoding and is counted
//!   (`TimestampErrorCount`).
//! - A capture named `Severity` is looked up in `severity_map`, else read as an integer; one that
//!   is neither is counted (`SeverityErrorCount`). It is not available to templates (Heka drops
//!   it from the captures).
//! - `message_fields`: each key names a header (`Logger`, `Type`, `Payload`, `Hostname`, `Pid`,
//!   `Severity`, `Uuid`) or a field; a field key may carry a representation and a type,
//!   `name|representation|type`, type `int`, `float`, `bool` or `bytes` (a value that does not
//!   convert stays text; without a type a field is text). A header name with a `|` suffix is a
//!   field (`Payload|json`). In values, `%name%` is the capture of that name, `<name>` when
//!   there is none. A Pid takes the integer part of its value; a Pid or Severity that is not an
//!   integer, or a Uuid that is neither 16 bytes nor UUID text, fails the record. TOML needs
//!   keys with `|` quoted (`"Url|uri" = "%Url%"`).
//! - A payload that does not match is a decode failure (`no match: <payload>`: counted, and
//!   with the input's `send_decode_failures` passed on with `decode_failure = true`); with
//!   `log_errors = false` it is dropped without a failure and counted (`NoMatchCount`), as Heka
//!   drops it silently.
//!
//! `timestamp_layout` is a Go layout (the reference time `Mon Jan 2 15:04:05 MST 2006`:
//! `2006`/`06` year, `01`/`1`/`Jan`/`January` month, `02`/`2`/`_2` day, `002` day of year,
//! `15`/`03`/`3` hour, `04`/`4` minute, `05`/`5` second, `.000`/`.999` fractions (a fraction
//! after the seconds is read even when the layout has none), `PM`, `Mon`/`Monday`, `MST`,
//! `-0700`/`-07:00`/`-07`/`Z07:00`…), or `Epoch`, `EpochMilli`, `EpochMicro`, `EpochNano` (a
//! decimal number of that unit, with a fraction down to nanoseconds). When the layout does not
//! match, Go's standard layouts (ANSIC, UnixDate, RubyDate, RFC822(Z), RFC850, RFC1123(Z),
//! RFC3339(Nano), Kitchen, Stamp…) are tried, as Heka's `ForgivingTimeParse` does. Without a
//! year the current one is taken, with a time only today's date. `timestamp_location` is "UTC",
//! "Local" or an IANA zone; a zone abbreviation in the text counts when the location uses it at
//! that time, else it reads as UTC (Go's rule).
//!
//! Options: `match_regex` (required, with at least one capture group), `severity_map` ({}),
//! `message_fields` ({}), `timestamp_layout` (""), `timestamp_location` ("UTC"),
//! `log_errors` (true).

use std::collections::BTreeMap;
use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink, options_of,
};
use regex::{CaptureLocations, Regex};
use schemars::JsonSchema;
use serde::Deserialize;

use super::capture_headers::{CaptureErrors, CaptureHeaders};
#[cfg(test)]
use super::go_time::{TimestampLayout, Today};
use super::original::{Headers, Original};
use super::template::{MessageTemplate, message_template};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "PayloadRegexDecoder",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_location() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

/// PayloadRegexDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The regular expression (RE2 syntax, as Go's) the Payload must match; it needs at least
    /// one capture group. Named groups (`(?P<name>…)`) name the captures.
    match_regex: String,
    /// Severity names (the `Severity` capture) and the number each stands for.
    #[serde(default)]
    severity_map: BTreeMap<String, i32>,
    /// Headers and fields to set: key = header or `field|representation|type`, value = a
    /// template with `%capture%` references.
    #[serde(default)]
    #[schemars(schema_with = "crate::common::any_table")]
    message_fields: toml::Table,
    /// How the `Timestamp` capture is written: a Go layout (`02/Jan/2006:15:04:05 -0700`) or
    /// `Epoch`, `EpochMilli`, `EpochMicro`, `EpochNano`.
    #[serde(default)]
    timestamp_layout: String,
    /// The zone of timestamps written without an offset: "UTC", "Local" or an IANA name.
    #[serde(default = "default_location")]
    timestamp_location: String,
    /// Whether a payload that does not match is a decode failure (logged and counted, as
    /// Heka's `no match` error); false drops it quietly (counted as `NoMatchCount`).
    #[serde(default = "yes")]
    log_errors: bool,
}

/// The configured decoder, shared by the shards' instances.
#[derive(Debug)]
struct Plan {
    regex: Regex,
    /// The name of each capture group (its number when unnamed); `None` for the whole match.
    names: Vec<Option<String>>,
    timestamp_group: Option<usize>,
    severity_group: Option<usize>,
    captures: CaptureHeaders,
    template: MessageTemplate,
    log_errors: bool,
}

#[derive(Debug)]
struct PayloadRegexDecoderPlugin {
    plan: Arc<Plan>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Decoder(Arc::new(PayloadRegexDecoderPlugin {
        plan: Arc::new(configure(section)?),
    })))
}

fn configure(section: &PluginSection) -> Result<Plan, ConfigError> {
    let opts: Options = section.options()?;
    let name = section.name();
    let regex = Regex::new(&opts.match_regex).map_err(|e| {
        section.error_at_value(
            "match_regex",
            format!("`match_regex` of [{name}] is not a valid regular expression: {e}"),
        )
    })?;
    if regex.captures_len() < 2 {
        return Err(section.error_at_value(
            "match_regex",
            format!("`match_regex` of [{name}] must contain capture groups"),
        ));
    }
    let names: Vec<Option<String>> = regex
        .capture_names()
        .enumerate()
        .map(|(i, n)| match (i, n) {
            (0, _) => None,
            (_, Some(n)) => Some(n.to_string()),
            (i, None) => Some(i.to_string()),
        })
        .collect();
    let group = |want: &str| names.iter().position(|n| n.as_deref() == Some(want));
    Ok(Plan {
        timestamp_group: group("Timestamp"),
        severity_group: group("Severity"),
        template: message_template(section, &opts.message_fields)?,
        captures: CaptureHeaders::new(
            section,
            &opts.timestamp_layout,
            &opts.timestamp_location,
            opts.severity_map,
        )?,
        names,
        regex,
        log_errors: opts.log_errors,
    })
}

impl DecoderPlugin for PayloadRegexDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(PayloadRegexDecoder {
            locations: self.plan.regex.capture_locations(),
            plan: Arc::clone(&self.plan),
            scratch: Vec::new(),
            no_match: 0,
            errors: CaptureErrors::default(),
        })
    }
}

/// One running PayloadRegexDecoder (one per shard).
struct PayloadRegexDecoder {
    plan: Arc<Plan>,
    locations: CaptureLocations,
    scratch: Vec<u8>,
    no_match: u64,
    errors: CaptureErrors,
}

impl Decoder for PayloadRegexDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let plan = &*self.plan;
        let original = Original::of(record, source)?;
        let payload = original.payload();
        if plan
            .regex
            .captures_read(&mut self.locations, &payload)
            .is_none()
        {
            if plan.log_errors {
                return Err(DecodeError(format!("no match: {payload}")));
            }
            self.no_match += 1;
            return Ok(Decoded::Messages(0));
        }
        let locations = &self.locations;
        let capture = |i: usize| locations.get(i).map(|(s, e)| &payload[s..e]);
        let mut headers = Headers::default();
        plan.captures.apply(
            plan.timestamp_group.and_then(capture),
            plan.severity_group.and_then(capture),
            &mut headers,
            &mut self.errors,
        );
        let lookup = |name: &str| {
            let i = plan.names.iter().position(|n| n.as_deref() == Some(name))?;
            if Some(i) == plan.severity_group {
                return None;
            }
            Some(capture(i).unwrap_or(""))
        };
        plan.template.headers(Some(&lookup), &mut headers)?;
        let scratch = &mut self.scratch;
        out.push_with(|buf| {
            buf.reserve(2 * payload.len() + 128);
            let mut w = original.write(&headers, buf);
            plan.template.fields(Some(&lookup), &mut w, scratch);
            Ok::<(), DecodeError>(())
        })?;
        Ok(Decoded::Messages(1))
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("NoMatchCount", self.no_match as i64, "count");
        self.errors.report(sink);
    }
}

#[cfg(test)]
mod tests;

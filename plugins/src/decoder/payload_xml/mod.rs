//! PayloadXmlDecoder: Heka's XML decoder. The Payload is parsed as an XML document and each
//! XPath of `xpath_map` is evaluated against it; the string value of what it selects is the
//! capture of that name, which sets the Timestamp and Severity and fills the `message_fields`
//! templates as PayloadRegexDecoder's regex captures do.
//!
//! ```toml
//! [orders]
//! type = "PayloadXmlDecoder"
//! timestamp_layout = "2006-01-02 15:04:05"
//! timestamp_location = "Europe/Berlin"
//!
//! [orders.xpath_map]
//! Timestamp = "/order/@created"
//! Severity = "/order/status"
//! Customer = "/order/customer/name"
//! Total = "/order/total"
//! Items = "count(/order/item)"
//!
//! [orders.severity_map]
//! shipped = 6
//! failed = 3
//!
//! [orders.message_fields]
//! Type = "Order"
//! Customer = "%Customer%"
//! "Total|EUR|float" = "%Total%"
//! "Items||int" = "%Items%"
//! ```
//!
//! As Heka does it (`plugins/payload/payloadxml_decoder.go`, with the `PayloadDecoderHelper` and
//! `MessageTemplate` it shares with PayloadRegexDecoder):
//!
//! - The message starts as the input makes it (Uuid, the time of decoding, Logger = the input's
//!   name, Hostname, Payload = the record without its line end) — or, for a record that is an
//!   encoded message, as that message; its Payload is the XML document.
//! - Each XPath (1.0) of `xpath_map` is evaluated with the document's root as the context node.
//!   A path that selects nodes captures the string value of the first in document order (the
//!   text of an element and all its descendants, an attribute's value); one that selects
//!   nothing (or fails on this document) leaves no capture (`%name%` reads `<name>`, and a `Timestamp` or `Severity` path
//!   leaves that header alone), as Heka's `xmlpath` does. An expression that computes a
//!   string, number or boolean (`count(/order/item)`, `concat(…)`) captures its XPath string
//!   value.
//! - The `Timestamp` and `Severity` captures, `severity_map`, `timestamp_layout`,
//!   `timestamp_location` and `message_fields` work as in PayloadRegexDecoder: a Timestamp that
//!   does not parse leaves the time of decoding (`TimestampErrorCount`), a Severity neither in
//!   the map nor an integer leaves none (`SeverityErrorCount`), and the Severity capture is not
//!   available to templates.
//! - `timestamp_layout` defaults to Heka's default, `2012-04-23T18:25:43.511Z`. That is not a
//!   Go layout of the reference time, so in effect Go's standard layouts are what read the
//!   Timestamp, RFC 3339 (ISO 8601 with a zone, `2012-04-23T18:25:43.511Z`) among them.
//! - Names are matched as XPath 1.0 says: an element in a namespace (a default `xmlns`
//!   included) is matched by `*[local-name()='order']`, not by `order`. No namespace prefixes
//!   are declared, so a path with one (`/ns:order`) is a config error.
//!
//! Where hekate differs: a Payload that is not well-formed XML is a decode failure
//! (`not well-formed XML …`: counted, and with the input's `send_decode_failures` passed on with
//! `decode_failure = true`), as a payload PayloadRegexDecoder does not match; Heka passed the
//! message on with no captures. An XPath that does not compile, or that calls a function XPath
//! 1.0 does not have, is a config error, where Heka stopped at start-up. Only the five
//! predefined entities (`&amp;` …) and character references are read; a DOCTYPE is allowed but
//! its entities are not expanded (a reference to one fails the record), so no document grows
//! past its Payload, which the splitter already bounds to `max_message_size`. Elements nested
//! deeper than 512 fail the record.
//!
//! Options: `xpath_map` ({}), `severity_map` ({}), `message_fields` ({}), `timestamp_layout`
//! (`2012-04-23T18:25:43.511Z`), `timestamp_location` ("UTC").

use std::collections::BTreeMap;
use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;
use sxd_document::dom::{ChildOfElement, ChildOfRoot, Document};
use sxd_xpath::{Context, Factory, Value, XPath};

use super::capture_headers::{CaptureErrors, CaptureHeaders};
use super::original::{Headers, Original};
use super::template::{MessageTemplate, message_template};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "PayloadXmlDecoder",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// How deep elements may nest: sxd-xpath walks the tree recursively (string values, the
/// descendant axes), so a hostile Payload of nested tags must not reach it.
const MAX_DEPTH: usize = 512;

fn default_layout() -> String {
    // Heka's default (`ConfigStruct`).
    "2012-04-23T18:25:43.511Z".into()
}

fn default_location() -> String {
    "UTC".into()
}

/// PayloadXmlDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The captures: name = an XPath 1.0 expression evaluated against the Payload's document;
    /// the string value of the first node it selects (or of what it computes) is the capture.
    #[serde(default)]
    xpath_map: BTreeMap<String, String>,
    /// Severity names (the `Severity` capture) and the number each stands for.
    #[serde(default)]
    severity_map: BTreeMap<String, i32>,
    /// Headers and fields to set: key = header or `field|representation|type`, value = a
    /// template with `%capture%` references.
    #[serde(default)]
    #[schemars(schema_with = "crate::common::any_table")]
    message_fields: toml::Table,
    /// How the `Timestamp` capture is written: a Go layout (`02/Jan/2006:15:04:05 -0700`) or
    /// `Epoch`, `EpochMilli`, `EpochMicro`, `EpochNano`; Go's standard layouts are tried when
    /// it does not match.
    #[serde(default = "default_layout")]
    timestamp_layout: String,
    /// The zone of timestamps written without an offset: "UTC", "Local" or an IANA name.
    #[serde(default = "default_location")]
    timestamp_location: String,
}

/// The configured decoder, shared by the shards' instances.
#[derive(Debug)]
struct Plan {
    /// The captures' names and XPath expressions (checked; each shard compiles its own, as
    /// sxd-xpath's compiled paths are not `Send`).
    xpaths: Vec<(String, String)>,
    timestamp: Option<usize>,
    severity: Option<usize>,
    captures: CaptureHeaders,
    template: MessageTemplate,
}

#[derive(Debug)]
struct PayloadXmlDecoderPlugin {
    plan: Arc<Plan>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Decoder(Arc::new(PayloadXmlDecoderPlugin {
        plan: Arc::new(configure(section)?),
    })))
}

/// `expr` compiled; `Err` says why it is not an XPath 1.0 expression.
fn compile(expr: &str) -> Result<XPath, String> {
    match Factory::new().build(expr) {
        Ok(Some(xpath)) => Ok(xpath),
        Ok(None) => Err("it is empty".into()),
        Err(e) => Err(format!("{e}")),
    }
}

/// Whether `expr` names something with a namespace prefix (`ns:order`, `ns:*`): no namespaces
/// are declared, and sxd-xpath panics on a prefix it cannot resolve, so such a path is refused.
/// A `:` inside a string literal or of an axis (`child::a`) is no prefix.
fn has_prefix(expr: &str) -> bool {
    let bytes = expr.as_bytes();
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b':' => {
                let axis = bytes.get(i + 1) == Some(&b':') || (i > 0 && bytes[i - 1] == b':');
                if !axis {
                    return true;
                }
            }
            None => {}
        }
    }
    false
}

fn configure(section: &PluginSection) -> Result<Plan, ConfigError> {
    let opts: Options = section.options()?;
    let name = section.name();
    // An unknown function, variable or namespace prefix, or a function given the wrong
    // arguments, shows only when the path runs: run each once on a small document, so that it
    // is a config error rather than a capture every record lacks.
    let package = sxd_document::parser::parse("<a b='c'><d>e</d></a>")
        .map_err(|e| section.error_at_key("xpath_map", format!("[{name}]: {e}")))?;
    let context = Context::new();
    for (capture, expr) in &opts.xpath_map {
        let checked = compile(expr).and_then(|xpath| {
            if has_prefix(expr) {
                return Err(
                    "namespace prefixes are not supported (match by `*[local-name()='name']`)"
                        .into(),
                );
            }
            xpath
                .evaluate(&context, package.as_document().root())
                .map(drop)
                .map_err(|e| format!("{e}"))
        });
        if let Err(e) = checked {
            return Err(section.error_at_value(
                &format!("xpath_map.{capture}"),
                format!(
                    "`xpath_map` of [{name}]: {capture:?} = {expr:?} is not a valid XPath: {e}"
                ),
            ));
        }
    }
    let xpaths: Vec<(String, String)> = opts.xpath_map.into_iter().collect();
    let position = |want: &str| xpaths.iter().position(|(n, _)| n == want);
    Ok(Plan {
        timestamp: position("Timestamp"),
        severity: position("Severity"),
        captures: CaptureHeaders::new(
            section,
            &opts.timestamp_layout,
            &opts.timestamp_location,
            opts.severity_map,
        )?,
        template: message_template(section, &opts.message_fields)?,
        xpaths,
    })
}

impl DecoderPlugin for PayloadXmlDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(PayloadXmlDecoder {
            // Checked by `configure`: none fails here.
            xpaths: self
                .plan
                .xpaths
                .iter()
                .map(|(_, expr)| compile(expr).ok())
                .collect(),
            context: Context::new(),
            values: vec![None; self.plan.xpaths.len()],
            plan: Arc::clone(&self.plan),
            scratch: Vec::new(),
            errors: CaptureErrors::default(),
        })
    }
}

/// One running PayloadXmlDecoder (one per shard).
struct PayloadXmlDecoder {
    plan: Arc<Plan>,
    /// `plan.xpaths`, compiled.
    xpaths: Vec<Option<XPath>>,
    /// XPath's core functions, no variables or namespaces.
    context: Context<'static>,
    /// The captures of the record being decoded, by `plan.xpaths` index.
    values: Vec<Option<String>>,
    scratch: Vec<u8>,
    errors: CaptureErrors,
}

/// How deep the document's elements nest (the root's children are at depth 1), counted
/// without recursion and given up past `limit`.
fn depth_exceeds(doc: &Document<'_>, limit: usize) -> bool {
    let mut stack: Vec<(sxd_document::dom::Element<'_>, usize)> = doc
        .root()
        .children()
        .into_iter()
        .filter_map(|c| match c {
            ChildOfRoot::Element(e) => Some((e, 1)),
            _ => None,
        })
        .collect();
    while let Some((element, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        stack.extend(element.children().into_iter().filter_map(|c| match c {
            ChildOfElement::Element(e) => Some((e, depth + 1)),
            _ => None,
        }));
    }
    false
}

impl Decoder for PayloadXmlDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let plan = &*self.plan;
        let original = Original::of(record, source)?;
        let payload = original.payload();
        let package = sxd_document::parser::parse(&payload)
            .map_err(|e| DecodeError(format!("not well-formed XML ({e}): {payload}")))?;
        let doc = package.as_document();
        if depth_exceeds(&doc, MAX_DEPTH) {
            return Err(DecodeError(format!(
                "XML elements nested deeper than {MAX_DEPTH}: {payload}"
            )));
        }
        for (value, xpath) in self.values.iter_mut().zip(&self.xpaths) {
            *value = xpath
                .as_ref()
                .and_then(|x| x.evaluate(&self.context, doc.root()).ok())
                .and_then(|v| match v {
                    Value::Nodeset(nodes) => nodes.document_order_first().map(|n| n.string_value()),
                    other => Some(other.into_string()),
                });
        }
        let values = &self.values;
        let capture = |i: usize| values[i].as_deref();
        let mut headers = Headers::default();
        plan.captures.apply(
            plan.timestamp.and_then(capture),
            plan.severity.and_then(capture),
            &mut headers,
            &mut self.errors,
        );
        let lookup = |name: &str| {
            let i = plan.xpaths.iter().position(|(n, _)| n == name)?;
            if Some(i) == plan.severity {
                return None;
            }
            capture(i)
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
        self.errors.report(sink);
    }
}

#[cfg(test)]
mod tests;

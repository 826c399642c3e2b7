//! What Heka's payload decoders (PayloadRegexDecoder, PayloadXmlDecoder) make of the captures
//! named `Timestamp` and `Severity`, as Heka's `PayloadDecoderHelper` does: the Timestamp is
//! read with `timestamp_layout` in `timestamp_location`, the Severity looked up in
//! `severity_map` or read as an integer. A capture that does not read leaves the header as it
//! was and is counted.

use std::collections::BTreeMap;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::ReportSink;
use jiff::tz::TimeZone;

use super::go_time::TimestampLayout;
use super::original::Headers;

/// `timestamp_layout`, `timestamp_location` and `severity_map`, checked.
#[derive(Debug)]
pub(crate) struct CaptureHeaders {
    layout: TimestampLayout,
    zone: TimeZone,
    severity_map: BTreeMap<String, i32>,
}

/// The captures that did not read, counted per decoder.
#[derive(Debug, Default)]
pub(crate) struct CaptureErrors {
    timestamp: u64,
    severity: u64,
}

impl CaptureErrors {
    /// `TimestampErrorCount` and `SeverityErrorCount`.
    pub(crate) fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("TimestampErrorCount", self.timestamp as i64, "count");
        sink.int("SeverityErrorCount", self.severity as i64, "count");
    }
}

/// `timestamp_location` as a zone.
pub(crate) fn location(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        _ => jiff::tz::db()
            .get(name)
            .map_err(|e| format!("unknown time zone {name:?}: {e}")),
    }
}

impl CaptureHeaders {
    /// The section's options; an unknown `Epoch…` layout or time zone is a config error.
    pub(crate) fn new(
        section: &PluginSection,
        timestamp_layout: &str,
        timestamp_location: &str,
        severity_map: BTreeMap<String, i32>,
    ) -> Result<CaptureHeaders, ConfigError> {
        let name = section.name();
        let layout = TimestampLayout::new(timestamp_layout).map_err(|e| {
            section.error_at_value(
                "timestamp_layout",
                format!("`timestamp_layout` of [{name}]: {e}"),
            )
        })?;
        let zone = location(timestamp_location).map_err(|e| {
            section.error_at_value(
                "timestamp_location",
                format!("`timestamp_location` of [{name}]: {e}"),
            )
        })?;
        Ok(CaptureHeaders {
            layout,
            zone,
            severity_map,
        })
    }

    /// Sets the Timestamp and Severity of `headers` from the captures of those names (`None`
    /// when there is no such capture). An empty Timestamp is no timestamp.
    pub(crate) fn apply(
        &self,
        timestamp: Option<&str>,
        severity: Option<&str>,
        headers: &mut Headers<'_>,
        errors: &mut CaptureErrors,
    ) {
        if let Some(text) = timestamp
            && !text.is_empty()
        {
            match self.layout.parse(text, &self.zone, None) {
                Some(ns) => headers.timestamp = Some(ns),
                None => errors.timestamp += 1,
            }
        }
        if let Some(text) = severity {
            match self
                .severity_map
                .get(text)
                .copied()
                .or_else(|| text.parse().ok())
            {
                Some(s) => headers.severity = Some(s),
                None => errors.severity += 1,
            }
        }
    }
}

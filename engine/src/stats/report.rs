//! Heka's reports: the `heka.all-report` JSON payload (reference §7.1) and the SIGUSR1 text report
//! (§7.3), built by the coordinator from the shards' merged snapshots.

use std::fmt::Write as _;

/// A report field value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportValue {
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
}

impl ReportValue {
    fn json(&self, out: &mut String) {
        match self {
            ReportValue::Int(v) => {
                let _ = write!(out, "{v}");
            }
            ReportValue::Float(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            ReportValue::Float(_) => out.push_str("null"),
            ReportValue::Str(s) => json_string(s, out),
        }
    }

    /// Go's `%v` of the value.
    fn text(&self) -> String {
        match self {
            ReportValue::Int(v) => v.to_string(),
            ReportValue::Float(v) => v.to_string(),
            ReportValue::Str(s) => s.clone(),
        }
    }
}

/// One `"Name": {"value": V, "representation": R}` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportField {
    /// Field name.
    pub name: String,
    /// Its value.
    pub value: ReportValue,
    /// Unit hint: "count", "ns", "B", or "".
    pub representation: String,
}

impl ReportField {
    /// A field.
    pub fn new(name: &str, value: ReportValue, representation: &str) -> Self {
        Self {
            name: name.to_string(),
            value,
            representation: representation.to_string(),
        }
    }

    /// An integer count.
    pub fn count(name: &str, v: u64) -> Self {
        Self::new(name, ReportValue::Int(v as i64), "count")
    }

    /// A duration in nanoseconds.
    pub fn ns(name: &str, v: u64) -> Self {
        Self::new(name, ReportValue::Int(v as i64), "ns")
    }
}

/// One plugin (or global component) in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportEntry {
    /// Its name.
    pub name: String,
    /// Its fields, in order.
    pub fields: Vec<ReportField>,
}

/// The report categories, in Heka's order, with their JSON keys.
pub const CATEGORIES: [&str; 7] = [
    "globals",
    "inputs",
    "splitters",
    "decoders",
    "filters",
    "outputs",
    "encoders",
];

/// The keys the text report prints, in this order (reference §7.3), then hekate's own counters.
const TEXT_KEYS: &[&str] = &[
    "InChanCapacity",
    "InChanLength",
    "MatchChanCapacity",
    "MatchChanLength",
    "MatchAvgDuration",
    "ProcessMessageCount",
    "InjectMessageCount",
    "Memory",
    "MaxMemory",
    "MaxInstructions",
    "MaxOutput",
    "ProcessMessageAvgDuration",
    "TimerEventAvgDuration",
    "SynchronousDecode",
    // hekate additions
    "MatchedCount",
    "DeliveredCount",
    "DroppedCount",
    "DecodeFailureCount",
    "SkippedBytes",
    "RejectedCount",
];

/// A whole report: per category, its entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Entries per category, indexed like [`CATEGORIES`].
    pub categories: [Vec<ReportEntry>; 7],
}

impl Report {
    /// The `heka.all-report` payload: `{"globals":[{"Name":…,"Field":{"value":…,
    /// "representation":…}}],…}` and a trailing newline, as Go's json.Encoder writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (key, entries)) in CATEGORIES.iter().zip(&self.categories).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{key}\":[");
            for (j, e) in entries.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str("{\"Name\":");
                json_string(&e.name, &mut out);
                for f in &e.fields {
                    out.push(',');
                    json_string(&f.name, &mut out);
                    out.push_str(":{\"value\":");
                    f.value.json(&mut out);
                    out.push_str(",\"representation\":");
                    json_string(&f.representation, &mut out);
                    out.push('}');
                }
                out.push('}');
            }
            out.push(']');
        }
        out.push_str("}\n");
        out
    }

    /// The SIGUSR1 text report.
    pub fn to_text(&self) -> String {
        let mut lines = vec!["========[heka.all-report]========".to_string()];
        for (key, entries) in CATEGORIES.iter().zip(&self.categories) {
            let mut title = key.to_string();
            title[..1].make_ascii_uppercase();
            lines.push(format!("\n===={title}===="));
            if entries.is_empty() {
                lines.push("NONE".to_string());
            }
            for e in entries {
                lines.push(format!("{}:", e.name));
                for k in TEXT_KEYS {
                    if let Some(f) = e.fields.iter().find(|f| f.name == *k) {
                        lines.push(format!("    {k}: {}", f.value.text()));
                    }
                }
            }
        }
        lines.push("========\n".to_string());
        lines.join("\n")
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::default();
        r.categories[0].push(ReportEntry {
            name: "Router".into(),
            fields: vec![ReportField::count("ProcessMessageCount", 42)],
        });
        r.categories[5].push(ReportEntry {
            name: "file \"out\"".into(),
            fields: vec![
                ReportField::count("InChanCapacity", 10),
                ReportField::ns("MatchAvgDuration", 250),
                ReportField::new("Note", ReportValue::Str("x".into()), ""),
            ],
        });
        r
    }

    #[test]
    fn json_is_heka_shaped_and_parses() {
        let json = sample().to_json();
        assert!(json.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["globals"][0]["Name"], "Router");
        assert_eq!(v["globals"][0]["ProcessMessageCount"]["value"], 42);
        assert_eq!(v["outputs"][0]["MatchAvgDuration"]["representation"], "ns");
        assert_eq!(v["filters"].as_array().unwrap().len(), 0);
        assert!(json.starts_with("{\"globals\":[{\"Name\":\"Router\",\"ProcessMessageCount\""));
    }

    #[test]
    fn text_report_follows_heka_layout() {
        let text = sample().to_text();
        let want = "========[heka.all-report]========\n\n====Globals====\nRouter:\n    \
                    ProcessMessageCount: 42\n\n====Inputs====\nNONE\n\n====Splitters====\nNONE\n\n\
                    ====Decoders====\nNONE\n\n====Filters====\nNONE\n\n====Outputs====\n\
                    file \"out\":\n    InChanCapacity: 10\n    MatchAvgDuration: 250\n\n\
                    ====Encoders====\nNONE\n========\n";
        assert_eq!(text, want);
    }
}

//! Reading typed values out of parsed TOML tables, turning every type mismatch into a located
//! [`ConfigError`] instead of stopping.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::ConfigError;
use crate::source::SourceFile;
use crate::suggest::did_you_mean;
use crate::units;

/// A parsed TOML value with its byte span.
pub(crate) type Item<'i> = Spanned<DeValue<'i>>;

/// How a value reads in an error message: `the string "abc"`, `an array`, …
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let ellipsis = if shown.len() < s.len() { "…" } else { "" };
            format!("the string \"{shown}{ellipsis}\"")
        }
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(_) => "a date-time".into(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The value of a TOML integer, if it fits an `i64`.
pub(crate) fn integer(value: &DeValue<'_>) -> Option<Result<i64, ()>> {
    match value {
        DeValue::Integer(i) => Some(i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| ())),
        _ => None,
    }
}

/// Reads the keys of one table (a section or a subsection), collecting errors as it goes.
///
/// Every getter returns `None` when the key is absent *or* its value is unusable; in the second
/// case it has already recorded an error, so callers simply fall back to the default.
pub(crate) struct Reader<'a, 'i> {
    pub(crate) table: &'a DeTable<'i>,
    /// How the section is named in messages, without brackets: `hekad`, `tcp`, `tcp.retries`.
    pub(crate) section: String,
    pub(crate) source: &'a SourceFile,
    pub(crate) errors: &'a mut Vec<ConfigError>,
}

impl<'a, 'i> Reader<'a, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Item<'i>> {
        self.table.get(key)
    }

    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(self.source.error_at(span.start, message));
    }

    fn mismatch(&mut self, key: &str, item: &Item<'_>, expected: &str) {
        let message = format!(
            "`{key}` in section [{}] must be {expected}, not {}",
            self.section,
            describe(item.get_ref())
        );
        self.error(item.span(), message);
    }

    pub(crate) fn bool(&mut self, key: &str) -> Option<bool> {
        let item = self.get(key)?;
        match item.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.mismatch(key, item, "true or false");
                None
            }
        }
    }

    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        let item = self.get(key)?;
        match item.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.mismatch(key, item, "a string");
                None
            }
        }
    }

    /// A string naming one of `choices`.
    pub(crate) fn choice(&mut self, key: &str, choices: &[&str]) -> Option<String> {
        let item = self.get(key)?;
        let value = self.string(key)?;
        if choices.contains(&value.as_str()) {
            return Some(value);
        }
        let listed = choices
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!(
            "`{key}` in section [{}] must be one of {listed}, not \"{value}\"{}",
            self.section,
            did_you_mean(&value, choices.iter().copied())
        );
        self.error(item.span(), message);
        None
    }

    /// An integer within `min..=max`.
    pub(crate) fn int_in(&mut self, key: &str, min: i64, max: i64, expected: &str) -> Option<i64> {
        let item = self.get(key)?;
        match integer(item.get_ref()) {
            Some(Ok(v)) if (min..=max).contains(&v) => Some(v),
            Some(_) => {
                let message = format!(
                    "`{key}` in section [{}] must be {expected} between {min} and {max}, not {}",
                    self.section,
                    describe(item.get_ref())
                );
                self.error(item.span(), message);
                None
            }
            None => {
                self.mismatch(key, item, expected);
                None
            }
        }
    }

    pub(crate) fn u64(&mut self, key: &str) -> Option<u64> {
        self.int_in(key, 0, i64::MAX, "a non-negative integer")
            .map(|v| v as u64)
    }

    pub(crate) fn u32(&mut self, key: &str) -> Option<u32> {
        self.int_in(key, 0, u32::MAX.into(), "a non-negative integer")
            .map(|v| v as u32)
    }

    pub(crate) fn usize(&mut self, key: &str) -> Option<usize> {
        self.u64(key).and_then(|v| usize::try_from(v).ok())
    }

    /// A whole number of seconds, as Heka's `ticker_interval`.
    pub(crate) fn seconds(&mut self, key: &str) -> Option<Duration> {
        self.int_in(key, 0, i64::MAX, "a whole number of seconds")
            .map(|v| Duration::from_secs(v as u64))
    }

    /// A Go duration string such as `"250ms"`.
    pub(crate) fn duration(&mut self, key: &str) -> Option<Duration> {
        let item = self.get(key)?;
        match item.get_ref() {
            DeValue::String(s) => match units::parse_duration(s) {
                Ok(d) => Some(d),
                Err(why) => {
                    let message = format!("`{key}` in section [{}]: {why}", self.section);
                    self.error(item.span(), message);
                    None
                }
            },
            _ => {
                self.mismatch(key, item, "a duration string such as \"250ms\" or \"2m\"");
                None
            }
        }
    }

    /// Seconds as an integer, or a Go duration string.
    pub(crate) fn seconds_or_duration(&mut self, key: &str) -> Option<Duration> {
        match self.get(key)?.get_ref() {
            DeValue::String(_) => self.duration(key),
            _ => self.seconds(key),
        }
    }

    /// Bytes as an integer, or a size string such as `"2MiB"`.
    pub(crate) fn size(&mut self, key: &str) -> Option<u64> {
        let item = self.get(key)?;
        match item.get_ref() {
            DeValue::String(s) => match units::parse_size(s) {
                Ok(v) => Some(v),
                Err(why) => {
                    let message = format!("`{key}` in section [{}]: {why}", self.section);
                    self.error(item.span(), message);
                    None
                }
            },
            DeValue::Integer(_) => self.u64(key),
            _ => {
                self.mismatch(
                    key,
                    item,
                    "a number of bytes or a size string such as \"2MiB\"",
                );
                None
            }
        }
    }

    /// A subsection such as `[name.retries]`.
    pub(crate) fn table(&mut self, key: &str) -> Option<&'a DeTable<'i>> {
        let item = self.get(key)?;
        match item.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                let expected = format!("a table ([{}.{key}])", self.section);
                self.mismatch(key, item, &expected);
                None
            }
        }
    }

    /// A reader over a subsection of this one.
    pub(crate) fn sub<'b>(&'b mut self, key: &str, table: &'a DeTable<'i>) -> Reader<'b, 'i>
    where
        'a: 'b,
    {
        Reader {
            table,
            section: format!("{}.{key}", self.section),
            source: self.source,
            errors: self.errors,
        }
    }

    /// Flags every key not in `known` (a subsection whose keys this crate owns).
    pub(crate) fn reject_unknown_keys(&mut self, known: &[&str]) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !known.contains(&name) {
                let message = format!(
                    "unknown option `{name}` in section [{}]{}",
                    self.section,
                    did_you_mean(name, known.iter().copied())
                );
                self.error(key.span(), message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_every_radix_and_sign() {
        let doc = DeTable::parse("a = -42\nb = 0x1F\nc = 1_000\nd = 0o17\ne = 0b101").unwrap();
        let get = |k: &str| integer(doc.get_ref().get(k).unwrap().get_ref()).unwrap();
        assert_eq!(get("a"), Ok(-42));
        assert_eq!(get("b"), Ok(31));
        assert_eq!(get("c"), Ok(1000));
        assert_eq!(get("d"), Ok(15));
        assert_eq!(get("e"), Ok(5));
    }
}

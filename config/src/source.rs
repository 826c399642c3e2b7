//! Source files: the raw text, `%ENV[NAME]` substitution, quoting of Heka-style section names,
//! and mapping byte offsets back to the line and column the user wrote.

use crate::error::ConfigError;

/// One configuration file (or in-memory text) as read, and as handed to the TOML parser.
///
/// Two rewrites happen before parsing: `%ENV[NAME]` tokens are replaced (as Heka does), then
/// section names that Heka's old TOML parser accepted bare but TOML 1.0 does not, such as
/// `[TCP:5565]`, are quoted (`["TCP:5565"]`). Parsed values carry byte spans into
/// [`SourceFile::text`] (the rewritten text); positions reported to the user are mapped back to
/// the original text, so a substituted value that contains newlines does not shift the line
/// numbers of what follows it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    original: String,
    text: String,
    /// Replacements made by `%ENV[NAME]` substitution (original → substituted).
    env: Vec<Substitution>,
    /// Replacements made by quoting section names (substituted → final text).
    quoting: Vec<Substitution>,
    line_starts: Vec<usize>,
}

/// Where one piece of text was replaced: `text_*` in the rewritten text, `orig_*` in the text
/// before the rewrite.
#[derive(Debug, Clone, Copy)]
struct Substitution {
    text_start: usize,
    text_end: usize,
    orig_start: usize,
    orig_end: usize,
}

/// Maps an offset in rewritten text to the text before the rewrite; an offset inside a
/// replacement maps to the start of what it replaced.
fn to_source(substitutions: &[Substitution], offset: usize) -> usize {
    let mut shifted = offset;
    for sub in substitutions {
        if offset < sub.text_start {
            break;
        }
        if offset < sub.text_end {
            return sub.orig_start;
        }
        shifted = offset - sub.text_end + sub.orig_end;
    }
    shifted
}

/// The outcome of substituting `%ENV[NAME]` tokens in one file.
#[derive(Debug)]
pub(crate) struct Substituted {
    pub(crate) source: SourceFile,
    pub(crate) errors: Vec<ConfigError>,
    /// The token syntax itself is broken (no closing `]`, whitespace in a name): the text is not
    /// worth parsing, it would only add confusing follow-on errors.
    pub(crate) unparseable: bool,
}

/// Characters Heka refuses inside `%ENV[...]`.
const INVALID_NAME_CHARS: &[char] = &['\n', '\r', '\t', ' '];
const TOKEN: &str = "%ENV[";

impl SourceFile {
    /// Reads `%ENV[NAME]` tokens out of `original`, replacing each with `lookup(NAME)`.
    ///
    /// Like Heka this works on the raw text, before TOML parsing (so tokens in comments count
    /// too). Unlike Heka an unset variable is an error rather than an empty string: a silently
    /// empty address or path is a worse failure than a refusal to start.
    pub(crate) fn substitute(
        name: impl Into<String>,
        original: String,
        lookup: &dyn Fn(&str) -> Result<String, std::env::VarError>,
    ) -> Substituted {
        let name = name.into();
        let mut text = String::with_capacity(original.len());
        let mut substitutions = Vec::new();
        let mut pending = Vec::new();
        let mut unparseable = false;
        let mut pos = 0;
        while let Some(found) = original[pos..].find(TOKEN) {
            let start = pos + found;
            text.push_str(&original[pos..start]);
            let name_start = start + TOKEN.len();
            let Some(close) = original[name_start..].find(']') else {
                pending.push((start, "`%ENV[` has no closing `]`".to_string()));
                unparseable = true;
                pos = start;
                break;
            };
            let var = &original[name_start..name_start + close];
            if var.contains(INVALID_NAME_CHARS) {
                pending.push((
                    start,
                    "environment variable name in `%ENV[...]` may not contain spaces, tabs or \
                     line breaks (is the closing `]` missing?)"
                        .to_string(),
                ));
                unparseable = true;
                text.push_str(TOKEN);
                pos = name_start;
                continue;
            }
            let value = match lookup(var) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    pending.push((
                        start,
                        format!("environment variable `{var}` used by `%ENV[{var}]` is not set"),
                    ));
                    String::new()
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    pending.push((
                        start,
                        format!(
                            "environment variable `{var}` used by `%ENV[{var}]` is not valid UTF-8"
                        ),
                    ));
                    String::new()
                }
            };
            let orig_end = name_start + close + 1;
            let text_start = text.len();
            text.push_str(&value);
            substitutions.push(Substitution {
                text_start,
                text_end: text.len(),
                orig_start: start,
                orig_end,
            });
            pos = orig_end;
        }
        text.push_str(&original[pos..]);
        let (text, quoting) = if unparseable {
            (text, Vec::new())
        } else {
            quote_legacy_section_names(text)
        };

        let line_starts = std::iter::once(0)
            .chain(original.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let source = SourceFile {
            name,
            original,
            text,
            env: substitutions,
            quoting,
            line_starts,
        };
        let errors = pending
            .into_iter()
            .map(|(orig_offset, message)| source.error_at_original(orig_offset, message))
            .collect();
        Substituted {
            source,
            errors,
            unparseable,
        }
    }

    /// The file name as given (a path, or the origin name of an in-memory text).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text as read, before `%ENV[NAME]` substitution.
    pub fn original_text(&self) -> &str {
        &self.original
    }

    /// The text after `%ENV[NAME]` substitution and section-name quoting: the text that was
    /// parsed, and the one parsed spans index into.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line and column (in characters) of a byte offset in [`SourceFile::text`].
    ///
    /// An offset inside a substituted value maps to the `%ENV[` token that produced it.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        self.position_in_original(self.to_original(offset))
    }

    /// An error at a byte offset of [`SourceFile::text`].
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(offset);
        ConfigError::at(&self.name, line, column, message)
    }

    fn error_at_original(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position_in_original(offset);
        ConfigError::at(&self.name, line, column, message)
    }

    fn to_original(&self, offset: usize) -> usize {
        to_source(&self.env, to_source(&self.quoting, offset))
    }

    fn position_in_original(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.original.len());
        while !self.original.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.original[line_start..offset].chars().count() + 1;
        (line, column)
    }
}

/// Quotes the parts of table headers that are not valid bare TOML keys: Heka's TOML parser (an
/// early BurntSushi fork) accepted any characters but `.`, `[`, `]` and `#` in section names, so
/// real Heka configs name sections `[TCP:5565]` or `[nginx access]`.
///
/// Only lines that start a table header outside any multi-line value are touched; headers that
/// already contain quotes are left alone.
fn quote_legacy_section_names(text: String) -> (String, Vec<Substitution>) {
    let mut out = String::new();
    let mut substitutions = Vec::new();
    let mut scan = ValueScan::default();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let at_top = scan.open_string.is_none() && scan.depth == 0;
        match at_top.then(|| header_segments(line)).flatten() {
            Some(segments) => {
                let mut pos = 0;
                for (start, end) in segments {
                    out.push_str(&line[pos..start]);
                    let text_start = out.len();
                    out.push('"');
                    for c in line[start..end].chars() {
                        if c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                    substitutions.push(Substitution {
                        text_start,
                        text_end: out.len(),
                        orig_start: line_start + start,
                        orig_end: line_start + end,
                    });
                    pos = end;
                }
                out.push_str(&line[pos..]);
            }
            None => {
                if !at_top || !is_header(line) {
                    scan.line(line);
                }
                out.push_str(line);
            }
        }
        line_start += line.len();
    }
    if substitutions.is_empty() {
        (text, substitutions)
    } else {
        (out, substitutions)
    }
}

fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

fn is_bare_key(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// For a table-header line with names that need quoting, the byte ranges (within the line) of
/// those names, trimmed of surrounding spaces. `None` for any other line, or a header that needs
/// nothing.
fn header_segments(line: &str) -> Option<Vec<(usize, usize)>> {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let (open, close) = if rest.starts_with("[[") {
        ("[[", "]]")
    } else if rest.starts_with('[') {
        ("[", "]")
    } else {
        return None;
    };
    let inner_start = indent + open.len();
    let inner_len = line[inner_start..].find(close)?;
    let inner = &line[inner_start..inner_start + inner_len];
    let after = line[inner_start + inner_len + close.len()..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) || inner.contains(['"', '\'', '[', '#']) {
        return None;
    }
    let mut segments = Vec::new();
    let mut seg_start = inner_start;
    for part in inner.split('.') {
        let trimmed = part.trim();
        if !trimmed.is_empty() && !is_bare_key(trimmed) {
            let start = seg_start + (part.len() - part.trim_start().len());
            segments.push((start, start + trimmed.len()));
        }
        seg_start += part.len() + 1;
    }
    (!segments.is_empty()).then_some(segments)
}

/// Just enough TOML lexing to know whether a line starts inside a multi-line value (an array
/// spanning lines, or a multi-line string), where a `[` at line start is not a table header.
#[derive(Debug, Default)]
struct ValueScan {
    depth: usize,
    open_string: Option<&'static str>,
}

impl ValueScan {
    fn line(&mut self, line: &str) {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if let Some(delim) = self.open_string {
                if line[i..].starts_with(delim) {
                    self.open_string = None;
                    i += delim.len();
                } else if delim == "\"\"\"" && bytes[i] == b'\\' {
                    i += 2;
                } else {
                    i += 1;
                }
                continue;
            }
            match bytes[i] {
                b'#' => return,
                b'"' if line[i..].starts_with("\"\"\"") => {
                    self.open_string = Some("\"\"\"");
                    i += 3;
                    continue;
                }
                b'\'' if line[i..].starts_with("\'\'\'") => {
                    self.open_string = Some("\'\'\'");
                    i += 3;
                    continue;
                }
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'\'' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                }
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    fn lookup(name: &str) -> Result<String, VarError> {
        match name {
            "HOST" => Ok("example.org".into()),
            "MULTI" => Ok("a\nb\nc".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn replaces_tokens_and_keeps_the_rest() {
        let s = SourceFile::substitute("f", "a = \"%ENV[HOST]:80\" # 100%\n".into(), &lookup);
        assert!(s.errors.is_empty());
        assert_eq!(s.source.text(), "a = \"example.org:80\" # 100%\n");
    }

    #[test]
    fn positions_map_back_through_multiline_values() {
        let s = SourceFile::substitute("f", "x = '%ENV[MULTI]'\ny = 1\n".into(), &lookup);
        let text = s.source.text();
        let y = text.find('y').unwrap();
        assert_eq!(s.source.position(y), (2, 1));
        let inside = text.find('b').unwrap();
        assert_eq!(s.source.position(inside), (1, 6));
    }

    #[test]
    fn heka_section_names_are_quoted() {
        let text = "[TCP:5565]\naddress = ':5565'\n  [TCP:5565.signer.Ops_1] # key\nhmac_key = 'k'\n[ok]\n";
        let s = SourceFile::substitute("f", text.into(), &lookup);
        assert_eq!(
            s.source.text(),
            "[\"TCP:5565\"]\naddress = ':5565'\n  [\"TCP:5565\".signer.Ops_1] # key\nhmac_key = 'k'\n[ok]\n"
        );
        let ok = s.source.text().find("[ok]").unwrap();
        assert_eq!(s.source.position(ok), (5, 1));
        let key = s.source.text().find("hmac_key").unwrap();
        assert_eq!(s.source.position(key), (4, 1));
    }

    #[test]
    fn brackets_inside_values_are_not_headers() {
        let text = "[w]\narchive = [\n  [0, 60],\n  [0:1]\n]\ns = \"\"\"\n[a:b]\n\"\"\"\n";
        let s = SourceFile::substitute("f", text.into(), &lookup);
        assert_eq!(s.source.text(), text);
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        let s = SourceFile::substitute("f", "\n\na = '%ENV[NOPE]'\n".into(), &lookup);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].line, Some(3));
        assert_eq!(s.errors[0].column, Some(6));
        assert!(s.errors[0].message.contains("`NOPE`"));
        assert!(!s.unparseable);
    }

    #[test]
    fn missing_bracket_and_whitespace_are_errors() {
        let s = SourceFile::substitute("f", "a = '%ENV[HOST'\nb = [1]\n".into(), &lookup);
        assert!(s.unparseable);
        assert!(s.errors[0].message.contains("may not contain"));
        let s = SourceFile::substitute("f", "a = 1\nb = '%ENV[HOST".into(), &lookup);
        assert!(s.unparseable);
        assert_eq!(s.errors[0].line, Some(2));
        assert!(s.errors[0].message.contains("no closing"));
    }
}

//! Finding a LogstreamerInput's streams: which files under `log_directory` match `file_match`,
//! which stream each belongs to (`differentiator`), and in which order a stream's files are read
//! (`priority`, with `translation` and the built-in month and day names), as Heka does.
//!
//! `file_match` is anchored at both ends and matched against the whole path, with the (symlink
//! resolved) `log_directory` and a `/` before it. Each named capture of a file gets a sort
//! score: `MonthName` and `DayName` are looked up in English names (`jan`/`january` = 1,
//! `mon`/`monday` = 0, any case); a capture with a `translation` map of several entries must be
//! one of its keys (any case); one with a single-entry map (which must be `missing`) gets that
//! value when it matched nothing; otherwise a capture of digits is its number and anything else
//! (or nothing) is -1. Files sort by the `priority` captures in turn, ascending, or descending
//! for a name written `^Name`; the first file is the oldest, the one read first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use regex::Regex;

/// Translation maps: capture name → lower-cased value → score.
pub type Translation = BTreeMap<String, BTreeMap<String, i64>>;

/// How files are found, grouped and ordered.
#[derive(Debug, Clone)]
pub struct SortPattern {
    /// `log_directory`, as configured.
    pub log_directory: PathBuf,
    /// `file_match` with `$` appended if it was missing.
    pub file_match: String,
    /// `priority`.
    pub priority: Vec<String>,
    /// `differentiator` (the plugin's name when empty).
    pub differentiator: Vec<String>,
    /// `translation`, keys lower-cased.
    pub translation: Translation,
    /// `oldest_duration`: files last modified longer ago are left out (zero: none is).
    pub oldest: Duration,
}

/// Why a sort pattern cannot be used: the option at fault and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub &'static str, pub String);

/// A [`SortPattern`] ready to scan.
#[derive(Debug, Clone)]
pub struct Matcher {
    pattern: SortPattern,
    root: PathBuf,
    regex: Regex,
}

/// One file of a stream, with what its name said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logfile {
    /// The file's path.
    pub path: PathBuf,
    /// The sort score of each named capture.
    pub scores: BTreeMap<String, i64>,
}

/// The streams found by one scan, each with its files oldest first, and what went wrong.
#[derive(Debug, Default)]
pub struct Scan {
    /// Stream name → files in reading order.
    pub streams: BTreeMap<String, Vec<Logfile>>,
    /// Files or streams left out, one sentence each (a value missing from a translation map,
    /// several files in a stream without a `priority`).
    pub problems: Vec<String>,
    /// Every directory walked, `log_directory` first (what a watcher watches).
    pub dirs: Vec<PathBuf>,
}

const MONTHS: [(&str, i64); 23] = [
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sep", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

const DAYS: [(&str, i64); 14] = [
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
];

impl SortPattern {
    /// Checks the pattern and compiles it: the regex, the captures `priority` names, the
    /// translation maps. `log_directory` need not exist yet.
    pub fn compile(mut self) -> Result<Matcher, PatternError> {
        if self.file_match.is_empty() {
            return Err(PatternError(
                "file_match",
                "`file_match` is required".into(),
            ));
        }
        if !self.file_match.ends_with('$') {
            self.file_match.push('$');
        }
        for (name, map) in &self.translation {
            if map.len() == 1 && !map.contains_key("missing") {
                return Err(PatternError(
                    "translation",
                    format!("the translation map `{name}` has one entry, which must be `missing`"),
                ));
            }
        }
        self.translation = self
            .translation
            .into_iter()
            .map(|(k, m)| {
                (
                    k,
                    m.into_iter().map(|(v, s)| (v.to_lowercase(), s)).collect(),
                )
            })
            .collect();
        let root = std::fs::canonicalize(&self.log_directory)
            .unwrap_or_else(|_| self.log_directory.clone());
        let mut prefix = root.to_string_lossy().into_owned();
        if !prefix.ends_with('/') && !self.file_match.starts_with('/') {
            prefix.push('/');
        }
        let regex = Regex::new(&format!("^{}{}", regex::escape(&prefix), self.file_match))
            .map_err(|e| {
                PatternError(
                    "file_match",
                    format!("`file_match` is not a valid regex: {e}"),
                )
            })?;
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        for p in &self.priority {
            let name = p.strip_prefix('^').unwrap_or(p);
            if !names.contains(&name) {
                return Err(PatternError(
                    "priority",
                    format!(
                        "`priority` names `{name}`, which `file_match` does not capture (it captures: {})",
                        if names.is_empty() {
                            "nothing".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
        }
        if self.differentiator.is_empty() {
            return Err(PatternError(
                "differentiator",
                "`differentiator` is empty".into(),
            ));
        }
        Ok(Matcher {
            pattern: self,
            root,
            regex,
        })
    }
}

impl Matcher {
    /// The pattern.
    pub fn pattern(&self) -> &SortPattern {
        &self.pattern
    }

    /// The directory scanned (symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks `log_directory` and groups and orders what matches.
    pub fn scan(&self) -> Scan {
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        walk(&self.root, &self.regex, &mut files, &mut dirs, 0);
        let cutoff = (!self.pattern.oldest.is_zero())
            .then(|| SystemTime::now().checked_sub(self.pattern.oldest))
            .flatten();
        let mut scan = Scan {
            dirs,
            ..Scan::default()
        };
        for (path, modified) in files {
            if let (Some(cut), Some(m)) = (cutoff, modified)
                && m <= cut
            {
                continue;
            }
            match self.classify(&path) {
                Ok((stream, file)) => scan.streams.entry(stream).or_default().push(file),
                Err(e) => scan.problems.push(format!("{}: {e}", path.display())),
            }
        }
        let priority = &self.pattern.priority;
        scan.streams.retain(|name, files| {
            if files.len() > 1 && priority.is_empty() {
                scan.problems.push(format!(
                    "stream `{name}` has {} files but no `priority` to order them: {}",
                    files.len(),
                    files
                        .iter()
                        .map(|f| f.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return false;
            }
            files.sort_by(|a, b| order(a, b, priority));
            true
        });
        scan
    }

    /// The stream a matching path belongs to and its sort scores.
    fn classify(&self, path: &Path) -> Result<(String, Logfile), String> {
        let text = path.to_string_lossy();
        let caps = self
            .regex
            .captures(&text)
            .ok_or_else(|| "does not match".to_string())?;
        let mut scores = BTreeMap::new();
        let mut raw = BTreeMap::new();
        for name in self.regex.capture_names().flatten() {
            let value = caps.name(name).map_or("", |m| m.as_str());
            raw.insert(name, value);
            scores.insert(name.to_string(), self.score(name, value)?);
        }
        let stream = self
            .pattern
            .differentiator
            .iter()
            .map(|d| raw.get(d.as_str()).copied().unwrap_or(d.as_str()))
            .collect::<String>();
        Ok((
            stream,
            Logfile {
                path: path.to_path_buf(),
                scores,
            },
        ))
    }

    fn score(&self, name: &str, value: &str) -> Result<i64, String> {
        let lower = if value.is_empty() {
            "missing".to_string()
        } else {
            value.to_lowercase()
        };
        let lookup = |table: &[(&str, i64)], what: &str| {
            table
                .iter()
                .find(|(k, _)| *k == lower)
                .map(|&(_, v)| v)
                .ok_or_else(|| format!("`{value}` is not a {what} name"))
        };
        match name {
            "MonthName" => return lookup(&MONTHS, "month"),
            "DayName" => return lookup(&DAYS, "day"),
            _ => {}
        }
        if let Some(map) = self.pattern.translation.get(name) {
            if map.len() > 1 {
                return map
                    .get(&lower)
                    .copied()
                    .ok_or_else(|| format!("`{value}` is not in the translation map `{name}`"));
            }
            if lower == "missing"
                && let Some(&v) = map.get("missing")
            {
                return Ok(v);
            }
        }
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(value.parse().unwrap_or(i64::MAX));
        }
        Ok(-1)
    }
}

/// Heka's order: by each `priority` capture in turn, `^` for descending.
fn order(a: &Logfile, b: &Logfile, priority: &[String]) -> std::cmp::Ordering {
    for p in priority {
        let (name, descending) = match p.strip_prefix('^') {
            Some(n) => (n, true),
            None => (p.as_str(), false),
        };
        let x = a.scores.get(name).copied().unwrap_or(0);
        let y = b.scores.get(name).copied().unwrap_or(0);
        let o = if descending { y.cmp(&x) } else { x.cmp(&y) };
        if o.is_ne() {
            return o;
        }
    }
    a.path.cmp(&b.path)
}

/// Directories deeper than this are not walked (a symlink loop ends here).
const MAX_DEPTH: usize = 32;

fn walk(
    dir: &Path,
    regex: &Regex,
    out: &mut Vec<(PathBuf, Option<SystemTime>)>,
    dirs: &mut Vec<PathBuf>,
    depth: usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    dirs.push(dir.to_path_buf());
    for entry in entries.flatten() {
        let path = entry.path();
        // Follow symlinks to files (a log replaced by a link still counts), not to directories.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if meta.is_dir() {
            if !is_link && depth < MAX_DEPTH {
                walk(&path, regex, out, dirs, depth + 1);
            }
        } else if meta.is_file() && regex.is_match(&path.to_string_lossy()) {
            out.push((path, meta.modified().ok()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(dir: &Path, file_match: &str, priority: &[&str], diff: &[&str]) -> SortPattern {
        SortPattern {
            log_directory: dir.to_path_buf(),
            file_match: file_match.into(),
            priority: priority.iter().map(|s| s.to_string()).collect(),
            differentiator: diff.iter().map(|s| s.to_string()).collect(),
            translation: Translation::new(),
            oldest: Duration::ZERO,
        }
    }

    fn touch(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x\n").unwrap();
    }

    fn names(scan: &Scan, stream: &str) -> Vec<String> {
        scan.streams[stream]
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    /// `access.log`, `.1`, `.2` with `^Seq`: the highest number is the oldest, the file without
    /// a number (-1) the newest; `$` is appended, so `access.log.gz` is not matched.
    #[test]
    fn numbered_rotation_reads_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "access.log",
            "access.log.1",
            "access.log.2",
            "access.log.10",
            "access.log.gz",
        ] {
            touch(d.path(), n);
        }
        let m = pattern(
            d.path(),
            r"access\.log\.?(?P<Seq>\d*)",
            &["^Seq"],
            &["nginx"],
        )
        .compile()
        .unwrap();
        let scan = m.scan();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(
            names(&scan, "nginx"),
            [
                "access.log.10",
                "access.log.2",
                "access.log.1",
                "access.log"
            ]
        );
    }

    /// Differentiator captures split streams; month names and translations sort; a value not in
    /// a translation map is a problem for that file only.
    #[test]
    fn differentiator_month_names_and_translation() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "2013/Aug/web1-error.log",
            "2013/Jan/web1-error.log",
            "2012/Dec/web1-error.log",
            "2013/Feb/web2-access.log",
            "2013/Feb/web2-weird.log",
        ] {
            touch(d.path(), n);
        }
        let mut p = pattern(
            d.path(),
            r"(?P<Year>\d{4})/(?P<MonthName>\w+)/(?P<Host>\w+)-(?P<Kind>\w+)\.log",
            &["Year", "MonthName"],
            &["Host", "-", "Kind"],
        );
        p.translation.insert(
            "Kind".into(),
            [("Error".to_string(), 1), ("access".to_string(), 2)]
                .into_iter()
                .collect(),
        );
        let scan = p.compile().unwrap().scan();
        assert_eq!(
            scan.streams.keys().collect::<Vec<_>>(),
            ["web1-error", "web2-access"]
        );
        let order: Vec<_> = scan.streams["web1-error"]
            .iter()
            .map(|f| f.path.strip_prefix(d.path()).unwrap().to_owned())
            .collect();
        assert_eq!(
            order,
            [
                PathBuf::from("2012/Dec/web1-error.log"),
                PathBuf::from("2013/Jan/web1-error.log"),
                PathBuf::from("2013/Aug/web1-error.log"),
            ]
        );
        assert_eq!(scan.problems.len(), 1);
        assert!(scan.problems[0].contains("`weird` is not in the translation map `Kind`"));
    }

    #[test]
    fn a_missing_translation_scores_a_file_without_the_capture() {
        let d = tempfile::tempdir().unwrap();
        for n in ["app.log", "app.log.1"] {
            touch(d.path(), n);
        }
        let mut p = pattern(d.path(), r"app\.log\.?(?P<Seq>\d*)", &["^Seq"], &["app"]);
        p.translation.insert(
            "Seq".into(),
            [("missing".to_string(), 99)].into_iter().collect(),
        );
        // Without a number the file scores 99: with ^Seq it is now read first.
        assert_eq!(
            names(&p.compile().unwrap().scan(), "app"),
            ["app.log", "app.log.1"]
        );
    }

    #[test]
    fn config_mistakes_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = pattern(d.path(), r"app\.log", &["Seq"], &["app"])
            .compile()
            .unwrap_err();
        assert!(e.1.contains("`priority` names `Seq`"), "{}", e.1);
        let mut p = pattern(d.path(), r"app\.log(?P<Seq>\d*)", &[], &["app"]);
        p.translation
            .insert("Seq".into(), [("one".to_string(), 1)].into_iter().collect());
        assert!(p.compile().unwrap_err().1.contains("must be `missing`"));
        let e = pattern(d.path(), r"app(\.log", &[], &["app"])
            .compile()
            .unwrap_err();
        assert!(e.1.contains("not a valid regex"), "{}", e.1);
    }

    /// Several files in one stream without a priority: the stream is left out and said why.
    #[test]
    fn several_files_without_priority_is_a_problem() {
        let d = tempfile::tempdir().unwrap();
        for n in ["a.log", "b.log"] {
            touch(d.path(), n);
        }
        let scan = pattern(d.path(), r"\w\.log", &[], &["all"])
            .compile()
            .unwrap()
            .scan();
        assert!(scan.streams.is_empty());
        assert!(scan.problems[0].contains("no `priority`"));
    }
}

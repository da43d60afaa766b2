//! Config source files and located errors (`file:line: field: problem`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One TOML file as read from disk, parsed with spans kept.
pub struct Source {
    /// Path as shown to the user (relative to the current directory when it was given so).
    pub path: PathBuf,
    pub doc: toml_edit::ImDocument<String>,
    line_starts: Vec<usize>,
}

impl Source {
    /// Parses `text`; a syntax error comes back located.
    pub fn parse(path: &Path, text: String) -> Result<Self, ConfigError> {
        let line_starts = line_starts(&text);
        match toml_edit::ImDocument::parse(text.clone()) {
            Ok(doc) => Ok(Self { path: path.to_path_buf(), doc, line_starts }),
            Err(e) => {
                let line = e.span().map(|s| line_of(&line_starts, s.start)).unwrap_or(1);
                let msg = e.message().trim().to_string();
                Err(ConfigError::new(path, line, "(syntax)", format!("invalid TOML: {msg}")))
            }
        }
    }

    pub fn text(&self) -> &str {
        self.doc.raw()
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, span: Option<Range<usize>>) -> usize {
        span.map(|s| line_of(&self.line_starts, s.start)).unwrap_or(1)
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

fn line_of(starts: &[usize], offset: usize) -> usize {
    match starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

/// Where something was written: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One problem in the configuration, located.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigError {
    pub loc: Loc,
    /// The field, qualified by what holds it: `camera[cp-01].bearing_deg`, `site.timezone`.
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(file: &Path, line: usize, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { loc: Loc { file: file.to_path_buf(), line }, field: field.into(), problem: problem.into() }
    }
    pub fn at(loc: &Loc, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { loc: loc.clone(), field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.loc, self.field, self.problem)
    }
}

/// Every problem found in a configuration directory, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let s = line_starts("a\nbb\n\nc");
        assert_eq!(line_of(&s, 0), 1);
        assert_eq!(line_of(&s, 1), 1);
        assert_eq!(line_of(&s, 2), 2);
        assert_eq!(line_of(&s, 5), 3);
        assert_eq!(line_of(&s, 6), 4);
    }

    #[test]
    fn syntax_error_is_located() {
        let e = Source::parse(Path::new("x.toml"), "a = 1\nb = \n".into()).err().unwrap();
        assert_eq!(e.loc.line, 2);
        assert_eq!(e.field, "(syntax)");
    }
}

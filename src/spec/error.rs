//! Spec errors: each names the file, the line and column, the key, and what
//! is allowed instead.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where in a spec file something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecLocation {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl SpecLocation {
    /// Converts a byte span of `text` into a 1-based line and column.
    pub fn from_span(path: &Path, text: &str, span: &Range<usize>) -> Self {
        let offset = span.start.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |tail| tail.chars().count())
            + 1;
        SpecLocation {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for SpecLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}",
            self.path.display(),
            self.line,
            self.column
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the spec {}: {source} (pass another with -f FILE)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Syntax {
        location: SpecLocation,
        message: String,
    },
    #[error("{location}: `{key}`: {message}")]
    Invalid {
        location: SpecLocation,
        key: String,
        message: String,
    },
    #[error("{}: the spec defines no [[image]]: add one with a name and at least one layer", path.display())]
    NoImages { path: PathBuf },
    #[error(
        "SOURCE_DATE_EPOCH is `{value}`: it must be a whole number of seconds since 1970-01-01 UTC, e.g. $(git log -1 --format=%ct)"
    )]
    MalformedSourceDateEpoch { value: String },
    #[error(
        "SOURCE_DATE_EPOCH is `{value}`: that is after 9999-12-31T23:59:59Z, the last time an image config can record"
    )]
    SourceDateEpochTooLate { value: String },
    #[error("no image is named `{name}`; the spec has: {available}")]
    UnknownImage { name: String, available: String },
    #[error("image `{image}` has no platform {platform}; it builds: {available}")]
    UnknownPlatform {
        image: String,
        platform: String,
        available: String,
    },
}

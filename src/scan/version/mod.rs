//! Version ordering per ecosystem, exactly as each package manager orders its
//! own versions: an advisory's range is only as right as this comparison.
//!
//! Each scheme is ported from its reference implementation (dpkg's
//! `verrevcmp`, apk-tools' tokenizer, rpm's `rpmvercmp`, the `packaging`
//! project's PEP 440 key, node-semver's precedence, golang.org/x/mod/semver)
//! and tested against their published test vectors.

mod apk;
mod dpkg;
mod go;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;

/// The version rules of one family of ecosystems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu packages (`deb-version(7)`).
    Dpkg,
    /// Alpine packages (apk-tools).
    Apk,
    /// RPM packages: `[epoch:]version[-release]`, each part by `rpmvercmp`.
    Rpm,
    /// Python packages (PEP 440).
    Pep440,
    /// SemVer 2.0 precedence, as npm and Cargo order versions.
    Semver,
    /// Go modules (golang.org/x/mod/semver), with or without the leading `v`.
    Go,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Pep440 => "pep440",
            Scheme::Semver => "semver",
            Scheme::Go => "go",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("'{version}' is not a valid {scheme} version: {reason}")]
    Invalid {
        scheme: &'static str,
        version: String,
        reason: &'static str,
    },
}

impl VersionError {
    fn invalid(scheme: Scheme, version: &str, reason: &'static str) -> VersionError {
        VersionError::Invalid {
            scheme: scheme.as_str(),
            version: version.to_string(),
            reason,
        }
    }
}

/// Orders two versions under a scheme. A version the scheme's own tool
/// would refuse is an error, so that a range is never decided on a guess.
pub fn compare(scheme: Scheme, left: &str, right: &str) -> Result<Ordering, VersionError> {
    match scheme {
        Scheme::Dpkg => dpkg::compare(left, right),
        Scheme::Apk => apk::compare(left, right),
        Scheme::Rpm => rpm::compare(left, right),
        Scheme::Pep440 => pep440::compare(left, right),
        Scheme::Semver => semver::compare(left, right),
        Scheme::Go => go::compare(left, right),
    }
}

/// Two runs of ASCII digits compared as numbers of any length: leading
/// zeros dropped, then the longer is larger, then byte order.
fn compare_digits(left: &str, right: &str) -> Ordering {
    let left = left.trim_start_matches('0');
    let right = right.trim_start_matches('0');
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

#[cfg(test)]
mod vectors;

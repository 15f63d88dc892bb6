//! Go module version ordering, after golang.org/x/mod/semver: `vMAJOR`,
//! `vMAJOR.MINOR` as shorthands, build metadata (`+incompatible`) ignored,
//! pseudo-versions ordered as the pre-releases they are. OSV writes Go
//! versions without the `v`; either form is read.

use super::semver::precedence;
use super::{Scheme, VersionError};
use std::cmp::Ordering;

struct ModuleVersion<'a> {
    core: [&'a str; 3],
    prerelease: Vec<&'a str>,
}

/// A number of golang.org/x/mod/semver: digits, no leading zero.
fn number(text: &str) -> Option<&str> {
    let valid = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'));
    valid.then_some(text)
}

fn identifiers(text: &str, numbers_checked: bool) -> Option<Vec<&str>> {
    text.split('.')
        .map(|identifier| {
            let characters = !identifier.is_empty()
                && identifier
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
            let numeric = identifier.bytes().all(|byte| byte.is_ascii_digit());
            let leading_zero = numeric && identifier.len() > 1 && identifier.starts_with('0');
            (characters && !(numbers_checked && leading_zero)).then_some(identifier)
        })
        .collect()
}

fn parse(version: &str) -> Option<ModuleVersion<'_>> {
    let version = version.strip_prefix('v').unwrap_or(version);
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    if let Some(build) = build {
        identifiers(build, false)?;
    }
    let (core, prerelease) = match rest.split_once('-') {
        Some((core, prerelease)) => (core, Some(prerelease)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let core = match parts[..] {
        // The shorthands take neither a pre-release nor build metadata.
        [major] if prerelease.is_none() && build.is_none() => [number(major)?, "0", "0"],
        [major, minor] if prerelease.is_none() && build.is_none() => {
            [number(major)?, number(minor)?, "0"]
        }
        [major, minor, patch] => [number(major)?, number(minor)?, number(patch)?],
        _ => return None,
    };
    let prerelease = match prerelease {
        Some(text) => identifiers(text, true)?,
        None => Vec::new(),
    };
    Some(ModuleVersion { core, prerelease })
}

pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    let parse_checked = |version| {
        parse(version).ok_or_else(|| {
            VersionError::invalid(Scheme::Go, version, "it is not a Go module version")
        })
    };
    let (left, right) = (parse_checked(left)?, parse_checked(right)?);
    Ok(precedence(
        (left.core, &left.prerelease),
        (right.core, &right.prerelease),
    ))
}

/// golang.org/x/mod/semver's `Compare`, where an invalid version sorts
/// before every valid one; used to check the port against its tests.
#[cfg(test)]
pub(super) fn compare_lenient(left: &str, right: &str) -> Ordering {
    match (parse(left).is_some(), parse(right).is_some()) {
        (false, false) => Ordering::Equal,
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (true, true) => compare(left, right).unwrap_or(Ordering::Equal),
    }
}

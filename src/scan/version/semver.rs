//! SemVer 2.0 precedence, as npm (node-semver) and Cargo order versions:
//! major, minor and patch as numbers, a pre-release before its release,
//! pre-release identifiers numeric before alphanumeric, build metadata
//! ignored. Parsing is node-semver's strict grammar (a `v` prefix allowed,
//! no leading zeros in numbers, none above 2^53 - 1).

use super::{Scheme, VersionError, compare_digits};
use std::cmp::Ordering;

/// JavaScript's `Number.MAX_SAFE_INTEGER`, node-semver's limit.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

struct SemanticVersion<'a> {
    core: [&'a str; 3],
    prerelease: Vec<&'a str>,
}

fn is_number(identifier: &str) -> bool {
    !identifier.is_empty() && identifier.bytes().all(|byte| byte.is_ascii_digit())
}

fn is_identifier(identifier: &str) -> bool {
    !identifier.is_empty()
        && identifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn parse(version: &str) -> Result<SemanticVersion<'_>, VersionError> {
    let invalid = |reason| VersionError::invalid(Scheme::Semver, version, reason);
    let trimmed = version.trim();
    let trimmed = trimmed.strip_prefix('v').unwrap_or(trimmed);
    let (rest, build) = match trimmed.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (trimmed, None),
    };
    if build.is_some_and(|build| !build.split('.').all(is_identifier)) {
        return Err(invalid("the build metadata is malformed"));
    }
    let (core, prerelease) = match rest.split_once('-') {
        Some((core, prerelease)) => (core, prerelease.split('.').collect::<Vec<_>>()),
        None => (rest, Vec::new()),
    };
    for identifier in &prerelease {
        if !is_identifier(identifier) || (is_number(identifier) && leading_zero(identifier)) {
            return Err(invalid("a pre-release identifier is malformed"));
        }
    }
    let numbers: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = numbers[..] else {
        return Err(invalid("it needs major.minor.patch"));
    };
    for number in [major, minor, patch] {
        if !is_number(number) || leading_zero(number) {
            return Err(invalid(
                "major, minor and patch must be numbers without leading zeros",
            ));
        }
        // node-semver refuses what a JavaScript number cannot hold exactly.
        if number.len() > 16
            || number
                .parse::<u64>()
                .is_ok_and(|value| value > MAX_SAFE_INTEGER)
        {
            return Err(invalid("a number is larger than npm allows"));
        }
    }
    Ok(SemanticVersion {
        core: [major, minor, patch],
        prerelease,
    })
}

fn leading_zero(number: &str) -> bool {
    number.len() > 1 && number.starts_with('0')
}

/// Pre-release identifiers in order: a release (no identifiers) is newer.
pub(super) fn compare_prerelease(left: &[&str], right: &[&str]) -> Ordering {
    match (left.is_empty(), right.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (left, right) in left.iter().zip(right) {
        let order = match (is_number(left), is_number(right)) {
            (true, true) => compare_digits(left, right),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => left.cmp(right),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// Precedence of two parsed versions: major, minor, patch, then pre-release.
pub(super) fn precedence(left: ([&str; 3], &[&str]), right: ([&str; 3], &[&str])) -> Ordering {
    let core = left
        .0
        .iter()
        .zip(right.0)
        .map(|(left, right)| compare_digits(left, right))
        .find(|order| *order != Ordering::Equal)
        .unwrap_or(Ordering::Equal);
    core.then_with(|| compare_prerelease(left.1, right.1))
}

pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    let (left, right) = (parse(left)?, parse(right)?);
    Ok(precedence(
        (left.core, &left.prerelease),
        (right.core, &right.prerelease),
    ))
}

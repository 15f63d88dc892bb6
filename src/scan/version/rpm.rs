//! RPM version ordering: `[epoch:]version[-release]`, the epoch as a number
//! and version and release each by rpm's `rpmvercmp` (alphanumeric runs,
//! digits newer than letters, `~` before everything, `^` after the base).

use super::{Scheme, VersionError, compare_digits};
use std::cmp::Ordering;

struct Evr<'a> {
    epoch: &'a str,
    version: &'a str,
    release: Option<&'a str>,
}

/// Splits an EVR as rpm's `rpmverParse` does: the epoch only when all
/// digits before the first colon, the release after the first hyphen.
fn parse(evr: &str) -> Evr<'_> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch, rest)
        }
        _ => ("0", evr),
    };
    let (version, release) = match rest.split_once('-') {
        Some((version, release)) => (version, Some(release)),
        None => (rest, None),
    };
    Evr {
        epoch,
        version,
        release,
    }
}

pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    for version in [left, right] {
        if version.trim().is_empty() {
            return Err(VersionError::invalid(Scheme::Rpm, version, "it is empty"));
        }
    }
    let (left, right) = (parse(left.trim()), parse(right.trim()));
    let order = compare_digits(left.epoch, right.epoch)
        .then_with(|| rpmvercmp(left.version, right.version));
    Ok(order.then_with(|| match (left.release, right.release) {
        (Some(left), Some(right)) => rpmvercmp(left, right),
        // A release where the other has none is newer, as OSV's ordering of
        // Red Hat versions has it: the record names full EVRs.
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }))
}

fn is_separator(byte: Option<&u8>) -> bool {
    byte.is_some_and(|byte| !byte.is_ascii_alphanumeric() && *byte != b'~' && *byte != b'^')
}

fn run(bytes: &[u8], digits: bool) -> usize {
    bytes
        .iter()
        .take_while(|byte| {
            if digits {
                byte.is_ascii_digit()
            } else {
                byte.is_ascii_alphabetic()
            }
        })
        .count()
}

/// rpm's `rpmvercmp`, segment by segment.
pub(super) fn rpmvercmp(left: &str, right: &str) -> Ordering {
    if left == right {
        return Ordering::Equal;
    }
    let (mut one, mut two) = (left.as_bytes(), right.as_bytes());
    while !one.is_empty() || !two.is_empty() {
        while is_separator(one.first()) {
            one = &one[1..];
        }
        while is_separator(two.first()) {
            two = &two[1..];
        }
        if one.first() == Some(&b'~') || two.first() == Some(&b'~') {
            if one.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if two.first() != Some(&b'~') {
                return Ordering::Less;
            }
            (one, two) = (&one[1..], &two[1..]);
            continue;
        }
        if one.first() == Some(&b'^') || two.first() == Some(&b'^') {
            match (one.first(), two.first()) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => (one, two) = (&one[1..], &two[1..]),
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
            continue;
        }
        if one.is_empty() || two.is_empty() {
            break;
        }
        let numeric = one[0].is_ascii_digit();
        let (one_length, two_length) = (run(one, numeric), run(two, numeric));
        if two_length == 0 {
            // Segments of different types: numeric is newer than alpha.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (segment_one, segment_two) = (&one[..one_length], &two[..two_length]);
        let order = if numeric {
            compare_digits(
                std::str::from_utf8(segment_one).unwrap_or_default(),
                std::str::from_utf8(segment_two).unwrap_or_default(),
            )
        } else {
            segment_one.cmp(segment_two)
        };
        if order != Ordering::Equal {
            return order;
        }
        (one, two) = (&one[one_length..], &two[two_length..]);
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

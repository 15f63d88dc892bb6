//! Debian version ordering: `[epoch:]upstream[-revision]`, each part compared
//! by dpkg's `verrevcmp` (letters before other characters, `~` before
//! everything, even the end of the string; digit runs as numbers).

use super::{Scheme, VersionError, compare_digits};
use std::cmp::Ordering;

struct DebianVersion<'a> {
    epoch: &'a str,
    upstream: &'a str,
    revision: &'a str,
}

/// Parses as dpkg's `parseversion` does, refusing what it refuses.
fn parse(version: &str) -> Result<DebianVersion<'_>, VersionError> {
    let invalid = |reason| VersionError::invalid(Scheme::Dpkg, version, reason);
    let trimmed = version.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if trimmed.contains(char::is_whitespace) {
        return Err(invalid("it contains white space"));
    }
    let (epoch, rest) = match trimmed.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(invalid("the epoch is not a number"));
            }
            if rest.is_empty() {
                return Err(invalid("nothing follows the epoch"));
            }
            (epoch, rest)
        }
        None => ("0", trimmed),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err(invalid("the revision is empty")),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(invalid("the upstream version is empty"));
    }
    // dpkg only warns about the rest (and `dpkg --validate-version` refuses
    // it); no archive holds such a version, so a range is never decided on one.
    if epoch.len() > 10
        || epoch
            .parse::<u64>()
            .is_ok_and(|epoch| epoch > i32::MAX as u64)
    {
        return Err(invalid("the epoch is too big"));
    }
    if !upstream.starts_with(|character: char| character.is_ascii_digit()) {
        return Err(invalid("the upstream version does not start with a digit"));
    }
    if !upstream
        .chars()
        .all(|character| allowed(character, ".-+~:"))
    {
        return Err(invalid(
            "the upstream version has a character dpkg does not allow",
        ));
    }
    if !revision.chars().all(|character| allowed(character, ".+~")) {
        return Err(invalid("the revision has a character dpkg does not allow"));
    }
    Ok(DebianVersion {
        epoch,
        upstream,
        revision,
    })
}

fn allowed(character: char, punctuation: &str) -> bool {
    character.is_ascii_alphanumeric() || punctuation.contains(character)
}

pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    let left = parse(left)?;
    let right = parse(right)?;
    Ok(compare_digits(left.epoch, right.epoch)
        .then_with(|| compare_part(left.upstream.as_bytes(), right.upstream.as_bytes()))
        .then_with(|| compare_part(left.revision.as_bytes(), right.revision.as_bytes())))
}

/// The weight dpkg gives a non-digit character: `~` below the end of the
/// string, letters by their code, anything else after every letter.
fn weight(byte: Option<&u8>) -> i32 {
    match byte {
        None => 0,
        Some(byte) if byte.is_ascii_digit() => 0,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(*byte),
        Some(b'~') => -1,
        Some(byte) => i32::from(*byte) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs.
fn compare_part(left: &[u8], right: &[u8]) -> Ordering {
    let (mut left, mut right) = (left, right);
    while !left.is_empty() || !right.is_empty() {
        while left.first().is_some_and(|byte| !byte.is_ascii_digit())
            || right.first().is_some_and(|byte| !byte.is_ascii_digit())
        {
            let (left_weight, right_weight) = (weight(left.first()), weight(right.first()));
            if left_weight != right_weight {
                return left_weight.cmp(&right_weight);
            }
            left = left.get(1..).unwrap_or_default();
            right = right.get(1..).unwrap_or_default();
        }
        let left_digits = digit_run(left);
        let right_digits = digit_run(right);
        let order = compare_digits(
            std::str::from_utf8(&left[..left_digits]).unwrap_or_default(),
            std::str::from_utf8(&right[..right_digits]).unwrap_or_default(),
        );
        if order != Ordering::Equal {
            return order;
        }
        left = &left[left_digits..];
        right = &right[right_digits..];
    }
    Ordering::Equal
}

fn digit_run(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_sorts_before_the_end() {
        assert_eq!(compare("1.0~rc1", "1.0"), Ok(Ordering::Less));
        assert_eq!(compare("1.0~~", "1.0~"), Ok(Ordering::Less));
        assert_eq!(compare("1:0.1", "2.0"), Ok(Ordering::Greater));
        assert_eq!(compare("3.0.11-1~deb12u2", "3.0.11-1"), Ok(Ordering::Less));
        assert_eq!(compare("1.0-1", "1.0-1+b1"), Ok(Ordering::Less));
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        assert!(compare("a:1", "1").is_err());
        assert!(compare("1:", "1").is_err());
        assert!(compare("1.0-", "1").is_err());
        assert!(compare("", "1").is_err());
        assert!(compare("1 0", "1").is_err());
        assert!(compare("1:a0", "1").is_err());
        assert!(compare("1.0-1:1", "1").is_err());
        assert!(compare("99999999999:1", "1").is_err());
    }
}

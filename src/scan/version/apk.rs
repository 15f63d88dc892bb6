//! Alpine version ordering, ported from apk-tools' `version.c`:
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}`, read token by
//! token; the first token that differs decides, and when one version runs
//! out first the other is newer unless it goes on with a pre-release suffix.

use super::{Scheme, VersionError, compare_digits};
use std::cmp::Ordering;

/// Token kinds in the order apk-tools numbers them: a later kind where the
/// other version has an earlier one makes the version older.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    RevisionNumber,
    End,
    Invalid,
}

/// Suffixes in apk-tools' order; `None` splits pre-release from post-release.
const SUFFIXES: [&str; 10] = [
    "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
];
const NO_SUFFIX: usize = 4;

struct Token<'a> {
    kind: Kind,
    suffix: usize,
    value: &'a [u8],
}

struct Tokens<'a> {
    rest: &'a [u8],
    token: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Tokens<'a> {
        let mut tokens = Tokens {
            rest: version.as_bytes(),
            token: Token {
                kind: Kind::InitialDigit,
                suffix: 0,
                value: b"",
            },
        };
        tokens.digits();
        tokens
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let length = self.rest.iter().take_while(|byte| keep(**byte)).count();
        let (taken, rest) = self.rest.split_at(length);
        self.rest = rest;
        taken
    }

    fn digits(&mut self) {
        self.token.value = self.take_while(|byte| byte.is_ascii_digit());
        if self.token.value.is_empty() {
            self.token.kind = Kind::Invalid;
        }
    }

    fn skip(&mut self, count: usize) {
        self.rest = self.rest.get(count..).unwrap_or_default();
    }

    /// apk-tools' `token_next`: the next token's kind from its first byte,
    /// checked against the kind before it.
    fn advance(&mut self) {
        let kind = self.token.kind;
        let Some(&first) = self.rest.first() else {
            self.token.kind = Kind::End;
            return;
        };
        self.token.kind = match first {
            b'a'..=b'z' if kind <= Kind::Digit => {
                self.token.value = &self.rest[..1];
                self.skip(1);
                Kind::Letter
            }
            b'.' | b'0'..=b'9'
                if kind <= Kind::Digit || (first != b'.' && kind == Kind::Suffix) =>
            {
                if first == b'.' {
                    self.skip(1);
                }
                self.token.kind = if kind == Kind::Suffix {
                    Kind::SuffixNumber
                } else {
                    Kind::Digit
                };
                self.digits();
                return;
            }
            b'_' if kind <= Kind::SuffixNumber => {
                self.skip(1);
                self.token.value = self.take_while(|byte| byte.is_ascii_lowercase());
                match SUFFIXES
                    .iter()
                    .position(|suffix| !suffix.is_empty() && suffix.as_bytes() == self.token.value)
                {
                    Some(suffix) => {
                        self.token.suffix = suffix;
                        Kind::Suffix
                    }
                    None => Kind::Invalid,
                }
            }
            b'~' if kind < Kind::CommitHash => {
                self.skip(1);
                self.token.value =
                    self.take_while(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
                if self.token.value.is_empty() {
                    Kind::Invalid
                } else {
                    Kind::CommitHash
                }
            }
            b'-' if kind < Kind::RevisionNumber && self.rest.starts_with(b"-r") => {
                self.skip(2);
                self.token.kind = Kind::RevisionNumber;
                self.digits();
                return;
            }
            _ => Kind::Invalid,
        };
    }
}

/// apk-tools' `token_cmp`, for two tokens of the same kind.
fn compare_tokens(left: &Token, right: &Token) -> Ordering {
    let text = |token: &Token| String::from_utf8_lossy(token.value).into_owned();
    match left.kind {
        // A digit run with a leading zero compares as a string, as Gentoo's rules have it.
        Kind::Digit if left.value.starts_with(b"0") || right.value.starts_with(b"0") => {
            left.value.cmp(right.value)
        }
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNumber | Kind::RevisionNumber => {
            compare_digits(&text(left), &text(right))
        }
        Kind::Letter => left.value.first().cmp(&right.value.first()),
        Kind::Suffix => left.suffix.cmp(&right.suffix),
        _ => left.value.cmp(right.value),
    }
}

/// Whether apk-tools accepts the version (`apk_version_validate`).
#[cfg(test)]
fn is_valid(version: &str) -> bool {
    let mut tokens = Tokens::new(version);
    while tokens.token.kind < Kind::End {
        tokens.advance();
    }
    tokens.token.kind == Kind::End
}

/// `apk_version_compare_fuzzy`; fuzzy matching takes a version that runs
/// out where the other goes on as equal (the `~` operator).
fn compare_tokenwise(left: &str, right: &str, fuzzy: bool) -> Ordering {
    let mut left_tokens = Tokens::new(left);
    let mut right_tokens = Tokens::new(right);
    while left_tokens.token.kind == right_tokens.token.kind && left_tokens.token.kind < Kind::End {
        let order = compare_tokens(&left_tokens.token, &right_tokens.token);
        if order != Ordering::Equal {
            return order;
        }
        left_tokens.advance();
        right_tokens.advance();
    }
    let (left, right) = (&left_tokens.token, &right_tokens.token);
    if left.kind == right.kind || (right.kind == Kind::End && fuzzy) {
        return Ordering::Equal;
    }
    if left.kind == Kind::Suffix && left.suffix < NO_SUFFIX {
        return Ordering::Less;
    }
    if right.kind == Kind::Suffix && right.suffix < NO_SUFFIX {
        return Ordering::Greater;
    }
    right.kind.cmp(&left.kind)
}

/// Compares as `apk` itself does: token by token, without refusing a
/// version its validator would (old releases carry `6.6.1p1`, which apk
/// still orders); only an empty version is an error.
pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    for version in [left, right] {
        if version.trim().is_empty() {
            return Err(VersionError::invalid(Scheme::Apk, version, "it is empty"));
        }
    }
    Ok(compare_tokenwise(left.trim(), right.trim(), false))
}

#[cfg(test)]
pub(super) fn compare_unchecked(left: &str, right: &str, fuzzy: bool) -> Ordering {
    compare_tokenwise(left, right, fuzzy)
}

#[cfg(test)]
pub(super) fn validate(version: &str) -> bool {
    is_valid(version)
}

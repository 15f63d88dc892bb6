//! Python version ordering (PEP 440), after the `packaging` project's
//! `Version`: the same grammar (case-insensitive, `v` prefix, alternative
//! spellings of pre-, post- and dev-releases) and the same sort key.

use super::{Scheme, VersionError, compare_digits};
use std::cmp::Ordering;

/// A number of any length, compared as a number.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Number(String);

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_digits(&self.0, &other.0)
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `packaging`'s `Infinity` and `NegativeInfinity` around a value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bounded<T> {
    Below,
    Value(T),
    Above,
}

/// A local version segment: a word sorts before any number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LocalSegment {
    Word(String),
    Number(Number),
}

/// The sort key of `packaging.version._cmpkey`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    epoch: Number,
    release: Vec<Number>,
    pre: Bounded<(String, Number)>,
    post: Bounded<Number>,
    dev: Bounded<Number>,
    local: Bounded<Vec<LocalSegment>>,
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn digits(&mut self) -> Option<Number> {
        let length = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        let (digits, rest) = self.rest.split_at(length);
        self.rest = rest;
        Some(Number(digits.to_string()))
    }

    fn eat(&mut self, word: &str) -> bool {
        match self.rest.strip_prefix(word) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn separator(&mut self) {
        let _ = self.eat("-") || self.eat("_") || self.eat(".");
    }

    /// `[-_.]? LABEL [-_.]? N?`, the first label in `labels` that matches,
    /// or nothing consumed when none does.
    fn labelled(&mut self, labels: &[&'static str]) -> Option<(&'static str, Option<Number>)> {
        let start = self.rest;
        self.separator();
        let Some(label) = labels.iter().find(|label| self.rest.starts_with(**label)) else {
            self.rest = start;
            return None;
        };
        self.rest = &self.rest[label.len()..];
        // The separator is taken even when no number follows, as the
        // grammar's two optional parts match: `1.0rc-` is `1.0rc0`.
        self.separator();
        Some((label, self.digits()))
    }
}

fn parse(version: &str) -> Result<Key, VersionError> {
    let invalid = |reason| VersionError::invalid(Scheme::Pep440, version, reason);
    let lowered = version.trim().to_ascii_lowercase();
    let mut parser = Parser {
        rest: lowered.strip_prefix('v').unwrap_or(&lowered),
    };
    let first = parser
        .digits()
        .ok_or_else(|| invalid("it does not start with a number"))?;
    let (epoch, mut release) = if parser.eat("!") {
        let number = parser
            .digits()
            .ok_or_else(|| invalid("no release follows the epoch"))?;
        (first, vec![number])
    } else {
        (Number("0".into()), vec![first])
    };
    loop {
        let before = parser.rest;
        match parser.eat(".").then(|| parser.digits()).flatten() {
            Some(number) => release.push(number),
            None => {
                parser.rest = before;
                break;
            }
        }
    }
    let pre = parser.labelled(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]);
    let post = post_release(&mut parser);
    let dev = parser.labelled(&["dev"]);
    let local = match parser.eat("+") {
        true => Some(
            local_segments(parser.rest).ok_or_else(|| invalid("the local version is malformed"))?,
        ),
        false if parser.rest.is_empty() => None,
        false => return Err(invalid("it does not follow PEP 440")),
    };
    while release
        .last()
        .is_some_and(|number| number.0.bytes().all(|b| b == b'0'))
    {
        release.pop();
    }
    let number = |number: Option<Number>| number.unwrap_or(Number("0".into()));
    Ok(Key {
        epoch,
        release,
        pre: match (&pre, &post, &dev) {
            (None, None, Some(_)) => Bounded::Below,
            (None, _, _) => Bounded::Above,
            (Some((label, count)), _, _) => {
                let label = match *label {
                    "alpha" | "a" => "a",
                    "beta" | "b" => "b",
                    _ => "rc",
                };
                Bounded::Value((label.to_string(), number(count.clone())))
            }
        },
        post: post.map_or(Bounded::Below, |count| Bounded::Value(number(count))),
        dev: dev.map_or(Bounded::Above, |(_, count)| Bounded::Value(number(count))),
        local: local.map_or(Bounded::Below, Bounded::Value),
    })
}

/// `-N`, or `[-_.]? (post|rev|r) [-_.]? N?`.
fn post_release(parser: &mut Parser) -> Option<Option<Number>> {
    let start = parser.rest;
    if parser.eat("-") {
        if let Some(number) = parser.digits() {
            return Some(Some(number));
        }
        parser.rest = start;
    }
    parser
        .labelled(&["post", "rev", "r"])
        .map(|(_, number)| number)
}

/// `[a-z0-9]+ ([-_.] [a-z0-9]+)*`, numbers compared as numbers.
fn local_segments(text: &str) -> Option<Vec<LocalSegment>> {
    text.split(['-', '_', '.'])
        .map(|segment| {
            if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                None
            } else if segment.bytes().all(|b| b.is_ascii_digit()) {
                Some(LocalSegment::Number(Number(segment.to_string())))
            } else {
                Some(LocalSegment::Word(segment.to_string()))
            }
        })
        .collect()
}

pub(super) fn compare(left: &str, right: &str) -> Result<Ordering, VersionError> {
    Ok(parse(left)?.cmp(&parse(right)?))
}

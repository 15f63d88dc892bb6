//! Image tags from the revision, after docker/metadata-action: `sha-3f2a9c1`,
//! the branch, `pr-123`, semantic versions from a `v1.2.3` git tag, a date
//! from the commit time, templates, and `latest`. The spec's `tags` is either
//! a plain list of templates or a [`TagStrategy`] table.
//!
//! Fallbacks, so a build never fails for lack of git:
//! - not a git checkout and no CI commit: no `sha`, `date` or `{sha}` tags
//!   (a warning says why); if nothing else yields a tag, the list is empty
//!   and the image is published by digest only;
//! - detached HEAD outside CI: no branch tag; a tag pointing at HEAD makes
//!   it a tag build;
//! - shallow clone without tags: no semver tags (a warning says to fetch
//!   tags); on CI tag events the version comes from the CI ref, not from git,
//!   so shallow clones there still get them;
//! - `latest = "default-branch"` with no known default branch (no CI
//!   variable, no `origin/HEAD`): no `latest`, with a warning.

use super::CiError;
use super::environment::CiEvent;
use super::revision::Revision;
use super::template::{Placeholder, Template};
use crate::progress::{Event, Observer};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The longest tag the distribution spec allows.
pub const MAX_TAG_LENGTH: usize = 128;

/// `tags = ["a", "b-{short_sha}"]` or a `[image.tags]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagSpec {
    /// Exactly these templates, expanded.
    List(Vec<String>),
    Strategy(TagStrategy),
}

impl Default for TagSpec {
    /// sha, branch, pr, semver and `latest` on releases; no date, no raw.
    fn default() -> Self {
        TagSpec::Strategy(TagStrategy::default())
    }
}

/// Which tags to derive from the revision. Keys left out keep their default,
/// so `[image.tags]` with only `date = "%Y%m%d"` adds a date tag to the
/// default set; switch one off with `sha = false`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TagStrategy {
    /// `sha-<first sha-length hex digits>`.
    pub sha: bool,
    pub sha_length: usize,
    /// The branch name, sanitized (`feature/x` gives `feature-x`). Not on tag
    /// or pull request builds.
    pub branch: bool,
    /// `pr-<number>` on pull and merge requests.
    pub pr: bool,
    /// Templates over `{version}`, `{major}`, `{minor}`, `{patch}`, applied
    /// when a version tag is built. A pre-release gives only its full version.
    /// An empty list switches version tags off.
    pub semver: Vec<String>,
    /// A strftime format applied to the commit time (UTC).
    pub date: Option<String>,
    pub latest: LatestPolicy,
    /// Templates over every placeholder: {branch} {sha} {short_sha} {version}
    /// {major} {minor} {patch} {date} {pr} {run_number}. `{date}` uses the
    /// `date` format, or `%Y%m%d` without one. A template whose placeholder
    /// has no value in a build (`{pr}` on a push) is skipped with a warning.
    pub raw: Vec<String>,
}

impl Default for TagStrategy {
    fn default() -> Self {
        TagStrategy {
            sha: true,
            sha_length: 7,
            branch: true,
            pr: true,
            semver: vec![
                "{major}.{minor}.{patch}".to_string(),
                "{major}.{minor}".to_string(),
                "{major}".to_string(),
            ],
            date: None,
            latest: LatestPolicy::Release,
            raw: Vec::new(),
        }
    }
}

/// When to add `latest`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatestPolicy {
    /// On builds of a version that is not a pre-release.
    #[default]
    Release,
    /// On branch builds of the default branch.
    DefaultBranch,
    /// Never (`latest = false`).
    Never,
}

impl<'de> Deserialize<'de> for LatestPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatestVisitor;
        impl Visitor<'_> for LatestVisitor {
            type Value = LatestPolicy;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(r#""release", "default-branch" or false"#)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<LatestPolicy, E> {
                if value {
                    Err(E::custom(
                        r#"latest = true is ambiguous: write "release" or "default-branch""#,
                    ))
                } else {
                    Ok(LatestPolicy::Never)
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<LatestPolicy, E> {
                match value {
                    "release" => Ok(LatestPolicy::Release),
                    "default-branch" => Ok(LatestPolicy::DefaultBranch),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(LatestVisitor)
    }
}

// Written out rather than `#[serde(untagged)]`: untagged enums replace the
// table's own errors (an unknown key, a wrong type) with "data did not match
// any variant", which would tell the user nothing.
impl<'de> Deserialize<'de> for TagSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagSpecVisitor;
        impl<'de> Visitor<'de> for TagSpecVisitor {
            type Value = TagSpec;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a list of tags or a table of tag rules")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, sequence: A) -> Result<TagSpec, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(sequence))
                    .map(TagSpec::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TagSpec, A::Error> {
                TagStrategy::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(TagSpec::Strategy)
            }
        }
        deserializer.deserialize_any(TagSpecVisitor)
    }
}

impl TagSpec {
    /// Checks every template, the date format and the sha length, whatever
    /// the revision: a typo must fail the first build, not the first release.
    pub fn validate(&self) -> Result<(), CiError> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, CiError> {
        let default_strategy = TagStrategy {
            sha: false,
            branch: false,
            pr: false,
            semver: Vec::new(),
            latest: LatestPolicy::Never,
            ..TagStrategy::default()
        };
        let (strategy, raw) = match self {
            TagSpec::List(templates) => (&default_strategy, templates),
            TagSpec::Strategy(strategy) => (strategy, &strategy.raw),
        };
        if !(1..=40).contains(&strategy.sha_length) {
            return Err(CiError::InvalidShaLength {
                length: strategy.sha_length,
            });
        }
        if let Some(format) = &strategy.date {
            check_date_format(format)?;
        }
        Ok(Compiled {
            strategy: strategy.clone(),
            semver: strategy
                .semver
                .iter()
                .map(|template| Template::parse(template))
                .collect::<Result<_, _>>()?,
            raw: raw
                .iter()
                .map(|template| Template::parse(template))
                .collect::<Result<_, _>>()?,
        })
    }
}

struct Compiled {
    strategy: TagStrategy,
    semver: Vec<Template>,
    raw: Vec<Template>,
}

/// The tags for `revision`, in a fixed order (semver, branch, pr, date, raw,
/// sha, latest) without duplicates. Values that sanitize to nothing and
/// templates whose placeholders have no value in this build are skipped and
/// reported to `observer` as warnings.
pub fn compute_tags(
    spec: &TagSpec,
    revision: &Revision,
    observer: &dyn Observer,
) -> Result<Vec<String>, CiError> {
    let compiled = spec.compile()?;
    let strategy = &compiled.strategy;
    let warn = |message: String| observer.event(Event::Warning { message });
    let mut tags = TagList::default();
    let date_format = strategy.date.as_deref().unwrap_or("%Y%m%d");
    let values = |placeholder: Placeholder| -> Option<String> {
        let version = revision.version.as_ref();
        match placeholder {
            Placeholder::Branch => revision.branch.clone(),
            Placeholder::Sha => revision.commit.clone(),
            Placeholder::ShortSha => revision
                .commit
                .as_ref()
                .map(|commit| commit.chars().take(strategy.sha_length).collect()),
            Placeholder::Version => version.map(ToString::to_string),
            Placeholder::Major => version.map(|version| version.major.to_string()),
            Placeholder::Minor => version.map(|version| version.minor.to_string()),
            Placeholder::Patch => version.map(|version| version.patch.to_string()),
            Placeholder::Date => revision
                .commit_time
                .and_then(|time| format_date(date_format, time).ok()),
            Placeholder::Pr => revision.pull_request.map(|number| number.to_string()),
            Placeholder::RunNumber => revision.run_number.map(|number| number.to_string()),
        }
    };
    let mut add = |origin: &str, value: String| match sanitize_tag(&value) {
        Some(tag) => tags.push(tag),
        None => warn(format!(
            "{origin} `{value}` gives no valid tag after sanitizing; skipped"
        )),
    };

    if !compiled.semver.is_empty() {
        match (&revision.version, &revision.tag) {
            (Some(version), _) if !version.pre.is_empty() => {
                // Pre-releases move fast and break things: they never claim
                // `2.0` or `2`, only their own full version.
                add("version", version.to_string());
            }
            (Some(_), _) => {
                for template in &compiled.semver {
                    match template.expand(&values) {
                        Ok(value) => add("semver template", value),
                        Err(missing) => warn(missing_value("semver", missing)),
                    }
                }
            }
            (None, Some(tag)) if revision.event == CiEvent::Tag => {
                warn(format!(
                    "git tag `{tag}` is not a semantic version (v1.2.3); tagging with its name instead"
                ));
                add("git tag", tag.clone());
            }
            (None, _) => {
                if revision.tag.is_none() && revision.shallow && !revision.ref_from_ci {
                    warn(
                        "shallow clone without tags at HEAD: no version tags; run `git fetch --tags` to get them"
                            .to_string(),
                    );
                }
            }
        }
    }

    if strategy.branch
        && revision.event == CiEvent::Branch
        && let Some(branch) = &revision.branch
    {
        add("branch", branch.clone());
    }

    if strategy.pr
        && revision.event == CiEvent::PullRequest
        && let Some(number) = revision.pull_request
    {
        add("pull request", format!("pr-{number}"));
    }

    if let Some(format) = &strategy.date {
        match revision.commit_time {
            Some(time) => add("date", format_date(format, time)?),
            None => warn("no commit time known (not a git checkout): no date tag".to_string()),
        }
    }

    for template in &compiled.raw {
        match template.expand(&values) {
            Ok(value) => add("template", value),
            Err(missing) => warn(missing_value("template", missing)),
        }
    }

    if strategy.sha {
        match &revision.commit {
            Some(commit) => add(
                "sha",
                format!(
                    "sha-{}",
                    commit.chars().take(strategy.sha_length).collect::<String>()
                ),
            ),
            None => warn(
                "no commit known (not a git checkout and no CI commit variable): no sha tag"
                    .to_string(),
            ),
        }
    }

    match strategy.latest {
        LatestPolicy::Release => {
            if revision
                .version
                .as_ref()
                .is_some_and(|version| version.pre.is_empty())
            {
                tags.push("latest".to_string());
            }
        }
        LatestPolicy::DefaultBranch => {
            if revision.event == CiEvent::Branch {
                match (&revision.branch, &revision.default_branch) {
                    (Some(branch), Some(default)) if branch == default => {
                        tags.push("latest".to_string())
                    }
                    (_, None) => warn(
                        "default branch unknown (no CI variable, no origin/HEAD): no latest tag"
                            .to_string(),
                    ),
                    _ => {}
                }
            }
        }
        LatestPolicy::Never => {}
    }

    if tags.0.is_empty() {
        warn("no tag applies to this build; it is published by digest only".to_string());
    }
    Ok(tags.0)
}

#[derive(Default)]
struct TagList(Vec<String>);

impl TagList {
    fn push(&mut self, tag: String) {
        if !self.0.contains(&tag) {
            self.0.push(tag);
        }
    }
}

fn missing_value(kind: &str, placeholder: Placeholder) -> String {
    format!(
        "{kind} tag skipped: {{{}}} has no value in this build",
        placeholder.name()
    )
}

/// Makes `value` a valid tag the way docker/metadata-action does: each run
/// of characters outside `[A-Za-z0-9_.-]` becomes `-`, leading `.` and `-`
/// go, and the result is cut at 128 characters. `None` when nothing is left.
pub fn sanitize_tag(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut in_invalid_run = false;
    for character in value.chars() {
        if character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-') {
            out.push(character);
            in_invalid_run = false;
        } else if !in_invalid_run {
            out.push('-');
            in_invalid_run = true;
        }
    }
    let trimmed = out.trim_start_matches(['.', '-']);
    // Everything left is ASCII, so cutting at a byte index is safe.
    let cut = &trimmed[..trimmed.len().min(MAX_TAG_LENGTH)];
    (!cut.is_empty()).then(|| cut.to_string())
}

fn check_date_format(format: &str) -> Result<(), CiError> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(CiError::InvalidDateFormat {
            format: format.to_string(),
        });
    }
    Ok(())
}

/// `format` (strftime) applied to `seconds` since 1970, in UTC.
pub fn format_date(format: &str, seconds: i64) -> Result<String, CiError> {
    use std::fmt::Write as _;
    check_date_format(format)?;
    let time =
        chrono::DateTime::from_timestamp(seconds, 0).ok_or(CiError::TimeOutOfRange { seconds })?;
    let mut out = String::new();
    write!(out, "{}", time.format(format)).map_err(|_| CiError::InvalidDateFormat {
        format: format.to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_cases() {
        let cases: &[(&str, Option<&str>)] = &[
            ("feature/Cool_Thing", Some("feature-Cool_Thing")),
            ("main", Some("main")),
            ("fix//many   slashes", Some("fix-many-slashes")),
            ("-leading.dash", Some("leading.dash")),
            ("..hidden", Some("hidden")),
            ("/-/", None),
            ("???", None),
            ("", None),
            ("ünïcode-brånch", Some("n-code-br-nch")),
            ("1.2.3+build.5", Some("1.2.3-build.5")),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_tag(input).as_deref(), *expected, "{input:?}");
        }
        let long = "a".repeat(300);
        assert_eq!(sanitize_tag(&long).unwrap().len(), MAX_TAG_LENGTH);
    }

    #[test]
    fn date_formats() {
        assert_eq!(format_date("%Y%m%d", 1_700_000_000).unwrap(), "20231114");
        assert_eq!(format_date("%Y-%m-%dT%H%M", 0).unwrap(), "1970-01-01T0000");
        assert!(matches!(
            format_date("%Q", 0).unwrap_err(),
            CiError::InvalidDateFormat { .. }
        ));
    }
}

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
use super::events::{EventFilter, TagEvent, never_filled, placeholder_events, run_events};
use super::revision::Revision;
pub use super::tag_rules::{DateRule, LatestPolicy, RawRule, TagStrategy};
use super::template::{Placeholder, Template};
use crate::progress::{Event, Observer, Silent};
use chrono::FixedOffset;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The longest tag the distribution spec allows.
pub const MAX_TAG_LENGTH: usize = 128;

/// `tags = ["a", "b-{short_sha}"]` or a `[image.tags]` table.
// One per image, read once: the size difference costs nothing, and a box
// would make every pattern and constructor of the spec clumsier.
#[allow(clippy::large_enum_variant)]
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
    /// Checks every template, the date format, the time zone and the sha
    /// length, whatever the revision: a typo must fail the first build, not
    /// the first release.
    pub fn validate(&self) -> Result<(), CiError> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, CiError> {
        let list_strategy = TagStrategy {
            sha: EventFilter::Never,
            branch: EventFilter::Never,
            pr: EventFilter::Never,
            semver: Vec::new(),
            latest: LatestPolicy::Never,
            ..TagStrategy::default()
        };
        let (strategy, raw) = match self {
            TagSpec::List(templates) => (
                &list_strategy,
                templates
                    .iter()
                    .map(|value| RawRule {
                        value: value.clone(),
                        on: EventFilter::Default,
                        except: Vec::new(),
                    })
                    .collect(),
            ),
            TagSpec::Strategy(strategy) => (strategy, strategy.raw.clone()),
        };
        if !(1..=40).contains(&strategy.sha_length) {
            return Err(CiError::InvalidShaLength {
                length: strategy.sha_length,
            });
        }
        if let Some(rule) = &strategy.date {
            check_date_format(&rule.format)?;
        }
        Ok(Compiled {
            offset: parse_offset(strategy.date_timezone.as_deref())?,
            strategy: strategy.clone(),
            semver: strategy
                .semver
                .iter()
                .map(|template| Template::parse(template))
                .collect::<Result<_, _>>()?,
            raw: raw
                .into_iter()
                .map(|rule| Ok((Template::parse(&rule.value)?, rule)))
                .collect::<Result<_, CiError>>()?,
        })
    }
}

struct Compiled {
    strategy: TagStrategy,
    offset: FixedOffset,
    semver: Vec<Template>,
    raw: Vec<(Template, RawRule)>,
}

/// One computed tag, and how long its value lasts.
struct ComputedTag {
    value: String,
    life: TagLife,
}

/// How long a tag's value lasts: what decides whether it can name the
/// image of an earlier run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagLife {
    /// The clock or the run number decides it (`{date}`, `{run_number}`).
    Run,
    /// The commit decides it (`sha-…`, a full version): fixed for a commit
    /// and an event, new at the next commit.
    Commit,
    /// The same across commits (the branch, `pr-42`, `latest`, `1.2`, fixed
    /// text): the tag an earlier run's image is found under.
    Moving,
}

impl TagLife {
    /// A template's life, from the placeholders it fills.
    fn of(placeholders: &[Placeholder]) -> TagLife {
        let any = |wanted: &[Placeholder]| placeholders.iter().any(|p| wanted.contains(p));
        if any(&[Placeholder::Date, Placeholder::RunNumber]) {
            TagLife::Run
        } else if any(&[
            Placeholder::Sha,
            Placeholder::ShortSha,
            Placeholder::Version,
            Placeholder::Patch,
        ]) {
            TagLife::Commit
        } else {
            TagLife::Moving
        }
    }
}

/// The tags for `revision`, in a fixed order (semver, branch, pr, date, raw,
/// sha, latest) without duplicates. Each rule applies on its events only;
/// values that sanitize to nothing are skipped, and a rule that can never
/// give a tag (its events never fill its placeholders) is reported to
/// `observer` as a warning, as is a value the environment should know and
/// does not (no commit outside git).
pub fn compute_tags(
    spec: &TagSpec,
    revision: &Revision,
    observer: &dyn Observer,
) -> Result<Vec<String>, CiError> {
    let tags = compute(spec, revision, observer)?;
    if tags.is_empty() {
        observer.event(Event::Warning {
            message: "no tag applies to this build; it is published by digest only".to_string(),
        });
    }
    Ok(tags.into_iter().map(|tag| tag.value).collect())
}

/// The first tag whose value the commit and the event fix, for the
/// `org.opencontainers.image.ref.name` label: a date or run-number tag would
/// put the clock into the config digest.
pub fn stable_tag(spec: &TagSpec, revision: &Revision) -> Result<Option<String>, CiError> {
    Ok(compute(spec, revision, &Silent)?
        .into_iter()
        .find(|tag| tag.life != TagLife::Run)
        .map(|tag| tag.value))
}

/// The tags of this run whose value is the same across commits (the
/// branch, `pr-N`, `latest`, fixed text, `{major}.{minor}`), in the order
/// [`compute_tags`] gives them: where an image an earlier commit pushed
/// can be found. Date, run-number, sha and full-version tags cannot exist
/// before this run.
pub fn moving_tags(spec: &TagSpec, revision: &Revision) -> Result<Vec<String>, CiError> {
    Ok(compute(spec, revision, &Silent)?
        .into_iter()
        .filter(|tag| tag.life == TagLife::Moving)
        .map(|tag| tag.value)
        .collect())
}

fn compute(
    spec: &TagSpec,
    revision: &Revision,
    observer: &dyn Observer,
) -> Result<Vec<ComputedTag>, CiError> {
    let compiled = spec.compile()?;
    let strategy = &compiled.strategy;
    let events = run_events(revision);
    let warn = |message: String| observer.event(Event::Warning { message });
    let mut tags = TagList::default();
    let date_format = strategy
        .date
        .as_ref()
        .map_or("%Y%m%d", |rule| rule.format.as_str());
    let date = |format: &str| {
        revision
            .started
            .map(|time| format_date_in(format, time, compiled.offset))
            .transpose()
    };
    let date_value = date(date_format)?;
    let values =
        |placeholder: Placeholder| placeholder_value(placeholder, revision, strategy, &date_value);
    let mut add = |origin: &str, value: String, life: TagLife| match sanitize_tag(&value) {
        Some(tag) => tags.push(tag, life),
        None => warn(format!(
            "{origin} `{value}` gives no valid tag after sanitizing; skipped"
        )),
    };

    if events.contains(&TagEvent::Tag) {
        add_version_tags(&compiled, revision, &values, &mut add, &warn);
    } else if !compiled.semver.is_empty()
        && revision.tag.is_none()
        && revision.shallow
        && !revision.ref_from_ci
    {
        warn(
            "shallow clone without tags at HEAD: no version tags; run `git fetch --tags` to get them"
                .to_string(),
        );
    }

    if strategy.branch.applies(Some(&[TagEvent::Branch]), &events)
        && let Some(branch) = &revision.branch
    {
        add("branch", branch.clone(), TagLife::Moving);
    }

    if strategy.pr.applies(Some(&[TagEvent::Pr]), &events)
        && let Some(number) = revision.pull_request
    {
        add("pull request", format!("pr-{number}"), TagLife::Moving);
    }

    if let Some(rule) = &strategy.date
        && rule.on.applies(None, &events)
        && !rule.except.iter().any(|event| events.contains(event))
    {
        match date(&rule.format)? {
            Some(value) => add("date", value, TagLife::Run),
            None => warn("the run's start time is not known: no date tag".to_string()),
        }
    }

    for (template, rule) in &compiled.raw {
        add_raw_tag(template, rule, &events, &values, &mut add, &warn);
    }

    if strategy.sha.applies(None, &events) {
        match &revision.commit {
            Some(commit) => add(
                "sha",
                format!(
                    "sha-{}",
                    commit.chars().take(strategy.sha_length).collect::<String>()
                ),
                TagLife::Commit,
            ),
            None => warn(
                "no commit known (not a git checkout and no CI commit variable): no sha tag"
                    .to_string(),
            ),
        }
    }

    add_latest(&strategy.latest, revision, &events, &mut add, &warn);
    Ok(tags.0)
}

fn placeholder_value(
    placeholder: Placeholder,
    revision: &Revision,
    strategy: &TagStrategy,
    date: &Option<String>,
) -> Option<String> {
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
        Placeholder::Date => date.clone(),
        Placeholder::Pr => revision.pull_request.map(|number| number.to_string()),
        Placeholder::RunNumber => revision.run_number.map(|number| number.to_string()),
    }
}

type Add<'a> = dyn FnMut(&str, String, TagLife) + 'a;

fn add_version_tags(
    compiled: &Compiled,
    revision: &Revision,
    values: &dyn Fn(Placeholder) -> Option<String>,
    add: &mut Add,
    warn: &dyn Fn(String),
) {
    if compiled.semver.is_empty() {
        return;
    }
    match (&revision.version, &revision.tag) {
        (Some(version), _) if !version.pre.is_empty() => {
            // Pre-releases move fast and break things: they never claim
            // `2.0` or `2`, only their own full version.
            add("version", version.to_string(), TagLife::Commit);
        }
        (Some(_), _) => {
            for template in &compiled.semver {
                match template.expand(values) {
                    Ok(value) => add(
                        "semver template",
                        value,
                        TagLife::of(&template.placeholders()),
                    ),
                    Err(missing) => warn(missing_value("semver", missing)),
                }
            }
        }
        (None, Some(tag)) if revision.event == CiEvent::Tag => {
            warn(format!(
                "git tag `{tag}` is not a semantic version (v1.2.3); tagging with its name instead"
            ));
            add("git tag", tag.clone(), TagLife::Commit);
        }
        (None, _) => {}
    }
}

/// A raw template on its events. A rule whose events can never fill its
/// placeholders is warned about on every run; one that merely does not
/// apply, or whose placeholder this kind of run cannot fill, is silent.
fn add_raw_tag(
    template: &Template,
    rule: &RawRule,
    events: &[TagEvent],
    values: &dyn Fn(Placeholder) -> Option<String>,
    add: &mut Add,
    warn: &dyn Fn(String),
) {
    let placeholders = template.placeholders();
    let possible = rule.on.possible(None);
    if let Some(placeholder) = never_filled(possible.as_deref(), &placeholders) {
        warn(format!(
            "tag rule `{}` can never give a tag: {{{}}} has no value on the events it applies on",
            rule.value,
            placeholder.name()
        ));
        return;
    }
    if !rule.on.applies(None, events) || rule.except.iter().any(|event| events.contains(event)) {
        return;
    }
    match template.expand(values) {
        Ok(value) => {
            add("template", value, TagLife::of(&placeholders));
        }
        Err(missing) => {
            let expected_here = placeholder_events(missing)
                .is_none_or(|filled| filled.iter().any(|event| events.contains(event)));
            if expected_here {
                warn(missing_value("template", missing));
            }
        }
    }
}

fn add_latest(
    policy: &LatestPolicy,
    revision: &Revision,
    events: &[TagEvent],
    add: &mut Add,
    warn: &dyn Fn(String),
) {
    let on = policy.events();
    if on.iter().any(|event| events.contains(event)) {
        add("latest", "latest".to_string(), TagLife::Moving);
    } else if on.contains(&TagEvent::DefaultBranch)
        && events.contains(&TagEvent::Branch)
        && revision.default_branch.is_none()
    {
        warn("default branch unknown (no CI variable, no origin/HEAD): no latest tag".to_string());
    }
}

#[derive(Default)]
struct TagList(Vec<ComputedTag>);

impl TagList {
    fn push(&mut self, value: String, life: TagLife) {
        if !self.0.iter().any(|tag| tag.value == value) {
            self.0.push(ComputedTag { value, life });
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
    format_date_in(
        format,
        seconds,
        FixedOffset::east_opt(0).expect("zero is an offset"),
    )
}

/// `format` (strftime) applied to `seconds` since 1970, at `offset`.
fn format_date_in(format: &str, seconds: i64, offset: FixedOffset) -> Result<String, CiError> {
    use std::fmt::Write as _;
    check_date_format(format)?;
    let time = chrono::DateTime::from_timestamp(seconds, 0)
        .ok_or(CiError::TimeOutOfRange { seconds })?
        .with_timezone(&offset);
    let mut out = String::new();
    write!(out, "{}", time.format(format)).map_err(|_| CiError::InvalidDateFormat {
        format: format.to_string(),
    })?;
    Ok(out)
}

/// `UTC` (or nothing), `Z`, or an offset `+HH:MM`, `-HHMM`, `+HH`.
fn parse_offset(value: Option<&str>) -> Result<FixedOffset, CiError> {
    let invalid = || CiError::InvalidTimezone {
        value: value.unwrap_or_default().to_string(),
    };
    let text = match value {
        None | Some("UTC" | "utc" | "Z") => return FixedOffset::east_opt(0).ok_or_else(invalid),
        Some(text) => text,
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid()),
    };
    let digits: String = rest.chars().filter(|character| *character != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| invalid())?;
    let minutes: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Ok(0), str::parse)
        .map_err(|_| invalid())?;
    if hours > 14 || minutes > 59 {
        return Err(invalid());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(invalid)
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
    fn time_zones_are_offsets() {
        let at = |zone: Option<&str>| {
            parse_offset(zone)
                .map(|offset| format_date_in("%Y%m%d-%H%M", 1_700_000_000, offset).unwrap())
        };
        assert_eq!(at(None).unwrap(), "20231114-2213");
        assert_eq!(at(Some("UTC")).unwrap(), "20231114-2213");
        assert_eq!(at(Some("+09:00")).unwrap(), "20231115-0713");
        assert_eq!(at(Some("-0530")).unwrap(), "20231114-1643");
        for bad in ["Europe/Berlin", "+25:00", "9", "+9:0", ""] {
            assert!(
                matches!(at(Some(bad)), Err(CiError::InvalidTimezone { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_tag_lasts_as_long_as_what_fills_it() {
        use Placeholder::*;
        assert_eq!(TagLife::of(&[]), TagLife::Moving);
        assert_eq!(TagLife::of(&[Branch]), TagLife::Moving);
        assert_eq!(TagLife::of(&[Pr]), TagLife::Moving);
        assert_eq!(TagLife::of(&[Major, Minor]), TagLife::Moving);
        assert_eq!(TagLife::of(&[Branch, ShortSha]), TagLife::Commit);
        assert_eq!(TagLife::of(&[Major, Minor, Patch]), TagLife::Commit);
        assert_eq!(TagLife::of(&[Version]), TagLife::Commit);
        assert_eq!(TagLife::of(&[Sha, Date]), TagLife::Run);
        assert_eq!(TagLife::of(&[RunNumber]), TagLife::Run);
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

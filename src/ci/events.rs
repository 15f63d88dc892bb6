//! The events a tag rule can be limited to, after docker/metadata-action's
//! `event=` and `enable=`: what kind of run this is (a push to a branch or
//! the default branch, a git tag, a release or pre-release, a pull request,
//! a schedule, a manual run) and which of those a rule applies on. Read by
//! [`super::tags`] when it computes the tags of one build.

use super::environment::{CiEvent, Trigger};
use super::revision::Revision;
use super::template::Placeholder;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One kind of run. A run can be several at once: a push to the default
/// branch is also a `branch` push, a release is also a `tag` push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagEvent {
    /// A push to any branch.
    Branch,
    /// A push to the default branch.
    DefaultBranch,
    /// A push of any git tag.
    Tag,
    /// A version tag that is not a pre-release.
    Release,
    /// A version tag with a pre-release part (`v2.0.0-rc.1`).
    Prerelease,
    /// A pull or merge request.
    Pr,
    /// A scheduled run, on whatever branch it runs.
    Schedule,
    /// A run started by hand (`workflow_dispatch`; a GitLab web or API
    /// pipeline), on whatever branch it runs.
    Manual,
}

impl TagEvent {
    const NAMES: &'static str =
        "branch, default-branch, tag, release, prerelease, pr, schedule, manual";
}

/// The events of the run `revision` describes. Scheduled and manual runs are
/// only that: their branch is where they run, not what they are about.
pub fn run_events(revision: &Revision) -> Vec<TagEvent> {
    match revision.trigger {
        Trigger::Schedule => return vec![TagEvent::Schedule],
        Trigger::Manual => return vec![TagEvent::Manual],
        Trigger::Push => {}
    }
    let mut events = Vec::new();
    if revision.event == CiEvent::Branch
        && let Some(branch) = &revision.branch
    {
        events.push(TagEvent::Branch);
        if revision.default_branch.as_ref() == Some(branch) {
            events.push(TagEvent::DefaultBranch);
        }
    }
    if revision.event == CiEvent::PullRequest {
        events.push(TagEvent::Pr);
    }
    // A local build on a branch whose HEAD carries a version tag is a
    // release of that version too (see `Revision::resolve`).
    if revision.tag.is_some() && revision.event != CiEvent::PullRequest {
        events.push(TagEvent::Tag);
        match &revision.version {
            Some(version) if version.pre.is_empty() => events.push(TagEvent::Release),
            Some(_) => events.push(TagEvent::Prerelease),
            None => {}
        }
    }
    events
}

/// On which events a rule applies: `true` (the rule's own default events),
/// `false`, or a list of events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EventFilter {
    /// The rule's default.
    #[default]
    Default,
    Never,
    Only(Vec<TagEvent>),
}

impl EventFilter {
    /// Whether the rule applies in a run of `events`, given the events it
    /// applies on by default (`None`: every run).
    pub fn applies(&self, default: Option<&[TagEvent]>, events: &[TagEvent]) -> bool {
        match self {
            EventFilter::Never => false,
            EventFilter::Only(only) => only.iter().any(|event| events.contains(event)),
            EventFilter::Default => {
                default.is_none_or(|default| default.iter().any(|event| events.contains(event)))
            }
        }
    }

    /// The events the rule can apply on; `None` for every run.
    pub fn possible(&self, default: Option<&[TagEvent]>) -> Option<Vec<TagEvent>> {
        match self {
            EventFilter::Never => Some(Vec::new()),
            EventFilter::Only(only) => Some(only.clone()),
            EventFilter::Default => default.map(<[TagEvent]>::to_vec),
        }
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FilterVisitor;
        impl<'de> Visitor<'de> for FilterVisitor {
            type Value = EventFilter;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    formatter,
                    "true, false or a list of events ({})",
                    TagEvent::NAMES
                )
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<EventFilter, E> {
                Ok(if value {
                    EventFilter::Default
                } else {
                    EventFilter::Never
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, sequence: A) -> Result<EventFilter, A::Error> {
                let events =
                    Vec::<TagEvent>::deserialize(de::value::SeqAccessDeserializer::new(sequence))?;
                Ok(EventFilter::Only(events))
            }
        }
        deserializer.deserialize_any(FilterVisitor)
    }
}

/// The events on which `placeholder` can have a value; `None` for every run
/// (where the environment knows it at all).
pub fn placeholder_events(placeholder: Placeholder) -> Option<&'static [TagEvent]> {
    const VERSION: &[TagEvent] = &[TagEvent::Tag, TagEvent::Release, TagEvent::Prerelease];
    const BRANCH: &[TagEvent] = &[
        TagEvent::Branch,
        TagEvent::DefaultBranch,
        TagEvent::Schedule,
        TagEvent::Manual,
    ];
    match placeholder {
        Placeholder::Pr => Some(&[TagEvent::Pr]),
        Placeholder::Version | Placeholder::Major | Placeholder::Minor | Placeholder::Patch => {
            Some(VERSION)
        }
        Placeholder::Branch => Some(BRANCH),
        Placeholder::Sha | Placeholder::ShortSha | Placeholder::Date | Placeholder::RunNumber => {
            None
        }
    }
}

/// Whether a rule that can apply on `possible` events (`None`: every run)
/// and needs values for `placeholders` can ever give a tag; if not, the
/// first placeholder that can never be filled then.
pub fn never_filled(
    possible: Option<&[TagEvent]>,
    placeholders: &[Placeholder],
) -> Option<Placeholder> {
    let possible = possible?;
    placeholders.iter().copied().find(|placeholder| {
        placeholder_events(*placeholder)
            .is_some_and(|filled| !possible.iter().any(|event| filled.contains(event)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(event: CiEvent, branch: Option<&str>, tag: Option<&str>) -> Revision {
        Revision {
            event,
            branch: branch.map(str::to_string),
            tag: tag.map(str::to_string),
            version: tag.and_then(super::super::revision::parse_version),
            default_branch: Some("main".to_string()),
            ..Revision::default()
        }
    }

    #[test]
    fn runs_have_their_events() {
        use TagEvent::*;
        let main = revision(CiEvent::Branch, Some("main"), None);
        assert_eq!(run_events(&main), [Branch, DefaultBranch]);
        let feature = revision(CiEvent::Branch, Some("feature"), None);
        assert_eq!(run_events(&feature), [Branch]);
        let release = revision(CiEvent::Tag, None, Some("v1.2.3"));
        assert_eq!(run_events(&release), [Tag, Release]);
        let candidate = revision(CiEvent::Tag, None, Some("v2.0.0-rc.1"));
        assert_eq!(run_events(&candidate), [Tag, Prerelease]);
        let other_tag = revision(CiEvent::Tag, None, Some("nightly"));
        assert_eq!(run_events(&other_tag), [Tag]);
        assert_eq!(
            run_events(&revision(CiEvent::PullRequest, None, None)),
            [Pr]
        );
        let scheduled = Revision {
            trigger: Trigger::Schedule,
            ..main.clone()
        };
        assert_eq!(run_events(&scheduled), [Schedule]);
        let manual = Revision {
            trigger: Trigger::Manual,
            ..main
        };
        assert_eq!(run_events(&manual), [Manual]);
    }

    #[test]
    fn filters_apply_on_their_events() {
        use TagEvent::*;
        let default: Option<&[TagEvent]> = Some(&[Branch]);
        assert!(EventFilter::Default.applies(default, &[Branch, DefaultBranch]));
        assert!(!EventFilter::Default.applies(default, &[Pr]));
        assert!(EventFilter::Default.applies(None, &[Schedule]));
        assert!(!EventFilter::Never.applies(None, &[Branch]));
        let only = EventFilter::Only(vec![Release, DefaultBranch]);
        assert!(only.applies(default, &[Tag, Release]));
        assert!(only.applies(default, &[Branch, DefaultBranch]));
        assert!(!only.applies(default, &[Branch]));
    }

    #[test]
    fn rules_that_can_never_give_a_tag_are_found() {
        use TagEvent::*;
        assert_eq!(
            never_filled(Some(&[Branch]), &[Placeholder::Pr]),
            Some(Placeholder::Pr)
        );
        assert_eq!(never_filled(Some(&[Pr]), &[Placeholder::Pr]), None);
        assert_eq!(never_filled(None, &[Placeholder::Pr]), None);
        assert_eq!(
            never_filled(Some(&[Manual]), &[Placeholder::Major]),
            Some(Placeholder::Major)
        );
        assert_eq!(never_filled(Some(&[]), &[Placeholder::Sha]), None);
    }
}

//! One view of "what is being built", merged from git and the CI
//! environment. CI values win where set, because CI checkouts are often
//! detached, shallow and tagless; git fills in the rest (commit time, dirty,
//! and everything on a local build). Tags and labels are computed from this.

use super::environment::{CiEnvironment, CiEvent, CiProvider, Trigger};
use super::git::{GitInfo, browse_url};

/// The build's revision, as tags and labels see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    pub provider: CiProvider,
    pub event: CiEvent,
    /// The CI system named the ref; otherwise branch and tag come from git.
    pub ref_from_ci: bool,
    /// Full commit id; `None` without git and without a CI commit variable.
    pub commit: Option<String>,
    /// Committer time of the checked-out commit (seconds since 1970); only
    /// git knows it.
    pub commit_time: Option<i64>,
    /// The branch being built; `None` on tag and pull request events and on a
    /// detached HEAD.
    pub branch: Option<String>,
    /// The git tag being built (see [`Revision::resolve`] for which one).
    pub tag: Option<String>,
    /// `tag` as a semantic version, without its `v` prefix.
    pub version: Option<semver::Version>,
    pub pull_request: Option<u64>,
    pub default_branch: Option<String>,
    pub run_number: Option<u64>,
    /// Web URL of the repository, for the `source` and `url` labels.
    pub source_url: Option<String>,
    /// The working tree has changes git has not committed.
    pub dirty: bool,
    /// The clone is shallow, so tags may be missing.
    pub shallow: bool,
    /// A push, a scheduled run or a manual one.
    pub trigger: Trigger,
    /// When this run started (seconds since 1970, UTC), for date tags; set
    /// by whoever reads the clock, never by [`Revision::resolve`].
    pub started: Option<i64>,
}

impl Revision {
    /// Merges git and CI. Where CI names the ref (a branch push, a tag push,
    /// a pull request), that ref decides the event and git only adds the
    /// commit time and working tree state. Where it does not (a local build,
    /// or a CI event without a ref), git decides:
    /// - HEAD on a branch: a branch build, and if a version tag also points
    ///   at HEAD, a release of that version too;
    /// - detached HEAD with a tag: a tag build;
    /// - detached HEAD without a tag: event unknown, so no branch tag.
    ///
    /// Of several tags at HEAD, the highest semantic version is the one
    /// built; without any version tag, the first tag by name.
    pub fn resolve(git: Option<&GitInfo>, ci: &CiEnvironment) -> Revision {
        let mut revision = Revision {
            provider: ci.provider,
            event: ci.event.clone(),
            ref_from_ci: ci.event != CiEvent::Unknown,
            commit: ci
                .commit
                .clone()
                .or_else(|| git.map(|git| git.commit.clone())),
            commit_time: git.map(|git| git.commit_time),
            pull_request: ci.pull_request,
            default_branch: ci
                .default_branch
                .clone()
                .or_else(|| git.and_then(|git| git.default_branch.clone())),
            run_number: ci.run_number,
            source_url: ci.repository_url.clone().or_else(|| {
                git.and_then(|git| git.remote_url.as_deref())
                    .and_then(browse_url)
            }),
            dirty: git.is_some_and(|git| git.dirty),
            shallow: git.is_some_and(|git| git.shallow),
            trigger: ci.trigger,
            ..Revision::default()
        };
        match ci.event {
            CiEvent::Branch => revision.branch = ci.branch.clone(),
            CiEvent::Tag => revision.tag = ci.tag.clone(),
            CiEvent::PullRequest => {}
            CiEvent::Unknown => {
                if let Some(git) = git {
                    revision.branch = git.branch.clone();
                    revision.tag = best_tag(&git.tags);
                    revision.event = if revision.branch.is_some() {
                        CiEvent::Branch
                    } else if revision.tag.is_some() {
                        CiEvent::Tag
                    } else {
                        CiEvent::Unknown
                    };
                }
            }
        }
        revision.version = revision.tag.as_deref().and_then(parse_version);
        revision
    }
}

/// Parses `v1.2.3`, `V1.2.3` or `1.2.3` (with pre-release and build parts).
pub fn parse_version(tag: &str) -> Option<semver::Version> {
    let bare = tag
        .strip_prefix('v')
        .or_else(|| tag.strip_prefix('V'))
        .unwrap_or(tag);
    semver::Version::parse(bare).ok()
}

fn best_tag(tags: &[String]) -> Option<String> {
    tags.iter()
        .filter_map(|tag| parse_version(tag).map(|version| (version, tag)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, tag)| tag.clone())
        .or_else(|| tags.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(branch: Option<&str>, tags: &[&str]) -> GitInfo {
        GitInfo {
            commit: "1111111111111111111111111111111111111111".to_string(),
            commit_time: 1_700_000_000,
            branch: branch.map(str::to_string),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            remote_url: Some("git@github.com:org/repo.git".to_string()),
            default_branch: Some("main".to_string()),
            shallow: false,
            dirty: true,
        }
    }

    #[test]
    fn local_branch_with_version_tag_is_also_a_release() {
        let revision = Revision::resolve(
            Some(&git(Some("main"), &["v1.2.3", "v1.10.0", "nightly"])),
            &CiEnvironment::default(),
        );
        assert_eq!(revision.event, CiEvent::Branch);
        assert_eq!(revision.branch.as_deref(), Some("main"));
        assert_eq!(revision.tag.as_deref(), Some("v1.10.0"));
        assert_eq!(revision.version, Some(semver::Version::new(1, 10, 0)));
        assert_eq!(
            revision.source_url.as_deref(),
            Some("https://github.com/org/repo")
        );
        assert_eq!(revision.commit_time, Some(1_700_000_000));
        assert!(revision.dirty);
    }

    #[test]
    fn ci_values_win_over_git() {
        let ci = CiEnvironment {
            provider: CiProvider::GitHubActions,
            event: CiEvent::Branch,
            branch: Some("release".to_string()),
            commit: Some("2222222222222222222222222222222222222222".to_string()),
            repository_url: Some("https://github.com/org/other".to_string()),
            default_branch: Some("trunk".to_string()),
            ..CiEnvironment::default()
        };
        let revision = Revision::resolve(Some(&git(None, &["v9.9.9"])), &ci);
        assert_eq!(revision.branch.as_deref(), Some("release"));
        assert_eq!(revision.tag, None, "a branch push is not a release");
        assert_eq!(
            revision.commit.as_deref(),
            Some("2222222222222222222222222222222222222222")
        );
        assert_eq!(
            revision.source_url.as_deref(),
            Some("https://github.com/org/other")
        );
        assert_eq!(revision.default_branch.as_deref(), Some("trunk"));
        assert_eq!(revision.commit_time, Some(1_700_000_000));
    }

    #[test]
    fn detached_head() {
        let on_tag = Revision::resolve(Some(&git(None, &["v2.0.0"])), &CiEnvironment::default());
        assert_eq!(on_tag.event, CiEvent::Tag);
        let bare = Revision::resolve(Some(&git(None, &[])), &CiEnvironment::default());
        assert_eq!((bare.event, bare.branch), (CiEvent::Unknown, None));
        let nothing = Revision::resolve(None, &CiEnvironment::default());
        assert_eq!(nothing, Revision::default());
    }
}

//! `hoist ls`, `digest`, `tag`, `delete` and `prune` as operations: a
//! repository's tags after the push, over the registry client's repository
//! handle and the retention policy of `registry::retention`. Deleting and
//! pruning report [`Event::ManifestDeleted`] (or [`Event::WouldDelete`]) for
//! each manifest, attachments after what they are attached to.

use crate::image::Blob as _;
use crate::oci::{Digest, Platform};
use crate::progress::{DeletedManifest, Event, Observer};
use crate::registry::hosted::{self, ApiChoice, RegistryApi};
use crate::registry::retention::{self, ImageRegistry, KeptBecause, PrunePolicy, RetentionError};
use crate::registry::{Access, ClientOptions, Reference, ReferenceError, RegistryClient};
use crate::registry::{RegistryError, RegistrySource};
use crate::source::{Source as _, SourceError, select_platform};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("tag {tag}")]
    Tag {
        tag: String,
        #[source]
        source: ReferenceError,
    },
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error("{context}")]
    Retention {
        context: String,
        #[source]
        source: Box<RetentionError>,
    },
    #[error(transparent)]
    Delete(Box<RetentionError>),
    #[error("{reference}: the registry has no such manifest; nothing was deleted")]
    NoSuchManifest { reference: String },
    #[error("tagging {reference}")]
    Tagging {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
}

// Boxed, as the errors of `copy` are: the registry's errors are large, and
// an operation's result should not be.
impl From<RegistryError> for RepositoryError {
    fn from(error: RegistryError) -> RepositoryError {
        RepositoryError::Registry(Box::new(error))
    }
}

impl From<RetentionError> for RepositoryError {
    fn from(error: RetentionError) -> RepositoryError {
        RepositoryError::Delete(Box::new(error))
    }
}

impl From<SourceError> for RepositoryError {
    fn from(error: SourceError) -> RepositoryError {
        RepositoryError::Source(Box::new(error))
    }
}

/// The tags of `repository`, those matching `patterns` (all when empty).
pub struct ListRequest {
    pub repository: Reference,
    pub patterns: Option<globset::GlobSet>,
    pub registry: ClientOptions,
}

/// A repository's tags, serialized as `hoist ls --json` prints them.
#[derive(Debug, Serialize)]
pub struct TagListing {
    pub repository: String,
    pub tags: Vec<String>,
}

/// The manifest digests of `references`, or of their `platform` image.
pub struct DigestRequest {
    pub references: Vec<Reference>,
    pub platform: Option<Platform>,
    pub registry: ClientOptions,
}

/// Point `tags` of the source's repository at what `source` names.
pub struct TagRequest {
    pub source: Reference,
    pub tags: Vec<String>,
    pub registry: ClientOptions,
}

/// Delete the manifests `references` name, with their attachments unless
/// `keep_attachments`.
pub struct DeleteRequest {
    pub references: Vec<Reference>,
    pub keep_attachments: bool,
    pub registry: ClientOptions,
    /// The API the references' repositories are deleted through.
    pub api: ApiChoice,
}

/// Delete what the tags of `repository` that `policy` lets go point at.
pub struct PruneRequest {
    pub repository: Reference,
    pub policy: PrunePolicy,
    pub dry_run: bool,
    pub registry: ClientOptions,
    /// The API the repository is listed and deleted through.
    pub api: ApiChoice,
}

/// What a prune deleted (or would have).
pub struct PruneOutcome {
    /// Manifests deleted, referrers included (not those already gone), but
    /// not what deleted indexes listed.
    pub manifests: usize,
    /// Platform and attestation manifests deleted because an index that
    /// went listed them.
    pub listed: usize,
    /// Tags that went with them.
    pub tags: usize,
    /// Matching tags that stay.
    pub kept: usize,
}

/// A client over the request's options (the command line scopes
/// credentials given without a registry to the references' registries).
fn client(options: &ClientOptions) -> Result<RegistryClient, RepositoryError> {
    Ok(RegistryClient::new(options.clone())?)
}

/// The tags of a repository, sorted.
pub fn list_tags(request: &ListRequest) -> Result<TagListing, RepositoryError> {
    let client = client(&request.registry)?;
    let mut tags: Vec<String> = client
        .repository(&request.repository, Access::PULL)
        .tags()?
        .into_iter()
        .filter(|tag| {
            request
                .patterns
                .as_ref()
                .is_none_or(|patterns| patterns.is_match(tag))
        })
        .collect();
    // In lexical order, as the distribution spec has registries page them
    // (some answer in storage order).
    tags.sort();
    Ok(TagListing {
        repository: request.repository.repository_name(),
        tags,
    })
}

/// The digest of each reference's manifest (or its platform image's), in order.
pub fn digests(request: &DigestRequest) -> Result<Vec<Digest>, RepositoryError> {
    let client = client(&request.registry)?;
    let mut digests = Vec::new();
    for reference in &request.references {
        let digest = match &request.platform {
            None => crate::registry::require_manifest_digest(&client, reference)?,
            Some(platform) => {
                let manifest = RegistrySource::new(client.clone(), reference.clone()).resolve()?;
                select_platform(&manifest, platform)?
                    .manifest
                    .digest()
                    .clone()
            }
        };
        digests.push(digest);
    }
    Ok(digests)
}

/// Moves the tags to the manifest `request.source` names (no blob moves) and
/// reports [`Event::Tagged`] for each; returns that manifest's digest.
pub fn tag(request: &TagRequest, observer: &dyn Observer) -> Result<Digest, RepositoryError> {
    let source = &request.source;
    // Each new tag is checked as part of a reference before anything moves.
    for tag in &request.tags {
        format!("{}:{tag}", source.repository_name())
            .parse::<Reference>()
            .map_err(|error| RepositoryError::Tag {
                tag: tag.clone(),
                source: error,
            })?;
    }
    let client = client(&request.registry)?;
    let digest = client
        .repository(source, Access::PUSH)
        .tag_manifest(&source.manifest_reference(), &request.tags)
        .map_err(|error| RepositoryError::Tagging {
            reference: source.to_string(),
            source: Box::new(error),
        })?;
    for tag in &request.tags {
        observer.event(Event::Tagged {
            reference: source.with_tag(tag).to_string(),
            digest: digest.clone(),
        });
    }
    Ok(digest)
}

/// Opens `reference`'s repository through the API `choice` picks for it,
/// and reports which ([`Event::RegistryApiUsed`]).
fn open_registry(
    client: &RegistryClient,
    reference: &Reference,
    choice: &ApiChoice,
    observer: &dyn Observer,
) -> Result<Box<dyn ImageRegistry>, RepositoryError> {
    let (api, asked) = choice.api_for(reference);
    let registry = hosted::open(client, reference, api, &choice.environment)?;
    observer.event(Event::RegistryApiUsed {
        repository: reference.repository_name(),
        api: api.name().to_string(),
        asked,
        dated_by: dated_by(api).to_string(),
    });
    Ok(registry)
}

/// What images are dated by through `api`, as events name it.
fn dated_by(api: RegistryApi) -> &'static str {
    if api.knows_push_time() {
        "push-time"
    } else {
        "created"
    }
}

/// Deletes each manifest (pinned by digest first) and, unless kept, what
/// was attached to it; reports [`Event::ManifestDeleted`] for each.
pub fn delete(request: &DeleteRequest, observer: &dyn Observer) -> Result<(), RepositoryError> {
    let client = client(&request.registry)?;
    let mut opened: Vec<(String, Box<dyn ImageRegistry>)> = Vec::new();
    for reference in &request.references {
        let name = reference.repository_name();
        let index = match opened.iter().position(|(open, _)| *open == name) {
            Some(index) => index,
            None => {
                let registry = open_registry(&client, reference, &request.api, observer)?;
                opened.push((name, registry));
                opened.len() - 1
            }
        };
        delete_one(opened[index].1.as_ref(), reference, request, observer)?;
    }
    Ok(())
}

/// Deletes what `reference` names, pinned first, so the attachments looked
/// up are those of what is deleted even if the tag moves meanwhile.
fn delete_one(
    registry: &dyn ImageRegistry,
    reference: &Reference,
    request: &DeleteRequest,
    observer: &dyn Observer,
) -> Result<(), RepositoryError> {
    let digest = registry
        .tag_digest(&reference.manifest_reference())?
        .ok_or_else(|| RepositoryError::NoSuchManifest {
            reference: reference.to_string(),
        })?;
    let listed = if request.keep_attachments {
        Vec::new()
    } else {
        registry.children(&digest)?
    };
    registry.delete_manifest(&digest)?;
    observer.event(Event::ManifestDeleted(DeletedManifest {
        reference: Some(reference.to_string()),
        ..DeletedManifest::of(digest.clone())
    }));
    if !request.keep_attachments {
        delete_attachments(registry, reference, &digest, &listed, observer)?;
    }
    Ok(())
}

/// Deletes the tagged attachments and referrers of the deleted `digest`.
fn delete_attachments(
    registry: &dyn ImageRegistry,
    reference: &Reference,
    digest: &Digest,
    listed: &[Digest],
    observer: &dyn Observer,
) -> Result<(), RepositoryError> {
    let attachments = retention::attachments_of(registry, digest, listed).map_err(|source| {
        RepositoryError::Retention {
            context: format!("{reference} is deleted; looking up what was attached to it"),
            source: Box::new(source),
        }
    })?;
    for (attachment, tags_on_it) in attachments.tagged {
        registry.delete_manifest(&attachment)?;
        observer.event(Event::ManifestDeleted(DeletedManifest {
            reference: Some(reference.with_tag(&tags_on_it.join(" ")).to_string()),
            attached_to: Some(digest.clone()),
            ..DeletedManifest::of(attachment)
        }));
    }
    for (child, parent) in attachments.children {
        let shown = Some(reference.with_digest(child.clone()).to_string());
        if registry.delete_manifest_if_present(&child)? {
            observer.event(Event::ManifestDeleted(DeletedManifest {
                reference: shown,
                attached_to: Some(digest.clone()),
                child_of: Some(parent),
                ..DeletedManifest::of(child)
            }));
        }
    }
    for (referrer, subject) in attachments.referrers {
        let shown = Some(reference.with_digest(referrer.clone()).to_string());
        let found = registry.delete_manifest_if_present(&referrer)?;
        let deleted = DeletedManifest {
            reference: shown,
            attached_to: Some(digest.clone()),
            referrer_of: Some(subject),
            ..DeletedManifest::of(referrer)
        };
        observer.event(if found {
            Event::ManifestDeleted(deleted)
        } else {
            Event::ReferrerGone(deleted)
        });
    }
    Ok(())
}

/// Applies `request.policy` to the repository's builds: reports
/// [`Event::TagKept`] for each matching tag that stays, then deletes (or,
/// in a dry run, names) each manifest that goes, then what those listed,
/// then their referrers, so a failed delete never leaves an image without
/// its platforms or attestations.
pub fn prune(
    request: &PruneRequest,
    observer: &dyn Observer,
) -> Result<PruneOutcome, RepositoryError> {
    let client = client(&request.registry)?;
    let registry = open_registry(&client, &request.repository, &request.api, observer)?;
    let registry = registry.as_ref();
    let plan = plan_prune(registry, request, observer)?;
    for (tag, why) in &plan.kept {
        observer.event(Event::TagKept {
            tag: tag.clone(),
            reason: kept_reason(why),
        });
    }
    let report = |deleted: DeletedManifest| {
        observer.event(if request.dry_run {
            Event::WouldDelete(deleted)
        } else {
            Event::ManifestDeleted(deleted)
        })
    };
    for (digest, tags) in &plan.delete {
        if !request.dry_run {
            registry.delete_manifest(digest)?;
        }
        report(DeletedManifest {
            tags: Some(tags.clone()),
            ..DeletedManifest::of(digest.clone())
        });
    }
    let mut gone_already = 0;
    let mut listed_gone = 0;
    let untagged = plan
        .children
        .iter()
        .map(|(child, parent)| DeletedManifest {
            tags: Some(Vec::new()),
            child_of: Some(parent.clone()),
            ..DeletedManifest::of(child.clone())
        })
        .chain(
            plan.referrers
                .iter()
                .map(|(referrer, subject)| DeletedManifest {
                    tags: Some(Vec::new()),
                    referrer_of: Some(subject.clone()),
                    ..DeletedManifest::of(referrer.clone())
                }),
        );
    for deleted in untagged {
        if !request.dry_run && !registry.delete_manifest_if_present(&deleted.digest)? {
            if deleted.child_of.is_some() {
                listed_gone += 1;
            } else {
                gone_already += 1;
            }
            observer.event(Event::ReferrerGone(deleted));
            continue;
        }
        report(deleted);
    }
    Ok(PruneOutcome {
        manifests: plan.delete.len() + plan.referrers.len() - gone_already,
        listed: plan.children.len() - listed_gone,
        tags: plan.delete.iter().map(|(_, tags)| tags.len()).sum(),
        kept: plan.kept.len(),
    })
}

/// What a prune deletes: the policy over every tag (and, with
/// `--untagged`, every untagged top-level image the API lists), with what
/// the builds that go list and the referrers the registry's API lists.
fn plan_prune(
    registry: &dyn ImageRegistry,
    request: &PruneRequest,
    observer: &dyn Observer,
) -> Result<retention::PrunePlan, RepositoryError> {
    let name = request.repository.repository_name();
    let listed = registry.tags()?;
    let retention_error = |context: String| {
        move |source| RepositoryError::Retention {
            context,
            source: Box::new(source),
        }
    };
    let facts = retention::gather(registry, &listed, &request.policy)
        .map_err(retention_error(format!("reading the tags of {name}")))?;
    let untagged = if request.policy.untagged {
        let found = retention::gather_untagged(registry, &facts).map_err(retention_error(
            format!("listing the untagged images of {name}"),
        ))?;
        found.unwrap_or_else(|| {
            observer.event(Event::Warning {
                message: format!(
                    "{name}: this registry's API cannot list images without a tag, \
                     so --untagged deletes nothing here"
                ),
            });
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let mut plan = retention::plan(&facts, &untagged, &request.policy);
    retention::add_api_referrers(registry, &facts, &mut plan).map_err(retention_error(format!(
        "asking {name} for the referrers of what would go"
    )))?;
    Ok(plan)
}

/// Why a matching tag stays, as a person reads it.
fn kept_reason(why: &KeptBecause) -> String {
    match why {
        KeptBecause::Newest => "among the newest".to_string(),
        KeptBecause::Recent => "newer than --older-than".to_string(),
        KeptBecause::NoCreationTime => "its image has no creation time".to_string(),
        KeptBecause::Shared { with } => {
            format!("its manifest also carries {}", with.join(", "))
        }
        KeptBecause::Listed { by } => {
            format!("images that stay list its manifest: {}", by.join(", "))
        }
    }
}

//! The layer cache that lives in a registry repository, shared by every
//! runner that can reach it. An entry is an ordinary OCI artifact: a
//! manifest of artifact type [`ARTIFACT_TYPE`] whose one layer is the
//! layer, with its diff_id in an annotation, tagged `hoist-layer-<content
//! key>` (see `layer::content_key`). Because the layer is listed, the
//! registry keeps the blob in the cache repository, so a push to another
//! repository of the same registry can mount it. The config is a small
//! JSON object with the time the entry was recorded (`created`), which is
//! what `hoist prune --keep`/`--older-than` read where the registry keeps
//! no push time of its own (a plain distribution registry).
//!
//! An entry is a claim, not a proof: the build uses it only when the blob
//! it names is in the target repository with the size it claims (a HEAD, or
//! a cross-repository mount from the cache repository that the registry
//! accepts), and otherwise builds the layer. Sits beside the sink: the
//! build asks here before compressing a layer and records here after a
//! successful push.

use super::client::RegistryClient;
use super::error::RegistryError;
use super::reference::Reference;
use super::repository::blobs::{self, MountResult};
use super::repository::{Access, Repository};
use super::source::RegistryBlob;
use super::transport::{Context, Request};
use crate::image::blob::BlobOrigin;
use crate::image::{Blob, BytesBlob};
use crate::oci::digest::parse_sha256;
use crate::oci::{Digest, media_type, to_canonical_json};
use oci_spec::image::{Descriptor, MediaType};
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// The artifact type of a cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.hoist.layer-cache.v1+json";
/// Every cache entry's tag starts so; the content key follows.
pub const TAG_PREFIX: &str = "hoist-layer-";
/// The layer descriptor's annotation holding its diff_id.
const DIFF_ID_ANNOTATION: &str = "dev.hoist.layer.diff-id";
/// The manifest's annotation holding the content key, for people reading it.
const KEY_ANNOTATION: &str = "dev.hoist.cache.key";
/// The media type of an entry's config: `{"created": RFC 3339 time}`.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.hoist.layer-cache.config.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum LayerCacheError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "cache entry {entry} is not used: {reason}; the layer is built instead \
         (delete the tag if it keeps coming back)"
    )]
    Refused { entry: String, reason: String },
}

/// What an entry claims a content key built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The compressed layer: media type, digest, size.
    pub layer: Descriptor,
    pub diff_id: Digest,
}

/// Whether the blob an entry names can be used where the image goes.
pub enum BlobCheck {
    /// There, with the size the entry claims: a blob that downloads (and is
    /// checked against its digest) only when something reads it.
    Found(Arc<dyn Blob>),
    /// Not there, and could not be mounted.
    Missing,
    /// There, but with another size than the entry claims.
    WrongSize { found: u64 },
}

/// A repository holding cache entries, bound to a client.
#[derive(Clone, Debug)]
pub struct LayerCacheRepository {
    repository: Repository,
}

/// The parts of an entry's manifest hoist reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryManifest {
    artifact_type: Option<String>,
    layers: Vec<Descriptor>,
}

impl LayerCacheRepository {
    /// The cache in the repository `reference` names (a tag or digest is
    /// ignored); `access` is [`Access::PUSH`] to record entries.
    pub fn new(client: &RegistryClient, reference: &Reference, access: Access) -> Self {
        LayerCacheRepository {
            repository: client.repository(reference, access),
        }
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        self.repository.name()
    }

    /// The tag of the entry for `key`.
    pub fn tag(key: &str) -> String {
        format!("{TAG_PREFIX}{key}")
    }

    /// The entry for `key`, if the repository has one: `None` when it does
    /// not (or the repository does not exist yet); an error when the entry
    /// is malformed or is not for a layer of `media_type`.
    pub fn lookup(
        &self,
        key: &str,
        media_type: &str,
    ) -> Result<Option<CacheEntry>, LayerCacheError> {
        let tag = Self::tag(key);
        let fetched = match self.repository.get_manifest(&tag) {
            Ok(fetched) => fetched,
            Err(error) if error.status() == Some(404) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let entry = format!("{}:{tag}", self.name());
        let refused = |reason: String| LayerCacheError::Refused {
            entry: entry.clone(),
            reason,
        };
        let manifest: EntryManifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|error| refused(format!("its manifest is not an OCI manifest ({error})")))?;
        if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
            return Err(refused(format!(
                "its artifact type is {:?}, not {ARTIFACT_TYPE}",
                manifest.artifact_type.unwrap_or_default()
            )));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(refused(format!(
                "it lists {} layers, not one",
                manifest.layers.len()
            )));
        };
        if layer.media_type().to_string() != media_type {
            return Err(refused(format!(
                "its layer is {}, but this layer is {media_type}",
                layer.media_type()
            )));
        }
        let diff_id = layer
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get(DIFF_ID_ANNOTATION))
            .and_then(|text| parse_sha256(text).ok())
            .ok_or_else(|| refused(format!("its layer has no valid {DIFF_ID_ANNOTATION}")))?;
        let mut descriptor = Descriptor::new(
            MediaType::from(media_type),
            layer.size(),
            layer.digest().clone(),
        );
        descriptor.set_annotations(None);
        Ok(Some(CacheEntry {
            layer: descriptor,
            diff_id,
        }))
    }

    /// Where `entry`'s blob can be had for an image going to `target`: in
    /// `target` (asked by HEAD, else mounted from this repository when both
    /// are on one registry); with no target (a local output), in this
    /// repository, to be downloaded and checked when read.
    pub fn check_blob(
        &self,
        entry: &CacheEntry,
        target: Option<&Repository>,
    ) -> Result<BlobCheck, RegistryError> {
        let Some(target) = target else {
            return self.sized_blob(&self.repository, &entry.layer);
        };
        match self.sized_blob(target, &entry.layer)? {
            BlobCheck::Missing => {}
            found => return Ok(found),
        }
        if target.host() != self.repository.host() || target.path() == self.repository.path() {
            return Ok(BlobCheck::Missing);
        }
        if !self.mount_into(target, entry.layer.digest())? {
            return Ok(BlobCheck::Missing);
        }
        // Mounted: the registry had the blob here; its size must still agree.
        self.sized_blob(target, &entry.layer)
    }

    /// The blob in `repository` when it has it with the descriptor's size.
    fn sized_blob(
        &self,
        repository: &Repository,
        descriptor: &Descriptor,
    ) -> Result<BlobCheck, RegistryError> {
        Ok(match blob_size(repository, descriptor.digest())? {
            None => BlobCheck::Missing,
            Some(found) if found != descriptor.size() => BlobCheck::WrongSize { found },
            Some(_) => BlobCheck::Found(Arc::new(RegistryBlob::new(
                descriptor.clone(),
                repository.clone(),
            ))),
        })
    }

    /// Mounts `digest` from this repository into `target`; false when the
    /// registry declines (an upload it opened instead is cancelled).
    fn mount_into(&self, target: &Repository, digest: &Digest) -> Result<bool, RegistryError> {
        let context = Context::new("mounting cached layer", target.with_digest(digest));
        let mounted = target.block_on(blobs::mount_blob(
            target,
            digest,
            self.repository.path(),
            &context,
        ));
        match mounted {
            Ok(MountResult::Mounted) => Ok(true),
            Ok(MountResult::Upload(session)) => {
                let scopes = target.push_scopes(&context)?;
                target.block_on(blobs::cancel_upload(
                    target.transport(),
                    target.call(&scopes, &context),
                    &session.location,
                ));
                Ok(false)
            }
            Err(error) if error.status().is_some_and(|status| status < 500) => {
                tracing::debug!("mounting {digest} from {}: {error}", self.name());
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Records that `key` built `layer` (whose bytes `blob` holds): the blob
    /// is put in this repository (mounted from `pushed_to`, where the image
    /// went, when both are on one registry, else uploaded), then the
    /// config with the time now, then the entry's manifest under its tag.
    pub fn record(
        &self,
        key: &str,
        entry: &CacheEntry,
        blob: &dyn Blob,
        pushed_to: Option<&Repository>,
    ) -> Result<(), RegistryError> {
        let origin = pushed_to
            .filter(|pushed| {
                pushed.host() == self.repository.host() && pushed.path() != self.repository.path()
            })
            .map(|pushed| BlobOrigin {
                registry: pushed.host().to_string(),
                repository: pushed.path().to_string(),
            });
        if !self.repository.blob_exists(entry.layer.digest())? {
            self.repository.push_blob(&WithOrigin { blob, origin })?;
        }
        let config = entry_config(std::time::SystemTime::now().into())?;
        if !self.repository.blob_exists(config.digest())? {
            self.repository.push_blob(&config)?;
        }
        let manifest = entry_manifest(key, entry, config.descriptor())?;
        self.repository.put_manifest(&manifest, &Self::tag(key))
    }
}

/// An entry's config: when it was recorded, so retention can order entries
/// by age on any registry. A cache entry is no image: the clock may reach it.
fn entry_config(now: chrono::DateTime<chrono::Utc>) -> Result<BytesBlob, RegistryError> {
    let created = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bytes =
        to_canonical_json(&serde_json::json!({ "created": created })).map_err(|source| {
            RegistryError::Json {
                what: "cache entry config",
                target: created.clone(),
                source,
            }
        })?;
    Ok(BytesBlob::new(MediaType::from(CONFIG_MEDIA_TYPE), bytes))
}

/// The manifest of the entry for `key`.
fn entry_manifest(
    key: &str,
    entry: &CacheEntry,
    config: &Descriptor,
) -> Result<BytesBlob, RegistryError> {
    let mut layer = entry.layer.clone();
    layer.set_annotations(Some(
        [(DIFF_ID_ANNOTATION.to_string(), entry.diff_id.to_string())].into(),
    ));
    let annotations: BTreeMap<&str, &str> = [(KEY_ANNOTATION, key)].into();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config,
        "layers": [layer],
        "annotations": annotations,
    });
    let bytes = to_canonical_json(&manifest).map_err(|source| RegistryError::Json {
        what: "cache entry",
        target: key.to_string(),
        source,
    })?;
    Ok(BytesBlob::new(
        MediaType::from(media_type::OCI_MANIFEST),
        bytes,
    ))
}

/// The size of blob `digest` in `repository` by HEAD; `None` on 404.
fn blob_size(repository: &Repository, digest: &Digest) -> Result<Option<u64>, RegistryError> {
    let context = Context::new("checking cached layer", repository.with_digest(digest));
    repository.block_on(async {
        let scopes = repository.read_scopes();
        let url = format!("{}/blobs/{digest}", repository.api_url().await?);
        let request = Request::new(Method::HEAD, &url).allowing(&[StatusCode::NOT_FOUND]);
        let response = repository
            .transport()
            .send(repository.call(&scopes, &context), &request, None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok());
        match length {
            Some(length) => Ok(Some(length)),
            None => Err(RegistryError::Protocol {
                operation: context.operation,
                target: context.target,
                detail: "the answer to HEAD has no Content-Length".to_string(),
            }),
        }
    })
}

/// A blob pushed as if it came from `origin`, so the upload driver mounts
/// it from there when it can.
struct WithOrigin<'a> {
    blob: &'a dyn Blob,
    origin: Option<BlobOrigin>,
}

impl Blob for WithOrigin<'_> {
    fn descriptor(&self) -> &Descriptor {
        self.blob.descriptor()
    }

    fn open(&self) -> io::Result<Box<dyn io::Read + Send + '_>> {
        self.blob.open()
    }

    fn local_path(&self) -> Option<&std::path::Path> {
        self.blob.local_path()
    }

    fn origin(&self) -> Option<&BlobOrigin> {
        self.origin.as_ref()
    }
}

#[cfg(test)]
mod tests;

//! Where each layer of a build comes from: the local cache (files as they
//! were, by `lstat`), else the registry cache (`--cache-from`: files with
//! the same content key, whose blob the target has or can mount), else a
//! build. Layers built, or found locally but not in the registry cache, are
//! recorded in the registry cache (`--cache-to`) once the image is
//! published. Between the layer builder below and the publish driver above.

use super::BuildOptions;
use crate::image::{Blob, Layer};
use crate::layer::{
    BuiltLayer, CacheError, LayerError, LayerRecipe, content_key, plan_layer, write_planned,
};
use crate::progress::{Event, Observer};
use crate::registry::layer_cache::{BlobCheck, CacheEntry, LayerCacheError, LayerCacheRepository};
use crate::registry::{Access, Reference, RegistryClient, Repository};
use std::sync::Arc;

/// The registry cache of a build: where entries are read, where they are
/// written. Either may be absent (a fork's pull request reads only).
#[derive(Clone, Debug, Default)]
pub struct SharedCache {
    pub from: Option<LayerCacheRepository>,
    pub to: Option<LayerCacheRepository>,
}

impl SharedCache {
    /// The cache for `from` and `to` (repository references) on `client`.
    pub fn new(client: &RegistryClient, from: Option<&Reference>, to: Option<&Reference>) -> Self {
        SharedCache {
            from: from.map(|reference| LayerCacheRepository::new(client, reference, Access::PULL)),
            to: to.map(|reference| LayerCacheRepository::new(client, reference, Access::PUSH)),
        }
    }
}

/// How a layer was had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerSource {
    Built,
    /// The local cache: the files are as they were.
    LocalCache,
    /// The registry cache: nothing was compressed.
    RegistryCache,
}

/// A layer of the build, with what a later record needs.
#[derive(Clone)]
pub struct ObtainedLayer {
    pub layer: Layer,
    pub source: LayerSource,
    /// The content key to record once the image is published, when the
    /// registry cache is written and does not hold this layer yet.
    pub record: Option<String>,
}

/// A layer that could not be built, with or without the cache.
#[derive(Debug, thiserror::Error)]
pub enum LayerFailure {
    #[error(transparent)]
    Build(#[from] LayerError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// The layer for `recipe`, from the caches where they hold it, else built.
/// `target` is the repository the image is pushed to, when that is its
/// only output: a registry hit must have its blob there.
pub(super) fn obtain_layer(
    recipe: &LayerRecipe,
    options: &BuildOptions,
    target: Option<&Repository>,
    observer: &dyn Observer,
) -> Result<ObtainedLayer, LayerFailure> {
    let plan = plan_layer(recipe, &options.tracked, observer)?;
    let local = options
        .cache
        .as_ref()
        .and_then(|cache| cache.lookup_planned(recipe, &plan));
    let shared = options.shared.as_deref().filter(|shared| {
        // Found locally, a layer only needs its key to be recorded.
        shared.from.is_some() && local.is_none() || shared.to.is_some()
    });
    let Some(shared) = shared else {
        return match local {
            Some(layer) => Ok(obtained(layer.layer, LayerSource::LocalCache, None)),
            None => Ok(obtained(
                build(recipe, &plan, options)?.layer,
                LayerSource::Built,
                None,
            )),
        };
    };
    let key = content_key(recipe, &plan)?;
    let media_type = recipe.compression.media_type();
    let entry = shared
        .from
        .as_ref()
        .and_then(|from| lookup(from, &key, media_type, observer).map(|entry| (from, entry)));
    if let Some(local) = local {
        let recorded = entry
            .as_ref()
            .is_some_and(|(_, entry)| entry.layer.digest() == local.layer.blob.digest());
        let record = (shared.to.is_some() && !recorded).then_some(key);
        return Ok(obtained(local.layer, LayerSource::LocalCache, record));
    }
    if let Some((from, entry)) = entry
        && let Some(blob) = usable_blob(from, &entry, target, observer)
    {
        let layer = Layer {
            blob,
            diff_id: entry.diff_id,
        };
        return Ok(obtained(layer, LayerSource::RegistryCache, None));
    }
    let built = build(recipe, &plan, options)?;
    let record = shared.to.is_some().then_some(key);
    Ok(obtained(built.layer, LayerSource::Built, record))
}

fn obtained(layer: Layer, source: LayerSource, record: Option<String>) -> ObtainedLayer {
    ObtainedLayer {
        layer,
        source,
        record,
    }
}

/// Writes the layer into the local cache, or the build's blob directory.
fn build(
    recipe: &LayerRecipe,
    plan: &crate::layer::LayerPlan,
    options: &BuildOptions,
) -> Result<BuiltLayer, LayerFailure> {
    let stream = options.stream.as_deref();
    Ok(match &options.cache {
        Some(cache) => cache.build_planned(recipe, plan, options.jobs, stream)?,
        None => write_planned(plan, recipe, &options.blob_directory, options.jobs, stream)?,
    })
}

/// The entry for `key`; a cache that cannot be read, or an entry that is
/// refused, is a miss said in a warning.
fn lookup(
    from: &LayerCacheRepository,
    key: &str,
    media_type: &str,
    observer: &dyn Observer,
) -> Option<CacheEntry> {
    match from.lookup(key, media_type) {
        Ok(entry) => entry,
        Err(LayerCacheError::Refused { entry, reason }) => {
            observer.event(Event::Warning {
                message: format!(
                    "cache entry {entry} is not used: {reason}; building the layer instead"
                ),
            });
            None
        }
        Err(LayerCacheError::Registry(error)) => {
            observer.event(Event::Warning {
                message: format!(
                    "cannot read the layer cache {}: {error}; building the layer instead",
                    from.name()
                ),
            });
            None
        }
    }
}

/// The entry's blob where the image goes, or `None` (said why) to build.
fn usable_blob(
    from: &LayerCacheRepository,
    entry: &CacheEntry,
    target: Option<&Repository>,
    observer: &dyn Observer,
) -> Option<Arc<dyn Blob>> {
    let digest = entry.layer.digest();
    let place = target.map_or_else(|| from.name(), Repository::name);
    match from.check_blob(entry, target) {
        Ok(BlobCheck::Found(blob)) => Some(blob),
        Ok(BlobCheck::Missing) => {
            tracing::info!("cached layer {digest} is not in {place}; building it");
            None
        }
        Ok(BlobCheck::WrongSize { found }) => {
            observer.event(Event::Warning {
                message: format!(
                    "cache entry in {} claims layer {digest} has {} bytes, but {place} \
                     has {found}: the entry is not used; building the layer instead",
                    from.name(),
                    entry.layer.size()
                ),
            });
            None
        }
        Err(error) => {
            observer.event(Event::Warning {
                message: format!(
                    "cannot check cached layer {digest} in {place}: {error}; building it instead"
                ),
            });
            None
        }
    }
}

/// Records in `to` the layers of a published image that the registry cache
/// did not hold. A refused write (a fork's pull request, a read-only
/// token) is a warning, never a failed build: the image is already out.
pub fn record_layers(
    to: &LayerCacheRepository,
    layers: &[ObtainedLayer],
    pushed_to: Option<&Repository>,
    observer: &dyn Observer,
) {
    for obtained in layers {
        let Some(key) = &obtained.record else {
            continue;
        };
        let entry = CacheEntry {
            layer: obtained.layer.blob.descriptor().clone(),
            diff_id: obtained.layer.diff_id.clone(),
        };
        let recorded = to.record(key, &entry, obtained.layer.blob.as_ref(), pushed_to);
        match recorded {
            Ok(()) => observer.event(Event::LayerCacheRecorded {
                repository: to.name(),
                key: key.clone(),
                digest: entry.layer.digest().clone(),
            }),
            Err(error) => {
                observer.event(Event::Warning {
                    message: format!(
                        "cannot record layer {} in the layer cache {}: {error}; \
                         the build is fine, later builds will build this layer again",
                        entry.layer.digest(),
                        to.name()
                    ),
                });
                // One refusal means the rest would be refused too.
                return;
            }
        }
    }
}

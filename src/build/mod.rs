//! The build pipeline: a resolved [`ImagePlan`] becomes layers, configs,
//! per-platform manifests and an index, ready for any sink. Layers of every
//! platform build in parallel; a layer whose recipe is the same on several
//! platforms (no `{arch}` in its sources) is built once.

pub mod attest;
pub mod changes;
pub mod config;
pub mod layer_cache;
pub mod metadata;
pub mod run;
pub mod stream;
pub mod transport;

use crate::image::{Blob, BytesBlob, Image, Index, Manifest, as_oci_layer, model::ChildEntry};
use crate::layer::{BlobStream, LayerCache, LayerRecipe, TrackedFiles};
use crate::oci::{Platform, to_canonical_json};
use crate::progress::{Event, Observer};
use crate::source::{SourceError, select_platform};
use crate::spec::{BaseImage, ImagePlan};
use config::{ConfigError, ConfigLayer, merge_config};
pub use layer_cache::{LayerFailure, LayerSource, ObtainedLayer, SharedCache};
use oci_spec::image::MediaType;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use transport::Transports;

/// How to build, besides what the plan says.
#[derive(Clone)]
pub struct BuildOptions {
    /// Threads for layers and compression.
    pub jobs: usize,
    /// Where layer blobs are spooled when there is no cache; must outlive publishing.
    pub blob_directory: PathBuf,
    /// The layer cache; its blob directory is used instead when present.
    pub cache: Option<Arc<LayerCache>>,
    /// Where layers are sent while they are compressed (the one registry
    /// output of a build with no local output); publishing then finds them there.
    pub stream: Option<Arc<dyn BlobStream>>,
    /// What git tracks, asked once per repository for the whole build.
    pub tracked: Arc<TrackedFiles>,
    /// The layer cache in a registry (`--cache-from`, `--cache-to`).
    pub shared: Option<Arc<SharedCache>>,
    /// The repository the image is pushed to when that is its only output:
    /// a layer from the registry cache must have its blob there.
    pub cache_target: Option<crate::registry::Repository>,
}

/// One platform's image.
#[derive(Clone)]
pub struct BuiltPlatform {
    pub platform: Platform,
    pub image: Image,
    /// Config plus compressed layers, in bytes.
    pub size: u64,
}

/// An image across its platforms, with the index over them.
#[derive(Clone)]
pub struct BuiltImage {
    pub name: String,
    pub platforms: Vec<BuiltPlatform>,
    /// The index over the platform manifests (and attestations, where asked for).
    pub index: Index,
    /// The base image's manifest digest per platform, for labels and provenance.
    pub base_digests: Vec<(Platform, crate::oci::Digest)>,
    /// Every distinct layer built or found, for the registry cache's records.
    pub layers: Vec<ObtainedLayer>,
}

impl BuiltImage {
    /// What every output of this image holds at the top: the platform
    /// manifest itself when the index would list nothing else (one platform,
    /// no attestations in the index), as ko and crane push it, so tools that
    /// read only a manifest (syft's `oci-dir:`) read it and every output
    /// names the same digest; the index otherwise.
    pub fn top(&self) -> Manifest {
        match (self.platforms.as_slice(), self.index.children.as_slice()) {
            ([platform], [_]) => Manifest::Image(platform.image.clone()),
            _ => Manifest::Index(self.index.clone()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("image `{image}`: reading base image {base}")]
    Base {
        image: String,
        base: String,
        #[source]
        source: SourceError,
    },
    #[error("image `{image}` ({platform}): building layer `{layer}`")]
    Layer {
        image: String,
        platform: String,
        layer: String,
        #[source]
        source: Box<LayerFailure>,
    },
    #[error("image `{image}` ({platform}): making the image config")]
    Config {
        image: String,
        platform: String,
        #[source]
        source: ConfigError,
    },
    #[error("image `{image}`: encoding")]
    Encode {
        image: String,
        #[source]
        source: EncodeError,
    },
    #[error("creating the blob directory {}", path.display())]
    BlobDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Model(#[from] crate::image::model::ModelError),
}

/// Builds one image for each of its platforms.
pub fn build_image(
    plan: &ImagePlan,
    options: &BuildOptions,
    transports: &Transports,
    observer: &dyn Observer,
) -> Result<BuiltImage, BuildError> {
    std::fs::create_dir_all(&options.blob_directory).map_err(|source| {
        BuildError::BlobDirectory {
            path: options.blob_directory.clone(),
            source,
        }
    })?;

    // Base images first: a missing platform fails before any layer is written.
    let bases: Vec<Option<Image>> = match &plan.base {
        BaseImage::Scratch => plan.platforms.iter().map(|_| None).collect(),
        BaseImage::Location(location) => {
            let base_error = |source| BuildError::Base {
                image: plan.name.clone(),
                base: location.to_string(),
                source,
            };
            let manifest = transports
                .source(location)
                .and_then(|source| source.resolve())
                .map_err(base_error)?;
            plan.platforms
                .iter()
                .map(|platform| {
                    select_platform(&manifest, platform)
                        .map(Some)
                        .map_err(base_error)
                })
                .collect::<Result<_, _>>()?
        }
    };

    // Every distinct recipe once, all in parallel.
    let recipes: Vec<Vec<LayerRecipe>> = plan
        .platforms
        .iter()
        .map(|platform| plan.recipes(platform))
        .collect();
    let mut unique: Vec<(&Platform, &LayerRecipe)> = Vec::new();
    for (platform, platform_recipes) in plan.platforms.iter().zip(&recipes) {
        for recipe in platform_recipes {
            if !unique.iter().any(|(_, seen)| *seen == recipe) {
                unique.push((platform, recipe));
            }
        }
    }
    let built: Vec<ObtainedLayer> = unique
        .par_iter()
        .map(|(platform, recipe)| {
            observer.event(Event::LayerStarted {
                image: plan.name.clone(),
                platform: platform.to_string(),
                layer: recipe.name.clone(),
            });
            let target = options.cache_target.as_ref();
            let layer =
                layer_cache::obtain_layer(recipe, options, target, observer).map_err(|source| {
                    BuildError::Layer {
                        image: plan.name.clone(),
                        platform: platform.to_string(),
                        layer: recipe.name.clone(),
                        source: Box::new(source),
                    }
                })?;
            observer.event(Event::LayerDone {
                image: plan.name.clone(),
                platform: platform.to_string(),
                layer: recipe.name.clone(),
                digest: layer.layer.blob.digest().clone(),
                size: layer.layer.blob.size(),
                cached: layer.source != LayerSource::Built,
                from_registry: layer.source == LayerSource::RegistryCache,
            });
            Ok(layer)
        })
        .collect::<Result<_, BuildError>>()?;
    let by_recipe: HashMap<&LayerRecipe, &ObtainedLayer> = unique
        .iter()
        .map(|(_, recipe)| *recipe)
        .zip(built.iter())
        .collect();

    let encode = |source: EncodeError| BuildError::Encode {
        image: plan.name.clone(),
        source,
    };
    let mut platforms = Vec::new();
    let mut base_digests = Vec::new();
    for ((platform, platform_recipes), base) in plan.platforms.iter().zip(&recipes).zip(&bases) {
        let layers: Vec<&ObtainedLayer> = platform_recipes
            .iter()
            .map(|recipe| by_recipe[recipe])
            .collect();
        let base_config: Option<serde_json::Value> = match base {
            Some(base) => Some(
                serde_json::from_slice(base.config.bytes())
                    .map_err(|error| encode(error.into()))?,
            ),
            None => None,
        };
        let config_layers: Vec<ConfigLayer<'_>> = platform_recipes
            .iter()
            .zip(&layers)
            .map(|(recipe, layer)| ConfigLayer {
                diff_id: &layer.layer.diff_id,
                name: &recipe.name,
            })
            .collect();
        let config = merge_config(
            base_config.as_ref(),
            &plan.config,
            platform,
            plan.epoch,
            &config_layers,
        )
        .map_err(|source| BuildError::Config {
            image: plan.name.clone(),
            platform: platform.to_string(),
            source,
        })?;
        let config_bytes = to_canonical_json(&config).map_err(|error| encode(error.into()))?;
        let config_blob = BytesBlob::new(MediaType::ImageConfig, config_bytes);

        // The manifest is OCI whatever the base's format was.
        let mut blobs: Vec<Arc<dyn Blob>> = match base {
            Some(base) => base.layers.iter().map(as_oci_layer).collect(),
            None => Vec::new(),
        };
        if let Some(base) = base {
            base_digests.push((platform.clone(), base.manifest.digest().clone()));
        }
        for layer in &layers {
            blobs.push(Arc::clone(&layer.layer.blob));
        }
        let image = Image::from_parts(config_blob, blobs, &plan.config.annotations, None, None)
            .map_err(|error| encode(error.into()))?;
        let size = image.blobs().map(|blob| blob.size()).sum();
        platforms.push(BuiltPlatform {
            platform: platform.clone(),
            image,
            size,
        });
    }

    let children = platforms
        .iter()
        .map(|built| {
            (
                Manifest::Image(built.image.clone()),
                ChildEntry {
                    platform: Some(built.platform.clone()),
                    ..Default::default()
                },
            )
        })
        .collect();
    let index = Index::from_children(children, &plan.config.annotations)
        .map_err(|error| encode(error.into()))?;
    Ok(BuiltImage {
        name: plan.name.clone(),
        platforms,
        index,
        base_digests,
        layers: built,
    })
}

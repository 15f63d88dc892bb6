//! The registry layer cache of one run: which repositories it reads and
//! writes (flags, `HOIST_CACHE_REPO`, the spec's `cache-repo`), the
//! repository each image's layers must be in for a hit, and the records
//! written once the images are out.

use super::RunError;
use super::checks::{Output, only_registry_output};
use crate::build::BuiltImage;
use crate::build::layer_cache::{SharedCache, record_layers};
use crate::build::transport::{Transports, parse_reference};
use crate::oci::Location;
use crate::progress::Observer;
use crate::registry::{Access, Reference, Repository};
use crate::spec::Plan;
use std::sync::Arc;

/// The repositories a build's registry cache reads and writes, as asked.
/// `from` and `to` name one direction each; when neither is given, `both`
/// (`--cache-repo` or `HOIST_CACHE_REPO`), else the spec's `cache-repo`,
/// is read and written. So `--cache-from` alone only reads, whatever the
/// spec says: what a pull request from a fork runs.
#[derive(Clone, Debug, Default)]
pub struct CacheRepositories {
    pub from: Option<String>,
    pub to: Option<String>,
    pub both: Option<String>,
}

impl CacheRepositories {
    /// The repositories to read and to write, for `plan`; nothing is
    /// written by a dry run.
    fn resolve(
        &self,
        plan: &Plan,
        dry_run: bool,
    ) -> Result<(Option<Reference>, Option<Reference>), RunError> {
        let (from, to) = if self.from.is_some() || self.to.is_some() {
            (self.from.clone(), self.to.clone())
        } else {
            let both = self.both.clone().or_else(|| plan.cache_repository.clone());
            (both.clone(), both)
        };
        let parse = |text: Option<String>| -> Result<Option<Reference>, RunError> {
            text.map(|text| {
                parse_reference(&text).map_err(|source| RunError::CacheRepository {
                    repository: text.clone(),
                    source: Box::new(source),
                })
            })
            .transpose()
        };
        let to = if dry_run { None } else { parse(to)? };
        Ok((parse(from)?, to))
    }

    /// The registries the cache writes to, for credentials given for every
    /// registry.
    pub(super) fn written_hosts(&self, plan: &Plan, dry_run: bool) -> Vec<String> {
        match self.resolve(plan, dry_run) {
            Ok((_, Some(to))) => vec![to.registry],
            _ => Vec::new(),
        }
    }
}

/// The run's registry cache, or `None` when none is asked for.
pub(super) fn open(
    repositories: &CacheRepositories,
    plan: &Plan,
    dry_run: bool,
    transports: &Transports,
) -> Result<Option<Arc<SharedCache>>, RunError> {
    let (from, to) = repositories.resolve(plan, dry_run)?;
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let client = transports.registry()?;
    Ok(Some(Arc::new(SharedCache::new(
        client,
        from.as_ref(),
        to.as_ref(),
    ))))
}

/// Where a run's images go, to find the repository each is pushed to.
pub(super) struct Targets<'a> {
    pub plan: &'a Plan,
    pub outputs: &'a [Output],
    pub dry_run: bool,
    pub transports: &'a Transports,
}

impl Targets<'_> {
    /// The repository `image` is pushed to when that is its only output
    /// (and this is no dry run): where a layer from the registry cache
    /// must be.
    pub fn repository(&self, image: &str) -> Result<Option<Repository>, RunError> {
        if self.dry_run {
            return Ok(None);
        }
        let Some(Location::Registry { reference }) =
            only_registry_output(self.plan, self.outputs, image)
        else {
            return Ok(None);
        };
        let reference = parse_reference(&reference)?;
        Ok(Some(
            self.transports
                .registry()?
                .repository(&reference, Access::PUSH),
        ))
    }
}

/// Records, once every image is published, the layers the registry cache
/// did not hold.
pub(super) fn record(
    shared: Option<&SharedCache>,
    images: &[BuiltImage],
    targets: &Targets<'_>,
    observer: &dyn Observer,
) -> Result<(), RunError> {
    let Some(to) = shared.and_then(|shared| shared.to.as_ref()) else {
        return Ok(());
    };
    for image in images {
        let target = targets.repository(&image.name)?;
        record_layers(to, &image.layers, target.as_ref(), observer);
    }
    Ok(())
}

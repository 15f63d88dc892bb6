//! `[defaults]`, applied to each `[[image]]` before it is resolved: a key the
//! image sets replaces the default's whole value, except `env`, `labels` and
//! `annotations` under `config`, which merge key by key (the image's entry
//! wins). Values keep their spans, so an error in a default points at the
//! `[defaults]` line. What an image took from the defaults is fingerprinted
//! into its inputs digest: changing a default it overrides does not rebuild it.

use super::file::{ConfigSpec, DefaultsSpec, ImageSpec};
use std::collections::BTreeMap;
use std::ops::Range;

/// A key `[defaults]` may not hold, with why, for the error message.
pub struct RefusedKey {
    pub key: &'static str,
    pub span: Range<usize>,
    pub reason: &'static str,
}

/// The first key of `[defaults]` that only an image may set.
pub fn refused_key(defaults: &DefaultsSpec) -> Option<RefusedKey> {
    let refused = [
        (
            "name",
            defaults.name.as_ref(),
            "each [[image]] names itself",
        ),
        (
            "layer",
            defaults.layer.as_ref(),
            "each [[image]] lists its own layers",
        ),
        (
            "repository",
            defaults.repository.as_ref(),
            "images sharing a repository would overwrite each other's tags: give each [[image]] its own",
        ),
    ];
    refused.into_iter().find_map(|(key, value, reason)| {
        value.map(|value| RefusedKey {
            key,
            span: value.span(),
            reason,
        })
    })
}

/// Fills the keys `image` does not set from `defaults`. Returns the defaults
/// the image used, rendered canonically (empty when it used none), for its
/// inputs digest.
pub fn apply(image: &mut ImageSpec, defaults: &DefaultsSpec) -> String {
    let mut used = DefaultsSpec::default();
    take(&mut image.base, &defaults.base, &mut used.base);
    take(
        &mut image.platforms,
        &defaults.platforms,
        &mut used.platforms,
    );
    take(
        &mut image.compression,
        &defaults.compression,
        &mut used.compression,
    );
    take(
        &mut image.compression_level,
        &defaults.compression_level,
        &mut used.compression_level,
    );
    take(
        &mut image.source_date_epoch,
        &defaults.source_date_epoch,
        &mut used.source_date_epoch,
    );
    take(&mut image.tags, &defaults.tags, &mut used.tags);
    take(&mut image.sbom, &defaults.sbom, &mut used.sbom);
    take(
        &mut image.provenance,
        &defaults.provenance,
        &mut used.provenance,
    );
    take(
        &mut image.skip_unchanged,
        &defaults.skip_unchanged,
        &mut used.skip_unchanged,
    );
    if image.scan.is_none() {
        image.scan.clone_from(&defaults.scan);
    }
    if let Some(default_config) = &defaults.config {
        let config = image.config.get_or_insert_with(ConfigSpec::default);
        used.config = Some(apply_config(config, default_config));
    }
    if used.config.as_ref().is_some_and(all_null) {
        used.config = None;
    }
    if all_null(&used) {
        return String::new();
    }
    // Field order is the struct's and maps are sorted: the same defaults
    // always render the same text. Serializing these types cannot fail.
    serde_json::to_string(&used).unwrap_or_default()
}

/// Takes the default when the image has no value; records what it took.
fn take<T: Clone>(value: &mut Option<T>, default: &Option<T>, used: &mut Option<T>) {
    if value.is_none() && default.is_some() {
        value.clone_from(default);
        used.clone_from(default);
    }
}

/// Merges `[defaults.config]` into an image's config; returns what was used.
fn apply_config(config: &mut ConfigSpec, defaults: &ConfigSpec) -> ConfigSpec {
    let mut used = ConfigSpec::default();
    take(
        &mut config.entrypoint,
        &defaults.entrypoint,
        &mut used.entrypoint,
    );
    take(&mut config.cmd, &defaults.cmd, &mut used.cmd);
    take(&mut config.user, &defaults.user, &mut used.user);
    take(&mut config.workdir, &defaults.workdir, &mut used.workdir);
    take(&mut config.ports, &defaults.ports, &mut used.ports);
    take(&mut config.volumes, &defaults.volumes, &mut used.volumes);
    take(
        &mut config.stop_signal,
        &defaults.stop_signal,
        &mut used.stop_signal,
    );
    used.env = merge_map(&mut config.env, &defaults.env);
    used.labels = merge_map(&mut config.labels, &defaults.labels);
    used.annotations = merge_map(&mut config.annotations, &defaults.annotations);
    used
}

/// Adds the default entries the image's map lacks; returns those entries.
fn merge_map(
    map: &mut Option<BTreeMap<String, String>>,
    defaults: &Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let defaults = defaults.as_ref()?;
    let map = map.get_or_insert_with(BTreeMap::new);
    let mut used = BTreeMap::new();
    for (key, value) in defaults {
        if !map.contains_key(key) {
            map.insert(key.clone(), value.clone());
            used.insert(key.clone(), value.clone());
        }
    }
    (!used.is_empty()).then_some(used)
}

/// Whether every field serializes to `null`: nothing was set.
fn all_null<T: serde::Serialize>(value: &T) -> bool {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| {
            value
                .as_object()
                .map(|object| object.values().all(serde_json::Value::is_null))
        })
        .unwrap_or(false)
}

//! One image against another: the manifest's fields, the config's JSON
//! paths, then each pair of layers that differ, either as the same tar
//! compressed differently or entry by entry.

use super::cause::{self, Context};
use super::config::compare_json;
use super::report::{Cause, Change, Difference, Place, Side};
use super::{DiffError, codec, tar};
use crate::image::{Blob, Image};
use serde_json::{Value, json};

/// Every difference between two images, for `platform` (none when the
/// images were compared without one).
pub(crate) fn compare_images(
    platform: Option<&str>,
    left: &Image,
    right: &Image,
) -> Result<Vec<Difference>, DiffError> {
    if left.manifest.digest() == right.manifest.digest() {
        return Ok(Vec::new());
    }
    let found = |place: Place, change: Change| Difference {
        platform: platform.map(str::to_string),
        place,
        change,
        cause: None,
    };
    let mut differences = Vec::new();
    let manifests = (
        super::parse_json("manifest", left.manifest.digest(), left.manifest.bytes())?,
        super::parse_json("manifest", right.manifest.digest(), right.manifest.bytes())?,
    );
    for (field, left_value, right_value) in manifest_fields(&manifests.0, &manifests.1) {
        differences.push(found(
            Place::Manifest,
            field_change(field, left_value, right_value),
        ));
    }
    let configs = (
        super::parse_json("config", left.config.digest(), left.config.bytes())?,
        super::parse_json("config", right.config.digest(), right.config.bytes())?,
    );
    let mut config_paths = Vec::new();
    compare_json("", Some(&configs.0), Some(&configs.1), &mut config_paths);
    for (path, left_value, right_value) in config_paths {
        differences.push(found(
            Place::Config,
            field_change(path, left_value, right_value),
        ));
    }
    let diff_ids = (diff_ids(&configs.0), diff_ids(&configs.1));
    for layer in 0..left.layers.len().max(right.layers.len()) {
        let pair = (
            left.layers.get(layer).map(|blob| blob.as_ref()),
            right.layers.get(layer).map(|blob| blob.as_ref()),
        );
        for (path, change, cause) in layer_changes(pair, &diff_ids, layer)? {
            let place = match path {
                Some(path) => Place::Entry { layer, path },
                None => Place::Layer { layer },
            };
            differences.push(Difference {
                cause,
                ..found(place, change)
            });
        }
    }
    cause::annotate(
        &mut differences,
        &Context::from_configs(&configs.0, &configs.1),
    );
    Ok(differences)
}

pub(crate) fn field_change(field: String, left: Option<Value>, right: Option<Value>) -> Change {
    Change::Field { field, left, right }
}

/// The manifest's own fields (media types, annotations, artifact type,
/// subject), its layer count and each layer's media type; the config and
/// layer digests are left to their own comparisons.
fn manifest_fields(left: &Value, right: &Value) -> Vec<(String, Option<Value>, Option<Value>)> {
    let strip = |manifest: &Value| {
        let mut manifest = manifest.clone();
        if let Some(object) = manifest.as_object_mut() {
            object.remove("layers");
            if let Some(config) = object.get_mut("config").and_then(Value::as_object_mut) {
                config.retain(|key, _| key == "mediaType");
            }
        }
        manifest
    };
    let mut fields = Vec::new();
    compare_json("", Some(&strip(left)), Some(&strip(right)), &mut fields);
    let layers = |manifest: &Value| -> Vec<Value> {
        manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (left_layers, right_layers) = (layers(left), layers(right));
    if left_layers.len() != right_layers.len() {
        fields.push((
            "layer count".to_string(),
            Some(json!(left_layers.len())),
            Some(json!(right_layers.len())),
        ));
    }
    for (index, (left_layer, right_layer)) in left_layers.iter().zip(&right_layers).enumerate() {
        let media_type = |layer: &Value| layer.get("mediaType").cloned();
        if media_type(left_layer) != media_type(right_layer) {
            fields.push((
                format!("layers[{index}].mediaType"),
                media_type(left_layer),
                media_type(right_layer),
            ));
        }
    }
    fields
}

fn diff_ids(config: &Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The changes at one layer position: a layer only one side has, or what
/// differs between the two.
fn layer_changes(
    pair: (Option<&dyn Blob>, Option<&dyn Blob>),
    diff_ids: &(Vec<String>, Vec<String>),
    layer: usize,
) -> Result<Vec<LayerChange>, DiffError> {
    Ok(match pair {
        (Some(left_layer), Some(right_layer)) => compare_layer(
            left_layer,
            right_layer,
            (diff_ids.0.get(layer), diff_ids.1.get(layer)),
        )?,
        (Some(only), None) | (None, Some(only)) => {
            let side = if pair.0.is_some() {
                Side::Left
            } else {
                Side::Right
            };
            let item = format!("layer {}", only.digest());
            vec![(None, Change::OnlyIn { side, item }, None)]
        }
        (None, None) => Vec::new(),
    })
}

/// A change in a layer: the entry path it is about (none for the layer as
/// a whole), what changed, and the cause when the comparison knows it.
type LayerChange = (Option<String>, Change, Option<Cause>);

/// Two layers at the same position: nothing when their digests match; the
/// codecs when only the compression differs; else the tar entries.
fn compare_layer(
    left: &dyn Blob,
    right: &dyn Blob,
    diff_ids: (Option<&String>, Option<&String>),
) -> Result<Vec<LayerChange>, DiffError> {
    if left.digest() == right.digest() {
        return Ok(Vec::new());
    }
    let read_error = |blob: &dyn Blob| {
        let digest = blob.digest().to_string();
        move |source| DiffError::Layer { digest, source }
    };
    if let (Some(left_id), Some(right_id)) = diff_ids
        && left_id == right_id
    {
        let left_codec = codec::detect(left).map_err(read_error(left))?;
        let right_codec = codec::detect(right).map_err(read_error(right))?;
        let change = Change::Compression {
            left: left_codec,
            right: right_codec,
        };
        return Ok(vec![(None, change, Some(Cause::Compressor))]);
    }
    let digest_change = field_change(
        "digest".to_string(),
        Some(json!(left.digest().to_string())),
        Some(json!(right.digest().to_string())),
    );
    let mut changes = vec![(None, digest_change, None)];
    let (left_entries, right_entries) = std::thread::scope(|scope| {
        let left_reader = scope.spawn(|| tar::read_entries(left));
        let right_entries = tar::read_entries(right);
        let left_entries = left_reader
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the tar reader stopped")));
        (left_entries, right_entries)
    });
    let left_entries = left_entries.map_err(read_error(left))?;
    let right_entries = right_entries.map_err(read_error(right))?;
    let entry_changes = tar::compare_entries(&left_entries, &right_entries);
    if entry_changes.is_empty() && diff_ids.0 != diff_ids.1 {
        let tar_change = field_change(
            "tar stream (diff_id)".to_string(),
            diff_ids.0.map(|id| json!(id)),
            diff_ids.1.map(|id| json!(id)),
        );
        changes.push((None, tar_change, Some(Cause::TarEncoding)));
    }
    changes.extend(
        entry_changes
            .into_iter()
            .map(|difference| (difference.path, difference.change, difference.cause)),
    );
    Ok(changes)
}

//! Likely causes, recognised from the shape of a difference and what the
//! two configs say: times at two epochs, a file newer than the epoch on one
//! side, modes apart by a umask, files of the building user, a base image
//! whose tag moved. A difference keeps the cause it was found with.

use super::report::{Cause, Change, Difference, Place, Side};
use serde_json::Value;

/// The standard label and annotation hoist writes with the base's digest and name.
pub(crate) const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub(crate) const BASE_NAME: &str = "org.opencontainers.image.base.name";

/// What the two sides' configs say that causes are recognised by.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// The epoch of each side, from its config's `created`.
    epochs: (Option<u64>, Option<u64>),
    /// The base that moved, when the base digest labels differ.
    base_moved: Option<Cause>,
    /// How many of the left image's first layers are the base's.
    base_layers: usize,
}

impl Context {
    pub(crate) fn from_configs(left: &Value, right: &Value) -> Context {
        let epoch = |config: &Value| config.get("created").and_then(seconds);
        let label = |config: &Value, key: &str| {
            config
                .pointer("/config/Labels")
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let digests = (label(left, BASE_DIGEST), label(right, BASE_DIGEST));
        let names = (label(left, BASE_NAME), label(right, BASE_NAME));
        let base_moved = match digests {
            (Some(left_digest), Some(right_digest))
                if left_digest != right_digest && names.0 == names.1 =>
            {
                Some(Cause::BaseMoved {
                    name: names.0,
                    left: left_digest,
                    right: right_digest,
                })
            }
            _ => None,
        };
        Context {
            epochs: (epoch(left), epoch(right)),
            base_moved,
            base_layers: base_layer_count(left),
        }
    }

    /// The moved base, for a difference in one of the base's layers (or
    /// its diff_id, a config `field`).
    fn base_moved_under(&self, place: &Place, field: Option<&str>) -> Option<Cause> {
        match place {
            Place::Layer { layer } | Place::Entry { layer, .. } if *layer < self.base_layers => {
                self.base_moved.clone()
            }
            Place::Config => {
                // `rootfs.diff_ids[N]`: the diff_id of layer N.
                let layer = field_layer(field?)?;
                (layer < self.base_layers).then(|| self.base_moved.clone())?
            }
            _ => None,
        }
    }
}

/// N of a config path `rootfs.diff_ids[N]`.
fn field_layer(field: &str) -> Option<usize> {
    field
        .strip_prefix("rootfs.diff_ids[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The layers that come before hoist's own: history entries with a layer,
/// up to the first that hoist wrote (`created_by` "hoist: layer NAME"); none
/// when hoist wrote none, since then nothing tells the base's apart.
fn base_layer_count(config: &Value) -> usize {
    let Some(history) = config.get("history").and_then(Value::as_array) else {
        return 0;
    };
    let with_layers = history.iter().filter(|entry| {
        !entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });
    with_layers
        .into_iter()
        .position(|entry| {
            entry
                .get("created_by")
                .and_then(Value::as_str)
                .is_some_and(|text| text.starts_with("hoist: "))
        })
        .unwrap_or(0)
}

/// Seconds since 1970 of an RFC 3339 time.
fn seconds(value: &Value) -> Option<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok()?;
    u64::try_from(time.timestamp()).ok()
}

/// Gives each difference without a cause the one its shape suggests.
pub(crate) fn annotate(differences: &mut [Difference], context: &Context) {
    let uniform_mtimes = uniform_mtime_pair(differences);
    for difference in differences.iter_mut() {
        if difference.cause.is_none() {
            // The shape's own cause first; in a layer of a base that moved,
            // the move explains what nothing more specific does.
            difference.cause = field_cause(difference, context, uniform_mtimes).or_else(|| {
                let field = match &difference.change {
                    Change::Field { field, .. } => Some(field.as_str()),
                    _ => None,
                };
                context.base_moved_under(&difference.place, field)
            });
        }
    }
}

/// The cause a field difference's shape suggests.
fn field_cause(
    difference: &Difference,
    context: &Context,
    uniform_mtimes: Option<(u64, u64)>,
) -> Option<Cause> {
    let Change::Field {
        field,
        left: Some(left),
        right: Some(right),
    } = &difference.change
    else {
        return None;
    };
    match (&difference.place, field.as_str()) {
        (Place::Entry { .. }, "mtime") => mtime_cause(left, right, context, uniform_mtimes),
        (Place::Entry { .. }, "mode") => umask_cause(left, right),
        (Place::Entry { .. }, "uid" | "gid") => building_user_cause(left, right),
        (Place::Entry { .. }, _) => None,
        (_, field) if field.contains(BASE_DIGEST) => context.base_moved.clone(),
        (_, field) if field.ends_with("created") || field.ends_with("created\"]") => {
            match (seconds(left), seconds(right)) {
                (Some(left), Some(right)) => Some(Cause::Epoch { left, right }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The one (left, right) pair every mtime difference has, if they all agree:
/// then the times were most likely clamped at two epochs.
fn uniform_mtime_pair(differences: &[Difference]) -> Option<(u64, u64)> {
    let mut pairs = differences
        .iter()
        .filter_map(|difference| match &difference.change {
            Change::Field { field, left, right } if field == "mtime" => Some((
                left.as_ref().and_then(Value::as_u64)?,
                right.as_ref().and_then(Value::as_u64)?,
            )),
            _ => None,
        });
    let first = pairs.next()?;
    pairs.all(|pair| pair == first).then_some(first)
}

fn mtime_cause(
    left: &Value,
    right: &Value,
    context: &Context,
    uniform: Option<(u64, u64)>,
) -> Option<Cause> {
    let (left, right) = (left.as_u64()?, right.as_u64()?);
    if let Some(cause) = newer_than_epoch_on_one_side(left, right, context.epochs) {
        return Some(cause);
    }
    match context.epochs {
        (Some(left_epoch), Some(right_epoch)) if left_epoch != right_epoch => {
            (left == left_epoch && right == right_epoch).then_some(Cause::Epoch {
                left: left_epoch,
                right: right_epoch,
            })
        }
        (Some(epoch), Some(_)) if left == epoch && right < epoch => Some(Cause::NewerThanEpoch {
            side: Side::Left,
            epoch,
        }),
        (Some(epoch), Some(_)) if right == epoch && left < epoch => Some(Cause::NewerThanEpoch {
            side: Side::Right,
            epoch,
        }),
        (Some(_), Some(_)) => None,
        _ => (uniform == Some((left, right))).then_some(Cause::Epoch { left, right }),
    }
}

/// Since format 3 a file newer than the epoch is written at one second past
/// 1970 and an older one keeps its time: one side at that second and the
/// other before its epoch is a file that was newer than the epoch on the
/// first side only; the other exactly at its epoch is most likely an older
/// hoist's clamp.
fn newer_than_epoch_on_one_side(
    left: u64,
    right: u64,
    epochs: (Option<u64>, Option<u64>),
) -> Option<Cause> {
    const NEWER: u64 = crate::layer::NEWER_THAN_EPOCH_TIME;
    let (Some(left_epoch), Some(right_epoch)) = epochs else {
        return None;
    };
    if left == NEWER && right == right_epoch {
        Some(Cause::EpochClampBeforeFormat3 {
            side: Side::Right,
            epoch: right_epoch,
        })
    } else if right == NEWER && left == left_epoch {
        Some(Cause::EpochClampBeforeFormat3 {
            side: Side::Left,
            epoch: left_epoch,
        })
    } else if left == NEWER && right != NEWER && right < right_epoch {
        Some(Cause::NewerThanEpoch {
            side: Side::Left,
            epoch: left_epoch,
        })
    } else if right == NEWER && left != NEWER && left < left_epoch {
        Some(Cause::NewerThanEpoch {
            side: Side::Right,
            epoch: right_epoch,
        })
    } else {
        None
    }
}

/// Modes that differ only in group and other bits, one a subset of the
/// other: what two umasks (022 and 002, say) make of the same file.
fn umask_cause(left: &Value, right: &Value) -> Option<Cause> {
    let parse = |value: &Value| u32::from_str_radix(value.as_str()?, 8).ok();
    let (left, right) = (parse(left)?, parse(right)?);
    let bits = left ^ right;
    let subset = left & bits == bits || right & bits == bits;
    (bits != 0 && bits & !0o077 == 0 && subset).then_some(Cause::Umask { bits })
}

/// Root on one side and an ordinary user's id on the other: the files of
/// the user who built it kept as they were on disk.
fn building_user_cause(left: &Value, right: &Value) -> Option<Cause> {
    /// Where ordinary users' ids start on Linux systems.
    const FIRST_USER_ID: u64 = 1000;
    let (left, right) = (left.as_u64()?, right.as_u64()?);
    match (left, right) {
        (0, id) if id >= FIRST_USER_ID => Some(Cause::BuildingUser {
            side: Side::Right,
            id,
        }),
        (id, 0) if id >= FIRST_USER_ID => Some(Cause::BuildingUser {
            side: Side::Left,
            id,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry_field(field: &str, left: Value, right: Value) -> Difference {
        Difference {
            platform: None,
            place: Place::Entry {
                layer: 0,
                path: "app/file".to_string(),
            },
            change: Change::Field {
                field: field.to_string(),
                left: Some(left),
                right: Some(right),
            },
            cause: None,
        }
    }

    fn context(left: &str, right: &str) -> Context {
        Context::from_configs(&json!({"created": left}), &json!({"created": right}))
    }

    #[test]
    fn recognises_epochs_umasks_and_owners() {
        let mut differences = vec![
            entry_field("mtime", json!(1_700_000_000), json!(1_700_003_600)),
            entry_field("mode", json!("0644"), json!("0664")),
            entry_field("mode", json!("0644"), json!("0755")),
            entry_field("uid", json!(0), json!(1000)),
        ];
        annotate(
            &mut differences,
            &context("2023-11-14T22:13:20Z", "2023-11-14T23:13:20Z"),
        );
        let causes: Vec<Option<Cause>> = differences.into_iter().map(|d| d.cause).collect();
        assert_eq!(
            causes,
            [
                Some(Cause::Epoch {
                    left: 1_700_000_000,
                    right: 1_700_003_600
                }),
                Some(Cause::Umask { bits: 0o020 }),
                None,
                Some(Cause::BuildingUser {
                    side: Side::Right,
                    id: 1000
                }),
            ]
        );
    }

    #[test]
    fn a_file_newer_than_the_epoch_on_one_side() {
        let mut differences = vec![entry_field(
            "mtime",
            json!(1_600_000_000),
            json!(1_700_000_000),
        )];
        let same = "2023-11-14T22:13:20Z";
        annotate(&mut differences, &context(same, same));
        assert_eq!(
            differences[0].cause,
            Some(Cause::NewerThanEpoch {
                side: Side::Right,
                epoch: 1_700_000_000
            })
        );
    }

    #[test]
    fn a_file_newer_than_the_epoch_on_one_side_since_format_3() {
        let mut differences = vec![entry_field("mtime", json!(1), json!(1_600_000_000))];
        let same = "2023-11-14T22:13:20Z";
        annotate(&mut differences, &context(same, same));
        assert_eq!(
            differences[0].cause,
            Some(Cause::NewerThanEpoch {
                side: Side::Left,
                epoch: 1_700_000_000
            })
        );
        // At the epoch: what hoist wrote before format 3.
        let mut differences = vec![entry_field("mtime", json!(1_700_000_000), json!(1))];
        annotate(&mut differences, &context(same, same));
        assert_eq!(
            differences[0].cause,
            Some(Cause::EpochClampBeforeFormat3 {
                side: Side::Left,
                epoch: 1_700_000_000
            })
        );
        // Later than the other side's epoch: not this cause.
        let mut differences = vec![entry_field("mtime", json!(1), json!(1_800_000_000))];
        annotate(&mut differences, &context(same, same));
        assert_ne!(
            differences[0].cause,
            Some(Cause::NewerThanEpoch {
                side: Side::Left,
                epoch: 1_700_000_000
            })
        );
    }
}

//! JSON documents side by side (configs, manifests, indexes): every path
//! whose value differs, objects key by key and arrays item by item, except
//! `Env`, which is matched by variable name so one added variable is one
//! difference rather than a shift of every entry after it.

use serde_json::{Map, Value};

/// A JSON path and its value on each side (`None` where a side has no such path).
pub(crate) type JsonDifference = (String, Option<Value>, Option<Value>);

/// Every path below `path` at which `left` and `right` differ.
pub(crate) fn compare_json(
    path: &str,
    left: Option<&Value>,
    right: Option<&Value>,
    out: &mut Vec<JsonDifference>,
) {
    if left == right {
        return;
    }
    match (left, right) {
        (Some(Value::Object(left)), Some(Value::Object(right))) => {
            compare_objects(path, left, right, out)
        }
        (Some(Value::Array(left)), Some(Value::Array(right))) if path.ends_with("Env") => {
            compare_objects(path, &environment(left), &environment(right), out)
        }
        (Some(Value::Array(left)), Some(Value::Array(right))) => {
            for index in 0..left.len().max(right.len()) {
                compare_json(
                    &format!("{path}[{index}]"),
                    left.get(index),
                    right.get(index),
                    out,
                );
            }
        }
        _ => out.push((path.to_string(), left.cloned(), right.cloned())),
    }
}

fn compare_objects(
    path: &str,
    left: &Map<String, Value>,
    right: &Map<String, Value>,
    out: &mut Vec<JsonDifference>,
) {
    let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        compare_json(&child_path(path, key), left.get(key), right.get(key), out);
    }
}

/// `path.key`, or `path["key"]` when the key is not a plain word (labels
/// and annotations have dots in them).
fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

/// `["A=1", "B=2"]` as `{"A": "1", "B": "2"}`; an entry without `=` is a
/// name with no value.
fn environment(entries: &[Value]) -> Map<String, Value> {
    entries
        .iter()
        .map(|entry| {
            let text = entry.as_str().unwrap_or_default();
            let (name, value) = text.split_once('=').unwrap_or((text, ""));
            (name.to_string(), Value::String(value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_path_that_differs() {
        let left = json!({
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": ["PATH=/bin", "A=1"], "Labels": {"org.example.x": "1"}},
            "rootfs": {"diff_ids": ["sha256:a", "sha256:b"]}
        });
        let right = json!({
            "created": "2023-11-14T23:13:20Z",
            "config": {"Env": ["A=2", "PATH=/bin", "B=3"], "Labels": {"org.example.x": "1"}},
            "rootfs": {"diff_ids": ["sha256:a", "sha256:c", "sha256:d"]}
        });
        let mut out = Vec::new();
        compare_json("", Some(&left), Some(&right), &mut out);
        let paths: Vec<&str> = out.iter().map(|(path, _, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "config.Env.A",
                "config.Env.B",
                "created",
                "rootfs.diff_ids[1]",
                "rootfs.diff_ids[2]"
            ]
        );
        assert_eq!(out[1].1, None);
        assert_eq!(out[1].2, Some(json!("3")));
        let mut labels = Vec::new();
        compare_json(
            "config.Labels",
            Some(&json!({"org.example.x": "1"})),
            Some(&json!({"org.example.x": "2"})),
            &mut labels,
        );
        assert_eq!(labels[0].0, r#"config.Labels["org.example.x"]"#);
    }
}

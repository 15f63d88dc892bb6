//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace. `oci-spec` keeps annotations and labels in `HashMap`s, so
//! serializing its structs directly would give a different digest per run;
//! everything hoist hashes goes through [`to_canonical_json`] instead.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` to canonical JSON bytes.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(1024);
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            // Sort explicitly rather than trusting serde_json's map type: a
            // dependency turning on `preserve_order` would silently change it.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (position, (key, item)) in entries.into_iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_and_compact() {
        let mut map = HashMap::new();
        for key in ["zeta", "alpha", "Beta", "gamma", "alphabet"] {
            map.insert(key.to_string(), vec![1, 2]);
        }
        let bytes = to_canonical_json(&map).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"Beta":[1,2],"alpha":[1,2],"alphabet":[1,2],"gamma":[1,2],"zeta":[1,2]}"#
        );
    }

    #[test]
    fn nested_objects_are_sorted() {
        let value = serde_json::json!({"b": {"y": 1, "x": "é"}, "a": [ {"d": null, "c": true} ]});
        let bytes = to_canonical_json(&value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a":[{"c":true,"d":null}],"b":{"x":"é","y":1}}"#
        );
    }
}

//! The image config: the base image's config with the spec merged over it the
//! way Docker applies a Dockerfile's instructions, plus history and diff_ids
//! for the new layers.
//!
//! It works on JSON values rather than `oci-spec`'s struct because that struct
//! drops keys Docker writes and runtimes still read (`Healthcheck`, `Shell`,
//! `OnBuild`): a config built on a Docker Hub base must keep them.

use crate::oci::{Digest, Platform};
use crate::spec::plan::ImageConfigPlan;
use serde_json::{Map, Value, json};

/// A layer as the config records it.
pub struct ConfigLayer<'a> {
    pub diff_id: &'a Digest,
    pub name: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the base image's config is not a JSON object")]
    NotAnObject,
    #[error("the base image's config has `{key}` of the wrong type")]
    WrongType { key: String },
}

/// RFC 3339 in UTC, to the second: how OCI configs spell times. Plans hold
/// epochs up to [`LATEST_EPOCH`](crate::oci::time::LATEST_EPOCH), which all
/// have a spelling; anything later is clamped to that last second.
pub fn rfc3339(epoch: u64) -> String {
    let epoch = epoch.min(crate::oci::time::LATEST_EPOCH) as i64;
    crate::oci::time::rfc3339(epoch).unwrap_or_default()
}

/// Builds the config for one platform.
pub fn merge_config(
    base: Option<&Value>,
    spec: &ImageConfigPlan,
    platform: &Platform,
    epoch: u64,
    layers: &[ConfigLayer<'_>],
) -> Result<Value, ConfigError> {
    let mut root = match base {
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(ConfigError::NotAnObject),
        None => Map::new(),
    };
    // Keys Docker's builder leaves behind that describe the base's build, not this one.
    for stale in [
        "container",
        "container_config",
        "docker_version",
        "id",
        "parent",
    ] {
        root.remove(stale);
    }
    let created = rfc3339(epoch);
    root.insert("created".into(), json!(created));
    root.insert("architecture".into(), json!(platform.architecture));
    root.insert("os".into(), json!(platform.os));
    match &platform.variant {
        Some(variant) => root.insert("variant".into(), json!(variant)),
        None => root.remove("variant"),
    };

    let mut config = match root.remove("config") {
        Some(Value::Object(map)) => map,
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(ConfigError::WrongType {
                key: "config".into(),
            });
        }
    };
    apply_spec(&mut config, spec)?;
    root.insert("config".into(), Value::Object(config));

    let mut diff_ids = match root.remove("rootfs") {
        Some(Value::Object(mut rootfs)) => match rootfs.remove("diff_ids") {
            Some(Value::Array(ids)) => ids,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(ConfigError::WrongType {
                    key: "rootfs.diff_ids".into(),
                });
            }
        },
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ConfigError::WrongType {
                key: "rootfs".into(),
            });
        }
    };
    let mut history = match root.remove("history") {
        Some(Value::Array(entries)) => entries,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ConfigError::WrongType {
                key: "history".into(),
            });
        }
    };
    for layer in layers {
        diff_ids.push(json!(layer.diff_id.to_string()));
        history.push(json!({
            "created": created,
            "created_by": format!("hoist: layer {}", layer.name),
            "comment": "hoist",
        }));
    }
    root.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    root.insert("history".into(), Value::Array(history));
    Ok(Value::Object(root))
}

fn apply_spec(config: &mut Map<String, Value>, spec: &ImageConfigPlan) -> Result<(), ConfigError> {
    if !spec.env.is_empty() {
        let mut env: Vec<String> = string_list(config, "Env")?;
        for (key, value) in &spec.env {
            let entry = format!("{key}={value}");
            match env
                .iter_mut()
                .find(|existing| existing.split('=').next() == Some(key))
            {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        config.insert("Env".into(), json!(env));
    }
    // Docker: setting ENTRYPOINT resets an inherited CMD unless CMD is set too.
    if let Some(entrypoint) = &spec.entrypoint {
        config.insert("Entrypoint".into(), json!(entrypoint));
        if spec.cmd.is_none() {
            config.remove("Cmd");
        }
    }
    if let Some(cmd) = &spec.cmd {
        config.insert("Cmd".into(), json!(cmd));
    }
    if let Some(user) = &spec.user {
        config.insert("User".into(), json!(user));
    }
    if let Some(workdir) = &spec.workdir {
        config.insert("WorkingDir".into(), json!(workdir));
    }
    if let Some(signal) = &spec.stop_signal {
        config.insert("StopSignal".into(), json!(signal));
    }
    merge_set(config, "ExposedPorts", spec.ports.iter())?;
    merge_set(config, "Volumes", spec.volumes.iter())?;
    if !spec.labels.is_empty() {
        let mut labels = match config.remove("Labels") {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                return Err(ConfigError::WrongType {
                    key: "config.Labels".into(),
                });
            }
        };
        for (key, value) in &spec.labels {
            labels.insert(key.clone(), json!(value));
        }
        config.insert("Labels".into(), Value::Object(labels));
    }
    Ok(())
}

fn string_list(config: &Map<String, Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|_| ConfigError::WrongType {
            key: format!("config.{key}"),
        }),
    }
}

/// Go's `map[string]struct{}` sets (`ExposedPorts`, `Volumes`).
fn merge_set<'a>(
    config: &mut Map<String, Value>,
    key: &str,
    items: impl Iterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    let mut items = items.peekable();
    if items.peek().is_none() {
        return Ok(());
    }
    let mut set = match config.remove(key) {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(ConfigError::WrongType {
                key: format!("config.{key}"),
            });
        }
    };
    for item in items {
        set.insert(item.clone(), json!({}));
    }
    config.insert(key.into(), Value::Object(set));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    fn platform() -> Platform {
        "linux/arm64/v8".parse().unwrap()
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_and_env_merges_by_key() {
        let base = json!({
            "architecture": "amd64", "os": "linux", "container": "abc",
            "config": {"Env": ["PATH=/usr/bin", "LANG=C"], "Cmd": ["bash"], "Healthcheck": {"Test": ["NONE"]}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
            "history": [{"created_by": "base"}]
        });
        let spec = ImageConfigPlan {
            entrypoint: Some(vec!["/app/run".into()]),
            env: [
                ("LANG".to_string(), "C.UTF-8".to_string()),
                ("MODE".into(), "prod".into()),
            ]
            .into(),
            ports: ["8080/tcp".to_string()].into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        let diff_id = sha256_digest(b"layer");
        let layers = [ConfigLayer {
            diff_id: &diff_id,
            name: "app",
        }];
        let config = merge_config(Some(&base), &spec, &platform(), 1_700_000_000, &layers).unwrap();
        assert_eq!(
            config["config"]["Env"],
            json!(["PATH=/usr/bin", "LANG=C.UTF-8", "MODE=prod"])
        );
        assert_eq!(config["config"]["Entrypoint"], json!(["/app/run"]));
        assert!(
            config["config"].get("Cmd").is_none(),
            "entrypoint must reset the inherited cmd"
        );
        assert_eq!(config["config"]["Healthcheck"], json!({"Test": ["NONE"]}));
        assert_eq!(config["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["variant"], "v8");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert!(config.get("container").is_none());
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!(["sha256:aa", diff_id.to_string()])
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert_eq!(config["history"][1]["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn cmd_with_entrypoint_keeps_both_and_scratch_works() {
        let spec = ImageConfigPlan {
            entrypoint: Some(vec!["/e".into()]),
            cmd: Some(vec!["--help".into()]),
            ..Default::default()
        };
        let config = merge_config(None, &spec, &"linux/amd64".parse().unwrap(), 0, &[]).unwrap();
        assert_eq!(config["config"]["Cmd"], json!(["--help"]));
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert!(config.get("variant").is_none());
        assert_eq!(config["rootfs"], json!({"type": "layers", "diff_ids": []}));
    }

    #[test]
    fn wrong_types_in_the_base_are_errors() {
        let base = json!({"config": {"Env": "PATH=/bin"}});
        let spec = ImageConfigPlan {
            env: [("A".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let error = merge_config(Some(&base), &spec, &platform(), 0, &[]).unwrap_err();
        assert!(error.to_string().contains("config.Env"));
        assert!(matches!(
            merge_config(Some(&json!([1])), &spec, &platform(), 0, &[]),
            Err(ConfigError::NotAnObject)
        ));
    }
}

//! npm packages: the `package.json` of every package directory under a
//! `node_modules` (`node_modules/NAME/` or `node_modules/@SCOPE/NAME/`).

use super::{Ecosystem, Findings, License, Texts, license, package, purl};
use serde_json::Value;

pub fn wants(path: &str) -> bool {
    let Some((_, below)) = path.rsplit_once("/node_modules/") else {
        return false;
    };
    let parts: Vec<&str> = below.split('/').collect();
    match parts.as_slice() {
        [name, "package.json"] => !name.starts_with('.') && !name.starts_with('@'),
        [scope, name, "package.json"] => scope.starts_with('@') && !name.starts_with('.'),
        _ => false,
    }
}

pub fn catalog(texts: &Texts, findings: &mut Findings) {
    for (path, text) in texts.iter().filter(|(path, _)| wants(path)) {
        let manifest: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                findings.warn(path, format!("not valid JSON: {error}"));
                continue;
            }
        };
        let field = |key: &str| {
            manifest
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let (Some(full_name), Some(version)) = (field("name"), field("version")) else {
            // Directories without a name and version are not installed packages
            // (test fixtures, templates); nothing to report.
            continue;
        };
        let (namespace, name) = match full_name.split_once('/') {
            Some((scope, name)) if scope.starts_with('@') => (Some(scope), name),
            _ => (None, full_name),
        };
        let Some(url) = purl("npm", namespace, name, version, &[]) else {
            findings.warn(
                path,
                format!("package `{full_name}` has a name no purl can hold"),
            );
            continue;
        };
        let mut found = package(Ecosystem::Npm, full_name, version, url, path);
        for declared in declared_licenses(&manifest) {
            found.licenses.insert(License {
                spdx: license::from_spdx_like(&declared),
                declared,
            });
        }
        findings.add(found);
    }
}

/// `"license": "MIT"`, `"license": {"type": "MIT"}` or the old `"licenses": [...]`.
fn declared_licenses(manifest: &Value) -> Vec<String> {
    let one = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => map.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    if let Some(license) = manifest.get("license").and_then(one) {
        return vec![license];
    }
    manifest
        .get("licenses")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(one).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_package_directories_only() {
        assert!(wants("/app/node_modules/lodash/package.json"));
        assert!(wants("/app/node_modules/@types/node/package.json"));
        assert!(wants("/app/node_modules/a/node_modules/b/package.json"));
        assert!(!wants("/app/node_modules/lodash/lib/package.json"));
        assert!(!wants("/app/node_modules/@types/package.json"));
        assert!(!wants("/app/package.json"));
    }

    #[test]
    fn license_forms() {
        let manifest: Value = serde_json::json!({"licenses": [{"type": "MIT"}, "ISC"]});
        assert_eq!(declared_licenses(&manifest), vec!["MIT", "ISC"]);
        let manifest: Value = serde_json::json!({"license": {"type": "BSD-2-Clause"}});
        assert_eq!(declared_licenses(&manifest), vec!["BSD-2-Clause"]);
    }
}

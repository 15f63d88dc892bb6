//! Python distributions: `*.dist-info/METADATA` (wheels, pip) and
//! `*.egg-info/PKG-INFO` or a bare `*.egg-info` file (setuptools). Both are
//! email-style headers (core metadata).

use super::{Ecosystem, Findings, License, Texts, license, package, purl};

pub fn wants(path: &str) -> bool {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    (name == "METADATA" && parent.ends_with(".dist-info"))
        || (name == "PKG-INFO" && parent.ends_with(".egg-info"))
        || name.ends_with(".egg-info")
}

pub fn catalog(texts: &Texts, findings: &mut Findings) {
    for (path, text) in texts.iter().filter(|(path, _)| wants(path)) {
        let headers = headers(text);
        let header = |key: &str| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty() && *value != "UNKNOWN")
        };
        let (Some(name), Some(version)) = (header("Name"), header("Version")) else {
            findings.warn(path, "core metadata without Name and Version");
            continue;
        };
        let Some(url) = purl("pypi", None, &normalize_name(name), version, &[]) else {
            findings.warn(
                path,
                format!("distribution `{name}` has a name no purl can hold"),
            );
            continue;
        };
        let mut found = package(Ecosystem::Python, name, version, url, path);
        if let Some(expression) = header("License-Expression") {
            found.licenses.insert(License {
                declared: expression.to_string(),
                spdx: license::from_spdx_like(expression),
            });
        } else {
            let classifiers: Vec<&str> = headers
                .iter()
                .filter(|(key, value)| {
                    key.eq_ignore_ascii_case("Classifier") && value.starts_with("License ::")
                })
                .map(|(_, value)| value.as_str())
                .collect();
            for classifier in &classifiers {
                found.licenses.insert(License {
                    declared: classifier.to_string(),
                    spdx: license::from_classifier(classifier),
                });
            }
            // The free-text License field is often a whole license text;
            // take it only when it is one short line and nothing better exists.
            if let Some(text) = header("License")
                && classifiers.is_empty()
                && !text.contains('\n')
                && text.len() <= 100
            {
                found.licenses.insert(License {
                    declared: text.to_string(),
                    spdx: license::from_spdx_like(text),
                });
            }
        }
        findings.add(found);
    }
}

/// PEP 503 normalization, which purl's pypi type requires.
fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut previous_separator = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !previous_separator {
                out.push('-');
            }
            previous_separator = true;
        } else {
            out.push(character.to_ascii_lowercase());
            previous_separator = false;
        }
    }
    out
}

/// The header block (up to the first blank line), continuation lines joined.
fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            out.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_metadata_files_and_normalizes_names() {
        assert!(wants(
            "/usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA"
        ));
        assert!(wants("/x/foo-1.0-py3.11.egg-info/PKG-INFO"));
        assert!(wants("/x/foo-1.0.egg-info"));
        assert!(!wants("/x/foo-1.0.dist-info/RECORD"));
        assert_eq!(normalize_name("Foo_Bar.baz--x"), "foo-bar-baz-x");
    }
}

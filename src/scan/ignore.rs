//! Findings a team has accepted: `.trivyignore` files (one identifier a
//! line, `#` comments, an optional `exp:YYYY-MM-DD` after which the line no
//! longer applies) and OpenVEX documents (statements `not_affected` or
//! `fixed`). A finding is ignored when any of its identifiers is listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("cannot read the ignore file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: `{text}` is not a date (write exp:YYYY-MM-DD)")]
    Expiry {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path} is JSON but not an OpenVEX document: {reason}")]
    Vex { path: PathBuf, reason: String },
}

/// The identifiers to ignore, from every file given.
#[derive(Debug, Default, Clone)]
pub struct IgnoreList {
    identifiers: BTreeSet<String>,
}

impl IgnoreList {
    /// Reads each file; `today` (`YYYY-MM-DD`) decides which entries expired.
    pub fn read(paths: &[PathBuf], today: &str) -> Result<IgnoreList, IgnoreError> {
        let mut list = IgnoreList::default();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| IgnoreError::Io {
                path: path.clone(),
                source,
            })?;
            if text.trim_start().starts_with('{') {
                list.identifiers.extend(openvex(path, &text)?);
            } else {
                list.identifiers.extend(trivyignore(path, &text, today)?);
            }
        }
        Ok(list)
    }

    pub fn covers<'a>(&self, mut identifiers: impl Iterator<Item = &'a String>) -> bool {
        identifiers.any(|identifier| self.identifiers.contains(identifier))
    }
}

fn trivyignore(path: &Path, text: &str, today: &str) -> Result<Vec<String>, IgnoreError> {
    let mut identifiers = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(identifier) = words.next() else {
            continue;
        };
        let expiry = words.find_map(|word| word.strip_prefix("exp:"));
        if let Some(date) = expiry {
            let valid = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
            if !valid {
                return Err(IgnoreError::Expiry {
                    path: path.to_path_buf(),
                    line: number + 1,
                    text: date.to_string(),
                });
            }
            // ISO dates order as strings; the entry holds through its expiry day.
            if date < today {
                continue;
            }
        }
        identifiers.push(identifier.to_string());
    }
    Ok(identifiers)
}

fn openvex(path: &Path, text: &str) -> Result<Vec<String>, IgnoreError> {
    let vex = |reason: &str| IgnoreError::Vex {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|error| vex(&error.to_string()))?;
    let context = document
        .get("@context")
        .and_then(|value| value.as_str())
        .unwrap_or_default();
    if !context.starts_with("https://openvex.dev/ns") {
        return Err(vex("its @context is not https://openvex.dev/ns"));
    }
    let statements = document
        .get("statements")
        .and_then(|value| value.as_array())
        .ok_or_else(|| vex("it has no statements"))?;
    let mut identifiers = Vec::new();
    for statement in statements {
        let status = statement
            .get("status")
            .and_then(|value| value.as_str())
            .unwrap_or_default();
        if status != "not_affected" && status != "fixed" {
            continue;
        }
        let vulnerability = statement.get("vulnerability");
        let name = vulnerability
            .and_then(|value| value.as_str().or_else(|| value.get("name")?.as_str()))
            .ok_or_else(|| vex("a statement names no vulnerability"))?;
        identifiers.push(name.to_string());
        let aliases = vulnerability
            .and_then(|value| value.get("aliases"))
            .and_then(|value| value.as_array());
        identifiers.extend(
            aliases
                .into_iter()
                .flatten()
                .filter_map(|alias| alias.as_str().map(str::to_string)),
        );
    }
    Ok(identifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivyignore_and_openvex() {
        let directory = tempfile::tempdir().unwrap();
        let ignore = directory.path().join(".trivyignore");
        std::fs::write(
            &ignore,
            "# accepted\nCVE-2024-0001\nCVE-2024-0002 exp:2026-01-01\nCVE-2024-0003 exp:2026-12-31 # until the next release\n",
        )
        .unwrap();
        let vex = directory.path().join("vex.json");
        std::fs::write(
            &vex,
            r#"{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a", "timestamp": "2026-01-01T00:00:00Z", "version": 1,
               "statements": [{"vulnerability": {"name": "CVE-2024-0004"}, "products": [{"@id": "pkg:oci/app"}], "status": "not_affected", "justification": "vulnerable_code_not_present"},
                              {"vulnerability": {"name": "CVE-2024-0005"}, "products": [{"@id": "pkg:oci/app"}], "status": "affected"}]}"#,
        )
        .unwrap();
        let list = IgnoreList::read(&[ignore.clone(), vex], "2026-06-01").unwrap();
        let covered = |id: &str| list.covers([id.to_string()].iter());
        assert!(covered("CVE-2024-0001"));
        assert!(!covered("CVE-2024-0002"), "expired");
        assert!(covered("CVE-2024-0003"));
        assert!(covered("CVE-2024-0004"));
        assert!(!covered("CVE-2024-0005"), "affected is not ignored");
        std::fs::write(&ignore, "CVE-1 exp:tomorrow\n").unwrap();
        let error = IgnoreList::read(&[ignore], "2026-06-01").unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}

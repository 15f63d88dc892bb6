//! `/etc/os-release`: which distribution the image is, for the purl
//! namespaces and `distro` qualifiers of OS packages; and
//! `/etc/debian_version`, for Debian's point release.

use super::OperatingSystem;
use std::collections::BTreeMap;

/// Where Debian (and its derivatives) write their release.
pub const DEBIAN_VERSION: &str = "/etc/debian_version";

/// Parses the shell-style `KEY=value` lines; `None` without an `ID`.
pub fn parse(text: &str) -> Option<OperatingSystem> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            fields.insert(key.trim().to_string(), unquote(value.trim()));
        }
    }
    let id = fields
        .get("ID")
        .filter(|id| !id.is_empty())?
        .to_ascii_lowercase();
    Some(OperatingSystem {
        id,
        version_id: fields.get("VERSION_ID").cloned(),
        version_codename: fields.get("VERSION_CODENAME").cloned(),
        name: fields.get("NAME").cloned(),
        pretty_name: fields.get("PRETTY_NAME").cloned(),
        id_like: fields
            .get("ID_LIKE")
            .map(|like| like.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        point_release: None,
    })
}

/// Debian's point release (`12.5`) from `/etc/debian_version`, when it
/// refines the major version `/etc/os-release` gives. Ubuntu and Debian
/// testing write a codename there (`bookworm/sid`), which is no release.
pub fn debian_point_release(os: &OperatingSystem, text: &str) -> Option<String> {
    let release = text.trim();
    let major = os.version_id.as_deref()?;
    let rest = release.strip_prefix(major)?.strip_prefix('.')?;
    let is_version = !rest.is_empty()
        && rest
            .chars()
            .all(|character| character.is_ascii_digit() || character == '.');
    is_version.then(|| release.to_string())
}

/// Removes one level of shell quoting (`"a \"b\""`, `'a'`).
fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        return value[1..value.len() - 1].to_string();
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let mut out = String::new();
        let mut characters = value[1..value.len() - 1].chars();
        while let Some(character) = characters.next() {
            if character == '\\' {
                if let Some(escaped) = characters.next() {
                    out.push(escaped);
                }
            } else {
                out.push(character);
            }
        }
        return out;
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_this_machine() {
        let text = std::fs::read_to_string("/etc/os-release").unwrap();
        let os = parse(&text).unwrap();
        let expected = text
            .lines()
            .find_map(|line| line.strip_prefix("ID="))
            .unwrap()
            .trim_matches('"');
        assert_eq!(os.id, expected);
        assert!(os.pretty_name.is_some());
    }

    #[test]
    fn quoting_and_missing_id() {
        let os = parse("ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine \\\"Linux\\\" v3.19\"\nID_LIKE='a b'\n").unwrap();
        assert_eq!(os.distro(), "alpine-3.19.1");
        assert_eq!(os.pretty_name.as_deref(), Some("Alpine \"Linux\" v3.19"));
        assert_eq!(os.id_like, vec!["a", "b"]);
        assert_eq!(parse("NAME=x\n"), None);
    }

    #[test]
    fn debian_point_release_refines_the_major_version() {
        let debian = parse("ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        assert_eq!(
            debian_point_release(&debian, "12.5\n").as_deref(),
            Some("12.5")
        );
        assert_eq!(debian_point_release(&debian, "bookworm/sid\n"), None);
        assert_eq!(debian_point_release(&debian, "11.9\n"), None);
        assert_eq!(debian_point_release(&debian, "12\n"), None);
        let testing = parse("ID=debian\n").unwrap();
        assert_eq!(debian_point_release(&testing, "13.0\n"), None);
    }
}

//! OSV ecosystem names (`Debian:12`, `Alpine:v3.19`, `PyPI`) mapped to the
//! version scheme that orders them and split into the family an index
//! key uses and the release a distribution advisory is for.

use crate::scan::version::Scheme;

/// `Debian:12` → (`Debian`, `12`); `PyPI` → (`PyPI`, ``).
pub fn split(ecosystem: &str) -> (&str, &str) {
    ecosystem.split_once(':').unwrap_or((ecosystem, ""))
}

/// The scheme an ecosystem family orders versions by, or `None` for one
/// hoist does not catalog.
pub fn scheme(family: &str) -> Option<Scheme> {
    Some(match family {
        "Debian" | "Ubuntu" => Scheme::Dpkg,
        "Alpine" => Scheme::Apk,
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "openSUSE" | "SUSE" | "Mageia" | "openEuler" => {
            Scheme::Rpm
        }
        "PyPI" => Scheme::Pep440,
        "npm" | "crates.io" => Scheme::Semver,
        "Go" => Scheme::Go,
        _ => return None,
    })
}

/// A package name as the ecosystem compares names: PyPI's are normalized
/// (PEP 503), every other is exact.
pub fn normalize_name(family: &str, name: &str) -> String {
    if family != "PyPI" {
        return name.to_string();
    }
    let mut normalized = String::with_capacity(name.len());
    for character in name.chars() {
        let separator = matches!(character, '-' | '_' | '.');
        if separator {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(character.to_ascii_lowercase());
        }
    }
    normalized
}

/// Whether an advisory's release (`12`, `22.04:LTS`, `v3.19`,
/// `enterprise_linux:9::appstream`) is the image's distribution release.
/// An advisory naming no release covers every one.
pub fn release_matches(family: &str, advisory_release: &str, image_release: &str) -> bool {
    if advisory_release.is_empty() {
        return true;
    }
    match family {
        "Debian" => advisory_release == major(image_release),
        "Ubuntu" => {
            // `22.04`, `22.04:LTS`; `Pro:...` releases need a subscription the image cannot show.
            !advisory_release.starts_with("Pro") && split(advisory_release).0 == image_release
        }
        "Alpine" => advisory_release.trim_start_matches('v') == major_minor(image_release),
        _ => advisory_release
            .split([':', '.'])
            .any(|part| !part.is_empty() && part == major(image_release)),
    }
}

fn major(release: &str) -> &str {
    release.split('.').next().unwrap_or(release)
}

fn major_minor(release: &str) -> &str {
    match release.match_indices('.').nth(1) {
        Some((index, _)) => &release[..index],
        None => release,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert!(release_matches("Debian", "12", "12"));
        assert!(!release_matches("Debian", "11", "12"));
        assert!(release_matches("Ubuntu", "22.04:LTS", "22.04"));
        assert!(!release_matches("Ubuntu", "Pro:22.04:LTS", "22.04"));
        assert!(release_matches("Alpine", "v3.19", "3.19.1"));
        assert!(!release_matches("Alpine", "v3.1", "3.19.1"));
        assert!(release_matches("AlmaLinux", "9", "9.3"));
        assert!(release_matches(
            "Red Hat",
            "enterprise_linux:9::appstream",
            "9.3"
        ));
        assert!(release_matches("PyPI", "", ""));
        assert_eq!(normalize_name("PyPI", "Foo__Bar.baz"), "foo-bar-baz");
    }
}

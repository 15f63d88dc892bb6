//! CPE 2.3 names for cataloged packages, which scanners (grype and others
//! matching NVD records) key on besides purls. Given to the package kinds
//! syft gives them to among those compared with it on a Debian image: dpkg
//! and Python packages, each as syft's first candidate, vendor and product
//! both the package's name (`cpe:2.3:a:bash:bash:5.2.15-2\+b13:*:*:*:*:*:*:*`).

use super::{Ecosystem, Package};

/// The package's CPE, for the kinds that get one.
pub fn cpe(package: &Package) -> Option<String> {
    if !matches!(package.ecosystem, Ecosystem::Deb | Ecosystem::Python)
        || package.name.is_empty()
        || package.version.is_empty()
    {
        return None;
    }
    let name = escape(&package.name);
    Some(format!(
        "cpe:2.3:a:{name}:{name}:{}:*:*:*:*:*:*:*",
        escape(&package.version)
    ))
}

/// A value in CPE's formatted-string binding: every character besides
/// letters, digits, `_`, `-` and `.` is quoted with a backslash (`1:2.38`
/// becomes `1\:2.38`, `+deb12u1` becomes `\+deb12u1`), as syft writes it.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        if !(character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.')) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            name: name.to_string(),
            version: version.to_string(),
            ecosystem,
            purl: String::new(),
            licenses: Default::default(),
            architecture: None,
            source_package: None,
            locations: Default::default(),
        }
    }

    #[test]
    fn dpkg_and_python_packages_get_syfts_first_cpe() {
        assert_eq!(
            cpe(&package(Ecosystem::Deb, "bsdutils", "1:2.38.1-5+deb12u3")).as_deref(),
            Some("cpe:2.3:a:bsdutils:bsdutils:1\\:2.38.1-5\\+deb12u3:*:*:*:*:*:*:*")
        );
        assert_eq!(
            cpe(&package(Ecosystem::Deb, "debianutils", "5.7-0.5~deb12u1")).as_deref(),
            Some("cpe:2.3:a:debianutils:debianutils:5.7-0.5\\~deb12u1:*:*:*:*:*:*:*")
        );
        assert_eq!(
            cpe(&package(Ecosystem::Python, "six", "1.16.0")).as_deref(),
            Some("cpe:2.3:a:six:six:1.16.0:*:*:*:*:*:*:*")
        );
        assert_eq!(cpe(&package(Ecosystem::Npm, "left-pad", "1.3.0")), None);
        assert_eq!(cpe(&package(Ecosystem::Deb, "bash", "")), None);
    }
}

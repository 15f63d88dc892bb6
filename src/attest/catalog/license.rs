//! License names as package databases write them, mapped to SPDX license
//! expressions where the mapping is certain; anything else stays a plain name.

use spdx::Expression;

/// Maps a DEP-5 `License:` value (`GPL-2+ or Artistic`, `BSD-3-clause`,
/// `LGPL-2.1+ with OpenSSL exception`) to an SPDX expression, or `None` when
/// any part of it has no SPDX identifier (`public-domain`, `permissive`).
pub fn from_dep5(value: &str) -> Option<String> {
    let normalized = value.replace(',', " ");
    let tokens: Vec<&str> = normalized.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut position = 0;
    while position < tokens.len() {
        let token = tokens[position];
        match token.to_ascii_lowercase().as_str() {
            "and" => out.push("AND".into()),
            "or" => out.push("OR".into()),
            "with" => {
                // `with NAME exception`: the words up to `exception` name it.
                let mut words = Vec::new();
                position += 1;
                while position < tokens.len() && !tokens[position].eq_ignore_ascii_case("exception")
                {
                    words.push(tokens[position]);
                    position += 1;
                }
                let joined = words.join("-");
                // `OpenSSL exception` → `OpenSSL-exception`, but
                // `Linux-syscall-note exception` → `Linux-syscall-note`.
                let exception = find_exception(&format!("{joined}-exception"))
                    .or_else(|| find_exception(&joined))?;
                out.push("WITH".into());
                out.push(exception);
            }
            _ => out.push(dep5_license_id(token)?),
        }
        position += 1;
    }
    valid(&out.join(" "))
}

/// One DEP-5 short name as an SPDX identifier.
fn dep5_license_id(name: &str) -> Option<String> {
    let (base, or_later) = match name.strip_suffix('+') {
        Some(base) => (base, true),
        None => (name, false),
    };
    let lower = base.to_ascii_lowercase();
    // Debian's names for licenses SPDX calls otherwise.
    let renamed = match lower.as_str() {
        "expat" => Some("MIT"),
        "artistic" | "artistic-1" | "artistic-1.0" if !or_later => Some("Artistic-1.0-Perl"),
        "psf-2" | "psf" => Some("PSF-2.0"),
        "zlib" => Some("Zlib"),
        "public-domain" | "permissive" | "other" | "unknown" => return None,
        _ => None,
    };
    if let Some(id) = renamed {
        return Some(id.to_string());
    }
    for family in ["gpl", "lgpl", "agpl", "gfdl"] {
        if let Some(version) = lower
            .strip_prefix(family)
            .and_then(|rest| rest.strip_prefix('-'))
        {
            let version = if version.contains('.') {
                version.to_string()
            } else {
                format!("{version}.0")
            };
            let base = format!("{}-{version}", family.to_ascii_uppercase());
            return spdx::gnu_license_id(&base, or_later).map(|id| id.name.to_string());
        }
    }
    let id = find_license(base)?;
    if or_later {
        // `+` on a non-GNU license is SPDX's own "or later" operator.
        Some(format!("{id}+"))
    } else {
        Some(id)
    }
}

fn find_license(name: &str) -> Option<String> {
    spdx::identifiers::LICENSES
        .iter()
        .find(|license| license.name.eq_ignore_ascii_case(name))
        .map(|license| license.name.to_string())
}

fn find_exception(name: &str) -> Option<String> {
    spdx::identifiers::EXCEPTIONS
        .iter()
        .find(|exception| exception.name.eq_ignore_ascii_case(name))
        .map(|exception| exception.name.to_string())
}

/// Maps a license string that is meant to be SPDX (Alpine, RPM, npm, Python's
/// `License-Expression`) to a valid expression, fixing the usual near misses
/// (`GPLv2+`, `Apache 2.0`, `MIT/X11`, lowercase operators).
pub fn from_spdx_like(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Some(expression) = valid(value) {
        return Some(expression);
    }
    // Fix the case of operators and identifiers first: the lax parser
    // knows near-miss names but matches identifiers case-sensitively.
    let spaced = value.replace('(', " ( ").replace(')', " ) ");
    let recased: Vec<String> = spaced
        .split_whitespace()
        .map(|token| match token.to_ascii_lowercase().as_str() {
            "and" | "or" | "with" => token.to_ascii_uppercase(),
            _ => {
                let (base, plus) = match token.strip_suffix('+') {
                    Some(base) => (base, "+"),
                    None => (token, ""),
                };
                find_license(base)
                    .or_else(|| find_exception(base))
                    .map(|id| format!("{id}{plus}"))
                    .unwrap_or_else(|| token.to_string())
            }
        })
        .collect();
    let recased = recased.join(" ").replace("( ", "(").replace(" )", ")");
    if let Some(expression) = valid(&recased) {
        return Some(expression);
    }
    let canonical = Expression::canonicalize(&recased).ok()?.unwrap_or(recased);
    valid(&canonical)
}

/// Python trove classifiers (`License :: OSI Approved :: MIT License`).
pub fn from_classifier(classifier: &str) -> Option<String> {
    let name = classifier.rsplit("::").next()?.trim();
    let id = match name {
        "MIT License" => "MIT",
        "Apache Software License" => return None,
        "BSD License" => return None,
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "Python Software Foundation License" => "PSF-2.0",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU General Public License v2 or later (GPLv2+)" => "GPL-2.0-or-later",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v3 or later (GPLv3+)" => "GPL-3.0-or-later",
        "GNU Lesser General Public License v2 (LGPLv2)" => "LGPL-2.0-only",
        "GNU Lesser General Public License v2 or later (LGPLv2+)" => "LGPL-2.0-or-later",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "GNU Lesser General Public License v3 or later (LGPLv3+)" => "LGPL-3.0-or-later",
        "GNU Affero General Public License v3" => "AGPL-3.0-only",
        "The Unlicense (Unlicense)" => "Unlicense",
        "Zope Public License" => "ZPL-2.1",
        "Eclipse Public License 2.0 (EPL-2.0)" => "EPL-2.0",
        "Boost Software License 1.0 (BSL-1.0)" => "BSL-1.0",
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication" => "CC0-1.0",
        _ => return None,
    };
    Some(id.to_string())
}

fn valid(expression: &str) -> Option<String> {
    Expression::parse(expression)
        .ok()
        .map(|_| expression.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep5_names_map_to_spdx() {
        let cases = [
            ("GPL-2+", Some("GPL-2.0-or-later")),
            ("GPL-2", Some("GPL-2.0-only")),
            ("LGPL-2.1+", Some("LGPL-2.1-or-later")),
            ("BSD-3-clause", Some("BSD-3-Clause")),
            ("Expat", Some("MIT")),
            (
                "GPL-2+ or Artistic",
                Some("GPL-2.0-or-later OR Artistic-1.0-Perl"),
            ),
            ("Apache-2.0 and MIT", Some("Apache-2.0 AND MIT")),
            (
                "Apache-2.0 with LLVM exception",
                Some("Apache-2.0 WITH LLVM-exception"),
            ),
            ("GPL-2+ with OpenSSL exception", None),
            (
                "GPL-2 with Linux-syscall-note exception",
                Some("GPL-2.0-only WITH Linux-syscall-note"),
            ),
            ("public-domain", None),
            ("GPL-2+ or public-domain", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(from_dep5(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn spdx_like_strings_are_canonicalized() {
        assert_eq!(from_spdx_like("MIT").as_deref(), Some("MIT"));
        assert_eq!(
            from_spdx_like("MIT AND BSD-2-Clause").as_deref(),
            Some("MIT AND BSD-2-Clause")
        );
        assert_eq!(
            from_spdx_like("GPL-2.0+").as_deref(),
            Some("GPL-2.0-or-later")
        );
        assert_eq!(
            from_spdx_like("mit or apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(from_spdx_like("Proprietary and secret"), None);
        assert_eq!(
            from_classifier("License :: OSI Approved :: MIT License").as_deref(),
            Some("MIT")
        );
    }
}

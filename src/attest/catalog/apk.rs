//! Alpine packages from apk's database, `/lib/apk/db/installed`: one
//! paragraph per package, each line a one-letter key, a colon and a value.

use super::{
    DistributionPackage, Ecosystem, Findings, License, OperatingSystem, Texts,
    distribution_package, license,
};

const INSTALLED: &str = "/lib/apk/db/installed";

pub fn wants(path: &str) -> bool {
    path == INSTALLED
}

pub fn catalog(texts: &Texts, operating_system: Option<&OperatingSystem>, findings: &mut Findings) {
    let Some(text) = texts.get(INSTALLED) else {
        return;
    };
    let namespace = operating_system
        .map(|os| os.id.as_str())
        .unwrap_or("alpine")
        .to_string();
    let distro = operating_system
        .map(OperatingSystem::distro)
        .unwrap_or_default();
    let mut any = false;
    for record in text.split("\n\n") {
        let field = |key: char| {
            record.lines().find_map(|line| {
                let mut characters = line.chars();
                (characters.next() == Some(key) && characters.next() == Some(':'))
                    .then(|| line[2..].trim())
            })
        };
        let Some(name) = field('P') else {
            continue;
        };
        any = true;
        let Some(version) = field('V') else {
            findings.warn(INSTALLED, format!("package `{name}` has no V: line"));
            continue;
        };
        let architecture = field('A').unwrap_or_default();
        let recorded = DistributionPackage {
            ecosystem: Ecosystem::Apk,
            kind: "apk",
            namespace: Some(&namespace),
            name,
            version,
            architecture,
            qualifiers: &[("distro", &distro)],
        };
        let Some(mut found) = distribution_package(findings, recorded, INSTALLED) else {
            continue;
        };
        found.source_package = field('o').map(str::to_string);
        if let Some(declared) = field('L').filter(|value| !value.is_empty()) {
            found.licenses.insert(License {
                declared: declared.to_string(),
                spdx: license::from_spdx_like(declared),
            });
        }
        findings.add(found);
    }
    if !any && !text.trim().is_empty() {
        findings.warn(INSTALLED, "no `P:` lines: not an apk database");
    }
}

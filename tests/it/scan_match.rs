//! Matching the Debian fixture's packages against the OSV records in
//! `tests/data/scan/osv/` (real ones and hand-written ones for each range
//! form; see its README), read as a directory and as a zip export, with
//! the index cached.

use crate::common::{assert_valid_json, hoist::debian_rootfs, root};
use hoist::attest::{FileTree, catalog};
use hoist::progress::Silent;
use hoist::scan::matcher::{Finding, match_inventory};
use hoist::scan::osv::Database;
use hoist::scan::severity::Severity;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

fn records_directory() -> PathBuf {
    root().join("tests/data/scan/osv")
}

fn record_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(records_directory())
        .into_iter()
        .map(|entry| entry.expect("walk").into_path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_record_is_valid_osv() {
    let files = record_files();
    assert!(files.len() >= 16, "{files:?}");
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    assert_valid_json("osv/schema.json", &paths);
}

/// The records as OSV's `all.zip` holds them: one JSON file each, deflated.
fn zip_export(directory: &std::path::Path) -> PathBuf {
    let path = directory.join("all.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).expect("create zip"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for file in record_files() {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        writer.start_file(name, options).expect("zip entry");
        writer
            .write_all(&std::fs::read(&file).expect("record"))
            .expect("zip write");
    }
    writer.finish().expect("zip finish");
    path
}

#[test]
fn export_is_read_from_zip_or_directory_and_cached() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let export = zip_export(work.path());
    for source in [records_directory(), export] {
        let first = Database::open(&source, Some(&cache)).expect("export opens");
        assert!(!first.from_cache, "{source:?}");
        assert_eq!(first.withdrawn, 1, "the withdrawn record is left out");
        assert_eq!(first.len(), record_files().len() - 1);
        assert_eq!(
            first.newest_modified.as_deref(),
            Some("2026-02-01T00:00:00Z")
        );
        let again = Database::open(&source, Some(&cache)).expect("cache opens");
        assert!(again.from_cache, "{source:?}");
        assert_eq!((again.len(), again.withdrawn), (first.len(), 1));
        assert_eq!(again.newest_modified, first.newest_modified);
    }
    let error = Database::open(&work.path().join("missing"), None).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
}

fn fixture_findings() -> Vec<Finding> {
    let inventory = catalog(
        &FileTree::from_directory(debian_rootfs()).expect("tree"),
        &Silent,
    )
    .expect("catalog");
    let database = Database::open(&records_directory(), None).expect("records open");
    let outcome = match_inventory(&database, &inventory);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    outcome.findings
}

#[test]
fn debian_fixture_findings() {
    let findings = fixture_findings();
    let matched: BTreeSet<&str> = findings
        .iter()
        .flat_map(|finding| &finding.records)
        .map(String::as_str)
        .collect();
    // Fixed before the installed version, last affected below it, above a
    // limit, for another release, withdrawn, for nginx on Debian 7: none.
    assert_eq!(
        matched,
        BTreeSet::from([
            "DEBIAN-CVE-2024-3651",
            "x_HOIST-TEST-BASH-UNRATED",
            "x_HOIST-TEST-GLIBC-NEWER",
            "x_HOIST-TEST-OPENSSL-LAST-AFFECTED",
            "x_HOIST-TEST-SIX-VERSIONS",
            "x_HOIST-TEST-TAR-LOW",
        ])
    );
    let find = |package: &str, record: &str| -> &Finding {
        findings
            .iter()
            .find(|finding| finding.package == package && finding.records.contains(record))
            .unwrap_or_else(|| panic!("no {record} finding for {package}: {findings:#?}"))
    };
    let glibc = find("libc6", "x_HOIST-TEST-GLIBC-NEWER");
    assert_eq!(
        (glibc.matched_name.as_str(), glibc.ecosystem.as_str()),
        ("glibc", "Debian:12")
    );
    assert_eq!(glibc.fixed.as_deref(), Some("2.37-1"));
    assert_eq!(
        (glibc.advisory.as_str(), glibc.severity),
        ("CVE-2099-0001", Severity::Critical)
    );
    let openssl = find("libssl3", "x_HOIST-TEST-OPENSSL-LAST-AFFECTED");
    assert_eq!(
        (
            openssl.severity,
            openssl.severity_source,
            openssl.fixed.as_deref()
        ),
        (Severity::High, "ecosystem", None)
    );
    let bash = find("bash", "x_HOIST-TEST-BASH-UNRATED");
    assert_eq!(
        (bash.severity, bash.advisory.as_str()),
        (Severity::Unknown, "CVE-2099-0002")
    );
    assert_eq!(find("tar", "x_HOIST-TEST-TAR-LOW").severity, Severity::Low);
    // python3-idna is dpkg's: matched once, as Debian's python-idna, with
    // the severity of the PyPI records that alias its CVE.
    let idna: Vec<&Finding> = findings
        .iter()
        .filter(|finding| finding.purl.contains("idna"))
        .collect();
    assert_eq!(idna.len(), 1, "{idna:#?}");
    assert_eq!(
        (idna[0].ecosystem.as_str(), idna[0].matched_name.as_str()),
        ("Debian:12", "python-idna")
    );
    assert_eq!(
        (
            idna[0].advisory.as_str(),
            idna[0].severity,
            idna[0].severity_source
        ),
        ("CVE-2024-3651", Severity::High, "alias")
    );
    assert!(
        findings.iter().all(|finding| finding.ecosystem != "PyPI"),
        "{findings:#?}"
    );
}

//! RPM packages from rpm's SQLite database (`rpmdb.sqlite`, Fedora 33+,
//! RHEL 9+, openSUSE): each row of `Packages` is a header blob, parsed here
//! for name, version, release, epoch, arch, license and source RPM. The
//! database is copied out of the layer stream into a temporary directory
//! (with its `-wal` file, if any) because SQLite only opens files.

use super::{
    DistributionPackage, Ecosystem, Findings, License, OperatingSystem, distribution_package,
    license,
};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

const DIRECTORIES: &[&str] = &["/var/lib/rpm/", "/usr/lib/sysimage/rpm/"];
const SQLITE: &str = "rpmdb.sqlite";
/// Berkeley DB (RHEL 8 and older) and NDB (older SUSE) databases.
const UNSUPPORTED: &[&str] = &["Packages", "Packages.db"];

pub fn wants(path: &str) -> bool {
    DIRECTORIES.iter().any(|directory| {
        path.strip_prefix(directory).is_some_and(|name| {
            name == SQLITE || name == "rpmdb.sqlite-wal" || UNSUPPORTED.contains(&name)
        })
    })
}

/// Database files copied out of the image, by the directory they were in.
#[derive(Default)]
pub struct Spool {
    directories: BTreeMap<String, tempfile::TempDir>,
}

impl Spool {
    pub fn add(&mut self, path: &str, reader: &mut dyn Read) -> Result<(), String> {
        let (directory, name) = path.rsplit_once('/').unwrap_or(("", path));
        if UNSUPPORTED.contains(&name) {
            return Err(
                "this rpm database format (Berkeley DB or NDB) is not read; only rpmdb.sqlite is"
                    .to_string(),
            );
        }
        let spool = match self.directories.entry(directory.to_string()) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(
                tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?,
            ),
        };
        let target = spool.path().join(name);
        let mut file = std::fs::File::create(&target)
            .map_err(|error| format!("copying to {}: {error}", target.display()))?;
        std::io::copy(reader, &mut file)
            .map_err(|error| format!("copying to {}: {error}", target.display()))?;
        Ok(())
    }

    pub fn catalog(&self, operating_system: Option<&OperatingSystem>, findings: &mut Findings) {
        for (directory, spool) in &self.directories {
            let image_path = format!("{directory}/{SQLITE}");
            let disk_path = spool.path().join(SQLITE);
            if !disk_path.exists() {
                continue;
            }
            match read_headers(&disk_path) {
                Ok(blobs) => {
                    for (row, blob) in blobs {
                        match Header::parse(&blob) {
                            Ok(header) => {
                                add_package(&header, &image_path, operating_system, findings)
                            }
                            Err(message) => {
                                findings.warn(&image_path, format!("package row {row}: {message}"))
                            }
                        }
                    }
                }
                Err(error) => findings.warn(&image_path, error),
            }
        }
    }
}

fn read_headers(path: &PathBuf) -> Result<Vec<(i64, Vec<u8>)>, rusqlite::Error> {
    let connection = rusqlite::Connection::open(path)?;
    let mut statement = connection.prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// The purl namespace for an RPM distribution's `ID`, as syft writes it:
/// Red Hat's packages are `redhat` (their `ID` is `rhel`) and every openSUSE
/// flavour is `opensuse`; others keep their `ID` (`fedora`, `rocky`).
fn purl_namespace(id: &str) -> &str {
    match id {
        "rhel" => "redhat",
        _ if id.starts_with("opensuse") => "opensuse",
        _ => id,
    }
}

fn add_package(
    header: &Header,
    image_path: &str,
    operating_system: Option<&OperatingSystem>,
    findings: &mut Findings,
) {
    let (Some(name), Some(version)) = (header.string(TAG_NAME), header.string(TAG_VERSION)) else {
        findings.warn(image_path, "a package header without name or version");
        return;
    };
    let release = header.string(TAG_RELEASE);
    let full_version = match release {
        Some(release) => format!("{version}-{release}"),
        None => version.to_string(),
    };
    let architecture = header.string(TAG_ARCH).unwrap_or_default();
    let epoch = header
        .int32(TAG_EPOCH)
        .map(|epoch| epoch.to_string())
        .unwrap_or_default();
    let distro = operating_system
        .map(OperatingSystem::distro)
        .unwrap_or_default();
    // Scanners match advisories on the whole source RPM file name, as syft
    // writes it in the `upstream` qualifier.
    let source_rpm = header.string(TAG_SOURCE_RPM).unwrap_or_default();
    let recorded = DistributionPackage {
        ecosystem: Ecosystem::Rpm,
        kind: "rpm",
        namespace: operating_system.map(|os| purl_namespace(&os.id)),
        name,
        version: &full_version,
        architecture,
        qualifiers: &[
            ("epoch", &epoch),
            ("distro", &distro),
            ("upstream", source_rpm),
        ],
    };
    let Some(mut found) = distribution_package(findings, recorded, image_path) else {
        return;
    };
    // `glibc-2.38-1.fc39.src.rpm` → `glibc`.
    found.source_package = header.string(TAG_SOURCE_RPM).and_then(|source| {
        let stem = source
            .strip_suffix(".src.rpm")
            .or_else(|| source.strip_suffix(".nosrc.rpm"))?;
        let mut parts = stem.rsplitn(3, '-');
        parts.next();
        parts.next();
        parts.next().map(str::to_string)
    });
    if let Some(declared) = header.string(TAG_LICENSE).filter(|value| !value.is_empty()) {
        found.licenses.insert(License {
            declared: declared.to_string(),
            spdx: license::from_spdx_like(declared),
        });
    }
    findings.add(found);
}

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_LICENSE: i32 = 1014;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCE_RPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18N_STRING: u32 = 9;

/// An rpm header as stored in the database: index count and data length
/// (big-endian u32 each), 16-byte index entries, then the data store.
struct Header<'a> {
    entries: BTreeMap<i32, (u32, usize)>,
    data: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        let word = |at: usize| -> Result<u32, String> {
            blob.get(at..at + 4)
                .map(|bytes| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                .ok_or_else(|| "header blob is truncated".to_string())
        };
        let index_count = word(0)? as usize;
        let data_length = word(4)? as usize;
        let data_start = index_count
            .checked_mul(16)
            .and_then(|size| size.checked_add(8))
            .ok_or("header index is impossibly large")?;
        let data = blob
            .get(data_start..data_start.saturating_add(data_length))
            .ok_or_else(|| format!("header claims {index_count} entries and {data_length} data bytes, more than the blob holds"))?;
        let mut entries = BTreeMap::new();
        for position in 0..index_count {
            let at = 8 + position * 16;
            let tag = word(at)? as i32;
            let kind = word(at + 4)?;
            let offset = word(at + 8)? as usize;
            if offset < data.len() {
                entries.insert(tag, (kind, offset));
            }
        }
        Ok(Header { entries, data })
    }

    fn string(&self, tag: i32) -> Option<&'a str> {
        let (kind, offset) = *self.entries.get(&tag)?;
        if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18N_STRING) {
            return None;
        }
        let rest = &self.data[offset..];
        let end = rest.iter().position(|byte| *byte == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    fn int32(&self, tag: i32) -> Option<i32> {
        let (kind, offset) = *self.entries.get(&tag)?;
        if kind != TYPE_INT32 {
            return None;
        }
        let bytes = self.data.get(offset..offset + 4)?;
        Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, value) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn parses_header_fields_and_rejects_truncation() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"bash\0"),
            (TAG_EPOCH, TYPE_INT32, &2i32.to_be_bytes()),
            (TAG_LICENSE, TYPE_STRING, b"GPL-3.0-or-later\0"),
        ]);
        let parsed = Header::parse(&blob).unwrap();
        assert_eq!(parsed.string(TAG_NAME), Some("bash"));
        assert_eq!(parsed.int32(TAG_EPOCH), Some(2));
        assert_eq!(parsed.string(TAG_LICENSE), Some("GPL-3.0-or-later"));
        assert_eq!(parsed.string(TAG_VERSION), None);
        assert!(Header::parse(&blob[..blob.len() - 3]).is_err());
        assert!(Header::parse(&[0xff; 8]).is_err());
    }

    #[test]
    fn purl_namespaces_follow_syft() {
        assert_eq!(purl_namespace("rhel"), "redhat");
        assert_eq!(purl_namespace("opensuse-leap"), "opensuse");
        assert_eq!(purl_namespace("fedora"), "fedora");
    }
}

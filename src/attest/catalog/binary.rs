//! Executables that say what they were built from: Go binaries carry their
//! module graph in the `.go.buildinfo` section (what `go version -m` prints),
//! Rust binaries built with cargo-auditable carry their dependency list as
//! zlib-compressed JSON in `.dep-v0`. Only ELF is read: images are Linux.

use super::{Ecosystem, Findings, package, purl};
use object::{Object, ObjectSection};
use serde::Deserialize;
use std::io::Read;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Decompressed cargo-auditable data past this is not what it claims to be.
const AUDIT_LIMIT: u64 = 64 << 20;

pub fn catalog(path: &str, size: u64, reader: &mut dyn Read, findings: &mut Findings) {
    let mut magic = [0u8; 4];
    if reader.read_exact(&mut magic).is_err() || &magic != ELF_MAGIC {
        return;
    }
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&magic);
    if let Err(error) = reader.read_to_end(&mut bytes) {
        findings.warn(path, format!("reading the executable: {error}"));
        return;
    }
    let file = match object::File::parse(&*bytes) {
        Ok(file) => file,
        Err(error) => {
            findings.warn(path, format!("not a readable ELF file: {error}"));
            return;
        }
    };
    if let Some(section) = file.section_by_name(".go.buildinfo") {
        match section
            .data()
            .map_err(|error| error.to_string())
            .and_then(|data| go_build_info(&file, data))
        {
            Ok(info) => add_go_packages(path, &info, findings),
            Err(message) => findings.warn(path, format!("Go build information: {message}")),
        }
    }
    if let Some(section) = file.section_by_name(".dep-v0") {
        match section
            .data()
            .map_err(|error| error.to_string())
            .and_then(cargo_audit_data)
        {
            Ok(audit) => add_cargo_packages(path, &audit, findings),
            Err(message) => findings.warn(path, format!("cargo-auditable data: {message}")),
        }
    }
}

/// The Go toolchain version and the module information text.
#[derive(Debug, PartialEq, Eq)]
pub struct GoBuildInfo {
    pub go_version: String,
    pub module_info: String,
}

/// Reads the build information blob: since Go 1.18 both strings follow the
/// 32-byte header inline (flag bit 2); before that the header holds pointers
/// to Go string headers elsewhere in the binary.
fn go_build_info(file: &object::File, data: &[u8]) -> Result<GoBuildInfo, String> {
    if data.len() < 32 || !data.starts_with(GO_MAGIC) {
        return Err("the section does not start with the Go build information magic".into());
    }
    let pointer_size = data[14] as usize;
    let flags = data[15];
    let (go_version, module_info) = if flags & 2 != 0 {
        let (version, rest) = varint_string(&data[32..])?;
        let (module_info, _) = varint_string(rest)?;
        (version.to_vec(), module_info.to_vec())
    } else {
        if pointer_size != 4 && pointer_size != 8 {
            return Err(format!("pointer size {pointer_size} is neither 4 nor 8"));
        }
        let big_endian = flags & 1 != 0;
        let read_pointer = |bytes: &[u8]| -> Option<u64> {
            let bytes = bytes.get(..pointer_size)?;
            let mut value = 0u64;
            for index in 0..pointer_size {
                let byte = if big_endian {
                    bytes[index]
                } else {
                    bytes[pointer_size - 1 - index]
                };
                value = (value << 8) | u64::from(byte);
            }
            Some(value)
        };
        let read_memory = |address: u64, size: u64| -> Option<&[u8]> {
            file.sections()
                .find_map(|section| section.data_range(address, size).ok().flatten())
        };
        // A Go string header is (data pointer, length).
        let read_string = |header_address: u64| -> Option<Vec<u8>> {
            let header = read_memory(header_address, 2 * pointer_size as u64)?;
            let pointer = read_pointer(header)?;
            let length = read_pointer(&header[pointer_size..])?;
            read_memory(pointer, length).map(<[u8]>::to_vec)
        };
        let version_address = read_pointer(&data[16..]).ok_or("truncated header")?;
        let module_address = read_pointer(&data[16 + pointer_size..]).ok_or("truncated header")?;
        (
            read_string(version_address).ok_or("the version string is outside the binary")?,
            read_string(module_address).unwrap_or_default(),
        )
    };
    let mut module_info = module_info.as_slice();
    // The module text is framed by 16-byte sentinels.
    if module_info.len() >= 33 && module_info[module_info.len() - 17] == b'\n' {
        module_info = &module_info[16..module_info.len() - 16];
    }
    Ok(GoBuildInfo {
        go_version: String::from_utf8_lossy(&go_version).into_owned(),
        module_info: String::from_utf8_lossy(module_info).into_owned(),
    })
}

/// A uvarint length and that many bytes.
fn varint_string(data: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut length: u64 = 0;
    for (position, byte) in data.iter().enumerate().take(10) {
        length |= u64::from(byte & 0x7f) << (7 * position);
        if byte & 0x80 == 0 {
            let start = position + 1;
            let end = usize::try_from(length)
                .ok()
                .and_then(|length| start.checked_add(length))
                .filter(|end| *end <= data.len())
                .ok_or("a string runs past the end of the section")?;
            return Ok((&data[start..end], &data[end..]));
        }
    }
    Err("malformed length prefix".into())
}

/// A module line: path and version (`dep\tgolang.org/x/sys\tv0.1.0\th1:...`).
#[derive(Debug, PartialEq, Eq)]
struct GoModule {
    path: String,
    version: String,
}

fn add_go_packages(path: &str, info: &GoBuildInfo, findings: &mut Findings) {
    let mut modules: Vec<GoModule> = Vec::new();
    for line in info.module_info.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", module, version, ..] => modules.push(GoModule {
                path: module.to_string(),
                version: version.to_string(),
            }),
            // A replacement applies to the module line just before it; a
            // local directory (no version) leaves the required one in place.
            ["=>", module, version, ..] if !version.is_empty() && *version != "(devel)" => {
                if let Some(last) = modules.last_mut() {
                    last.path = module.to_string();
                    last.version = version.to_string();
                }
            }
            _ => {}
        }
    }
    let go_version = info.go_version.trim_start_matches("go");
    if !go_version.is_empty()
        && let Some(url) = purl("golang", None, "stdlib", go_version, &[])
    {
        findings.add(package(Ecosystem::Go, "stdlib", go_version, url, path));
    }
    for module in modules {
        let (namespace, name) = match module.path.rsplit_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, module.path.as_str()),
        };
        // `(devel)` is the main module built from a checkout: no release to name.
        let version = if module.version == "(devel)" {
            ""
        } else {
            &module.version
        };
        match purl("golang", namespace, name, version, &[]) {
            Some(url) => findings.add(package(
                Ecosystem::Go,
                &module.path,
                &module.version,
                url,
                path,
            )),
            None => findings.warn(
                path,
                format!("Go module `{}` has a path no purl can hold", module.path),
            ),
        }
    }
}

/// cargo-auditable's format: `{"packages": [{name, version, source, kind, ...}]}`.
#[derive(Debug, Deserialize)]
pub struct CargoAudit {
    packages: Vec<CargoAuditPackage>,
}

#[derive(Debug, Deserialize)]
struct CargoAuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
}

fn cargo_audit_data(data: &[u8]) -> Result<CargoAudit, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(AUDIT_LIMIT)
        .read_to_end(&mut json)
        .map_err(|error| format!("not zlib data: {error}"))?;
    serde_json::from_slice(&json).map_err(|error| format!("not the expected JSON: {error}"))
}

fn add_cargo_packages(path: &str, audit: &CargoAudit, findings: &mut Findings) {
    for crate_package in &audit.packages {
        // Build dependencies ran at compile time; none of their code is in the binary.
        if crate_package.kind.as_deref() == Some("build") {
            continue;
        }
        match purl(
            "cargo",
            None,
            &crate_package.name,
            &crate_package.version,
            &[],
        ) {
            Some(url) => findings.add(package(
                Ecosystem::Cargo,
                &crate_package.name,
                &crate_package.version,
                url,
                path,
            )),
            None => findings.warn(
                path,
                format!("crate `{}` has a name no purl can hold", crate_package.name),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_strings() {
        let data = [3, b'a', b'b', b'c', 1, b'x', 0x80];
        let (first, rest) = varint_string(&data).unwrap();
        assert_eq!(first, b"abc");
        let (second, rest) = varint_string(rest).unwrap();
        assert_eq!(second, b"x");
        assert!(varint_string(rest).is_err());
        assert!(varint_string(&[5, b'a']).is_err());
    }
}

//! Layers side by side: each tar is read entry by entry through its
//! decompressor, content hashed as it streams past, and only the headers and
//! content digests kept, so memory grows with the number of entries and
//! never with the size of a layer. Then the entries are matched by path.

use super::report::{Cause, Change, Side};
use crate::image::Blob;
use crate::oci::DigestWriter;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};

/// PAX records whose meaning the other fields already carry.
const PAX_SHOWN_ELSEWHERE: &[&str] = &["path", "linkpath", "size", "hdrcharset"];
const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// One tar entry: every header field and the digest of its content.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EntrySummary {
    pub path: String,
    fields: BTreeMap<String, Value>,
}

/// Opens `blob` and reads its tar, decompressed by what its magic bytes say.
pub(crate) fn read_entries(blob: &dyn Blob) -> io::Result<Vec<EntrySummary>> {
    let mut reader = BufReader::with_capacity(1 << 20, blob.open()?);
    let start = reader.fill_buf()?;
    let tar: Box<dyn Read + '_> = if start.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(tar);
    let mut entries = Vec::new();
    for entry in archive.entries()? {
        entries.push(summarize(&mut entry?)?);
    }
    Ok(entries)
}

fn summarize(entry: &mut tar::Entry<'_, impl Read>) -> io::Result<EntrySummary> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let header = entry.header().clone();
    let mut fields = BTreeMap::new();
    let kind = header.entry_type();
    fields.insert("type".to_string(), json!(kind_name(kind)));
    // A malformed number is shown as null rather than ending the comparison.
    fields.insert(
        "mode".to_string(),
        json!(header.mode().ok().map(|mode| format!("{mode:04o}"))),
    );
    fields.insert("uid".to_string(), json!(header.uid().ok()));
    fields.insert("gid".to_string(), json!(header.gid().ok()));
    let name =
        |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
    fields.insert("uname".to_string(), json!(name(header.username_bytes())));
    fields.insert("gname".to_string(), json!(name(header.groupname_bytes())));
    fields.insert("mtime".to_string(), json!(header.mtime().ok()));
    fields.insert("size".to_string(), json!(entry.size()));
    fields.insert("format".to_string(), json!(header_format(&header)));
    if let Some(link) = entry.link_name_bytes() {
        fields.insert("link".to_string(), json!(String::from_utf8_lossy(&link)));
    }
    if kind.is_character_special() || kind.is_block_special() {
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        fields.insert("device".to_string(), json!(format!("{major},{minor}")));
    }
    if let Some(records) = entry.pax_extensions()? {
        for record in records {
            let record = record?;
            let key = String::from_utf8_lossy(record.key_bytes()).into_owned();
            if let Some(attribute) = key.strip_prefix(XATTR_PREFIX) {
                let value = hex::encode(record.value_bytes());
                fields.insert(format!("xattr {attribute}"), json!(value));
            } else if !PAX_SHOWN_ELSEWHERE.contains(&key.as_str()) {
                let value = String::from_utf8_lossy(record.value_bytes()).into_owned();
                fields.insert(format!("pax {key}"), json!(value));
            }
        }
    }
    if kind.is_file() || kind == tar::EntryType::Continuous {
        let mut hashing = DigestWriter::new(io::sink());
        io::copy(entry, &mut hashing)?;
        let (_, digest, _) = hashing.finish();
        fields.insert("content".to_string(), json!(digest.to_string()));
    }
    Ok(EntrySummary { path, fields })
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => "file".to_string(),
        tar::EntryType::Link => "hardlink".to_string(),
        tar::EntryType::Symlink => "symlink".to_string(),
        tar::EntryType::Char => "char device".to_string(),
        tar::EntryType::Block => "block device".to_string(),
        tar::EntryType::Directory => "directory".to_string(),
        tar::EntryType::Fifo => "fifo".to_string(),
        other => format!("type {}", char::from(other.as_byte())),
    }
}

fn header_format(header: &tar::Header) -> &'static str {
    if header.as_ustar().is_some() {
        "ustar"
    } else if header.as_gnu().is_some() {
        "gnu"
    } else {
        "v7"
    }
}

/// One tar entry difference: the path and what differs.
#[derive(Debug)]
pub(crate) struct EntryDifference {
    /// The entry's path; none for the order, which is about the whole layer.
    pub path: Option<String>,
    pub change: Change,
    pub cause: Option<Cause>,
}

/// Entries only one side has, fields that differ, and the first place the
/// order of the shared entries parts.
pub(crate) fn compare_entries(
    left: &[EntrySummary],
    right: &[EntrySummary],
) -> Vec<EntryDifference> {
    let by_path = |entries: &'_ [EntrySummary]| -> BTreeMap<String, usize> {
        entries
            .iter()
            .enumerate()
            .map(|(position, entry)| (entry.path.clone(), position))
            .collect()
    };
    let (left_paths, right_paths) = (by_path(left), by_path(right));
    let mut differences = Vec::new();
    let paths: BTreeSet<&String> = left_paths.keys().chain(right_paths.keys()).collect();
    for path in paths {
        match (left_paths.get(path), right_paths.get(path)) {
            (Some(&position), None) => differences.push(only_in(Side::Left, &left[position])),
            (None, Some(&position)) => differences.push(only_in(Side::Right, &right[position])),
            (Some(&left_position), Some(&right_position)) => compare_fields(
                &left[left_position],
                &right[right_position],
                &mut differences,
            ),
            (None, None) => {}
        }
    }
    differences.extend(order_difference(left, right, &left_paths, &right_paths));
    differences
}

fn only_in(side: Side, entry: &EntrySummary) -> EntryDifference {
    let item = entry
        .fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("entry")
        .to_string();
    EntryDifference {
        path: Some(entry.path.clone()),
        change: Change::OnlyIn { side, item },
        cause: None,
    }
}

fn compare_fields(left: &EntrySummary, right: &EntrySummary, out: &mut Vec<EntryDifference>) {
    let names: BTreeSet<&String> = left.fields.keys().chain(right.fields.keys()).collect();
    for name in names {
        let (left_value, right_value) = (left.fields.get(name), right.fields.get(name));
        if left_value != right_value {
            out.push(EntryDifference {
                path: Some(left.path.clone()),
                change: Change::Field {
                    field: name.clone(),
                    left: left_value.cloned(),
                    right: right_value.cloned(),
                },
                cause: None,
            });
        }
    }
}

/// The entries both sides have, in each side's order: the first position
/// where they differ, if any.
fn order_difference(
    left: &[EntrySummary],
    right: &[EntrySummary],
    left_paths: &BTreeMap<String, usize>,
    right_paths: &BTreeMap<String, usize>,
) -> Option<EntryDifference> {
    let shared = |entries: &[EntrySummary], other: &BTreeMap<String, usize>| -> Vec<String> {
        entries
            .iter()
            .filter(|entry| other.contains_key(&entry.path))
            .map(|entry| entry.path.clone())
            .collect()
    };
    let (left_order, right_order) = (shared(left, right_paths), shared(right, left_paths));
    let position = left_order
        .iter()
        .zip(&right_order)
        .position(|(left, right)| left != right)?;
    Some(EntryDifference {
        path: None,
        change: Change::Order {
            position,
            left: left_order[position].clone(),
            right: right_order[position].clone(),
        },
        cause: Some(Cause::EntryOrder),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::BytesBlob;

    fn tar(entries: &[(&str, &[u8], u32, u64)]) -> BytesBlob {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content, mode, mtime) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(*mtime);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *content).unwrap();
        }
        BytesBlob::new("application/octet-stream", builder.into_inner().unwrap())
    }

    fn fields(differences: &[EntryDifference]) -> Vec<String> {
        differences
            .iter()
            .map(|difference| match &difference.change {
                Change::Field { field, .. } => {
                    format!("{} {field}", difference.path.as_deref().unwrap_or(""))
                }
                Change::OnlyIn { side, .. } => {
                    format!("{} only {side:?}", difference.path.as_deref().unwrap_or(""))
                }
                Change::Order { left, right, .. } => format!("order {left} {right}"),
                Change::Compression { .. } => "compression".to_string(),
            })
            .collect()
    }

    #[test]
    fn names_each_field_and_entry_that_differs() {
        let left = read_entries(&tar(&[
            ("a", b"one", 0o644, 5),
            ("b", b"two", 0o644, 5),
            ("gone", b"", 0o644, 5),
        ]))
        .unwrap();
        let right = read_entries(&tar(&[
            ("a", b"one", 0o755, 5),
            ("b", b"TWO", 0o644, 9),
            ("new", b"", 0o644, 5),
        ]))
        .unwrap();
        assert_eq!(
            fields(&compare_entries(&left, &right)),
            [
                "a mode",
                "b content",
                "b mtime",
                "gone only Left",
                "new only Right"
            ]
        );
    }

    #[test]
    fn the_same_entries_in_another_order() {
        let left = read_entries(&tar(&[("a", b"", 0o644, 0), ("b", b"", 0o644, 0)])).unwrap();
        let right = read_entries(&tar(&[("b", b"", 0o644, 0), ("a", b"", 0o644, 0)])).unwrap();
        let differences = compare_entries(&left, &right);
        assert_eq!(fields(&differences), ["order a b"]);
        assert_eq!(differences[0].cause, Some(Cause::EntryOrder));
    }
}

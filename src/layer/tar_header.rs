//! The normalized tar encoding: one ustar header per entry, preceded by a PAX
//! extended header only when a value does not fit ustar (long or split-less
//! names, long link names, sizes past 8 GiB, large ids) or has no ustar field
//! (the file-capability xattr). Nothing here looks at the disk; the layer
//! writer decides every value, this module only encodes them.

use std::collections::BTreeMap;
use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

/// Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Largest value of a 7-digit octal field (uid, gid, device numbers).
const MAX_OCTAL_7: u64 = 0o777_7777;

const NAME_LENGTH: usize = 100;
const PREFIX_LENGTH: usize = 155;

/// The kinds of entries a layer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TarKind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

impl TarKind {
    fn typeflag(self) -> u8 {
        match self {
            TarKind::Regular => b'0',
            TarKind::HardLink => b'1',
            TarKind::Symlink => b'2',
            TarKind::CharDevice => b'3',
            TarKind::BlockDevice => b'4',
            TarKind::Directory => b'5',
            TarKind::Fifo => b'6',
        }
    }
}

/// Every value of one entry's header, already normalized.
#[derive(Clone, Debug)]
pub(crate) struct EntryHeader<'a> {
    /// In-image path without a leading `/`; directories end in `/`.
    pub path: &'a [u8],
    pub kind: TarKind,
    /// Symlink target or hardlink target path (empty otherwise).
    pub link_name: &'a [u8],
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Content size; zero for everything but regular files.
    pub size: u64,
    pub device_major: u64,
    pub device_minor: u64,
    /// Value of the `security.capability` xattr, when the file has one.
    pub capability: Option<&'a [u8]>,
}

/// Writes the PAX header (when needed) and the ustar header of one entry.
/// The caller writes `size` bytes of content and then [`write_padding`].
pub(crate) fn write_header(out: &mut impl Write, entry: &EntryHeader<'_>) -> io::Result<()> {
    let mut records: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut header = tar::Header::new_ustar();

    let split = split_ustar_path(entry.path);
    match split {
        Some((prefix, name)) => set_path_fields(&mut header, prefix, name),
        None => {
            records.insert("path", entry.path.to_vec());
            // Old readers that ignore PAX still see a recognizable name.
            let truncated = &entry.path[..entry.path.len().min(NAME_LENGTH)];
            set_path_fields(&mut header, b"", truncated);
        }
    }

    if entry.link_name.len() <= NAME_LENGTH {
        set_link_field(&mut header, entry.link_name);
    } else {
        records.insert("linkpath", entry.link_name.to_vec());
        set_link_field(&mut header, &entry.link_name[..NAME_LENGTH]);
    }
    let binary_names = [records.get("path"), records.get("linkpath")]
        .into_iter()
        .flatten()
        .any(|value| std::str::from_utf8(value).is_err());
    if binary_names {
        // Without this, readers may try to convert the names from UTF-8.
        records.insert("hdrcharset", b"BINARY".to_vec());
    }

    header.set_mode(entry.mode & 0o7777);
    set_number(&mut header, &mut records, Field::Uid, entry.uid);
    set_number(&mut header, &mut records, Field::Gid, entry.gid);
    set_number(&mut header, &mut records, Field::Size, entry.size);
    set_number(&mut header, &mut records, Field::Mtime, entry.mtime);
    header.set_entry_type(tar::EntryType::new(entry.kind.typeflag()));
    if matches!(entry.kind, TarKind::CharDevice | TarKind::BlockDevice) {
        set_number(
            &mut header,
            &mut records,
            Field::DeviceMajor,
            entry.device_major,
        );
        set_number(
            &mut header,
            &mut records,
            Field::DeviceMinor,
            entry.device_minor,
        );
    }
    if let Some(capability) = entry.capability {
        records.insert("SCHILY.xattr.security.capability", capability.to_vec());
    }
    header.set_cksum();

    if !records.is_empty() {
        write_pax_header(out, entry.path, &records)?;
    }
    out.write_all(header.as_bytes())
}

/// Zero bytes that round `size` up to a whole block.
pub(crate) fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let remainder = (size % BLOCK as u64) as usize;
    if remainder != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - remainder])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn write_end(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

#[derive(Clone, Copy)]
enum Field {
    Uid,
    Gid,
    Size,
    Mtime,
    DeviceMajor,
    DeviceMinor,
}

/// Sets a numeric ustar field, or leaves it zero and adds a PAX record when
/// the value does not fit its octal digits (never the base-256 GNU form).
fn set_number(
    header: &mut tar::Header,
    records: &mut BTreeMap<&'static str, Vec<u8>>,
    field: Field,
    value: u64,
) {
    let (limit, key) = match field {
        Field::Uid => (MAX_OCTAL_7, "uid"),
        Field::Gid => (MAX_OCTAL_7, "gid"),
        Field::Size => (MAX_OCTAL_11, "size"),
        Field::Mtime => (MAX_OCTAL_11, "mtime"),
        Field::DeviceMajor => (MAX_OCTAL_7, "SCHILY.devmajor"),
        Field::DeviceMinor => (MAX_OCTAL_7, "SCHILY.devminor"),
    };
    let stored = if value > limit {
        records.insert(key, value.to_string().into_bytes());
        0
    } else {
        value
    };
    match field {
        Field::Uid => header.set_uid(stored),
        Field::Gid => header.set_gid(stored),
        Field::Size => header.set_size(stored),
        Field::Mtime => header.set_mtime(stored),
        // Both fit 7 octal digits here, so these cannot fail.
        Field::DeviceMajor => {
            let _ = header.set_device_major(stored as u32);
        }
        Field::DeviceMinor => {
            let _ = header.set_device_minor(stored as u32);
        }
    }
}

fn set_path_fields(header: &mut tar::Header, prefix: &[u8], name: &[u8]) {
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.name[..name.len()].copy_from_slice(name);
        ustar.prefix[..prefix.len()].copy_from_slice(prefix);
    }
}

fn set_link_field(header: &mut tar::Header, link_name: &[u8]) {
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.linkname[..link_name.len()].copy_from_slice(link_name);
    }
}

/// Splits a path into ustar's prefix and name fields, preferring no prefix
/// and otherwise the longest prefix; `None` when no split fits.
pub(crate) fn split_ustar_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME_LENGTH {
        return Some((&[], path));
    }
    if path.len() > PREFIX_LENGTH + 1 + NAME_LENGTH {
        return None;
    }
    (1..path.len().min(PREFIX_LENGTH + 1))
        .rev()
        .filter(|&index| path[index] == b'/')
        .map(|index| (&path[..index], &path[index + 1..]))
        .find(|(_, name)| !name.is_empty() && name.len() <= NAME_LENGTH)
}

/// One `length key=value\n` record, whose length counts its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut total = base + 1;
    while base + decimal_digits(total) != total {
        total = base + decimal_digits(total);
    }
    let mut record = format!("{total} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

fn decimal_digits(mut value: usize) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

fn write_pax_header(
    out: &mut impl Write,
    path: &[u8],
    records: &BTreeMap<&'static str, Vec<u8>>,
) -> io::Result<()> {
    let body: Vec<u8> = records
        .iter()
        .flat_map(|(key, value)| pax_record(key, value))
        .collect();
    let mut header = tar::Header::new_ustar();
    // Named like Go's archive/tar does (`dir/PaxHeaders.0/file`): fixed, so
    // no process id reaches the bytes the way GNU tar's default would.
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (directory, file) = match trimmed.iter().rposition(|&byte| byte == b'/') {
        Some(index) => (&trimmed[..=index], &trimmed[index + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut name = directory.to_vec();
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(file);
    name.truncate(NAME_LENGTH);
    set_path_fields(&mut header, b"", &name);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(body.len() as u64);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(&body)?;
    write_padding(out, body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn regular<'a>(path: &'a [u8], size: u64) -> EntryHeader<'a> {
        EntryHeader {
            path,
            kind: TarKind::Regular,
            link_name: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size,
            device_major: 0,
            device_minor: 0,
            capability: None,
        }
    }

    /// An archive of `entries`, each followed by `size` bytes of `x`.
    fn archive(entries: &[EntryHeader<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            write_header(&mut out, entry).unwrap();
            out.extend(std::iter::repeat_n(b'x', entry.size as usize));
            write_padding(&mut out, entry.size).unwrap();
        }
        write_end(&mut out).unwrap();
        out
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        assert_eq!(pax_record("path", b"ab"), b"11 path=ab\n");
        // 3 + 4 + 1 + 92 = 100 bytes would make the length three digits long.
        let value = vec![b'v'; 90];
        let record = pax_record("path", &value);
        let length: usize =
            std::str::from_utf8(&record[..record.iter().position(|&b| b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
        assert_eq!(length, record.len());
    }

    #[test]
    fn short_paths_need_no_pax() {
        let bytes = archive(&[regular(b"etc/hostname", 3)]);
        // header + one data block + end marker: no extended header.
        assert_eq!(bytes.len(), BLOCK * 4);
        let mut reader = tar::Archive::new(&bytes[..]);
        let mut entries = reader.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(&*entry.path_bytes(), b"etc/hostname");
        assert!(entry.pax_extensions().unwrap().is_none());
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        assert_eq!(content, "xxx");
        assert_eq!(entry.header().username_bytes(), Some(&b""[..]));
    }

    #[test]
    fn long_paths_split_into_prefix_before_pax() {
        let path = format!("{}/{}", "d".repeat(150), "f".repeat(90));
        let bytes = archive(&[regular(path.as_bytes(), 0)]);
        assert_eq!(bytes.len(), BLOCK * 3, "split path needs no PAX header");
        let mut reader = tar::Archive::new(&bytes[..]);
        let entry = reader.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*entry.path_bytes(), path.as_bytes());
    }

    #[test]
    fn unsplittable_paths_and_long_links_go_to_pax() {
        let long_name = "n".repeat(180);
        let link = format!("target/{}", "t".repeat(120));
        let mut entry = regular(long_name.as_bytes(), 0);
        entry.kind = TarKind::Symlink;
        entry.link_name = link.as_bytes();
        let bytes = archive(&[entry]);
        let mut reader = tar::Archive::new(&bytes[..]);
        let mut read = reader.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*read.path_bytes(), long_name.as_bytes());
        assert_eq!(&*read.link_name_bytes().unwrap(), link.as_bytes());
        let keys: Vec<String> = read
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|record| record.unwrap().key().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["linkpath", "path"]);
    }

    #[test]
    fn non_utf8_long_names_are_marked_binary() {
        let mut name = vec![b'a'; 200];
        name[10] = 0xff;
        let bytes = archive(&[regular(&name, 0)]);
        let mut reader = tar::Archive::new(&bytes[..]);
        let mut read = reader.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*read.path_bytes(), &name[..]);
        let records: Vec<(String, Vec<u8>)> = read
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|record| {
                let record = record.unwrap();
                (
                    record.key().unwrap().to_string(),
                    record.value_bytes().to_vec(),
                )
            })
            .collect();
        assert_eq!(records[0], ("hdrcharset".to_string(), b"BINARY".to_vec()));
    }

    #[test]
    fn huge_sizes_and_ids_use_pax_not_base256() {
        let size = 9 * 1024 * 1024 * 1024u64;
        let mut entry = regular(b"big", size);
        entry.uid = 5_000_000;
        let mut out = Vec::new();
        write_header(&mut out, &entry).unwrap();
        // Read just the headers back: the PAX header and its body, then the entry.
        let pax = tar::Header::from_byte_slice(&out[..BLOCK]);
        assert_eq!(pax.entry_type(), tar::EntryType::XHeader);
        let body_size = pax.size().unwrap() as usize;
        let body = std::str::from_utf8(&out[BLOCK..BLOCK + body_size]).unwrap();
        assert_eq!(body, "19 size=9663676416\n15 uid=5000000\n");
        let ustar = tar::Header::from_byte_slice(&out[out.len() - BLOCK..]);
        assert_eq!(ustar.as_ustar().unwrap().size, *b"00000000000\0");
        assert_eq!(ustar.uid().unwrap(), 0);
    }

    #[test]
    fn capability_goes_to_a_schily_record() {
        let mut entry = regular(b"bin/ping", 0);
        entry.capability = Some(b"\x01\x00\x00\x02");
        let bytes = archive(&[entry]);
        let mut reader = tar::Archive::new(&bytes[..]);
        let mut read = reader.entries().unwrap().next().unwrap().unwrap();
        let record = read
            .pax_extensions()
            .unwrap()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(record.key().unwrap(), "SCHILY.xattr.security.capability");
        assert_eq!(record.value_bytes(), b"\x01\x00\x00\x02");
    }

    #[test]
    fn split_prefers_no_prefix_then_longest_prefix() {
        assert_eq!(split_ustar_path(b"a/b"), Some((&b""[..], &b"a/b"[..])));
        let path = format!("{}/{}/{}", "a".repeat(60), "b".repeat(60), "c".repeat(10));
        let (prefix, name) = split_ustar_path(path.as_bytes()).unwrap();
        assert_eq!(name, "c".repeat(10).as_bytes());
        assert_eq!(prefix.len(), 121);
        // A directory whose last component alone is too long cannot split.
        let directory = format!("{}/{}/", "a".repeat(10), "b".repeat(100));
        assert_eq!(split_ustar_path(directory.as_bytes()), None);
    }
}

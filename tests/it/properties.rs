//! Property-based tests of every parser that reads what a user or a
//! stranger wrote: the spec, image references, OCI layouts, OCI and docker
//! archives, and the layer tars the SBOM step reads. Whatever the input, each
//! returns a value or an error; a panic fails the property, and proptest
//! shrinks it to a small case, which is then kept as a unit test next to the
//! code it broke. Case counts are small so that the suite stays fast in debug
//! builds; every run draws new cases.

mod documents;
mod layers;
mod sources;
mod spec;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` cases (or `PROPTEST_CASES`, for a longer hunt), and no
/// regression files written into the source tree: found cases become unit
/// tests instead.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A tar member as a hostile writer could make it: any name and link text
/// (no validation, unlike `tar::Builder::append_data`), any type byte, and a
/// size field that may lie about the bytes that follow.
#[derive(Clone, Debug)]
struct TarMember {
    name: String,
    link: String,
    kind: u8,
    mode: u32,
    data: Vec<u8>,
    declared_size: Option<u64>,
}

impl TarMember {
    fn file(name: impl Into<String>, data: Vec<u8>) -> TarMember {
        TarMember {
            name: name.into(),
            link: String::new(),
            kind: b'0',
            mode: 0o644,
            data,
            declared_size: None,
        }
    }
}

/// The bytes of a tar archive holding `members`, written header by header.
fn tar_bytes(members: &[TarMember]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        let old = header.as_old_mut();
        let name = member.name.as_bytes();
        let name_length = name.len().min(old.name.len());
        old.name[..name_length].copy_from_slice(&name[..name_length]);
        let link = member.link.as_bytes();
        let link_length = link.len().min(old.linkname.len());
        old.linkname[..link_length].copy_from_slice(&link[..link_length]);
        header.set_entry_type(tar::EntryType::new(member.kind));
        header.set_mode(member.mode);
        header.set_size(member.declared_size.unwrap_or(member.data.len() as u64));
        header.set_cksum();
        builder
            .append(&header, member.data.as_slice())
            .expect("writing to a Vec cannot fail");
    }
    builder.into_inner().expect("writing to a Vec cannot fail")
}

/// Overwrites bytes of `bytes` at the given positions (taken modulo its
/// length): a valid archive made slightly wrong reaches deeper than noise.
fn corrupt(mut bytes: Vec<u8>, changes: &[(usize, u8)]) -> Vec<u8> {
    if !bytes.is_empty() {
        let length = bytes.len();
        for (position, value) in changes {
            bytes[position % length] = *value;
        }
    }
    bytes
}

/// Names a hostile archive might use: the ones readers look for, traversal,
/// whiteouts, absolute paths and noise.
fn member_name() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "manifest.json",
        "index.json",
        "oci-layout",
        "./manifest.json",
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "a/.wh..wh..opq",
        ".wh.etc",
        "../../etc/passwd",
        "/etc/passwd",
        "a//b/./c/..",
        "",
    ])
    .prop_map(str::to_string);
    prop_oneof![6 => known, 1 => "[a-z./]{0,20}", 1 => "\\PC{0,12}"]
}

/// One PAX extended-header record, its length prefix right, with the keys
/// that change how a reader sees the entry after it.
fn pax_record() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "path",
        "linkpath",
        "size",
        "uid",
        "mtime",
        "GNU.sparse.size",
        "GNU.sparse.map",
        "GNU.sparse.major",
        "GNU.sparse.minor",
        "GNU.sparse.realsize",
        "SCHILY.xattr.security.capability",
    ]);
    let value = prop_oneof![
        Just("18446744073709551615".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("0,10,20,5".to_string()),
        Just("../../etc/passwd".to_string()),
        "[0-9,.]{0,12}",
        "\\PC{0,12}",
    ];
    (key, value).prop_map(|(key, value)| {
        let body = format!(" {key}={value}\n");
        // The length counts its own digits: try each digit count.
        let length = (1..=6)
            .map(|digits| body.len() + digits)
            .find(|total| total.to_string().len() + body.len() == *total)
            .unwrap_or(body.len() + 1);
        format!("{length}{body}").into_bytes()
    })
}

/// A member of any type, including links, long-name and PAX records.
fn tar_member() -> impl Strategy<Value = TarMember> {
    let kind = prop_oneof![
        Just(b'0'),
        Just(b'1'),
        Just(b'2'),
        Just(b'3'),
        Just(b'5'),
        Just(b'6'),
        Just(b'L'),
        Just(b'K'),
        Just(b'x'),
        Just(b'g'),
        Just(b'S'),
        any::<u8>(),
    ];
    let data = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        "\\PC{0,80}".prop_map(String::into_bytes),
        prop::collection::vec(pax_record(), 1..4).prop_map(|records| records.concat()),
    ];
    let declared_size = prop::option::weighted(0.1, 0u64..100_000);
    (
        member_name(),
        member_name(),
        kind,
        0u32..0o10000,
        data,
        declared_size,
    )
        .prop_map(|(name, link, kind, mode, data, declared_size)| TarMember {
            name,
            link,
            kind,
            mode,
            data,
            declared_size,
        })
}

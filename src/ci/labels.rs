//! OCI labels and annotations from the revision
//! (`org.opencontainers.image.*`), and the inputs digest label that lets a
//! later build see that nothing changed. The caller merges these under the
//! spec's own labels, so the spec always wins.

use super::CiError;
use super::revision::Revision;
use crate::oci::{Digest, sha256_digest};
use std::collections::BTreeMap;

/// Label holding [`inputs_digest`]: equal values mean equal inputs, so a
/// rebuild can be skipped.
pub const INPUTS_DIGEST_LABEL: &str = "dev.hoist.inputs.digest";

/// What the spec knows about the image itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageLabels<'a> {
    /// `org.opencontainers.image.title`, usually the image name.
    pub title: Option<&'a str>,
    /// `org.opencontainers.image.version`; defaults to the version being
    /// released (`1.2.3` from `v1.2.3`).
    pub version: Option<&'a str>,
    /// `org.opencontainers.image.ref.name`, usually the first tag.
    pub ref_name: Option<&'a str>,
    /// The base image reference as the spec names it.
    pub base_name: Option<&'a str>,
    pub base_digest: Option<&'a Digest>,
}

/// The `org.opencontainers.image.*` labels for an image built from
/// `revision`. `created` is `epoch` (the build's `SOURCE_DATE_EPOCH`) in
/// RFC 3339, never the clock, so the labels hash the same on every rebuild.
/// Labels without a value are left out rather than set empty.
pub fn standard_labels(
    revision: &Revision,
    epoch: i64,
    image: &ImageLabels,
) -> Result<BTreeMap<String, String>, CiError> {
    let created =
        crate::oci::time::rfc3339(epoch).ok_or(CiError::TimeOutOfRange { seconds: epoch })?;
    let version = image
        .version
        .map(str::to_string)
        .or_else(|| revision.version.as_ref().map(ToString::to_string));
    let entries = [
        ("created", Some(created)),
        ("revision", revision.commit.clone()),
        ("source", revision.source_url.clone()),
        ("url", revision.source_url.clone()),
        ("version", version),
        ("title", image.title.map(str::to_string)),
        ("ref.name", image.ref_name.map(str::to_string)),
        ("base.name", image.base_name.map(str::to_string)),
        ("base.digest", image.base_digest.map(ToString::to_string)),
    ];
    Ok(entries
        .into_iter()
        .filter_map(|(key, value)| {
            value
                .filter(|value| !value.is_empty())
                .map(|value| (format!("org.opencontainers.image.{key}"), value))
        })
        .collect())
}

/// One input file as the change detector sees it: its path relative to its
/// source root and a fingerprint the caller chooses (content digest plus
/// mode, for example). Never an mtime: checkouts change those.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceFingerprint {
    pub path: String,
    pub fingerprint: String,
}

/// A digest over everything that decides an image: the spec's section for
/// it (as bytes), the input files' fingerprints (in any order: they are
/// sorted here) and the base image digest. Stored as
/// [`INPUTS_DIGEST_LABEL`]; when a published image carries the same value,
/// the inputs are unchanged.
pub fn inputs_digest(
    spec_section: &[u8],
    sources: &[SourceFingerprint],
    base: Option<&Digest>,
) -> Digest {
    let mut sorted: Vec<&SourceFingerprint> = sources.iter().collect();
    sorted.sort();
    // Every field is length-prefixed, so no two different inputs can give the
    // same byte stream (a path ending where a fingerprint begins, say).
    let mut buffer = Vec::with_capacity(64 + sources.len() * 96 + spec_section.len());
    buffer.extend_from_slice(b"hoist inputs v1\0");
    push_field(&mut buffer, spec_section);
    push_field(
        &mut buffer,
        base.map(|digest| digest.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    buffer.extend_from_slice(&(sorted.len() as u64).to_be_bytes());
    for source in sorted {
        push_field(&mut buffer, source.path.as_bytes());
        push_field(&mut buffer, source.fingerprint.as_bytes());
    }
    sha256_digest(&buffer)
}

fn push_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    buffer.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::environment::CiEvent;

    fn fingerprint(path: &str, fingerprint: &str) -> SourceFingerprint {
        SourceFingerprint {
            path: path.to_string(),
            fingerprint: fingerprint.to_string(),
        }
    }

    #[test]
    fn labels_from_a_release() {
        let revision = Revision {
            event: CiEvent::Tag,
            commit: Some("3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b".to_string()),
            tag: Some("v1.2.3".to_string()),
            version: Some(semver::Version::new(1, 2, 3)),
            source_url: Some("https://github.com/org/repo".to_string()),
            ..Revision::default()
        };
        let base = sha256_digest(b"base");
        let labels = standard_labels(
            &revision,
            1_700_000_000,
            &ImageLabels {
                title: Some("web"),
                ref_name: Some("1.2.3"),
                base_name: Some("docker.io/library/debian:bookworm"),
                base_digest: Some(&base),
                ..ImageLabels::default()
            },
        )
        .unwrap();
        let expected: BTreeMap<String, String> = [
            ("created", "2023-11-14T22:13:20Z".to_string()),
            (
                "revision",
                "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b".to_string(),
            ),
            ("source", "https://github.com/org/repo".to_string()),
            ("url", "https://github.com/org/repo".to_string()),
            ("version", "1.2.3".to_string()),
            ("title", "web".to_string()),
            ("ref.name", "1.2.3".to_string()),
            ("base.name", "docker.io/library/debian:bookworm".to_string()),
            ("base.digest", base.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (format!("org.opencontainers.image.{key}"), value))
        .collect();
        assert_eq!(labels, expected);
    }

    #[test]
    fn labels_without_git_have_only_created() {
        let labels = standard_labels(&Revision::default(), 0, &ImageLabels::default()).unwrap();
        assert_eq!(labels.len(), 1);
        assert_eq!(
            labels["org.opencontainers.image.created"],
            "1970-01-01T00:00:00Z"
        );
        assert!(standard_labels(&Revision::default(), i64::MAX, &ImageLabels::default()).is_err());
    }

    #[test]
    fn inputs_digest_ignores_order_and_sees_every_change() {
        let base = sha256_digest(b"base");
        let files = [fingerprint("a", "1"), fingerprint("b", "2")];
        let reversed = [fingerprint("b", "2"), fingerprint("a", "1")];
        let reference = inputs_digest(b"[image]", &files, Some(&base));
        assert_eq!(reference, inputs_digest(b"[image]", &reversed, Some(&base)));
        let variants = [
            inputs_digest(b"[image] ", &files, Some(&base)),
            inputs_digest(b"[image]", &files[..1], Some(&base)),
            inputs_digest(b"[image]", &files, None),
            inputs_digest(
                b"[image]",
                &[fingerprint("a", "1"), fingerprint("b", "3")],
                Some(&base),
            ),
            // Moving a byte between path and fingerprint must change the digest.
            inputs_digest(
                b"[image]",
                &[fingerprint("a1", ""), fingerprint("b", "2")],
                Some(&base),
            ),
        ];
        for variant in variants {
            assert_ne!(variant, reference);
        }
        // Pinned (computed independently with Python's hashlib and struct):
        // a change here changes every published inputs label.
        let pinned = inputs_digest(
            b"[image]\nname = \"web\"\n",
            &[
                fingerprint("app/run", "0755 sha256:abc"),
                fingerprint("app/lib.so", "0644 sha256:def"),
            ],
            Some(&base),
        );
        assert_eq!(
            pinned.to_string(),
            "sha256:62e40d50d4e11191d98f6f813a34721fcc19379447a2bfc10d54e6f6480c5036"
        );
        assert_eq!(
            inputs_digest(b"", &[], None).to_string(),
            "sha256:65cac7f0d424fcba064d1903034310da567e717c1d12eda45ac48e6ed365b8d4"
        );
    }
}

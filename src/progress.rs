//! Events the pipeline reports as it goes. The library never prints: the CLI
//! turns these into progress bars or lines, and with `--json` prints each as
//! it serializes (`{"event": "<kind>", ...}`), so the JSON is defined here.

use crate::oci::Digest;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A layer is being built for an image and platform.
    LayerStarted {
        image: String,
        platform: String,
        layer: String,
    },
    /// A layer is done; `cached` when it came from the layer cache, local
    /// or in a registry, and `from_registry` when from the registry's:
    /// then nothing was compressed.
    LayerDone {
        image: String,
        platform: String,
        layer: String,
        digest: Digest,
        size: u64,
        cached: bool,
        from_registry: bool,
    },
    /// `--cache-to`: the registry cache `repository` now says that the
    /// content `key` builds the layer `digest`.
    LayerCacheRecorded {
        repository: String,
        key: String,
        digest: Digest,
    },
    /// A blob's content is being read for a sink (an upload or a copy);
    /// `bytes` is how much of it has been read so far on this attempt.
    BlobProgress {
        digest: Digest,
        bytes: u64,
        size: u64,
    },
    /// A blob reached a sink.
    #[serde(rename = "blob")]
    BlobDone {
        digest: Digest,
        size: u64,
        outcome: BlobOutcome,
    },
    /// A non-fatal problem worth telling the user (a skipped socket, a cataloger that failed).
    Warning { message: String },
    /// `hoist scan`: the OSV database is open; `newest_modified` says how current it is.
    ScanDatabaseOpened {
        records: usize,
        withdrawn: usize,
        newest_modified: Option<String>,
        cached: bool,
    },
    /// `hoist scan`: one platform image (or the directory) was matched.
    ScanPlatformMatched {
        platform: Option<String>,
        packages: usize,
        findings: usize,
    },
    /// `--changed` or `skip-unchanged`: the image at `target` was built from
    /// the same `inputs`, so it is not built again.
    #[serde(rename = "skipped")]
    ImageUnchanged {
        image: String,
        target: String,
        inputs: Digest,
        digest: Digest,
    },
    /// `--changed` or `skip-unchanged`: the image at `target` was built from
    /// other inputs (or is not there), so it is built.
    #[serde(rename = "changed")]
    ImageChanged {
        image: String,
        target: String,
        inputs: Digest,
    },
    /// One platform of an image is built (not yet written anywhere).
    #[serde(rename = "image")]
    ImageBuilt {
        image: String,
        platform: String,
        digest: Digest,
        size: u64,
        layers: usize,
    },
    /// An image reached an output; the counts are of its blobs.
    #[serde(rename = "output")]
    ImageWritten {
        image: String,
        output: String,
        /// The output is a registry (a push).
        registry: bool,
        digest: Digest,
        tags: Vec<String>,
        uploaded: usize,
        bytes: u64,
        mounted: usize,
        existed: usize,
        /// Of those, uploaded while the image was built.
        streamed: usize,
    },
    /// An image `--changed` skipped now has this run's `tags` too: a copy of
    /// its manifest under each, no blob moved.
    #[serde(rename = "retagged")]
    ImageRetagged {
        image: String,
        repository: String,
        digest: Digest,
        tags: Vec<String>,
    },
    /// A dry run: what a push would have pushed.
    WouldPush {
        image: String,
        repository: String,
        digest: Digest,
        tags: Vec<String>,
    },
    /// `hoist copy`: an image or index reached its destination; the counts
    /// are of its blobs.
    #[serde(rename = "copied")]
    ImageCopied {
        source: String,
        destination: String,
        uploaded: usize,
        bytes: u64,
        mounted: usize,
        existed: usize,
    },
    /// `hoist sign`: a cosign signature of `digest`, naming `identity`,
    /// is stored as the signature image `signature`.
    #[serde(rename = "signed")]
    ImageSigned {
        digest: Digest,
        identity: String,
        signature: Digest,
    },
    /// `hoist verify`: the signature in `layer` vouches for `digest`,
    /// signed for `identity`, with the payload's `optional` claims.
    #[serde(rename = "verified")]
    SignatureVerified {
        digest: Digest,
        identity: String,
        layer: Digest,
        claims: Option<serde_json::Value>,
    },
    /// `hoist attestations`: a document attached to the platform image
    /// `subject`, in the index (`form` `index`, as BuildKit attaches it) or
    /// as a `referrer`, of `kind` (its predicate or artifact type).
    #[serde(rename = "attestation")]
    AttestationFound {
        subject: Digest,
        form: String,
        kind: String,
        digest: Digest,
    },
    /// `hoist login`: the credentials for `registry` were accepted and
    /// stored in `path`.
    LoggedIn { registry: String, path: String },
    /// `hoist logout`: the credentials for `registry` were `removed`, or
    /// none were stored.
    LoggedOut { registry: String, removed: bool },
    /// `hoist cache prune`: the least recently used layers were removed.
    CachePruned {
        directory: String,
        removed_entries: u64,
        removed_bytes: u64,
        remaining_bytes: u64,
    },
    /// `hoist cache prune`: the scan indexes in `directory` that no scan
    /// used lately, or of an older format, were removed.
    ScanCachePruned {
        directory: String,
        removed_files: u64,
        removed_bytes: u64,
        remaining_files: u64,
        remaining_bytes: u64,
    },
    /// `hoist tag`: `reference` now points at `digest`.
    Tagged { reference: String, digest: Digest },
    /// `hoist delete` or `hoist prune`: the API `repository` is listed and
    /// deleted through (`github`, `dockerhub`, `ecr`, `distribution`),
    /// whether `--registry-api` `asked` for it, and what images are dated
    /// by: the registry's `push-time`, or the image config's `created`.
    #[serde(rename = "registry-api")]
    RegistryApiUsed {
        repository: String,
        api: String,
        asked: bool,
        dated_by: String,
    },
    /// `hoist prune`: a matching tag stays, and why.
    #[serde(rename = "kept")]
    TagKept { tag: String, reason: String },
    /// `hoist delete` or `hoist prune`: a manifest was deleted.
    #[serde(rename = "deleted")]
    ManifestDeleted(DeletedManifest),
    /// `hoist prune --dry-run`: a manifest a prune would delete.
    WouldDelete(DeletedManifest),
    /// A referrer to delete was gone already, deleted with its subject by
    /// the registry. A line for people only: `--json` leaves it out.
    ReferrerGone(DeletedManifest),
    /// The digest a command ends in (`build`, `copy`): the last event.
    Done { digest: String },
}

/// A manifest `hoist delete` or `hoist prune` deleted: by the `reference`
/// it was named with (`delete`) or with the `tags` that went with it
/// (`prune`), and for an attachment, what it was `attached-to` and the
/// subject it is a `referrer-of`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeletedManifest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_of: Option<Digest>,
    /// A platform or attestation manifest of this deleted index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_of: Option<Digest>,
}

impl DeletedManifest {
    /// `digest`, with nothing else said of it.
    pub fn of(digest: Digest) -> Self {
        DeletedManifest {
            reference: None,
            digest,
            tags: None,
            attached_to: None,
            referrer_of: None,
            child_of: None,
        }
    }
}

/// How a blob reached a sink. Defined here, below `image`, because both
/// [`Event::BlobDone`] and the `Sink` trait of `image::publish` speak of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobOutcome {
    Uploaded,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// The sink had it already.
    #[serde(rename = "skipped")]
    Existed,
}

/// Receives events; implementations must be cheap and thread-safe.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

/// Discards every event.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: Event) {}
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: Event) {
        // A test that panicked while holding the lock already failed.
        let mut events = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        events.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialize_as_their_json_lines() {
        let digest = crate::oci::sha256_digest(b"blob");
        let blob = serde_json::to_value(Event::BlobDone {
            digest: digest.clone(),
            size: 4,
            outcome: BlobOutcome::Existed,
        })
        .unwrap();
        assert_eq!(
            blob,
            json!({"event": "blob", "digest": digest.to_string(), "size": 4, "outcome": "skipped"})
        );
        let layer = serde_json::to_value(Event::LayerStarted {
            image: "app".into(),
            platform: "linux/amd64".into(),
            layer: "bin".into(),
        })
        .unwrap();
        assert_eq!(layer["event"], "layer-started");
        let pruned = serde_json::to_value(Event::CachePruned {
            directory: "/cache".into(),
            removed_entries: 1,
            removed_bytes: 2,
            remaining_bytes: 3,
        })
        .unwrap();
        assert_eq!(pruned["event"], "cache-pruned");
        assert_eq!(pruned["removed_entries"], 1);
        let scan_pruned = serde_json::to_value(Event::ScanCachePruned {
            directory: "/cache/scan".into(),
            removed_files: 1,
            removed_bytes: 2,
            remaining_files: 3,
            remaining_bytes: 4,
        })
        .unwrap();
        assert_eq!(
            scan_pruned,
            json!({"event": "scan-cache-pruned", "directory": "/cache/scan", "removed_files": 1,
                "removed_bytes": 2, "remaining_files": 3, "remaining_bytes": 4})
        );
        let deleted = serde_json::to_value(Event::ManifestDeleted(DeletedManifest {
            reference: Some("localhost/app:1".into()),
            attached_to: Some(digest.clone()),
            ..DeletedManifest::of(digest.clone())
        }))
        .unwrap();
        assert_eq!(
            deleted,
            json!({"event": "deleted", "reference": "localhost/app:1", "digest": digest.to_string(), "attached-to": digest.to_string()})
        );
        let would = serde_json::to_value(Event::WouldDelete(DeletedManifest {
            tags: Some(Vec::new()),
            referrer_of: Some(digest.clone()),
            ..DeletedManifest::of(digest.clone())
        }))
        .unwrap();
        assert_eq!(
            would,
            json!({"event": "would-delete", "digest": digest.to_string(), "tags": [], "referrer-of": digest.to_string()})
        );
        for (event, name) in [
            (
                Event::ImageChanged {
                    image: "app".into(),
                    target: "t".into(),
                    inputs: digest.clone(),
                },
                "changed",
            ),
            (
                Event::Done {
                    digest: digest.to_string(),
                },
                "done",
            ),
        ] {
            assert_eq!(serde_json::to_value(event).unwrap()["event"], name);
        }
    }
}

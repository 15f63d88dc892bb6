//! `docker-archive:FILE[:REF]`: what `docker save` writes and `docker load`
//! reads: `manifest.json` (Config, RepoTags, Layers), `repositories`, the
//! config as `<hex>.json` and each layer as an uncompressed `<diff_id>.tar`.
//! Layers are uncompressed because that is what `docker save` writes and
//! what every reader of the format (docker, skopeo, podman) expects; they
//! are decompressed while streaming into the staging directory, and their
//! uncompressed digests checked against the config's diff_ids.

use super::OutputError;
use super::staging::{
    check_archive_output, content_error, parent_of, persist, sibling_prefix, stage_blob,
    staging_dir, temporary_file, write_atomically, write_tar,
};
use crate::image::publish::{BlobOutcome, ManifestRole};
use crate::image::{Blob, BytesBlob, Sink, SinkError};
use crate::oci::{Digest, DigestReader, DigestWriter, to_canonical_json};
use oci_spec::image::{Descriptor, ImageManifest};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tempfile::TempDir;

/// A docker archive being written; an existing FILE is replaced on finish.
pub struct DockerArchiveSink {
    path: PathBuf,
    /// `name[:tag]` from the location, `:latest` added where it has no tag.
    reference: Option<String>,
    work: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    work: Option<TempDir>,
    /// Layer blob digest to the digest of its uncompressed tar.
    layers: HashMap<Digest, Digest>,
    /// Blobs stored as they are (the config).
    documents: HashSet<Digest>,
    image: Option<ArchivedImage>,
    repo_tags: Vec<String>,
    finished: bool,
}

struct ArchivedImage {
    config: Digest,
    diff_ids: Vec<Digest>,
}

/// One entry of `manifest.json`.
#[derive(Serialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LayerEncoding {
    Plain,
    Gzip,
    Zstd,
}

/// How a layer media type is compressed; `None` for what is not a tar layer.
fn layer_encoding(media_type: &str) -> Option<LayerEncoding> {
    if media_type.ends_with("tar") {
        Some(LayerEncoding::Plain)
    } else if media_type.ends_with("tar+gzip") || media_type.ends_with("tar.gzip") {
        Some(LayerEncoding::Gzip)
    } else if media_type.ends_with("tar+zstd") {
        Some(LayerEncoding::Zstd)
    } else {
        None
    }
}

/// `name[:tag]` as `name:tag`, `:latest` where no tag is given. Digests are
/// refused: `docker load` tags images, it cannot pin them.
pub fn repo_tag(reference: &str) -> Result<String, OutputError> {
    let invalid = |reason| OutputError::Reference {
        reference: reference.to_string(),
        reason,
    };
    if reference.contains('@') {
        return Err(invalid(
            "a docker archive names images by tag, not by digest",
        ));
    }
    let name_end = reference.rfind('/').map_or(0, |slash| slash + 1);
    let (name, tag) = match reference[name_end..].rfind(':') {
        Some(colon) => reference.split_at(name_end + colon),
        None => (reference, ":latest"),
    };
    if name.is_empty() || name.ends_with('/') || name.contains("//") {
        return Err(invalid("the repository name is empty"));
    }
    if tag.len() < 2 {
        return Err(invalid("the tag after the colon is empty"));
    }
    if name
        .chars()
        .any(|c| c.is_ascii_uppercase() || c.is_whitespace())
    {
        return Err(invalid("repository names are lowercase, without spaces"));
    }
    Ok(format!("{name}{tag}"))
}

impl DockerArchiveSink {
    /// Prepares to write FILE; `reference` (`name[:tag]`) goes into RepoTags.
    pub fn create(path: &Path, reference: Option<String>) -> Result<DockerArchiveSink, SinkError> {
        let describe = format!("docker-archive:{}", path.display());
        let fail = |error: OutputError| SinkError::new(&describe, "opening", "", error);
        let reference = reference
            .as_deref()
            .map(repo_tag)
            .transpose()
            .map_err(fail)?;
        check_archive_output(path).map_err(fail)?;
        let work = staging_dir(&parent_of(path), &sibling_prefix(path)).map_err(fail)?;
        Ok(DockerArchiveSink {
            path: path.to_path_buf(),
            reference,
            work: work.path().to_path_buf(),
            state: Mutex::new(State {
                work: Some(work),
                ..State::default()
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn error(
        &self,
        operation: &'static str,
        target: impl ToString,
        error: OutputError,
    ) -> SinkError {
        SinkError::new(self.describe(), operation, target, error)
    }

    /// Streams a layer into `<diff_id hex>.tar`, decompressing on the way,
    /// and returns the diff_id.
    fn stage_layer(&self, blob: &dyn Blob, encoding: LayerEncoding) -> Result<Digest, OutputError> {
        if encoding == LayerEncoding::Plain {
            let target = self.work.join(format!("{}.tar", blob.digest().digest()));
            stage_blob(blob, &target)?;
            return Ok(blob.digest().clone());
        }
        let display = self.work.join(blob.digest().digest());
        let reader = blob
            .open()
            .map_err(|source| OutputError::io("reading layer for", &display, source))?;
        let mut verified = DigestReader::new(reader, blob.digest().clone(), Some(blob.size()));
        let mut file = temporary_file(&self.work)?;
        let mut writer = DigestWriter::new(BufWriter::with_capacity(1 << 20, file.as_file_mut()));
        let copied = match encoding {
            LayerEncoding::Gzip => io::copy(
                &mut flate2::read::MultiGzDecoder::new(&mut verified),
                &mut writer,
            ),
            LayerEncoding::Zstd => zstd::stream::read::Decoder::new(&mut verified)
                .and_then(|mut decoder| io::copy(&mut decoder, &mut writer)),
            LayerEncoding::Plain => io::copy(&mut verified, &mut writer),
        };
        // Read what the decoder left (padding, a trailing frame) so the
        // compressed digest is checked over every byte; and when the decoder
        // failed, read the rest too, so bytes that are not the blob's are
        // reported as such rather than as a broken stream.
        let drained = io::copy(&mut verified, &mut io::sink());
        // A digest mismatch surfaces as InvalidData carrying a DigestError.
        let failed = match (copied, drained) {
            (_, Err(mismatch)) => Some(mismatch),
            (Err(decoding), Ok(_)) => Some(decoding),
            (Ok(_), Ok(_)) => None,
        };
        if let Some(source) = failed {
            return Err(content_error(
                blob,
                "decompressing and checking layer",
                &display,
                source,
            ));
        }
        let (mut buffered, diff_id, _) = writer.finish();
        buffered
            .flush()
            .map_err(|source| OutputError::io("writing", &display, source))?;
        drop(buffered);
        persist(file, &self.work.join(format!("{}.tar", diff_id.digest())))?;
        Ok(diff_id)
    }

    fn store_blob(&self, blob: &dyn Blob) -> Result<(), OutputError> {
        if self.state().finished {
            return Err(OutputError::AlreadyFinished);
        }
        match layer_encoding(blob.descriptor().media_type().as_ref()) {
            Some(encoding) => {
                let diff_id = self.stage_layer(blob, encoding)?;
                self.state().layers.insert(blob.digest().clone(), diff_id);
            }
            None => {
                let target = self.work.join(format!("{}.json", blob.digest().digest()));
                stage_blob(blob, &target)?;
                self.state().documents.insert(blob.digest().clone());
            }
        }
        Ok(())
    }

    fn record_image(&self, manifest: &BytesBlob, tag: Option<&str>) -> Result<(), OutputError> {
        let parsed: ImageManifest =
            serde_json::from_slice(manifest.bytes()).map_err(|source| OutputError::Encode {
                what: "the image manifest",
                source,
            })?;
        let mut state = self.state();
        let config = parsed.config();
        if !state.documents.contains(config.digest()) {
            return Err(OutputError::MissingBlob {
                what: "config",
                digest: config.digest().clone(),
                media_type: config.media_type().to_string(),
            });
        }
        let mut diff_ids = Vec::with_capacity(parsed.layers().len());
        for layer in parsed.layers() {
            let diff_id =
                state
                    .layers
                    .get(layer.digest())
                    .ok_or_else(|| OutputError::MissingBlob {
                        what: "layer",
                        digest: layer.digest().clone(),
                        media_type: layer.media_type().to_string(),
                    })?;
            diff_ids.push(diff_id.clone());
        }
        check_diff_ids(
            &self.work.join(format!("{}.json", config.digest().digest())),
            &diff_ids,
        )?;
        state.image = Some(ArchivedImage {
            config: config.digest().clone(),
            diff_ids,
        });
        let mut tags: Vec<String> = self.reference.iter().cloned().collect();
        if let Some(tag) = tag {
            tags.push(self.tag_reference(tag)?);
        }
        for tag in tags {
            if !state.repo_tags.contains(&tag) {
                state.repo_tags.push(tag);
            }
        }
        Ok(())
    }

    /// A publish tag: a full `name:tag`, or a bare tag for the location's name.
    fn tag_reference(&self, tag: &str) -> Result<String, OutputError> {
        if tag.contains(':') || tag.contains('/') {
            return repo_tag(tag);
        }
        match &self.reference {
            Some(reference) => {
                let name_end = reference.rfind(':').unwrap_or(reference.len());
                repo_tag(&format!("{}:{tag}", &reference[..name_end]))
            }
            None => Err(OutputError::Reference {
                reference: tag.to_string(),
                reason: "a bare tag needs a repository name: write docker-archive:FILE:NAME[:TAG]",
            }),
        }
    }

    fn write_archive(&self, state: &State) -> Result<(), OutputError> {
        let image = state.image.as_ref().ok_or(OutputError::AlreadyFinished)?;
        let config_name = format!("{}.json", image.config.digest());
        let layer_names: Vec<String> = image
            .diff_ids
            .iter()
            .map(|diff_id| format!("{}.tar", diff_id.digest()))
            .collect();
        let manifest = [ManifestEntry {
            config: config_name.clone(),
            repo_tags: state.repo_tags.clone(),
            layers: layer_names.clone(),
        }];
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        if let Some(top) = image.diff_ids.last() {
            for repo_tag in &state.repo_tags {
                if let Some((name, tag)) = repo_tag.rsplit_once(':') {
                    repositories
                        .entry(name.to_string())
                        .or_default()
                        .insert(tag.to_string(), top.digest().to_string());
                }
            }
        }
        let manifest_bytes =
            to_canonical_json(&manifest).map_err(|source| OutputError::Encode {
                what: "manifest.json",
                source,
            })?;
        let repositories_bytes =
            to_canonical_json(&repositories).map_err(|source| OutputError::Encode {
                what: "repositories",
                source,
            })?;
        let manifest_path = self.work.join("manifest.json");
        write_atomically(&manifest_path, &manifest_bytes)?;
        let repositories_path = self.work.join("repositories");
        write_atomically(&repositories_path, &repositories_bytes)?;
        let mut entries = vec![
            ("manifest.json".to_string(), Some(manifest_path)),
            ("repositories".to_string(), Some(repositories_path)),
            (config_name.clone(), Some(self.work.join(&config_name))),
        ];
        let unique: BTreeSet<&String> = layer_names.iter().collect();
        for name in unique {
            entries.push((name.clone(), Some(self.work.join(name))));
        }
        write_tar(&self.path, entries)
    }
}

/// Checks the layers' uncompressed digests against the config's diff_ids.
fn check_diff_ids(config_path: &Path, diff_ids: &[Digest]) -> Result<(), OutputError> {
    let mut bytes = Vec::new();
    std::fs::File::open(config_path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|source| OutputError::io("reading", config_path, source))?;
    let config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| OutputError::Json {
            path: config_path.to_path_buf(),
            source,
        })?;
    let expected: Vec<String> = config
        .pointer("/rootfs/diff_ids")
        .and_then(serde_json::Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let actual: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
    if expected != actual {
        return Err(OutputError::DiffIds { expected, actual });
    }
    Ok(())
}

impl Sink for DockerArchiveSink {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        let state = self.state();
        Ok(state.layers.contains_key(descriptor.digest())
            || state.documents.contains(descriptor.digest()))
    }

    fn put_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, SinkError> {
        self.store_blob(blob)
            .map_err(|error| self.error("storing blob", blob.digest(), error))?;
        Ok(BlobOutcome::Uploaded)
    }

    fn put_manifest(&self, manifest: &BytesBlob, role: ManifestRole<'_>) -> Result<(), SinkError> {
        match role {
            ManifestRole::Child => Err(self.error(
                "storing manifest",
                manifest.digest(),
                OutputError::NotAnIndexOutput {
                    path: self.path.clone(),
                    digest: manifest.digest().clone(),
                },
            )),
            ManifestRole::Top { tag } => self
                .record_image(manifest, tag)
                .map_err(|error| self.error("storing manifest", manifest.digest(), error)),
        }
    }

    fn finish(&self) -> Result<(), SinkError> {
        let mut state = self.state();
        if state.finished {
            return Err(self.error("finishing", "", OutputError::AlreadyFinished));
        }
        state.finished = true;
        let result = self.write_archive(&state);
        if let Some(work) = state.work.take() {
            let path = work.path().to_path_buf();
            if let Err(error) = work.close() {
                tracing::warn!(
                    "could not remove staging directory {}: {error}",
                    path.display()
                );
            }
        }
        result.map_err(|error| self.error("writing", self.path.display(), error))
    }

    fn accepts_index(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_a_tag_and_digests_are_refused() {
        assert_eq!(repo_tag("app").unwrap(), "app:latest");
        assert_eq!(
            repo_tag("localhost:5000/app").unwrap(),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            repo_tag("example.com/team/app:1.2").unwrap(),
            "example.com/team/app:1.2"
        );
        assert!(repo_tag("app@sha256:abc").is_err());
        assert!(repo_tag("app:").is_err());
        assert!(repo_tag("App:1").is_err());
    }

    #[test]
    fn layer_media_types() {
        use crate::oci::media_type::*;
        assert_eq!(layer_encoding(OCI_LAYER), Some(LayerEncoding::Plain));
        assert_eq!(layer_encoding(OCI_LAYER_GZIP), Some(LayerEncoding::Gzip));
        assert_eq!(layer_encoding(DOCKER_LAYER_GZIP), Some(LayerEncoding::Gzip));
        assert_eq!(layer_encoding(OCI_LAYER_ZSTD), Some(LayerEncoding::Zstd));
        assert_eq!(layer_encoding(OCI_CONFIG), None);
    }
}

//! `hoist sbom` and `hoist attestations`, and how `hoist build` turns its
//! flags and the spec into an attestation request.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::{Context, bail};
use hoist::attest::{self, FileTree};
use hoist::build::transport::{Transports, parse_reference};
use hoist::image::{Blob, Image, Manifest};
use hoist::oci::{Digest, Location, Platform, sha256_digest};
use hoist::spec::plan::ProvenanceLevel;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `--provenance[=min|max]` as a level.
pub fn provenance_level(flag: Option<&str>) -> anyhow::Result<Option<ProvenanceLevel>> {
    match flag {
        None => Ok(None),
        Some("min" | "true") => Ok(Some(ProvenanceLevel::Min)),
        Some("max") => Ok(Some(ProvenanceLevel::Max)),
        Some(other) => {
            bail!("--provenance={other}: use --provenance, --provenance=min or --provenance=max")
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    SpdxJson,
    CyclonedxJson,
}

#[derive(Debug, clap::Args)]
pub struct SbomArguments {
    /// A directory, or an image: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:REF], docker://REF.
    target: String,
    #[arg(long, value_enum, default_value_t = SbomFormat::SpdxJson)]
    format: SbomFormat,
    /// The platform of a multi-platform image (default: the only one, else this machine's).
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Write the SBOM here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArguments,
}

/// A name, a digest and the files to catalog.
struct Target {
    name: String,
    digest: Digest,
    tree: FileTree,
}

pub fn sbom(arguments: SbomArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let jobs = super::jobs(None)?;
    let directory = Path::new(&arguments.target);
    let target = if directory.is_dir() {
        let tree = FileTree::from_directory(directory)?;
        Target {
            name: directory.file_name().map_or_else(
                || arguments.target.clone(),
                |name| name.to_string_lossy().into_owned(),
            ),
            digest: listing_digest(&tree),
            tree,
        }
    } else {
        let location: Location = arguments.target.parse().with_context(|| {
            format!(
                "`{}` is neither a directory nor an image location (oci:, oci-archive:, docker-archive:, docker://)",
                arguments.target
            )
        })?;
        let own = super::own_registries([&location], []);
        let transports = Transports::new(arguments.registry.client_options_for(jobs, &own)?);
        let manifest = transports.source(&location)?.resolve()?;
        let image = choose_image(&manifest, arguments.platform.as_deref())?;
        let tree = attest::image_files(&image.layers)?;
        Target {
            name: image_name(&location),
            digest: image.manifest.digest().clone(),
            tree,
        }
    };
    let inventory = attest::catalog(&target.tree, &reporter)?;
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => text.trim().parse::<i64>().map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH is `{text}`: it must be seconds since 1970")
        })?,
        _ => 0,
    };
    let document = match arguments.format {
        SbomFormat::SpdxJson => attest::spdx_json(&inventory, &target.name, &target.digest, epoch)?,
        SbomFormat::CyclonedxJson => {
            attest::cyclonedx_json(&inventory, &target.name, &target.digest, epoch)?
        }
    };
    write_output(arguments.output.as_deref(), &document)
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).context("writing to stdout")?;
            stdout.write_all(b"\n").context("writing to stdout")?;
            Ok(())
        }
    }
}

/// A directory has no digest; this one names its listing (paths, kinds,
/// sizes, modes), so the same tree gives the same SBOM identifiers.
fn listing_digest(tree: &FileTree) -> Digest {
    let mut listing = String::new();
    for (path, entry) in tree.iter() {
        listing.push_str(&format!(
            "{path}\t{:?}\t{}\t{:o}\n",
            entry.kind, entry.size, entry.mode
        ));
    }
    sha256_digest(listing.as_bytes())
}

/// The image name an SBOM gets for a location: the repository of a
/// registry reference, else the file or directory name.
fn image_name(location: &Location) -> String {
    match location {
        Location::Registry { reference } => parse_reference(reference)
            .map(|parsed| parsed.repository_name())
            .unwrap_or_else(|_| reference.clone()),
        Location::Layout { path, .. }
        | Location::OciArchive { path, .. }
        | Location::DockerArchive { path, .. } => path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        ),
    }
}

/// The platform images of a manifest (attestation manifests left out),
/// with their platforms where the index names them.
fn platform_images(manifest: &Manifest) -> anyhow::Result<Vec<(Option<Platform>, Image)>> {
    match manifest {
        Manifest::Image(image) => Ok(vec![(None, image.clone())]),
        Manifest::Index(index) => {
            let mut images = Vec::new();
            for (descriptor, child) in index.descriptors()?.iter().zip(&index.children) {
                let Manifest::Image(image) = child else {
                    continue;
                };
                if is_attestation(descriptor) {
                    continue;
                }
                images.push((
                    descriptor.platform().as_ref().map(Platform::from_oci),
                    image.clone(),
                ));
            }
            Ok(images)
        }
    }
}

fn is_attestation(descriptor: &oci_spec::image::Descriptor) -> bool {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(attest::attach::REFERENCE_TYPE_ANNOTATION))
        .is_some_and(|kind| kind == attest::attach::ATTESTATION_MANIFEST)
}

/// The image to catalog: the `--platform` one, else the only one, else this machine's.
fn choose_image(manifest: &Manifest, platform: Option<&str>) -> anyhow::Result<Image> {
    let wanted = match platform {
        Some(text) => Some(
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))?,
        ),
        None => None,
    };
    if let Some(wanted) = &wanted {
        return Ok(hoist::source::select_platform(manifest, wanted)?);
    }
    let images = platform_images(manifest)?;
    if let [(_, image)] = images.as_slice() {
        return Ok(image.clone());
    }
    let host = Platform::new("linux", host_architecture(), None);
    if let Some((_, image)) = images.iter().find(|(platform, _)| {
        platform
            .as_ref()
            .is_some_and(|platform| host.matches(platform))
    }) {
        return Ok(image.clone());
    }
    let listed: Vec<String> = images
        .iter()
        .filter_map(|(platform, _)| platform.as_ref().map(ToString::to_string))
        .collect();
    bail!(
        "the image has several platforms ({}): choose one with --platform",
        listed.join(", ")
    )
}

/// This machine's architecture as OCI names it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[derive(Debug, clap::Args)]
pub struct AttestationsArguments {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://REF.
    location: String,
    /// Write every attached document into this directory, one file each,
    /// named `<platform manifest hex>/<form>-<kind>-<digest hex>.json`.
    #[arg(long, value_name = "DIR")]
    extract: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArguments,
}

/// One document attached to a platform image.
struct Attached {
    subject: Digest,
    /// `index` (BuildKit style) or `referrer`.
    form: &'static str,
    /// Predicate type of a statement, else the artifact type.
    kind: String,
    blob: std::sync::Arc<dyn Blob>,
}

pub fn attestations(arguments: AttestationsArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let jobs = super::jobs(None)?;
    let location: Location = arguments
        .location
        .parse()
        .with_context(|| format!("location {}", arguments.location))?;
    let own = super::own_registries([&location], []);
    let transports = Transports::new(arguments.registry.client_options_for(jobs, &own)?);
    let manifest = transports.source(&location)?.resolve()?;
    let mut found: Vec<Attached> = Vec::new();

    // In the index, as BuildKit attaches them.
    if let Manifest::Index(index) = &manifest {
        for (descriptor, child) in index.descriptors()?.iter().zip(&index.children) {
            let (Manifest::Image(image), true) = (child, is_attestation(descriptor)) else {
                continue;
            };
            let Some(subject) = descriptor
                .annotations()
                .as_ref()
                .and_then(|annotations| {
                    annotations.get(attest::attach::REFERENCE_DIGEST_ANNOTATION)
                })
                .and_then(|text| text.parse::<Digest>().ok())
            else {
                continue;
            };
            for layer in &image.layers {
                found.push(Attached {
                    subject: subject.clone(),
                    form: "index",
                    kind: predicate_or_media_type(layer.as_ref()),
                    blob: layer.clone(),
                });
            }
        }
    }

    // As referrers of each platform manifest.
    let subjects: Vec<Digest> = platform_images(&manifest)?
        .iter()
        .map(|(_, image)| image.manifest.digest().clone())
        .collect();
    let referrers = match &location {
        Location::Layout { path, .. } => layout_referrers(path, &subjects)?,
        Location::Registry { reference } => {
            let parsed = parse_reference(reference)?;
            let client = transports.registry()?;
            let repository = client.repository(&parsed, hoist::registry::Access::PULL);
            let mut images = Vec::new();
            for subject in &subjects {
                let listed = repository
                    .referrers(subject)
                    .with_context(|| format!("listing the referrers of {subject}"))?;
                for descriptor in listed.descriptors() {
                    let source = hoist::registry::RegistrySource::new(
                        client.clone(),
                        parsed.with_digest(descriptor.digest().clone()),
                    );
                    if let Manifest::Image(image) = hoist::source::Source::resolve(&source)? {
                        images.push((subject.clone(), image));
                    }
                }
            }
            images
        }
        _ => Vec::new(),
    };
    for (subject, image) in referrers {
        let artifact_type = image
            .parsed_manifest()
            .ok()
            .and_then(|manifest| manifest.artifact_type().as_ref().map(ToString::to_string));
        for layer in &image.layers {
            let kind = layer
                .descriptor()
                .annotations()
                .as_ref()
                .and_then(|annotations| annotations.get(attest::attach::PREDICATE_TYPE_ANNOTATION))
                .cloned()
                .or_else(|| artifact_type.clone())
                .unwrap_or_else(|| layer.descriptor().media_type().to_string());
            found.push(Attached {
                subject: subject.clone(),
                form: "referrer",
                kind,
                blob: layer.clone(),
            });
        }
    }

    let mut written = std::collections::HashSet::new();
    for item in &found {
        reporter.line(&format!(
            "{} {} {} {}",
            item.subject,
            item.form,
            item.kind,
            item.blob.digest()
        ));
        if let Some(directory) = &arguments.extract {
            extract(directory, item, &mut written)?;
        }
    }
    if found.is_empty() {
        reporter.line(&format!("no attestations attached to {location}"));
    }
    Ok(())
}

/// Writes one document to `<subject hex>/<form>-<kind>-<digest hex>.json`
/// under `directory`. The digest in the name keeps two documents of one
/// kind (two SBOMs of one image) apart; a name this run already wrote is
/// refused rather than overwritten.
fn extract(
    directory: &Path,
    item: &Attached,
    written: &mut std::collections::HashSet<PathBuf>,
) -> anyhow::Result<()> {
    let folder = directory.join(item.subject.digest());
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let hex = item.blob.digest().digest();
    let name = format!(
        "{}-{}-{}.json",
        item.form,
        short_kind(&item.kind),
        &hex[..hex.len().min(DIGEST_IN_NAME)]
    );
    let path = folder.join(name);
    anyhow::ensure!(
        written.insert(path.clone()),
        "{} was already written by this run for another document; refusing to overwrite it with {}",
        path.display(),
        item.blob.digest()
    );
    let bytes = read_blob(item.blob.as_ref())?;
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Hex digits of a document's digest in its extracted file's name.
const DIGEST_IN_NAME: usize = 16;

/// The largest attached document `--extract` reads into memory.
const MAX_ATTACHED_DOCUMENT: u64 = 64 << 20;

fn predicate_or_media_type(layer: &dyn Blob) -> String {
    layer
        .descriptor()
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(attest::attach::PREDICATE_TYPE_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| layer.descriptor().media_type().to_string())
}

/// A file name for a predicate or artifact type.
fn short_kind(kind: &str) -> &'static str {
    if kind.contains("spdx") {
        "spdx"
    } else if kind.contains("cyclonedx") {
        "cyclonedx"
    } else if kind.contains("slsa.dev/provenance") {
        "provenance"
    } else {
        "other"
    }
}

/// Reads an attached document whole, checking its digest and size. One
/// larger than the limit is an error, never cut short: the checking reader
/// fails on a byte past the descriptor's size, so the whole is read or none.
fn read_blob(blob: &dyn Blob) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        blob.size() <= MAX_ATTACHED_DOCUMENT,
        "attached document {} is {} bytes, more than the {} MiB hoist reads into memory",
        blob.digest(),
        blob.size(),
        MAX_ATTACHED_DOCUMENT >> 20
    );
    let mut reader = hoist::oci::DigestReader::new(
        blob.open()
            .with_context(|| format!("opening {}", blob.digest()))?,
        blob.digest().clone(),
        Some(blob.size()),
    );
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", blob.digest()))?;
    Ok(bytes)
}

/// A manifest or config of a layout: a regular file (never a symlink
/// followed out of the layout), read up to the size a document may have.
fn read_layout_document(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = hoist::image::open_regular_file(path)?;
    let mut bytes = Vec::new();
    file.take(64 << 20)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// The artifact manifests in a layout's `index.json` whose `subject` is one
/// of `subjects` (hoist stores referrers there, untagged).
fn layout_referrers(directory: &Path, subjects: &[Digest]) -> anyhow::Result<Vec<(Digest, Image)>> {
    let index_path = directory.join("index.json");
    let index: oci_spec::image::ImageIndex = serde_json::from_slice(
        &std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| format!("{} is not an OCI index", index_path.display()))?;
    let blob_path = |digest: &Digest| {
        directory
            .join("blobs")
            .join(digest.algorithm().to_string())
            .join(digest.digest())
    };
    let mut found = Vec::new();
    for entry in index.manifests() {
        if entry.media_type() != &oci_spec::image::MediaType::ImageManifest {
            continue;
        }
        let path = blob_path(entry.digest());
        let bytes = read_layout_document(&path)?;
        anyhow::ensure!(
            &sha256_digest(&bytes) == entry.digest(),
            "{} does not match its digest: the layout is damaged",
            path.display()
        );
        let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
            continue;
        };
        let Some(subject) = manifest.subject() else {
            continue;
        };
        if !subjects.contains(subject.digest()) {
            continue;
        }
        let layers: Vec<std::sync::Arc<dyn Blob>> = manifest
            .layers()
            .iter()
            .map(|layer| {
                std::sync::Arc::new(hoist::image::FileBlob::foreign(
                    layer.clone(),
                    blob_path(layer.digest()),
                )) as std::sync::Arc<dyn Blob>
            })
            .collect();
        let config_path = blob_path(manifest.config().digest());
        let config = read_layout_document(&config_path)?;
        anyhow::ensure!(
            &sha256_digest(&config) == manifest.config().digest(),
            "{} does not match its digest: the layout is damaged",
            config_path.display()
        );
        let image = Image {
            manifest: hoist::image::BytesBlob::with_descriptor(entry.clone(), bytes),
            config: hoist::image::BytesBlob::with_descriptor(manifest.config().clone(), config),
            layers,
        };
        found.push((subject.digest().clone(), image));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_flag_values() {
        assert_eq!(provenance_level(None).unwrap(), None);
        assert_eq!(
            provenance_level(Some("min")).unwrap(),
            Some(ProvenanceLevel::Min)
        );
        assert_eq!(
            provenance_level(Some("max")).unwrap(),
            Some(ProvenanceLevel::Max)
        );
        assert!(provenance_level(Some("full")).is_err());
    }

    fn attached(bytes: &[u8]) -> Attached {
        Attached {
            subject: hoist::oci::sha256_digest(b"the image"),
            form: "referrer",
            kind: "https://spdx.dev/Document".to_string(),
            blob: std::sync::Arc::new(hoist::image::BytesBlob::new(
                "application/vnd.in-toto+json",
                bytes.to_vec(),
            )),
        }
    }

    #[test]
    fn two_documents_of_one_kind_get_two_files_and_none_is_overwritten() {
        let directory = tempfile::tempdir().unwrap();
        let mut written = std::collections::HashSet::new();
        let first = attached(b"{\"first\": 1}");
        let second = attached(b"{\"second\": 2}");
        extract(directory.path(), &first, &mut written).unwrap();
        extract(directory.path(), &second, &mut written).unwrap();
        let mut contents: Vec<Vec<u8>> = written
            .iter()
            .map(|path| std::fs::read(path).unwrap())
            .collect();
        contents.sort();
        assert_eq!(
            contents,
            [b"{\"first\": 1}".to_vec(), b"{\"second\": 2}".to_vec()]
        );
        let error = extract(directory.path(), &first, &mut written).unwrap_err();
        assert!(
            error.to_string().contains("refusing to overwrite"),
            "{error}"
        );
    }

    #[test]
    fn a_document_is_read_whole_or_refused() {
        let large = vec![b' '; (MAX_ATTACHED_DOCUMENT + 1) as usize];
        let error =
            read_blob(&hoist::image::BytesBlob::new("application/json", large)).unwrap_err();
        assert!(
            error.to_string().contains("more than the 64 MiB"),
            "{error}"
        );
        // Bytes beyond what the descriptor says are an error, not cut off.
        let short = hoist::image::BytesBlob::new("application/json", b"{}".to_vec());
        let longer =
            hoist::image::BytesBlob::with_descriptor(short.descriptor().clone(), b"{}   ".to_vec());
        assert!(read_blob(&longer).is_err());
        assert_eq!(read_blob(&short).unwrap(), b"{}");
    }

    #[test]
    fn kinds_name_files() {
        assert_eq!(short_kind("https://spdx.dev/Document"), "spdx");
        assert_eq!(short_kind("application/vnd.cyclonedx+json"), "cyclonedx");
        assert_eq!(short_kind("https://slsa.dev/provenance/v1"), "provenance");
    }
}

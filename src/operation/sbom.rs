//! `hoist sbom` as an operation: the files of a directory or of one platform
//! of an image, cataloged and written as an SPDX or CycloneDX document.
//! `SOURCE_DATE_EPOCH` sets the document's creation time, as for a build.

use super::attestations::{AttestationsError, platform_images};
use crate::attest::{self, AttestError, FileTree};
use crate::build::transport::{Transports, own_registries, parse_reference, scope_credentials};
use crate::image::{Blob, Image, Manifest};
use crate::oci::{Digest, Location, Platform, sha256_digest};
use crate::progress::Observer;
use crate::registry::ClientOptions;
use crate::source::{SourceError, select_platform};
use std::path::PathBuf;

/// What to catalog.
pub enum SbomSubject {
    Directory(PathBuf),
    /// An image; of an index, the `platform` one, else the only one, else
    /// this machine's.
    Image {
        location: Location,
        platform: Option<Platform>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    SpdxJson,
    CyclonedxJson,
}

pub struct SbomRequest {
    pub subject: SbomSubject,
    pub format: SbomFormat,
    pub registry: ClientOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Images(#[from] AttestationsError),
    #[error("the image has several platforms ({platforms}): choose one with --platform")]
    SeveralPlatforms { platforms: String },
    #[error("SOURCE_DATE_EPOCH is `{value}`: it must be seconds since 1970")]
    Epoch { value: String },
}

impl From<SourceError> for SbomError {
    fn from(error: SourceError) -> SbomError {
        SbomError::Source(Box::new(error))
    }
}

/// The SBOM document of `request.subject`; warnings of the catalogers go
/// to `observer`.
pub fn sbom(request: &SbomRequest, observer: &dyn Observer) -> Result<Vec<u8>, SbomError> {
    let (name, digest, tree) = match &request.subject {
        SbomSubject::Directory(directory) => {
            let tree = FileTree::from_directory(directory)?;
            let name = directory.file_name().map_or_else(
                || directory.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            (name, listing_digest(&tree), tree)
        }
        SbomSubject::Image { location, platform } => {
            let own = own_registries([location], []);
            let transports = Transports::new(scope_credentials(request.registry.clone(), &own));
            let manifest = transports.source(location)?.resolve()?;
            let image = choose_image(&manifest, platform.as_ref())?;
            let tree = attest::image_files(&image.layers)?;
            (image_name(location), image.manifest.digest().clone(), tree)
        }
    };
    let inventory = attest::catalog(&tree, observer)?;
    let epoch = epoch()?;
    Ok(match request.format {
        SbomFormat::SpdxJson => attest::spdx_json(&inventory, &name, &digest, epoch)?,
        SbomFormat::CyclonedxJson => attest::cyclonedx_json(&inventory, &name, &digest, epoch)?,
    })
}

/// `SOURCE_DATE_EPOCH`, else 0.
fn epoch() -> Result<i64, SbomError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => {
            text.trim().parse::<i64>().map_err(|_| SbomError::Epoch {
                value: text.clone(),
            })
        }
        _ => Ok(0),
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

/// The image to catalog: the `platform` one, else the only one, else this machine's.
fn choose_image(manifest: &Manifest, platform: Option<&Platform>) -> Result<Image, SbomError> {
    if let Some(wanted) = platform {
        return Ok(select_platform(manifest, wanted)?);
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
    Err(SbomError::SeveralPlatforms {
        platforms: listed.join(", "),
    })
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

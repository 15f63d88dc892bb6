//! `hoist copy` as an operation: an image or index read from any source and
//! published to any sink with the one publish driver, digests unchanged.

use crate::build::transport::{TransportError, Transports, destination_tag, own_registries};
use crate::image::{Manifest, SinkError, publish};
use crate::oci::{Digest, Location, Platform};
use crate::progress::{Event, Observer};
use crate::registry::ClientOptions;
use crate::source::{SourceError, select_platform};

/// What to copy where.
pub struct CopyRequest {
    pub source: Location,
    pub destination: Location,
    /// Copy only this platform's manifest instead of the whole index.
    pub platform: Option<Platform>,
    /// Worker threads for the transfers.
    pub jobs: usize,
    /// Credentials given for every registry go to the destination's (or,
    /// when it is no registry, the source's).
    pub registry: ClientOptions,
}

/// What a copy wrote.
pub struct CopyOutcome {
    /// The digest of the top manifest, the same at both ends.
    pub digest: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("destination {location}")]
    Destination {
        location: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Sink(Box<SinkError>),
    #[error("starting worker threads")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error("copying {source_location} to {destination}")]
    Publish {
        source_location: String,
        destination: String,
        #[source]
        source: Box<SinkError>,
    },
}

// Boxed, as the errors of `build::run` are: the sources' and sinks' errors
// are large, and a copy's result should not be.
impl From<SourceError> for CopyError {
    fn from(error: SourceError) -> CopyError {
        CopyError::Source(Box::new(error))
    }
}

impl From<SinkError> for CopyError {
    fn from(error: SinkError) -> CopyError {
        CopyError::Sink(Box::new(error))
    }
}

/// Copies `request.source` to `request.destination`, with the tag the
/// destination names, and reports [`Event::ImageCopied`].
pub fn copy(request: &CopyRequest, observer: &dyn Observer) -> Result<CopyOutcome, CopyError> {
    let (source, destination) = (&request.source, &request.destination);
    let tags: Vec<String> = destination_tag(destination)
        .map_err(|error| CopyError::Destination {
            location: destination.to_string(),
            source: Box::new(error),
        })?
        .into_iter()
        .collect();
    let own = own_registries([destination], [source]);
    let transports = Transports::new(crate::build::transport::scope_credentials(
        request.registry.clone(),
        &own,
    ));
    let mut manifest = transports.source(source)?.resolve()?;
    if let Some(platform) = &request.platform {
        manifest = Manifest::Image(select_platform(&manifest, platform)?);
    }
    let sink = transports.sink(destination)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(request.jobs)
        .build()?;
    let report = pool
        .install(|| publish(&manifest, sink.as_ref(), &tags, observer))
        .map_err(|error| CopyError::Publish {
            source_location: source.to_string(),
            destination: destination.to_string(),
            source: Box::new(error),
        })?;
    observer.event(Event::ImageCopied {
        source: source.to_string(),
        destination: destination.to_string(),
        uploaded: report.uploaded.len(),
        bytes: report.bytes_sent,
        mounted: report.mounted.len(),
        existed: report.existed.len(),
    });
    Ok(CopyOutcome {
        digest: manifest.digest().clone(),
    })
}

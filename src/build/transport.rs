//! Chooses the source or sink for a [`Location`]: the one place that knows
//! every transport, shared by `build` (outputs, base images) and `copy`.

use crate::image::{Sink, SinkError};
use crate::oci::Location;
use crate::sink::docker_archive::DockerArchiveSink;
use crate::sink::layout::LayoutSink;
use crate::sink::oci_archive::OciArchiveSink;
use crate::source::archive::OciArchiveSource;
use crate::source::docker_archive::DockerArchiveSource;
use crate::source::layout::LayoutSource;
use crate::source::{Source, SourceError};

/// Opens sources and sinks.
pub struct Transports {}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {}

impl Transports {
    pub fn new() -> Result<Self, TransportError> {
        Ok(Transports {})
    }

    pub fn source(&self, location: &Location) -> Result<Box<dyn Source>, SourceError> {
        Ok(match location {
            Location::Layout { path, tag } => Box::new(LayoutSource::open(path, tag.as_deref())?),
            Location::OciArchive { path, tag } => {
                Box::new(OciArchiveSource::open(path, tag.as_deref())?)
            }
            Location::DockerArchive { path, reference } => {
                Box::new(DockerArchiveSource::open(path, reference.as_deref())?)
            }
            Location::Registry { reference } => {
                return Err(SourceError::new(
                    location.to_string(),
                    "reading",
                    format!("registry references ({reference}) are not supported yet"),
                ));
            }
        })
    }

    pub fn sink(&self, location: &Location) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match location {
            Location::Layout { path, .. } => Box::new(LayoutSink::open(path)?),
            Location::OciArchive { path, .. } => Box::new(OciArchiveSink::create(path)?),
            Location::DockerArchive { path, reference } => {
                Box::new(DockerArchiveSink::create(path, reference.clone())?)
            }
            Location::Registry { .. } => {
                return Err(SinkError::new(
                    location.to_string(),
                    "writing",
                    "",
                    "registry outputs are not supported yet",
                ));
            }
        })
    }
}

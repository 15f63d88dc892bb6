//! Sources mirror sinks: they read an image or index back from an OCI layout,
//! an archive or a registry, as the same [`Manifest`] values a build makes, so
//! `hoist copy` and base images share one code path.

use crate::image::Manifest;
use std::error::Error as StdError;

/// Somewhere an image can be read from.
pub trait Source: Send + Sync {
    /// For messages: `oci:base:1.0`, `docker://debian:bookworm`.
    fn describe(&self) -> String;

    /// Reads the manifest tree the location points at, with every manifest
    /// and config verified against its digest. Layer blobs are opened lazily.
    fn resolve(&self) -> Result<Manifest, SourceError>;
}

/// A source operation that failed, naming the source and what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {operation}")]
pub struct SourceError {
    pub source_name: String,
    pub operation: String,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl SourceError {
    pub fn new(
        source_name: impl Into<String>,
        operation: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        SourceError {
            source_name: source_name.into(),
            operation: operation.into(),
            source: source.into(),
        }
    }
}

//! What can stop a build run, each failure naming the file, image or
//! reference it concerns.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "--push needs a repository for image `{image}`: set `repository = \"REGISTRY/NAME\"` in its [[image]] of {spec}"
    )]
    PushWithoutRepository { image: String, spec: String },
    #[error(
        "{location} can hold one image, but the spec builds {count} ({names}): pick one with --image NAME"
    )]
    OneImageOnly {
        location: String,
        count: usize,
        names: String,
    },
    #[error(
        "{location} holds a single-platform image, but `{image}` builds {platforms}: choose one with --platform"
    )]
    OnePlatformOnly {
        location: String,
        image: String,
        platforms: String,
    },
    #[error("--output {location}")]
    Destination {
        location: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error("creating a temporary directory for layer blobs in {path}")]
    BlobDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the layer cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error("layer cache repository `{repository}`")]
    CacheRepository {
        repository: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error("starting worker threads")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("reading the git checkout of {path} for provenance")]
    Source {
        path: PathBuf,
        #[source]
        source: CiError,
    },
    #[error("writing image `{image}` to {location}")]
    Publish {
        image: String,
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading what {reference} points to before pushing")]
    Rollback {
        reference: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error(transparent)]
    Outputs(#[from] CiError),
    #[error("{what}")]
    OutputFile {
        what: String,
        #[source]
        source: CiError,
    },
    #[error("nothing was built")]
    NothingBuilt,
    #[error("reading the OSV database {path} for --scan")]
    ScanDatabase {
        path: PathBuf,
        #[source]
        source: Box<crate::scan::osv::DatabaseError>,
    },
    #[error("cataloging the packages of image `{image}` ({platform}) for --scan")]
    ScanCatalog {
        image: String,
        platform: String,
        #[source]
        source: Box<crate::attest::AttestError>,
    },
    #[error(
        "image `{image}` is scanned but no OSV database is named: pass --db PATH or set `scan = {{ db = \"PATH\" }}` in the spec"
    )]
    ScanWithoutDatabase { image: String },
    #[error("the vulnerability gate failed: {reasons}; nothing was published")]
    ScanGateFailed { reasons: String },
}

impl From<TransportError> for RunError {
    fn from(error: TransportError) -> RunError {
        RunError::Transport(Box::new(error))
    }
}

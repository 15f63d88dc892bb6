//! What CI and git know about a build, turned into what a registry sees:
//! image tags ([`compute_tags`]), OCI labels ([`standard_labels`]), the files
//! CI systems read back ([`GitHubOutputs`], [`GitLabDotenv`],
//! [`BuildMetadata`], [`RollbackRecord`]) and the inputs digest that lets a
//! rebuild be skipped. Sits beside the pipeline: the spec's plan asks it for
//! tags and labels before building, the CLI asks it for outputs after
//! publishing. Nothing here reads the clock: a date tag uses the start time
//! the caller puts in [`Revision::started`]; every other time comes from the
//! commit.

pub mod environment;
mod error;
pub mod events;
pub mod git;
pub mod labels;
pub mod metadata;
pub mod outputs;
pub mod revision;
pub mod run;
pub mod tag_rules;
pub mod tags;
mod template;

pub use environment::{CiEnvironment, CiEvent, CiProvider, Trigger};
pub use error::CiError;
pub use events::{EventFilter, TagEvent};
pub use git::GitInfo;
pub use labels::{
    INPUTS_DIGEST_LABEL, ImageLabels, SourceFingerprint, inputs_digest, standard_labels,
};
pub use metadata::{
    AttestationMetadata, BuildMetadata, ImageMetadata, ImageStatus, PlatformMetadata,
    ScanFindingMetadata, ScanGateMetadata,
};
pub use outputs::{GitHubOutputs, GitLabDotenv, RollbackRecord, step_summary, write_rollback_file};
pub use revision::Revision;
pub use run::RunMetadata;
pub use tags::{
    DateRule, LatestPolicy, RawRule, TagSpec, TagStrategy, compute_tags, moving_tags, sanitize_tag,
    stable_tag,
};

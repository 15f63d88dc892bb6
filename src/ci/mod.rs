//! What CI and git know about a build, turned into what a registry sees:
//! image tags ([`compute_tags`]), OCI labels ([`standard_labels`]), the files
//! CI systems read back ([`GitHubOutputs`], [`GitLabDotenv`],
//! [`BuildMetadata`], [`RollbackRecord`]) and the inputs digest that lets a
//! rebuild be skipped. Sits beside the pipeline: the spec's plan asks it for
//! tags and labels before building, the CLI asks it for outputs after
//! publishing. Nothing here reads the clock: every time comes from the commit.

pub mod environment;
mod error;
pub mod git;
pub mod labels;
pub mod metadata;
pub mod outputs;
pub mod revision;
pub mod tags;
mod template;

pub use environment::{CiEnvironment, CiEvent, CiProvider};
pub use error::CiError;
pub use git::GitInfo;
pub use labels::{
    INPUTS_DIGEST_LABEL, ImageLabels, SourceFingerprint, inputs_digest, standard_labels,
};
pub use metadata::{AttestationMetadata, BuildMetadata, ImageMetadata, PlatformMetadata};
pub use outputs::{GitHubOutputs, GitLabDotenv, RollbackRecord, step_summary, write_rollback_file};
pub use revision::Revision;
pub use tags::{LatestPolicy, TagSpec, TagStrategy, compute_tags, sanitize_tag};

//! After publishing: the files CI systems and dashboards read. GitHub
//! Actions' step outputs and job summary (when its variables are set), a
//! GitLab dotenv report (`dotenv`, or `hoist.env` on GitLab CI), the
//! metadata file and the rollback file.

use super::RunError;
use crate::ci::{BuildMetadata, GitHubOutputs, GitLabDotenv, RollbackRecord, step_summary};
use std::path::{Path, PathBuf};

/// The dotenv report GitLab CI gets when `--dotenv` is not given.
pub const DEFAULT_DOTENV: &str = "hoist.env";

/// Which files to write besides the CI system's own.
#[derive(Clone, Debug, Default)]
pub struct OutputFiles {
    pub metadata: Option<PathBuf>,
    pub rollback: Option<PathBuf>,
    pub dotenv: Option<PathBuf>,
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Writes every output that applies.
pub(super) fn write(
    metadata: &BuildMetadata,
    rollback: &[RollbackRecord],
    files: &OutputFiles,
) -> Result<(), RunError> {
    if let Some(path) = &files.metadata {
        metadata.write(path)?;
    }
    if let Some(path) = &files.rollback {
        crate::ci::write_rollback_file(path, rollback)?;
    }
    if let Some(path) = variable("GITHUB_OUTPUT")
        && let Some(outputs) = GitHubOutputs::from_metadata(metadata)?
    {
        outputs
            .write(Path::new(&path))
            .map_err(|source| RunError::OutputFile {
                what: "writing the step outputs GITHUB_OUTPUT names".to_string(),
                source,
            })?;
    }
    if let Some(path) = variable("GITHUB_STEP_SUMMARY") {
        step_summary(Path::new(&path), metadata).map_err(|source| RunError::OutputFile {
            what: "writing the job summary GITHUB_STEP_SUMMARY names".to_string(),
            source,
        })?;
    }
    let dotenv: Option<PathBuf> = match &files.dotenv {
        Some(path) => Some(path.clone()),
        None if variable("GITLAB_CI").as_deref() == Some("true") => {
            Some(PathBuf::from(DEFAULT_DOTENV))
        }
        None => None,
    };
    if let Some(path) = dotenv
        && let Some(report) = GitLabDotenv::from_metadata(metadata)
    {
        report.write(&path)?;
    }
    Ok(())
}

//! After publishing: the files CI systems and dashboards read. GitHub
//! Actions' step outputs and job summary (when its variables are set), a
//! GitLab dotenv report (`--dotenv`, or `hoist.env` on GitLab CI), the
//! `--metadata-file` and the `--rollback-file`.

use hoist::ci::{BuildMetadata, GitHubOutputs, GitLabDotenv, RollbackRecord, step_summary};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The dotenv report GitLab CI gets when `--dotenv` is not given.
pub const DEFAULT_DOTENV: &str = "hoist.env";

/// Which files to write besides the CI system's own.
pub struct OutputFiles<'a> {
    pub metadata: Option<&'a Path>,
    pub rollback: Option<&'a Path>,
    pub dotenv: Option<&'a Path>,
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Writes every output that applies.
pub fn write(
    metadata: &BuildMetadata,
    rollback: &[RollbackRecord],
    files: &OutputFiles,
) -> anyhow::Result<()> {
    if let Some(path) = files.metadata {
        metadata.write(path)?;
    }
    if let Some(path) = files.rollback {
        hoist::ci::write_rollback_file(path, rollback)?;
    }
    if let Some(path) = variable("GITHUB_OUTPUT")
        && let Some(outputs) = GitHubOutputs::from_metadata(metadata)?
    {
        outputs
            .write(Path::new(&path))
            .context("writing the step outputs GITHUB_OUTPUT names")?;
    }
    if let Some(path) = variable("GITHUB_STEP_SUMMARY") {
        step_summary(Path::new(&path), &metadata.images)
            .context("writing the job summary GITHUB_STEP_SUMMARY names")?;
    }
    let dotenv: Option<PathBuf> = match files.dotenv {
        Some(path) => Some(path.to_path_buf()),
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

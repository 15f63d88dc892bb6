//! `hoist sbom` and `hoist attestations` mapped to their library requests,
//! and `--provenance` as a level for `hoist build`.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::{Context, bail};
use hoist::oci::{Location, Platform};
use hoist::operation::attestations::AttestationsRequest;
use hoist::operation::sbom::{SbomRequest, SbomSubject};
use hoist::spec::plan::ProvenanceLevel;
use std::io::Write;
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

/// A directory, else an image location with an optional platform.
pub(super) fn subject(target: &str, platform: Option<&str>) -> anyhow::Result<SbomSubject> {
    let directory = Path::new(target);
    if directory.is_dir() {
        return Ok(SbomSubject::Directory(directory.to_path_buf()));
    }
    let location: Location = target.parse().with_context(|| {
        format!(
            "`{target}` is neither a directory nor an image location (oci:, oci-archive:, docker-archive:, docker://)"
        )
    })?;
    let platform = match platform {
        Some(text) => Some(
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))?,
        ),
        None => None,
    };
    Ok(SbomSubject::Image { location, platform })
}

pub fn sbom(arguments: SbomArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let jobs = super::jobs(None)?;
    let subject = subject(&arguments.target, arguments.platform.as_deref())?;
    let request = SbomRequest {
        subject,
        format: match arguments.format {
            SbomFormat::SpdxJson => hoist::operation::sbom::SbomFormat::SpdxJson,
            SbomFormat::CyclonedxJson => hoist::operation::sbom::SbomFormat::CyclonedxJson,
        },
        registry: arguments.registry.client_options(jobs)?,
    };
    let document = hoist::operation::sbom::sbom(&request, &reporter)?;
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

pub fn attestations(arguments: AttestationsArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let jobs = super::jobs(None)?;
    let location: Location = arguments
        .location
        .parse()
        .with_context(|| format!("location {}", arguments.location))?;
    let request = AttestationsRequest {
        location,
        extract: arguments.extract.clone(),
        registry: arguments.registry.client_options(jobs)?,
    };
    let found = hoist::operation::attestations::attestations(&request, &reporter)?;
    if found.is_empty() {
        reporter.line(&format!("no attestations attached to {}", request.location));
    }
    Ok(())
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
}

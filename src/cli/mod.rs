//! The command line: clap definitions, one module per command, and the
//! reporter that turns pipeline events into progress bars, lines or JSON.
//! The only module that prints.

mod attest;
mod build;
mod cache;
mod copy;
mod diff;
mod login;

mod report;
mod repository;
mod scan;
mod sign;
mod tags;
mod verify;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

#[derive(Debug, Parser)]
#[command(name = "hoist", version, about = "Build OCI images from directories, without a daemon", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more (repeat for more detail); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the images a spec describes and write them to one or more outputs.
    Build(build::BuildArguments),
    /// Copy an image or index between layouts, archives and registries, digests unchanged.
    Copy(copy::CopyArguments),
    /// Compare two images top down: index, manifests, configs, layers entry by entry,
    /// each difference with a likely cause. Exits 0 identical, 1 different, 2 trouble.
    Diff(diff::DiffArguments),
    /// Check credentials for a registry and store them the way `docker login` does.
    Login(login::LoginArguments),
    /// Remove stored credentials for a registry.
    Logout(login::LogoutArguments),
    /// Write an SBOM (SPDX or CycloneDX JSON) for a directory or an image.
    Sbom(attest::SbomArguments),
    /// List the SBOMs and provenance attached to an image.
    Attestations(attest::AttestationsArguments),
    /// Make a cosign key pair: an encrypted private key and its public key.
    GenerateKeyPair(sign::GenerateKeyPairArguments),
    /// Sign an image's digest with a cosign key, stored where cosign looks.
    Sign(sign::SignArguments),
    /// Check an image's cosign signatures against a public key.
    Verify(sign::VerifyArguments),
    /// Print the tags `hoist build --push` would push, per image.
    Tags(tags::TagsArguments),
    /// List a repository's tags in a registry.
    Ls(repository::ListArguments),
    /// Print the digest a reference points at (of one platform with --platform).
    Digest(repository::DigestArguments),
    /// Point tags at a manifest the repository already holds (a rollback by digest).
    Tag(repository::TagArguments),
    /// Delete manifests from a registry, by digest or by the tag that points at one.
    Delete(repository::DeleteArguments),
    /// Delete old tags' manifests by a policy, never one a kept tag points at.
    Prune(repository::PruneArguments),
    /// Show or prune the layer cache.
    Cache(cache::CacheArguments),
    /// Match an image's packages against an offline OSV database; exit 1 when the gate fails.
    Scan(scan::ScanArguments),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let result = match cli.command {
        // `build --verify` exits as `diff` does.
        Command::Build(arguments) if arguments.verifies() => return build::verify(arguments),
        Command::Build(arguments) => build::run(arguments),
        Command::Copy(arguments) => copy::run(arguments),
        // `diff` has three exit statuses, like diff(1).
        Command::Diff(arguments) => return diff::run(arguments),
        // `scan` exits 1 when its gate fails and 2 on an error.
        Command::Scan(arguments) => return scan::run(arguments),
        Command::Login(arguments) => login::login(arguments),
        Command::Logout(arguments) => login::logout(arguments),
        Command::Sbom(arguments) => attest::sbom(arguments),
        Command::Attestations(arguments) => attest::attestations(arguments),
        Command::GenerateKeyPair(arguments) => sign::generate_key_pair_command(arguments),
        Command::Sign(arguments) => sign::sign(arguments),
        Command::Verify(arguments) => sign::verify_command(arguments),
        Command::Tags(arguments) => tags::run(arguments),
        Command::Ls(arguments) => repository::list(arguments),
        Command::Digest(arguments) => repository::digest(arguments),
        Command::Tag(arguments) => repository::tag(arguments),
        Command::Delete(arguments) => repository::delete(arguments),
        Command::Prune(arguments) => repository::prune(arguments),
        Command::Cache(arguments) => cache::run(arguments),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            print_error(&error);
            1
        }
    }
}

/// Prints an error and its causes once, outermost first.
fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// The number of worker threads: `--jobs`, else `HOIST_JOBS`, else the cores.
fn jobs(flag: Option<usize>) -> anyhow::Result<usize> {
    if let Some(jobs) = flag {
        anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
        return Ok(jobs);
    }
    if let Ok(value) = std::env::var("HOIST_JOBS") {
        let jobs: usize = value.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "HOIST_JOBS is `{value}`: it must be a whole number of threads, at least 1"
            )
        })?;
        anyhow::ensure!(jobs > 0, "HOIST_JOBS must be at least 1");
        return Ok(jobs);
    }
    Ok(std::thread::available_parallelism().map_or(1, usize::from))
}

/// Threads and reporting, shared by the commands that end in a digest
/// (`build`, `copy`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArguments {
    /// Worker threads (default: HOIST_JOBS, else the number of cores).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Also write the final digest to this file.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<std::path::PathBuf>,
    /// Print only the final digest.
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per event on stdout.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
}

impl RunArguments {
    fn mode(&self) -> report::Mode {
        report::Mode::from_flags(self.json, self.quiet)
    }

    fn jobs(&self) -> anyhow::Result<usize> {
        jobs(self.jobs)
    }
}

/// How to reach registries; shared by every command that may talk to one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArguments {
    /// REGISTRY=USER:PASSWORD for one registry (repeatable), or USER:PASSWORD
    /// for the registry the command writes to (or reads, when it writes to
    /// none). Prefer `hoist login` or a credential helper: command lines are
    /// visible to other users.
    #[arg(
        long,
        value_name = "[REGISTRY=]USER:PASSWORD",
        env = "HOIST_CREDS",
        hide_env_values = true
    )]
    creds: Vec<String>,
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP. Loopback
    /// addresses always may. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// A PEM file of CA certificates to trust besides the system's. Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certificates: Vec<std::path::PathBuf>,
    /// The API of the registries the command works on: github (GHCR),
    /// dockerhub, ecr or distribution. By default the registry's host decides
    /// (ghcr.io, docker.io, *.dkr.ecr.*.amazonaws.com, else distribution).
    /// `prune` and `delete` list and delete through it; with `ecr`, every
    /// command logs in with AWS credentials (GetAuthorizationToken). The API
    /// base URLs come from GITHUB_API_URL (default https://api.github.com),
    /// HOIST_DOCKERHUB_API_URL (default https://hub.docker.com) and
    /// AWS_ENDPOINT_URL_ECR (default the registry region's ECR endpoint).
    #[arg(long = "registry-api", value_name = "API", env = "HOIST_REGISTRY_API")]
    registry_api: Option<hoist::registry::hosted::RegistryApi>,
}

impl RegistryArguments {
    /// The API `--registry-api` asks for, with where the APIs live.
    pub fn api_choice(&self) -> hoist::registry::hosted::ApiChoice {
        hoist::registry::hosted::ApiChoice {
            api: self.registry_api,
            environment: hoist::registry::hosted::ApiEnvironment::from_process(),
        }
    }

    /// Client options for a command whose own registries are `hosts` (the
    /// ones it writes to, or reads when it writes to none): `--creds` without
    /// a registry is for those, never for a base image's registry or a token
    /// realm elsewhere, which would refuse (or keep) a password not theirs.
    pub fn client_options_for(
        &self,
        jobs: usize,
        hosts: &[String],
    ) -> anyhow::Result<hoist::registry::ClientOptions> {
        Ok(hoist::build::transport::scope_credentials(
            self.client_options(jobs)?,
            hosts,
        ))
    }

    pub fn client_options(&self, jobs: usize) -> anyhow::Result<hoist::registry::ClientOptions> {
        let mut credentials: Vec<hoist::registry::GivenCredentials> = Vec::new();
        for text in &self.creds {
            let given = parse_creds(text)?;
            if credentials
                .iter()
                .any(|other| other.registry == given.registry)
            {
                anyhow::bail!(
                    "--creds is given twice for {}: keep one",
                    given.registry.as_deref().unwrap_or("every registry")
                );
            }
            credentials.push(given);
        }
        if let Some(workflow) = actions_ghcr_credentials(&credentials) {
            credentials.push(workflow);
        }
        Ok(hoist::registry::ClientOptions {
            insecure_registries: self.insecure_registries.clone(),
            ca_certificates: self.ca_certificates.clone(),
            credentials,
            jobs: jobs.max(4),
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            own_registries_are_ecr: self.registry_api
                == Some(hoist::registry::hosted::RegistryApi::Ecr),
            ..Default::default()
        })
    }
}

pub use hoist::build::transport::own_registries;

/// The workflow's `GITHUB_TOKEN` for ghcr.io in GitHub Actions, when no
/// other credential for it is given or stored; said once on stderr.
fn actions_ghcr_credentials(
    given: &[hoist::registry::GivenCredentials],
) -> Option<hoist::registry::GivenCredentials> {
    use hoist::registry::hosted::{GHCR, actions_ghcr_credentials};
    let stored = || {
        let environment = hoist::registry::CredentialEnvironment::from_process();
        !matches!(
            hoist::registry::credentials::resolve_in(&environment, GHCR),
            Ok(None)
        )
    };
    let found = actions_ghcr_credentials(|name| std::env::var(name).ok(), given, stored)?;
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        eprintln!("note: GitHub Actions: using GITHUB_TOKEN for {GHCR} (no other login for it)");
    });
    Some(found)
}

/// One `--creds` value: `REGISTRY=USER:PASSWORD` when what comes before the
/// first `=` is a registry host (it has a dot or a port, or is `localhost`),
/// else `USER:PASSWORD`. Errors never repeat the value.
fn parse_creds(text: &str) -> anyhow::Result<hoist::registry::GivenCredentials> {
    use hoist::registry::GivenCredentials;
    let (registry, pair) = match text.split_once('=') {
        Some((registry, pair)) if looks_like_registry(registry) => (Some(registry), pair),
        _ => (None, text),
    };
    let (user, password) = pair.split_once(':').ok_or_else(|| {
        anyhow::anyhow!("--creds must be [REGISTRY=]USER:PASSWORD (the value is not shown)")
    })?;
    if user.is_empty() {
        anyhow::bail!("--creds has an empty user name: it must be [REGISTRY=]USER:PASSWORD");
    }
    Ok(match registry {
        Some(registry) => GivenCredentials::for_registry(registry, user, password),
        None => GivenCredentials::everywhere(user, password),
    })
}

fn looks_like_registry(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !text.ends_with(']') => (host, Some(port)),
        _ => (text, None),
    };
    let port_ok =
        port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    !host.is_empty()
        && port_ok
        && (host.contains('.') || port.is_some() || host == "localhost" || host.starts_with('['))
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::oci::Location;

    #[test]
    fn creds_name_a_registry_or_every_one() {
        let scoped = parse_creds("ghcr.io=octo:pa:ss=word").unwrap();
        assert_eq!(scoped.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(
            (scoped.username.as_str(), scoped.password.as_str()),
            ("octo", "pa:ss=word")
        );
        let local = parse_creds("localhost:5000=me:secret").unwrap();
        assert_eq!(local.registry.as_deref(), Some("localhost:5000"));
        // Docker Hub by the name users write, stored by the host hoist asks.
        let hub = parse_creds("docker.io=whale:secret").unwrap();
        assert_eq!(hub.registry.as_deref(), Some("registry-1.docker.io"));
        // An `=` after the user name is part of the password.
        for (text, password) in [("alice:pa=ss", "pa=ss"), ("alice:pa=ss:x", "pa=ss:x")] {
            let everywhere = parse_creds(text).unwrap();
            assert_eq!(everywhere.registry, None, "{text}");
            assert_eq!(everywhere.password, password);
        }
    }

    #[test]
    fn creds_without_a_registry_go_to_the_commands_own_registries() {
        let arguments = RegistryArguments {
            creds: vec!["bob:pushing".into(), "quay.io=carol:reading".into()],
            ..RegistryArguments::default()
        };
        let own = own_registries(
            [&"docker://ghcr.io/acme/app:1".parse::<Location>().unwrap()],
            [&"docker://docker.io/library/debian:12"
                .parse::<Location>()
                .unwrap()],
        );
        assert_eq!(own, ["ghcr.io"]);
        let options = arguments.client_options_for(1, &own).unwrap();
        let user = |host: &str| {
            hoist::registry::GivenCredentials::choose(&options.credentials, host)
                .map(|given| given.username.clone())
        };
        assert_eq!(user("ghcr.io").as_deref(), Some("bob"));
        assert_eq!(user("quay.io").as_deref(), Some("carol"));
        assert_eq!(
            user("registry-1.docker.io"),
            None,
            "the base's registry gets none"
        );
        // Writing nowhere, a command's own registries are those it reads.
        let read_only = own_registries(
            [&"oci:out".parse::<Location>().unwrap()],
            [&"docker://docker.io/library/debian:12"
                .parse::<Location>()
                .unwrap()],
        );
        assert_eq!(read_only, ["docker.io"]);
    }

    #[test]
    fn malformed_creds_never_echo_the_value() {
        for text in ["no-colon-secret", "ghcr.io=no-colon-secret", ":secret"] {
            let message = parse_creds(text).unwrap_err().to_string();
            assert!(message.contains("[REGISTRY=]USER:PASSWORD"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        let twice = RegistryArguments {
            creds: vec!["ghcr.io=a:one-secret".into(), "ghcr.io=b:two-secret".into()],
            ..RegistryArguments::default()
        };
        let message = twice.client_options(1).unwrap_err().to_string();
        assert!(message.contains("twice for ghcr.io"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

//! What a registry client is built from: retry policy, TLS and
//! insecure-registry choices, and the credentials given on the command
//! line. Below the transport, which reads them, and the client, which holds
//! them.

use super::aws::AwsEnvironment;
use super::credentials::CredentialEnvironment;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How many times and how patiently transient failures are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts per request, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: what the registry asked for,
    /// else exponential backoff with jitter so parallel uploads spread out.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        if let Some(asked) = asked {
            return asked;
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let backoff = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        backoff.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Everything that configures a [`RegistryClient`].
#[derive(Clone)]
pub struct ClientOptions {
    /// Hosts (`host:port`) that may be reached over plain HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates to trust.
    pub ca_certificates: Vec<PathBuf>,
    /// `--creds`: used before any configuration file, each for its registry
    /// (or for every registry).
    pub credentials: Vec<GivenCredentials>,
    /// Blob transfers in flight at once.
    pub jobs: usize,
    pub user_agent: String,
    pub retry: RetryPolicy,
    /// Blobs up to this size go in one PUT whose body streams from the
    /// file; larger ones in chunks, so a failure resends at most a chunk.
    pub monolithic_limit: u64,
    /// Chunk size for chunked uploads (raised to the registry's minimum, and to 5 MiB).
    pub chunk_size: u64,
    /// Idle time after which a stalled transfer counts as failed (and is retried).
    pub read_timeout: Duration,
    /// Where docker and podman credentials are looked up.
    pub credential_environment: CredentialEnvironment,
    /// Where AWS credentials and settings are looked up, for ECR.
    pub aws: AwsEnvironment,
    /// Registry hosts to treat as ECR besides those named
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (their region then comes from
    /// `AWS_REGION` or the profile).
    pub ecr_registries: Vec<String>,
    /// The command's own registries are ECR whatever their names
    /// (`--registry-api ecr`); scoping the options to those registries
    /// (`build::transport::scope_credentials`) lists them in `ecr_registries`.
    pub own_registries_are_ecr: bool,
}

/// A username and password given on the command line, for one registry or
/// for all of them.
#[derive(Clone)]
pub struct GivenCredentials {
    /// The registry's API host (as [`super::reference::api_host`] spells it);
    /// `None` for every registry.
    pub registry: Option<String>,
    pub username: String,
    pub password: String,
}

impl GivenCredentials {
    /// Credentials for every registry a client talks to.
    pub fn everywhere(username: &str, password: &str) -> Self {
        GivenCredentials {
            registry: None,
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// Credentials for `host` and no other registry.
    pub fn for_registry(registry: &str, username: &str, password: &str) -> Self {
        GivenCredentials {
            registry: Some(super::reference::api_host(registry).to_string()),
            ..GivenCredentials::everywhere(username, password)
        }
    }

    /// The ones that apply to `host`: those naming it, else those for every
    /// registry.
    pub fn choose<'a>(given: &'a [GivenCredentials], host: &str) -> Option<&'a Self> {
        given
            .iter()
            .find(|credentials| credentials.registry.as_deref() == Some(host))
            .or_else(|| {
                given
                    .iter()
                    .find(|credentials| credentials.registry.is_none())
            })
    }
}

impl fmt::Debug for GivenCredentials {
    // By hand, so a password never reaches a log.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("GivenCredentials")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Chunks below this are refused by some registries (ECR).
pub const MINIMUM_CHUNK: u64 = 5 * 1024 * 1024;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            ca_certificates: Vec::new(),
            credentials: Vec::new(),
            jobs: std::thread::available_parallelism().map_or(4, |n| n.get().max(4)),
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            retry: RetryPolicy::default(),
            // Every chunk costs a round trip in which nothing is sent (a
            // third of a 16 MiB chunk's time on a 1 Gbit/s link 50 ms from
            // the registry), so only blobs so large that resending one whole
            // after a failure would cost more than those round trips are
            // cut into chunks. containerd pushes every blob in one PUT.
            monolithic_limit: 256 * 1024 * 1024,
            chunk_size: 16 * 1024 * 1024,
            read_timeout: Duration::from_secs(120),
            credential_environment: CredentialEnvironment::from_process(),
            aws: AwsEnvironment::from_process(),
            ecr_registries: Vec::new(),
            own_registries_are_ecr: false,
        }
    }
}

impl fmt::Debug for ClientOptions {
    // By hand, so a password never reaches a log.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("ca_certificates", &self.ca_certificates)
            .field("credentials", &self.credentials)
            .field("jobs", &self.jobs)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("monolithic_limit", &self.monolithic_limit)
            .field("chunk_size", &self.chunk_size)
            .field("ecr_registries", &self.ecr_registries)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..20 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let late = policy.delay(10, None);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let options = ClientOptions {
            credentials: vec![
                GivenCredentials::everywhere("alice", "s3cret-value"),
                GivenCredentials::for_registry("ghcr.io", "bob", "other-s3cret"),
            ],
            ..ClientOptions::default()
        };
        let text = format!("{options:?}");
        assert!(text.contains("alice") && text.contains("bob"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn credentials_for_a_registry_win_over_those_for_all() {
        let given = [
            GivenCredentials::everywhere("anyone", "a"),
            GivenCredentials::for_registry("ghcr.io", "octo", "b"),
            GivenCredentials::for_registry("docker.io", "whale", "c"),
        ];
        let user = |host: &str| GivenCredentials::choose(&given, host).map(|c| c.username.as_str());
        assert_eq!(user("ghcr.io"), Some("octo"));
        // Docker Hub is named by its API host.
        assert_eq!(user("registry-1.docker.io"), Some("whale"));
        assert_eq!(user("quay.io"), Some("anyone"));
        let scoped = &given[1..];
        assert_eq!(
            GivenCredentials::choose(scoped, "quay.io").map(|c| c.username.as_str()),
            None,
            "credentials for one registry are never sent to another"
        );
    }
}

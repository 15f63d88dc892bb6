//! Image references as users write them (`debian`, `ghcr.io/o/app:1.2`,
//! `localhost:5000/x@sha256:...`), normalized the way Docker does: no
//! registry means Docker Hub, and single-name Hub repositories live under
//! `library/`.

use crate::oci::Digest;
use crate::oci::digest::parse_sha256;
use std::fmt;
use std::str::FromStr;

/// The registry name Docker Hub references normalize to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's distribution API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A normalized image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry name as users write it (`docker.io`, `localhost:5000`, `ghcr.io`).
    pub registry: String,
    /// Repository path inside the registry (`library/debian`, `owner/app`).
    pub repository: String,
    pub tag: Option<String>,
    /// When present, the reference is pinned to it, tag or not.
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error)]
#[error("`{reference}` is not a valid image reference: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl Reference {
    /// Host (and port) used in API URLs: Docker Hub's API lives on another host.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What goes after `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// The API host for a registry name (`docker.io` -> `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let input = text.strip_prefix("docker://").unwrap_or(text);
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        if input.len() > 4096 {
            return Err(fail("it is longer than 4096 characters"));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = parse_sha256(digest).map_err(|error| fail(&error.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // The tag is after the last colon that follows the last slash; a colon
        // before a slash is a registry port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |position| position + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                (
                    &name_and_tag[..colon],
                    Some(name_and_tag[colon + 1..].to_string()),
                )
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|reason| fail(&reason))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        validate_registry(&registry).map_err(|reason| fail(&reason))?;
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_repository(&repository).map_err(|reason| fail(&reason))?;
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let mut characters = tag.chars();
    let valid_first = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_');
    if !valid_first
        || tag.len() > 128
        || !characters.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "tag `{tag}` must be 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ));
    }
    Ok(())
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
        _ => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok());
    if !host_ok || !port_ok {
        return Err(format!(
            "registry `{registry}` must be a host name or address with an optional :port"
        ));
    }
    Ok(())
}

fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".to_string());
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository `{repository}` must be lowercase"));
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "repository component `{component}` must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, the distribution grammar.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alphanumeric(bytes[0]) || !alphanumeric(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut position = 0;
    while position < bytes.len() {
        if alphanumeric(bytes[position]) {
            position += 1;
            continue;
        }
        let start = position;
        while position < bytes.len() && !alphanumeric(bytes[position]) {
            position += 1;
        }
        let separator = &component[start..position];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    /// (input, registry, repository, tag, pinned to a digest, display)
    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, bool, &'a str);

    #[test]
    fn normalizes_like_docker() {
        let table: &[Row] = &[
            (
                "debian",
                "docker.io",
                "library/debian",
                Some("latest"),
                false,
                "docker.io/library/debian:latest",
            ),
            (
                "debian:bookworm",
                "docker.io",
                "library/debian",
                Some("bookworm"),
                false,
                "docker.io/library/debian:bookworm",
            ),
            (
                "docker.io/debian",
                "docker.io",
                "library/debian",
                Some("latest"),
                false,
                "docker.io/library/debian:latest",
            ),
            (
                "index.docker.io/user/app:1",
                "docker.io",
                "user/app",
                Some("1"),
                false,
                "docker.io/user/app:1",
            ),
            (
                "user/app",
                "docker.io",
                "user/app",
                Some("latest"),
                false,
                "docker.io/user/app:latest",
            ),
            (
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                false,
                "localhost:5000/x:latest",
            ),
            (
                "localhost/x:2",
                "localhost",
                "x",
                Some("2"),
                false,
                "localhost/x:2",
            ),
            (
                "127.0.0.1:5000/a/b/c:v1.0-rc_1",
                "127.0.0.1:5000",
                "a/b/c",
                Some("v1.0-rc_1"),
                false,
                "127.0.0.1:5000/a/b/c:v1.0-rc_1",
            ),
            (
                "ghcr.io/owner/app",
                "ghcr.io",
                "owner/app",
                Some("latest"),
                false,
                "ghcr.io/owner/app:latest",
            ),
            (
                "docker://quay.io/a/b:t",
                "quay.io",
                "a/b",
                Some("t"),
                false,
                "quay.io/a/b:t",
            ),
            (
                &format!("debian@{DIGEST}"),
                "docker.io",
                "library/debian",
                None,
                true,
                &format!("docker.io/library/debian@{DIGEST}"),
            ),
            (
                &format!("ghcr.io/o/a:1@{DIGEST}"),
                "ghcr.io",
                "o/a",
                Some("1"),
                true,
                &format!("ghcr.io/o/a:1@{DIGEST}"),
            ),
        ];
        for (input, registry, repository, tag, pinned, display) in table {
            let reference: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(reference.registry, *registry, "{input}");
            assert_eq!(reference.repository, *repository, "{input}");
            assert_eq!(reference.tag.as_deref(), *tag, "{input}");
            assert_eq!(reference.digest.is_some(), *pinned, "{input}");
            assert_eq!(reference.to_string(), *display, "{input}");
            // Display output parses back to the same reference.
            assert_eq!(display.parse::<Reference>().unwrap(), reference, "{input}");
        }
    }

    #[test]
    fn api_host_and_pinning() {
        let hub: Reference = "debian".parse().unwrap();
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.manifest_reference(), "latest");
        let pinned: Reference = format!("localhost:5000/x:1@{DIGEST}").parse().unwrap();
        assert_eq!(pinned.api_host(), "localhost:5000");
        assert_eq!(pinned.manifest_reference(), DIGEST);
    }

    #[test]
    fn rejects_malformed_with_reasons() {
        for (input, needle) in [
            ("", "empty"),
            ("Debian", "lowercase"),
            ("ghcr.io/Owner/app", "lowercase"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("app@sha256:abc", "sha256"),
            ("a//b", "component"),
            ("a/b-/c", "component"),
            ("localhost:99999/x", "port"),
            ("ghcr.io/", "empty"),
            ("x/a..b", "component"),
        ] {
            let error = input.parse::<Reference>().unwrap_err().to_string();
            assert!(error.contains(needle), "{input}: {error}");
            assert!(error.contains(&format!("`{input}`")), "{input}: {error}");
        }
    }
}

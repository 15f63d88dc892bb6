//! Where images are read from and written to, in skopeo's transport syntax:
//! `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`,
//! `docker://REF`. Sources and sinks are both chosen from a [`Location`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An OCI image layout directory; the tag is its `org.opencontainers.image.ref.name`.
    Layout { path: PathBuf, tag: Option<String> },
    /// A tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// What `docker save` writes and `docker load` reads.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// A registry reference, unparsed here; the registry module normalizes it.
    Registry { reference: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "`{0}` names no transport: write oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REFERENCE"
    )]
    UnknownTransport(String),
    #[error("`{0}` has an empty path")]
    EmptyPath(String),
    #[error("`{0}` has an empty tag after the colon")]
    EmptyTag(String),
}

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(reference) = text.strip_prefix("docker://") {
            if reference.is_empty() {
                return Err(LocationError::EmptyPath(text.to_string()));
            }
            return Ok(Location::Registry {
                reference: reference.to_string(),
            });
        }
        let (transport, rest) = text
            .split_once(':')
            .ok_or_else(|| LocationError::UnknownTransport(text.to_string()))?;
        // Like containers/image, the path ends at the first colon, so a path
        // cannot contain one; everything after it is the tag or reference.
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => {
                if tag.is_empty() {
                    return Err(LocationError::EmptyTag(text.to_string()));
                }
                (path, Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(LocationError::EmptyPath(text.to_string()));
        }
        let path = PathBuf::from(path);
        match transport {
            "oci" => Ok(Location::Layout { path, tag }),
            "oci-archive" => Ok(Location::OciArchive { path, tag }),
            "docker-archive" => Ok(Location::DockerArchive {
                path,
                reference: tag,
            }),
            _ => Err(LocationError::UnknownTransport(text.to_string())),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, tag) = match self {
            Location::Registry { reference } => return write!(formatter, "docker://{reference}"),
            Location::Layout { path, tag } => ("oci", path, tag),
            Location::OciArchive { path, tag } => ("oci-archive", path, tag),
            Location::DockerArchive { path, reference } => ("docker-archive", path, reference),
        };
        write!(formatter, "{transport}:{}", path.display())?;
        if let Some(tag) = tag {
            write!(formatter, ":{tag}")?;
        }
        Ok(())
    }
}

impl Location {
    /// The tag or reference the location carries, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Location::Layout { tag, .. } | Location::OciArchive { tag, .. } => tag.as_deref(),
            Location::DockerArchive { reference, .. } => reference.as_deref(),
            Location::Registry { .. } => None,
        }
    }

    /// The same layout or OCI archive under `tag`; other locations as they are.
    pub fn with_tag(&self, tag: &str) -> Location {
        match self {
            Location::Layout { path, .. } => Location::Layout {
                path: path.clone(),
                tag: Some(tag.to_string()),
            },
            Location::OciArchive { path, .. } => Location::OciArchive {
                path: path.clone(),
                tag: Some(tag.to_string()),
            },
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_tag_retags_layouts_and_archives_only() {
        let retagged = |text: &str| text.parse::<Location>().unwrap().with_tag("v2").to_string();
        assert_eq!(retagged("oci:out/app:1.0"), "oci:out/app:v2");
        assert_eq!(retagged("oci-archive:app.tar"), "oci-archive:app.tar:v2");
        assert_eq!(
            retagged("docker://example.com/app:1"),
            "docker://example.com/app:1"
        );
    }

    #[test]
    fn parses_each_transport() {
        assert_eq!(
            "oci:out/app:1.0".parse::<Location>().unwrap(),
            Location::Layout {
                path: "out/app".into(),
                tag: Some("1.0".into())
            }
        );
        assert_eq!(
            "oci-archive:app.tar".parse::<Location>().unwrap(),
            Location::OciArchive {
                path: "app.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:d.tar:hello:latest"
                .parse::<Location>()
                .unwrap(),
            Location::DockerArchive {
                path: "d.tar".into(),
                reference: Some("hello:latest".into())
            }
        );
        assert_eq!(
            "docker://localhost:5000/a/b:1".parse::<Location>().unwrap(),
            Location::Registry {
                reference: "localhost:5000/a/b:1".into()
            }
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            "out/app".parse::<Location>(),
            Err(LocationError::UnknownTransport(_))
        ));
        assert!(matches!(
            "tarball:x".parse::<Location>(),
            Err(LocationError::UnknownTransport(_))
        ));
        assert!(matches!(
            "oci:".parse::<Location>(),
            Err(LocationError::EmptyPath(_))
        ));
        assert!(matches!(
            "oci:dir:".parse::<Location>(),
            Err(LocationError::EmptyTag(_))
        ));
    }

    #[test]
    fn displays_as_parsed() {
        for text in [
            "oci:out:1",
            "oci-archive:a.tar",
            "docker-archive:x.tar:a:b",
            "docker://x/y",
        ] {
            assert_eq!(text.parse::<Location>().unwrap().to_string(), text);
        }
    }
}

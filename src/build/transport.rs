//! Chooses the source or sink for a [`Location`]: the one place that knows
//! every transport, shared by `build` (outputs, base images) and `copy`.
//! The registry client is made on first use, so local builds never start it.

use crate::image::{Sink, SinkError};
use crate::oci::Location;
use crate::registry::{
    ClientOptions, GivenCredentials, Reference, RegistryClient, RegistryError, RegistrySink,
    RegistrySource,
};
use crate::sink::docker_archive::DockerArchiveSink;
use crate::sink::layout::LayoutSink;
use crate::sink::oci_archive::OciArchiveSink;
use crate::source::archive::OciArchiveSource;
use crate::source::docker_archive::DockerArchiveSource;
use crate::source::layout::LayoutSource;
use crate::source::{Source, SourceError};
use std::sync::OnceLock;

/// Opens sources and sinks.
pub struct Transports {
    registry_options: ClientOptions,
    registry: OnceLock<RegistryClient>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{reference}` is not an image reference")]
    Reference {
        reference: String,
        #[source]
        source: crate::registry::ReferenceError,
    },
    #[error("setting up the registry client")]
    Client(#[source] RegistryError),
}

impl Transports {
    pub fn new(registry_options: ClientOptions) -> Self {
        Transports {
            registry_options,
            registry: OnceLock::new(),
        }
    }

    /// The registry client, made on first use.
    pub fn registry(&self) -> Result<&RegistryClient, TransportError> {
        if let Some(client) = self.registry.get() {
            return Ok(client);
        }
        let client =
            RegistryClient::new(self.registry_options.clone()).map_err(TransportError::Client)?;
        Ok(self.registry.get_or_init(|| client))
    }

    pub fn source(&self, location: &Location) -> Result<Box<dyn Source>, SourceError> {
        Ok(match location {
            Location::Layout { path, tag } => Box::new(LayoutSource::open(path, tag.as_deref())?),
            Location::OciArchive { path, tag } => {
                Box::new(OciArchiveSource::open(path, tag.as_deref())?)
            }
            Location::DockerArchive { path, reference } => {
                Box::new(DockerArchiveSource::open(path, reference.as_deref())?)
            }
            Location::Registry { reference } => {
                let failed = |source: TransportError| {
                    SourceError::new(location.to_string(), "reading", source)
                };
                let reference = parse_reference(reference).map_err(failed)?;
                let client = self.registry().map_err(failed)?;
                Box::new(RegistrySource::new(client.clone(), reference))
            }
        })
    }

    pub fn sink(&self, location: &Location) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match location {
            Location::Layout { path, .. } => Box::new(LayoutSink::open(path)?),
            Location::OciArchive { path, .. } => Box::new(OciArchiveSink::create(path)?),
            Location::DockerArchive { path, reference } => {
                Box::new(DockerArchiveSink::create(path, reference.clone())?)
            }
            Location::Registry { reference } => {
                let failed = |source: TransportError| {
                    SinkError::new(location.to_string(), "writing", "", source)
                };
                let reference = parse_reference(reference).map_err(failed)?;
                let client = self.registry().map_err(failed)?;
                Box::new(RegistrySink::new(client.clone(), reference))
            }
        })
    }
}

/// Parses a registry reference with Docker's normalization.
pub fn parse_reference(reference: &str) -> Result<Reference, TransportError> {
    reference
        .parse::<Reference>()
        .map_err(|source| TransportError::Reference {
            reference: reference.to_string(),
            source,
        })
}

/// The tag a destination names: a layout's or archive's tag, a registry
/// reference's tag (`latest` when it names neither tag nor digest, as Docker does).
pub fn destination_tag(location: &Location) -> Result<Option<String>, TransportError> {
    match location {
        Location::Registry { reference } => {
            let parsed = parse_reference(reference)?;
            Ok(match (&parsed.tag, &parsed.digest) {
                (Some(tag), None) => Some(tag.clone()),
                (None, None) => Some("latest".to_string()),
                (_, Some(_)) => None,
            })
        }
        other => Ok(other.tag().map(str::to_string)),
    }
}

/// Credentials given for every registry go only to the registries a
/// command works on (`hosts`: the ones it writes to, or reads when it writes
/// to none), never to a base image's registry or a token realm elsewhere,
/// which would refuse (or keep) a password not theirs. Credentials given
/// for one registry stay as they are and win over the unscoped ones.
pub fn scope_credentials(mut options: ClientOptions, hosts: &[String]) -> ClientOptions {
    let (everywhere, mut scoped): (Vec<_>, Vec<_>) = options
        .credentials
        .into_iter()
        .partition(|given| given.registry.is_none());
    for given in everywhere {
        for host in hosts {
            let for_host = GivenCredentials::for_registry(host, &given.username, &given.password);
            if !scoped
                .iter()
                .any(|other| other.registry == for_host.registry)
            {
                scoped.push(for_host);
            }
        }
    }
    options.credentials = scoped;
    if options.own_registries_are_ecr {
        options.ecr_registries.extend(
            hosts
                .iter()
                .map(|host| crate::registry::api_host(host).to_string()),
        );
    }
    options
}

/// The registries a command works on: those it writes to, else those it
/// reads from.
pub fn own_registries<'a>(
    writes: impl IntoIterator<Item = &'a Location>,
    reads: impl IntoIterator<Item = &'a Location>,
) -> Vec<String> {
    let written = registry_hosts(writes);
    if written.is_empty() {
        registry_hosts(reads)
    } else {
        written
    }
}

/// The registries among `locations` (their hosts as references name them),
/// each once.
pub fn registry_hosts<'a>(locations: impl IntoIterator<Item = &'a Location>) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for location in locations {
        if let Location::Registry { reference } = location
            && let Ok(parsed) = parse_reference(reference)
            && !hosts.contains(&parsed.registry)
        {
            hosts.push(parsed.registry);
        }
    }
    hosts
}

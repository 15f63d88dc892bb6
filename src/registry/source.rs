//! A registry as a [`Source`]: reads the manifest tree a reference points
//! at, every manifest and config verified against its digest, and hands out
//! layers as [`RegistryBlob`]s that download (and verify) only when opened.

use super::client::RegistryClient;
use super::error::RegistryError;
use super::reference::Reference;
use super::repository::blobs;
use super::repository::manifests::FetchedManifest;
use super::repository::{Access, Repository};
use super::transport::{Context, transport_error};
use crate::image::blob::BlobOrigin;
use crate::image::{Blob, BytesBlob, Image, Index, Manifest};
use crate::oci::{DigestReader, media_type, sha256_digest};
use crate::source::{Source, SourceError};
use bytes::Bytes;
use futures_util::StreamExt as _;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use std::io::{self, Read};
use std::sync::Arc;

/// Configs larger than this are refused rather than read into memory.
const MAXIMUM_CONFIG: u64 = 64 * 1024 * 1024;
/// Indexes of indexes deeper than this are refused.
const MAXIMUM_DEPTH: usize = 4;

/// Reads images from one reference.
#[derive(Clone, Debug)]
pub struct RegistrySource {
    repository: Repository,
    /// The tag or digest to read.
    reference: Reference,
}

impl RegistrySource {
    pub fn new(client: RegistryClient, reference: Reference) -> Self {
        RegistrySource {
            repository: client.repository(&reference, Access::PULL),
            reference,
        }
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn read_tree(&self) -> Result<Manifest, RegistryError> {
        let top = self
            .repository
            .get_manifest(&self.reference.manifest_reference())?;
        self.build(top, 0)
    }

    fn build(&self, fetched: FetchedManifest, depth: usize) -> Result<Manifest, RegistryError> {
        let shown = self.reference.with_digest(fetched.digest.clone());
        let descriptor = Descriptor::new(
            MediaType::from(fetched.media_type.as_str()),
            fetched.bytes.len() as u64,
            fetched.digest.clone(),
        );
        let manifest_blob = BytesBlob::with_descriptor(descriptor, fetched.bytes.to_vec());
        if media_type::is_index(&fetched.media_type) {
            if depth >= MAXIMUM_DEPTH {
                return Err(RegistryError::Protocol {
                    operation: "reading index".to_string(),
                    target: shown.to_string(),
                    detail: format!("indexes nest deeper than {MAXIMUM_DEPTH} levels"),
                });
            }
            let index: ImageIndex =
                serde_json::from_slice(&fetched.bytes).map_err(|source| RegistryError::Json {
                    what: "index",
                    target: shown.to_string(),
                    source,
                })?;
            let mut children = Vec::with_capacity(index.manifests().len());
            for child in index.manifests() {
                let fetched_child = self.repository.get_manifest(child.digest().as_ref())?;
                children.push(self.build(fetched_child, depth + 1)?);
            }
            return Ok(Manifest::Index(Index {
                manifest: manifest_blob,
                children,
            }));
        }
        let parsed: ImageManifest =
            serde_json::from_slice(&fetched.bytes).map_err(|source| RegistryError::Json {
                what: "manifest",
                target: shown.to_string(),
                source,
            })?;
        let config = self.read_config(parsed.config())?;
        let origin = BlobOrigin {
            registry: self.reference.api_host().to_string(),
            repository: self.reference.repository.clone(),
        };
        let layers = parsed
            .layers()
            .iter()
            .map(|layer| {
                Arc::new(RegistryBlob {
                    descriptor: layer.clone(),
                    repository: self.repository.clone(),
                    origin: origin.clone(),
                }) as Arc<dyn Blob>
            })
            .collect();
        Ok(Manifest::Image(Image {
            manifest: manifest_blob,
            config,
            layers,
        }))
    }

    fn read_config(&self, descriptor: &Descriptor) -> Result<BytesBlob, RegistryError> {
        let target = self.reference.with_digest(descriptor.digest().clone());
        let context = Context::new("reading config", &target);
        if descriptor.size() > MAXIMUM_CONFIG {
            return Err(RegistryError::Protocol {
                operation: context.operation,
                target: context.target,
                detail: format!("the config is larger than {MAXIMUM_CONFIG} bytes"),
            });
        }
        let repository = &self.repository;
        let bytes = repository.block_on(async {
            let response = blobs::open_blob(repository, descriptor.digest(), &context).await?;
            // Read up to the size the descriptor gives, never more: the
            // registry's Content-Length is not trusted.
            let scopes = repository.read_scopes();
            let call = repository.call(&scopes, &context);
            repository
                .transport()
                .read_capped(call, response, descriptor.size() as usize, "the config")
                .await
        })?;
        let actual = sha256_digest(&bytes);
        if &actual != descriptor.digest() || bytes.len() as u64 != descriptor.size() {
            return Err(RegistryError::DigestMismatch {
                what: "config",
                target: target.to_string(),
                expected: Box::new(descriptor.digest().clone()),
                actual: Box::new(actual),
            });
        }
        Ok(BytesBlob::with_descriptor(
            descriptor.clone(),
            bytes.to_vec(),
        ))
    }
}

impl Source for RegistrySource {
    fn describe(&self) -> String {
        format!("docker://{}", self.reference)
    }

    fn resolve(&self) -> Result<Manifest, SourceError> {
        self.read_tree()
            .map_err(|error| SourceError::new(self.describe(), "reading the image", error))
    }
}

/// A layer in a registry, downloaded when opened and verified against its
/// digest as it is read.
pub struct RegistryBlob {
    descriptor: Descriptor,
    repository: Repository,
    origin: BlobOrigin,
}

impl RegistryBlob {
    /// The blob `descriptor` names in `repository`, mountable from there.
    pub(crate) fn new(descriptor: Descriptor, repository: Repository) -> Self {
        let origin = BlobOrigin {
            registry: repository.host().to_string(),
            repository: repository.path().to_string(),
        };
        RegistryBlob {
            descriptor,
            repository,
            origin,
        }
    }
}

impl Blob for RegistryBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// Must be called outside any async runtime (reads block).
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let repository = self.repository.clone();
        let digest = self.descriptor.digest().clone();
        self.repository.client().spawn(async move {
            let context = Context::new("reading blob", repository.with_digest(&digest));
            let response = blobs::open_blob(&repository, &digest, &context).await;
            let mut stream = match response {
                Ok(response) => response.bytes_stream(),
                Err(error) => {
                    let _ = sender.send(Err(io::Error::other(error))).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let item = item.map_err(|error| {
                    io::Error::other(transport_error(repository.host(), &context, error))
                });
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let reader = ChannelReader {
            receiver,
            current: Bytes::new(),
        };
        Ok(Box::new(DigestReader::new(
            reader,
            self.descriptor.digest().clone(),
            Some(self.descriptor.size()),
        )))
    }

    fn origin(&self) -> Option<&BlobOrigin> {
        Some(&self.origin)
    }
}

/// Reads the pieces a download task sends.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(error)) => return Err(error),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        let _ = self.current.split_to(count);
        Ok(count)
    }
}

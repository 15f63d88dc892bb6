//! The core model, after go-containerregistry: a [`Blob`] is a descriptor
//! that is always known plus content that can be opened again; a [`Layer`]
//! adds its diff_id; an [`Image`] is a manifest, a config and layers; an
//! [`Index`] lists images (and attestation manifests). Sources produce these,
//! sinks consume them, and [`publish`] is the one driver between the two.

pub mod blob;
pub mod model;
pub mod publish;

pub use blob::{Blob, BytesBlob, FileBlob, as_oci_layer, open_regular_file};
pub use model::{Image, Index, Layer, Manifest};
pub use publish::{PublishReport, Sink, SinkError, publish};

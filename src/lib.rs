//! hoist builds OCI images from a spec and directories, without a daemon, and
//! publishes them to OCI layouts, archives and registries.
//!
//! Pipeline: [`spec`] → [`build`] ([`layer`] → [`image`]) → [`attest`] → [`sink`]
//! or [`registry`]. [`oci`] is the shared vocabulary. The library never prints:
//! it reports [`progress`] events, and the `hoist` binary's `cli` module renders them.

pub mod attest;
pub mod build;
pub mod ci;
pub mod diff;
pub mod image;
pub mod layer;
pub mod oci;
pub mod operation;
pub mod parallel;
pub mod progress;
pub mod registry;
pub mod scan;
pub mod sink;
pub mod source;
pub mod spec;

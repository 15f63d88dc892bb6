//! The commands besides `build` as library operations, at the top of the
//! pipeline beside `build::run`: each takes a request struct (what the flags
//! said, already parsed), reports through an [`Observer`](crate::progress::Observer)
//! and returns an outcome or its module's error. The command line only maps
//! flags to a request and renders what comes back.

pub mod attestations;
pub mod cache;
pub mod copy;
pub mod login;
pub mod repository;
pub mod sbom;
pub mod scan;
pub mod sign;

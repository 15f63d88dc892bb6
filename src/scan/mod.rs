//! Vulnerability scanning: the packages the catalogers found in an image
//! (`attest::catalog`) matched against an offline OSV database.
//!
//! It sits beside `attest`: it reads the same inventory the SBOM writers do,
//! and `build` and `operation` run it before anything is pushed. `version`
//! orders versions the way each ecosystem's own package manager does, which
//! every range check in the matcher rests on.

pub mod gate;
pub mod ignore;
pub mod matcher;
pub mod osv;
pub mod report;
pub mod severity;
pub mod version;

//! The vocabulary every other module speaks: digests, media types, platforms,
//! locations (`oci:DIR:TAG`, `docker://REF`, ...), times, and the canonical JSON
//! encoder that every hashed document goes through. Wraps `oci-spec` where it fits.

pub mod canonical;
pub mod digest;
pub mod location;
pub mod media_type;
pub mod platform;
pub mod time;

pub use canonical::to_canonical_json;
pub use digest::{Digest, DigestReader, DigestWriter, sha256_digest};
pub use location::{Location, LocationError};
pub use platform::{Platform, PlatformError};

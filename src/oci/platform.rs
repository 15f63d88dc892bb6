//! `os/arch[/variant]` platforms as users write them, and their OCI form.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "`{0}` is not a platform: write os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8"
    )]
    Malformed(String),
    #[error("unknown operating system `{os}` in platform `{platform}`: known are {known}")]
    UnknownOs {
        platform: String,
        os: String,
        known: String,
    },
    #[error("unknown architecture `{architecture}` in platform `{platform}`: known are {known}")]
    UnknownArchitecture {
        platform: String,
        architecture: String,
        known: String,
    },
}

/// GOOS values an image can target (the OCI spec defers to Go's list).
const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "dragonfly",
    "plan9",
    "android",
    "ios",
    "js",
    "wasip1",
];
/// GOARCH values an image can target.
const KNOWN_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64",
    "mipsle", "mips", "loong64", "wasm",
];

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The pseudo-platform BuildKit puts on attestation manifests.
    pub fn unknown() -> Self {
        Platform::new("unknown", "unknown", None)
    }

    /// The platform in `oci-spec`'s form, for descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Platform {
        let mut platform = oci_spec::image::Platform::default();
        platform.set_os(oci_spec::image::Os::from(self.os.as_str()));
        platform.set_architecture(oci_spec::image::Arch::from(self.architecture.as_str()));
        platform.set_variant(self.variant.clone());
        platform
    }

    pub fn from_oci(platform: &oci_spec::image::Platform) -> Self {
        Platform {
            os: platform.os().to_string(),
            architecture: platform.architecture().to_string(),
            variant: platform
                .variant()
                .clone()
                .filter(|variant| !variant.is_empty()),
        }
    }

    /// True when `self` (what was asked for) accepts `other` (what an index
    /// offers). A request without a variant accepts any variant, as Docker does.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| part.is_empty()) {
            return Err(PlatformError::Malformed(text.to_string()));
        }
        if !KNOWN_OS.contains(&parts[0]) {
            return Err(PlatformError::UnknownOs {
                platform: text.to_string(),
                os: parts[0].to_string(),
                known: KNOWN_OS.join(", "),
            });
        }
        if !KNOWN_ARCHITECTURES.contains(&parts[1]) {
            return Err(PlatformError::UnknownArchitecture {
                platform: text.to_string(),
                architecture: parts[1].to_string(),
                known: KNOWN_ARCHITECTURES.join(", "),
            });
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let platform: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(platform.architecture, "arm64");
        assert_eq!(platform.variant.as_deref(), Some("v8"));
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!("linux/amd64".parse::<Platform>().unwrap().variant, None);
    }

    #[test]
    fn rejects_unknown_and_malformed() {
        assert!(matches!(
            "linux".parse::<Platform>(),
            Err(PlatformError::Malformed(_))
        ));
        assert!(matches!(
            "linux//v7".parse::<Platform>(),
            Err(PlatformError::Malformed(_))
        ));
        assert!(matches!(
            "plan10/amd64".parse::<Platform>(),
            Err(PlatformError::UnknownOs { .. })
        ));
        assert!(matches!(
            "linux/x86".parse::<Platform>(),
            Err(PlatformError::UnknownArchitecture { .. })
        ));
    }

    #[test]
    fn round_trips_through_oci() {
        let platform: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(Platform::from_oci(&platform.to_oci()), platform);
        let request: Platform = "linux/arm".parse().unwrap();
        assert!(request.matches(&platform));
        assert!(!platform.matches(&"linux/arm/v6".parse().unwrap()));
    }
}

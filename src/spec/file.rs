//! The serde types of `hoist.toml`, exactly as users write them. Unknown keys
//! are errors; values keep their spans so later checks can point at them.
//! Every key is documented in `docs/spec.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpecFile {
    /// Default output location for `hoist build` without `--output`.
    pub output: Option<Spanned<String>>,
    /// The registry repository of the shared layer cache, read and written.
    pub cache_repo: Option<Spanned<String>>,
    /// `[defaults]`: keys every `[[image]]` takes unless it sets them itself.
    pub defaults: Option<Spanned<DefaultsSpec>>,
    #[serde(rename = "image", default)]
    pub images: Vec<Spanned<ImageSpec>>,
}

/// `[defaults]`: every `[[image]]` key but `name`, `layer` and `repository`.
/// The keys an image does not set come from here (see [`super::defaults`]).
/// Serialized only to fingerprint the defaults an image uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DefaultsSpec {
    pub base: Option<Spanned<String>>,
    pub platforms: Option<Vec<Spanned<String>>>,
    pub compression: Option<Spanned<String>>,
    pub compression_level: Option<Spanned<i64>>,
    pub source_date_epoch: Option<Spanned<i64>>,
    pub tags: Option<Spanned<toml::Value>>,
    pub sbom: Option<bool>,
    pub provenance: Option<Spanned<toml::Value>>,
    pub skip_unchanged: Option<bool>,
    /// The gate decides whether an image is published, not its bytes: it
    /// is left out of the defaults an image is fingerprinted with.
    #[serde(skip_serializing)]
    pub scan: Option<ScanSpec>,
    pub config: Option<ConfigSpec>,
    /// Keys an image cannot share; accepted here only to refuse them with
    /// a message that says why.
    #[serde(skip_serializing)]
    pub name: Option<Spanned<toml::Value>>,
    #[serde(skip_serializing)]
    pub layer: Option<Spanned<toml::Value>>,
    #[serde(skip_serializing)]
    pub repository: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSpec {
    pub name: Spanned<String>,
    pub base: Option<Spanned<String>>,
    pub platforms: Option<Vec<Spanned<String>>>,
    pub compression: Option<Spanned<String>>,
    pub compression_level: Option<Spanned<i64>>,
    pub source_date_epoch: Option<Spanned<i64>>,
    /// Registry repository `hoist build --push` pushes to.
    pub repository: Option<Spanned<String>>,
    /// A plain list of tags, or a tag strategy table.
    pub tags: Option<Spanned<toml::Value>>,
    /// Attach SPDX and CycloneDX SBOMs.
    pub sbom: Option<bool>,
    /// Attach SLSA provenance: `true`, or `"max"` to add build times.
    pub provenance: Option<Spanned<toml::Value>>,
    /// Skip the image when the published one was built from the same inputs.
    pub skip_unchanged: Option<bool>,
    /// The vulnerability gate `hoist build` runs before publishing.
    pub scan: Option<ScanSpec>,
    pub config: Option<ConfigSpec>,
    #[serde(rename = "layer", default)]
    pub layers: Vec<Spanned<LayerSpec>>,
}

/// `scan = { fail-on = "critical", db = "osv/" }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScanSpec {
    pub fail_on: Option<Spanned<String>>,
    pub db: Option<Spanned<String>>,
    pub fail_on_unknown: Option<bool>,
    pub allow_incomplete: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigSpec {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub ports: Option<Vec<Spanned<String>>>,
    pub volumes: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LayerSpec {
    pub name: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
    pub exclude: Option<Vec<String>>,
    pub files: Option<Vec<FileSpec>>,
    pub owner: Option<Spanned<String>>,
    pub permissions: Option<Spanned<String>>,
    pub remove: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSpec {
    pub source: Spanned<String>,
    pub target: Spanned<String>,
    pub mode: Option<Spanned<ModeValue>>,
    pub exclude: Option<Vec<String>>,
}

/// A file mode: an octal string (`"0755"`) or a TOML integer (`0o755`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ModeValue {
    Text(String),
    Number(i64),
}

impl std::fmt::Display for ModeValue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModeValue::Text(text) => write!(formatter, "{text}"),
            ModeValue::Number(number) => write!(formatter, "{number:#o}"),
        }
    }
}

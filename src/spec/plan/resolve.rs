//! The second half of planning: each image's keys checked and resolved
//! against the spec's text (for line and column in errors) and its
//! directory (for source paths), as [`super::Plan`] asks image by image.

use super::super::error::{SpecError, SpecLocation};
use super::super::file::{ConfigSpec, ImageSpec, LayerSpec};
use super::*;

pub(super) struct Resolver<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    pub(super) directory: &'a Path,
}

impl Resolver<'_> {
    pub(super) fn invalid(&self, span: Range<usize>, key: &str, message: String) -> SpecError {
        SpecError::Invalid {
            location: SpecLocation::from_span(self.path, self.text, &span),
            key: key.to_string(),
            message,
        }
    }

    pub(super) fn absolute(&self, relative: &str) -> PathBuf {
        let path = Path::new(relative);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.directory.join(path)
        }
    }

    /// Parses a location; relative paths resolve against the spec's directory.
    pub(super) fn location(
        &self,
        text: &str,
        span: Range<usize>,
        key: &str,
    ) -> Result<Location, SpecError> {
        let location: Location = text.parse().map_err(|error: crate::oci::LocationError| {
            self.invalid(span, key, error.to_string())
        })?;
        Ok(match location {
            Location::Layout { path, tag } => Location::Layout {
                path: self.absolute_path(&path),
                tag,
            },
            Location::OciArchive { path, tag } => Location::OciArchive {
                path: self.absolute_path(&path),
                tag,
            },
            Location::DockerArchive { path, reference } => Location::DockerArchive {
                path: self.absolute_path(&path),
                reference,
            },
            registry @ Location::Registry { .. } => registry,
        })
    }

    pub(super) fn absolute_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.directory.join(path)
        }
    }

    pub(super) fn image(
        &self,
        image: &ImageSpec,
        epoch: u64,
        wanted: &[Platform],
    ) -> Result<ImagePlan, SpecError> {
        let name = image.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            return Err(self.invalid(
                image.name.span(),
                "name",
                format!("`{name}` is not a valid image name: use lowercase letters, digits, `.`, `_` and `-`"),
            ));
        }
        let base = match &image.base {
            None => BaseImage::Scratch,
            Some(base) if base.get_ref() == "scratch" => BaseImage::Scratch,
            Some(base) => {
                let text = base.get_ref();
                let is_transport = ["oci:", "oci-archive:", "docker-archive:", "docker://"]
                    .iter()
                    .any(|prefix| text.starts_with(prefix));
                if is_transport {
                    BaseImage::Location(self.location(text, base.span(), "base")?)
                } else {
                    // A bare reference like `debian:bookworm-slim` names a registry image.
                    BaseImage::Location(Location::Registry {
                        reference: text.clone(),
                    })
                }
            }
        };

        let mut platforms = Vec::new();
        match &image.platforms {
            None => platforms.push(Platform::new("linux", "amd64", None)),
            Some(list) => {
                if list.is_empty() {
                    return Err(self.invalid(
                        0..0,
                        "platforms",
                        "must list at least one platform".into(),
                    ));
                }
                for platform in list {
                    let parsed: Platform = platform.get_ref().parse().map_err(
                        |error: crate::oci::PlatformError| {
                            self.invalid(platform.span(), "platforms", error.to_string())
                        },
                    )?;
                    if platforms.contains(&parsed) {
                        return Err(self.invalid(
                            platform.span(),
                            "platforms",
                            format!("{parsed} is listed twice"),
                        ));
                    }
                    platforms.push(parsed);
                }
            }
        }
        if !wanted.is_empty() {
            for platform in wanted {
                if !platforms
                    .iter()
                    .any(|available| platform.matches(available))
                {
                    return Err(SpecError::UnknownPlatform {
                        image: name.clone(),
                        platform: platform.to_string(),
                        available: platforms
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            platforms.retain(|available| wanted.iter().any(|platform| platform.matches(available)));
        }

        let compression = self.compression(image)?;
        let config = self.config(image.config.as_ref())?;
        let repository = image
            .repository
            .as_ref()
            .map(|repository| repository.get_ref().clone());
        let tags = match &image.tags {
            Some(tags) => Some(self.tags(tags)?),
            None => None,
        };
        let provenance = match &image.provenance {
            None => None,
            Some(value) => match value.get_ref() {
                toml::Value::Boolean(false) => None,
                toml::Value::Boolean(true) => Some(ProvenanceLevel::Min),
                toml::Value::String(text) if text == "min" => Some(ProvenanceLevel::Min),
                toml::Value::String(text) if text == "max" => Some(ProvenanceLevel::Max),
                _ => {
                    return Err(self.invalid(
                        value.span(),
                        "provenance",
                        "must be true, false, \"min\" or \"max\"".into(),
                    ));
                }
            },
        };

        let mut layers = Vec::new();
        for (position, layer) in image.layers.iter().enumerate() {
            layers.push(self.layer(layer.get_ref(), layer.span(), position, &platforms)?);
        }
        Ok(ImagePlan {
            name,
            base,
            platforms,
            compression,
            epoch,
            config,
            repository,
            tags,
            skip_unchanged: image.skip_unchanged.unwrap_or(false),
            section: String::new(),
            layers,
            sbom: image.sbom.unwrap_or(false),
            provenance,
            scan: match &image.scan {
                Some(scan) => Some(
                    super::super::scan::resolve(scan, self.directory)
                        .map_err(|error| self.invalid(error.span, error.key, error.message))?,
                ),
                None => None,
            },
        })
    }

    /// `tags` as a [`crate::ci::TagSpec`], every template and format checked
    /// now so a typo fails the first build rather than the first release.
    pub(super) fn tags(
        &self,
        tags: &toml::Spanned<toml::Value>,
    ) -> Result<crate::ci::TagSpec, SpecError> {
        let spec: crate::ci::TagSpec =
            tags.get_ref()
                .clone()
                .try_into()
                .map_err(|error: toml::de::Error| {
                    self.invalid(tags.span(), "tags", error.message().trim().to_string())
                })?;
        spec.validate()
            .map_err(|error| self.invalid(tags.span(), "tags", error.to_string()))?;
        Ok(spec)
    }

    pub(super) fn compression(&self, image: &ImageSpec) -> Result<Compression, SpecError> {
        let name = image
            .compression
            .as_ref()
            .map_or("gzip", |value| value.get_ref().as_str());
        let level = image.compression_level.as_ref();
        let check_level =
            |range: std::ops::RangeInclusive<i64>, default: i64| -> Result<i64, SpecError> {
                match level {
                    None => Ok(default),
                    Some(level) if range.contains(level.get_ref()) => Ok(*level.get_ref()),
                    Some(level) => Err(self.invalid(
                        level.span(),
                        "compression-level",
                        format!(
                            "{name} takes a level from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )),
                }
            };
        match name {
            "gzip" => Ok(Compression::Gzip {
                level: check_level(1..=9, i64::from(crate::layer::gzip::DEFAULT_LEVEL))? as u32,
            }),
            "zstd" => Ok(Compression::Zstd {
                level: check_level(1..=22, 3)? as i32,
            }),
            "none" => {
                if let Some(level) = level {
                    return Err(self.invalid(
                        level.span(),
                        "compression-level",
                        "has no meaning with compression = \"none\"".into(),
                    ));
                }
                Ok(Compression::None)
            }
            other => Err(self.invalid(
                image
                    .compression
                    .as_ref()
                    .map_or(0..0, |value| value.span()),
                "compression",
                format!("unknown compression `{other}`: use gzip, zstd or none"),
            )),
        }
    }

    pub(super) fn config(&self, config: Option<&ConfigSpec>) -> Result<ImageConfigPlan, SpecError> {
        let Some(config) = config else {
            return Ok(ImageConfigPlan::default());
        };
        let mut ports = BTreeSet::new();
        for port in config.ports.iter().flatten() {
            ports.insert(normalize_port(port.get_ref()).ok_or_else(|| {
                self.invalid(
                    port.span(),
                    "ports",
                    format!(
                        "`{}` is not a port: write PORT or PORT/tcp or PORT/udp",
                        port.get_ref()
                    ),
                )
            })?);
        }
        Ok(ImageConfigPlan {
            entrypoint: config.entrypoint.clone(),
            cmd: config.cmd.clone(),
            env: config.env.clone().unwrap_or_default(),
            user: config.user.clone(),
            workdir: config.workdir.clone(),
            ports,
            volumes: config.volumes.iter().flatten().cloned().collect(),
            labels: config.labels.clone().unwrap_or_default(),
            annotations: config.annotations.clone().unwrap_or_default(),
            stop_signal: config.stop_signal.clone(),
        })
    }

    pub(super) fn layer(
        &self,
        layer: &LayerSpec,
        span: Range<usize>,
        position: usize,
        platforms: &[Platform],
    ) -> Result<LayerTemplate, SpecError> {
        let name = layer.name.as_ref().map_or_else(
            || format!("layer-{}", position + 1),
            |name| name.get_ref().clone(),
        );
        let mut inputs = Vec::new();
        match (&layer.source, &layer.files) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    span,
                    "files",
                    format!("layer `{name}` has both `source` and `files`: use one per layer"),
                ));
            }
            (None, None) if layer.remove.as_ref().is_none_or(|remove| remove.is_empty()) => {
                return Err(self.invalid(
                    span,
                    "source",
                    format!("layer `{name}` has neither `source` nor `files` nor `remove`: give it content"),
                ));
            }
            (Some(source), None) => {
                let target = match &layer.target {
                    Some(target) => self.target(target.get_ref(), target.span())?,
                    None => "/".to_string(),
                };
                inputs.push(self.input(source, target, None, layer.exclude.clone(), platforms)?);
            }
            (None, Some(files)) => {
                if layer.target.is_some() || layer.exclude.is_some() {
                    return Err(self.invalid(
                        span,
                        "target",
                        "with `files`, give each file its own `target` (and `exclude`)".into(),
                    ));
                }
                for file in files {
                    let target = self.target(file.target.get_ref(), file.target.span())?;
                    let mode = match &file.mode {
                        None => None,
                        Some(mode) => Some(parse_mode(mode.get_ref()).ok_or_else(|| {
                            self.invalid(
                                mode.span(),
                                "mode",
                                format!(
                                    "`{}` is not a file mode: write octal digits like \"0755\"",
                                    mode.get_ref()
                                ),
                            )
                        })?),
                    };
                    inputs.push(self.input(
                        &file.source,
                        target,
                        mode,
                        file.exclude.clone(),
                        platforms,
                    )?);
                }
            }
            (None, None) => {}
        }
        let owner = match &layer.owner {
            None => OwnerPolicy::running_user_as_root(),
            Some(owner) if owner.get_ref() == "preserve" => OwnerPolicy::Preserve,
            Some(owner) => {
                let parsed = owner.get_ref().split_once(':').and_then(|(uid, gid)| {
                    Some(OwnerPolicy::Fixed {
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    })
                });
                parsed.ok_or_else(|| {
                    self.invalid(
                        owner.span(),
                        "owner",
                        format!("`{}` is not an owner: write UID:GID in numbers, e.g. \"65532:65532\", or \"preserve\"", owner.get_ref()),
                    )
                })?
            }
        };
        let permissions = match layer
            .permissions
            .as_ref()
            .map(|value| (value.get_ref().as_str(), value.span()))
        {
            None => Permissions::GitOrDisk,
            Some(("normalize", _)) => Permissions::Normalize,
            Some(("preserve", _)) => Permissions::Preserve,
            Some((other, span)) => {
                return Err(self.invalid(
                    span,
                    "permissions",
                    format!("unknown permissions `{other}`: use \"normalize\" or \"preserve\""),
                ));
            }
        };
        let mut remove = Vec::new();
        for path in layer.remove.iter().flatten() {
            remove.push(self.target(path.get_ref(), path.span())?);
        }
        Ok(LayerTemplate {
            name,
            inputs,
            owner,
            permissions,
            remove,
        })
    }

    pub(super) fn input(
        &self,
        source: &toml::Spanned<String>,
        target: String,
        mode: Option<u32>,
        exclude: Option<Vec<String>>,
        platforms: &[Platform],
    ) -> Result<InputTemplate, SpecError> {
        let text = source.get_ref();
        let mut rest = text.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .map_or(rest.len(), |end| start + end + 1);
            let placeholder = &rest[start..end];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(self.invalid(
                    source.span(),
                    "source",
                    format!(
                        "unknown placeholder `{placeholder}`: use {}",
                        PLACEHOLDERS.join(", ")
                    ),
                ));
            }
            rest = &rest[end..];
        }
        let exclude = exclude.unwrap_or_default();
        for pattern in &exclude {
            globset::Glob::new(pattern).map_err(|error| {
                self.invalid(
                    source.span(),
                    "exclude",
                    format!("`{pattern}` is not a glob: {error}"),
                )
            })?;
        }
        let absolute = self.absolute(text).to_string_lossy().into_owned();
        for platform in platforms {
            let expanded = PathBuf::from(expand(&absolute, platform));
            if let Err(error) = std::fs::symlink_metadata(&expanded) {
                let for_platform = if text.contains('{') {
                    format!(" (for {platform})")
                } else {
                    String::new()
                };
                return Err(self.invalid(
                    source.span(),
                    "source",
                    format!(
                        "{}{for_platform}: {error}: sources are relative to the spec's directory",
                        expanded.display()
                    ),
                ));
            }
        }
        Ok(InputTemplate {
            source: absolute,
            target,
            mode,
            exclude,
        })
    }

    /// Checks an in-image path and returns it normalized (`/a/b`).
    pub(super) fn target(&self, text: &str, span: Range<usize>) -> Result<String, SpecError> {
        if !text.starts_with('/') {
            return Err(self.invalid(
                span,
                "target",
                format!("`{text}` must be an absolute path in the image, e.g. /app"),
            ));
        }
        let mut parts = Vec::new();
        for component in Path::new(text).components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    return Err(self.invalid(
                        span,
                        "target",
                        format!("`{text}` must not contain `..`"),
                    ));
                }
                Component::Prefix(_) => {}
            }
        }
        Ok(format!("/{}", parts.join("/")))
    }
}

fn normalize_port(text: &str) -> Option<String> {
    let (port, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    let number: u32 = port.parse().ok()?;
    if number == 0 || number > 65535 || !["tcp", "udp", "sctp"].contains(&protocol) {
        return None;
    }
    Some(format!("{number}/{protocol}"))
}

fn parse_mode(value: &super::super::file::ModeValue) -> Option<u32> {
    let mode = match value {
        super::super::file::ModeValue::Text(text) => u32::from_str_radix(text, 8).ok()?,
        super::super::file::ModeValue::Number(number) => u32::try_from(*number).ok()?,
    };
    (mode <= 0o7777).then_some(mode)
}

//! `hoist build` as one library operation: a [`BuildRequest`] (the spec, the
//! outputs, what to attest, where the cache is) goes in, a [`BuildOutcome`]
//! comes out, and everything in between is reported as [`Event`]s. The
//! order is the pipeline's: plan and outputs checked, tags and skip
//! decisions, every image built (layers streamed to a registry that is the
//! only output), attested, then published, then the files CI reads.

mod checks;
mod files;
mod publish;
mod recorded;
mod retag;
mod verify;

pub use checks::Output;
pub use files::OutputFiles;
pub use recorded::Recorded;
pub use verify::{
    RecordCheck, RecordedInput, RecordedRun, VerifyError, VerifyOutcome, verify_build,
};

use super::attest::{AttachMode, AttestRequest, EvidenceError, attest_image};
use super::changes::{ChangesError, PrepareOptions, Prepared, prepare, revision};
use super::stream::RegistryStream;
use super::transport::{TransportError, Transports, own_registries, scope_credentials};
use super::{BuildError, BuildOptions, BuiltImage, build_image};
use crate::attest::provenance::{Builder, RunParameters, SourceRepository};
use crate::ci::{
    BuildMetadata, CiEnvironment, CiError, CiEvent, GitInfo, ImageMetadata, ImageStatus, Revision,
    RollbackRecord, RunMetadata,
};
use crate::image::Blob;
use crate::layer::{BlobStream, CacheError, FORMAT_VERSION, LayerCache, TrackedFiles};
use crate::oci::Location;
use crate::progress::{Event, Observer};
use crate::registry::ClientOptions;
use crate::spec::plan::ProvenanceLevel;
use crate::spec::{ImagePlan, Plan, PlanOptions, SpecError};
use checks::{blob_parent, check_outputs, only_registry_output, push_tags_of};
use publish::{Publishing, ToPublish};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Everything `hoist build` is asked to do.
pub struct BuildRequest {
    pub spec: PathBuf,
    pub plan: PlanOptions,
    /// Fixed locations; [`Output::Push`] for each image's own repository.
    /// Empty: the spec's `output`, else `oci:hoist-out`.
    pub outputs: Vec<Output>,
    /// Compute tags and check everything, but push nothing.
    pub dry_run: bool,
    /// Build only images whose inputs changed since their published image.
    pub changed: bool,
    /// With `--push`, an image found unchanged gets this run's tags (a
    /// manifest copy under each); false for `--changed=no-retag`.
    pub retag: bool,
    /// Tags added to every output.
    pub extra_tags: Vec<String>,
    pub jobs: usize,
    /// The layer cache's directory; `None` builds every layer afresh.
    pub cache: Option<PathBuf>,
    /// SBOMs for every image, besides those the spec asks for.
    pub sbom: bool,
    /// Provenance for every image, besides what the spec asks for.
    pub provenance: Option<ProvenanceLevel>,
    pub attach: AttachMode,
    pub registry: ClientOptions,
    pub files: OutputFiles,
}

/// What a build produced.
pub struct BuildOutcome {
    /// The top digest of the first image written (or skipped as unchanged).
    pub digest: String,
    pub metadata: BuildMetadata,
    pub rollback: Vec<RollbackRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "--push needs a repository for image `{image}`: set `repository = \"REGISTRY/NAME\"` in its [[image]] of {spec}"
    )]
    PushWithoutRepository { image: String, spec: String },
    #[error(
        "{location} can hold one image, but the spec builds {count} ({names}): pick one with --image NAME"
    )]
    OneImageOnly {
        location: String,
        count: usize,
        names: String,
    },
    #[error(
        "{location} holds a single-platform image, but `{image}` builds {platforms}: choose one with --platform"
    )]
    OnePlatformOnly {
        location: String,
        image: String,
        platforms: String,
    },
    #[error("--output {location}")]
    Destination {
        location: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error("creating a temporary directory for layer blobs in {path}")]
    BlobDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the layer cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error("starting worker threads")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("reading the git checkout of {path} for provenance")]
    Source {
        path: PathBuf,
        #[source]
        source: CiError,
    },
    #[error("writing image `{image}` to {location}")]
    Publish {
        image: String,
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading what {reference} points to before pushing")]
    Rollback {
        reference: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error(transparent)]
    Outputs(#[from] CiError),
    #[error("{what}")]
    OutputFile {
        what: String,
        #[source]
        source: CiError,
    },
    #[error("nothing was built")]
    NothingBuilt,
}

impl From<TransportError> for RunError {
    fn from(error: TransportError) -> RunError {
        RunError::Transport(Box::new(error))
    }
}

/// Builds every image of the spec and writes it to every output.
pub fn run_build(
    request: &BuildRequest,
    observer: &dyn Observer,
) -> Result<BuildOutcome, RunError> {
    let started_on = SystemTime::now();
    let started = Instant::now();
    let plan = Plan::load(&request.spec, &request.plan)?;
    let outputs = resolve_outputs(&plan, &request.outputs);
    check_outputs(&plan, &outputs)?;
    let transports = Transports::new(scope_credentials(
        request.registry.clone(),
        &build_registries(&plan, &outputs),
    ));
    let revision = std::thread::scope(|scope| {
        // A registry client starts a runtime and loads the system's CA
        // certificates, and git takes a few starts of its own: when the
        // client will be needed, both are made side by side. A failure here
        // is reported by the first real use.
        if needs_registry(&plan, &outputs) {
            scope.spawn(|| transports.registry().is_ok());
        }
        revision(&plan)
    })?;
    let first_output = outputs.iter().find_map(Output::location);
    let pushing = outputs.iter().any(|output| matches!(output, Output::Push));
    // git is asked what it tracks once per repository, for the inputs
    // digests and the layers alike.
    let tracked = Arc::new(TrackedFiles::new());
    let prepared = prepare(
        &plan,
        &revision,
        &PrepareOptions {
            pushing,
            changed: request.changed,
            retag: request.retag,
            extra_tags: &request.extra_tags,
            first_output,
            tracked: &tracked,
        },
        &transports,
        observer,
    )?;
    let parent = blob_parent(first_output);
    let blob_directory = tempfile::Builder::new()
        .prefix(".hoist-blobs-")
        .tempdir_in(&parent)
        .map_err(|source| RunError::BlobDirectory {
            path: parent.clone(),
            source,
        })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(request.jobs)
        .build()?;
    let context = Context {
        request,
        plan: &plan,
        outputs: &outputs,
        transports: &transports,
        pool: &pool,
        observer,
        revision: &revision,
        provenance: request.provenance,
    };
    let build_started = Instant::now();
    let options = BuildOptions {
        jobs: request.jobs,
        blob_directory: blob_directory.path().to_path_buf(),
        cache: open_cache(request.cache.as_deref())?,
        stream: None,
        tracked,
    };
    let (mut built, streams) = context.build_all(&prepared, &options)?;
    let referrers = context.attest_all(&mut built, &prepared, started_on)?;
    let build_time = build_started.elapsed();
    let publish_started = Instant::now();
    let (mut digest, mut images) = skipped_metadata(&prepared)?;
    let publishing = Publishing {
        plan: &plan,
        outputs: &outputs,
        extra_tags: &request.extra_tags,
        push_tags: &prepared.tags,
        dry_run: request.dry_run,
        record_rollback: request.files.rollback.is_some(),
        transports: &transports,
        pool: &pool,
        observer,
    };
    let to_publish: Vec<ToPublish<'_>> = built
        .iter()
        .zip(&referrers)
        .zip(&streams)
        .map(|((image, referrers), stream)| ToPublish {
            image,
            referrers,
            stream: stream.as_ref(),
        })
        .collect();
    let mut rollback = Vec::new();
    retag::retag_skipped(&prepared.skipped, request.dry_run, &transports, observer)?;
    for published in publishing.all(&to_publish)? {
        if digest.is_none() {
            digest = published.first_digest;
        }
        images.extend(published.metadata);
        rollback.extend(published.rollback);
    }
    let metadata = BuildMetadata {
        dry_run: request.dry_run,
        run: run_metadata(&revision, started_on),
        images,
        timings_ms: [
            ("build", build_time),
            ("publish", publish_started.elapsed()),
            ("total", started.elapsed()),
        ]
        .into_iter()
        .map(|(phase, time)| (phase.to_string(), time.as_millis() as u64))
        .collect(),
    };
    files::write(&metadata, &rollback, &request.files)?;
    Ok(BuildOutcome {
        digest: digest.ok_or(RunError::NothingBuilt)?,
        metadata,
        rollback,
    })
}

/// The run for the metadata file. The clock is read here, for this record
/// only; an environment that cannot be read leaves the CI fields empty (the
/// build already used what it could read of it).
fn run_metadata(revision: &crate::ci::Revision, started_on: SystemTime) -> RunMetadata {
    let seconds = |time: SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok())
            .unwrap_or(0)
    };
    let environment = CiEnvironment::from_process_env().unwrap_or_default();
    RunMetadata::new(
        &environment,
        revision,
        |name| std::env::var(name).ok(),
        seconds(started_on),
        seconds(SystemTime::now()),
    )
}

/// The outputs asked for, or the spec's `output`, or `oci:hoist-out`.
fn resolve_outputs(plan: &Plan, outputs: &[Output]) -> Vec<Output> {
    if !outputs.is_empty() {
        return outputs.to_vec();
    }
    let default = Location::Layout {
        path: PathBuf::from("hoist-out"),
        tag: None,
    };
    vec![Output::Location(plan.output.clone().unwrap_or(default))]
}

/// The registries the build pushes to, or, when it pushes nowhere, those its
/// bases come from: where credentials given for every registry go.
fn build_registries(plan: &Plan, outputs: &[Output]) -> Vec<String> {
    let mut written = Vec::new();
    for output in outputs {
        match output {
            Output::Location(location) => written.push(location.clone()),
            Output::Push => written.extend(plan.images.iter().filter_map(|image| {
                image
                    .repository
                    .clone()
                    .map(|reference| Location::Registry { reference })
            })),
        }
    }
    let bases = plan.images.iter().filter_map(|image| match &image.base {
        crate::spec::BaseImage::Location(location) => Some(location),
        crate::spec::BaseImage::Scratch => None,
    });
    own_registries(&written, bases)
}

fn needs_registry(plan: &Plan, outputs: &[Output]) -> bool {
    outputs.iter().any(|output| {
        matches!(
            output,
            Output::Push | Output::Location(Location::Registry { .. })
        )
    }) || plan.images.iter().any(|image| {
        matches!(
            image.base,
            crate::spec::BaseImage::Location(Location::Registry { .. })
        )
    })
}

fn open_cache(directory: Option<&std::path::Path>) -> Result<Option<Arc<LayerCache>>, RunError> {
    let Some(directory) = directory else {
        return Ok(None);
    };
    let cache = LayerCache::open(directory).map_err(|source| RunError::Cache {
        path: directory.to_path_buf(),
        source,
    })?;
    Ok(Some(Arc::new(cache)))
}

/// The images `--changed` skipped, as metadata, and the first one's digest.
fn skipped_metadata(prepared: &Prepared) -> Result<(Option<String>, Vec<ImageMetadata>), RunError> {
    let mut digest = None;
    let mut images = Vec::new();
    for skipped in &prepared.skipped {
        let tags = if skipped.retag.is_empty() {
            std::slice::from_ref(&skipped.tag)
        } else {
            skipped.retag.as_slice()
        };
        let mut metadata = ImageMetadata::from_manifest(
            &skipped.name,
            skipped.repository.as_deref(),
            &skipped.manifest,
            tags,
        )?;
        // Retagged when the skip gave it a tag of this run besides the one
        // it was found under.
        metadata.status = if skipped.retag.iter().any(|tag| *tag != skipped.tag) {
            ImageStatus::Retagged
        } else {
            ImageStatus::Skipped
        };
        images.push(metadata);
        digest.get_or_insert_with(|| skipped.manifest.digest().to_string());
    }
    Ok((digest, images))
}

/// What the build and attest phases share.
struct Context<'a> {
    request: &'a BuildRequest,
    plan: &'a Plan,
    outputs: &'a [Output],
    transports: &'a Transports,
    pool: &'a rayon::ThreadPool,
    observer: &'a dyn Observer,
    revision: &'a Revision,
    /// Provenance for every image (the request's, or what a verified
    /// image carries).
    provenance: Option<ProvenanceLevel>,
}

type Streams = Vec<Option<Arc<RegistryStream>>>;

impl Context<'_> {
    /// Builds everything before writing anything, so a failing image leaves
    /// no output half-written. Images build side by side, sharing the layer
    /// cache. With a registry as the only output, layers are pushed while
    /// they compress: blobs without a manifest are not an image.
    fn build_all(
        &self,
        prepared: &Prepared,
        options: &BuildOptions,
    ) -> Result<(Vec<BuiltImage>, Streams), RunError> {
        let built: Vec<(BuiltImage, Option<Arc<RegistryStream>>)> = self.pool.install(|| {
            use rayon::prelude::*;
            prepared
                .images
                .par_iter()
                .map(|image| self.build_one(image, options))
                .collect::<Result<_, RunError>>()
        })?;
        let (images, streams) = built.into_iter().unzip();
        for image in &images {
            report_built(image, self.observer);
        }
        Ok((images, streams))
    }

    fn build_one(
        &self,
        image: &ImagePlan,
        options: &BuildOptions,
    ) -> Result<(BuiltImage, Option<Arc<RegistryStream>>), RunError> {
        let target = if self.request.dry_run {
            None
        } else {
            only_registry_output(self.plan, self.outputs, &image.name)
        };
        let stream = match target {
            Some(location) => {
                RegistryStream::for_location(self.transports, &location)?.map(Arc::new)
            }
            None => None,
        };
        let options = BuildOptions {
            stream: stream.clone().map(|stream| stream as Arc<dyn BlobStream>),
            ..options.clone()
        };
        let built = build_image(image, &options, self.transports, self.observer)?;
        Ok((built, stream))
    }

    /// Attestations scan each image's files: CPU work, image by image on the
    /// pool like the layers.
    fn attest_all(
        &self,
        built: &mut [BuiltImage],
        prepared: &Prepared,
        started_on: SystemTime,
    ) -> Result<Vec<Vec<super::attest::Referrer>>, RunError> {
        self.pool.install(|| {
            use rayon::prelude::*;
            built
                .par_iter_mut()
                .zip(&prepared.images)
                .map(|(image, image_plan)| {
                    let mut tags = push_tags_of(&prepared.tags, &image.name).to_vec();
                    tags.extend(self.request.extra_tags.iter().cloned());
                    let request = self.attest_request(image_plan, tags, started_on)?;
                    Ok(attest_image(
                        image,
                        self.plan,
                        image_plan,
                        &request,
                        self.observer,
                    )?)
                })
                .collect()
        })
    }

    /// The attestations one image gets: the spec's `sbom` and `provenance`,
    /// turned on (never off) by the request.
    fn attest_request(
        &self,
        image: &ImagePlan,
        tags: Vec<String>,
        started_on: SystemTime,
    ) -> Result<AttestRequest, RunError> {
        let mut request = attest_request(
            self.plan,
            image,
            self.request.sbom,
            self.provenance,
            self.request.attach,
            tags,
            started_on,
        )?;
        request.run = run_parameters(self.revision);
        Ok(request)
    }
}

/// The attestations one image gets: the spec's `sbom` and `provenance`,
/// turned on (never off) by `sbom` and `provenance`. Provenance names the
/// git remote and commit of the spec's checkout.
pub fn attest_request(
    plan: &Plan,
    image: &ImagePlan,
    sbom: bool,
    provenance: Option<ProvenanceLevel>,
    attach: AttachMode,
    tags: Vec<String>,
    started_on: SystemTime,
) -> Result<AttestRequest, RunError> {
    let provenance = provenance.or(image.provenance);
    let source = if provenance.is_some() {
        GitInfo::discover(&plan.spec_directory)
            .map_err(|source| RunError::Source {
                path: plan.spec_directory.clone(),
                source,
            })?
            .and_then(|git| {
                git.remote_url.map(|url| SourceRepository {
                    url,
                    commit: git.commit,
                })
            })
    } else {
        None
    };
    Ok(AttestRequest {
        sbom: sbom || image.sbom,
        provenance,
        attach,
        tags,
        source,
        builder: Builder::from_environment(|name| std::env::var(name).ok()),
        run: RunParameters {
            format_version: FORMAT_VERSION,
            ..RunParameters::default()
        },
        started_on,
    })
}

/// What provenance records of the run: the event and ref the tags and
/// labels follow, and the layer format version.
pub fn run_parameters(revision: &Revision) -> RunParameters {
    let (event, git_ref) = match revision.event {
        CiEvent::Branch => (
            "branch",
            revision
                .branch
                .as_ref()
                .map(|branch| format!("refs/heads/{branch}")),
        ),
        CiEvent::Tag => (
            "tag",
            revision.tag.as_ref().map(|tag| format!("refs/tags/{tag}")),
        ),
        CiEvent::PullRequest => (
            "pull-request",
            revision
                .pull_request
                .map(|number| format!("refs/pull/{number}/merge")),
        ),
        CiEvent::Unknown => ("unknown", None),
    };
    RunParameters {
        event: event.to_string(),
        git_ref,
        format_version: FORMAT_VERSION,
    }
}

fn report_built(image: &BuiltImage, observer: &dyn Observer) {
    for platform in &image.platforms {
        observer.event(Event::ImageBuilt {
            image: image.name.clone(),
            platform: platform.platform.to_string(),
            digest: Blob::digest(&platform.image.manifest).clone(),
            size: platform.size,
            layers: platform.image.layers.len(),
        });
    }
}

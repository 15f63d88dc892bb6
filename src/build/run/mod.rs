//! `hoist build` as one library operation: a [`BuildRequest`] (the spec, the
//! outputs, what to attest, where the cache is) goes in, a [`BuildOutcome`]
//! comes out, and everything in between is reported as [`Event`]s. The
//! order is the pipeline's: plan and outputs checked, tags and skip
//! decisions, every image built (layers streamed to a registry that is the
//! only output), attested, then published, then the files CI reads.

mod attestations;
mod checks;
mod error;
mod files;
mod publish;
mod recorded;
mod registry_cache;
mod retag;
mod scan_attestation;
mod scan_gate;
mod verify;

pub use attestations::{attest_request, run_parameters};
pub use checks::Output;
pub use error::RunError;
pub use files::OutputFiles;
pub use recorded::Recorded;
pub use registry_cache::CacheRepositories;
pub use scan_gate::ScanGate;
pub use verify::{
    RecordCheck, RecordedInput, RecordedRun, VerifyError, VerifyOutcome, verify_build,
};

use super::attest::{AttachMode, AttestRequest, EvidenceError, attest_image};
use super::changes::{ChangesError, PrepareOptions, Prepared, prepare, revision};
use super::stream::RegistryStream;
use super::transport::{TransportError, Transports, scope_credentials};
use super::{BuildError, BuildOptions, BuiltImage, build_image};
use crate::ci::{
    BuildMetadata, CiEnvironment, CiError, ImageMetadata, ImageStatus, Revision, RollbackRecord,
    RunMetadata,
};
use crate::image::Blob;
use crate::layer::{BlobStream, CacheError, LayerCache, TrackedFiles};
use crate::oci::Location;
use crate::progress::{Event, Observer};
use crate::registry::ClientOptions;
use crate::spec::plan::ProvenanceLevel;
use crate::spec::{ImagePlan, Plan, PlanOptions, SpecError};
use checks::{
    blob_parent, build_registries, check_outputs, needs_registry, only_registry_output,
    push_tags_of, resolve_outputs,
};
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
    /// The layer cache in a registry: what it reads and writes.
    pub registry_cache: CacheRepositories,
    /// SBOMs for every image, besides those the spec asks for.
    pub sbom: bool,
    /// Provenance for every image, besides what the spec asks for.
    pub provenance: Option<ProvenanceLevel>,
    pub attach: AttachMode,
    pub registry: ClientOptions,
    pub files: OutputFiles,
    /// `--scan` and its flags; images whose spec has `scan` are scanned
    /// without it.
    pub scan: ScanGate,
}

/// What a build produced.
pub struct BuildOutcome {
    /// The top digest of the first image written (or skipped as unchanged).
    pub digest: String,
    pub metadata: BuildMetadata,
    pub rollback: Vec<RollbackRecord>,
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
    let mut registries = build_registries(&plan, &outputs);
    registries.extend(request.registry_cache.written_hosts(&plan, request.dry_run));
    let transports = Transports::new(scope_credentials(request.registry.clone(), &registries));
    let revision = revision_while_connecting(&plan, &outputs, &transports)?;
    // git is asked what it tracks once per repository, for the inputs
    // digests and the layers alike.
    let tracked = Arc::new(TrackedFiles::new());
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
    let prepared = context.prepare(&tracked)?;
    // The blobs live there until they are published.
    let blob_directory = blob_directory(outputs.iter().find_map(Output::location))?;
    let build_started = Instant::now();
    let options = BuildOptions {
        jobs: request.jobs,
        blob_directory: blob_directory.path().to_path_buf(),
        cache: open_cache(request.cache.as_deref())?,
        stream: None,
        tracked,
        shared: registry_cache::open(&request.registry_cache, &plan, request.dry_run, &transports)?,
        cache_target: None,
    };
    let (mut built, streams) = context.build_all(&prepared, &options)?;
    let mut referrers = context.attest_all(&mut built, &prepared, started_on)?;
    let (scan, scan_referrers) =
        scan_gate::check_all(&request.scan, &built, &prepared.images, observer)?;
    for (attached, scanned) in referrers.iter_mut().zip(scan_referrers) {
        attached.extend(scanned);
    }
    let build_time = build_started.elapsed();
    if scan.as_ref().is_some_and(|scan| !scan.passed) {
        let timings = [
            ("build", build_time),
            ("publish", std::time::Duration::ZERO),
            ("total", started.elapsed()),
        ];
        return Err(stop_at_gate(request, &revision, started_on, timings, scan));
    }
    let publish_started = Instant::now();
    let published = context.publish_all(&prepared, &built, &streams, &referrers)?;
    registry_cache::record(
        options.shared.as_deref(),
        &built,
        &registry_cache::Targets {
            plan: &plan,
            outputs: &outputs,
            dry_run: request.dry_run,
            transports: &transports,
        },
        observer,
    )?;
    let timings = [
        ("build", build_time),
        ("publish", publish_started.elapsed()),
        ("total", started.elapsed()),
    ];
    finish(request, &revision, started_on, published, timings, scan)
}

/// The files CI reads written, and the run's outcome.
fn finish(
    request: &BuildRequest,
    revision: &Revision,
    started_on: SystemTime,
    published: RunPublished,
    timings: [(&str, std::time::Duration); 3],
    scan: Option<crate::ci::ScanGateMetadata>,
) -> Result<BuildOutcome, RunError> {
    let metadata = write_files(
        request,
        revision,
        started_on,
        published.images,
        &published.rollback,
        timings,
        scan,
    )?;
    Ok(BuildOutcome {
        digest: published.digest.ok_or(RunError::NothingBuilt)?,
        metadata,
        rollback: published.rollback,
    })
}

/// The metadata of the run, written with every file CI reads.
fn write_files(
    request: &BuildRequest,
    revision: &Revision,
    started_on: SystemTime,
    images: Vec<ImageMetadata>,
    rollback: &[RollbackRecord],
    timings: [(&str, std::time::Duration); 3],
    scan: Option<crate::ci::ScanGateMetadata>,
) -> Result<BuildMetadata, RunError> {
    let metadata = BuildMetadata {
        dry_run: request.dry_run,
        run: run_metadata(revision, started_on),
        images,
        timings_ms: timings
            .into_iter()
            .map(|(phase, time)| (phase.to_string(), time.as_millis() as u64))
            .collect(),
        scan,
    };
    files::write(&metadata, rollback, &request.files)?;
    Ok(metadata)
}

/// A failed gate ends the run before publishing; the files CI reads still
/// say why, with no image in them.
fn stop_at_gate(
    request: &BuildRequest,
    revision: &Revision,
    started_on: SystemTime,
    timings: [(&str, std::time::Duration); 3],
    scan: Option<crate::ci::ScanGateMetadata>,
) -> RunError {
    let reasons = scan
        .as_ref()
        .map(|scan| scan.reasons.join("; "))
        .unwrap_or_default();
    match write_files(
        request,
        revision,
        started_on,
        Vec::new(),
        &[],
        timings,
        scan,
    ) {
        Ok(_) => RunError::ScanGateFailed { reasons },
        Err(error) => error,
    }
}

/// The revision the run builds, read while the registry client starts.
fn revision_while_connecting(
    plan: &Plan,
    outputs: &[Output],
    transports: &Transports,
) -> Result<Revision, RunError> {
    Ok(std::thread::scope(|scope| {
        // A registry client starts a runtime and loads the system's CA
        // certificates, and git takes a few starts of its own: when the
        // client will be needed, both are made side by side. A failure here
        // is reported by the first real use.
        if needs_registry(plan, outputs) {
            scope.spawn(|| transports.registry().is_ok());
        }
        revision(plan)
    })?)
}

/// A temporary directory for the run's blobs, where [`blob_parent`] says.
fn blob_directory(first_output: Option<&Location>) -> Result<tempfile::TempDir, RunError> {
    let parent = blob_parent(first_output);
    tempfile::Builder::new()
        .prefix(".hoist-blobs-")
        .tempdir_in(&parent)
        .map_err(|source| RunError::BlobDirectory {
            path: parent.clone(),
            source,
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

/// What publishing left for the run's files.
struct RunPublished {
    /// The first image's digest, skipped images' included.
    digest: Option<String>,
    images: Vec<ImageMetadata>,
    rollback: Vec<RollbackRecord>,
}

impl Context<'_> {
    /// Tags and skip decisions for every image, before anything is built.
    fn prepare(&self, tracked: &TrackedFiles) -> Result<Prepared, RunError> {
        let outputs = self.outputs;
        let options = PrepareOptions {
            pushing: outputs.iter().any(|output| matches!(output, Output::Push)),
            changed: self.request.changed,
            retag: self.request.retag,
            extra_tags: &self.request.extra_tags,
            first_output: outputs.iter().find_map(Output::location),
            tracked,
        };
        Ok(prepare(
            self.plan,
            self.revision,
            &options,
            self.transports,
            self.observer,
        )?)
    }

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
        let targets = registry_cache::Targets {
            plan: self.plan,
            outputs: self.outputs,
            dry_run: self.request.dry_run,
            transports: self.transports,
        };
        let cache_target = match options.shared {
            Some(_) => targets.repository(&image.name)?,
            None => None,
        };
        let options = BuildOptions {
            stream: stream.clone().map(|stream| stream as Arc<dyn BlobStream>),
            cache_target,
            ..options.clone()
        };
        let built = build_image(image, &options, self.transports, self.observer)?;
        Ok((built, stream))
    }

    /// Skipped images retagged, then the built ones published with their
    /// referrers: the first digest, every image's metadata, and what a
    /// rollback needs.
    fn publish_all(
        &self,
        prepared: &Prepared,
        built: &[BuiltImage],
        streams: &Streams,
        referrers: &[Vec<super::attest::Referrer>],
    ) -> Result<RunPublished, RunError> {
        let (mut digest, mut images) = skipped_metadata(prepared)?;
        let publishing = Publishing {
            plan: self.plan,
            outputs: self.outputs,
            extra_tags: &self.request.extra_tags,
            push_tags: &prepared.tags,
            dry_run: self.request.dry_run,
            record_rollback: self.request.files.rollback.is_some(),
            transports: self.transports,
            pool: self.pool,
            observer: self.observer,
        };
        let to_publish: Vec<ToPublish<'_>> = built
            .iter()
            .zip(referrers)
            .zip(streams)
            .map(|((image, referrers), stream)| ToPublish {
                image,
                referrers,
                stream: stream.as_ref(),
            })
            .collect();
        let mut rollback = retag::retag_skipped(
            &prepared.skipped,
            self.request.dry_run,
            self.transports,
            self.observer,
        )?;
        for published in publishing.all(&to_publish)? {
            if digest.is_none() {
                digest = published.first_digest;
            }
            images.extend(published.metadata);
            rollback.extend(published.rollback);
        }
        Ok(RunPublished {
            digest,
            images,
            rollback,
        })
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

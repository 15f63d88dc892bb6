//! Turns pipeline events into what the user sees: progress bars on a
//! terminal, one JSON object per line with `--json`, nothing but the digest
//! with `--quiet`. Results go to stdout, everything else to stderr.

use bytesize::ByteSize;
use hoist::progress::{BlobOutcome, DeletedManifest};
use hoist::progress::{Event, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Quiet,
}

impl Mode {
    pub fn from_flags(json: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else {
            Mode::Human
        }
    }
}

pub struct Reporter {
    mode: Mode,
    /// With --json, warnings go to stderr as text, so stdout is one JSON
    /// document (`hoist tags --json`).
    warnings_on_stderr: bool,
    bars: Option<MultiProgress>,
    layers: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    pub fn new(mode: Mode) -> Self {
        let bars = (mode == Mode::Human && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter {
            mode,
            warnings_on_stderr: false,
            bars,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// Warnings as text on stderr in every mode, for commands whose stdout
    /// is a single JSON document.
    pub fn with_warnings_on_stderr(mut self) -> Self {
        self.warnings_on_stderr = true;
        self
    }

    /// A result line for people (not shown with --json or --quiet).
    pub fn line(&self, text: &str) {
        if self.mode == Mode::Human {
            self.println(text);
        }
    }

    /// A result line for --quiet only: what a script reads (a digest).
    pub fn quiet_line(&self, text: &str) {
        if self.mode == Mode::Quiet {
            self.println(text);
        }
    }

    /// A JSON event (only with --json).
    pub fn json(&self, value: Value) {
        if self.mode == Mode::Json {
            self.println(&value.to_string());
        }
    }

    /// The final digest: the last line of stdout in every mode but --json,
    /// where it is the last JSON object's `digest`.
    pub fn digest(&self, digest: &str) {
        match self.mode {
            Mode::Json => self.json(event_json(&Event::Done {
                digest: digest.to_string(),
            })),
            Mode::Human | Mode::Quiet => self.println(digest),
        }
    }

    pub fn warning(&self, message: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("warning: {message}"));
            }
            None => eprintln!("warning: {message}"),
        }
    }

    fn println(&self, text: &str) {
        let write = || {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        };
        // Bars redraw over stderr; results must not land in the middle of one.
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    /// Clears progress bars before results are printed.
    pub fn finish(&self) {
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
    }
}

impl Observer for Reporter {
    fn event(&self, event: Event) {
        if let Event::Warning { message } = &event {
            if self.mode == Mode::Json && !self.warnings_on_stderr {
                self.json(event_json(&event));
            } else {
                self.warning(message);
            }
            return;
        }
        if let Some(text) = result_line(&event) {
            // Results of a decision, not progress: shown with or without a terminal.
            match self.mode {
                Mode::Human => self.line(&text),
                Mode::Json if matches!(event, Event::ReferrerGone(_)) => {}
                Mode::Json => self.json(event_json(&event)),
                // What a script reads: the digest of each manifest deleted.
                Mode::Quiet => {
                    if let Event::ManifestDeleted(deleted) | Event::WouldDelete(deleted) = &event {
                        self.println(deleted.digest.as_ref());
                    }
                }
            }
            return;
        }
        match self.mode {
            Mode::Json if matches!(event, Event::BlobProgress { .. }) => {}
            Mode::Json => self.json(event_json(&event)),
            Mode::Quiet => {}
            Mode::Human => {
                let Some(bars) = &self.bars else { return };
                let mut layers = self.layers.lock().expect("progress lock");
                match event {
                    Event::LayerStarted {
                        image,
                        platform,
                        layer,
                    } => {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                                .expect("template"),
                        );
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar.set_message(format!("{image} {platform} {layer}"));
                        layers.insert(format!("{image}/{platform}/{layer}"), bar);
                    }
                    Event::LayerDone {
                        image,
                        platform,
                        layer,
                        size,
                        cached,
                        from_registry,
                        ..
                    } => {
                        if let Some(bar) = layers.remove(&format!("{image}/{platform}/{layer}")) {
                            let how = match (from_registry, cached) {
                                (true, _) => "from the registry cache",
                                (false, true) => "cached",
                                (false, false) => "built",
                            };
                            bar.finish_with_message(format!(
                                "{image} {platform} {layer}: {how}, {}",
                                indicatif::HumanBytes(size)
                            ));
                        }
                    }
                    Event::BlobProgress {
                        digest,
                        bytes,
                        size,
                    } => {
                        let key = digest.to_string();
                        let bar = layers.entry(key).or_insert_with(|| {
                            let bar = bars.add(ProgressBar::new(size));
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "{msg} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar}",
                                )
                                .expect("template"),
                            );
                            bar.set_message(short_digest(&digest));
                            bar
                        });
                        bar.set_position(bytes);
                    }
                    Event::LayerCacheRecorded {
                        repository, digest, ..
                    } => {
                        let _ = bars.println(format!("cached {digest} in {repository}"));
                    }
                    Event::BlobDone {
                        digest,
                        size,
                        outcome,
                    } => {
                        if let Some(bar) = layers.remove(&digest.to_string()) {
                            bar.finish_and_clear();
                        }
                        let _ = bars.println(format!(
                            "{} {} {}",
                            outcome_name(outcome),
                            digest,
                            indicatif::HumanBytes(size)
                        ));
                    }
                    // Handled above, in every mode; a write to a local
                    // output has no line of its own.
                    Event::Warning { .. }
                    | Event::ImageUnchanged { .. }
                    | Event::ImageChanged { .. }
                    | Event::ImageBuilt { .. }
                    | Event::ImageWritten { .. }
                    | Event::ImageRetagged { .. }
                    | Event::WouldPush { .. }
                    | Event::ImageCopied { .. }
                    | Event::ImageSigned { .. }
                    | Event::LoggedIn { .. }
                    | Event::LoggedOut { .. }
                    | Event::AttestationFound { .. }
                    | Event::SignatureVerified { .. }
                    | Event::CachePruned { .. }
                    | Event::ScanCachePruned { .. }
                    | Event::Tagged { .. }
                    | Event::TagKept { .. }
                    | Event::RegistryApiUsed { .. }
                    | Event::ManifestDeleted(_)
                    | Event::WouldDelete(_)
                    | Event::ReferrerGone(_)
                    | Event::ScanDatabaseOpened { .. }
                    | Event::ScanPlatformMatched { .. }
                    | Event::Done { .. } => {}
                }
            }
        }
    }
}

/// The word a progress line gives a blob's outcome, as `--json` names it.
fn outcome_name(outcome: BlobOutcome) -> &'static str {
    match outcome {
        BlobOutcome::Uploaded => "uploaded",
        BlobOutcome::Mounted => "mounted",
        BlobOutcome::Existed => "skipped",
    }
}

/// The line a person sees for an event that reports a decision.
fn result_line(event: &Event) -> Option<String> {
    match event {
        Event::ImageBuilt {
            image,
            platform,
            digest,
            size,
            layers,
        } => Some(format!(
            "{image} {platform} {digest} {size} {layers} layers"
        )),
        Event::ImageWritten {
            image,
            output,
            registry: true,
            tags,
            uploaded,
            bytes,
            mounted,
            existed,
            streamed,
            ..
        } => Some(format!(
            "pushed {image} to {} ({}): {uploaded} blobs uploaded ({bytes} bytes), {mounted} mounted, {existed} already there ({streamed} of them streamed while building)",
            output.trim_start_matches("docker://"),
            tags.join(", "),
        )),
        Event::WouldPush {
            image,
            repository,
            digest,
            tags,
        } => Some(format!(
            "would push {image} to {repository} ({}): {digest}",
            if tags.is_empty() {
                "no tags".to_string()
            } else {
                tags.join(", ")
            }
        )),
        Event::ImageRetagged {
            image,
            repository,
            digest,
            tags,
        } => Some(format!(
            "tagged {image} in {repository} ({}): {digest}, unchanged, no blob moved",
            tags.join(", ")
        )),
        Event::ImageUnchanged {
            image,
            target,
            inputs,
            ..
        } => Some(format!(
            "{image} unchanged: {target} was built from the same inputs ({inputs}); skipped"
        )),
        Event::ImageChanged {
            image,
            target,
            inputs,
        } => Some(format!(
            "{image} changed since {target} (inputs {inputs}): building"
        )),
        Event::ImageCopied {
            source,
            destination,
            uploaded,
            bytes,
            mounted,
            existed,
        } => Some(format!(
            "copied {source} to {destination}: {uploaded} blobs uploaded ({bytes} bytes), {mounted} mounted, {existed} already there"
        )),
        Event::ImageSigned {
            digest,
            identity,
            signature,
        } => Some(format!("signed {digest} ({identity}) as {signature}")),
        Event::SignatureVerified {
            digest,
            identity,
            layer,
            claims,
        } => Some(format!(
            "verified {digest} signed for {identity} (signature layer {layer}{})",
            claims
                .as_ref()
                .map(|claims| format!(", claims {claims}"))
                .unwrap_or_default()
        )),
        Event::AttestationFound {
            subject,
            form,
            kind,
            digest,
        } => Some(format!("{subject} {form} {kind} {digest}")),
        Event::LoggedIn { registry, path } => Some(format!(
            "Login succeeded: credentials for {registry} are in {path}"
        )),
        Event::LoggedOut {
            registry,
            removed: true,
        } => Some(format!("Removed the credentials for {registry}")),
        Event::LoggedOut {
            registry,
            removed: false,
        } => Some(format!("No credentials were stored for {registry}")),
        Event::CachePruned {
            directory,
            removed_entries,
            removed_bytes,
            remaining_bytes,
        } => Some(format!(
            "{directory}: removed {removed_entries} layers ({}), {} remain",
            ByteSize::b(*removed_bytes).display().iec(),
            ByteSize::b(*remaining_bytes).display().iec(),
        )),
        Event::ScanCachePruned {
            directory,
            removed_files,
            removed_bytes,
            remaining_files,
            remaining_bytes,
        } => {
            let [removed, remaining] =
                [removed_bytes, remaining_bytes].map(|bytes| ByteSize::b(*bytes).display().iec());
            Some(format!(
                "{directory}: removed {removed_files} scan indexes ({removed}), \
                 {remaining_files} remain ({remaining})"
            ))
        }
        Event::Tagged { reference, digest } => Some(format!("{reference} now points at {digest}")),
        Event::RegistryApiUsed {
            repository,
            api,
            asked,
            dated_by,
        } => Some(format!(
            "{repository}: through the {api} API ({}), images dated by {}",
            if *asked {
                "--registry-api"
            } else {
                "from the registry's host"
            },
            if dated_by == "push-time" {
                "push time"
            } else {
                "their config's created"
            }
        )),
        Event::TagKept { tag, reason } => Some(format!("keep {tag}: {reason}")),
        Event::ManifestDeleted(deleted) => Some(deleted_line("deleted", deleted)),
        Event::WouldDelete(deleted) => Some(deleted_line("would delete", deleted)),
        Event::ReferrerGone(DeletedManifest {
            digest,
            child_of: Some(parent),
            ..
        }) => Some(format!("{digest}, listed by {parent}, was gone already")),
        Event::ReferrerGone(DeletedManifest {
            reference: Some(reference),
            referrer_of: Some(subject),
            ..
        }) => Some(format!(
            "{reference}, a referrer of {subject}, went with it"
        )),
        Event::ReferrerGone(DeletedManifest {
            digest,
            referrer_of,
            ..
        }) => Some(format!(
            "{digest} (a referrer of {}) went with it",
            referrer_of
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        )),
        _ => None,
    }
}

/// The line for a deleted manifest: `hoist delete` names it by reference,
/// `hoist prune` by digest and the tags that went with it.
fn deleted_line(verb: &str, deleted: &DeletedManifest) -> String {
    let digest = &deleted.digest;
    if let Some(parent) = &deleted.child_of {
        let shown = deleted.reference.as_deref().unwrap_or(digest.as_ref());
        return format!("{verb} {shown}, listed by {parent}");
    }
    match (
        &deleted.reference,
        &deleted.attached_to,
        &deleted.referrer_of,
    ) {
        (Some(reference), _, Some(subject)) => {
            format!("{verb} {reference}, a referrer of {subject}")
        }
        (Some(reference), Some(_), None) => {
            format!("{verb} {reference} ({digest}), attached to it")
        }
        (Some(reference), None, None) => format!("{verb} {reference} ({digest})"),
        (None, _, Some(subject)) => format!("{verb} {digest} (a referrer of {subject})"),
        (None, _, None) => format!(
            "{verb} {digest} ({})",
            deleted.tags.as_deref().unwrap_or_default().join(", ")
        ),
    }
}

/// `sha256:0123456789ab`: enough to tell blobs apart on a progress line.
fn short_digest(digest: &hoist::oci::Digest) -> String {
    let text = digest.to_string();
    text.chars().take(19).collect()
}

/// An event as its `--json` line: the library's serialization of it.
fn event_json(event: &Event) -> Value {
    serde_json::to_value(event).unwrap_or_else(
        |error| json!({"event": "warning", "message": format!("an event could not be written as JSON: {error}")}),
    )
}

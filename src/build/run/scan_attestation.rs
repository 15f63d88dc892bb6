//! `--attest-scan`: one platform image's scan result as an in-toto
//! statement of cosign's vulnerability predicate, attached as an OCI
//! referrer only. In the index it would make the image's digest depend on
//! the database's date and the time of the scan.

use super::RunError;
use crate::attest::{self, Subject};
use crate::build::BuiltPlatform;
use crate::build::attest::{IN_TOTO_ARTIFACT_TYPE, Referrer};
use crate::image::{Blob, BytesBlob};
use crate::scan::matcher::Finding;
use crate::scan::osv::Database;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;
use std::collections::HashMap;

/// cosign's vulnerability attestation.
pub const PREDICATE_TYPE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// When a scan ran, RFC 3339 in UTC.
pub(super) fn now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default();
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The referrer carrying `findings` of `platform` of image `image`.
pub(super) fn vulnerability_referrer(
    image: &str,
    platform: &BuiltPlatform,
    findings: &[&Finding],
    database: &Database,
    started: &str,
) -> Result<Referrer, RunError> {
    let subject = platform.image.manifest.descriptor().clone();
    let failed = |source| RunError::ScanCatalog {
        image: image.to_string(),
        platform: platform.platform.to_string(),
        source: Box::new(source),
    };
    let predicate = json!({
        "invocation": { "parameters": null, "uri": "", "event_id": "", "builder.id": "" },
        "scanner": {
            "uri": "https://hoist.dev/scanner",
            "version": env!("CARGO_PKG_VERSION"),
            "db": {
                "uri": "https://osv.dev",
                "version": database.newest_modified.clone().unwrap_or_default(),
            },
            "result": { "findings": findings },
        },
        "metadata": { "scanStartedOn": started, "scanFinishedOn": now() },
    });
    let subjects = [Subject {
        name: image.to_string(),
        digest: subject.digest().clone(),
    }];
    let statement =
        attest::in_toto_statement(&subjects, PREDICATE_TYPE, predicate).map_err(failed)?;
    let mut blob = BytesBlob::new(
        MediaType::Other(IN_TOTO_ARTIFACT_TYPE.into()),
        statement.bytes,
    );
    blob.descriptor_mut().set_annotations(Some(HashMap::from([(
        attest::attach::PREDICATE_TYPE_ANNOTATION.to_string(),
        PREDICATE_TYPE.to_string(),
    )])));
    let manifest =
        attest::referrer_manifest(&subject, IN_TOTO_ARTIFACT_TYPE, blob).map_err(failed)?;
    let source = manifest.manifest.descriptor();
    let mut descriptor = Descriptor::new(
        MediaType::ImageManifest,
        source.size(),
        source.digest().clone(),
    );
    descriptor.set_artifact_type(Some(MediaType::Other(IN_TOTO_ARTIFACT_TYPE.into())));
    Ok(Referrer {
        subject: subject.digest().clone(),
        image: manifest,
        descriptor,
    })
}

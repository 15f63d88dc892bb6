//! The release `scripts/release.sh` builds (the static x86_64 binary, its
//! SHA256SUMS and SBOM in `target/dist`), made once per test run and shared
//! by every test that needs it: a release build takes minutes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/dist` after `scripts/release.sh --arch amd64` ran in this test
/// process (cargo rebuilds only what changed since the last run).
pub fn release_directory() -> &'static Path {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let root = crate::common::root();
        let directory = root.join("target").join("dist");
        let output = Command::new(root.join("scripts/release.sh"))
            .arg("--out")
            .arg(&directory)
            .arg("--arch")
            .arg("amd64")
            // The tests check what the static binary does, not its bytes:
            // without fat LTO and with parallel codegen the build takes a
            // fraction of the time on a 2-core runner. scripts/release.sh
            // alone builds the published binaries with the full profile.
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .output()
            .expect("scripts/release.sh runs");
        assert!(
            output.status.success(),
            "scripts/release.sh failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        directory
    })
}

/// The static x86_64 binary of the release.
pub fn static_hoist() -> PathBuf {
    release_directory().join("hoist-linux-amd64")
}

/// The release's SHA256SUMS as (file name, hex digest) pairs.
pub fn sums() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(release_directory().join("SHA256SUMS"))
        .expect("the release has SHA256SUMS");
    text.lines()
        .map(|line| {
            let (digest, name) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("SHA256SUMS line `{line}` is not `DIGEST  NAME`"));
            (name.to_string(), digest.to_string())
        })
        .collect()
}

#!/usr/bin/env bash
# hoist against the tools people use today, on the same machine and input:
# umoci repack, buildah (vfs, chroot), tar | pigz, tar | zstd, skopeo copy
# (to a loopback registry, and through benches/latency_proxy.py as if it
# were 20 ms away), plus hoist's own single-core codec, streaming push and
# rebuilds.
#
# The glibc build (cargo build --release) and the static release binary
# (scripts/release.sh: musl, mimalloc) run the gzip and zstd cases side by
# side.
#
# usage: benches/compare.sh [--quick] [--runs N] [--big-runs N] [--no-big] [--only REGEX]
#   --quick      one run of the 180 MB cases, no warm-up, no 1 GiB tree: a smoke run
#   --runs N     timed runs per case after the warm-up (default 5)
#   --big-runs N timed runs per case on the 1 GiB tree (default 5)
#   --no-big     skip the 1 GiB tree
#   --only REGEX run only the cases whose name matches (e.g. 'gzip|umoci', or
#                '^hoist build (gzip-3|zstd-3)($|, static)' for glibc and static side by side)
# Environment: HOIST_BENCH_WORK (default /var/tmp/hoist-bench) holds the
# inputs (cached) and scratch space; HOIST_FIXTURE_CACHE as for
# fixtures/debian-rootfs.sh.
#
# Needs root (debootstrap, umoci unpack, buildah), and: docker-registry,
# umoci, buildah, skopeo, pigz, zstd, GNU tar, GNU time, taskset, python3. Writes
# benches/results/latest.json and benches/results/latest.md (or under
# --results DIR).
set -euo pipefail

cd "$(dirname "$0")/.."

for command in docker-registry umoci buildah skopeo pigz zstd tar taskset python3; do
    if ! command -v "$command" >/dev/null; then
        echo "error: $command is not installed (scripts/install-test-tools.sh installs it)" >&2
        exit 1
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "error: GNU time (/usr/bin/time) is not installed (scripts/install-test-tools.sh installs it)" >&2
    exit 1
fi

rootfs=$(fixtures/debian-rootfs.sh)
cargo build --release --quiet
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
scripts/release.sh --arch amd64 --out "$target_dir/dist"
exec python3 benches/compare.py --hoist "$target_dir/release/hoist" \
    --hoist-static "$target_dir/dist/hoist-linux-amd64" --rootfs "$rootfs" "$@"

#!/usr/bin/env bash
# Builds hoist's release: a static Linux binary per architecture, their
# SHA-256 sums and a CycloneDX SBOM of hoist itself.
#
# usage: scripts/release.sh [--out DIR] [--arch amd64|arm64]...
#   --out DIR   where the release goes (default target/dist); it holds
#               hoist-linux-amd64, hoist-linux-arm64, SHA256SUMS, hoist.cdx.json
#   --arch A    the architectures to build (default: amd64 and arm64)
# Environment: SOURCE_DATE_EPOCH (default: the time of the last commit), the
# time the SBOM records; HOIST_RELEASE_TARGET_DIR, cargo's target directory
# (default target/release-build).
#
# amd64 is built for x86_64-unknown-linux-musl with Debian's musl-gcc for the
# C code (zstd, SQLite, ring, mimalloc); arm64 is cross-built for
# aarch64-unknown-linux-musl with cargo-zigbuild and zig cc (PyPI's
# cargo-zigbuild and ziglang). Both are static-pie executables with
# mimalloc as their allocator (Cargo.toml says why).
#
# The binaries are reproducible: two checkouts of one commit in different
# directories give the same bytes. Every absolute path that could reach a
# binary (the checkout, cargo's home, the target directory) is remapped, in
# Rust (--remap-path-prefix) and in C (-ffile-prefix-map); the release
# profile has one codegen unit and fat LTO, and symbols are stripped.
# cargo-auditable embeds the dependency list, which `hoist sbom` reads back
# into the SBOM.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$PWD"

out="target/dist"
architectures=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --out)
        out="$2"
        shift 2
        ;;
    --arch)
        architectures+=("$2")
        shift 2
        ;;
    *)
        echo "usage: $0 [--out DIR] [--arch amd64|arm64]..." >&2
        exit 2
        ;;
    esac
done
if [[ ${#architectures[@]} -eq 0 ]]; then
    architectures=(amd64 arm64)
fi

rust_target() { # OCI architecture -> Rust target triple
    case "$1" in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *)
        echo "error: no release target for architecture $1 (amd64 or arm64)" >&2
        exit 2
        ;;
    esac
}

require() { # command, what installs it
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "error: $1 is not installed ($2)" >&2
        exit 1
    fi
}

require cargo-auditable "cargo install --locked cargo-auditable"
for architecture in "${architectures[@]}"; do
    target="$(rust_target "$architecture")"
    if ! rustup target list --installed | grep -qx "$target"; then
        echo "error: the Rust target $target is not installed (rustup target add $target)" >&2
        exit 1
    fi
    case "$architecture" in
    amd64) require musl-gcc "apt-get install musl-tools" ;;
    arm64) require cargo-zigbuild "pip install cargo-zigbuild ziglang" ;;
    esac
done

# The SBOM's time: the caller's SOURCE_DATE_EPOCH, else the last commit's.
sbom_epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
# The compilers' (gcc's __DATE__, and the build scripts that watch the
# variable) get one fixed time, so the binaries do not depend on the commit
# time and a new commit does not rebuild every C dependency.
export SOURCE_DATE_EPOCH=1796431242

target_dir="${HOIST_RELEASE_TARGET_DIR:-$root/target/release-build}"
mkdir -p "$target_dir" "$out"
target_dir="$(cd "$target_dir" && pwd)"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

# The same remappings for Rust and C, longest path first so the target
# directory inside the checkout maps to /target, not /hoist/target.
remaps=("$target_dir=/target" "$root=/hoist" "$cargo_home=/cargo")
rust_flags=()
c_flags=()
for remap in "${remaps[@]}"; do
    rust_flags+=("--remap-path-prefix=$remap")
    c_flags+=("-ffile-prefix-map=$remap")
done
export CARGO_TARGET_DIR="$target_dir"
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_PROFILE_RELEASE_DEBUG=false

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The SBOM names the directory it catalogs: hoist-VERSION, not a random name.
staging="$scratch/hoist-$version"
mkdir "$staging"

for architecture in "${architectures[@]}"; do
    target="$(rust_target "$architecture")"
    target_variable="$(echo "$target" | tr 'a-z-' 'A-Z_')"
    build=(build)
    if [[ "$architecture" == arm64 ]]; then
        build=(zigbuild)
    fi
    echo "building hoist for linux/$architecture ($target)" >&2
    env "CARGO_TARGET_${target_variable}_RUSTFLAGS=${rust_flags[*]}" \
        "CFLAGS_${target//-/_}=${c_flags[*]}" \
        cargo auditable "${build[@]}" --locked --release --target "$target" --bin hoist
    install -m 0755 "$target_dir/$target/release/hoist" "$staging/hoist-linux-$architecture"
done

# The SBOM: hoist catalogs its own binaries (the dependency list
# cargo-auditable embedded), with the host's build when it is one of them.
host_binary=""
case "$(uname -m)" in
x86_64) host_binary="$staging/hoist-linux-amd64" ;;
aarch64) host_binary="$staging/hoist-linux-arm64" ;;
esac
if [[ -z "$host_binary" || ! -x "$host_binary" ]]; then
    echo "error: the SBOM needs the binary for this machine ($(uname -m)): add --arch for it" >&2
    exit 1
fi
SOURCE_DATE_EPOCH="$sbom_epoch" "$host_binary" sbom "$staging" --format cyclonedx-json --output "$staging/hoist.cdx.json"

(
    cd "$staging"
    sha256sum hoist-linux-* hoist.cdx.json >SHA256SUMS
)
for file in "$staging"/*; do
    install -m 0644 "$file" "$out/$(basename "$file")"
done
chmod 0755 "$out"/hoist-linux-*
echo "release written to $out:" >&2
cat "$out/SHA256SUMS" >&2

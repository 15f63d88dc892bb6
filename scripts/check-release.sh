#!/usr/bin/env bash
# Checks hoist's release the two ways its promises can be checked only with
# whole release builds, too slow for the test suite:
#
#   1. Reproducible: the commit is cloned into two directories of different
#      names and depths, scripts/release.sh builds each (full release
#      profile), and every file of the two releases must be the same bytes.
#   2. Same digests on every architecture: each release binary builds the
#      fixtures (fixtures/hello, the special tree, the Debian root filesystem
#      in gzip and zstd) and must print the digests the host's build prints;
#      a binary for another architecture runs under qemu-user-static
#      (qemu-aarch64-static on an x86_64 host).
#
# usage: scripts/check-release.sh [--arch amd64|arm64]... [--work DIR]
#                                 [--releases DIR_A DIR_B]
#   --arch A       the architectures to build and check (default: both)
#   --work DIR     where the clones and releases go (default: a new directory
#                  under /var/tmp, kept so the builds can be looked at)
#   --releases A B compare two releases already built instead of building
# Needs what scripts/release.sh needs, root and debootstrap (the Debian
# fixture), setcap (the special tree) and qemu-user-static. Exits 1 on any
# difference, naming the file or fixture.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$PWD"

architectures=()
work=""
releases=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --arch)
        architectures+=("$2")
        shift 2
        ;;
    --work)
        work="$2"
        shift 2
        ;;
    --releases)
        releases=("$2" "$3")
        shift 3
        ;;
    *)
        echo "usage: $0 [--arch amd64|arm64]... [--work DIR] [--releases DIR_A DIR_B]" >&2
        exit 2
        ;;
    esac
done
if [[ ${#architectures[@]} -eq 0 ]]; then
    architectures=(amd64 arm64)
fi
if [[ -z "$work" ]]; then
    work="$(mktemp -d /var/tmp/hoist-release-check.XXXXXX)"
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"
arch_flags=()
for architecture in "${architectures[@]}"; do
    arch_flags+=(--arch "$architecture")
done

# 1. Two builds of one commit in two directories.
if [[ ${#releases[@]} -eq 0 ]]; then
    commit="$(git rev-parse HEAD)"
    first="$work/a/hoist"
    second="$work/somewhere/else/entirely/hoist-checkout"
    for checkout in "$first" "$second"; do
        rm -rf "$checkout"
        git clone --quiet --no-checkout "$root" "$checkout"
        git -C "$checkout" checkout --quiet "$commit"
        echo "building the release of $commit in $checkout" >&2
        start=$SECONDS
        "$checkout/scripts/release.sh" --out "$checkout/dist" "${arch_flags[@]}"
        echo "built in $((SECONDS - start)) s" >&2
    done
    releases=("$first/dist" "$second/dist")
fi
status=0
echo "== reproducible: ${releases[0]} against ${releases[1]}"
for file in "${releases[0]}"/*; do
    name="$(basename "$file")"
    if cmp --silent "$file" "${releases[1]}/$name"; then
        echo "same bytes: $name ($(sha256sum <"$file" | cut -c1-16))"
    else
        echo "DIFFERENT: $name" >&2
        status=1
    fi
done

# 2. Every binary writes the host build's digests.
host_architecture=""
case "$(uname -m)" in
x86_64) host_architecture=amd64 ;;
aarch64) host_architecture=arm64 ;;
esac
runner() { # architecture -> the command prefix that runs its binary here
    if [[ "$1" == "$host_architecture" ]]; then
        return
    fi
    case "$1" in
    arm64) echo qemu-aarch64-static ;;
    amd64) echo qemu-x86_64-static ;;
    esac
}
fixtures="$work/fixtures"
mkdir -p "$fixtures"
fixtures/make-special-tree.sh "$fixtures/special" >/dev/null
debian="$(fixtures/debian-rootfs.sh)"
for codec in gzip zstd; do
    cat >"$fixtures/debian-$codec.toml" <<EOF
[[image]]
name = "rootfs"
compression = "$codec"
source-date-epoch = 1700000000

[[image.layer]]
source = "$debian"
target = "/"
owner = "preserve"
permissions = "preserve"
EOF
done
specs=("$root/fixtures/hello/hoist.toml" "$fixtures/special/hoist.toml"
    "$fixtures/debian-gzip.toml" "$fixtures/debian-zstd.toml")

build() { # label, spec, command... -> the top digest the build printed
    local label="$1" spec="$2"
    shift 2
    local out="$work/out/$label"
    rm -rf "$out" "$work/home/$label"
    mkdir -p "$work/home/$label"
    HOME="$work/home/$label" HOIST_CACHE="$work/home/$label/cache" \
        "$@" build --no-cache -f "$spec" -o "oci:$out:check" | tail -1
}
echo "== digests: each binary against the host's release binary"
reference_binary="${releases[0]}/hoist-linux-$host_architecture"
for spec in "${specs[@]}"; do
    name="$(basename "$(dirname "$spec")")-$(basename "$spec" .toml)"
    expected="$(build "reference-$name" "$spec" "$reference_binary")"
    for architecture in "${architectures[@]}"; do
        prefix="$(runner "$architecture")"
        start=$SECONDS
        # shellcheck disable=SC2086 # the runner prefix is one word or none
        got="$(build "$architecture-$name" "$spec" $prefix "${releases[0]}/hoist-linux-$architecture")"
        took=$((SECONDS - start))
        if [[ "$got" == "$expected" ]]; then
            echo "same digest: $name, linux/$architecture${prefix:+ under $prefix} (${took} s): $got"
        else
            echo "DIFFERENT: $name, linux/$architecture: $got, the host build: $expected" >&2
            status=1
        fi
    done
done
exit "$status"

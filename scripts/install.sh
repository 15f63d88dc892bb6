#!/usr/bin/env bash
# Installs a released static hoist binary: downloads SHA256SUMS and the
# binary for this machine from a release, checks the binary's SHA-256
# against the sums, and only then puts it in place. The GitHub Action
# (action.yml) runs it; it works the same on any Linux runner.
#
# usage: scripts/install.sh VERSION [DIR]
#   VERSION  the release, 1.2.3 or v1.2.3
#   DIR      where `hoist` goes (default ~/.local/bin); added to $GITHUB_PATH
#            when that is set
# Environment:
#   HOIST_RELEASE_URL  where releases are (default the GitHub releases of
#                      hoist-build/hoist); files are read from
#                      $HOIST_RELEASE_URL/v$VERSION/
#   HOIST_ARCH         amd64 or arm64 (default: this machine's)
# A binary already in DIR whose checksum matches the release's is kept (a
# cache restored it). Nothing is left in DIR unless its checksum matched.
set -euo pipefail

default_release_url="https://github.com/hoist-build/hoist/releases/download"

fail() {
    echo "error: $*" >&2
    exit 1
}

if [[ $# -lt 1 || $# -gt 2 || -z "$1" ]]; then
    echo "usage: $0 VERSION [DIR]" >&2
    exit 2
fi
version="${1#v}"
directory="${2:-$HOME/.local/bin}"
release_url="${HOIST_RELEASE_URL:-$default_release_url}"
release_url="${release_url%/}"

architecture="${HOIST_ARCH:-}"
if [[ -z "$architecture" ]]; then
    case "$(uname -m)" in
    x86_64 | amd64) architecture=amd64 ;;
    aarch64 | arm64) architecture=arm64 ;;
    *) fail "no hoist release for this machine ($(uname -m)): amd64 and arm64 are built" ;;
    esac
fi
if [[ "$(uname -s)" != Linux ]]; then
    fail "hoist releases are Linux binaries; this is $(uname -s) (use cargo install --locked hoist)"
fi

for command in curl sha256sum; do
    command -v "$command" >/dev/null 2>&1 || fail "$command is needed to install hoist"
done

name="hoist-linux-$architecture"
base="$release_url/v$version"
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT

# fetch URL FILE WHAT: a 404 means the release or the file does not exist.
fetch() {
    local status
    status="$(curl --silent --show-error --location --retry 3 --output "$2" \
        --write-out '%{http_code}' "$1")" ||
        fail "could not download $3 from $1"
    case "$status" in
    200) ;;
    404) fail "hoist $version has no $3 at $1: check the version (releases are tagged v1.2.3) and the release URL" ;;
    *) fail "downloading $3 from $1 answered HTTP $status" ;;
    esac
}

fetch "$base/SHA256SUMS" "$download/SHA256SUMS" "SHA256SUMS"
expected="$(awk -v name="$name" '$2 == name || $2 == "*" name { print $1 }' "$download/SHA256SUMS")"
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] ||
    fail "the SHA256SUMS of hoist $version at $base lists no checksum for $name"

installed="$directory/hoist"
if [[ -f "$installed" ]] && [[ "$(sha256sum "$installed" | cut -d' ' -f1)" == "$expected" ]]; then
    echo "hoist $version ($name) is already in $directory, checksum $expected" >&2
else
    fetch "$base/$name" "$download/$name" "$name"
    actual="$(sha256sum "$download/$name" | cut -d' ' -f1)"
    if [[ "$actual" != "$expected" ]]; then
        fail "$name of hoist $version from $base has SHA-256 $actual, but SHA256SUMS says $expected: not installed"
    fi
    mkdir -p "$directory"
    chmod 0755 "$download/$name"
    # A rename in the target directory, so no half-written hoist is ever on PATH.
    cp "$download/$name" "$directory/.hoist.partial"
    mv -f "$directory/.hoist.partial" "$installed"
    echo "installed hoist $version ($name) in $directory, checksum $expected" >&2
fi

if [[ -n "${GITHUB_PATH:-}" ]]; then
    echo "$directory" >>"$GITHUB_PATH"
fi
echo "$installed"

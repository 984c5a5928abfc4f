#!/usr/bin/env bash
# setup.sh: install softrec's Debian packages when missing, then configure and
# build. Idempotent; safe to re-run. Usage: launch/setup.sh [BUILD_DIR] [cmake args...]
#   SOFTREC_NO_APT=1   never call apt-get (packages must already be there)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$here/build}
shift || true

pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libcunit1-dev libinih-dev libjansson-dev zlib1g-dev libmetis-dev gnuplot-nox
      python3 munge slurm-client slurmctld slurmd   # this line: launch/report, slurm/, tests/slurm
      clang)   # the libFuzzer harnesses (-DSOFTREC_FUZZ=ON, tests/fuzz/README.md)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ ${SOFTREC_NO_APT:-0} == 1 ]]; then
    echo "setup: missing packages: ${missing[*]} (SOFTREC_NO_APT=1, not installing)" >&2; exit 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/softrec" >&2

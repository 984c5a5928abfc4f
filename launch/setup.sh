#!/usr/bin/env bash
# setup.sh: install softrec's Debian packages when missing, then configure and
# build. Idempotent and incremental: an existing build directory keeps its
# cache (only the cmake args given are changed) and rebuilds what changed.
# Usage: launch/setup.sh [--test] [BUILD_DIR] [cmake args...]
#   --test             also the test suite's extras (SLURM + munge for
#                      tests/slurm, clang for the libFuzzer harnesses,
#                      python3 + gnuplot for launch/report); test.sh uses it
#   SOFTREC_NO_APT=1   never call apt-get (packages must already be there)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=0
if [[ ${1:-} == --test ]]; then extras=1; shift; fi
build=${1:-$here/build}
shift || true

# What building and running softrec needs (the quickstart).
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libcunit1-dev libinih-dev libjansson-dev zlib1g-dev libmetis-dev)
if ((extras)); then
  pkgs+=(python3 gnuplot-nox                        # launch/report and its test
         munge slurm-client slurmctld slurmd        # slurm/ batch scripts, tests/slurm
         clang)                                     # -DSOFTREC_FUZZ=ON (tests/fuzz/README.md)
fi
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

# A new build directory gets RelWithDebInfo; an existing one keeps its cache
# (cmake --build re-runs the configure step itself when a CMakeLists changed).
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
elif (($#)); then
  cmake "$build" "$@" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/softrec" >&2

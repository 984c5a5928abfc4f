#!/usr/bin/env bash
# setup.sh: install softrec's Debian packages when missing, then configure and
# build. Idempotent and incremental: an existing build directory keeps its
# cache (only the cmake args given are changed) and rebuilds what changed.
# Usage: launch/setup.sh [--test] [--target T] [BUILD_DIR] [cmake args...]
#   --test             also the test suite's extras (SLURM + munge for
#                      tests/slurm, clang for the libFuzzer harnesses,
#                      python3 + gnuplot for launch/report, h5py + numpy
#                      for the Python-side tests); test.sh uses it
#   --target T         build only target T (quickstart.sh: softrec)
#   SOFTREC_NO_APT=1   never call apt-get (packages must already be there)
#   SOFTREC_VERBOSE=1  show cmake's output; otherwise it goes to
#                      BUILD_DIR/setup.log, printed only when a step fails
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=0 target=()
while [[ ${1:-} == --* ]]; do
  case $1 in
    --test) extras=1; shift ;;
    --target) target=(--target "${2:?--target needs a target}"); shift 2 ;;
    *) echo "setup: unknown option $1" >&2; exit 2 ;;
  esac
done
build=${1:-$here/build}
shift || true

# What building and running softrec needs (the quickstart).
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libcunit1-dev libinih-dev libjansson-dev zlib1g-dev libmetis-dev
      help2man)                                     # the man page (optional: skipped when absent)
if ((extras)); then
  pkgs+=(python3 gnuplot-nox                        # launch/report and its test
         python3-h5py python3-numpy                 # export/python-docs/h5py tests (Debian's /usr/bin/python3)
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
mkdir -p "$build"
log=$build/setup.log
: > "$log"
# quiet CMD...: run a build step into the log; on failure show the log.
quiet() {
  if [[ ${SOFTREC_VERBOSE:-0} == 1 ]]; then "$@"; return; fi
  "$@" >> "$log" 2>&1 || { cat "$log" >&2; echo "setup: failed: $* (log: $log)" >&2; return 1; }
}
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "setup: configuring $build" >&2
  quiet cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
elif (($#)); then
  quiet cmake "$build" "$@"
fi
echo "setup: building ${target[1]:-everything} in $build (log: $log)" >&2
quiet cmake --build "$build" -j"$(nproc)" "${target[@]}"
echo "setup: built $build/softrec" >&2

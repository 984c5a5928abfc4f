#!/usr/bin/env bash
# test.sh: build and run every test pass, print one summary line per pass,
# exit non-zero when any pass failed (a failing pass never hides the next).
#   main      setup.sh --test BUILD, then ctest over the whole suite: unit
#             tests, MPI tests at 1-4 ranks, corpus, scripts, SLURM, ...
#   sanitize  an AddressSanitizer + UBSan build in BUILD-asan, then ctest on
#             the labels corpus|unit|asan (asan: the allocation-failure sweep)
# Build directories are reused (incremental). Tests that cannot run here
# exit 77 and show in ctest's summary as skipped, with the reason printed.
#   SOFTREC_BUILD=DIR         main build directory (default: build/)
#   SOFTREC_TEST_SANITIZE=0   skip the sanitizer pass
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SOFTREC_BUILD:-$here/build}

# Open MPI's shared-memory segments of this run go to a private directory,
# removed at exit: segments left by killed test jobs go with it, and other
# users' live segments in /dev/shm are never touched (docs/platform.md).
shm_root=/dev/shm
[[ -d $shm_root && -w $shm_root ]] || shm_root=${TMPDIR:-/tmp}
shm=$(mktemp -d "$shm_root/softrec-test.XXXXXX") || { echo "test.sh: cannot create a directory in $shm_root" >&2; exit 1; }
trap 'rm -rf "$shm"' EXIT
trap 'exit 130' INT TERM
export OMPI_MCA_btl_vader_backing_directory=$shm

summary=()
failed=0
# pass NAME CMD...: run one pass, record PASS/FAIL and its time.
pass() {
  local name=$1 t0=$SECONDS rc
  shift
  echo "test.sh: === pass $name ===" >&2
  "$@"
  rc=$?
  if ((rc == 0)); then summary+=("test.sh: PASS $name ($((SECONDS - t0)) s)")
  else summary+=("test.sh: FAIL $name (exit $rc, $((SECONDS - t0)) s)"); failed=1; fi
}

main_pass() {
  "$here/launch/setup.sh" --test "$build" -DSOFTREC_WERROR=ON || return
  (cd "$build" && ctest --output-on-failure -j2 --timeout 600)
}

sanitize_pass() {
  local asan=${build}-asan
  "$here/launch/setup.sh" "$asan" -DSOFTREC_WERROR=ON -DSOFTREC_SANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=Debug || return
  # Open MPI keeps allocations alive until exit by design: leak checks off.
  (cd "$asan" && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j2 -L 'corpus|unit|asan' --timeout 900)
}

pass main main_pass
if [[ ${SOFTREC_TEST_SANITIZE:-1} == 1 ]]; then pass sanitize sanitize_pass
else summary+=("test.sh: SKIP sanitize (SOFTREC_TEST_SANITIZE=0)"); fi

printf '%s\n' "${summary[@]}" >&2
exit "$failed"

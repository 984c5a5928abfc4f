#!/usr/bin/env bash
# test.sh: build (via setup.sh) and run the whole test suite with ctest:
# unit tests, MPI tests at 1-4 ranks, the bad-input corpus, and the corpus
# again under AddressSanitizer + UBSan in a second build.
#   SOFTREC_TEST_SANITIZE=0  skip the sanitizer pass
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SOFTREC_BUILD:-$here/build}
"$here/launch/setup.sh" "$build" -DSOFTREC_WERROR=ON
# Leftovers of killed MPI jobs would eat /dev/shm (platform.md).
rm -rf /dev/shm/vader_segment.* 2>/dev/null || true
(cd "$build" && ctest --output-on-failure -j2 --timeout 600)
if [[ ${SOFTREC_TEST_SANITIZE:-1} == 1 ]]; then
  asan=${build}-asan
  "$here/launch/setup.sh" "$asan" -DSOFTREC_WERROR=ON -DSOFTREC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
  # Open MPI keeps allocations alive until exit by design: leak checks off.
  (cd "$asan" && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j2 -L 'corpus|unit' --timeout 900)
fi

#!/usr/bin/env bash
# path_checkout.sh: error locations stay relative to the checkout wherever it
# lives (issue 19). Copies the source tree to WORK/x/src/softrec (a path with
# "src/" in it, where cutting __FILE__ at the first "src/" went wrong), builds
# test_core, test_comm and softrec there, and runs test_core and test_comm at
# 2 ranks. The copy and its build are kept, so a rerun is incremental.
#
# usage: path_checkout.sh SOURCE_DIR WORK_DIR MPIEXEC [cmake -D args...]
set -euo pipefail
src=$1 work=$2 mpiexec=$3
shift 3
dst=$work/x/src/softrec
mkdir -p "$dst"
# The checkout's files (tracked and new, not ignored ones such as build
# trees); cp -p keeps times, so unchanged files do not rebuild.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
     xargs -0 cp -p --parents -t "$dst")
else
  (cd "$src" && find . -path './build*' -prune -o -path './shared' -prune -o -type f -print0 |
     xargs -0 cp -p --parents -t "$dst")
fi
cmake -S "$dst" -B "$dst/build" "$@" >/dev/null
nice -n 10 cmake --build "$dst/build" -j2 --target test_core test_comm softrec 2>&1 | tail -3
cd "$dst/build/tests"
echo "== test_core in $dst"
./test_core
echo "== test_comm at 2 ranks in $dst"
"$mpiexec" -n 2 --oversubscribe ./test_comm

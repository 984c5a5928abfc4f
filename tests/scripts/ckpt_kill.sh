#!/usr/bin/env bash
# ckpt_kill.sh MPIEXEC TEST_CKPT_DIR WORKDIR
# Kill -9 one rank inside each phase of a checkpoint save (SOFTREC_FAULT):
# the job must fail promptly, the previous checkpoint must still load with
# exact values at another rank count, and the leftover temporary must never
# be taken for a checkpoint (then the next save's cleanup removes it).
set -u
mpiexec=$1 bin=$2 work=$3
run=$work/run
rm -rf "$run" && mkdir -p "$run"
mpi() { local np=$1; shift; timeout 60 "$mpiexec" -n "$np" --oversubscribe "$bin" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

mpi 3 save "$run" 1 || fail "clean save of step 1"
mpi 2 check "$run" 1 || fail "step 1 does not load"

for spec in ckpt_write@1 ckpt_before_commit@2 ckpt_after_rename@0 ckpt_latest@0 ckpt_write@0; do
  t0=$(date +%s)
  SOFTREC_FAULT=$spec mpi 3 save "$run" 2 >"$work/out.txt" 2>&1
  rc=$? t1=$(date +%s)
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "$spec: save exited $rc (expected a killed job)"
  (( t1 - t0 <= 30 )) || fail "$spec: the job took $((t1 - t0)) s to end"
  grep -q "softrec: fault: rank ${spec#*@} killed at ${spec%@*}" "$work/out.txt" || fail "$spec: no kill message"
  ls -a "$run/checkpoints"
  case $spec in
    ckpt_write*|ckpt_before_commit*)
      ls -a "$run/checkpoints" | grep -q '^\.tmp-2-' || fail "$spec: expected a leftover temporary";;
  esac
  # Latest still names step 1 (even when ckpt-2 was renamed in but `latest`
  # was not updated): step 1 loads exactly, here at 2 and 4 ranks.
  mpi 2 check "$run" 1 || fail "$spec: step 1 does not load at 2 ranks"
  mpi 4 check "$run" 1 || fail "$spec: step 1 does not load at 4 ranks"
  echo "ok: $spec (rc $rc, $((t1 - t0)) s)"
done

# A clean save cleans up the temporaries and commits.
mpi 2 save "$run" 3 || fail "clean save of step 3"
ls -a "$run/checkpoints" | grep -q '^\.tmp' && fail "temporaries left after a clean save"
mpi 1 check "$run" 3 || fail "step 3 does not load"
echo "PASS"

#!/usr/bin/env bash
# exit_codes.sh MPIEXEC SOFTREC_BIN SOURCE_DIR WORKDIR: what a training job's
# exit code says (docs/cli.md), at 2 ranks.
#  - finished: 0 and a result row;
#  - SIGTERM to one rank; SIGTERM and SIGINT to launch/softrec-run (which
#    passes them on to mpirun as SIGUSR1): 11 from every rank and from the
#    launcher, a committed checkpoint that verifies, no result row, and the
#    resumed run finishes with 0;
#  - SIGTERM to a bare mpirun: Open MPI aborts the job and exits 1 whatever
#    the ranks return (printed, the documented limit: use softrec-run);
#  - a rank frozen in an evaluation: the watchdog's 10.
set -uo pipefail
mpiexec=$1 bin=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
unset SOFTREC_FAULT SOFTREC_FAULT_ACTION
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" data synth --users 943 --items 1682 --interactions 100000 --topics 16 --progress 0 --output data.h5 \
  > /dev/null 2>&1 || fail "synth"
common=(--set data.path=data.h5 --set model.dim=16 --set train.epochs=20 --set train.batch_size=256
        --set loss.name=ssm --set loss.negatives=64 --set train.checkpoint_every=100 --set run.progress_every=1000
        --set train.watchdog_min_seconds=2 --set train.watchdog_factor=5)
mpi() { timeout -k 5 120 "$mpiexec" -n 2 --oversubscribe "$bin" "$@"; }
# procs DIR COMM...: pids of the processes named COMM of the run in DIR
procs() {
  local dir=$1 p; shift
  for p in $(pgrep -f -- "run.dir=$dir( |\$)"); do
    [[ " $* " == *" $(cat /proc/$p/comm 2>/dev/null) "* ]] && echo "$p"
  done
}

# wait_training DIR: until both ranks' heartbeats show a step (guard.c's record).
wait_training() {
  for _ in $(seq 600); do
    local ok=0
    for r in 0 1; do
      [[ -s $1/.heartbeat.$r ]] && (( $(od -An -tu4 -j24 -N4 "$1/.heartbeat.$r") > 0 )) && ok=$((ok + 1))
    done
    (( ok == 2 )) && return 0
    sleep 0.05
  done
  return 1
}

# stopped NAME RC: exit 11 with a committed checkpoint, no result row, then
# the resumed run finishes with 0.
stopped() {
  local name=$1 rc=$2
  [[ $rc -eq 11 ]] || fail "$name: exit $rc, expected 11 ($(grep -v '^  ' $name.err | tail -n 4))"
  grep -q "^softrec: error: stopped by signal [0-9]*, checkpoint committed; resume with" $name.err \
    || fail "$name: no 'stopped by signal' line"
  [[ ! -s $name.json ]] || fail "$name: a stopped run printed a result row"
  mpi checkpoint verify $name > /dev/null 2> $name.verify || fail "$name: checkpoint does not verify: $(cat $name.verify)"
  local latest; latest=$(cat $name/checkpoints/latest)
  mpi train "${common[@]}" --set run.dir=$name --set train.resume=auto > $name.resumed.json 2> $name.resumed.err \
    || fail "$name: resume exit $? ($(tail -n 3 $name.resumed.err))"
  grep -q '"resumed_from": "[^"]' $name.resumed.json || fail "$name: the resumed run did not resume"
  echo "ok: $name -> exit 11, $latest committed, resumed from it to exit 0"
}

# 1. finished
mpi train "${common[@]}" --set run.dir=done > done.json 2> done.err; rc=$?
[[ $rc -eq 0 ]] || fail "finished run: exit $rc ($(tail -n 3 done.err))"
grep -q '"test": {' done.json || fail "finished run: no result row"
echo "ok: finished -> exit 0"

# 2. SIGTERM to one rank (bare mpirun)
mpi train "${common[@]}" --set run.dir=rank > rank.json 2> rank.err &
job=$!
wait_training rank || fail "rank: training never started"
sleep 0.2
kill -TERM "$(procs rank softrec | tail -n 1)"
wait $job; stopped rank $?

# 3. SIGTERM, SIGINT to launch/softrec-run (python sends SIGINT: a background
# job of a script ignores it)
for sig in TERM INT; do
  name=run$sig
  python3 - "$src/launch/softrec-run" "$bin" "$name" "$sig" "${common[@]}" <<'EOF' > $name.json 2> $name.err
import os, signal, subprocess, sys, time
run, binary, name, sig, common = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
p = subprocess.Popen([run, "-n", "2", "train"] + common + ["--set", "run.dir=" + name],
                     env=dict(os.environ, SOFTREC_BIN=binary))
def phase(r):  # guard.c's heartbeat record: phase at byte 24 (0: not training yet)
    try:
        with open("%s/.heartbeat.%d" % (name, r), "rb") as f:
            return int.from_bytes(f.read(28)[24:28], "little")
    except OSError:
        return 0
for _ in range(1200):
    if all(phase(r) > 0 for r in (0, 1)):
        break
    time.sleep(0.05)
time.sleep(0.2)
p.send_signal(getattr(signal, "SIG" + sig))
sys.exit(p.wait())
EOF
  stopped $name $?
done

# 4. SIGTERM to a bare mpirun: Open MPI's own exit code (the documented limit)
mpi train "${common[@]}" --set run.dir=bare > bare.json 2> bare.err &
job=$!
wait_training bare || fail "bare: training never started"
sleep 0.2
kill -TERM $(procs bare mpirun mpiexec orterun)
wait $job; rc=$?
[[ $rc -ne 0 ]] || fail "bare mpirun: SIGTERM gave exit 0"
echo "note: SIGTERM to a bare mpirun -> exit $rc (Open MPI's; latest: $(cat bare/checkpoints/latest 2>/dev/null || echo none))"

# 5. watchdog: rank 1 freezes at the start of the first evaluation
SOFTREC_FAULT=eval@1 SOFTREC_FAULT_ACTION=stop mpi train "${common[@]}" --set run.dir=wd > wd.json 2> wd.err; rc=$?
[[ $rc -eq 10 ]] || fail "watchdog: exit $rc, expected 10 ($(grep -v '^  ' wd.err | tail -n 4))"
grep -q "^softrec: watchdog: rank 0 stuck in evaluation (after step [0-9]*) for [0-9.]* s (limit 2.0 s); rank 1 is not responding" wd.err \
  || fail "watchdog: no line naming the evaluation and rank 1"
echo "ok: rank frozen in evaluation -> exit 10"
echo PASS

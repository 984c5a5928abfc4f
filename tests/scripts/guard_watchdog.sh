#!/usr/bin/env bash
# guard_watchdog.sh MPIEXEC TEST_GUARD WORKDIR
# 1. A rank sleeping inside step 5 (limit max(3 x median, 1 s)): the job ends
#    non-zero within 20 s and stderr has the watchdog's line naming step 5.
# 2. A rank stopped with SIGSTOP: its peer's watchdog ends the job.
set -u
mpiexec=$1 bin=$2 work=$3
mkdir -p "$work" && rm -f "$work"/pid.* "$work"/*.txt
fail() { echo "FAIL: $*" >&2; exit 1; }

t0=$(date +%s)
timeout 60 "$mpiexec" -n 2 --oversubscribe "$bin" stuck 1 5 >"$work/stuck.txt" 2>&1
rc=$? t1=$(date +%s)
cat "$work/stuck.txt"
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "stuck: exit $rc (expected the watchdog to end the job)"
(( t1 - t0 <= 20 )) || fail "stuck: took $((t1 - t0)) s"
grep -Eq 'softrec: watchdog: rank [01] stuck in step 5 for [0-9.]+ s \(limit [0-9.]+ s\)' "$work/stuck.txt" \
  || fail "stuck: no watchdog message"
echo "ok: stuck step (rc $rc, $((t1 - t0)) s)"

"$mpiexec" -n 2 --oversubscribe "$bin" loop "$work" >"$work/stop.txt" 2>&1 &
job=$!
for _ in $(seq 100); do [[ -s $work/pid.1 ]] && break; sleep 0.1; done
[[ -s $work/pid.1 ]] || { kill "$job"; fail "loop: rank 1 never started"; }
sleep 1
victim=$(cat "$work/pid.1")
t0=$(date +%s)
kill -STOP "$victim"
for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then kill -CONT "$victim"; kill "$job"; fail "SIGSTOP: job still running after 30 s"; fi
wait "$job"; rc=$? t1=$(date +%s)
kill -9 "$victim" 2>/dev/null
cat "$work/stop.txt"
[[ $rc -ne 0 ]] || fail "SIGSTOP: exit 0"
grep -Eq 'softrec: watchdog: rank 0 stuck in step [0-9]+ for' "$work/stop.txt" || fail "SIGSTOP: no watchdog message from rank 0"
echo "ok: SIGSTOP (rc $rc, $((t1 - t0)) s)"
echo "PASS"

#!/usr/bin/env bash
# guard_watchdog.sh MPIEXEC TEST_GUARD WORKDIR
# 1. A rank sleeping inside step 5 (limit max(3 x median, 1 s)): the job ends
#    non-zero within 20 s and stderr has the watchdog's line naming step 5.
# 2. A rank of 3 stopped with SIGSTOP (rank 1, then rank 0): its peers'
#    watchdogs end the job within 30 s, their line naming the stopped rank
#    (heartbeat files in WORKDIR) and no other.
set -u
mpiexec=$1 bin=$2 work=$3
mkdir -p "$work" && rm -f "$work"/pid.* "$work"/*.txt "$work"/.heartbeat.*
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

# SIGSTOP one rank of a 3-rank job (rank 1, then rank 0): the job ends
# non-zero within 30 s and a peer's watchdog line names the stopped rank
# from its heartbeat file.
for vr in 1 0; do
  rm -f "$work"/pid.* "$work"/.heartbeat.*
  "$mpiexec" -n 3 --oversubscribe "$bin" loop "$work" >"$work/stop$vr.txt" 2>&1 &
  job=$!
  for _ in $(seq 100); do [[ -s $work/pid.0 && -s $work/pid.1 && -s $work/pid.2 ]] && break; sleep 0.1; done
  [[ -s $work/pid.$vr ]] || { kill "$job"; fail "loop: rank $vr never started"; }
  sleep 1
  victim=$(cat "$work/pid.$vr")
  t0=$(date +%s)
  kill -STOP "$victim"
  for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then kill -CONT "$victim"; kill "$job"; fail "SIGSTOP rank $vr: job still running after 30 s"; fi
  wait "$job"; rc=$? t1=$(date +%s)
  kill -9 "$victim" 2>/dev/null
  cat "$work/stop$vr.txt"
  [[ $rc -ne 0 ]] || fail "SIGSTOP rank $vr: exit 0"
  (( t1 - t0 <= 30 )) || fail "SIGSTOP rank $vr: took $((t1 - t0)) s"
  grep -Eq "^softrec: watchdog: rank [0-2] stuck in step [0-9]+ for [0-9.]+ s \(limit [0-9.]+ s\); .*rank $vr (has not reached step [0-9]+ \(last heartbeat step [0-9]+, [0-9.]+ s ago, not responding\)|is not responding \(last heartbeat step [0-9]+, [0-9.]+ s ago\))" \
    "$work/stop$vr.txt" || fail "SIGSTOP rank $vr: no watchdog line naming rank $vr"
  # Every peer's line names the stopped rank and no other (the victim may
  # print its own line once mpirun's SIGCONT wakes it; peers are gone then).
  others=$(grep -E "^softrec: watchdog: rank [0-2] " "$work/stop$vr.txt" | grep -Ev "^softrec: watchdog: rank $vr ")
  [[ -n "$others" ]] || fail "SIGSTOP rank $vr: no line from a peer"
  if grep -Eo "; rank [0-2] (has not reached|is not responding)" <<<"$others" | grep -vq "; rank $vr "; then
    fail "SIGSTOP rank $vr: a rank other than $vr named"
  fi
  echo "ok: SIGSTOP rank $vr named (rc $rc, $((t1 - t0)) s)"
done
echo "PASS"

#!/usr/bin/env bash
# alloc_sweep.sh MPIEXEC SOFTREC_BIN WORKDIR: fail every counted allocation
# in turn (SOFTREC_FAULT=alloc[@rank]#N, io/fault.h) of `softrec train` at 1
# and 2 ranks and of `data synth`, and require of each trial: exit 7
# (SR_ERR_NOMEM) or mpirun's abort of the job (one rank's failure while its
# peers are in a collective; sr_comm_abort at 1 rank too), the injected failure named on stderr, no
# sanitizer report, no hang (20 s per trial), no process left behind.
# A first run with SOFTREC_FAULT=alloc-count gives N. Sanitizer build only
# (exit 77 otherwise): without ASan a double free or use after free may pass
# unseen. SR_SWEEP_MAX (default 300): above it every k-th index is tried.
set -uo pipefail
mpiexec=$1 bin=$(readlink -f "$2") work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if (($(nm "$bin" 2>/dev/null | grep -c '__asan_init') == 0)); then
  echo "SKIP: $bin is not an AddressSanitizer build" >&2
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
# Open MPI keeps allocations alive until exit: leak checks off (launch/test.sh).
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
unset SOFTREC_FAULT SOFTREC_FAULT_ACTION
max=${SR_SWEEP_MAX:-300}
fail() { echo "FAIL: $*" >&2; exit 1; }

source "$here/toy_data.sh"
toy_data "$bin" 7 60 4 10 12
[[ -s data.h5 ]] || fail "toy data"
train_args=(train --set data.path=data.h5 --set model.dim=8 --set train.epochs=1 --set train.batch_size=64
            --set run.progress_every=1000)
failures=0
printf '%-22s %6s %6s %6s %6s %6s\n' command count tried nomem abort bad

# sweep NAME NP RANK CMD...: count, then one trial per index. RANK "" = the
# fault on every rank. The trial's own output path ($out) keeps its processes
# findable (pgrep -f) among other jobs' softrec processes.
sweep() {
  local name=$1 np=$2 rank=$3
  shift 3
  local at=${rank:+@$rank} out="$work/$name" n count step=1 nomem=0 abort=0 bad=0 tried=0
  mkdir -p "$out"
  SOFTREC_FAULT=alloc-count$at timeout 60 "$mpiexec" -n "$np" --oversubscribe "$bin" "${@//@OUT@/$out/count}" \
    > "$out/count.out" 2> "$out/count.err" || fail "$name: the counting run failed: $(tail -3 "$out/count.err")"
  count=$(sed -n 's/^softrec: alloc-count: rank [0-9]*: \([0-9]*\).*/\1/p' "$out/count.err" | sort -n | tail -1)
  [[ -n $count && $count -gt 0 ]] || fail "$name: no alloc-count line"
  ((count > max)) && step=$(((count + max - 1) / max))
  for ((n = 1; n <= count; n += step)); do
    local t=$out/t$n rc verdict=""
    tried=$((tried + 1))
    SOFTREC_FAULT=alloc$at#$n timeout -k 5 20 "$mpiexec" -n "$np" --oversubscribe "$bin" "${@//@OUT@/$t}" \
      > "$t.out" 2> "$t.err"
    rc=$?
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error' "$t.err"; then
      verdict="sanitizer report"
    elif ((rc == 124 || rc == 137)); then verdict="hang (timeout)"
    elif ! grep -q 'injected failure of allocation' "$t.err"; then verdict="exit $rc without the injected failure"
    elif ((rc == 7)) && ! grep -q 'MPI_ABORT was invoked' "$t.err"; then nomem=$((nomem + 1))
    elif ((rc != 0)) && grep -q 'MPI_ABORT was invoked' "$t.err"; then abort=$((abort + 1))
    else verdict="exit $rc"
    fi
    sleep 0.2
    if pgrep -f -- "$t" > /dev/null; then verdict="${verdict:+$verdict, }processes left"; fi
    if [[ -n $verdict ]]; then
      bad=$((bad + 1))
      echo "FAIL: $name: alloc$at#$n: $verdict; stderr:" >&2
      grep -E 'ERROR:|runtime error|error:|#[0-9] ' "$t.err" | head -12 >&2
      pkill -KILL -f -- "$t" 2> /dev/null
    else
      rm -rf "$t" "$t.out" "$t.err"
    fi
  done
  printf '%-22s %6s %6s %6s %6s %6s\n' "$name" "$count" "$tried${step/#1/}" "$nomem" "$abort" "$bad"
  ((step > 1)) && echo "  ($name: every ${step}th index of $count)"
  failures=$((failures + bad))
}

sweep train_np1 1 "" "${train_args[@]}" --set run.dir=@OUT@
sweep train_np2_rank1 2 1 "${train_args[@]}" --set run.dir=@OUT@
sweep train_np2_rank0 2 0 "${train_args[@]}" --set run.dir=@OUT@
sweep train_np2_all 2 "" "${train_args[@]}" --set run.dir=@OUT@
sweep synth 1 "" data synth --users 200 --items 300 --interactions 3000 --topics 4 --progress 0 --output @OUT@.h5
sweep synth_np2_rank0 2 0 data synth --users 200 --items 300 --interactions 3000 --topics 4 --progress 0 \
  --output @OUT@.h5
((failures == 0)) || fail "$failures trials failed"
echo PASS

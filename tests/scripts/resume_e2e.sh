#!/usr/bin/env bash
# resume_e2e.sh SOFTREC_BIN WORKDIR [KILLS]: checkpoints that survive anything.
#  1. KILLS (default 20) times kill -9 one rank of a 2-rank training run:
#     half of them inside a checkpoint save (fault injection: rank and table
#     write chosen at random), half at a random moment. After every kill the
#     newest committed checkpoint verifies, `latest` never names a temporary,
#     and the run goes on with train.resume=auto. The finished run's
#     parameters and optimiser state equal an uninterrupted run's, bit for bit.
#  2. SIGUSR1 to mpirun: every rank stops after the same step, commits a
#     checkpoint, exits 11 with no result row; resuming ends bit-identical.
#  3. A checkpoint written at 2 ranks resumes at 3 (resharded) and finishes;
#     saved at 1-4 ranks and loaded at each of 1-4, every table and the
#     optimiser state come back byte-equal, and training continues.
#  4. Non-finite steps are skipped; too many in a row stop the run (exit 8).
set -euo pipefail
bin=$1
work=$2
kills=${3:-20}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
# timeout: a hang fails the test instead of stalling it
run() { local np=$1; shift; timeout -k 5 120 mpirun -np "$np" --oversubscribe "$bin" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
RANDOM=42

awk 'BEGIN { srand(5); for (u = 0; u < 300; u++) { line = u; g = u % 8;
  for (k = 0; k < 30; k++) { if (rand() < 0.85) i = g * 40 + int(rand() * 40); else i = int(rand() * 331);
    if (!(u SUBSEP i in seen)) { seen[u SUBSEP i] = 1; items[u] = items[u] " " i } }
  print u items[u] } }' > all.txt
awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 5 == 0) te = te " " $k; else tr = tr " " $k } print tr > "train.txt"; print te > "test.txt" }' all.txt
"$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed 3 \
  --output data.h5 >/dev/null 2>&1 || fail "convert"

common=(--set data.path=data.h5 --set model.dim=16 --set train.epochs=8 --set train.batch_size=32
        --set train.lr=0.02 --set eval.topk=10 --set run.progress_every=1000 --set train.checkpoint_every=9
        --set train.keep_checkpoints=3 --set loss.name=ssm --set loss.negatives=64)
tables=(/model/item_embedding /model/user_embedding /optim/item_embedding/m /optim/item_embedding/v
        /optim/user_embedding/m /optim/user_embedding/v)
same_state() { # checkpoint A, checkpoint B: every table bit-identical
  for tb in "${tables[@]}"; do h5diff "$1" "$2" "$tb" > /dev/null || return 1; done
}
final() { local d=$1/checkpoints; echo "$d/$(cat "$d/latest")"; }

run 2 train "${common[@]}" --set run.dir=ref > ref.json 2> ref.err || fail "reference run: $(tail -n3 ref.err)"
ref=$(final ref)

# 1. kills
dir=killed
resumes=0
for ((i = 1; i <= kills; i++)); do
  if (( i % 2 )); then
    # inside a save: rank r dies at its n-th table write (a save writes several)
    r=$((RANDOM % 2)); n=$((1 + RANDOM % 24))
    SOFTREC_FAULT="ckpt_write@$r#$n" run 2 train "${common[@]}" --set run.dir=$dir --set train.resume=auto \
      > k$i.json 2> k$i.err && { echo "kill $i: the run finished before the fault fired"; break; }
  else
    run 2 train "${common[@]}" --set run.dir=$dir --set train.resume=auto > k$i.json 2> k$i.err &
    job=$!
    # Kill once training runs: a rank killed inside MPI_Init/PMIx start-up
    # can leave Open MPI 4.1's mpirun hanging (its bug, not a softrec state).
    for ((w = 0; w < 100; w++)); do grep -q "resolved config" k$i.err 2>/dev/null && break; sleep 0.1; done
    sleep "0.$((RANDOM % 9))"
    mapfile -t pids < <(pgrep -f -- "run.dir=$dir" | grep -v "^$job\$" || true)
    ranks=()
    for p in "${pids[@]}"; do [[ $(cat /proc/$p/comm 2>/dev/null) == softrec ]] && ranks+=("$p"); done
    if ((${#ranks[@]} == 0)); then wait $job || true; echo "kill $i: no rank left to kill"; break; fi
    kill -9 "${ranks[$((RANDOM % ${#ranks[@]}))]}" 2>/dev/null || true
    wait $job && { echo "kill $i: the run finished before the kill"; break; } || true
  fi
  # the newest committed checkpoint verifies; latest never names a temporary
  if [[ -f $dir/checkpoints/latest ]]; then
    name=$(cat $dir/checkpoints/latest)
    [[ $name == ckpt-*.h5 ]] || fail "kill $i: latest names '$name'"
    run 2 checkpoint verify $dir > v$i.json 2> v$i.err || fail "kill $i: latest checkpoint does not verify: $(cat v$i.err)"
    resumes=$((resumes + 1))
  fi
done
run 2 train "${common[@]}" --set run.dir=$dir --set train.resume=auto > done.json 2> done.err || fail "final resume: $(tail -n3 done.err)"
same_state "$ref" "$(final $dir)" || fail "after $kills kills the state differs from the uninterrupted run"
[[ $(tail -n1 done.json | grep -o '"test": {[^}]*}') == "$(tail -n1 ref.json | grep -o '"test": {[^}]*}')" ]] ||
  fail "after the kills the test metrics differ"
echo "kills: $kills, checkpoints verified after $resumes of them; final state bit-identical"

# 2. SIGUSR1: stop at a step boundary with a checkpoint, resume bit-identical
run 2 train "${common[@]}" --set run.dir=sig > sig.json 2> sig.err &
job=$!
for ((w = 0; w < 100; w++)); do grep -q "resolved config" sig.err 2>/dev/null && break; sleep 0.1; done
sleep 0.5
# mpirun forwards SIGUSR1 to every rank (docs/platform.md, "Open MPI")
kill -USR1 "$(pgrep -f -- "^mpirun .*run.dir=sig" | head -n1)"
rc=0; wait $job || rc=$?
# 11: stopped by a signal with a checkpoint committed; 0: finished first
[[ $rc -eq 11 || $rc -eq 0 ]] || fail "SIGUSR1: exit $rc ($(tail -n3 sig.err))"
if grep -q "stopped by signal" sig.err; then
  [[ $rc -eq 11 ]] || fail "SIGUSR1: stopped with exit $rc, expected 11"
  [[ ! -s sig.json ]] || fail "SIGUSR1: a stopped run printed a result row"
  run 2 checkpoint verify sig > /dev/null 2>&1 || fail "SIGUSR1: its checkpoint does not verify"
  run 2 train "${common[@]}" --set run.dir=sig --set train.resume=auto > sig2.json 2>/dev/null || fail "resume after SIGUSR1"
  same_state "$ref" "$(final sig)" || fail "SIGUSR1 + resume: state differs from the uninterrupted run"
  echo "SIGUSR1: stopped, committed, resumed bit-identical"
else
  echo "SIGUSR1: the run had finished before the signal (not checked)"
fi

# 3. resume at another rank count (reshard on load)
mkdir -p re3 && cp -r killed/checkpoints re3/ 2>/dev/null
first=$(ls ref/checkpoints/ckpt-*.h5 | head -n1)
rm -rf re3/checkpoints && mkdir -p re3/checkpoints && cp "$first" "$first.sha256" re3/checkpoints/ &&
  basename "$first" > re3/checkpoints/latest
run 3 train "${common[@]}" --set run.dir=re3 --set train.resume=auto > re3.json 2> re3.err || fail "resume at 3 ranks: $(tail -n3 re3.err)"
grep -q "\"resumed_from\": \".*ckpt-" re3.json || fail "resume at 3 ranks did not start from the checkpoint"
h5diff -d 1e-3 "$ref" "$(final re3)" /model/user_embedding > /dev/null 2>&1 ||
  echo "note: 2-rank and 3-rank continuations differ beyond 1e-3 (different sample draws), as expected for ssm"
echo "reshard: a 2-rank checkpoint continued at 3 ranks"

# 3b. save at P = 1..4, load at Q = 1..4: a resume whose run is already
# complete loads the checkpoint at Q ranks and commits it again at once;
# every table (parameters and optimiser state) must come back byte-equal.
# Then one more epoch at Q ranks: training continues.
short=("${common[@]}" --set train.epochs=1)
for P in 1 2 3 4; do
  run $P train "${short[@]}" --set run.dir=m$P > /dev/null 2>&1 || fail "matrix: training at $P ranks"
  src=$(final m$P)
  for Q in 1 2 3 4; do
    rm -rf m$P-$Q && mkdir -p m$P-$Q/checkpoints && cp "$src" "$src.sha256" m$P-$Q/checkpoints/ &&
      basename "$src" > m$P-$Q/checkpoints/latest
    run $Q train "${short[@]}" --set run.dir=m$P-$Q --set train.resume=auto > /dev/null 2>&1 || fail "matrix: load $P -> $Q"
    same_state "$src" "$(final m$P-$Q)" || fail "matrix: tables saved at $P ranks differ after loading at $Q"
  done
  run $((P % 4 + 1)) train "${short[@]}" --set train.epochs=2 --set run.dir=m$P-$((P % 4 + 1)) --set train.resume=auto \
    > m$P.json 2>/dev/null || fail "matrix: training did not continue after loading"
done
echo "save at 1-4 ranks, load at 1-4: tables and optimiser state byte-equal; training continues"

# 4. numeric faults: a learning rate that overflows
set +e
run 2 train "${common[@]}" --set loss.name=softmax --set train.lr=1e6 --set model.init_std=10 --set optim.name=sgd --set run.dir=nan \
  --set train.max_bad_steps=2 > nan.json 2> nan.err; rc=$?
set -e
[[ $rc -eq 8 ]] || fail "non-finite run: exit $rc, expected 8 ($(tail -n2 nan.err))"
grep -q "steps in a row (train.max_bad_steps = 2)" nan.err || fail "non-finite message: $(cat nan.err)"
[[ $(grep -c "skipped" nan.err) -ge 1 ]] || fail "no skipped-step warning before the stop"
echo "resume_e2e: all checks passed"

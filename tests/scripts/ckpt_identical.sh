#!/usr/bin/env bash
# ckpt_identical.sh MPIEXEC SOFTREC_BIN WORKDIR: identical runs give identical
# files. Two 2-rank runs with the same config and run.dir (the first moved
# aside) must write byte-identical checkpoint files, digest files and
# model.h5 (cmp): no wall-clock time inside them (docs/reliability.md). The
# training time is still kept (checkpoints/train_seconds) and a resumed run
# restores it: its result row's train_seconds is at least the recorded one.
set -euo pipefail
mpiexec=$1 bin=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
unset SOFTREC_FAULT SOFTREC_FAULT_ACTION
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { timeout -k 5 120 "$mpiexec" -n 2 --oversubscribe "$bin" "$@"; }

"$bin" data synth --users 300 --items 500 --interactions 6000 --topics 8 --progress 0 --output data.h5 \
  > /dev/null 2>&1 || fail "synth"
common=(--set data.path=data.h5 --set model.dim=16 --set train.epochs=3 --set train.batch_size=64
        --set train.checkpoint_every=20 --set train.keep_checkpoints=10 --set run.progress_every=1000
        --set loss.name=ssm --set loss.negatives=32 --set run.dir=run)
for r in a b; do
  run train "${common[@]}" > $r.json 2> $r.err || fail "run $r: $(tail -n3 $r.err)"
  mv run $r
done
n=0
for f in a/checkpoints/ckpt-*.h5 a/checkpoints/ckpt-*.h5.sha256 a/model.h5; do
  g=b/${f#a/}
  [[ -f $g ]] || fail "$g missing"
  cmp "$f" "$g" || fail "$f and $g differ: identical runs must write identical files"
  n=$((n + 1))
done
(( n >= 5 )) || fail "only $n files compared"
echo "ok: $n checkpoint, digest and model files byte-identical across two identical runs"

# The training time lives beside the checkpoints and comes back on resume.
[[ -s a/checkpoints/train_seconds ]] || fail "no checkpoints/train_seconds"
mv a run
step=$(sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' run/checkpoints/latest)
secs=$(awk -v s="$step" '$1 == s { v = $2 } END { print v }' run/checkpoints/train_seconds)
[[ -n $secs ]] || fail "no training time recorded for step $step"
run train "${common[@]}" --set train.epochs=4 --set train.resume=auto > c.json 2> c.err || fail "resume: $(tail -n3 c.err)"
python3 - "$secs" c.json <<'EOF' || fail "resume did not restore the training time"
import json, sys
secs, row = float(sys.argv[1]), json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert row["resumed_from"], row
assert row["train_seconds"] >= secs > 0, (row["train_seconds"], secs)
print("ok: resumed from step's %.3f s of training, row says %.3f s" % (secs, row["train_seconds"]))
EOF
echo PASS

#!/usr/bin/env bash
# resume_fingerprint.sh SOFTREC_BIN WORKDIR: no silent resume of a different
# run (issue 18, item 5). A 2-rank run commits checkpoints; a resume that
# changes a key of the run fingerprint, or trains on a dataset converted
# with another --seed (same shape, same input file), stops with exit 3 and
# one error naming each difference with both values; train.resume_force=true
# warns with the same text and resumes; bookkeeping keys (train.epochs)
# resume silently; a missing `latest` warns and resumes from the newest.
set -euo pipefail
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export SOFTREC_LOG=info # the verdicts read "resumed from" (info) and the warnings
run() { timeout -k 5 120 mpirun -np 2 --oversubscribe "$bin" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

awk 'BEGIN { srand(5); for (u = 0; u < 120; u++) { g = u % 8;
  for (k = 0; k < 20; k++) { if (rand() < 0.85) i = g * 20 + int(rand() * 20); else i = int(rand() * 161);
    if (!(u SUBSEP i in seen)) { seen[u SUBSEP i] = 1; items[u] = items[u] " " i } }
  print u items[u] } }' > all.txt
# every fifth item to a given test split: training refuses an empty one
awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 5 == 0) te = te " " $k; else tr = tr " " $k } print tr > "train.txt"; print te > "test.txt" }' all.txt
for s in 3 4; do
  "$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed $s --output d$s.h5 \
    > /dev/null 2>&1 || fail "convert --seed $s"
done
digest() { h5dump -a /content_sha256 "$1" | grep -o '"[0-9a-f]\{64\}"' | tr -d '"'; }
h3=$(digest d3.h5) h4=$(digest d4.h5)
[[ -n $h3 && -n $h4 && $h3 != "$h4" ]] || fail "content_sha256: '$h3' and '$h4' (expected two different digests)"
src3=$(h5dump -a /source_sha256 d3.h5 | grep -o '"[0-9a-f]*"') src4=$(h5dump -a /source_sha256 d4.h5 | grep -o '"[0-9a-f]*"')
[[ $src3 == "$src4" ]] || fail "the two conversions should share source_sha256"

common=(--set data.path=d3.h5 --set model.dim=8 --set train.epochs=3 --set train.batch_size=64
        --set loss.name=ssm --set loss.negatives=16 --set train.checkpoint_every=5 --set eval.topk=10
        --set run.progress_every=1000 --set train.resume=auto)
run train "${common[@]}" --set run.dir=base > base.json 2> base.err || fail "base run: $(tail -n3 base.err)"
ckpt=run/checkpoints/$(cat base/checkpoints/latest)

# one case: extra --set args, then the exact difference text
cases=("train.seed=2|train.seed: checkpoint 1, now 2"
       "optim.name=sgd|optim.name: checkpoint adam, now sgd"
       "loss.name=softmax|loss.name: checkpoint ssm, now softmax"
       "loss.name=hsm|loss.name: checkpoint ssm, now hsm"
       "train.shuffle=false|train.shuffle: checkpoint true, now false"
       "shard.layout=interleave|shard.layout: checkpoint block, now interleave"
       "model.dim=16|model.dim: checkpoint 8, now 16"
       "train.lr=0.01|train.lr: checkpoint 0.001, now 0.01"
       "data.path=d4.h5|data.content_sha256: checkpoint $h3, now $h4")
for c in "${cases[@]}"; do
  set_arg=${c%%|*} want=${c#*|}
  rm -rf run && cp -r base run
  rc=0
  run train "${common[@]}" --set run.dir=run --set "$set_arg" > o.json 2> o.err || rc=$?
  [[ $rc == 3 ]] || fail "$set_arg: exit $rc, expected 3 (config): $(tail -n2 o.err)"
  n=$(grep -c '^softrec: error:' o.err || true)
  [[ $n == 1 ]] || fail "$set_arg: $n error lines, expected 1"
  line=$(grep '^softrec: error:' o.err)
  expect="softrec: error: $ckpt: checkpoint of a different run (1 difference): $want; set train.resume_force=true to resume anyway"
  [[ $line == "$expect"* ]] || fail "$set_arg: got '$line', expected '$expect [...]'"
  grep -q "is unusable" o.err && fail "$set_arg: a different run was treated as damage (fallback)"
  cmp -s base/checkpoints/latest run/checkpoints/latest || fail "$set_arg: latest changed"
  # forced: the same difference as a warning, then the resume
  rm -rf run && cp -r base run
  run train "${common[@]}" --set run.dir=run --set "$set_arg" --set train.resume_force=true > o.json 2> o.err \
    || { [[ $set_arg == loss.name=hsm || $set_arg == model.dim=16 ]] || fail "$set_arg forced: $(tail -n2 o.err)"; }
  grep -qF "softrec: warning: $ckpt: $want (train.resume_force = true: resuming anyway)" o.err \
    || fail "$set_arg forced: no warning naming the difference: $(head -n3 o.err)"
  if [[ $set_arg == loss.name=hsm || $set_arg == model.dim=16 ]]; then
    # tables the checkpoint does not have, or of another shape: forcing
    # cannot help, the schema check names the table
    grep -Eq "loss_nodes|shape" o.err || fail "$set_arg forced: expected the table to be named: $(tail -n2 o.err)"
  else
    grep -q "resumed from $ckpt" o.err || fail "$set_arg forced: did not resume from $ckpt"
  fi
  echo "ok: $set_arg: exit 3 naming '$want'; forced: warning and resume"
done

# several differences at once: every one named
rm -rf run && cp -r base run
rc=0
run train "${common[@]}" --set run.dir=run --set train.seed=5 --set data.path=d4.h5 --set optim.name=adagrad \
  > o.json 2> o.err || rc=$?
[[ $rc == 3 ]] || fail "three differences: exit $rc"
for want in "(3 differences)" "train.seed: checkpoint 1, now 5" "optim.name: checkpoint adam, now adagrad" \
            "data.content_sha256: checkpoint $h3, now $h4"; do
  grep -qF "$want" o.err || fail "three differences: '$want' missing from: $(cat o.err)"
done
echo "ok: three differences named in one error"

# bookkeeping keys are not the run: more epochs, another checkpoint schedule
rm -rf run && cp -r base run
run train "${common[@]}" --set run.dir=run --set train.epochs=4 --set train.checkpoint_every=7 \
  --set run.progress_every=5 > o.json 2> o.err || fail "train.epochs=4: $(tail -n2 o.err)"
grep -q "resumed from $ckpt" o.err || fail "train.epochs=4: did not resume"
grep -q "warning" o.err && fail "train.epochs=4: unexpected warning: $(grep warning o.err)"
echo "ok: train.epochs / checkpoint_every / progress_every changed: resumed without a warning"

# a missing `latest` with committed checkpoints: the warning the docs promise
rm -rf run && cp -r base run && rm run/checkpoints/latest
run train "${common[@]}" --set run.dir=run --set train.epochs=4 > o.json 2> o.err || fail "no latest: $(tail -n2 o.err)"
grep -qF "softrec: warning: run/checkpoints/latest is missing; trying every committed checkpoint, newest first" o.err \
  || fail "no latest: no warning: $(head -n3 o.err)"
grep -q "resumed from $ckpt" o.err || fail "no latest: did not resume from the newest"
[[ $(grep -c 'latest is missing' o.err) == 1 ]] || fail "no latest: the warning is not printed once"
echo "ok: missing latest: one warning, resumed from the newest committed checkpoint"

# A checkpoint of an older softrec lacks the keys added since: one at its
# default trains the same run (resumed silently); one set otherwise is a
# difference "(not recorded)". The fingerprint attribute is rewritten with
# h5py and the digest file recomputed (skipped without h5py).
py=/usr/bin/python3
if [[ -x $py ]] && $py -c 'import h5py' 2>/dev/null; then
  drop_key() { # drop_key KEY: remove KEY's line from the latest checkpoint's fingerprint
    $py - "run/checkpoints/$(cat run/checkpoints/latest)" "$1" <<'PY'
import hashlib, os, sys
path, key = sys.argv[1], sys.argv[2]
import h5py
with h5py.File(path, "r+") as f:
    fp = f.attrs["fingerprint"]
    fp = fp.decode() if isinstance(fp, bytes) else fp
    lines = [l for l in fp.split("\n") if not l.startswith(key + " = ")]
    assert len(lines) < len(fp.split("\n")), key + " not in the fingerprint"
    f.attrs["fingerprint"] = "\n".join(lines).encode()
chunk = 16777216
with open(path, "rb") as f:
    data = f.read()
out = ["softrec-ckpt-digest 1", "chunk_bytes %d" % chunk, "size %d" % len(data)]
out += [hashlib.sha256(data[o:o + chunk]).hexdigest() for o in range(0, max(len(data), 1), chunk)]
open(path + ".sha256", "w").write("\n".join(out) + "\n")
PY
  }
  rm -rf run && cp -r base run
  drop_key loss.proposal # the default (uniform) here: an older run's meaning
  run train "${common[@]}" --set run.dir=run --set train.epochs=4 > o.json 2> o.err \
    || fail "older checkpoint, key at its default: $(tail -n2 o.err)"
  grep -q "resumed from $ckpt" o.err || fail "older checkpoint, key at its default: did not resume"
  rm -rf run && cp -r base run
  drop_key model.dim # 8 here, not the default 64
  rc=0
  run train "${common[@]}" --set run.dir=run > o.json 2> o.err || rc=$?
  [[ $rc == 3 ]] || fail "older checkpoint, key not at its default: exit $rc, expected 3"
  grep -qF "model.dim: checkpoint (not recorded), now 8" o.err || fail "older checkpoint: $(cat o.err)"
  echo "ok: a key absent from an older checkpoint resumes at its default, is a difference otherwise"
else
  echo "resume_fingerprint: h5py absent: the older-checkpoint case is not run"
fi

# verify names the fingerprint nowhere but runs on the same file
run checkpoint verify base > v.json 2> v.err || fail "verify base: $(cat v.err)"
grep -q '"verified": true' v.json || fail "verify printed $(cat v.json)"
echo "resume_fingerprint: all cases passed"

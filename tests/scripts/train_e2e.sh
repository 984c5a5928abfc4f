#!/usr/bin/env bash
# train_e2e.sh SOFTREC_BIN WORKDIR: end-to-end checks of softrec train/eval.
#  1. same seed, same rank count -> byte-identical model.h5
#  2. unshuffled run at 1 and 3 ranks -> same model within float tolerance
#  3. softrec eval of the checkpoint (at another rank count) reproduces the
#     final test metrics; train.init with 0 epochs does too
#  4. config errors: exact message, same exit code, nothing trained
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_start "$1" "$2"

# A small LightGCN-style dataset with structure: users prefer items of their group.
toy_data "$bin" 7 120 6 30 25 || fail "convert"

common=(--set data.path=data.h5 --set model.dim=8 --set train.epochs=3 --set train.batch_size=64
        --set train.lr=0.02 --set loss.tile=32 --set eval.topk=5,10 --set run.progress_every=1000)

# 1. reproducibility: identical bytes
# (same run.dir too: the resolved config, run.dir included, is stored in the file)
run 2 train "${common[@]}" --set run.dir=x > a.json && mv x a
run 2 train "${common[@]}" --set run.dir=x > b.json && mv x b
cmp a/model.h5 b/model.h5 || fail "same seed and rank count gave different model.h5 bytes"
[[ $(tail -n1 a.json | grep -o '"test": {[^}]*}') == "$(tail -n1 b.json | grep -o '"test": {[^}]*}')" ]] || fail "same seed gave different metrics"
grep -q '"recall@10"' a.json || fail "no recall@10 in the result line"
[[ $(wc -l < a/metrics.jsonl) -eq 4 ]] || fail "metrics.jsonl should have 3 epochs + final"
# log.txt: what the run ran on, then what it printed (each epoch's last progress line)
grep -q "^# softrec .* (commit .*), .* started$" a/log.txt || fail "log.txt: no version line"
grep -q "^# build: " a/log.txt && grep -q "^# cpu: .*core .*OPENBLAS_NUM_THREADS=1$" a/log.txt || fail "log.txt: no build or cpu line"
grep -q "^# mpi: .*; 2 ranks on " a/log.txt || fail "log.txt: no mpi line"
grep -Eq "^# data: data.h5 \(120 users, [0-9]+ items, content sha256 [0-9a-f]{64}\)$" a/log.txt || fail "log.txt: no data line"
[[ $(grep -c "^epoch [123]/3 step" a/log.txt) -eq 3 ]] || fail "log.txt: want one progress line per epoch"

# 2. rank-count invariance (unshuffled: the same global batches at any rank count)
run 1 train "${common[@]}" --set train.shuffle=false --set run.dir=p1 > p1.json
run 3 train "${common[@]}" --set train.shuffle=false --set shard.layout=interleave --set run.dir=p3 > p3.json
h5diff -p 1e-3 p1/model.h5 p3/model.h5 /model/item_embedding || fail "item table differs between 1 and 3 ranks"
h5diff -p 1e-3 p1/model.h5 p3/model.h5 /model/user_embedding || fail "user table differs between 1 and 3 ranks"
l1=$(grep -o '"loss": [0-9.]*' p1/metrics.jsonl | tail -n1 | cut -d' ' -f2)
l3=$(grep -o '"loss": [0-9.]*' p3/metrics.jsonl | tail -n1 | cut -d' ' -f2)
awk -v a="$l1" -v b="$l3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4 * a) }' || fail "loss 1 rank $l1 vs 3 ranks $l3"

# ... also with cosine scores / temperature (normalisation outside the loss)
run 1 train "${common[@]}" --set train.shuffle=false --set model.temperature=0.2 --set run.dir=c1 > /dev/null
run 3 train "${common[@]}" --set train.shuffle=false --set model.temperature=0.2 --set run.dir=c3 > /dev/null
h5diff -p 1e-3 c1/model.h5 c3/model.h5 /model/item_embedding || fail "cosine: item table differs between 1 and 3 ranks"
first=$(grep -o '"loss": [0-9.]*' c1/metrics.jsonl | head -n1 | cut -d' ' -f2)
last=$(grep -o '"loss": [0-9.]*' c1/metrics.jsonl | tail -n1 | cut -d' ' -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "cosine: loss did not decrease ($first -> $last)"

# 3. eval of the checkpoint at another rank count reproduces the test metrics
want=$(tail -n1 a.json | grep -o '"test": {[^}]*}' | grep -o '"ndcg@10": [0-9.]*')
got=$(run 3 eval --checkpoint a/model.h5 | tail -n1 | grep -o '"ndcg@10": [0-9.]*')
[[ $want == "$got" ]] || fail "eval gave $got, training reported $want"
got=$(run 1 train "${common[@]}" --set train.epochs=0 --set train.init=a/model.h5 --set run.dir=init | tail -n1 | grep -o '"test": {[^}]*}' | grep -o '"ndcg@10": [0-9.]*')
[[ $want == "$got" ]] || fail "train.init + 0 epochs gave $got, expected $want"

# 4. errors: one line, same exit code everywhere, nothing written
set +e
run 2 train --set data.path=data.h5 --set train.nope=1 --set run.dir=bad > /dev/null 2> err.txt; rc=$?
set -e
[[ $rc -eq 3 ]] || fail "unknown key: exit $rc, expected 3"
grep -q "softrec: error: --set: unknown key 'train.nope'" err.txt || fail "unknown key message: $(cat err.txt)"
[[ $(grep -c "softrec: error:" err.txt) -eq 1 ]] || fail "the error should be printed once"
[[ ! -e bad ]] || fail "a failed config must not create the run directory"
set +e
run 2 train --set data.path=missing.h5 --set run.dir=bad2 > /dev/null 2> err.txt; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "missing dataset accepted"
grep -q "missing.h5" err.txt || fail "missing dataset message: $(cat err.txt)"
set +e
run 2 train --set data.path=data.h5 --set train.lr_milestones=4,2 --set run.dir=bad3 > /dev/null 2> err.txt; rc=$?
set -e
[[ $rc -eq 3 ]] || fail "bad train.lr_milestones: exit $rc, expected 3"
grep -q "train.lr_milestones = '4,2': want at most 32 strictly ascending positive epoch numbers" err.txt \
  || fail "bad milestones message: $(cat err.txt)"
[[ ! -e bad3 ]] || fail "a bad schedule must not create the run directory"

# 5. train.lr_milestones: a scheduled run (lr halved after epoch 1) equals one
#    that stops after epoch 1 and resumes at half the rate, bit for bit, for MF
#    and for LightGCN (whose layer-0 update has its own optimiser copy).
for m in mf lightgcn; do
  s=("${common[@]}" --set model.name=$m --set model.layers=2 --set optim.weight_decay=0.01)
  run 2 train "${s[@]}" --set train.lr_milestones=1 --set train.lr_gamma=0.5 --set run.dir=lr-$m > /dev/null
  run 2 train "${s[@]}" --set train.epochs=1 --set run.dir=lr2-$m > /dev/null
  run 2 train "${s[@]}" --set train.lr=0.01 --set train.resume=auto --set train.resume_force=true --set run.dir=lr2-$m > /dev/null
  for t in item_embedding user_embedding; do
    h5diff lr-$m/model.h5 lr2-$m/model.h5 /model/$t > /dev/null || fail "$m: scheduled run differs from stop + resume at lr/2 ($t)"
  done
  # ... and the schedule did something: a constant rate gives another model
  run 2 train "${s[@]}" --set run.dir=lr3-$m > /dev/null
  ! h5diff lr-$m/model.h5 lr3-$m/model.h5 /model/item_embedding > /dev/null || fail "$m: the schedule changed nothing"
done
echo "train_e2e: all checks passed"

#!/usr/bin/env bash
# config_errors.sh SOFTREC_BIN CORPUS_DIR WORKDIR: inputs that used to be
# accepted where an error belongs (issue 18 item 6). Each case runs
# `softrec train` at 2 ranks and checks the exit code, the exact one-line
# message (without its [src/file:line]), printed once, and that no run
# directory was created. Then the limits themselves are accepted.
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
corpus=$(cd "$2" && pwd)
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
mpiexec=${MPIEXEC:-mpirun}
fail() { echo "FAIL: $*" >&2; exit 1; }

# 40 users, 30 items; and a dataset whose test (and valid) split is empty.
"$bin" data synth --users 40 --items 30 --seed 1 --progress 0 --output s.h5 > /dev/null 2>&1 || fail "synth"
"$bin" data convert --format ml-100k --input "$corpus/inputs/ml100k_good.data" --split random --ratio 1,0 \
  --output notest.h5 > /dev/null 2>&1 || fail "convert notest.h5"
printf '[model]\ndim = 8\n\n[train]\nepochs = 1\nlr = 0.01\nepochs = 2\n' > dup.ini
echo "not a directory" > afile

base=(--set data.path=s.h5 --set model.dim=8 --set train.epochs=1 --set train.watchdog_factor=0)
expect() { # expect RC MESSAGE ARGS... (run.dir is r unless ARGS set it)
  local rc=$1 msg=$2; shift 2
  rm -rf r
  set +e
  "$mpiexec" -np 2 --oversubscribe "$bin" train "${base[@]}" --set run.dir=r "$@" > o.txt 2> e.txt
  local got=$?
  set -e
  [[ $got -eq $rc ]] || fail "'train $*': exit $got, expected $rc ($(cat e.txt))"
  local errs
  errs=$(grep '^softrec: error: ' e.txt | sed 's/ \[src\/[^]]*\]$//')
  [[ $errs == "softrec: error: $msg" ]] || fail "'train $*' said: $(cat e.txt)"
  [[ ! -e r ]] || fail "'train $*' created its run.dir"
}

expect 3 "eval.topk = 50 is larger than the catalogue of s.h5 (30 items)" --set eval.topk=10,50
expect 3 "--set: eval.topk = '10,,20' has an empty element (expected comma-separated integers)" --set eval.topk=10,,20
expect 3 "dup.ini:7: duplicate key 'train.epochs' (first set at line 5; set each key once per file)" --config dup.ini
expect 3 "loss.negatives = 31 is larger than the catalogue of s.h5 (30 items); at most 30 (loss.name = softmax uses every item)" \
  --set loss.name=ssm --set loss.negatives=31
expect 3 "loss.negatives = 256 is larger than the catalogue of s.h5 (30 items); at most 30 (loss.name = softmax uses every item)" \
  --set loss.name=nce --set loss.proposal=popularity
expect 3 "loss.dns_candidates = 1024 is larger than the catalogue of s.h5 (30 items); at most 30" \
  --set loss.name=ssm --set loss.proposal=dynamic --set loss.negatives=8
expect 5 "notest.h5: the test split is empty (nothing to report)" --set data.path=notest.h5 --set eval.topk=2
expect 5 "notest.h5: the test split is empty (nothing to report)" --set data.path=notest.h5 --set eval.topk=2 \
  --set train.epochs=0
expect 3 "run.dir afile is a file, not a directory" --set run.dir=afile
expect 3 "run.dir afile/x: a parent of it is a file, not a directory" --set run.dir=afile/x
[[ $(cat afile) == "not a directory" ]] || fail "run.dir afile was changed"

# The limits themselves train: K = N, k = N, dns candidates = N; inbatch
# and bpr ignore loss.negatives; an empty valid split with eval.every > 0.
ok() {
  rm -rf r
  "$mpiexec" -np 2 --oversubscribe "$bin" train "${base[@]}" --set run.dir=r "$@" > o.txt 2> e.txt ||
    fail "'train $*' exited $?: $(cat e.txt)"
}
ok --set eval.topk=5,30
ok --set loss.name=ssm --set loss.negatives=30
ok --set loss.name=ssm --set loss.proposal=dynamic --set loss.negatives=8 --set loss.dns_candidates=30
ok --set loss.name=ssm --set loss.proposal=inbatch
ok --set loss.name=bpr
"$bin" data convert --format ml-100k --input "$corpus/inputs/ml100k_good.data" --split random --ratio 0.6,0.4 \
  --seed 1 --output novalid.h5 > /dev/null 2>&1 || fail "convert novalid.h5"
ok --set data.path=novalid.h5 --set eval.topk=2 --set eval.every=1
echo "config_errors: ok"

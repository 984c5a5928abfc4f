#!/usr/bin/env bash
# export_e2e.sh SOFTREC_BIN WORKDIR: `softrec export` + NumPy scoring equals
# `softrec eval`'s test metrics (to 1e-5) for MF, SASRec and LightGCN (one
# with cosine scores), and `softrec recommend` gives the same lists at 1 and
# 3 ranks, the top K of the same scores with the known items masked.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3 # Debian's, where python3-h5py and python3-numpy live
if ! $py -c 'import h5py, numpy' 2> /dev/null; then
  echo "SKIP: $py lacks h5py or numpy (Debian: python3-h5py python3-numpy)"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_start "$1" "$2"

toy_data "$bin" 5 70 5 20 20 || fail "convert"
common=(--set data.path=data.h5 --set model.dim=8 --set train.epochs=2 --set train.batch_size=64
        --set train.lr=0.02 --set eval.topk=5,10 --set model.max_len=8 --set model.layers=2)
for m in mf sasrec lightgcn lightgcn-cosine; do
  extra=(--set model.name=${m%-cosine})
  [[ $m == *-cosine ]] && extra+=(--set model.temperature=0.2)
  run 2 train "${common[@]}" "${extra[@]}" --set run.dir=$m > /dev/null || fail "$m: train"
  run 3 eval --checkpoint $m/model.h5 > $m.eval.json || fail "$m: eval"
  run 2 export --checkpoint $m/model.h5 --output $m.vec.h5 > /dev/null || fail "$m: export"
  run 3 recommend --checkpoint $m/model.h5 --k 10 --output $m.top3.csv > /dev/null || fail "$m: recommend"
  run 1 recommend --checkpoint $m/model.h5 --k 10 --output $m.top1.csv > /dev/null || fail "$m: recommend"
  # the same items; scores equal to float rounding (LightGCN's sums run in
  # another order at another rank count)
  paste -d, $m.top1.csv $m.top3.csv | tail -n +2 | awk -F, '$1 != $5 || $2 != $6 || $3 != $7 ||
    ($4 - $8 > 1e-5 || $8 - $4 > 1e-5) { bad++ } END { exit bad > 0 }' \
    || fail "$m: recommend differs between 1 and 3 ranks"
  $py "$here/export_e2e.py" $m.vec.h5 data.h5 $m.eval.json $m.top3.csv 10 || fail "$m: NumPy check"
done
# hsm scores by tree log-probabilities: no vectors, a clear error
run 1 train "${common[@]}" --set loss.name=hsm --set run.dir=hsm > /dev/null
set +e
run 1 export --checkpoint hsm/model.h5 --output hsm.vec.h5 > /dev/null 2> err.txt; rc=$?
set -e
[[ $rc -eq 3 ]] || fail "export of an hsm model: exit $rc, expected 3"
grep -q "export: loss.name = hsm scores items by tree log-probabilities" err.txt || fail "hsm export: $(cat err.txt)"
[[ ! -e hsm.vec.h5 ]] || fail "a failed export left a file"
echo "export_e2e: all checks passed"

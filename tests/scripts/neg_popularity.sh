#!/usr/bin/env bash
# neg_popularity.sh SOFTREC_BIN WORKDIR (issue 18 item 2): a dataset whose
# /item_popularity has a negative entry (sum unchanged) once aborted train
# with a double free; now train exits 5 (data error) at 1 and 2 ranks with
# one line naming the file and /item_popularity.
set -u
py=/usr/bin/python3
$py -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed for $py"; exit 77; }
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_start "$1" "$2"
toy_data "$bin" 5 40 4 10 12 || fail "convert"
$py - <<'PY' || fail "h5py edit"
import h5py
with h5py.File("data.h5", "r+") as f:
    p = f["item_popularity"]
    v = p[...]
    j = int(v.argmax())
    k = 0 if j != 0 else 1
    v[j] += v[k] + 1  # the sum stays that of /train/items
    v[k] = -1
    p[...] = v
PY
for np in 1 2; do
  timeout -k 5 120 mpirun -np $np --oversubscribe "$bin" train --set data.path=data.h5 --set model.dim=8 \
    --set train.epochs=1 --set run.dir=run$np >/dev/null 2>train$np.err
  rc=$?
  [[ $rc == 5 ]] || { cat train$np.err >&2; fail "$np ranks: exit $rc, expected 5"; }
  n=$(grep -c '^softrec: error:' train$np.err)
  [[ $n == 1 ]] || { cat train$np.err >&2; fail "$np ranks: $n error lines, expected 1"; }
  grep '^softrec: error:' train$np.err | grep -F 'data.h5' | grep -qF '/item_popularity' ||
    { cat train$np.err >&2; fail "$np ranks: the error does not name data.h5 and /item_popularity"; }
  ! grep -qE 'double free|Signal:|free\(\)|core dumped' train$np.err || { cat train$np.err >&2; fail "$np ranks: crashed"; }
  echo "ok: $np ranks: $(grep '^softrec: error:' train$np.err)"
done

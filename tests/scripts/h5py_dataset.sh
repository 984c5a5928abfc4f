#!/usr/bin/env bash
# h5py_dataset.sh SOFTREC_BIN ID_NAMES_BIN WORKDIR: a dataset written by h5py
# with its default string attributes (variable-length UTF-8; one numpy-bytes
# NULLPAD attribute of exactly the text's length) and h5py string id maps,
# following docs/dataset-format.md, validates, trains one epoch and names its
# users. Skips (77) without h5py.
set -euo pipefail
bin=$1
names=$2
work=$3
# The first python3 that has h5py (a pyenv shim may hide the system's).
py=
for p in python3 /usr/bin/python3; do "$p" -c 'import h5py, numpy' 2>/dev/null && { py=$p; break; }; done
[[ -n $py ]] || { echo "skip: no python3 with h5py and numpy"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
fail() { echo "FAIL: $*" >&2; exit 1; }
"$py" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
U, N = 40, 30
splits = {s: [[] for _ in range(U)] for s in ('train', 'valid', 'test')}
for u in range(U):
    items = rng.choice(N, size=8, replace=False)
    splits['train'][u], splits['valid'][u], splits['test'][u] = items[:6], items[6:7], items[7:]
with h5py.File('py.h5', 'w') as f:
    f.attrs['softrec_format'] = np.bytes_('softrec-dataset')   # NULLPAD, 15 bytes, no NUL
    f.attrs['format_version'] = np.int64(1)
    f.attrs['num_users'] = np.int64(U)
    f.attrs['num_items'] = np.int64(N)
    f.attrs['name'] = 'written by h5py – ünïcode'            # variable-length UTF-8
    f.attrs['source'] = 'h5py'
    f.attrs['split_protocol'] = 'given'
    f.attrs['split_seed'] = np.int64(-1)
    f.attrs['created_by'] = 'h5py ' + h5py.__version__
    for s, rows in splits.items():
        g = f.create_group(s)
        g['indptr'] = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        g['items'] = np.concatenate(rows).astype(np.int32)
    f['item_popularity'] = np.bincount(np.concatenate(splits['train']), minlength=N).astype(np.int64)
    m = f.create_group('map')
    m.create_dataset('user_ids', data=['user-%02d-é' % u for u in range(U)], dtype=h5py.string_dtype())
    m.create_dataset('item_ids', data=['item-%02d' % i for i in range(N)], dtype=h5py.string_dtype())
PY
"$bin" data info py.h5 > info.txt 2>&1 || { cat info.txt >&2; fail "data info"; }
grep -q "'written by h5py – ünïcode'" info.txt || { cat info.txt >&2; fail "the UTF-8 name attribute"; }
mpirun -np 2 --oversubscribe "$bin" train --set data.path=py.h5 --set train.epochs=1 --set run.dir=run \
  --set model.dim=8 --set eval.topk=5 > train.json 2> train.err || { cat train.err >&2; fail "train"; }
grep -q '"test": {"ndcg@5"' train.json || fail "no test metrics"
"$bin" checkpoint verify run/model.h5 > /dev/null || fail "checkpoint verify"
"$names" py.h5 > names.tsv || fail "id_names"
grep -q $'^user\t39\tuser-39-é$' names.tsv || fail "user names"
grep -q $'^item\t0\titem-00$' names.tsv || fail "item names"
echo "h5py_dataset: ok"

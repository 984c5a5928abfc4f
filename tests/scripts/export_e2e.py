"""export_e2e.py EXPORT.h5 DATA.h5 EVAL.json TOP.csv K: the exported vectors,
scored with NumPy, reproduce `softrec eval`'s test metrics, and `softrec
recommend`'s lists are the top K of the same scores with every known item
masked. Exit 1 with a message on the first mismatch."""
import json
import sys

import h5py
import numpy as np


def rows(f, split):
    return np.asarray(f[f'/{split}/indptr'][:], np.int64), np.asarray(f[f'/{split}/items'][:], np.int64)


def ranked(scores, masked, k):
    """Top k ids: score descending, ties to the smaller id, masked ids out."""
    s = scores.astype(np.float64).copy()
    s[list(masked)] = -np.inf
    order = np.lexsort((np.arange(len(s)), -s))
    return [int(i) for i in order[:k] if np.isfinite(s[i])]


def user_metrics(top, test, k):
    hits = [1 if i in test else 0 for i in top[:k]]
    dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / np.log2(r + 2) for r in range(min(len(test), k)))
    first = next((r for r, h in enumerate(hits) if h), None)
    cum, ap = 0, 0.0
    for r, h in enumerate(hits):
        cum += h
        ap += h * cum / (r + 1)
    return {f'ndcg@{k}': dcg / idcg, f'precision@{k}': sum(hits) / k, f'recall@{k}': sum(hits) / len(test),
            f'hit@{k}': float(sum(hits) > 0), f'mrr@{k}': 0.0 if first is None else 1 / (first + 1),
            f'map@{k}': ap / min(len(test), k)}


def main():
    exp, data, eval_json, top_csv, K = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    with h5py.File(exp, 'r') as f:
        q = f['/export/user_vectors'][:]
        v = f['/export/item_vectors'][:]
    with h5py.File(data, 'r') as f:
        tr, va, te = rows(f, 'train'), rows(f, 'valid'), rows(f, 'test')
    want = json.loads(open(eval_json).read().strip().splitlines()[-1])['test']
    ks = sorted({int(key.split('@')[1]) for key in want if '@' in key})
    scores = q @ v.T
    sums, users = {}, 0
    for u in range(q.shape[0]):
        test = set(te[1][te[0][u]:te[0][u + 1]].tolist())
        if not test:
            continue
        known = set(tr[1][tr[0][u]:tr[0][u + 1]].tolist()) | set(va[1][va[0][u]:va[0][u + 1]].tolist())
        top = ranked(scores[u], known, max(ks))
        users += 1
        for k in ks:
            for name, val in user_metrics(top, test, k).items():
                sums[name] = sums.get(name, 0.0) + val
    for name, total in sums.items():
        got = total / users
        if abs(got - want[name]) > 1e-5:
            sys.exit(f'export: NumPy {name} = {got:.6f}, softrec eval {want[name]:.6f}')
    # recommend: K per user, all known items masked, the same order
    lists = {}
    for line in open(top_csv).read().splitlines()[1:]:
        u, r, i, s = line.split(',')
        lists.setdefault(int(u), []).append(int(i))
    for u in range(q.shape[0]):
        known = set()
        for p, it in (tr, va, te):
            known |= set(it[p[u]:p[u + 1]].tolist())
        want_top = ranked(scores[u], known, K)
        got = lists.get(u, [])
        # equal, up to near-ties (float32 scores computed in another order)
        if len(got) != len(want_top) or any(
                a != b and abs(scores[u][a] - scores[u][b]) > 1e-5 for a, b in zip(got, want_top)):
            sys.exit(f'recommend: user {u}: {got[:5]}... expected {want_top[:5]}...')
    print(f'export_e2e: {len(sums)} metrics over {users} users within 1e-5 of softrec eval; '
          f'{len(lists)} users\' top {K} lists match')


if __name__ == '__main__':
    main()

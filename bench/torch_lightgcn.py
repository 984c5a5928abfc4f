#!/usr/bin/python3
"""torch_lightgcn.py: the LightGCN propagation of bench_lightgcn.c in PyTorch,
for the ratio against softrec on the same threads.

  /usr/bin/python3 bench/torch_lightgcn.py [--train ../shared/data/gowalla/train.txt]
      [--layers 3 --dim 64 --reps 10 --threads 1]

As in gusye1234/LightGCN-PyTorch: one (U+I) x (U+I) sparse COO matrix
D^-1/2 A D^-1/2, K rounds of torch.sparse.mm, output = mean of the layers.
Timed: forward + backward (autograd, the output as its own gradient, as the
C benchmark does), median and best of --reps after one warm-up; wall and
process CPU seconds (the machine may be shared). Compare --threads T with
softrec at T ranks of one thread. Prints one JSON line; {"skipped": ...}
when torch or the data is absent.

--train-steps S times S whole training steps instead, the ssm step of
configs/gowalla-lightgcn.ini: propagation (autograd), cosine / temperature
scores of a batch of (user, positive) pairs (--temperature 0: dot products,
the file's setting now; the first was cosine / 0.1), --weight-decay L2 on
the batch's layer-0 rows, sampled softmax over the positive and
--negatives shared negatives drawn from the popularity proposal
(logQ-corrected, accidental hits masked), backward through the propagation,
dense Adam on the layer-0 table. Reports the mean and best
step after one warm-up step and the epoch time they imply
(ceil(edges / batch) steps), to set beside softrec's epoch_seconds.
"""
import argparse
import json
import os
import sys
import time


def propagate(torch, adj, e0, layers):
    """LightGCN output: the mean of e0 and its `layers` products with adj."""
    outs = [e0]
    x = e0
    for _k in range(layers):
        x = torch.sparse.mm(adj, x)
        outs.append(x)
    return torch.stack(outs, dim=1).mean(dim=1)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(os.environ.get("SOFTREC_DATA", os.path.join(here, "..", "..", "shared", "data")),
                           "gowalla", "train.txt")
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default=default)
    ap.add_argument("--test", default=None, help="only read for the item count (default: test.txt beside train)")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--negatives", type=int, default=1024)
    ap.add_argument("--temperature", type=float, default=0.1, help="0: dot-product scores")
    ap.add_argument("--weight-decay", type=float, default=0.0, help="L2 on the batch's layer-0 rows")
    ap.add_argument("--lr", type=float, default=0.005)
    a = ap.parse_args()
    try:
        import torch
    except ImportError:  # the benchmark is optional: say so in the result row
        print(json.dumps({"bench": "torch_lightgcn", "skipped": "python3-torch not installed"}))
        return
    if not os.path.exists(a.train):
        print(json.dumps({"bench": "torch_lightgcn", "skipped": "no data at " + a.train}))
        return
    torch.set_num_threads(a.threads)

    users, items = [], []
    max_item = -1
    with open(a.train) as f:
        for line in f:
            p = line.split()
            if len(p) < 2:
                continue
            u = int(p[0])
            for i in p[1:]:
                users.append(u)
                items.append(int(i))
    max_item = max(items)
    test = a.test or os.path.join(os.path.dirname(a.train), "test.txt")
    max_user = max(users)
    if os.path.exists(test):
        with open(test) as f:
            for line in f:
                p = line.split()
                if p:
                    max_user = max(max_user, int(p[0]))
                    if len(p) > 1:
                        max_item = max(max_item, max(int(i) for i in p[1:]))
    nu, ni = max_user + 1, max_item + 1

    t0 = time.perf_counter()
    u = torch.tensor(users, dtype=torch.int64)
    i = torch.tensor(items, dtype=torch.int64)
    du = torch.bincount(u, minlength=nu).double()
    di = torch.bincount(i, minlength=ni).double()
    w = (1.0 / torch.sqrt(du[u] * di[i])).float()
    rows = torch.cat([u, i + nu])
    cols = torch.cat([i + nu, u])
    adj = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.cat([w, w]), (nu + ni, nu + ni)).coalesce()
    build_s = time.perf_counter() - t0

    if a.train_steps > 0:
        return train_steps(a, torch, u, i, nu, ni, adj, build_s)

    torch.manual_seed(7)
    e0 = (0.1 * torch.randn(nu + ni, a.dim)).requires_grad_()
    walls, cpus = [], []
    for _ in range(a.reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        e0.grad = None
        out = propagate(torch, adj, e0, a.layers)
        out.backward(out.detach())
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    walls, cpus = sorted(walls[1:]), sorted(cpus[1:])
    print(json.dumps({"bench": "torch_lightgcn", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "users": nu, "items": ni, "edges": len(users), "layers": a.layers, "dim": a.dim,
                      "reps": a.reps, "fwd_bwd_s": walls[len(walls) // 2], "fwd_bwd_best_s": walls[0],
                      "cpu_s": cpus[len(cpus) // 2], "cpu_best_s": cpus[0], "build_s": build_s,
                      "checksum": float(e0.grad.double().sum()), "loadavg_1m": os.getloadavg()[0]}))


def train_steps(a, torch, u, i, nu, ni, adj, build_s):
    """Whole LightGCN + sampled-softmax training steps (see the module doc)."""
    import math
    torch.manual_seed(7)
    e0 = torch.nn.Parameter(0.1 * torch.randn(nu + ni, a.dim))
    opt = torch.optim.Adam([e0], lr=a.lr)
    counts = torch.bincount(i, minlength=ni).double()
    q = counts / counts.sum()
    n_edges = u.numel()
    steps_per_epoch = -(-n_edges // a.batch)
    order = torch.randperm(n_edges)
    walls, cpus, losses = [], [], []
    for s in range(a.train_steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        lo = (s * a.batch) % n_edges
        idx = order[lo:lo + a.batch]
        bu, bi = u[idx], i[idx]
        neg = torch.multinomial(q, a.negatives, replacement=True)
        logq_neg = torch.log(a.negatives * q[neg]).float()
        opt.zero_grad(set_to_none=True)
        out = propagate(torch, adj, e0, a.layers)
        if a.temperature > 0:
            qv = torch.nn.functional.normalize(out[bu], dim=1) / a.temperature
            pv = torch.nn.functional.normalize(out[nu + bi], dim=1)
            nv = torch.nn.functional.normalize(out[nu + neg], dim=1)
        else:  # dot-product scores, as softrec's model.temperature = 0
            qv, pv, nv = out[bu], out[nu + bi], out[nu + neg]
        pos = (qv * pv).sum(dim=1, keepdim=True)  # not corrected, as softrec (src/loss/sampled.h)
        negl = qv @ nv.t() - logq_neg.unsqueeze(0)
        negl = negl.masked_fill(neg.unsqueeze(0) == bi.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos, negl], dim=1)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(idx), dtype=torch.int64))
        if a.weight_decay > 0:  # LightGCN's L2 on the batch's layer-0 rows, lambda / B per occurrence
            loss = loss + a.weight_decay / (2 * len(idx)) * (e0[bu].square().sum() + e0[nu + bi].square().sum())
        loss.backward()
        opt.step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        losses.append(float(loss))
    w, c = walls[1:], cpus[1:]
    mean_s = sum(w) / len(w)
    print(json.dumps({"bench": "torch_lightgcn_train", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "users": nu, "items": ni, "edges": n_edges, "layers": a.layers, "dim": a.dim,
                      "batch": a.batch, "negatives": a.negatives, "temperature": a.temperature,
                      "weight_decay": a.weight_decay,
                      "steps": len(w), "step_mean_s": mean_s, "step_best_s": min(w),
                      "cpu_step_mean_s": sum(c) / len(c), "steps_per_epoch": steps_per_epoch,
                      "epoch_s_implied": mean_s * steps_per_epoch, "loss_first": losses[0], "loss_last": losses[-1],
                      "build_s": build_s, "loadavg_1m": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

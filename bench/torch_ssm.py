#!/usr/bin/python3
"""torch_ssm.py: the sampled-softmax step of bench_sampled in PyTorch, for the
side-by-side ratio of issue 4 (target: softrec at least 5x faster).

  /usr/bin/python3 bench/torch_ssm.py [--items 1000000 --dim 64 --batch 1024
        --ks 64,1024 --threads 2 --steps 5] [--softrec bench_sampled.jsonl]

The same step as softrec's ssm (src/loss/sampled.h) with its defaults: k
negatives shared by the whole batch, drawn uniformly; logQ correction (the
negatives' logits minus log(k Q(j)) = log(k / N)), the positive uncorrected;
accidental hits (a negative equal to the query's target) masked to -inf; the
item table an nn.Embedding(sparse=True) whose rows are gathered once
(targets + negatives) and get a sparse gradient; SparseAdam updates the
touched rows only. The queries are a leaf tensor (the batch's user vectors)
whose dense gradient is computed, as softrec's dq. Timed: forward + backward
("step_s") and SparseAdam ("update_s"), mean over the steps after one
warm-up. One JSON line per k; with --softrec, also the ratio to the ssm lines
of bench_sampled's output (JSON lines) with the same k. Prints
{"skipped": ...} when torch is not installed.
"""
import argparse
import json
import math
import resource
import sys
import time

try:
    import torch
except ImportError:  # the benchmark is optional: say so in the result row
    print(json.dumps({"bench": "torch_ssm", "skipped": "python3-torch not installed"}))
    sys.exit(0)


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ssm_loss(q, items, targets, neg, logq):
    b = q.shape[0]
    emb = items(torch.cat([targets, neg]))             # (b + k) x d, one gather
    pos = (q * emb[:b]).sum(1, keepdim=True)            # b x 1, not corrected
    negl = q @ emb[b:].t() - logq                       # b x k: one GEMM
    negl = negl.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos, negl], 1)
    return torch.nn.functional.cross_entropy(logits, torch.zeros(b, dtype=torch.long))


def bench(a, k):
    torch.manual_seed(1)
    n, d, b = a.items, a.dim, a.batch
    items = torch.nn.Embedding(n, d, sparse=True)
    torch.nn.init.normal_(items.weight, std=0.15)
    q = (0.15 * torch.randn(b, d)).requires_grad_()
    targets = torch.randint(0, n, (b,))
    opt = torch.optim.SparseAdam(items.parameters(), lr=a.lr)
    logq = math.log(k / n)  # uniform proposal: expected count k / N
    t_step, t_upd, loss = [], [], None
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        neg = torch.randint(0, n, (k,))
        opt.zero_grad()
        q.grad = None
        loss = ssm_loss(q, items, targets, neg, logq)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if s > 0:
            t_step.append(t1 - t0)
            t_upd.append(t2 - t1)
    step, upd = sum(t_step) / len(t_step), sum(t_upd) / len(t_upd)
    return {"bench": "torch_ssm", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "items": n, "dim": d, "batch": b, "k": k, "steps": a.steps, "step_s": step,
            "best_step_s": min(t_step), "update_s": upd, "step_update_s": step + upd,
            "peak_rss_bytes": peak_rss_bytes(), "loss": float(loss)}


def softrec_rows(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") == "sampled_step" and r.get("loss_name") == "ssm":
                rows[r["k"]] = r
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--ks", default="64,1024")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--softrec", help="bench_sampled output (JSON lines) to compare with")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ours = softrec_rows(a.softrec) if a.softrec else {}
    for k in (int(x) for x in a.ks.split(",") if x):
        r = bench(a, k)
        s = ours.get(k)
        if s:
            r["softrec_step_s"] = s["step_s"]
            r["softrec_step_update_s"] = s.get("step_update_s", s["step_s"])
            r["softrec_speedup_step"] = r["step_s"] / s["step_s"]
            r["softrec_speedup_step_update"] = r["step_update_s"] / r["softrec_step_update_s"]
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()

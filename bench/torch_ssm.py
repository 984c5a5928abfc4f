#!/usr/bin/python3
"""torch_ssm.py: the sampled-softmax step of bench_sampled in PyTorch, for the
side-by-side ratio of issue 4 (target: softrec at least 5x faster).

  /usr/bin/python3 bench/torch_ssm.py [--items 1000000 --dim 64 --batch 1024
        --ks 64,1024 --threads 2 --steps 5] [--softrec bench_sampled.jsonl]
  /usr/bin/python3 bench/torch_ssm.py --ks 1024 --threads 1 --steps 20 \
        --rounds 5 --bench-sampled build/bench/bench_sampled

(/usr/bin/python3: Debian's torch is not on pyenv's path.)

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

Interleaved (--rounds R --bench-sampled BIN): R rounds, each one
`BIN --ks K --losses ssm --exact 0 --hsm 0 --steps S` (one rank,
OPENBLAS_NUM_THREADS = --threads) then the torch step, alternately, so both
see the same load on a shared machine. One JSON line per run (with the 1-min
load average at its start), then a summary per k: mean = mean of the runs'
means, best = best step of all runs, and the ratios torch / softrec of both.
"""
import argparse
import json
import math
import os
import resource
import subprocess
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


def softrec_rows_text(lines):
    rows = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("bench") == "sampled_step" and r.get("loss_name") == "ssm":
            rows[r["k"]] = r
    return rows


def softrec_rows(path):
    with open(path) as f:
        return softrec_rows_text(f)


def softrec_run(a, k):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    cmd = [a.bench_sampled, "--items", str(a.items), "--dim", str(a.dim), "--batch", str(a.batch),
           "--ks", str(k), "--losses", "ssm", "--exact", "0", "--hsm", "0", "--steps", str(a.steps)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return softrec_rows_text(out.splitlines())[k]


def interleaved(a, ks):
    for k in ks:
        runs = {"softrec": [], "torch": []}
        for _ in range(a.rounds):
            for who in ("softrec", "torch"):
                load = os.getloadavg()[0]
                r = softrec_run(a, k) if who == "softrec" else bench(a, k)
                r["load_1m_at_start"] = load
                runs[who].append(r)
                print(json.dumps(dict(r, who=who)), flush=True)
        summ = {"bench": "torch_ssm_summary", "k": k, "threads": a.threads, "rounds": a.rounds,
                "steps": a.steps}
        for who, rs in runs.items():
            summ[who + "_mean_step_s"] = sum(r["step_s"] for r in rs) / len(rs)
            summ[who + "_best_step_s"] = min(r["best_step_s"] for r in rs)
            summ[who + "_mean_step_update_s"] = sum(r["step_update_s"] for r in rs) / len(rs)
        summ["load_1m_min"] = min(r["load_1m_at_start"] for rs in runs.values() for r in rs)
        summ["load_1m_max"] = max(r["load_1m_at_start"] for rs in runs.values() for r in rs)
        for f in ("mean_step_s", "best_step_s", "mean_step_update_s"):
            summ["ratio_" + f] = summ["torch_" + f] / summ["softrec_" + f]
        print(json.dumps(summ), flush=True)


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
    ap.add_argument("--rounds", type=int, default=0, help="interleaved rounds (needs --bench-sampled)")
    ap.add_argument("--bench-sampled", help="the bench_sampled binary to interleave with")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.rounds > 0:
        if not a.bench_sampled:
            ap.error("--rounds needs --bench-sampled")
        interleaved(a, [int(x) for x in a.ks.split(",") if x])
        return
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

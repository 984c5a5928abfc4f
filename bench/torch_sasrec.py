#!/usr/bin/python3
"""torch_sasrec.py: the model of src/models/sasrec.h in PyTorch, one training
step of the transformer (forward + backward + Adam) on the same shapes as
bench/bench_sasrec.c, for the ratio (issue 8: softrec at least as fast).

  /usr/bin/python3 bench/torch_sasrec.py [--batch 128 --len 200 --dim 64 --layers 2
                                          --heads 1 --dropout 0.2 --threads 1 --steps 5]

Same architecture: input sqrt(d) * e + learned positions, dropout, pre-LN
blocks (LN -> causal multi-head attention with a key padding mask and
dropout on the probabilities -> residual; LN -> d -> d ReLU -> d with
dropout after the ReLU and on the output -> residual), final LN, eps 1e-8.
Attention is nn.MultiheadAttention, as the PyTorch SASRec port uses. The
input rows are a random tensor (the lookup is not timed, as in the C
bench's step_s); the loss is sum(h * g) with a fixed g. Prints one JSON
line; {"skipped": ...} when torch is absent.
"""
import argparse
import json
import math
import os
import time

try:
    import torch
    import torch.nn as nn
except ImportError:  # the benchmark is optional: say so in the result row
    print(json.dumps({"bench": "torch_sasrec", "skipped": "python3-torch not installed"}))
    raise SystemExit(0)


class Block(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=1e-8)
        self.attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.ln2 = nn.LayerNorm(d, eps=1e-8)
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x, causal, pad):
        a = self.ln1(x)
        y, _ = self.attn(a, a, a, attn_mask=causal, key_padding_mask=pad, need_weights=False)
        x = x + y
        a = self.ln2(x)
        return x + self.drop(self.w2(self.drop(torch.relu(self.w1(a)))))


class SASRec(nn.Module):
    def __init__(self, d, layers, heads, max_len, p):
        super().__init__()
        self.d = d
        self.pos = nn.Parameter(torch.randn(max_len, d) * 0.1)
        self.drop = nn.Dropout(p)
        self.blocks = nn.ModuleList([Block(d, heads, p) for _ in range(layers)])
        self.lnf = nn.LayerNorm(d, eps=1e-8)

    def forward(self, e, valid):
        L = e.shape[1]
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
        pad = ~valid
        x = self.drop(e * math.sqrt(self.d) + self.pos[:L]) * valid.unsqueeze(-1)
        for b in self.blocks:
            x = b(x, causal, pad)
        return self.lnf(x) * valid.unsqueeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--len", type=int, default=200)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = SASRec(a.dim, a.layers, a.heads, a.len, a.dropout)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    e = torch.randn(a.batch, a.len, a.dim) * 0.1
    valid = torch.ones(a.batch, a.len, dtype=torch.bool)
    g = torch.randn(a.batch, a.len, a.dim) * 0.01
    times = []
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        h = model(e, valid)
        (h * g).sum().backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = sum(times[1:]) / a.steps
    print(json.dumps({"bench": "torch_sasrec_step", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": a.batch, "max_len": a.len,
                      "dim": a.dim, "layers": a.layers, "heads": a.heads, "dropout": a.dropout,
                      "steps": a.steps, "step_s": round(step, 5), "best_step_s": round(min(times[1:]), 5),
                      "seq_per_s": round(a.batch / step, 1), "loadavg_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()

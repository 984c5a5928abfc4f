#!/usr/bin/env bash
# study_e2e.sh SOFTREC_BIN SOURCE_DIR WORKDIR: slurm/study-1m.sh end to end at a
# tiny scale (local launcher, 1 rank: 2 oversubscribed ranks stall on a loaded machine): planted data with a valid split, every
# loss configuration (SSM at 2 k x 2 proposals, NCE, HSM, BPR over 2 seeds; the
# exact softmax and entmax once) with early stopping, then launch/report.
# Asserts: every configuration wrote its row (a seeds.json for the seeded ones);
# every run stopped at its epoch cap or exactly train.early_stop_patience
# validations after its best; the report's time-to-X table (time_to_x.csv) has
# a row per configuration and X; every metric is in [0, 1]; the reference is
# the exact loss's best validation NDCG@20, and the exact loss reaches 100% of
# it at its own best epoch and training time; training seconds increase with
# the epoch in every curve; the study's 8 plots are PNGs; re-running the
# command trains nothing (every row exists). Skips (77) without python3 or
# gnuplot, as the other report test does.
set -euo pipefail
bin=$1 src=$2 work=$3
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v gnuplot >/dev/null || { echo "SKIP: no gnuplot (apt-get install gnuplot-nox)"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export SOFTREC_BIN=$bin SOFTREC_HOME=$src RESULTS=$work/results RUNS=$work/runs OUT=$work/out SR_LAUNCHER=local
study=(--study tiny --data "$work/tiny.h5" --items 3000 --users 300 --interactions 9000 --topics 20 --np 1
       --max-epochs 6 --exact-epochs 6 --sparse-epochs 6 --patience 2 --seeds 1,2 --ks 16,64 --nce-ks 32 --sparse entmax
       --sets "model.dim=16 train.batch_size=1024 train.lr=0.02 run.progress_every=1000")
bash "$src/slurm/study-1m.sh" "${study[@]}" --list > list.txt || fail "--list"
bash "$src/slurm/study-1m.sh" "${study[@]}" > log1.txt 2>&1 || { tail -n 40 log1.txt; fail "the study failed"; }
bash "$src/slurm/study-1m.sh" "${study[@]}" > log2.txt 2>&1 || { tail -n 40 log2.txt; fail "the re-run failed"; }
python3 - "$work" <<'PY' || fail "study facts (above)"
import csv, json, os, sys
work = sys.argv[1]
errs = []
def check(c, m):
    if not c: errs.append(m)
names = [l.split()[0] for l in open(f"{work}/list.txt") if l.strip() and not l.startswith(("name", "dataset"))]
check(len(names) == 9, f"--list: {len(names)} configurations, want 9")
log2 = open(f"{work}/log2.txt").read()
for n in names:
    row = f"{work}/results/tiny/{n}.json"
    check(os.path.getsize(row) > 0 if os.path.exists(row) else False, f"{n}: no result row")
    seeded = n not in ("softmax", "entmax")
    check(os.path.exists(f"{work}/runs/tiny/{n}/seeds.json") == seeded, f"{n}: seeds.json present = {not seeded}")
    check(f"tiny/{n}: finished (row exists), skipped" in log2, f"{n}: the re-run did not skip it")
    # early stopping: each run stops at the cap or `patience` validations after its best
    for d in ([f"{work}/runs/tiny/{n}/seed-{s}" for s in (1, 2)] if seeded else [f"{work}/runs/tiny/{n}"]):
        lines = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
        ep = [l for l in lines if "epoch" in l and not l.get("final")]
        last, best = ep[-1]["epoch"], max(ep, key=lambda l: l["valid"]["ndcg@20"])["epoch"]
        check(last == 6 or last - best == 2, f"{d}: last epoch {last}, best {best}: neither the cap nor patience 2")
        check(all("test" in l and "train_seconds" in l for l in ep), f"{d}: epoch lines without test/train_seconds")
check("softrec train" not in log2, "the re-run trained")
ttx = list(csv.DictReader(open(f"{work}/out/time_to_x.csv")))
labels = {r["configuration"] for r in ttx}
check(len(labels) == 9, f"time_to_x.csv: {len(labels)} configurations, want 9: {sorted(labels)}")
for lab in labels:
    xs = sorted(int(r["x_percent"]) for r in ttx if r["configuration"] == lab)
    check(xs == [50, 80, 90, 95, 99, 100], f"time_to_x.csv: {lab}: X = {xs}")
curves = list(csv.DictReader(open(f"{work}/out/study_curves.csv")))
check(len(curves) > 0, "study_curves.csv is empty")
for r in curves:
    for k in ("valid_ndcg@20", "valid_recall@20", "test_ndcg@20", "test_recall@20"):
        check(r[k] != "" and 0.0 <= float(r[k]) <= 1.0, f"study_curves.csv: {r['configuration']} epoch {r['epoch']} {k} = {r[k]!r}")
for n in names:
    rows = [json.loads(l) for l in open(f"{work}/results/tiny/{n}.json")]
    for o in rows:
        for k, v in o["test"].items():
            if "@" in k and not isinstance(v, dict):
                check(0.0 <= v <= 1.0, f"{n}: test {k} = {v}")
# the wall-clock axis: training seconds strictly increase with the epoch in every run's curve
series = {}
for r in curves:
    series.setdefault((r["configuration"], r["seed"]), []).append((int(r["epoch"]), float(r["train_seconds"])))
for key, pts in series.items():
    pts.sort()
    check(all(b[1] > a[1] for a, b in zip(pts, pts[1:])), f"{key}: training seconds not increasing: {pts}")
    check(pts[0][1] > 0, f"{key}: first training time {pts[0][1]} is not positive")
# the exact loss is the reference, and reaches 100% of it at its best epoch, at its own time
ex = [json.loads(l) for l in open(f"{work}/runs/tiny/softmax/metrics.jsonl")]
ex = [l for l in ex if "epoch" in l and not l.get("final")]
best = max(ex, key=lambda l: l["valid"]["ndcg@20"])
first_best = next(l for l in ex if l["valid"]["ndcg@20"] >= best["valid"]["ndcg@20"])
e100 = [r for r in ttx if r["configuration"] == "softmax (exact)" and r["x_percent"] == "100"]
check(len(e100) == 1, "time_to_x.csv: no 100% row of the exact softmax")
if e100:
    r = e100[0]
    check(abs(float(r["reference_valid_ndcg@20"]) - best["valid"]["ndcg@20"]) < 1e-9,
          f"reference {r['reference_valid_ndcg@20']} is not the exact loss's best {best['valid']['ndcg@20']}")
    check(r["seeds_reached"] == "1" and abs(float(r["seconds_mean"]) - first_best["train_seconds"]) < 1e-6
          and float(r["epochs_mean"]) == first_best["epoch"],
          f"exact to 100%: {r['seconds_mean']} s epoch {r['epochs_mean']}, want {first_best['train_seconds']} s epoch {first_best['epoch']}")
by = {}   # times to X% grow with X for every configuration
for r in ttx:
    if r["seconds_mean"] and r["seeds_reached"] == r["seeds"]:
        by.setdefault(r["configuration"], []).append((int(r["x_percent"]), float(r["seconds_mean"])))
for lab, pts in by.items():
    pts.sort()
    check(all(b[1] >= a[1] for a, b in zip(pts, pts[1:])), f"{lab}: time to X% decreases with X: {pts}")
md = open(f"{work}/out/results.md").read()
check("time to X% of the exact loss's final validation NDCG@20" in md, "results.md: no time-to-X table")
pngs = [f for f in os.listdir(f"{work}/out") if f.startswith("study_tiny_") and f.endswith(".png")]
check(len(pngs) == 8, f"{len(pngs)} study plots, want 8: {pngs}")
for f in pngs:
    check(open(f"{work}/out/{f}", "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{f}: not a PNG")
for e in errs:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errs else 0)
PY
echo "study_e2e: OK"

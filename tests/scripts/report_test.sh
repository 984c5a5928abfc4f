#!/usr/bin/env bash
# report_test.sh SOURCE_DIR WORKDIR: launch/report on the fixed rows in
# tests/data/report: every row appears in results.csv with its values, the
# Markdown tables show them (formatted), the strong/weak derived numbers are
# right, per-epoch metrics.jsonl lines are ignored, seeds (a seeds.json and
# loose rows that differ only in train.seed) give mean ± sd cells and error
# bars, and every plot is a valid PNG. Skips (77) without python3 or gnuplot.
set -euo pipefail
src=$1 work=$2
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v gnuplot >/dev/null || { echo "SKIP: no gnuplot (apt-get install gnuplot-nox)"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
out=$work/out
"$src/launch/report" "$src/tests/data/report" "$out" --title "report test"
python3 - "$src/tests/data/report" "$out" <<'PY'
import csv, json, os, sys, statistics
rows_dir, out = sys.argv[1], sys.argv[2]
fail = []
def check(cond, msg):
    if not cond: fail.append(msg)

# the rows as written (metrics.jsonl excluded)
rows = []
for d, _, names in os.walk(rows_dir):
    for n in names:
        if n == "metrics.jsonl": continue
        for line in open(os.path.join(d, n)):
            if not line.strip(): continue
            o = json.loads(line)
            rows += o["runs"] if n == "seeds.json" else [o]   # a train.seeds summary holds its rows
csvrows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
check(len(csvrows) == len(rows) == 27, f"results.csv has {len(csvrows)} rows, the folder {len(rows)} (want 27)")
check(not any(r["test_ndcg@20"] == "0.9" for r in csvrows), "a metrics.jsonl line was read as a row")
md = open(os.path.join(out, "results.md")).read()
check(md.startswith("# report test"), "results.md title")

# every row: its values in the CSV (full precision) and in the Markdown table
for r in rows:
    name = r.get("name")
    t = r.get("epoch_seconds")
    match = [c for c in csvrows if c["test_ndcg@20"] and float(c["test_ndcg@20"]) == r["test"]["ndcg@20"]
             and (t is None or (c["epoch_seconds"] and float(c["epoch_seconds"]) == t))
             and c["N"] == str(r.get("N", r.get("num_items", "")))
             and c["loss"] == r.get("loss", "") and c["P"] == str(r.get("P", r.get("ranks", "")))]
    check(len(match) >= 1, f"row {name or r} not in results.csv")
    for c in match:
        if "recall@20" in r["test"]:
            check(float(c["test_recall@20"]) == r["test"]["recall@20"], f"{name}: recall@20")
        if "negatives" in r and r["loss"] in ("ssm", "nce"):
            check(c["k"] == str(r["negatives"]), f"{name}: k")
        if "peak_mem_bytes" in r:
            check(abs(float(c["peak_mem_mib"]) - r["peak_mem_bytes"] / 2**20) < 1e-9, f"{name}: peak memory")
    cells = [f"{r['test']['ndcg@20']:.4f}"]
    if t is not None: cells.append(f"{t:.3f}")
    if "recall@20" in r["test"]: cells.append(f"{r['test']['recall@20']:.4f}")
    check(any(all(f"| {x} |" in ln for x in cells) for ln in md.splitlines()),
          f"row {name}: no Markdown line with {cells}")
# the minimal row (only test + train_seconds) is in the table
check("minimal.json" in md, "minimal row missing from results.md")

# strong: P=1 8.0 s; P=2 median(4.0, 4.4) = 4.2 -> speedup 1.90, efficiency 0.95; P=4 2.5 -> 3.20, 0.80
for line in ("| 2 | 1000000 | 2 | 4.200 | 1.90 | 0.95 |", "| 4 | 1000000 | 1 | 2.500 | 3.20 | 0.80 |"):
    check(line in md, f"strong table line '{line}' missing")
# weak: 3.0 / 3.3 / 6.0 s -> efficiency 1.00, 0.91, 0.50
for line in ("| 2 | 500000 | 500k | 1 | 3.300 | 0.91 |", "| 4 | 1000000 | 1M | 1 | 6.000 | 0.50 |"):
    check(line in md, f"weak table line '{line}' missing")
# metric vs k pivot: ssm at k=64 and the exact reference
check("| ssm (uniform) | 0.2000 (0.500 s) | 0.2300 (0.600 s) | 0.2600 (0.700 s) |" in md, "ssm pivot line")
check("| softmax (exact) | 0.3000 (2.000 s) at every k |" in md, "softmax reference line in the pivot")
# seeds: bpr k=16 from seeds/seeds.json (0.10 0.12 0.14), k=64 from three loose rows (0.15 0.16 0.20)
check("| bpr (uniform) | 0.1200 ± 0.0200 (0.500 s) | 0.1700 ± 0.0265 (0.900 s) |  |" in md, "bpr mean ± sd pivot line")
check("## Seeds: mean ± sd" in md, "no Seeds table")
for line in ("| sweep | bpr | 16 | uniform | mf | synth-100000.h5 | 1,2,3 | 3 | 0.1200 ± 0.0200 | 0.2300 ± 0.0361 |  | 0.500 ± 0.100 |",
             "| sweep | bpr | 64 | uniform | mf | synth-100000.h5 | 1,2,3 | 3 | 0.1700 ± 0.0265 | 0.2800 ± 0.0436 |  | 0.900 ± 0.100 |"):
    check(line in md, f"seeds table line '{line}' missing")
check(sum(c["seed"] == "2" for c in csvrows) == 2, "results.csv: seed column")
for p in ("ndcg20_vs_k", "time_vs_k", "seeds_ndcg20"):
    gp = open(os.path.join(out, "plotdata", p + ".gp")).read()
    check("with yerrorbars" in gp, f"{p}.gp: no error bars")
check("yerrorbars" not in open(os.path.join(out, "plotdata", "strong_speedup.gp")).read(), "error bars without seeds")

# plots: present, referenced, valid PNG (signature, IHDR, size, IEND)
want = ["ndcg20_vs_k", "time_vs_k", "time_vs_items", "strong_speedup", "strong_efficiency",
        "weak_time", "weak_efficiency", "seeds_ndcg20"]
for p in want:
    f = os.path.join(out, p + ".png")
    if not os.path.exists(f):
        fail.append(f"{p}.png missing"); continue
    b = open(f, "rb").read()
    ok = b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR" and b[-8:-4] == b"IEND"
    w, h = int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    check(ok and w >= 400 and h >= 300, f"{p}.png is not a valid PNG ({len(b)} bytes, {w}x{h})")
    check(f"({p}.png)" in md, f"{p}.png not linked from results.md")
    gp = open(os.path.join(out, "plotdata", p + ".gp")).read()
    check("set xlabel" in gp and "set ylabel" in gp and "set title" in gp, f"{p}: axis labels/title")
if fail:
    print("FAIL:\n  " + "\n  ".join(fail)); sys.exit(1)
print(f"report_test: {len(rows)} rows, {len(want)} plots: all checks passed")
PY

# a folder with only one kind of row: the other plots are skipped, no failure
mkdir -p "$work/only"
cp "$src/tests/data/report/sweep/softmax.json" "$work/only/"
"$src/launch/report" "$work/only" "$work/only-out"
[[ -s $work/only-out/results.md && ! -e $work/only-out/strong_speedup.png ]] || { echo "FAIL: skipped plots"; exit 1; }
grep -q "strong scaling: no rows: skipped" "$work/only-out/results.md" || { echo "FAIL: no skip note"; exit 1; }
# an empty folder is an error
mkdir -p "$work/empty"
if "$src/launch/report" "$work/empty" "$work/empty-out" 2>/dev/null; then echo "FAIL: empty folder accepted"; exit 1; fi
echo "report_test: passed"

#!/usr/bin/env bash
# ml1m_epoch.sh [BUILD_DIR]: one MF + exact-softmax epoch on MovieLens-1M
# (implicit_full train, d = 64, batch 1024, Adam) in softrec at 2 ranks x 1
# thread and 1 rank x 2 threads, and in PyTorch on 2 threads when Debian's
# python3-torch is installed. One JSON line per run, then the ratios.
# Skips (exit 0) when ../shared/data is absent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$here/build}
data=${SOFTREC_DATA:-$here/../shared/data}
work=${BENCH_DIR:-/tmp/softrec-bench-ml1m}
[[ -f $data/ml-1m/implicit_full/train.txt ]] || { echo '{"bench": "ml1m_epoch", "skipped": "no shared data"}'; exit 0; }
mkdir -p "$work"
"$build/softrec" data convert --format lightgcn --input "$data/ml-1m/implicit_full/train.txt" \
  --test "$data/ml-1m/implicit_full/test.txt" --output "$work/ml1m.h5" --force 2>/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 SOFTREC_LOG=warn
one() { # np threads
  local np=$1 th=$2 dir=$work/run-np$1-t$2
  OPENBLAS_NUM_THREADS=$th mpirun -np "$np" --bind-to none -x OPENBLAS_NUM_THREADS "$build/softrec" train \
    --set data.path="$work/ml1m.h5" --set model.dim=64 --set train.batch_size=1024 --set train.epochs=1 \
    --set eval.every=0 --set train.lr=0.005 --set run.dir="$dir" --set run.progress_every=1000 >/dev/null 2>&1
  local secs; secs=$(grep -o '"epoch_seconds": [0-9.]*' "$dir/metrics.jsonl" | head -n1 | cut -d' ' -f2)
  echo "{\"bench\": \"softrec_ml1m_epoch\", \"ranks\": $np, \"threads\": $th, \"epoch_seconds\": $secs}"
  echo "$secs" > "$dir/secs"
}
one 2 1
one 1 2
t=$(/usr/bin/python3 "$here/bench/torch_mf_softmax.py" epoch --train "$data/ml-1m/implicit_full/train.txt" --threads 2)
echo "$t"
ts=$(echo "$t" | grep -o '"epoch_seconds": [0-9.]*' | cut -d' ' -f2 || true)
if [[ -n $ts ]]; then
  for c in np2-t1 np1-t2; do
    awk -v a="$ts" -v b="$(cat "$work/run-$c/secs")" -v c="$c" \
      'BEGIN { printf "{\"bench\": \"ml1m_epoch_ratio\", \"softrec\": \"%s\", \"torch_over_softrec\": %.2f}\n", c, a / b }'
  done
fi

#!/usr/bin/env bash
# The headline rows of docs/results.md under the model-selection protocol: validation split
# (leave-last-out for sequences; 10% of each user's train items for the LightGCN split, which has
# none), validation NDCG@20 every E epochs with early stopping, the best-validation model tested,
# seeds 1, 2, 3. Every run resumes (train.resume=auto): kill it at any moment and run it again.
#
#   bench/headline.sh [ROW...]       rows: ml1m-mf beauty-sasrec ml1m-sasrec gowalla-lightgcn
#
# Environment: SOFTREC (binary; default build/softrec), DATA (../shared/data), NP (ranks, default 1),
# OMP_NUM_THREADS (default 1), NICE (default 19: runs beside other work without slowing it).
# Each row writes runs/headline/<row>/seeds.json (mean, sd and 95% interval per test metric).
set -euo pipefail
cd "$(dirname "$0")/.."
SOFTREC=${SOFTREC:-build/softrec}
DATA=${DATA:-../shared/data}
NP=${NP:-1}
NICE=${NICE:-19}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -x "$SOFTREC" ] || { echo "headline.sh: $SOFTREC not built (cmake --build build)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "headline.sh: $DATA absent (the datasets' README says where to get them)" >&2; exit 2; }
mkdir -p data runs/headline

convert() {   # convert OUT ARGS...: once; the file is renamed into place only when complete
    local out=$1; shift
    [ -f "$out" ] || "$SOFTREC" data convert "$@" --output "$out"
}

train() {     # train ROW CONFIG SETTINGS...
    local row=$1 cfg=$2; shift 2
    local dir=runs/headline/$row
    if [ -f "$dir/seeds.json" ]; then echo "headline.sh: $row done ($dir/seeds.json)"; return 0; fi
    echo "headline.sh: $row -> $dir ($(date -u +%FT%TZ))"
    nice -n "$NICE" launch/softrec-run -n "$NP" train --config "$cfg" \
        --set eval.valid_metric=ndcg@20 --set train.seeds=1,2,3 --set train.resume=auto \
        --set run.dir="$dir" "$@"
}

row() {
    case $1 in
    ml1m-mf)
        convert data/ml1m-v.h5 --format lightgcn --input "$DATA/ml-1m/implicit_full/train.txt" \
            --test "$DATA/ml-1m/implicit_full/test.txt" --valid-ratio 0.1 --seed 1
        train ml1m-mf configs/ml1m-mf-softmax.ini --set data.path=data/ml1m-v.h5 \
            --set eval.every=1 --set train.early_stop_patience=3 --set train.epochs=30 ;;
    beauty-sasrec)
        convert data/beauty.h5 --format seq-lines --input "$DATA/amazon-beauty/Beauty.txt"
        train beauty-sasrec configs/beauty-sasrec.ini --set data.path=data/beauty.h5 \
            --set eval.every=2 --set train.early_stop_patience=5 --set train.epochs=200 ;;
    ml1m-sasrec)
        convert data/ml1m-seq.h5 --format seq-lines --input "$DATA/ml-1m/sequential/sequences.txt"
        train ml1m-sasrec configs/ml1m-sasrec.ini --set data.path=data/ml1m-seq.h5 \
            --set eval.every=2 --set train.early_stop_patience=5 --set train.epochs=200 ;;
    gowalla-lightgcn)
        convert data/gowalla-v.h5 --format lightgcn --input "$DATA/gowalla/train.txt" \
            --test "$DATA/gowalla/test.txt" --valid-ratio 0.1 --seed 1
        train gowalla-lightgcn configs/gowalla-lightgcn.ini --set data.path=data/gowalla-v.h5 \
            --set eval.every=2 --set train.early_stop_patience=4 --set train.epochs=48 ;;
    *) echo "headline.sh: unknown row '$1' (ml1m-mf beauty-sasrec ml1m-sasrec gowalla-lightgcn)" >&2
       exit 2 ;;
    esac
}

[ $# -gt 0 ] || set -- beauty-sasrec ml1m-sasrec gowalla-lightgcn ml1m-mf
for r in "$@"; do row "$r"; done

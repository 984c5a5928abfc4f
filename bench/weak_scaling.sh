#!/usr/bin/env bash
# weak_scaling.sh [OUT_DIR]: a weak-scaling study on this machine, no SLURM.
# Items per rank stay fixed while the catalogue grows with the rank count
# (N = ITEMS_PER_RANK x P; 250k x {1, 2, 4} = up to 1,000,000 items); users,
# interactions and the global batch stay fixed, so each rank's work per step is
# constant and the ideal time per epoch is flat. For each P it generates a
# planted dataset (kept in DATA_DIR), trains 1 epoch of MF + exact softmax with
# launch/softrec-run -n P, and writes the same result row as slurm/weak.sbatch
# (study "weak") to OUT_DIR/results/weak/; then launch/report makes
# OUT_DIR/report/{results.md,results.csv,weak_time.png,weak_efficiency.png}.
#   DOCS=1 bench/weak_scaling.sh        also copies the plots to docs/img/
# Settings (environment): RANKS="1 2 4" ITEMS_PER_RANK=250000 USERS=5000
#   INTERACTIONS=30000 DIM=32 BATCH=1024 REPEATS=1 LOSS=softmax SOFTREC_BIN DATA_DIR
# Runs whose row exists are skipped (delete OUT_DIR/results to start over).
# On a 2-core machine P = 4 oversubscribes (2 ranks per core), so its time
# per epoch measures the oversubscription, not the scaling.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$here/runs/weak-scaling}" && cd "${1:-$here/runs/weak-scaling}" && pwd)
RANKS=${RANKS:-"1 2 4"}
ITEMS_PER_RANK=${ITEMS_PER_RANK:-250000}
USERS=${USERS:-5000}
INTERACTIONS=${INTERACTIONS:-30000}
DIM=${DIM:-32}
BATCH=${BATCH:-1024}
REPEATS=${REPEATS:-1}
LOSS=${LOSS:-softmax}
DATA_DIR=${DATA_DIR:-$here/data/weak}

export SOFTREC_HOME=$here SR_LAUNCHER=local SR_RESULTS=$out/results SR_RUNS=$out/runs
export SOFTREC_LOG=${SOFTREC_LOG:-warn}
source "$here/slurm/lib.sh"
sr_check

for P in $RANKS; do
  export SR_N=$((ITEMS_PER_RANK * P))
  data=$DATA_DIR/weak-U$USERS-M$INTERACTIONS-N$SR_N-s1.h5
  sr_ensure_synth "$data" "$USERS" "$SR_N" "$INTERACTIONS" 1
  for ((r = 1; r <= REPEATS; r++)); do
    # The machine's load before each run goes into the row (it is shared).
    export SR_ROW_EXTRA="{\"host\": \"$(hostname -s)\", \"cores\": $(nproc), \"loadavg_before\": $(cut -d' ' -f1 /proc/loadavg), \"oversubscribed\": $([[ $P -gt $(nproc) ]] && echo true || echo false)}"
    sr_train weak "$LOSS-N$SR_N-P$P-r$r" "$P" --set data.path="$data" --set loss.name="$LOSS" \
      --set train.epochs=1 --set model.dim="$DIM" --set train.batch_size="$BATCH" --set eval.every=0 \
      --set eval.topk=20
  done
done

"$here/launch/report" "$out/results" "$out/report" --title "Weak scaling on $(hostname -s) ($(nproc) cores)"
if [[ ${DOCS:-0} == 1 ]]; then
  mkdir -p "$here/docs/img"
  for p in weak_time weak_efficiency; do cp "$out/report/$p.png" "$here/docs/img/$p.png"; done
  echo "weak_scaling: plots copied to docs/img/" >&2
fi
echo "weak_scaling: $out/report/results.md" >&2

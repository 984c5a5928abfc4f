#!/bin/bash
# study-1m.sh: the converged "exact vs sampled at 1,000,000 items" study
# (issue 21) as one command: a planted dataset with a validation split, every
# loss configuration trained until its validation NDCG@20 stops improving
# (early stopping), the sampled ones over 3 seeds, then launch/report.
#
#   bash slurm/study-1m.sh                   here, 2 ranks through launch/softrec-run
#   sbatch slurm/study-1m.sh                 one SLURM job (srun), requeued at the limit
#   bash slurm/study-1m.sh --items 20000 --users 2000 --interactions 60000 --study s20k
#                                            the same pipeline, small
#   bash slurm/study-1m.sh --list            the configurations, nothing run
#
# Re-running the same command continues where it stopped: finished
# configurations (a row in results/STUDY/) are skipped, unfinished ones resume
# from their checkpoints (train.resume=auto). Each run has a wall-clock budget
# per invocation (--budget, --exact-budget): when it is spent the run is
# stopped with a checkpoint (exit 11), a partial row (NAME.partial.json) is
# written so the report can draw its curve so far, and the next configuration
# starts; the next invocation gives it another budget. The SLURM time-limit
# signal (USR1, 300 s before the limit) stops the study and requeues the job.
# docs/experiments.md "The million-item study" has the plan and the budget.
#
#SBATCH --job-name=softrec-study-1m
#SBATCH --nodes=1
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=08:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=softrec-study-1m-%j.out
set -euo pipefail

usage() {
  cat <<'EOF'
usage: slurm/study-1m.sh [options]          (every option also as the upper-case variable)
  --study NAME          results/NAME, runs/NAME, out/NAME (default study-1m)
  --items N             catalogue size (default 1000000)
  --users U             users (default 8000; evaluation costs U x N x d per split)
  --interactions M      interactions over all splits (default 1000000)
  --topics T            planted topics (default 1000)
  --data FILE           dataset (default data/STUDY-synth.h5; generated when missing)
  --np P                ranks per run (default SLURM_NTASKS, else 2)
  --max-epochs E        epoch cap of the sampled and cheap losses (default 50)
  --exact-epochs E      epoch cap of the exact softmax (default 8)
  --sparse-epochs E     epoch cap of the sparse maps (default 4)
  --patience P          validations without a new best before stopping (default 3)
  --nce-patience P      the same for NCE (default 10: NCE first spends several epochs pushing every
                        score down to its fixed normaliser, log Z = 0, with flat validation;
                        docs/experiments.md section 6)
  --budget S            wall seconds per configuration (all its seeds) per invocation, sampled/cheap
                        losses (0 = none; default 5400)
  --exact-budget S      the same for the exact softmax and the sparse maps (default 21600 = 6 h)
  --seeds LIST          seeds of the sampled/cheap losses (default 1,2,3)
  --ks LIST             SSM negatives (default 64,256,1024,4096)
  --proposals LIST      SSM proposals (default uniform,popularity)
  --nce-ks LIST         NCE negatives (default 1024)
  --nce-proposals LIST  NCE proposals (default uniform)
  --sparse LIST         sparse maps run like the exact loss (default entmax; '' for none)
  --only REGEX          run only the configurations whose name matches (the report still reads all)
  --sets "K=V ..."      extra --set of every run (after the defaults below)
  --list                print the configurations and exit
  --no-report           skip launch/report at the end
Training: MF d=64, batch 1024, Adam lr 0.005, eval.topk=10,20, eval.valid_metric=ndcg@20,
eval.every=1, eval.test_curve=true (test metrics at every validation, for the test curves).
EOF
}

SOFTREC_HOME=${SOFTREC_HOME:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
STUDY=${STUDY:-study-1m}
ITEMS=${ITEMS:-1000000} USERS=${USERS:-8000} INTERACTIONS=${INTERACTIONS:-1000000} TOPICS=${TOPICS:-1000}
SEED=${SEED:-1} DATA=${DATA:-}
NP=${NP:-${SLURM_NTASKS:-2}}
MAX_EPOCHS=${MAX_EPOCHS:-50} EXACT_EPOCHS=${EXACT_EPOCHS:-8} SPARSE_EPOCHS=${SPARSE_EPOCHS:-4} PATIENCE=${PATIENCE:-3} NCE_PATIENCE=${NCE_PATIENCE:-10}
BUDGET=${BUDGET:-5400} EXACT_BUDGET=${EXACT_BUDGET:-21600}
SEEDS=${SEEDS:-1,2,3} KS=${KS:-64,256,1024,4096} PROPOSALS=${PROPOSALS:-uniform,popularity}
NCE_KS=${NCE_KS:-1024} NCE_PROPOSALS=${NCE_PROPOSALS:-uniform} SPARSE=${SPARSE-entmax} ONLY=${ONLY:-} SETS=${SETS:-} REPORT=${REPORT:-1} LIST=0
TRAIN_SETS="model.dim=64 train.batch_size=1024 optim.name=adam train.lr=0.005 eval.topk=10,20
eval.valid_metric=ndcg@20 eval.every=1 eval.test_curve=true train.checkpoint_every=2000 train.keep_checkpoints=2"

want() { [[ $# -ge 2 && -n $2 ]] || { echo "study-1m: $1 wants a value (--help)" >&2; exit 2; }; }
while (( $# )); do
  case $1 in
    --study) want "$@"; STUDY=$2; shift ;;
    --items) want "$@"; ITEMS=$2; shift ;;
    --users) want "$@"; USERS=$2; shift ;;
    --interactions) want "$@"; INTERACTIONS=$2; shift ;;
    --topics) want "$@"; TOPICS=$2; shift ;;
    --data) want "$@"; DATA=$2; shift ;;
    --np) want "$@"; NP=$2; shift ;;
    --max-epochs) want "$@"; MAX_EPOCHS=$2; shift ;;
    --exact-epochs) want "$@"; EXACT_EPOCHS=$2; shift ;;
    --sparse-epochs) want "$@"; SPARSE_EPOCHS=$2; shift ;;
    --patience) want "$@"; PATIENCE=$2; shift ;;
    --nce-patience) want "$@"; NCE_PATIENCE=$2; shift ;;
    --budget) want "$@"; BUDGET=$2; shift ;;
    --exact-budget) want "$@"; EXACT_BUDGET=$2; shift ;;
    --seeds) want "$@"; SEEDS=$2; shift ;;
    --ks) want "$@"; KS=$2; shift ;;
    --proposals) want "$@"; PROPOSALS=$2; shift ;;
    --nce-ks) want "$@"; NCE_KS=$2; shift ;;
    --nce-proposals) want "$@"; NCE_PROPOSALS=$2; shift ;;
    --sparse) [[ $# -ge 2 ]] || { echo "study-1m: --sparse wants a value ('' for none)" >&2; exit 2; }; SPARSE=$2; shift ;;
    --only) want "$@"; ONLY=$2; shift ;;
    --sets) want "$@"; SETS=$2; shift ;;
    --list) LIST=1 ;;
    --no-report) REPORT=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "study-1m: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
for v in ITEMS USERS INTERACTIONS TOPICS NP MAX_EPOCHS EXACT_EPOCHS SPARSE_EPOCHS PATIENCE NCE_PATIENCE BUDGET EXACT_BUDGET; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "study-1m: ${v,,} = '${!v}' is not a non-negative integer" >&2; exit 2; }
done
(( NP >= 1 )) || { echo "study-1m: --np must be >= 1" >&2; exit 2; }
[[ $STUDY =~ ^[A-Za-z0-9._-]+$ ]] || { echo "study-1m: --study '$STUDY' must be letters, digits, . _ -" >&2; exit 2; }
DATA=${DATA:-$SOFTREC_HOME/data/$STUDY-synth.h5}

# The configurations: "name loss k proposal seeds epochs budget", one a line.
# Sampled and cheap losses first: 3 seeds (train.seeds), MAX_EPOCHS, BUDGET;
# then the exact softmax and the sparse maps (full scores, the exact step's
# cost): one seed, EXACT_EPOCHS (SPARSE_EPOCHS), EXACT_BUDGET.
study_configs() {
  local k q
  for k in ${KS//,/ }; do for q in ${PROPOSALS//,/ }; do
    echo "ssm-k$k-$q ssm $k $q $SEEDS $MAX_EPOCHS $BUDGET"
  done; done
  for k in ${NCE_KS//,/ }; do for q in ${NCE_PROPOSALS//,/ }; do
    echo "nce-k$k-$q nce $k $q $SEEDS $MAX_EPOCHS $BUDGET"
  done; done
  echo "hsm hsm - - $SEEDS $MAX_EPOCHS $BUDGET"
  echo "bpr bpr - - $SEEDS $MAX_EPOCHS $BUDGET"
  echo "softmax softmax - - 1 $EXACT_EPOCHS $EXACT_BUDGET"
  for k in ${SPARSE//,/ }; do echo "$k $k - - 1 $SPARSE_EPOCHS $EXACT_BUDGET"; done
}
mapfile -t CONFIGS < <(study_configs)
if [[ -n $ONLY ]]; then
  sel=(); for c in "${CONFIGS[@]}"; do [[ ${c%% *} =~ $ONLY ]] && sel+=("$c"); done
  (( ${#sel[@]} )) || { echo "study-1m: --only '$ONLY' matches no configuration (--list)" >&2; exit 2; }
  CONFIGS=("${sel[@]}")
fi
if (( LIST )); then
  printf '%-24s %-8s %-6s %-11s %-8s %-7s %s\n' name loss k proposal seeds epochs budget_s
  for c in "${CONFIGS[@]}"; do read -r n l k q s e b <<< "$c"; printf '%-24s %-8s %-6s %-11s %-8s %-7s %s\n' "$n" "$l" "$k" "$q" "$s" "$e" "$b"; done
  echo "dataset: $DATA ($USERS users, $ITEMS items, $INTERACTIONS interactions, $TOPICS topics); $NP ranks"
  exit 0
fi

# No SLURM: the local launcher (launch/softrec-run); inside a job: srun.
if [[ -z ${SR_LAUNCHER:-} ]]; then
  if [[ -n ${SLURM_JOB_ID:-} ]]; then SR_LAUNCHER=srun; else SR_LAUNCHER=local; fi
fi
export SR_LAUNCHER SOFTREC_HOME SR_RESULTS=${RESULTS:-$SOFTREC_HOME/results} SR_RUNS=${RUNS:-$SOFTREC_HOME/runs}
OUT=${OUT:-$SOFTREC_HOME/out/$STUDY}
source "$SOFTREC_HOME/slurm/lib.sh" || { echo "study-1m: cannot read $SOFTREC_HOME/slurm/lib.sh (set SOFTREC_HOME)" >&2; exit 2; }
sr_check
sr_ensure_synth "$DATA" "$USERS" "$ITEMS" "$INTERACTIONS" "$SEED" --topics "$TOPICS"
export SR_N; SR_N=$(sr_data_items "$DATA")
[[ -n $SR_N ]] || sr_die "cannot read the item count of $DATA (softrec data info)"

partial_path() { local r; r=$(sr_row_path "$STUDY" "$1"); echo "${r%.json}.partial.json"; }

# study_partial NAME RUNDIR: a row for a run stopped by its budget: no test
# metrics, its run directory (or one per seed) so the report draws its curve.
study_partial() {
  local name=$1 rundir=$2
  "$SR_PYTHON" - "$(partial_path "$name")" "$rundir" "$STUDY" "$name" "$NP" "$SR_N" <<'EOF'
import json, os, sys
out, rundir, study, name, P, N = sys.argv[1:]
dirs = sorted(os.path.join(rundir, d) for d in os.listdir(rundir) if d.startswith("seed-")) or [rundir]
rows = []
for d in dirs:
    if not os.path.exists(os.path.join(d, "metrics.jsonl")):
        continue
    cfg, section = {}, ""
    try:
        for line in open(os.path.join(d, "config.ini")):   # [section] then key = value
            line = line.split("#")[0].strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
            elif "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                cfg[f"{section}.{k}" if section else k] = v
    except OSError:
        pass
    secs = None
    for line in open(os.path.join(d, "metrics.jsonl")):
        try:
            secs = json.loads(line).get("train_seconds", secs)
        except ValueError:
            pass
    rows.append({"study": study, "name": name, "partial": True, "P": int(P), "N": int(N), "run_dir": d,
                 "loss": cfg.get("loss.name"), "train_seconds": secs, "config": cfg})
if not rows:                       # stopped before its first epoch ended: no curve yet
    if os.path.exists(out):
        os.remove(out)
    sys.exit(0)
with open(out + ".tmp", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
os.replace(out + ".tmp", out)
EOF
}

# study_run CONFIG-LINE: train one configuration (all its seeds) under its budget.
# Returns 0 (finished, or stopped by its budget), 11 (the SLURM signal: stop
# here and requeue) or softrec's failure code.
study_run() {
  local name loss k q seeds epochs budget
  read -r name loss k q seeds epochs budget <<< "$1"
  local args=(--set data.path="$DATA" --set loss.name="$loss" --set train.epochs="$epochs"
              --set train.early_stop_patience="$([[ $loss == nce ]] && echo "$NCE_PATIENCE" || echo "$PATIENCE")")
  local kv; for kv in $TRAIN_SETS $SETS; do args+=(--set "$kv"); done
  [[ $k != - ]] && args+=(--set loss.negatives="$k" --set loss.proposal="$q")
  if [[ $seeds == *,* ]]; then args+=(--set train.seeds="$seeds"); else args+=(--set train.seed="$seeds"); fi
  local row; row=$(sr_row_path "$STUDY" "$name")
  [[ -s $row ]] && { rm -f "$(partial_path "$name")"; sr_log "$STUDY/$name: finished (row exists), skipped"; return 0; }
  # The budget: a watcher signals the launcher (softrec-run turns TERM into
  # USR1 for the ranks; srun and mpirun pass USR1 on) after BUDGET seconds.
  local flag=$SR_RUNS/$STUDY/$name.budget-spent pending=$SR_PENDING rc=0
  mkdir -p "$SR_RUNS/$STUDY"; rm -f "$flag"
  SR_BUDGET=$budget SR_BUDGET_FLAG=$flag sr_train "$STUDY" "$name" "$NP" "${args[@]}" || rc=$?
  if (( rc == SR_EXIT_STOPPED )) && [[ -e $flag ]]; then
    SR_PENDING=$pending
    sr_log "$STUDY/$name: its budget of $budget s is spent; checkpoint kept, partial row written (run the command again to continue it)"
    study_partial "$name" "$SR_RUNS/$STUDY/$name"
    rc=0
  elif (( rc == 0 )); then
    rm -f "$(partial_path "$name")"
  fi
  rm -f "$flag"
  return "$rc"
}

sr_log "study $STUDY: ${#CONFIGS[@]} configurations on $DATA (N = $SR_N items), $NP ranks"
rc=0 failed=()
for c in "${CONFIGS[@]}"; do
  sr_stop_here && break
  crc=0; study_run "$c" || crc=$?
  (( crc == SR_EXIT_STOPPED )) && { rc=$crc; break; }
  (( crc != 0 )) && { failed+=("${c%% *} (exit $crc)"); rc=$crc; }
done
(( ${#failed[@]} )) && sr_log "failed: ${failed[*]}"
if (( REPORT )) && [[ $SR_SIGNALLED == 0 ]]; then
  "$SR_PYTHON" "$SOFTREC_HOME/launch/report" "$SR_RESULTS/$STUDY" "$OUT" --title "$STUDY: exact vs sampled at $SR_N items" \
    || sr_log "launch/report failed (rc $?)"
fi
sr_finish "$rc"

# slurm/lib.sh: helpers shared by the batch scripts in slurm/ (sourced, not run).
#
# What it does: launches softrec inside an allocation (srun --mpi=pmix, or
# mpirun), forwards the time-limit signal to it, writes one result row per run
# (the last stdout line of `softrec train` plus the scaling fields), generates
# synthetic datasets once (flock, so array tasks never race), and requeues the
# job when a run was stopped by the time limit before it finished.
# What it does not do: pick sizes or sweeps; each *.sbatch sets those at its top.
#
# Variables it reads (every one has a default; the sbatch scripts set them):
#   SOFTREC_HOME     checkout with build/softrec (default: the submit directory)
#   SOFTREC_BIN      the binary (default $SOFTREC_HOME/build/softrec)
#   SR_LAUNCHER      srun (default) | mpirun | local (launch/softrec-run, no SLURM)
#   SR_ROW_EXTRA     optional JSON object merged into every row (host, notes)
#   SR_RESULTS       folder for result rows (one file per run)
#   SR_MAX_REQUEUE   how often a job may requeue itself (default 3)
#   SR_THREADS       OpenBLAS threads per rank (default SLURM_CPUS_PER_TASK or 1)

if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then SR_TAG=${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID; else SR_TAG=${SLURM_JOB_ID:-local}; fi
sr_log() { echo "[$(date +%H:%M:%S) $SR_TAG] $*" >&2; }
sr_die() { sr_log "ERROR: $*"; exit 1; }

SOFTREC_HOME=${SOFTREC_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
SOFTREC_BIN=${SOFTREC_BIN:-$SOFTREC_HOME/build/softrec}
SR_LAUNCHER=${SR_LAUNCHER:-srun}
SR_MAX_REQUEUE=${SR_MAX_REQUEUE:-3}
SR_THREADS=${SR_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
SR_PYTHON=${SR_PYTHON:-python3}
SR_RUNS=${SR_RUNS:-$SOFTREC_HOME/runs}
# softrec's exit codes (docs/cli.md): stopped by a signal with a checkpoint
# committed (requeue and resume), and the watchdog (a hang: a failure).
SR_EXIT_WATCHDOG=10
SR_EXIT_STOPPED=11

# --- environment of the ranks -------------------------------------------------
# One OpenBLAS thread per rank unless asked; ranks x threads should equal the
# CPUs of the allocation.
export OPENBLAS_NUM_THREADS=$SR_THREADS OMP_NUM_THREADS=$SR_THREADS
# A node that advertises more CPUs than it has cores (or a job that packs more
# ranks than cores) makes Open MPI busy-poll at ms latencies; yielding costs
# ~0.35 us per collective when not oversubscribed (docs/platform.md, "Open MPI").
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
# mpirun (not srun) refuses to run as root without both variables.
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# One node: shared memory only. Several nodes: Open MPI's own choice.
if [[ ${SLURM_JOB_NUM_NODES:-1} -le 1 ]]; then
  export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
fi

# --- signals --------------------------------------------------------------------
# `#SBATCH --signal=B:USR1@T` sends USR1 to this batch shell T seconds before
# the limit: it is forwarded as USR1 to the running launcher (srun and mpirun
# pass USR1 on to every rank; mpirun would kill the job on TERM); softrec then
# writes a checkpoint and exits 11 ($SR_EXIT_STOPPED), and sr_finish requeues
# the job. TERM (scancel,
# or the limit reached without the early signal) is forwarded as USR1 too, so
# the ranks checkpoint in the KillWait seconds they have, but the job is ending:
# no requeue then.
SR_SIGNALLED=0
SR_TERMINATED=0
SR_PENDING=0     # set to 1 when work is left for a requeued instance
SR_CHILD=
sr_on_signal() {
  SR_SIGNALLED=1
  [[ $1 == TERM ]] && SR_TERMINATED=1
  sr_log "got SIG$1; forwarding USR1 to the running step${SR_CHILD:+ (pid $SR_CHILD)}"
  if [[ -n $SR_CHILD ]]; then kill -USR1 "$SR_CHILD" 2>/dev/null || true; fi
  return 0
}
trap 'sr_on_signal USR1' USR1
trap 'sr_on_signal TERM' TERM

# sr_exec CMD...: run CMD in the background and wait for it while staying
# responsive to the traps above (a foreground command would delay them).
# Returns CMD's exit status. With SR_BUDGET=S > 0, CMD is stopped like at the
# time limit after S seconds (TERM to launch/softrec-run, which the ranks get
# as USR1; USR1 to srun/mpirun) and the file SR_BUDGET_FLAG is created first,
# so the caller can tell a spent budget from the job's time-limit signal.
sr_exec() {
  "$@" &
  SR_CHILD=$!
  local rc watcher=
  if (( ${SR_BUDGET:-0} > 0 )); then
    local sig=USR1; [[ $SR_LAUNCHER == local ]] && sig=TERM
    ( trap 'kill "$s" 2>/dev/null; exit 0' TERM
      sleep "$SR_BUDGET" & s=$!; wait "$s"
      sr_log "run budget of $SR_BUDGET s spent: SIG$sig to pid $SR_CHILD"
      [[ -n ${SR_BUDGET_FLAG:-} ]] && : > "$SR_BUDGET_FLAG"
      kill -"$sig" "$SR_CHILD" 2>/dev/null ) &
    watcher=$!
  fi
  while :; do
    if wait "$SR_CHILD"; then rc=0; else rc=$?; fi
    # wait returns >128 when a trapped signal interrupted it; the child may
    # still be running then.
    if (( rc > 128 )) && kill -0 "$SR_CHILD" 2>/dev/null; then continue; fi
    break
  done
  [[ -n $watcher ]] && { kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null || true; }
  SR_CHILD=
  return "$rc"
}

# sr_launch P ARGS...: run `softrec ARGS` on P ranks inside the allocation.
sr_launch() {
  local np=$1; shift
  case $SR_LAUNCHER in
    srun)
      # PMIx is the one MPI plugin Debian's Open MPI works with (pmi2/none fail).
      # --overcommit lets a step have more tasks than the allocation's CPUs
      # (only used when a study asks for it); --kill-on-bad-exit ends the step
      # when one rank fails instead of leaving the others in a collective.
      sr_exec srun --mpi="${SR_SRUN_MPI:-pmix}" -n "$np" --cpus-per-task="$SR_THREADS" \
        --kill-on-bad-exit=1 ${SR_SRUN_ARGS:-} "$SOFTREC_BIN" "$@" ;;
    mpirun)
      # mpirun takes its slots from the allocation (no hostfile needed).
      sr_exec mpirun -np "$np" -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS \
        -x OMPI_MCA_mpi_yield_when_idle ${SR_MPIRUN_ARGS:-} "$SOFTREC_BIN" "$@" ;;
    local)
      # No SLURM: launch/softrec-run (mpirun with this machine's defaults).
      sr_exec env SOFTREC_BIN="$SOFTREC_BIN" "$SOFTREC_HOME/launch/softrec-run" -n "$np" "$@" ;;
    *) sr_die "SR_LAUNCHER must be srun, mpirun or local, not '$SR_LAUNCHER'" ;;
  esac
}

# sr_data_items FILE: number of items of a dataset (softrec data info --json).
sr_data_items() {
  "$SOFTREC_BIN" data info "$1" --json 2>/dev/null | "$SR_PYTHON" -c '
import json, sys
d = json.loads(sys.stdin.read().strip().splitlines()[-1])
for k in ("items", "num_items", "n_items"):
    if k in d: print(d[k]); break
else: print("")'
}

# sr_ensure_synth FILE USERS ITEMS INTERACTIONS SEED [more synth options]:
# generate a planted dataset unless FILE exists. Serial (one process), under
# an exclusive lock so concurrent array tasks generate it once.
sr_ensure_synth() {
  local f=$1 u=$2 n=$3 m=$4 seed=$5; shift 5
  mkdir -p "$(dirname "$f")"
  (
    flock -x 9
    if [[ ! -s $f ]]; then
      sr_log "generating $f: $u users, $n items, $m interactions, seed $seed"
      "$SOFTREC_BIN" data synth --users "$u" --items "$n" --interactions "$m" --seed "$seed" \
        --progress 0 --force --output "$f.part" "$@" >&2 && mv "$f.part" "$f"
    fi
  ) 9>"$f.lock"
  [[ -s $f ]] || sr_die "could not generate $f"
}

# sr_row_path STUDY NAME: the result file of one run.
sr_row_path() { echo "$SR_RESULTS/$1/$2.json"; }

# sr_train STUDY NAME P [softrec train args...]: one training run on P ranks.
# Skips the run when its result row already exists (a requeued study goes on
# where it stopped). Writes softrec's stdout to RUN_DIR/stdout.txt and the
# row (softrec's last stdout line + study, P, N, job fields) to
# SR_RESULTS/STUDY/NAME.json. Returns 0 when the row was written,
# $SR_EXIT_STOPPED (11) when softrec stopped on a signal with a checkpoint
# committed (work pending: the job requeues), else softrec's exit code
# ($SR_EXIT_WATCHDOG = 10: a hang the watchdog ended; not requeued).
sr_train() {
  local study=$1 name=$2 np=$3; shift 3
  local row; row=$(sr_row_path "$study" "$name")
  if [[ -s $row ]]; then sr_log "$study/$name: row exists, skipped"; return 0; fi
  local rundir=$SR_RUNS/$study/$name
  mkdir -p "$rundir" "$(dirname "$row")"
  sr_log "$study/$name: softrec train on $np ranks x $SR_THREADS threads (run.dir $rundir)"
  local rc=0
  sr_launch "$np" train "$@" --set run.dir="$rundir" --set train.resume=auto \
    > "$rundir/stdout.txt" || rc=$?
  local last; last=$(grep -v '^[[:space:]]*$' "$rundir/stdout.txt" | tail -n 1 || true)
  if [[ $rc -eq 0 && $last == \{*\"test\"* ]]; then
    SR_STUDY=$study SR_NAME=$name SR_P=$np SR_N=${SR_N:-} SR_ROW="$last" SR_ROW_EXTRA="${SR_ROW_EXTRA:-}" \
      "$SR_PYTHON" - "$row" <<'EOF' || return 1
import json, os, sys
row = json.loads(os.environ["SR_ROW"])
row["study"] = os.environ["SR_STUDY"]
row["name"] = os.environ["SR_NAME"]
row["P"] = int(os.environ["SR_P"])
n = os.environ.get("SR_N") or row.get("num_items")
if n not in (None, ""):
    row["N"] = int(n)
for k, v in (("job_id", "SLURM_JOB_ID"), ("array_job_id", "SLURM_ARRAY_JOB_ID"),
             ("array_task_id", "SLURM_ARRAY_TASK_ID"), ("nodes", "SLURM_JOB_NUM_NODES"),
             ("restarts", "SLURM_RESTART_COUNT"), ("launcher", "SR_LAUNCHER")):
    if os.environ.get(v):
        row[k] = int(os.environ[v]) if os.environ[v].isdigit() else os.environ[v]
extra = os.environ.get("SR_ROW_EXTRA")
if extra:
    row.update(json.loads(extra))
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(json.dumps(row) + "\n")
os.replace(tmp, sys.argv[1])
EOF
    sr_log "$study/$name: row written to $row"
    return 0
  fi
  if (( rc == SR_EXIT_STOPPED )); then
    sr_log "$study/$name: stopped by a signal before it finished, checkpoint committed (exit $rc)"
    SR_PENDING=1
    return "$SR_EXIT_STOPPED"
  fi
  (( rc == SR_EXIT_WATCHDOG )) && sr_log "$study/$name: the watchdog ended a hung run (exit $rc); not requeued"
  sr_log "$study/$name: softrec failed (exit $rc); see $rundir/stdout.txt and the job's stderr"
  (( rc == 0 )) && rc=1
  return "$rc"
}

# sr_stop_here: true (and marks work as pending) once the time-limit signal
# came; loops call it before starting the next run.
sr_stop_here() {
  if [[ $SR_SIGNALLED == 1 ]]; then SR_PENDING=1; sr_log "time-limit signal: no new runs"; return 0; fi
  return 1
}

# sr_finish RC: end the job. When work is pending (a run cut short by the
# time-limit signal, or runs not started), requeue the job: it resumes from
# the checkpoint and skips runs whose rows exist; at most SR_MAX_REQUEUE times.
sr_finish() {
  local rc=$1
  if [[ $SR_TERMINATED == 1 ]]; then
    sr_log "terminated (scancel or the time limit): not requeued; resubmit to resume"
    exit 1
  fi
  if [[ $SR_PENDING == 1 && -n ${SLURM_JOB_ID:-} ]]; then
    local n=${SLURM_RESTART_COUNT:-0}
    if (( n < SR_MAX_REQUEUE )); then
      sr_log "unfinished work: scontrol requeue $SLURM_JOB_ID (restart $((n + 1)) of at most $SR_MAX_REQUEUE)"
      if scontrol requeue "$SLURM_JOB_ID"; then
        # SLURM ends this instance of the job now; do not report a failure.
        exit 0
      fi
      sr_log "scontrol requeue failed (is the job requeueable? #SBATCH --requeue)"
    else
      sr_log "unfinished work but already requeued $n times (SR_MAX_REQUEUE=$SR_MAX_REQUEUE)"
    fi
    exit 1
  fi
  exit "$rc"
}

# sr_check: fail early with a clear message when the binary is missing.
sr_check() {
  [[ -x $SOFTREC_BIN ]] || sr_die "softrec not found at $SOFTREC_BIN (set SOFTREC_HOME or SOFTREC_BIN; build with launch/setup.sh)"
  [[ -n ${SR_RESULTS:-} ]] || sr_die "SR_RESULTS (results folder) is not set"
  mkdir -p "$SR_RESULTS" "$SR_RUNS"
  sr_log "softrec $SOFTREC_BIN, launcher $SR_LAUNCHER, results $SR_RESULTS, runs $SR_RUNS"
}

#!/usr/bin/env bash
# run_slurm_test.sh SOFTREC_BIN SOURCE_DIR WORKDIR: the batch scripts of
# slurm/ on a real SLURM. Starts a private single-node SLURM (munged,
# slurmctld, slurmd from Debian's packages; its own key, socket, slurm.conf,
# ports and state under WORKDIR/cluster; slurm/local-cluster.sh), submits at
# tiny sizes:
#   train.sbatch (2 ranks), strong.sbatch (1, 2 ranks), weak.sbatch (1, 2 ranks,
#   a dataset generated per size), sweep.sbatch (a job array of 2-3 tasks:
#   softmax, plus ssm when this build has it), and train.sbatch with a stand-in
#   binary under a 1-minute limit, which must get the time-limit signal,
#   checkpoint, requeue itself and finish on its second start,
# waits for them (bounded; a timeout names the jobs), checks every job
# COMPLETED with exit code 0:0, every result row present and complete, and
# runs launch/report on the rows. The cluster is stopped by PID on any exit.
# Exit 77 (ctest SKIP_RETURN_CODE), with the cause printed, only for these
# environmental causes: not root, SLURM / munge / python3 not installed,
# slurmd unable to start because no cgroup file system is mounted
# (containers). Anything else that goes wrong, the cluster's start-up
# included, is a failure.
set -uo pipefail
bin=$(realpath "$1") src=$(realpath "$2") work=$3
SKIP=77
t0=$(date +%s)
say() { echo "[slurm-test +$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- prerequisites ------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (SlurmUser=root)"; exit $SKIP; }
for b in munged mungekey munge slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
  command -v "$b" >/dev/null || { echo "SKIP: $b not installed (launch/setup.sh --test installs munge slurmctld slurmd slurm-client)"; exit $SKIP; }
done
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit $SKIP; }
[[ -x $bin ]] || fail "no softrec binary at $bin"

rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
mkdir -p "$work/data" "$work/logs"
cluster=$work/cluster
shm=
cleanup() {
  local rc=$?
  if (( rc != 0 )) && [[ -d $cluster/log ]]; then
    echo "---- slurmctld.log (tail) ----"; tail -n 15 "$cluster/log/slurmctld.log" 2>/dev/null
    echo "---- slurmd.log (tail) ----"; tail -n 15 "$cluster/log/slurmd.log" 2>/dev/null
  fi
  "$src/slurm/local-cluster.sh" down "$cluster" 2>&1 | sed 's/^/  /'
  rm -rf "$shm"   # this test's MPI segments only (docs/platform.md)
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster ----------------------------------------------------------------------
# The jobs' Open MPI segments (sbatch passes the environment on) go to a
# private directory, deleted at exit with whatever killed ranks left there.
shm=$(mktemp -d "$( [[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/softrec-slurm.XXXXXX") ||
  fail "cannot create a directory for MPI segments"
export OMPI_MCA_btl_vader_backing_directory=$shm
port=$(( 20000 + ($$ % 2000) * 2 ))
if ! "$src/slurm/local-cluster.sh" up "$cluster" "$port" 8; then
  if ! grep -qs ' /sys/fs/cgroup' /proc/mounts && grep -qis cgroup "$cluster/log/slurmd.log"; then
    echo "SKIP: slurmd cannot start: no cgroup file system mounted at /sys/fs/cgroup" \
         "($(grep -i -m1 cgroup "$cluster/log/slurmd.log"))"
    exit $SKIP
  fi
  fail "could not start the local SLURM"
fi
source "$cluster/env.sh"
say "cluster up ($(scontrol show config | awk '/^SlurmctldPort/{print "port " $3}'))"

# --- inputs ---------------------------------------------------------------------------
export SOFTREC_HOME=$src SOFTREC_BIN=$bin RESULTS=$work/results RUNS=$work/runs SOFTREC_LOG=warn
"$bin" data synth --users 300 --items 2000 --interactions 6000 --seed 1 --progress 0 \
  --output "$work/data/tiny.h5" >/dev/null 2>&1 || fail "softrec data synth"
# Which sampled losses does this build train? (they land in parallel work)
sampled=
if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$bin" train --set data.path="$work/data/tiny.h5" \
     --set train.epochs=1 --set model.dim=8 --set loss.name=ssm --set loss.negatives=4 --set eval.every=0 \
     --set run.dir="$work/probe" >/dev/null 2>&1; then sampled=ssm; fi
say "sampled loss in this build: ${sampled:-none (the sweep runs softmax at each k)}"

# --- submissions ----------------------------------------------------------------------
declare -A job   # what -> job id
sub() { local what=$1; shift; local id; id=$(sbatch --parsable "$@") || fail "sbatch $what: $*"; job[$what]=${id%%;*}; say "submitted $what: job ${job[$what]}"; }
tiny_sets="model.dim=16 train.batch_size=512 eval.every=0"

DATA=$work/data/tiny.h5 CONFIG= SETS="train.epochs=1 model.dim=16 eval.topk=10,20" RUN_NAME=tiny \
  sub train -n 2 -t 5 "$src/slurm/train.sbatch"

DATA=$work/data/strong.h5 USERS=300 ITEMS=3000 INTERACTIONS=6000 RANKS="1 2" EPOCHS=1 SETS="$tiny_sets" \
  sub strong -n 2 -t 5 "$src/slurm/strong.sbatch"

ITEMS_PER_RANK=1500 USERS=300 INTERACTIONS=6000 RANKS="1 2" EPOCHS=1 DATA_DIR=$work/data SETS="$tiny_sets" \
  sub weak -n 2 -t 5 "$src/slurm/weak.sbatch"

if [[ -n $sampled ]]; then sweep_env=(LOSSES="softmax $sampled" K_FREE=softmax KS="4 16")
else sweep_env=(LOSSES=softmax K_FREE= KS="4 16"); fi
ntasks=$(env "${sweep_env[@]}" bash "$src/slurm/sweep.sbatch" --list | grep -c '^[0-9]')
id=$(env "${sweep_env[@]}" DATA="$work/data/sweep.h5" USERS=300 ITEMS=2500 INTERACTIONS=6000 EPOCHS=1 \
        SETS="model.dim=16 train.batch_size=512 eval.topk=10,20" \
        sbatch --parsable --array=0-$((ntasks - 1)) -n 2 -t 5 "$src/slurm/sweep.sbatch") || fail "sbatch sweep"
job[sweep]=${id%%;*}; say "submitted sweep: array job ${job[sweep]} ($ntasks tasks)"

# Time limit: 1 minute, USR1 50 s before it (it comes 10-40 s into the job).
SOFTREC_BIN=$src/tests/slurm/fake_softrec.sh DATA=$work/data/tiny.h5 CONFIG= SETS= RUN_NAME=requeue \
  sub requeue -n 1 -t 1 --signal=B:USR1@50 "$src/slurm/train.sbatch"

# --- wait -------------------------------------------------------------------------------
ids="${job[*]}"
deadline=$((t0 + ${SLURM_TEST_TIMEOUT:-300}))
released=0
while :; do
  left=$(squeue -h -j "${ids// /,}" -o '%i %j %T %r' 2>/dev/null)
  [[ -z $left ]] && break
  # A requeued job waits ~2 min (BeginTime) before its next start; release it now.
  if (( ! released )) && grep -q "^${job[requeue]} .* PENDING BeginTime" <<< "$left"; then
    scontrol update JobId="${job[requeue]}" StartTime=now && released=1 && say "requeue job released (StartTime=now)"
  fi
  if (( $(date +%s) > deadline )); then
    echo "jobs still queued or running after $((deadline - t0)) s:"; echo "$left"
    for w in "${!job[@]}"; do grep -q "^${job[$w]}[ _]" <<< "$left" && echo "  -> $w (job ${job[$w]})"; done
    scancel $ids 2>/dev/null
    fail "timeout waiting for: $(for w in "${!job[@]}"; do grep -q "^${job[$w]}[ _]" <<< "$left" && printf '%s ' "$w(${job[$w]})"; done)"
  fi
  sleep 1
done
say "all jobs left the queue"

# --- every job COMPLETED, exit 0:0 ----------------------------------------------------
bad=0
for w in "${!job[@]}"; do
  info=$(scontrol show job -o "${job[$w]}" 2>/dev/null)
  n=$(grep -c . <<< "$info")
  want=1; [[ $w == sweep ]] && want=$ntasks
  ok=$(grep -c 'JobState=COMPLETED .*ExitCode=0:0' <<< "$info")
  if (( n != want || ok != want )); then
    echo "job $w (${job[$w]}): $ok of $want completed with 0:0:"; grep -o 'JobId=[^ ]* .*JobState=[^ ]*\|ExitCode=[^ ]*' <<< "$info"
    bad=1
  fi
done
for f in softrec-*.out; do
  if grep -q "ERROR\|softrec failed" "$f"; then echo "---- $f ----"; tail -n 20 "$f"; bad=1; fi
done
(( bad == 0 )) || fail "some jobs did not complete (outputs in $work)"
say "jobs COMPLETED: train strong weak sweep($ntasks tasks) requeue"

# The time-limit path: signal forwarded, checkpoint, requeue, resume.
r=${job[requeue]}
out=softrec-train-$r.out
scontrol show job -o "$r" | grep -q 'Restarts=1 ' || fail "requeue job $r: Restarts is not 1 ($(scontrol show job -o "$r" | grep -o 'Restarts=[0-9]*'))"
grep -q "got SIGUSR1; forwarding" "$out" || fail "requeue job: the batch shell did not get/forward USR1 ($out)"
grep -q "fake_softrec: got SIGUSR1" "$out" || fail "requeue job: the step did not receive USR1 ($out)"
grep -q "scontrol requeue $r" "$out" || fail "requeue job: no requeue ($out)"
grep -q "fake_softrec: resumed" "$out" || fail "requeue job: the second start did not resume ($out)"
say "time-limit path: USR1 -> checkpoint -> requeue -> resumed"

# --- the result rows --------------------------------------------------------------------
python3 - "$RESULTS" "$ntasks" "$sampled" <<'PY' || fail "result rows"
import glob, json, os, sys
res, ntasks, sampled = sys.argv[1], int(sys.argv[2]), sys.argv[3]
want = {"train": 2, "strong": 2, "weak": 2, "sweep": ntasks}   # train: tiny + requeue
bad = []
for study, n in want.items():
    files = sorted(glob.glob(os.path.join(res, study, "*.json")))
    if len(files) != n:
        bad.append(f"{study}: {len(files)} rows, want {n}: {files}")
    for f in files:
        try:
            r = json.loads(open(f).read())
        except ValueError as e:
            bad.append(f"{f}: not JSON ({e})"); continue
        need = ["test", "study", "P", "train_seconds", "loss"] + (["N", "epoch_seconds"] if "fake" not in str(r.get("dataset")) else [])
        miss = [k for k in need if k not in r]
        if miss: bad.append(f"{f}: missing {miss}")
        if r.get("study") != study: bad.append(f"{f}: study {r.get('study')}")
        if not any("@" in k for k in r.get("test", {})): bad.append(f"{f}: no test metrics")
        if "ranks" in r and r["ranks"] != r.get("P"): bad.append(f"{f}: ranks {r['ranks']} != P {r.get('P')}")
Ps = sorted(json.load(open(f))["P"] for f in glob.glob(os.path.join(res, "strong", "*.json")))
if Ps != [1, 2]: bad.append(f"strong P {Ps}")
weak = sorted((json.load(open(f))["P"], json.load(open(f))["N"]) for f in glob.glob(os.path.join(res, "weak", "*.json")))
if weak != [(1, 1500), (2, 3000)]: bad.append(f"weak (P, N) {weak}")
losses = sorted(json.load(open(f))["loss"] for f in glob.glob(os.path.join(res, "sweep", "*.json")))
if sampled and sampled not in losses: bad.append(f"sweep losses {losses}")
rq = json.load(open(os.path.join(res, "train", "requeue.json")))
if not rq.get("resumed") or rq.get("restarts") != 1: bad.append(f"requeue row: resumed {rq.get('resumed')} restarts {rq.get('restarts')}")
if bad:
    print("\n".join(bad)); sys.exit(1)
print(f"rows ok: {sum(want.values())}")
PY
say "result rows present and complete"

# --- the report --------------------------------------------------------------------------
"$src/launch/report" "$RESULTS" "$work/report" --title "SLURM test" || fail "launch/report"
for p in strong_speedup strong_efficiency weak_time weak_efficiency; do
  f=$work/report/$p.png
  [[ -s $f && $(head -c 8 "$f" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "report: $p.png missing or not a PNG"
done
if [[ -n $sampled ]]; then [[ -s $work/report/ndcg20_vs_k.png ]] || fail "report: no ndcg20_vs_k.png"; fi
grep -q "Strong scaling" "$work/report/results.md" || fail "report: no strong-scaling table"
say "report: $(ls "$work/report"/*.png | wc -l) plots in $work/report"
say "slurm test passed"

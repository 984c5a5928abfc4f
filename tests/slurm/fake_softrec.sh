#!/usr/bin/env bash
# fake_softrec.sh: stands in for softrec in the time-limit test of the batch
# scripts. `train` without a checkpoint in run.dir waits for SIGUSR1/SIGTERM,
# then writes run.dir/checkpoints/latest and exits 11 without a result row (what
# softrec does when the time-limit signal comes); with a checkpoint it
# "resumes" and prints a result row at once. `data info` prints num_items.
set -u
cmd=${1:-}; shift || true
case $cmd in
  data) echo '{"num_items": 1000, "num_users": 100}'; exit 0 ;;
  train) ;;
  *) echo "fake_softrec: unsupported command '$cmd'" >&2; exit 2 ;;
esac
dir=runs/default resume=off
while (($#)); do
  case $1 in
    --set) case $2 in run.dir=*) dir=${2#run.dir=} ;; train.resume=*) resume=${2#train.resume=} ;; esac; shift 2 ;;
    *) shift ;;
  esac
done
mkdir -p "$dir/checkpoints"
if [[ $resume == auto && -f $dir/checkpoints/latest ]]; then
  echo "fake_softrec: resumed from $dir/checkpoints/latest" >&2
  echo "{\"test\": {\"ndcg@20\": 0.5, \"recall@20\": 0.6, \"precision@20\": 0.1}, \"train_seconds\": 1.0, \"epoch_seconds\": 1.0, \"epochs\": 1, \"ranks\": 1, \"model\": \"mf\", \"loss\": \"softmax\", \"dataset\": \"fake\", \"run_dir\": \"$dir\", \"resumed\": true}"
  exit 0
fi
got=
trap 'got=USR1' USR1
trap 'got=TERM' TERM
echo "fake_softrec: training in $dir, waiting for the time-limit signal" >&2
for ((i = 0; i < 600; i++)); do
  if [[ -n $got ]]; then
    echo "$(date +%s) $got" > "$dir/checkpoints/latest"
    echo "fake_softrec: got SIG$got after ${i}s: checkpoint written, exiting 11" >&2
    exit 11
  fi
  sleep 1
done
echo "fake_softrec: no signal in 600 s" >&2
exit 3

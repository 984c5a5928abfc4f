#!/usr/bin/env bash
# quickstart.sh: the README's main job. Builds the softrec binary if needed
# (quietly: the build log is shown only on failure), generates a synthetic
# dataset with planted structure (6000 users x 6000 items, 180k interactions),
# trains MF with the exact sharded softmax on 2 ranks (5 epochs, about 30 s
# on 2 cores) and prints a summary with the test metrics on stderr. The full
# result row is run.dir/result.json and, as for every train, the last stdout
# line. A rerun replaces the previous quickstart run (train --force).
#   RANKS=4 launch/quickstart.sh          more ranks
#   launch/quickstart.sh --set train.epochs=10   any train option is passed on
#   SOFTREC_VERBOSE=1 launch/quickstart.sh       show the build and the run in full
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
t0=$SECONDS
launch/setup.sh --target softrec build
mkdir -p data
data=data/quickstart-synth.h5
# Regenerated every time (under a second), so a file of an older size never lingers.
log=build/quickstart-synth.log
if ! build/softrec data synth --users 6000 --items 6000 --interactions 180000 --topics 30 \
       --seed 1 --output "$data" --force > "$log" 2>&1; then
  cat "$log" >&2; exit 1
fi
echo "quickstart: data $data (6000 users, 6000 items, 180000 interactions, 30 planted topics)" >&2
launch/softrec-run -n "${RANKS:-2}" train --config configs/quickstart.ini --set data.path="$data" --force "$@"
echo "quickstart: finished in $((SECONDS - t0)) s; popularity ranking on this data: NDCG@10 0.116, untrained model: 0.001" >&2

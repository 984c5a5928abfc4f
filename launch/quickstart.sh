#!/usr/bin/env bash
# quickstart.sh: the README's main job. Builds softrec if needed, generates a
# synthetic dataset with planted structure, trains MF with the exact sharded
# softmax on 2 ranks and prints the test metrics (last line: one JSON object).
#   RANKS=4 launch/quickstart.sh     to use more ranks
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
launch/setup.sh build   # installs missing packages, configures, builds (fast when up to date)
mkdir -p data
data=data/quickstart-synth.h5
if [[ ! -f $data ]]; then
  build/softrec data synth --users 20000 --items 20000 --interactions 600000 --topics 50 \
    --seed 1 --output "$data"
fi
build/softrec data info "$data"
launch/softrec-run -n "${RANKS:-2}" train --config configs/quickstart.ini --set data.path="$data" "$@"

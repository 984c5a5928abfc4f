#!/usr/bin/env bash
# batch_memory_e2e.sh SOFTREC_BIN WORKDIR: buffers follow the data, not the
# configured batch. On a toy split (~2,000 train examples, one step an
# epoch either way), train.batch_size = 1,000,000 trains the same model
# (same loss line) and peaks within 16 MiB of train.batch_size = 4,096
# (peak_mem_bytes: max over ranks of VmHWM; buffers are zeroed, so
# counted), for every loss family whose buffers scale with the batch; and
# unshuffled at 3 ranks likewise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_start "$1" "$2"
peak() { grep -o '"peak_mem_bytes": [0-9]*' "$1" | tail -n1 | cut -d' ' -f2; }
lastloss() { grep -o '"loss": [-0-9.e]*' "$1" | tail -n1 | cut -d' ' -f2; }

toy_data "$bin" 5 120 6 30 25 || fail "convert"

common=(--set data.path=data.h5 --set model.dim=32 --set train.epochs=2 --set train.lr=0.02
        --set loss.tile=32 --set eval.topk=10 --set eval.every=0 --set run.progress_every=1000
        --set loss.negatives=16)
slack=$((16 << 20))
check() { # NP NAME ARGS...: batch 4,096 vs 1,000,000
  local np=$1 name=$2; shift 2
  run "$np" train "${common[@]}" "$@" --set train.batch_size=4096 --set run.dir=s-$name > s-$name.json 2> s-$name.err ||
    fail "$name, batch 4096: exit $? ($(tail -n2 s-$name.err))"
  run "$np" train "${common[@]}" "$@" --set train.batch_size=1000000 --set run.dir=b-$name > b-$name.json 2> b-$name.err ||
    fail "$name, batch 1000000: exit $? ($(tail -n2 b-$name.err))"
  local ps pb
  ps=$(peak s-$name.json) pb=$(peak b-$name.json)
  echo "$name: peak_mem_bytes $ps (batch 4096) vs $pb (batch 1000000)"
  [[ -n $ps && -n $pb ]] || fail "$name: no peak_mem_bytes in the result row"
  ((pb <= ps + slack)) || fail "$name: batch 1000000 peaked at $pb bytes, batch 4096 at $ps (slack $slack)"
  [[ $(lastloss s-$name/metrics.jsonl) == "$(lastloss b-$name/metrics.jsonl)" ]] ||
    fail "$name: the loss differs between batch 4096 and 1000000 (the same single step)"
}
for l in softmax ssm bpr sparsemax hsm; do check 2 "$l" --set loss.name=$l; done
check 3 unshuffled --set loss.name=softmax --set train.shuffle=false --set shard.layout=interleave
echo "batch_memory_e2e: ok"

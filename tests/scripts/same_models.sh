#!/usr/bin/env bash
# same_models.sh BASE_BIN NEW_BIN WORKDIR: behaviour-preservation check for
# refactors. Trains every backbone (mf, sasrec, lightgcn) with a set of
# losses at 1 and 2 ranks with both binaries, same seeds and paths, and
# requires byte-identical model.h5 files. BASE_BIN "build:COMMIT" builds that
# commit of this repository first (its tree under WORKDIR).
set -euo pipefail
base=$1
new=$(realpath "$2")
work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ $base == build:* ]]; then
  commit=${base#build:}
  if ! git -C "$here" cat-file -e "$commit^{commit}" 2> /dev/null; then
    echo "SKIP: commit $commit is not in this clone (shallow?): nothing to compare with"
    exit 77
  fi
  src=$work/base-src
  if [[ ! -x $work/base-build/softrec ]]; then
    rm -rf "$src" && mkdir -p "$src"
    git -C "$here" archive "$commit" | tar -x -C "$src"
    cmake -S "$src" -B "$work/base-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
    cmake --build "$work/base-build" -j2 --target softrec > /dev/null
  fi
  base=$work/base-build/softrec
fi
base=$(realpath "$base")

cd "$work"
source "$here/tests/scripts/e2e_lib.sh"
toy_data "$new" 11 90 5 24 22 || fail "convert"

common=(--set data.path=data.h5 --set model.dim=8 --set train.epochs=2 --set train.batch_size=64
        --set train.lr=0.02 --set loss.tile=32 --set eval.topk=5,10 --set run.progress_every=1000
        --set loss.negatives=16 --set model.max_len=8 --set model.layers=2)
# model/loss[/variant]: the variants cover cosine scores, untied SASRec
# inputs, dropout, L2 on LightGCN's batch rows and another optimiser.
cases=()
for model in mf sasrec lightgcn; do
  for loss in softmax ssm sparsemax entmax nce hsm bpr; do cases+=("$model/$loss"); done
done
cases+=(mf/softmax/cosine lightgcn/ssm/cosine sasrec/ssm/untied sasrec/softmax/untied sasrec/softmax/dropout
        mf/hsm/adagrad)
# Equal in content: every table's values (h5diff, exact), every root
# attribute (the table list as a set: sasrec/hsm lists the loss's table after
# the backbone's since the refactor), and every key of the base's stored
# config with its value (a key added since may follow).
config_keys() { # "section.key = value" lines of a file's stored config, sorted
  h5dump -a /config "$1" | sed -n '/DATA {/,$p' | sed 's/^ *(0): "//; s/^ *//; s/"$//' |
    awk '/^\[.*\]$/ { sec = substr($0, 2, length($0) - 2); next } / = / { print sec "." $0 }' | sort
}
same_content() {
  h5diff --exclude-attribute / "$1" "$2" > /dev/null || return 1
  local a
  for a in $(h5dump -A "$1" | grep -o 'ATTRIBUTE "[a-z_0-9]*"' | cut -d'"' -f2); do
    if [[ $a == config ]]; then
      comm -23 <(config_keys "$1") <(config_keys "$2") | grep -q . && return 1
    else
      [[ $(h5dump -a "/$a" "$1" | tail -n +2 | tr -s ' "\n' '\n' | sort) == "$(h5dump -a "/$a" "$2" | tail -n +2 | tr -s ' "\n' '\n' | sort)" ]] || return 1
    fi
  done
  return 0
}
n=0 same=0
for c in "${cases[@]}"; do
  IFS=/ read -r model loss variant <<< "$c"
  extra=()
  [[ $model == lightgcn ]] && extra=(--set optim.weight_decay=0.01)
  case $variant in
    cosine) extra+=(--set model.temperature=0.2) ;;
    untied) extra+=(--set model.tie_embeddings=false) ;;
    dropout) extra+=(--set model.dropout=0.2) ;;
    adagrad) extra+=(--set optim.name=adagrad) ;;
  esac
    for np in 1 2; do
      args=(train "${common[@]}" "${extra[@]}" --set model.name=$model --set loss.name=$loss --set run.dir=run)
      rm -rf run && mpirun -np $np --oversubscribe "$base" "${args[@]}" > /dev/null 2>&1 \
        || fail "$model/$loss/np$np: the base binary failed"
      mv run/model.h5 base.h5
      rm -rf run && mpirun -np $np --oversubscribe "$new" "${args[@]}" > /dev/null 2> new.err \
        || fail "$model/$loss/np$np: the new binary failed: $(cat new.err)"
      if cmp -s base.h5 run/model.h5; then
        same=$((same + 1))
      else
        same_content base.h5 run/model.h5 || fail "$c/np$np: model.h5 differs from the base binary's"
      fi
      n=$((n + 1))
    done
done
echo "same_models: $n runs, $same byte-identical, $((n - same)) equal in content"

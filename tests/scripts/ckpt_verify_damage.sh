#!/usr/bin/env bash
# ckpt_verify_damage.sh SOFTREC_BIN WORKDIR [NP]: `checkpoint verify` and
# `train.resume=auto` reach the same verdict on every damaged checkpoint
# (issue 18, item 4). A 2-rank run commits checkpoints at steps 70 and 75;
# the newest is then damaged one way at a time:
#  - a flipped byte in every /state entry, in every table and every digest
#    table (the middle of its data), in HDF5 metadata and free space (offsets
#    outside every dataset's data, the superblock included);
#  - the .sha256 file: a digest line changed, the size line changed, one line
#    dropped, removed (both accept, with the same warning);
#  - bytes appended (1 and 83 KB), truncation (1 byte, half, empty).
# For each: verify's exit code (0 = accepted) against whether the resume
# used the file ("resumed from <it>") or skipped it ("<it> is unusable").
# Any disagreement fails (after the whole table of verdicts is printed).
set -euo pipefail
bin=$1
work=$2
np=${3:-2}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export SOFTREC_LOG=info # the verdicts read "resumed from" (info) and the warnings
run() { timeout -k 5 120 mpirun -np "$np" --oversubscribe "$bin" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

awk 'BEGIN { srand(5); for (u = 0; u < 120; u++) { g = u % 8;
  for (k = 0; k < 20; k++) { if (rand() < 0.85) i = g * 20 + int(rand() * 20); else i = int(rand() * 161);
    if (!(u SUBSEP i in seen)) { seen[u SUBSEP i] = 1; items[u] = items[u] " " i } }
  print u items[u] } }' > all.txt
# every fifth item to a given test split: training refuses an empty one
awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 5 == 0) te = te " " $k; else tr = tr " " $k } print tr > "train.txt"; print te > "test.txt" }' all.txt
"$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed 3 --output data.h5 \
  > /dev/null 2>&1 || fail "convert"
common=(--set data.path=data.h5 --set model.dim=8 --set train.epochs=3 --set train.batch_size=64
        --set loss.name=ssm --set loss.negatives=16 --set train.checkpoint_every=5 --set eval.topk=10
        --set run.progress_every=1000)
run train "${common[@]}" --set run.dir=base > base.json 2> base.err || fail "base run: $(tail -n3 base.err)"
name=$(cat base/checkpoints/latest)
ckpt=base/checkpoints/$name
size=$(stat -c %s "$ckpt")

# Every dataset's path, data offset and size (contiguous storage).
mapfile -t dsets < <(h5ls -r "$ckpt" | awk '$2 == "Dataset" { print $1 }')
ranges=()
declare -A mid
for d in "${dsets[@]}"; do
  read -r off len < <(h5dump -p -H -d "$d" "$ckpt" | awk '$1 == "OFFSET" { o = $2 } $1 == "SIZE" { s = $2 } END { print o, s }')
  [[ -n $off && -n $len ]] || fail "$d: no storage offset in h5dump -p"
  ranges+=("$off $len")
  mid[$d]=$((off + len / 2))
done
inside_data() {
  local x=$1 r o l
  for r in "${ranges[@]}"; do read -r o l <<<"$r"; ((x >= o && x < o + l)) && return 0; done
  return 1
}

flip() { # file offset: invert one byte
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

cases=()
for d in "${dsets[@]}"; do cases+=("flip $d|flip \$f ${mid[$d]}"); done
# HDF5 metadata and free space: the superblock's first bytes, then offsets
# spread over the file outside every dataset's data.
meta=0
for x in 0 8 9 13 24 40; do cases+=("flip metadata byte $x|flip \$f $x"); meta=$((meta + 1)); done
for ((x = 61; x < size && meta < 18; x += size / 14)); do
  inside_data $x || { cases+=("flip metadata byte $x|flip \$f $x"); meta=$((meta + 1)); }
done
cases+=("sha256: a digest line changed|sed -i '4y/0123456789abcdef/123456789abcdef0/' \$f.sha256"
        "sha256: the size line changed|sed -i 's/^size .*/size 12345/' \$f.sha256"
        "sha256: the digest line dropped|sed -i '4d' \$f.sha256"
        "sha256: removed (a warning)|rm \$f.sha256"
        "1 byte appended|printf x >> \$f"
        "83 KB appended|head -c 84992 /dev/zero >> \$f"
        "truncated by 1 byte|truncate -s -1 \$f"
        "truncated to half|truncate -s $((size / 2)) \$f"
        "truncated to 0 bytes|truncate -s 0 \$f")

agree=0 rejected=0 accepted=0 differ=()
printf '%-44s %-8s %-8s\n' case verify resume
for c in "${cases[@]}"; do
  label=${c%%|*} cmd=${c#*|}
  rm -rf run && cp -r base run
  f=run/checkpoints/$name
  eval "$cmd"
  if run checkpoint verify run > v.json 2> v.err; then v=accept; else v=reject; fi
  run train "${common[@]}" --set run.dir=run --set train.resume=auto --set train.epochs=4 > r.json 2> r.err || true
  if grep -q "resumed from $f" r.err; then r=accept
  elif grep -q "checkpoint $f is unusable" r.err; then r=reject
  else fail "$label: the resume neither used nor skipped $f: $(tail -n3 r.err)"; fi
  if [[ $v == "$r" ]]; then
    printf '%-44s %-8s %-8s\n' "$label" $v $r
    agree=$((agree + 1))
    [[ $v == accept ]] && accepted=$((accepted + 1)) || rejected=$((rejected + 1))
  else
    printf '%-44s %-8s %-8s DISAGREE\n' "$label" $v $r
    differ+=("$label")
  fi
done
((${#differ[@]} == 0)) || fail "${#differ[@]} of ${#cases[@]} cases: verify and resume disagree: ${differ[*]}"
((rejected >= 29)) || fail "only $rejected damaged files rejected"
echo "ckpt_verify_damage: $agree cases at $np ranks, verify and resume agree on all: $rejected rejected by both, $accepted accepted by both"

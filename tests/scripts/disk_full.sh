#!/usr/bin/env bash
# disk_full.sh SOFTREC_BIN WORKDIR SRCDIR: every writer on a full disk and
# into a vanished directory (issue 18): exit 4, exactly one 'softrec: error:'
# line naming the output file, nothing left behind, no process left, never
# a crash or a hang. Needs root for mount (else exit 77).
set -u
bin=$(readlink -f "$1"); work=$2; src=$(readlink -f "${3:-.}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/full" "$work/half" "$work/in" && cd "$work" || fail "workdir"
full=$work/full half=$work/half
[[ $(id -u) == 0 ]] || { echo "SKIP: mounting a tmpfs needs root"; exit 77; }
mount -t tmpfs -o size=256k tmpfs "$full" 2>mount.err || { echo "SKIP: mount not permitted: $(head -1 mount.err)"; exit 77; }
trap 'umount "$full" 2>/dev/null; umount "$half" 2>/dev/null' EXIT
# 2 MiB: the writers start, then run out of room part way (after appends)
mount -t tmpfs -o size=2m tmpfs "$half" 2>mount.err || { echo "SKIP: mount not permitted: $(head -1 mount.err)"; exit 77; }
run() { local np=$1; shift; timeout -k 5 120 mpirun -np "$np" --oversubscribe "$bin" "$@"; }

# Inputs in a normal directory: ML-100K when present, else synthetic.
ml=$src/../shared/data/ml-100k/u.data
if [[ -f $ml ]]; then
  "$bin" data convert --format ml-100k --input "$ml" --output in/data.h5 2>/dev/null || fail "convert input"
else
  # big enough (3.3 MB) that the reordered copy overflows the 2 MiB tmpfs, as ML-100K does
  "$bin" data synth --users 2000 --items 5000 --interactions 600000 --progress 0 --output in/data.h5 >/dev/null 2>&1 || fail "synth input"
  ml=""
fi
run 1 train --set data.path=in/data.h5 --set model.dim=64 --set train.epochs=1 --set train.batch_size=256 \
  --set run.dir=in/run >/dev/null 2>&1 || fail "train input"

# check NAME OUT RC: the writer's stderr in NAME.err, its output path OUT.
check() {
  local name=$1 out=$2 rc=$3
  [[ $rc == 4 ]] || { cat $name.err >&2; fail "$name: exit $rc, expected 4"; }
  local n; n=$(grep -c '^softrec: error:' $name.err)
  [[ $n == 1 ]] || { cat $name.err >&2; fail "$name: $n error lines, expected 1"; }
  grep '^softrec: error:' $name.err | grep -qF "$out" || { cat $name.err >&2; fail "$name: error does not name $out"; }
  # one line: nothing after it that is not softrec's own (HDF5 dumps, signals)
  # (mpirun's own banner after a non-zero exit, between dashed rules, aside)
  if sed '/^-----/,/^-----/d' $name.err | grep -v '^softrec: ' | grep -q .; then cat $name.err >&2; fail "$name: stray stderr lines"; fi
  [[ -z $(ls -A "$(dirname "$out")" 2>/dev/null) ]] || { ls -la "$(dirname "$out")" >&2; fail "$name: left files behind"; }
  ! pgrep -f -- "$out" >/dev/null || fail "$name: a process is left"
  echo "ok: $name: $(grep '^softrec: error:' $name.err)"
}

writers() { # DIR: each writer into DIR
  local d=$1 tag=$2
  if [[ -n $ml ]]; then
    timeout -k 5 120 "$bin" data convert --format ml-100k --input "$ml" --output $d/c.h5 >/dev/null 2>convert$tag.err
  else
    timeout -k 5 120 "$bin" data convert --format seq-pairs --input in/pairs.txt --output $d/c.h5 >/dev/null 2>convert$tag.err
  fi
  check convert$tag $d/c.h5 $?
  timeout -k 5 120 "$bin" data synth --users 5000 --items 5000 --progress 0 --output $d/s.h5 >/dev/null 2>synth$tag.err
  check synth$tag $d/s.h5 $?
  timeout -k 5 120 "$bin" data reorder --input in/data.h5 --parts 4 --output $d/r.h5 >/dev/null 2>reorder$tag.err
  check reorder$tag $d/r.h5 $?
  for np in 1 2; do
    run $np export --checkpoint in/run/model.h5 --output $d/v.h5 >/dev/null 2>export$tag$np.err
    check export$tag$np $d/v.h5 $?
    run $np recommend --checkpoint in/run/model.h5 --k 100 --output $d/top.csv >/dev/null 2>recommend$tag$np.err
    check recommend$tag$np $d/top.csv $?
  done
}
if [[ -z $ml ]]; then
  awk 'BEGIN { srand(1); for (i = 0; i < 100000; i++) print int(rand() * 900), int(rand() * 1600) }' > in/pairs.txt
fi

# 1. a full file system (256 KiB tmpfs)
writers "$full" ""
# 1b. room for the start of each dataset, not for all of it
timeout -k 5 120 "$bin" data synth --users 30000 --items 5000 --block-users 1000 --progress 0 \
  --output $half/s.h5 >/dev/null 2>synth-half.err
check synth-half $half/s.h5 $?
timeout -k 5 120 "$bin" data reorder --input in/data.h5 --parts 4 --output $half/r.h5 >/dev/null 2>reorder-half.err
check reorder-half $half/r.h5 $?
# 2. a directory that is gone before the write starts
writers "$work/gone" "-gone"
# 3. a directory removed while a long conversion writes into it
mkdir -p vanish
"$bin" data synth --users 400000 --items 100000 --progress 0 --output vanish/big.h5 >/dev/null 2>vanish.err &
pid=$!
sleep 1
rm -rf vanish
wait $pid
check vanish vanish/big.h5 $?
[[ ! -e vanish ]] || fail "vanish: directory came back"
# 4. input messages: a directory as --input says so (was "corrupt or
# truncated gzip data"); a UTF-8 byte order mark before u.data lines is skipped
"$bin" data convert --format ml-100k --input in --output in/x.h5 >/dev/null 2>dir.err
rc=$?
[[ $rc == 4 ]] && grep -q '^softrec: error: in: is a directory' dir.err || { cat dir.err >&2; fail "directory input: exit $rc"; }
printf '\xef\xbb\xbf1\t2\t5\t10\n1\t3\t4\t11\n2\t2\t3\t12\n' > in/bom.data
"$bin" data convert --format ml-100k --input in/bom.data --output in/bom.h5 >/dev/null 2>bom.err ||
  { cat bom.err >&2; fail "BOM input"; }
echo "disk_full: all writers failed cleanly"

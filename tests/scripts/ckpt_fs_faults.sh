#!/usr/bin/env bash
# ckpt_fs_faults.sh MPIEXEC SOFTREC WORKDIR: real file-system faults under
# the softrec CLI at 2 and 3 ranks (no injection: real mounts, root only).
#  1. No space: run.dir/checkpoints is a 1 MiB tmpfs; a first run commits
#     checkpoints; the file system is then filled (0 bytes or 100 KiB left)
#     and the resumed run's next save must fail: exit 4 on every rank within
#     30 s, one line naming the temporary and "No space left on device", no
#     write attempted inside HDF5, no temporary left, `latest` unchanged;
#     after freeing space the checkpoint verifies and the run resumes from it.
#  2. Read-only directory (read-only bind mount of run.dir/checkpoints):
#     a resumed run fails at start naming the directory and "Read-only file
#     system" (exit 4 on every rank, < 30 s), while `checkpoint verify` and
#     `eval --checkpoint` of the committed checkpoint still work; a run whose
#     directory turns read-only between two saves fails at its next save.
# Exits 77 (skipped) when mounting is not permitted (not root).
set -u
mpiexec=$1 bin=$2 work=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
mounts=()
unmount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"; done
  mounts=()
}
trap unmount_all EXIT
for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m"; done
rm -rf "$work" && mkdir -p "$work/probe" && cd "$work" || exit 1
if ! msg=$(mount -t tmpfs -o size=64k tmpfs probe 2>&1); then
  echo "SKIP: cannot mount a tmpfs ($msg); this test needs root (CAP_SYS_ADMIN)"
  exit 77
fi
umount probe
fail() { echo "FAIL: $*" >&2; exit 1; }

awk 'BEGIN { srand(5); for (u = 0; u < 300; u++) { g = u % 8;
  for (k = 0; k < 30; k++) { if (rand() < 0.85) i = g * 40 + int(rand() * 40); else i = int(rand() * 331);
    if (!(u SUBSEP i in seen)) { seen[u SUBSEP i] = 1; items[u] = items[u] " " i } }
  print u items[u] } }' > all.txt
awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 5 == 0) te = te " " $k; else tr = tr " " $k } print tr > "train.txt"; print te > "test.txt" }' all.txt
"$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed 3 \
  --output data.h5 >/dev/null 2>&1 || fail "convert"
# 157 steps per epoch; checkpoints at steps 50, 100, 150 and the end (157)
common=(--set data.path=$work/data.h5 --set model.dim=16 --set train.batch_size=32 --set train.lr=0.02
        --set eval.topk=10 --set run.progress_every=1000 --set train.checkpoint_every=50
        --set train.keep_checkpoints=2 --set loss.name=ssm --set loss.negatives=64)

# job NP OUT ARGS...: one softrec job; each rank's exit code goes to
# OUT.rank<R> (the exit code is the agreed error's code on every rank; the
# wrapper exits 0 so that mpirun does not kill the slower ranks before they
# report), the job's wall time to $secs, its exit code to $rc: the first
# rank's non-zero code, 125 when a rank left no code, 124 on the timeout.
job() {
  local np=$1 out=$2 r; shift 2
  rm -f "$out".rank*
  local t0 t1
  t0=$(date +%s.%N)
  timeout -k 5 120 "$mpiexec" -n "$np" --oversubscribe bash -c \
    '"$@"; echo $? > "'"$out"'.rank$OMPI_COMM_WORLD_RANK"' softrec "$bin" "$@" > "$out.json" 2> "$out.err"
  rc=$?
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  for ((r = 0; r < np && rc == 0; r++)); do
    [[ -f $out.rank$r ]] || { rc=125; break; }
    rc=$(cat "$out.rank$r")
  done
}
# expect_fail NP OUT WANT_REGEX: the job failed with exit 4 on every rank
# within 30 s and printed exactly one error line matching the regex.
expect_fail() {
  local np=$1 out=$2 want=$3 r
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "$out: exit $rc, expected a failure ($(tail -n3 "$out.err"))"
  awk -v s="$secs" 'BEGIN { exit !(s <= 30) }' || fail "$out: the job took $secs s to end (limit 30 s)"
  for ((r = 0; r < np; r++)); do
    [[ -f $out.rank$r ]] || fail "$out: rank $r did not exit by itself"
    [[ $(cat "$out.rank$r") == 4 ]] || fail "$out: rank $r exited $(cat "$out.rank$r"), expected 4 (I/O error)"
  done
  [[ $(grep -c '^softrec: error: ' "$out.err") == 1 ]] || fail "$out: expected one error line: $(cat "$out.err")"
  grep -Eq "^softrec: error: $want" "$out.err" || fail "$out: error line does not match '$want': $(grep error "$out.err")"
  echo "ok: $out: exit 4 on all $np ranks in $secs s: $(grep '^softrec: error: ' "$out.err")"
}
# latest_is DIR NAME: `latest` names NAME and no temporary is left.
latest_is() {
  [[ $(cat "$1/checkpoints/latest") == "$2" ]] || fail "$1: latest is '$(cat "$1/checkpoints/latest")', expected $2"
  ! ls -a "$1/checkpoints" | grep -q '^\.tmp' || fail "$1: temporaries left: $(ls -a "$1/checkpoints")"
}
free_bytes() { echo $(( $(stat -f -c '%a * %S' "$1") )); }

# 1. no space
for np in 2 3; do
  for left in 0 102400; do
    d=$work/nospace-$np-$left
    mkdir -p "$d/checkpoints"
    mount -t tmpfs -o size=1m tmpfs "$d/checkpoints" || fail "mount tmpfs"
    mounts+=("$d/checkpoints")
    job "$np" "$d.first" train "${common[@]}" --set train.epochs=1 --set run.dir="$d"
    [[ $rc == 0 ]] || fail "$d: first run: $(tail -n3 "$d.first.err")"
    latest_is "$d" ckpt-000000000157.h5
    fill=$(( $(free_bytes "$d/checkpoints") - left ))
    head -c "$fill" /dev/zero > "$d/checkpoints/filler" || fail "$d: cannot fill the tmpfs"
    [[ $(free_bytes "$d/checkpoints") -le $left ]] || fail "$d: $(free_bytes "$d/checkpoints") bytes still free"
    job "$np" "$d.full" train "${common[@]}" --set train.epochs=2 --set train.resume=auto --set run.dir="$d"
    expect_fail "$np" "$d.full" \
      "$d/checkpoints/\.tmp-200-[0-9]+\.h5: cannot reserve [0-9]+ bytes for the checkpoint: No space left on device \["
    # The space was checked before HDF5 wrote a byte: MPI-IO never met ENOSPC.
    ! grep -q "No space left on device" <(grep -v '^softrec: error: ' "$d.full.err") ||
      fail "$d: a write met the full disk: $(grep -v '^softrec: error' "$d.full.err" | head -3)"
    latest_is "$d" ckpt-000000000157.h5
    rm "$d/checkpoints/filler"
    job "$np" "$d.verify" checkpoint verify "$d"
    [[ $rc == 0 ]] || fail "$d: latest does not verify after the failed save: $(tail -n2 "$d.verify.err")"
    job "$np" "$d.resume" train "${common[@]}" --set train.epochs=2 --set train.resume=auto --set run.dir="$d"
    [[ $rc == 0 ]] || fail "$d: resume after freeing space: $(tail -n3 "$d.resume.err")"
    grep -q "\"resumed_from\": \"$d/checkpoints/ckpt-000000000157.h5\"" "$d.resume.json" ||
      fail "$d: the resumed run did not start from step 157: $(cat "$d.resume.json")"
    latest_is "$d" ckpt-000000000314.h5
    echo "ok: $d: after freeing space, latest verified and the run resumed from step 157 to 314"
  done
done
unmount_all

# 2. read-only directory
for np in 2 3; do
  d=$work/ro-$np
  mkdir -p "$d"
  job "$np" "$d.first" train "${common[@]}" --set train.epochs=1 --set run.dir="$d"
  [[ $rc == 0 ]] || fail "$d: first run: $(tail -n3 "$d.first.err")"
  : > "$d/checkpoints/.tmp-999-1.h5" # a leftover the read-only start cannot delete
  mount --bind "$d/checkpoints" "$d/checkpoints" && mounts+=("$d/checkpoints") &&
    mount -o remount,ro,bind "$d/checkpoints" || fail "read-only bind mount"
  touch "$d/checkpoints/x" 2>/dev/null && fail "$d/checkpoints is still writable"
  job "$np" "$d.resume" train "${common[@]}" --set train.epochs=2 --set train.resume=auto --set run.dir="$d"
  expect_fail "$np" "$d.resume" "$d/checkpoints: cannot write in the checkpoint directory: Read-only file system \["
  [[ $(cat "$d/checkpoints/latest") == ckpt-000000000157.h5 ]] || fail "$d: latest changed"
  job "$np" "$d.verify" checkpoint verify "$d"
  [[ $rc == 0 ]] || fail "$d: verify in the read-only directory: $(tail -n2 "$d.verify.err")"
  job "$np" "$d.eval" eval --checkpoint "$d/checkpoints/ckpt-000000000157.h5"
  [[ $rc == 0 ]] || fail "$d: eval in the read-only directory: $(tail -n2 "$d.eval.err")"
  grep -q '"test": {"ndcg@10": [0-9.]*' "$d.eval.json" || fail "$d: eval printed no test metrics: $(cat "$d.eval.json")"
  echo "ok: $d: verify and eval --checkpoint work in the read-only directory"
  unmount_all
  job "$np" "$d.resume2" train "${common[@]}" --set train.epochs=2 --set train.resume=auto --set run.dir="$d"
  [[ $rc == 0 ]] || fail "$d: resume once writable again: $(tail -n3 "$d.resume2.err")"
  latest_is "$d" ckpt-000000000314.h5

  # The directory turns read-only while the run trains (between two saves:
  # a bind mount with a file open for writing cannot be remounted read-only,
  # so the remount is retried until it lands outside a save).
  d=$work/ro-late-$np
  mkdir -p "$d"
  job "$np" "$d.first" train "${common[@]}" --set train.epochs=1 --set train.checkpoint_every=0 --set run.dir="$d"
  [[ $rc == 0 ]] || fail "$d: first run: $(tail -n3 "$d.first.err")"
  mount --bind "$d/checkpoints" "$d/checkpoints" && mounts+=("$d/checkpoints") || fail "bind mount"
  ( job "$np" "$d.late" train "${common[@]}" --set train.epochs=40 --set train.resume=auto --set run.dir="$d"
    echo "$rc $secs" > "$d.late.rc" ) &
  bg=$!
  for ((w = 0; w < 300; w++)); do [[ $(cat "$d/checkpoints/latest") != ckpt-000000000157.h5 ]] && break; sleep 0.05; done
  for ((w = 0; w < 300; w++)); do mount -o remount,ro,bind "$d/checkpoints" 2>/dev/null && break; sleep 0.01; done
  t_ro=$(date +%s.%N)
  wait $bg
  read -r rc secs < "$d.late.rc"
  secs=$(awk -v a="$t_ro" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') # from the remount
  now=$(cat "$d/checkpoints/latest")
  # Whichever step of the save meets it (reserve, create, digest file,
  # latest), the line names a file in the directory and the OS reason.
  expect_fail "$np" "$d.late" "$d/checkpoints/[^ ]+: [^[]*: Read-only file system \["
  late=$secs
  [[ $now != ckpt-000000000157.h5 ]] || fail "$d: no checkpoint was committed before the remount"
  unmount_all
  job "$np" "$d.verify" checkpoint verify "$d"
  [[ $rc == 0 ]] || fail "$d: $now does not verify: $(tail -n2 "$d.verify.err")"
  echo "ok: $d: read-only between saves: the next save failed $late s after the remount; $now verifies"
done
echo "PASS"

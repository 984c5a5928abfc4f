#!/usr/bin/env bash
# readme_commands.sh: run README.md's Commands block, top to bottom, the way a
# new user would after the quickstart, in a scratch copy of the checkout's
# layout (build/, configs/, launch/ and ../shared/data linked in). For CI the
# block is shortened, and only so: `--set train.epochs=1` appended to every
# train line, `data synth` at 20000 users x 50000 items x 400000
# interactions, `--users 64 --reps 4` appended to analyze. Then checks that
# each run kept its own run.dir and analyze/verify saw the softmax model.
# Skipped (exit 77) when the shared data is absent.
#
# usage: readme_commands.sh SOURCE_DIR BUILD_DIR DATA_DIR WORK_DIR
set -uo pipefail
src=$1 build=$2 data=${SOFTREC_DATA:-$3} work=$4
if [[ ! -f $data/ml-1m/implicit_full/train.txt ]]; then
  echo "SKIP: shared data not found at $data (no ml-1m/implicit_full/train.txt; set SOFTREC_DATA)"; exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/repo" "$work/shared" || exit 1
ln -s "$(cd "$data" && pwd)" "$work/shared/data"
ln -s "$build" "$work/repo/build"
ln -s "$src/configs" "$work/repo/configs"
ln -s "$src/launch" "$work/repo/launch"

# The first ```sh block after "## Commands", continuation lines joined.
block=$(awk '/^## Commands/ { c = 1 } c && /^```sh/ { b = 1; next } b && /^```/ { exit } b' "$src/README.md" |
        sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
[[ $(grep -c 'softrec-run' <<<"$block") -ge 5 ]] || fail "no Commands block in README.md:"$'\n'"$block"
short=$(sed -E -e '/softrec-run .* train /s/$/ --set train.epochs=1/' \
               -e '/ analyze /s/$/ --users 64 --reps 4/' \
               -e '/data synth/s/--users [0-9]+ --items [0-9]+ --interactions [0-9]+/--users 20000 --items 50000 --interactions 400000/' \
               <<<"$block")
printf '%s\n' "$short" > "$work/commands.sh"
echo "running (in $work/repo):"; cat "$work/commands.sh"
cd "$work/repo"
bash -e -x ../commands.sh > ../stdout.txt 2> ../stderr.txt || { tail -n 30 ../stderr.txt; fail "the README's Commands block failed (exit $?)"; }

# Each train in its own run.dir; analyze and verify acted on the softmax model.
grep -q '^name *= *softmax' runs/ml1m-mf-softmax/config.ini || fail "runs/ml1m-mf-softmax is not the softmax run"
grep -q '^name *= *ssm' runs/ml1m-mf-ssm/config.ini || fail "runs/ml1m-mf-ssm is not the ssm run"
for d in ml1m-mf-softmax ml1m-mf-ssm; do [[ -s runs/$d/result.json && -f runs/$d/model.h5 ]] || fail "runs/$d: no result"; done
grep -q '"checkpoint": "runs/ml1m-mf-softmax' ../stdout.txt || fail "checkpoint verify did not name the softmax run"
grep -q '"verified": true' ../stdout.txt || fail "checkpoint verify did not verify"
grep -q '"checkpoint": "runs/ml1m-mf-softmax/model.h5"' ../stdout.txt || fail "eval/analyze output missing"
echo "PASS: README Commands ran top to bottom ($(grep -c . ../commands.sh) commands)"

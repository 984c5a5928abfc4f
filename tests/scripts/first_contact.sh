#!/usr/bin/env bash
# first_contact.sh: what a new user meets first.
#  1. train refuses a run.dir holding a finished run or a different run
#     (exit 3, a message naming the way out), --force replaces it,
#     train.resume=auto continues it; result.json is the last stdout line,
#     the summary table is on stderr
#  2. cmake --install: bin/softrec runs, bin/softrec-run finds it, the man
#     page renders (that part skipped when help2man or man is absent)
#  3. the CPU check's message and exit code (SOFTREC_TEST_CPU_LACKS)
# usage: first_contact.sh SOFTREC BUILD_DIR WORK_DIR
set -uo pipefail
bin=$1 build=$2 work=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

# 1. run.dir
"$bin" data synth --users 300 --items 400 --interactions 6000 --topics 8 --seed 2 --output d.h5 >/dev/null 2>&1 ||
  fail "synth"
common=(--set data.path=d.h5 --set model.dim=8 --set train.epochs=1 --set eval.topk=5,10 --set eval.every=0
        --set run.dir=r --set run.progress_every=1000)
"$bin" train "${common[@]}" > a.out 2> a.err || fail "first run: $(tail -n3 a.err)"
cmp -s <(tail -n1 a.out) r/result.json || fail "result.json is not the last stdout line"
grep -q '^    NDCG  ' a.err && grep -q '@10' a.err && grep -q 'files   r/' a.err || fail "no summary table on stderr"
"$bin" train "${common[@]}" > b.out 2> b.err; rc=$?
[[ $rc == 3 ]] || fail "a finished run.dir: exit $rc, want 3"
grep -q "run.dir r holds a finished run (model.h5).*--force" b.err || fail "refusal message: $(cat b.err)"
[[ ! -s b.out ]] || fail "refused run printed a result"
"$bin" train "${common[@]}" --force > c.out 2> c.err || fail "--force: $(tail -n3 c.err)"
grep -q "warning: --force: replacing a finished run" c.err || fail "--force said nothing"
rm r/model.h5
"$bin" train "${common[@]}" --set model.dim=4 > e.out 2> e.err; rc=$?
[[ $rc == 3 ]] || fail "a different run: exit $rc, want 3"
grep -q "holds a different run (its config.ini has model.dim = 8, this run 4)" e.err || fail "message: $(cat e.err)"
"$bin" train "${common[@]}" --set train.epochs=2 --set train.resume=auto > f.out 2> f.err || fail "resume: $(tail -n3 f.err)"
grep -q "resumed from" f.err || fail "resume=auto did not continue the run"
echo "PASS: run.dir refusal, --force, resume=auto"

# 2. install
"$(command -v cmake)" --install "$build" --prefix "$work/p" > install.log 2>&1 || fail "cmake --install: $(tail -n3 install.log)"
for f in bin/softrec bin/softrec-run bin/softrec-report share/softrec/configs/quickstart.ini share/softrec/docs/cli.md \
         share/softrec/LICENSE share/softrec/CITATION.cff; do
  [[ -e p/$f ]] || fail "not installed: $f"
done
[[ $("$work/p/bin/softrec" version) == "softrec "* ]] || fail "installed softrec version"
[[ $("$work/p/bin/softrec-run" -n 1 version) == "softrec "* ]] || fail "installed softrec-run did not find bin/softrec"
if [[ -f $build/softrec.1 ]] && command -v man >/dev/null; then
  [[ -f p/share/man/man1/softrec.1 ]] || fail "man page not installed"
  man -l p/share/man/man1/softrec.1 2>/dev/null | head -n 5 | grep -q "softrec" || fail "man page does not render"
  echo "PASS: install, man page"
else
  echo "PASS: install (man page part skipped: help2man or man absent)"
fi

# 3. CPU check
SOFTREC_TEST_CPU_LACKS=AVX2 "$bin" version > cpu.out 2> cpu.err; rc=$?
[[ $rc == 12 ]] || fail "CPU check: exit $rc, want 12"
grep -q "^softrec: this binary was built for .*AVX2.* (SOFTREC_NATIVE); this CPU lacks AVX2; rebuild with -DSOFTREC_NATIVE=OFF$" cpu.err ||
  fail "CPU check message: $(cat cpu.err)"
[[ ! -s cpu.out ]] || fail "the CPU check ran the command anyway"
echo "PASS: CPU check"

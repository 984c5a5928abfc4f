#!/usr/bin/env bash
# seeds_e2e.sh SOFTREC_BIN WORKDIR: train.seeds (src/cli/train_cmd.c).
#  1. train.seeds=1,2,3 at 2 ranks: run.dir/seed-{1,2,3} each hold a finished run with its
#     train.seed; seeds.json (also the last stdout line) has the mean, sample sd and 95% CI
#     (Student t, 2 df) of every test and best_valid metric of the three result.json files
#  2. train.resume=auto continues the finished sweep to the same numbers
#  3. a failing seed stops the sweep with its error and exit code; no seeds.json
#  4. malformed train.seeds: config error (exit 3), exact message, nothing created
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_start "$1" "$2"
toy_data "$bin" 7 60 4 20 20 || fail "convert"
common=(--set data.path=data.h5 --set model.dim=8 --set train.epochs=2 --set train.batch_size=64
        --set loss.tile=32 --set eval.topk=5,10 --set run.progress_every=1000)

# 1. three seeds
run 2 train "${common[@]}" --set run.dir=r --set train.seeds=1,2,3 > out.txt 2> err.txt || { cat err.txt; fail "sweep"; }
for s in 1 2 3; do
  [[ -s r/seed-$s/model.h5 && -s r/seed-$s/result.json && -s r/seed-$s/config.ini ]] || fail "r/seed-$s incomplete"
  grep -qx "seed = $s" r/seed-$s/config.ini || fail "r/seed-$s/config.ini: train.seed is not $s"
  grep -qx "seeds = " r/seed-$s/config.ini || fail "r/seed-$s/config.ini: train.seeds is not empty"
done
grep -q "ndcg@10 .* ± " err.txt || fail "no mean ± sd table on stderr"
[[ $(wc -l < out.txt) -eq 4 ]] || fail "stdout: want 3 result rows and the summary"
python3 - <<'PY' || fail "seeds.json"
import json, math, sys
s = json.load(open("r/seeds.json"))
last = json.loads(open("out.txt").read().splitlines()[-1])
assert last == s, "the last stdout line is not seeds.json"
rows = [json.load(open(f"r/seed-{k}/result.json")) for k in (1, 2, 3)]
assert s["seeds"] == [1, 2, 3] and s["runs"] == rows, "seeds / runs"
assert [r["config"]["train.seed"] for r in rows] == [1, 2, 3]
assert len({r["test"]["ndcg@10"] for r in rows}) > 1, "the seeds gave identical metrics"
for sec in ("test", "best_valid"):
    names = [m for m in rows[0][sec] if "@" in m]
    assert sorted(s[sec]) == sorted(names), f"{sec}: metrics {sorted(s[sec])}"
    for m in names:
        x = [r[sec][m] for r in rows]
        mean = sum(x) / 3
        sd = math.sqrt(sum((v - mean) ** 2 for v in x) / 2)
        h = 4.302653 * sd / math.sqrt(3)
        g = s[sec][m]
        assert g["n"] == 3, m
        for what, got, want in (("mean", g["mean"], mean), ("sd", g["sd"], sd),
                                ("ci lo", g["ci95"][0], mean - h), ("ci hi", g["ci95"][1], mean + h)):
            assert abs(got - want) <= 1e-8, f"{sec} {m} {what}: {got} != {want}"
print("seeds.json: mean, sd and ci95 of", len(s["test"]), "test metrics agree")
PY

# 2. resume=auto: every seed continues from its last checkpoint, same numbers
cp r/seeds.json seeds0.json
run 2 train "${common[@]}" --set run.dir=r --set train.seeds=1,2,3 --set train.resume=auto > /dev/null 2>&1 || fail "resume"
python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(a["test"] != b["test"])' \
  seeds0.json r/seeds.json || fail "resumed sweep: other test statistics"

# 3. seed 2's run.dir holds a finished run: seed 1 runs, seed 2 is refused (exit 3), seed 3 never starts
mkdir -p f/seed-2 && touch f/seed-2/model.h5
rc=0; run 2 train "${common[@]}" --set run.dir=f --set train.seeds=1,2,3 > /dev/null 2> err.txt || rc=$?
[[ $rc -eq 3 ]] || fail "failed seed: exit $rc, want 3"
grep -q "run.dir f/seed-2 holds a finished run" err.txt || fail "failed seed: message"
grep -q "seeds: seed 2 failed" err.txt || fail "failed seed: no sweep note"
[[ -s f/seed-1/result.json && ! -e f/seed-3 && ! -e f/seeds.json ]] || fail "failed seed: the sweep went on"

# 4. malformed values
check_bad() {
  local val=$1 want=$2 rc=0
  "$bin" train --set data.path=data.h5 --set run.dir=bad --set "train.seeds=$val" > /dev/null 2> err.txt || rc=$?
  [[ $rc -eq 3 ]] || fail "train.seeds=$val: exit $rc, want 3"
  grep -qF "softrec: error: $want [" err.txt || fail "train.seeds=$val: got '$(cat err.txt)'"
  [[ ! -e bad ]] || fail "train.seeds=$val created run.dir"
}
check_bad "1,,2" "train.seeds = '1,,2': empty seed (want comma-separated integers, e.g. 1,2,3)"
check_bad "x" "train.seeds = 'x': 'x' is not a seed (an integer >= 0)"
check_bad "1,-2" "train.seeds = '1,-2': '-2' is not a seed (an integer >= 0)"
check_bad "4,4" "train.seeds = '4,4': seed 4 appears twice"
check_bad "7" "train.seeds = '7': want at least 2 seeds (one run: train.seed)"
echo "seeds_e2e: passed"

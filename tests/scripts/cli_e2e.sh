#!/usr/bin/env bash
# cli_e2e.sh SOFTREC_BIN WORKDIR: the command line itself (src/cli, docs/cli.md).
#  1. every command and subcommand: --help / -h / help CMD exit 0 and print
#     that command's own usage on stdout, without starting MPI
#  2. --opt=value gives the same result as --opt value (data convert, data
#     synth, train --config=, eval --checkpoint=, analyze lse-bias/jacobian)
#  3. unknown command, help topic, subcommand and option: exit 2 and the
#     exact one-line message; under mpirun it is printed once
#  4. help config --json is valid JSON with every key of help config
#  5. version with PATH unset and with an MPI that cannot start
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
fail() { echo "FAIL: $*" >&2; exit 1; }
# An MPI that cannot start: MPI_Init aborts with a nonexistent PML, so a
# command that succeeds under it never called MPI_Init.
nompi() { env -i OMPI_MCA_pml=nonexistent "$bin" "$@"; }

# 1. help everywhere, each its own usage line, no MPI
cmds=("data convert" "data synth" "data info" "data reorder" "train" "eval" "checkpoint verify"
      "analyze lse-bias" "analyze jacobian" "help" "version")
for c in "${cmds[@]}"; do
  # shellcheck disable=SC2086
  for form in "$c --help" "$c -h" "help $c"; do
    out=$(nompi $form) || fail "'softrec $form' exited $?"
    head -n1 <<<"$out" | grep -q "^usage: softrec $c\b" || fail "'softrec $form' printed: $(head -n1 <<<"$out")"
  done
  nompi --help | grep -q "^  $c " || fail "the general usage does not list '$c'"
done
for g in data analyze checkpoint; do
  out=$(nompi $g --help) || fail "'softrec $g --help' exited $?"
  [[ $(head -n1 <<<"$out") == "usage: softrec $g SUBCOMMAND [options]" ]] || fail "'softrec $g --help': $out"
done
# --help wins over a bad option next to it; help goes to stdout only
nompi data convert --frobnicate --help > o.txt 2> e.txt || fail "--help after a bad option"
[[ ! -s e.txt ]] && grep -q "^usage: softrec data convert" o.txt || fail "--help after a bad option printed $(cat o.txt e.txt)"
# analyze's options are its own: lse-bias has no --maps
nompi analyze lse-bias --help | grep -q -- "--maps" && fail "lse-bias usage shows jacobian's --maps"
n=$(mpirun -np 2 --oversubscribe "$bin" train --help | grep -c "^usage:")
[[ $n -eq 1 ]] || fail "train --help under mpirun -np 2 printed $n usages"

# 2. --opt=value == --opt value
awk 'BEGIN { srand(5); for (u = 0; u < 40; u++) { line = u; for (k = 0; k < 12; k++) line = line " " int(rand() * 60);
  print line } }' > all.txt
awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 4 == 0) te = te " " $k; else tr = tr " " $k } print tr > "train.txt"; print te > "test.txt" }' all.txt
"$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed 3 --name d \
  --output a.h5 2>/dev/null || fail "convert with --opt value"
"$bin" data convert --format=lightgcn --input=train.txt --test=test.txt --valid-ratio=0.1 --seed=3 --name=d \
  --output=b.h5 2>/dev/null || fail "convert with --opt=value"
h5diff a.h5 b.h5 > /dev/null || fail "data convert: --opt=value gave another dataset"
[[ $("$bin" data info a.h5 --json) == "$("$bin" data info --json b.h5 | sed 's/b\.h5/a.h5/g')" ]] || fail "data info differs"
"$bin" data synth --users 30 --items 50 --topics 4 --seed 2 --progress 0 --output s1.h5 > /dev/null
"$bin" data synth --users=30 --items=50 --topics=4 --seed=2 --progress=0 --output=s2.h5 > /dev/null
h5diff s1.h5 s2.h5 > /dev/null || fail "data synth: --opt=value gave another dataset"
printf '[data]\npath = a.h5\n[model]\ndim = 4\n[train]\nepochs = 1\nbatch_size = 32\n[eval]\ntopk = 5\n' > run.ini
"$bin" train --config run.ini --set run.dir=r1 > t1.json 2>/dev/null || fail "train --config FILE"
"$bin" train --config=run.ini --set=run.dir=r2 > t2.json 2>/dev/null || fail "train --config=FILE"
h5diff r1/model.h5 r2/model.h5 /model/item_embedding > /dev/null || fail "train: --config= gave another model"
e1=$("$bin" eval --checkpoint r1/model.h5 --split valid 2>/dev/null | tail -n1 | sed 's/"seconds": [0-9.]*//')
e2=$("$bin" eval --checkpoint=r1/model.h5 --split=valid 2>/dev/null | tail -n1 | sed 's/"seconds": [0-9.]*//')
[[ -n $e1 && $e1 == "$e2" ]] || fail "eval --checkpoint=: '$e2' vs '$e1'"
a1=$("$bin" analyze lse-bias --checkpoint r1/model.h5 --users 8 --reps 2 --k 2,8 2>/dev/null | tail -n1)
a2=$("$bin" analyze lse-bias --checkpoint=r1/model.h5 --users=8 --reps=2 --k=2,8 2>/dev/null | tail -n1)
[[ -n $a1 && $a1 == "$a2" ]] || fail "analyze lse-bias --opt=value: '$a2' vs '$a1'"
j1=$("$bin" analyze jacobian --checkpoint r1/model.h5 --users 6 --maps softmax,sparsemax 2>/dev/null | tail -n1)
j2=$("$bin" analyze jacobian --checkpoint=r1/model.h5 --users=6 --maps=softmax,sparsemax 2>/dev/null | tail -n1)
[[ -n $j1 && $j1 == "$j2" ]] || fail "analyze jacobian --opt=value: '$j2' vs '$j1'"
v=$("$bin" checkpoint verify r1 2>/dev/null) || fail "checkpoint verify of a run directory"
grep -q '"verified": true' <<<"$v" || fail "checkpoint verify printed $v"

# 3. usage errors: exit 2, the exact message (without its [file:line])
expect() { # expect RC MESSAGE ARGS...
  local rc=$1 msg=$2; shift 2
  set +e; nompi "$@" > o.txt 2> e.txt; local got=$?; set -e
  [[ $got -eq $rc ]] || fail "'softrec $*': exit $got, expected $rc ($(cat e.txt))"
  [[ $(sed 's/ \[src\/[^]]*\]$//' e.txt) == "softrec: error: $msg" ]] || fail "'softrec $*' said: $(cat e.txt)"
}
expect 2 "unknown command 'frobnicate' (softrec --help lists them)" frobnicate
expect 2 "help: unknown topic 'nope' (softrec help lists the commands)" help nope
expect 2 "data: unknown subcommand 'nope' (convert, synth, info, reorder)" data nope
expect 2 "analyze: missing subcommand (lse-bias, jacobian)" analyze
expect 2 "train: unknown option '--bogus' (softrec train --help)" train --bogus=1
expect 2 "eval: unknown option '--bogus' (softrec eval --help)" eval --checkpoint x.h5 --bogus
expect 2 "analyze lse-bias: unknown option '--maps' (softrec analyze lse-bias --help)" analyze lse-bias --checkpoint x --maps softmax
expect 2 "data synth: --users 'many': expected an integer" data synth --users=many --output x.h5
expect 2 "data convert: --format needs a value" data convert --input x --output y --format
expect 2 "data info: --json takes no value" data info x.h5 --json=yes
expect 2 "data info: unexpected argument 'y.h5' (softrec data info --help)" data info x.h5 y.h5
expect 2 "checkpoint verify: FILE.h5|RUN_DIR is required (softrec checkpoint verify --help)" checkpoint verify
expect 2 "help: --json goes with 'help config' only" help train --json
[[ ! -s o.txt ]] || fail "a usage error printed on stdout: $(cat o.txt)"
set +e; mpirun -np 2 --oversubscribe "$bin" train --bogus > /dev/null 2> e.txt; rc=$?; set -e
[[ $rc -eq 2 ]] || fail "mpirun train --bogus: exit $rc"
[[ $(grep -c "^softrec: error:" e.txt) -eq 1 ]] || fail "mpirun train --bogus: $(cat e.txt)"
# a config error still comes from the run (exit 3), after MPI
set +e; "$bin" train --set=train.nope=1 > /dev/null 2> e.txt; rc=$?; set -e
[[ $rc -eq 3 ]] && grep -q "softrec: error: --set: unknown key 'train.nope'" e.txt || fail "train --set=bad: exit $rc, $(cat e.txt)"

# 4. help config --json: valid JSON, the same keys as help config
nompi help config --json > keys.json
nompi help config | awk '/^[a-z]/ { print $1 }' | sort > keys.txt
[[ $(wc -l < keys.txt) -ge 20 ]] || fail "help config lists $(wc -l < keys.txt) keys"
python3 -c 'import json, sys
d = json.load(open("keys.json"))
assert d["version"] and all({"name", "type", "default", "help"} <= set(k) for k in d["keys"]), "fields"
print("\n".join(sorted(k["name"] for k in d["keys"])))' > keys_json.txt || fail "help config --json is not the expected JSON"
diff keys.txt keys_json.txt > /dev/null || fail "help config --json keys differ: $(diff keys.txt keys_json.txt | head -3)"

# 5. version: no PATH, no MPI
out=$(env -i "$bin" version) || fail "version with PATH unset exited $?"
[[ $out == "softrec "* ]] || fail "version printed '$out'"
[[ $(nompi --version) == "$out" ]] || fail "--version differs from version"
set +e; nompi data info a.h5 > /dev/null 2>&1; rc=$?; set -e
[[ $rc -ne 0 ]] || fail "the no-MPI check is void: data info ran with a broken MPI"
echo "cli_e2e: all checks passed"

#!/usr/bin/env bash
# run_corpus.sh: run the bad-input corpus (tests/corpus/cases.tsv) against a
# built softrec at 1 rank (singleton) and 2 ranks (mpirun), checking for each
# case: the exit code, exactly one "softrec: error: <expected>" line, and that
# no output or temporary file is left behind.
#
# usage: run_corpus.sh SOFTREC GEN_H5 CORPUS_DIR WORK_DIR
#   GEN_H5: the sr_io_corpus_gen helper (writes the HDF5 cases)
# env:   MPIEXEC (default mpirun), CORPUS_RANKS (default "1 2"),
#        CORPUS_ONLY (a case name to run alone)
set -u
softrec=$1 gen=$2 corpus=$3 work=$4
mpiexec=${MPIEXEC:-mpirun}
ranks=${CORPUS_RANKS:-"1 2"}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
in_dir=$(cd "$corpus/inputs" && pwd)
rm -rf "$work" && mkdir -p "$work/h5" || exit 1
h5_dir=$(cd "$work/h5" && pwd)
"$gen" "$h5_dir" || { echo "FAIL: corpus generator"; exit 1; }

list_files() { find "$in_dir" "$h5_dir" -type f | sort; }
before=$(list_files)
pass=0 fail=0 n=0
while IFS=$'\t' read -r name rc args expect; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ -n "${CORPUS_ONLY:-}" && "$name" != "$CORPUS_ONLY" ]] && continue
  n=$((n + 1))
  for np in $ranks; do
    out="$work/out/$name.np$np"
    rm -rf "$out" && mkdir -p "$out"
    out_dir=$(cd "$out" && pwd)
    sub() { local s=${1//@IN@/$in_dir}; s=${s//@H5@/$h5_dir}; echo "${s//@OUT@/$out_dir}"; }
    a=$(sub "$args") e=$(sub "$expect")
    # shellcheck disable=SC2086
    if [[ $np == 1 ]]; then
      "$softrec" $a </dev/null >"$out_dir/../$name.np$np.stdout" 2>"$out_dir/../$name.np$np.stderr"
    else
      "$mpiexec" -np "$np" --oversubscribe "$softrec" $a </dev/null >"$out_dir/../$name.np$np.stdout" 2>"$out_dir/../$name.np$np.stderr"
    fi
    got=$?
    err="$out_dir/../$name.np$np.stderr"
    problems=()
    [[ $got == "$rc" ]] || problems+=("exit code $got, expected $rc")
    if [[ $rc != 0 ]]; then
      nerr=$(grep -c '^softrec: error: ' "$err")
      [[ $nerr == 1 ]] || problems+=("$nerr 'softrec: error:' lines, expected 1")
      grep -qF -- "softrec: error: $e" "$err" || problems+=("message does not contain: softrec: error: $e")
      left=$(find "$out_dir" -mindepth 1 | head -5)
      [[ -z "$left" ]] || problems+=("left behind: $left")
    fi
    tmps=$(find "$out_dir" "$in_dir" "$h5_dir" -name '*.tmp.*' | head -5)
    [[ -z "$tmps" ]] || problems+=("temporary files left: $tmps")
    if [[ ${#problems[@]} == 0 ]]; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
      echo "FAIL $name (np=$np): ${problems[*]}"
      echo "  softrec $a"
      sed 's/^/  | /' "$err" | head -8
    fi
  done
done <"$corpus/cases.tsv"
after=$(list_files)
if [[ "$before" != "$after" ]]; then
  echo "FAIL: the corpus inputs changed:"; diff <(echo "$before") <(echo "$after") | head
  fail=$((fail + 1))
fi
echo "corpus: $n cases x ranks {$ranks}: $pass passed, $fail failed"
[[ $fail == 0 && $n -ge 1 ]]

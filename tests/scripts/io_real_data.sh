#!/usr/bin/env bash
# io_real_data.sh: convert every shared real dataset with `softrec data
# convert`, then check `softrec data info --json` against the statistics in
# shared/data/README.md. Skipped (exit 77, ctest SKIP_RETURN_CODE, with the
# reason printed) when the data is absent.
#
# usage: io_real_data.sh SOFTREC DATA_DIR WORK_DIR
# env:   MPIEXEC (default mpirun): info runs at 2 ranks for one dataset.
set -u
softrec=$1 data=${SOFTREC_DATA:-$2} work=$3
mpiexec=${MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [[ ! -d "$data/ml-100k" ]]; then
  echo "SKIP: shared data not found at $data (no $data/ml-100k; set SOFTREC_DATA)"; exit 77
fi
rm -rf "$work" && mkdir -p "$work" || exit 1
fail=0

# field PATH JSON: one value out of the info JSON (jq, or python3 as fallback)
field() {
  if command -v jq >/dev/null; then jq -r "$1" <<<"$2"
  else python3 -c 'import json,sys; v=json.loads(sys.argv[2])
for k in sys.argv[1].strip(".").split("."): v=v[k]
print(v)' "$1" "$2"; fi
}

# check NAME H5 NP "path=value ..."
check() {
  local name=$1 h5=$2 np=$3 json
  if [[ $np == 1 ]]; then json=$("$softrec" data info "$h5" --json </dev/null)
  else json=$("$mpiexec" -np "$np" --oversubscribe "$softrec" data info "$h5" --json </dev/null); fi
  if [[ $? != 0 ]]; then echo "FAIL $name: data info failed"; fail=$((fail + 1)); return; fi
  local kv got
  for kv in $4; do
    got=$(field ".${kv%%=*}" "$json")
    if [[ "$got" != "${kv#*=}" ]]; then
      echo "FAIL $name: ${kv%%=*} = $got, expected ${kv#*=}"; fail=$((fail + 1))
    fi
  done
  echo "$name: $(field .num_users "$json") users, $(field .num_items "$json") items," \
       "train $(field .interactions.train "$json"), valid $(field .interactions.valid "$json")," \
       "test $(field .interactions.test "$json"), gini $(field .popularity.gini "$json")"
}

convert() { # NAME ARGS...: convert into $work/NAME.h5, timed
  local name=$1; shift
  local t0=$SECONDS
  if ! "$softrec" data convert "$@" --output "$work/$name.h5" </dev/null 2>"$work/$name.log"; then
    echo "FAIL $name: convert failed:"; cat "$work/$name.log"; fail=$((fail + 1)); return 1
  fi
  echo "$name: converted in $((SECONDS - t0)) s"
}

convert ml100k --format ml-100k --input "$data/ml-100k/u.data" --seed 1 &&
  check ml100k "$work/ml100k.h5" 1 "num_users=943 num_items=1682 interactions.total=100000 has_time=true
    provenance.source_sha256=06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"

convert ml1m --format lightgcn --input "$data/ml-1m/implicit_full/train.txt" \
        --test "$data/ml-1m/implicit_full/test.txt" &&
  check ml1m "$work/ml1m.h5" 2 "num_users=6040 num_items=3706 interactions.train=800167 interactions.valid=0
    interactions.test=200042 interactions.total=1000209 users.with_test=6039"

convert ml1m_seq --format seq-lines --input "$data/ml-1m/sequential/sequences.txt" --split leave-last-out &&
  check ml1m_seq "$work/ml1m_seq.h5" 1 "num_users=6040 num_items=3706 interactions.total=1000209
    interactions.test=6040 interactions.valid=6040 interactions.train=988129 has_time=true
    provenance.source_sha256=3b3803d72c034929ada18b2cbd114296261c012b7a3e10282543adeceba53fb1"

convert ml1m_raw --format ml-1m --input "$data/ml-1m/raw_partial/ratings.users1-2999.dat.gz" &&
  check ml1m_raw "$work/ml1m_raw.h5" 1 "num_users=2999 num_items=3615 interactions.total=487650"

convert gowalla --format lightgcn --input "$data/gowalla/train.txt" --test "$data/gowalla/test.txt" &&
  check gowalla "$work/gowalla.h5" 2 "num_users=29858 num_items=40981 interactions.train=810128
    interactions.test=217242 interactions.total=1027370"

convert beauty --format seq-lines --input "$data/amazon-beauty/Beauty.txt" &&
  check beauty "$work/beauty.h5" 1 "num_users=22363 num_items=12101 interactions.total=198502
    interactions.test=22363 interactions.valid=22363"

left=$(find "$work" -name '*.tmp.*')
[[ -z "$left" ]] || { echo "FAIL: temporary files left: $left"; fail=$((fail + 1)); }
echo "real data: $fail failure(s)"
[[ $fail == 0 ]]

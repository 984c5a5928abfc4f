#!/usr/bin/env bash
# convert_e2e.sh SOFTREC_BIN ID_NAMES_BIN FIXTURES WORKDIR: the formats people
# have, end to end through the user-facing commands:
#  1. Amazon ratings (string ids), RecBole's benchmark split and a string-id
#     CSV with a header convert, and each trains one epoch at 2 ranks
#  2. the CSV's original ids come back from the dataset (sr_dataset_read_id_names)
#     after training: every user and item name of the input, in byte order;
#     data reorder keeps them (permuted) and recommend names the same pairs
#  3. an ICLRec-style sequence file keeps repeats by default; --dedup warns
#     with the count of users whose last items changed
set -euo pipefail
bin=$1
names=$2
fx=$3
work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
run() { local np=$1; shift; mpirun -np "$np" --oversubscribe "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

train() { # name: one epoch on name.h5, metrics line on stdout
  run 2 "$bin" train --set data.path="$1.h5" --set train.epochs=1 --set run.dir="run_$1" --set model.dim=8 \
    --set eval.topk=5 > "$1.json" 2> "$1.train.err" || { cat "$1.train.err" >&2; fail "$1: train"; }
  grep -q '"test": {"ndcg@5"' "$1.json" || fail "$1: no test metrics"
  [[ -f "run_$1/model.h5" ]] || fail "$1: no model.h5"
}

# 1. convert and train
"$bin" data convert --format amazon --input "$fx/amazon_ratings.csv" --kcore 2 --output amazon.h5 2> amazon.err ||
  { cat amazon.err >&2; fail "amazon: convert"; }
train amazon
"$bin" data convert --format recbole --input "$fx/toy.train.inter" --valid "$fx/toy.valid.inter" \
  --test "$fx/toy.test.inter" --output recbole.h5 2> recbole.err || { cat recbole.err >&2; fail "recbole: convert"; }
[[ $("$bin" data info recbole.h5 --json) == *'"train":138,"valid":25,"test":25'* ]] || fail "recbole: split sizes"
train recbole
"$bin" data convert --format csv --header --user-col "user name" --item-col item --rating-col rating \
  --time-col timestamp --input "$fx/strings.csv" --output strings.h5 2> strings.err ||
  { cat strings.err >&2; fail "strings: convert"; }
train strings

# 2. the original ids, read back after training
run 2 "$names" strings.h5 > names.tsv || fail "id_names"
python3 - "$fx/strings.csv" names.tsv <<'PY' || fail "strings: names read back differ from the input's ids"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='')))
want = {'user': sorted({r['user name'] for r in rows}), 'item': sorted({r['item'] for r in rows})}
got = {'user': [], 'item': []}
for line in open(sys.argv[2]):
    kind, k, name = line.rstrip('\n').split('\t', 2)
    assert int(k) == len(got[kind])
    got[kind].append(name)
key = lambda s: s.encode()
sys.exit(0 if got['user'] == sorted(want['user'], key=key) and got['item'] == sorted(want['item'], key=key) else 1)
PY
grep -q $'^user\t[0-9]*\tAJAAPPLLUWNPMN "x"$' names.tsv || fail "strings: a quoted id with a quote inside"

# 2b. softrec recommend names users and items by those ids: every user of
#     the input, each with 5 items it has not interacted with
for ds in strings amazon; do
  run 2 "$bin" recommend --checkpoint run_$ds/model.h5 --k 5 --output $ds.top.csv > /dev/null 2> $ds.rec.err ||
    { cat $ds.rec.err >&2; fail "$ds: recommend"; }
done
python3 - "$fx/strings.csv" strings.top.csv <<'PY' || fail "strings: recommend's ids are not the input's"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='')))
seen = {(r['user name'], r['item']) for r in rows}
users, items = {u for u, _ in seen}, {i for _, i in seen}
top = list(csv.DictReader(open(sys.argv[2], newline='')))
assert {r['user'] for r in top} == users, 'users'
assert all(r['item'] in items for r in top), 'items'
assert not any((r['user'], r['item']) in seen for r in top), 'a known item recommended'
per = {}
for r in top:
    per.setdefault(r['user'], []).append(int(r['rank']))
assert all(v == list(range(1, len(v) + 1)) for v in per.values()), 'ranks'
PY
grep -q '^AJAAPPLLUWNPMN,' amazon.top.csv || fail "amazon: recommend does not name users by their ids"

# 2c. data reorder carries the string id maps, permuted with the users and
#     items: the reordered file names the same ids in a new order, and
#     recommending every item (so the lists are whatever is not masked, the
#     same for any model) gives the same (user, item) pairs by name as before
"$bin" data reorder --input strings.h5 --parts 2 --output strings_r.h5 > /dev/null 2> reorder.err ||
  { cat reorder.err >&2; fail "strings: reorder"; }
run 2 "$names" strings_r.h5 > names_r.tsv || fail "id_names after reorder"
cmp -s names.tsv names_r.tsv && fail "strings: reorder did not permute the ids"
[[ $(cut -f1,3 names.tsv | sort) == "$(cut -f1,3 names_r.tsv | sort)" ]] || fail "strings: reorder lost id names"
train strings_r
n_items=$(grep -c '^item' names.tsv)
for ds in strings strings_r; do
  run 2 "$bin" recommend --checkpoint run_$ds/model.h5 --k "$n_items" --output $ds.all.csv > /dev/null 2> $ds.all.err ||
    { cat $ds.all.err >&2; fail "$ds: recommend --k $n_items"; }
done
pairs() { tail -n +2 "$1" | python3 -c 'import csv,sys; [print(r[0], r[2], sep="\t") for r in csv.reader(sys.stdin)]' | sort; }
[[ -n $(pairs strings.all.csv) && $(pairs strings.all.csv) == "$(pairs strings_r.all.csv)" ]] ||
  fail "strings: recommend after reorder names other (user, item) pairs"

# 3. repeats in sequences
"$bin" data convert --format seq-lines --input "$fx/yelp_like.txt" --output yelp.h5 2> yelp.err || fail "yelp: convert"
grep -q warning yelp.err && fail "yelp: warning without --dedup"
[[ $("$bin" data info yelp.h5 --json) == *'"total":16'* ]] || fail "yelp: repeats were not kept"
"$bin" data convert --format seq-lines --dedup --input "$fx/yelp_like.txt" --output yelp_dedup.h5 2> yelp_dedup.err ||
  fail "yelp --dedup: convert"
grep -q "warning: convert: de-duplication changed the last or second-last item .* of 3 users" yelp_dedup.err ||
  { cat yelp_dedup.err >&2; fail "yelp --dedup: no warning with the count"; }
echo "convert_e2e: ok"

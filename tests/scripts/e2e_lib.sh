# e2e_lib.sh (sourced by the end-to-end scripts): their shared start and a
# small dataset maker.
# e2e_start BIN WORK: an empty WORK as the current directory, the MPI and
# BLAS environment of the tests, bin=BIN; then run NP ARGS... runs softrec
# under mpirun and fail MSG ends the script.
e2e_start() {
  bin=$(realpath "$1")
  rm -rf "$2" && mkdir -p "$2" && cd "$2" || exit 1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn
}
run() { local np=$1; shift; mpirun -np "$np" --oversubscribe "$bin" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# toy_data BIN SEED USERS GROUPS PER_GROUP DRAWS writes
# train.txt, test.txt (every 5th item of a user) and data.h5 (10% of each
# user's train as valid) in the current directory: user u draws DRAWS items,
# 80% from its group's PER_GROUP items, the rest from the whole catalogue.
toy_data() {
  local bin=$1 seed=$2 users=$3 groups=$4 per=$5 draws=$6
  awk -v seed="$seed" -v users="$users" -v groups="$groups" -v per="$per" -v draws="$draws" '
    BEGIN { srand(seed); n = groups * per + 1
      for (u = 0; u < users; u++) { g = u % groups
        for (k = 0; k < draws; k++) { if (rand() < 0.8) i = g * per + int(rand() * per); else i = int(rand() * n)
          if (!(u SUBSEP i in seen)) { seen[u SUBSEP i] = 1; items[u] = items[u] " " i } }
        print u items[u] } }' > all.txt
  awk '{ tr = $1; te = $1; for (k = 2; k <= NF; k++) { if (k % 5 == 0) te = te " " $k; else tr = tr " " $k }
         print tr > "train.txt"; print te > "test.txt" }' all.txt
  rm -f data.h5
  "$bin" data convert --format lightgcn --input train.txt --test test.txt --valid-ratio 0.1 --seed 3 \
    --output data.h5 > /dev/null 2>&1
}

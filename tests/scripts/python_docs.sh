#!/usr/bin/env bash
# python_docs.sh SOFTREC_BIN PAGE.md WORKDIR: runs every ```python and ```sh
# block of PAGE.md (docs/python.md), in order, in one scratch directory:
# sh blocks with `softrec` on PATH as the built binary, python blocks with
# Debian's /usr/bin/python3. Fails on the first error, naming the block and
# the page's failing line. What the blocks print goes to WORKDIR/transcript.txt.
# Skips (77) when /usr/bin/python3 lacks h5py or numpy.
set -euo pipefail
bin=$(realpath "$1")
page=$(realpath "$2")
work=$3
py=/usr/bin/python3 # Debian's, where python3-h5py and python3-numpy live
if ! $py -c 'import h5py, numpy' 2> /dev/null; then
  echo "SKIP: $py lacks h5py or numpy (Debian: python3-h5py python3-numpy)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work/bin" "$work/blocks" "$work/run"
work=$(realpath "$work")
ln -s "$bin" "$work/bin/softrec" # the page writes `softrec ...`
export PATH="$work/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 SOFTREC_LOG=warn

# Extract: blocks/NN.py or NN.sh, and index lines "NN LANG FIRST_LINE" (the
# page's line of the block's first code line). Other fences are skipped whole.
awk -v dir="$work/blocks" '
  !fence && /^```/ { fence = 1; lang = substr($0, 4); if (lang == "python" || lang == "sh") {
                       n++; ext = lang == "python" ? "py" : "sh"; file = sprintf("%s/%02d.%s", dir, n, ext)
                       printf "" > file; printf "%02d %s %d\n", n, ext, NR + 1 > (dir "/index") } else file = ""
                     next }
  fence && /^```[ \t]*$/ { fence = 0; if (file != "") close(file); file = ""; next }
  fence && file != "" { print > file }
  END { if (fence) { print "unterminated code fence" > "/dev/stderr"; exit 1 } }' "$page"
[[ -s $work/blocks/index ]] || { echo "FAIL: no python or sh blocks in $page" >&2; exit 1; }

# fail N FIRST LINE_IN_BLOCK OUTPUT: the block, the page line and its text.
fail() {
  local n=$1 first=$2 l=$3 out=$4 at=$(($2 + $3 - 1))
  echo "FAIL: block $n (page lines from $first), ${page##*/}:$at: $(sed -n "${at}p" "$page")" >&2
  tail -n 20 "$out" >&2
  exit 1
}

start=$SECONDS
cd "$work/run"
: > "$work/transcript.txt"
while read -r n ext first; do
  src=$work/blocks/$n.$ext out=$work/blocks/$n.out
  echo "### block $n ($ext, ${page##*/}:$first)" >> "$work/transcript.txt"
  if [[ $ext == sh ]]; then
    # errexit + an ERR trap that records the block's line (the preamble is
    # line 1 of the file, so block line = LINENO - 1)
    { echo "set -eo pipefail; trap 'echo \$((LINENO - 1)) > \"$work/blocks/$n.line\"' ERR"; cat "$src"; } > "$src.run"
    if ! bash "$src.run" > "$out" 2>&1; then
      fail "$n" "$first" "$(cat "$work/blocks/$n.line" 2> /dev/null || echo 1)" "$out"
    fi
  else
    if ! $py "$src" > "$out" 2>&1; then
      # the innermost traceback frame in the block's own file
      l=$(grep -o "File \"$src\", line [0-9]*" "$out" | tail -n 1 | grep -o '[0-9]*$' || true)
      fail "$n" "$first" "${l:-1}" "$out"
    fi
  fi
  cat "$out" >> "$work/transcript.txt"
done < "$work/blocks/index"
echo "python_docs: $(wc -l < "$work/blocks/index") blocks of ${page##*/} ran in $((SECONDS - start)) s; output in $work/transcript.txt"

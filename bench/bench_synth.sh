#!/usr/bin/env bash
# bench_synth.sh: time "softrec data synth" at a fixed scale and print one
# JSON result line (docs/benchmarks.md "data synth").
#
# usage: bench/bench_synth.sh [SOFTREC_BINARY] [USERS ITEMS INTERACTIONS]
#   default binary: build/softrec; default scale 200000 users, 1000000 items,
#   10000000 interactions. The dataset goes to $BENCH_DIR (default /tmp) and
#   is removed afterwards. The result line compares the peak RSS with the size
#   the interaction list would take in RAM (M x 8 bytes x 2 arrays, user and
#   item ids), which the generator never holds.
set -euo pipefail

bin=${1:-build/softrec}
users=${2:-200000}
items=${3:-1000000}
interactions=${4:-10000000}
dir=${BENCH_DIR:-/tmp}
out="$dir/bench_synth.$$.h5"
trap 'rm -f "$out" "$out".tmp.*' EXIT

[ -x "$bin" ] || { echo "bench_synth: $bin is not an executable (build first)" >&2; exit 2; }

summary=$("$bin" data synth --users "$users" --items "$items" --interactions "$interactions" \
          --output "$out" --force --json --progress 5)
file_bytes=$(stat -c %s "$out")

# jansson wrote the summary; reshape it into the benchmark line.
/usr/bin/python3 - "$summary" "$file_bytes" "$interactions" <<'PY'
import json, platform, sys
s = json.loads(sys.argv[1])
file_bytes, target = int(sys.argv[2]), int(sys.argv[3])
mb = 1 << 20
list_bytes = s["interactions"] * 8 * 2
print(json.dumps({
    "bench": "synth",
    "host": platform.node(),
    "users": s["users"], "items": s["items"],
    "target_interactions": target, "interactions": s["interactions"],
    "seconds": round(s["seconds"], 3), "cpu_seconds": round(s["cpu_seconds"], 3),
    "catalogue_seconds": round(s["build_seconds"], 3),
    "interactions_per_s": round(s["interactions_per_s"]),
    "peak_rss_mb": round(s["peak_rss_mb"], 1),
    "catalogue_mb": round(s["catalogue_bytes"] / mb, 1),
    "interaction_list_mb": round(list_bytes / mb, 1),
    "rss_over_list": round(s["peak_rss_mb"] / (list_bytes / mb), 3),
    "file_mb": round(file_bytes / mb, 1),
}))
PY

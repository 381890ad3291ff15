#!/bin/bash
# `make data` (ingest + rebuild) against a baseline revision, interleaved, with wall time,
# CPU time and peak memory of each step, and the ratio of the totals per pair.
#   benchmarks/bench_data.sh [BASE_REV] [PAIRS] [DUMPS]
# BASE_REV defaults to fcb064c (the code before issue 13); DUMPS to ../shared's nZEDb dumps.
# Needs GNU time (/usr/bin/time). Writes only under a temporary folder.
set -euo pipefail
BASE=${1:-fcb064c}; PAIRS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUMPS=${3:-$ROOT/../shared/data/raw/nzedb-predb-dumps}
PY=$ROOT/.venv/bin/python
TMP=$(mktemp -d); trap 'git -C "$ROOT" worktree remove --force "$TMP/base" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git -C "$ROOT" worktree add --detach "$TMP/base" "$BASE" >/dev/null 2>&1
one() {  # one() SRC TAG -> prints "seconds" of ingest + build, details on stderr
  local src=$1 tag=$2 t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "$tag ingest wall %e s cpu %U+%S s maxrss %M KB" env PYTHONPATH="$src/src" "$PY" -c \
    "import sys; from raidstudy.cli import main; sys.exit(main(['ingest', '$DUMPS', '--out', '$TMP/$tag/interim', '--quiet']))" >&2
  /usr/bin/time -f "$tag build wall %e s cpu %U+%S s maxrss %M KB" env PYTHONPATH="$src/src" "$PY" -c \
    "import sys; from raidstudy.cli import main; sys.exit(main(['build', '--releases', '$TMP/$tag/interim', '--out', '$TMP/$tag/processed', '--quiet']))" >&2
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
for i in $(seq "$PAIRS"); do
  b=$(one "$TMP/base" base$i); n=$(one "$ROOT" new$i)
  echo "pair $i: base $b s, this tree $n s, ratio $(echo "scale=3; $n / $b" | bc) (target <= 1.2)"
done
uptime >&2

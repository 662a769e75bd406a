#!/usr/bin/env bash
# A/B of two chronik builds on one row, alternating (docs/benchmarks.md, "The non-transactional
# rows after transactions"): each build is a checkout with its release binary built
# (`cargo build --release`) and its own bench harness, so that old builds run with the flags
# they know.
#
#   bash benches/throughput/ab.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS] [TARGET] [ROW]
#   e.g. git worktree add /tmp/old ac08fa9 && (cd /tmp/old && cargo build --release) &&
#        ln -s "$PWD/.deps" /tmp/old/.deps && bash benches/throughput/ab.sh /tmp/old "$PWD" 4
#
# Prints one bench line per run, prefixed "A i" or "B i"; compare the medians.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-4} TARGET=${4:-chronik-3} ROW=${5:-pagecache}
for i in $(seq "$ROUNDS"); do
  for side in A B; do
    dir=$A; [ "$side" = B ] && dir=$B
    (cd "$dir" && CHRONIK_BIN="$dir/target/release/chronik-server" .deps/venv/bin/python \
      benches/throughput/bench.py --targets "$TARGET" --rows "$ROW" --reps 1 --scale '' \
      --rss-partitions 0 --no-docs 2>&1 | grep "\] $ROW-$TARGET" | sed "s/^/$side $i /") || true
  done
done

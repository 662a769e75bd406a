#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time and prints its executions.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 25 s, every target)
#
# Needs `cargo +nightly fuzz` (rustup toolchain install nightly; cargo install cargo-fuzz). Each
# target starts from its committed seed corpus (fuzz/corpus/<target>); what libFuzzer finds goes to
# a scratch corpus (fuzz/scratch/<target>, git-ignored), so the committed corpus stays small. A
# crash stops that target with its input in fuzz/artifacts/<target>/: turn it into a regression
# (fuzz/regressions/<target>/), fix it, and `cargo test --test fuzz_corpus` keeps it fixed.
# Exit status: non-zero if any target crashed or could not run.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-25}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(kafka_request request_body record_batch peer_frame meta_command sasl)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "!!!! cargo +nightly fuzz is not available (rustup toolchain install nightly; cargo install cargo-fuzz)"
    exit 2
fi
mkdir -p fuzz/scratch
if ! cargo +nightly fuzz build -O >fuzz/scratch/build.log 2>&1; then
    tail -30 fuzz/scratch/build.log
    echo "!!!! the fuzz targets do not build"
    exit 2
fi
FAILED=()
RESULTS=()
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/scratch/$t" "fuzz/artifacts/$t"
    log="fuzz/scratch/$t.log"
    echo "==== fuzz $t for ${SECS}s"
    # -rss_limit_mb / -malloc_limit_mb: a single allocation over 512 MiB is a finding (the
    # decoders see at most a 100 MiB request); -timeout: one input may not take 10 s.
    cargo +nightly fuzz run -O "$t" "fuzz/scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
    if [ $rc -ne 0 ]; then
        grep -E 'SUMMARY|ERROR|panicked|Test unit written' "$log" | head -5
        FAILED+=("$t")
        RESULTS+=("CRASH   $t: ${execs:-?} executions, see $log and fuzz/artifacts/$t/")
    else
        RESULTS+=("ok      $t: ${execs:-?} executions in ${SECS}s")
    fi
done
echo "==== fuzz summary"
printf '  %s\n' "${RESULTS[@]}"
[ ${#FAILED[@]} -eq 0 ]

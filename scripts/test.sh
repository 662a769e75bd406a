#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run execs this):
#   1. scripts/install-test-deps.sh   (kcat, .deps/venv, Kafka Java tools)
#   2. cargo fmt --all -- --check
#   3. cargo clippy --all-targets -- -D warnings
#   4. cargo test --all-targets        (all Rust tiers, the fuzz corpus and its regressions included;
#                                        the criterion micro-benchmarks of benches/micro.rs run once
#                                        each as tests here, so no separate bench-profile build)
#   4a. the multi-node in-process tests again with CHRONIK_TEST_PEER_TLS=1: mutual TLS between the
#       nodes (tests/common/peer_tls.rs; start_cluster proves each raft listener speaks mTLS)
#   4b. scripts/fuzz.sh                 (each cargo-fuzz target for FUZZ_SECONDS, default 10 s, when
#                                        `cargo +nightly fuzz` is available; otherwise says so loudly)
#   5. cargo build --release
#   6. pytest tests/interop             (real clients against target/release/chronik-server)
#   8. tests/interop/fault_checker.py   (short fault schedule, FAULT_CHECKER_FAULTS=12 faults, on a
#                                        3-node cluster; network cuts need root for namespaces)
#   8a. the same with --transactional  (FAULT_CHECKER_TXN_FAULTS=8 faults: transactions committed and
#                                        aborted under faults, checked with a read_committed read-back)
# Every step runs even if an earlier one failed (the interop step needs step 5); the exit code is
# non-zero if any step failed. A summary of the steps and their durations is printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS
FAILED=()
SUMMARY=()

run_step() {  # NAME CMD...
    local name=$1; shift
    local t=$SECONDS
    echo
    echo "==== [${name}] $* (at +$((SECONDS - T0))s)"
    if "$@"; then
        SUMMARY+=("ok      $((SECONDS - t))s  $name")
        return 0
    else
        local rc=$?
        SUMMARY+=("FAILED  $((SECONDS - t))s  $name (exit $rc)")
        FAILED+=("$name")
        return "$rc"
    fi
}

ensure_rust_component() {  # COMPONENT PROBE-CMD...
    local comp=$1; shift
    "$@" --version >/dev/null 2>&1 && return 0
    echo "---- $comp missing: rustup component add $comp"
    timeout 300 rustup component add "$comp" || true
    "$@" --version >/dev/null 2>&1
}

run_step install-test-deps bash scripts/install-test-deps.sh

if ensure_rust_component rustfmt cargo fmt; then
    run_step fmt cargo fmt --all -- --check
else
    echo "!!!! SKIPPING cargo fmt --check: rustfmt is not installed and rustup could not install it"
    SUMMARY+=("SKIPPED      fmt (rustfmt unavailable)")
fi
if ensure_rust_component clippy cargo clippy; then
    run_step clippy cargo clippy --all-targets -- -D warnings
else
    echo "!!!! SKIPPING cargo clippy: clippy is not installed and rustup could not install it"
    SUMMARY+=("SKIPPED      clippy (clippy unavailable)")
fi

run_step cargo-test cargo test --all-targets

# The same cluster tests, unchanged, over peer mTLS. tests/peer_validation.rs is left out: it
# writes plaintext garbage to the raft port on purpose.
PEER_TLS_TESTS=(cluster groups stability meta_snapshots delete_records topic_configs metrics_dashboard
    acl admin_api compaction disk_faults peer_tls transactions txn_coordinator membership)
run_step cargo-test-peer-mtls env CHRONIK_TEST_PEER_TLS=1 cargo test "${PEER_TLS_TESTS[@]/#/--test=}"

# Fuzzing needs nightly and cargo-fuzz. Without them only the corpus runs (tests/fuzz_corpus.rs, in
# the cargo-test step above), and the summary says so.
if cargo +nightly --version >/dev/null 2>&1 && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "---- cargo-fuzz missing: cargo install cargo-fuzz"
    timeout 600 cargo install cargo-fuzz || true
fi
if cargo +nightly fuzz --version >/dev/null 2>&1; then
    run_step fuzz bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
else
    echo "!!!! NOT FUZZING: \`cargo +nightly fuzz\` is unavailable (needs a nightly toolchain and cargo-fuzz)."
    echo "!!!! Only the seed corpus and the saved crash inputs ran, as tests/fuzz_corpus.rs in cargo-test."
    SUMMARY+=("SKIPPED      fuzz (no nightly/cargo-fuzz: corpus tests only)")
fi

if run_step build-release cargo build --release; then
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    export CHRONIK_BIN=${CHRONIK_BIN:-$TARGET_DIR/release/chronik-server}
    if [ -n "${EXTERNAL_BOOTSTRAP:-}" ]; then
        echo "!!!! EXTERNAL_BOOTSTRAP=$EXTERNAL_BOOTSTRAP is set: interop tests run against that broker"
    fi
    rm -rf tests/interop/.work
    run_step interop "$ROOT/.deps/venv/bin/python" -m pytest -v --durations=30 tests/interop \
        --basetemp="$ROOT/tests/interop/.work"
    # A random seed each run (printed, with the faults it chose) finds more over time; rerun one
    # with: .deps/venv/bin/python tests/interop/fault_checker.py --faults 12 --seed SEED
    run_step fault-checker timeout 240 "$ROOT/.deps/venv/bin/python" tests/interop/fault_checker.py \
        --faults "${FAULT_CHECKER_FAULTS:-12}" --seed "${FAULT_CHECKER_SEED:-$RANDOM}"
    run_step fault-checker-txn timeout 240 "$ROOT/.deps/venv/bin/python" tests/interop/fault_checker.py \
        --transactional --faults "${FAULT_CHECKER_TXN_FAULTS:-8}" --seed "${FAULT_CHECKER_SEED:-$RANDOM}"
else
    echo "!!!! not running tests/interop nor the fault checker: the release build failed"
    SUMMARY+=("FAILED       interop (not run: no release build)")
    SUMMARY+=("FAILED       fault-checker (not run: no release build)")
    SUMMARY+=("FAILED       fault-checker-txn (not run: no release build)")
    FAILED+=("interop" "fault-checker" "fault-checker-txn")
fi

echo
echo "==== summary ($((SECONDS - T0))s in all)"
printf '  %s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED steps: ${FAILED[*]}"
    exit 1
fi
echo "all steps passed"

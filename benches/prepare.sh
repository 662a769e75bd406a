# Sourced by each benchmark's run.sh (benches/<name>/run.sh): from the repository root, installs
# what the benchmarks need (scripts/install-test-deps.sh: Java, the Kafka client tools and the
# Python venv; scripts/install-kafka-broker.sh: the Apache Kafka broker jars), builds chronik
# (cargo build --release) and exports CHRONIK_BIN. Sets ROOT (the repository) and T0 (for the
# "done in" line).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
T0=$SECONDS
bash scripts/install-test-deps.sh
bash scripts/install-kafka-broker.sh
cargo build --release
export CHRONIK_BIN=${CHRONIK_BIN:-$ROOT/target/release/chronik-server}

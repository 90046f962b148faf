#!/usr/bin/env bash
# The benchmark command: builds the release proxy and the latency probe, then compares direct,
# kafka-durability-proxy (enforcing and audit-only), haproxy and tansu proxy in one run, and
# rewrites docs/benchmarks.md. Not a test: it takes several minutes and measures, not asserts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib 2>/dev/null || python3 -m pip install -q --break-system-packages matplotlib
cargo build --release --locked --bin kafka-durability-proxy --example probe
exec python3 bench/bench.py "$@"

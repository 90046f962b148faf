#!/usr/bin/env bash
# The benchmark command: builds the release proxy, the null-sink broker and the latency probe,
# then measures every path (direct, haproxy, the proxy, TLS, other proxy builds) against the
# null sink and tansu in paired rounds, and rewrites docs/benchmarks.md and docs/benchmarks.png.
# Not a test: the default run takes about half an hour and measures, not asserts. Options:
# bench/bench.py --help (e.g. --rounds 5 --seconds 5 --proxy-bin old=/path/to/kafka-durability-proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib 2>/dev/null || python3 -m pip install -q --break-system-packages matplotlib
cargo build --release --locked --bin kafka-durability-proxy --example probe --example nullsink
exec python3 bench/bench.py "$@"

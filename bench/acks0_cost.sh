#!/usr/bin/env bash
# The cost of holding upgraded acks=0 requests for redelivery (bench/acks0_cost.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --bin kafka-durability-proxy
exec python3 bench/acks0_cost.py "$@"

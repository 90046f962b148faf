#!/usr/bin/env bash
# Fire-and-forget durability under broker kills, direct vs through the proxy (bench/durability.py).
# Not a test: it takes minutes and measures; the table it prints goes into docs/durability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --bin kafka-durability-proxy
exec python3 bench/durability.py "$@"

#!/usr/bin/env bash
# The whole test suite: unit tests, and integration tests that run the proxy binary in front of
# a real tansu broker with confluent-kafka, kafka-python and kcat, and in front of a scripted
# fake broker. Installs what it needs first (skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --locked --all-targets 2>&1

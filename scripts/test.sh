#!/usr/bin/env bash
# The whole test suite: unit tests, the layout rules, and integration tests that run the proxy
# binary in front of a real tansu broker with confluent-kafka, kafka-python and kcat, and in front
# of a scripted fake broker; then clippy with the crate's lints. Installs what it needs first
# (skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --locked --all-targets 2>&1
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --all-targets -- -D warnings 2>&1
else
  echo "test.sh: cargo clippy is not installed here; lints not checked" >&2
fi

#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmark need, skipping what is already there:
# Python clients (confluent-kafka bundles librdkafka; kafka-python; prometheus-client, the
# parser the metrics tests read /metrics with), kcat, haproxy, Prometheus (its server and promtool
# check the admin endpoint) and the Go clients (Sarama 1.22, kafka-go 0.2.1) from Debian,
# the tansu broker from crates.io (about 10 minutes the first time), and what deploy/ is validated
# with: kubectl (its `kustomize` renders the Kubernetes base offline) and the npm packages pinned in
# deploy/package-lock.json (Kubernetes API schemas for deploy/validate.mjs).
set -euo pipefail

TANSU_VERSION=0.6.0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# kubectl: the machine image carries a current one; Debian's kubernetes-client is the fallback.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Go clients for tests/clients/go (built offline in GOPATH mode against /usr/share/gocode).
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] || need_apt+=(golang-github-shopify-sarama-dev)
[ -d /usr/share/gocode/src/github.com/segmentio/kafka-go ] || need_apt+=(golang-github-segmentio-kafka-go-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import confluent_kafka, kafka, prometheus_client' >/dev/null 2>&1; then
  echo "setup: pip install confluent-kafka kafka-python prometheus-client"
  pkgs=(confluent-kafka==2.16.1 kafka-python==3.0.12 prometheus-client==0.26.0)
  # A Debian system Python refuses plain installs (PEP 668); a pyenv/venv Python does not.
  python3 -m pip install -q "${pkgs[@]}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${pkgs[@]}"
fi

deploy_dir="$(cd "$(dirname "$0")/../deploy" && pwd)"
if ! (cd "$deploy_dir" && npm ls --omit=dev >/dev/null 2>&1); then
  echo "setup: npm ci in deploy/ (kubernetes-models, @kubernetes/client-node, js-yaml)"
  (cd "$deploy_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

tansu_bin="${TANSU_BIN:-$HOME/.cargo/bin/tansu}"
if [ ! -x "$tansu_bin" ] && ! command -v tansu >/dev/null 2>&1; then
  echo "setup: cargo install tansu $TANSU_VERSION (about 10 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi
echo "setup: ready"

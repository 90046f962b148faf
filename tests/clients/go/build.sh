#!/usr/bin/env bash
# Builds the Go test drivers (kafkago-client, sarama-client) into a cache directory, offline, in
# GOPATH mode against Debian's /usr/share/gocode; skips a program whose binary is newer than its
# source. Usage: tests/clients/go/build.sh [OUTDIR] (default target/go-clients). Prints OUTDIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-target/go-clients}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' not found: install Debian's golang-go (scripts/setup.sh does)" >&2
  exit 1
fi
gocode=/usr/share/gocode/src/github.com
for pkg in segmentio/kafka-go Shopify/sarama; do
  if [ ! -d "$gocode/$pkg" ]; then
    echo "build.sh: $gocode/$pkg missing: install golang-github-segmentio-kafka-go-dev and golang-github-shopify-sarama-dev (scripts/setup.sh does)" >&2
    exit 1
  fi
done

# GOPATH mode, no network: imports resolve from Debian's tree; the build cache stays in OUTDIR.
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOCACHE="$out/.gocache"
# DataDog/zstd (a Sarama dependency, cgo) calls a deprecated zstd function: keep the build quiet.
export CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations"

for prog in kafkago sarama; do
  bin="$out/$prog-client"
  if [ -x "$bin" ] && [ -z "$(find "$here/$prog" "$here/build.sh" -newer "$bin" -print -quit)" ]; then
    continue
  fi
  echo "build.sh: building $bin" >&2
  (cd "$here/$prog" && go build -o "$bin" .)
done
echo "$out"

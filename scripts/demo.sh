#!/usr/bin/env bash
# The proxy's main job, end to end: a local tansu broker, the proxy in front of it, two legacy
# producers that send with acks=0 (librdkafka via confluent-kafka) and acks=1 (kafka-python),
# then the audit lines the proxy wrote and every record read back through the proxy.
# Ports (override by env): BROKER_PORT=9092 PROXY_PORT=19092 PROXY_NODE_PORT=19211.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

BROKER_PORT=${BROKER_PORT:-9092}
PROXY_PORT=${PROXY_PORT:-19092}
PROXY_NODE_PORT=${PROXY_NODE_PORT:-19211}
N=${N:-25}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== building the proxy"
cargo build --release --locked --bin kafka-durability-proxy 2>&1 | tail -1
proxy=target/release/kafka-durability-proxy

wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

echo "== starting tansu on 127.0.0.1:$BROKER_PORT (in-memory storage)"
(cd "$work" && exec tansu broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1) &
pids+=($!)
wait_port "$BROKER_PORT"

cat >"$work/proxy.yaml" <<YAML
listen:
  bind_host: 127.0.0.1
  advertised_host: 127.0.0.1
  bootstrap_port: $PROXY_PORT
  broker_ports: {111: $PROXY_NODE_PORT}   # tansu is node 111
upstream:
  bootstrap_servers: ["127.0.0.1:$BROKER_PORT"]
policies:
  produce_acks:
    action: upgrade
audit:
  sink: file
  path: $work/audit.jsonl
  window_secs: 2
YAML
echo "== starting the proxy on 127.0.0.1:$PROXY_PORT (config: $work/proxy.yaml)"
"$proxy" --config "$work/proxy.yaml" 2>"$work/proxy.log" &
proxy_pid=$!
pids+=($proxy_pid)
wait_port "$PROXY_PORT"
wait_port "$PROXY_NODE_PORT"

k="python3 tests/clients/kclient.py"
echo "== an admin tool asks for a topic with replication factor 1: the proxy refuses it"
$k create-topics --bootstrap "127.0.0.1:$PROXY_PORT" --spec '[{"name": "demo-fragile", "rf": 1}]'
echo "== creating topic demo-orders through the proxy (RF 3, min.insync.replicas 2: allowed)"
$k create-topics --bootstrap "127.0.0.1:$PROXY_PORT" --spec '[{"name": "demo-orders", "rf": 3, "configs": {"min.insync.replicas": "2"}}]'
echo "== the brokers a client learns through the proxy (proxy addresses only)"
$k metadata --bootstrap "127.0.0.1:$PROXY_PORT"
echo "== legacy app 1: confluent-kafka, acks=0, client.id=legacy-fire-and-forget, $N records"
$k produce --lib confluent --bootstrap "127.0.0.1:$PROXY_PORT" --topic demo-orders --acks 0 \
  --client-id legacy-fire-and-forget --prefix acks0 --count "$N" --one-per-request
echo "== legacy app 2: kafka-python, acks=1, client.id=legacy-leader-only, $N records"
$k produce --lib kafka-python --bootstrap "127.0.0.1:$PROXY_PORT" --topic demo-orders --acks 1 \
  --client-id legacy-leader-only --prefix acks1 --count "$N" --one-per-request
echo "== a well-configured app: confluent-kafka, acks=all (not audited)"
$k produce --lib confluent --bootstrap "127.0.0.1:$PROXY_PORT" --topic demo-orders --acks all \
  --client-id good-app --prefix good --count "$N"

echo "== reading everything back through the proxy"
total=$((3 * N))
$k consume --bootstrap "127.0.0.1:$PROXY_PORT" --topic demo-orders --expect "$total" --group demo \
  | python3 -c "import json,sys; r=json.load(sys.stdin); print(f'read back {r[\"count\"]} of $total records'); sys.exit(0 if r['count']==$total else 1)"

kill -TERM "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
echo "== audit log ($work/audit.jsonl): first sight of each weak producer, then a summary count"
cat "$work/audit.jsonl"
echo "== done: every acks=0/acks=1 request reached the broker as acks=all (see the tests for the"
echo "   broker-side proof); the proxy's own log is $work/proxy.log"

#!/usr/bin/env python3
"""One benchmark measurement with confluent-kafka (librdkafka): produce or consume records of SIZE
bytes through BOOTSTRAP for SECONDS (or until COUNT records), then print {"secs", "records",
"bytes"} as JSON. Run as its own process so every measurement starts from a fresh client. The
clock starts after a warm-up (metadata, connections, the first fetched batch), so a measurement
times the data path, not the client's start. Consumers use assign(): the null-sink broker has no
group membership. With --ca the client speaks TLS and verifies the broker against that CA."""

import argparse
import json
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def security(a):
    if not a.ca:
        return {}
    return {"security.protocol": "SSL", "ssl.ca.location": a.ca}


def produce(a):
    failed = []
    # Delivery reports only for failures: a Python callback per record would make the client,
    # not the path, the bottleneck.
    p = Producer({"bootstrap.servers": a.bootstrap, "acks": a.acks, "linger.ms": 5, "enable.idempotence": False,
                  "client.id": f"bench-acks{a.acks}", "queue.buffering.max.kbytes": 1048576,
                  "delivery.report.only.error": True, "on_delivery": lambda err, _m: failed.append(err),
                  **security(a)})
    value = b"x" * a.size
    # Warm up: metadata and connections before the clock starts.
    p.produce(a.topic, value=value)
    p.flush(30)
    produce_one = p.produce
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + a.seconds if a.seconds else None
    while n < a.count:
        step = min(1000, a.count - n)
        for _ in range(step):
            while True:
                try:
                    produce_one(a.topic, value)
                    break
                except BufferError:  # the local queue is full: let librdkafka drain it
                    p.poll(0.005)
        n += step
        if deadline and time.perf_counter() >= deadline:
            break
    left = p.flush(120)
    secs = time.perf_counter() - t0
    if left or failed:
        raise SystemExit(f"produce failed: {left} undelivered, errors: {failed[:3]}")
    print(json.dumps({"secs": secs, "records": n, "bytes": n * a.size}))


def consume(a):
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760,
                  # When the local queue is full, look again soon: the default (1 s) stalls a consumer that
                  # drains it faster, which made fast paths look slow.
                  "fetch.queue.backoff.ms": 10, **security(a)})
    c.assign([TopicPartition(a.topic, 0, 0)])
    # Warm up: wait for the first record (its fetch brings a whole batch), then time the rest.
    give_up = time.time() + 60
    first = []
    while not first and time.time() < give_up:
        first = [m for m in c.consume(num_messages=1, timeout=1.0) if m.error() is None]
    if not first:
        raise SystemExit("consumed nothing within 60 s")
    n = nbytes = 0
    t0 = time.perf_counter()
    deadline = t0 + a.seconds if a.seconds else t0 + 300
    want = a.count - 1
    while n < want and time.perf_counter() < deadline:
        # A short timeout: the last call must not run far past the deadline.
        for m in c.consume(num_messages=min(10000, want - n), timeout=0.1):
            if m.error():
                continue
            n += 1
            nbytes += len(m)
    secs = time.perf_counter() - t0
    c.close()
    if (want > 0 and n == 0) or (not a.seconds and n < want):
        raise SystemExit(f"consumed only {n} of {want}")
    print(json.dumps({"secs": secs, "records": n, "bytes": nbytes}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=10**12, help="stop after this many records")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: only --count)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--ca", help="PEM CA file: speak TLS and verify the broker with it")
    a = ap.parse_args()
    (produce if a.mode == "produce" else consume)(a)


if __name__ == "__main__":
    main()

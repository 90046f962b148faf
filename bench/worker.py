#!/usr/bin/env python3
"""One benchmark measurement with confluent-kafka (librdkafka): produce or consume N records of
SIZE bytes through BOOTSTRAP; prints {"secs", "records", "bytes"} as JSON. Run as its own process
so every measurement starts from a fresh client."""

import argparse
import json
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def produce(a):
    failed = []
    # Delivery reports only for failures: a Python callback per record would make the client,
    # not the path, the bottleneck.
    p = Producer({"bootstrap.servers": a.bootstrap, "acks": a.acks, "linger.ms": 5, "enable.idempotence": False,
                  "client.id": f"bench-acks{a.acks}", "queue.buffering.max.kbytes": 1048576,
                  "delivery.report.only.error": True, "on_delivery": lambda err, _m: failed.append(err)})
    value = b"x" * a.size
    # Warm up: metadata and connections before the clock starts.
    p.produce(a.topic, value=value)
    p.flush(30)
    produce_one = p.produce
    t0 = time.perf_counter()
    for _ in range(a.count):
        try:
            produce_one(a.topic, value)
        except BufferError:
            p.poll(0.01)
            produce_one(a.topic, value)
    left = p.flush(120)
    secs = time.perf_counter() - t0
    if left or failed:
        raise SystemExit(f"produce failed: {left} undelivered, errors: {failed[:3]}")
    print(json.dumps({"secs": secs, "records": a.count, "bytes": a.count * a.size}))


def consume(a):
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
    t0 = time.perf_counter()
    c.assign([TopicPartition(a.topic, 0, 0)])
    n = nbytes = 0
    deadline = time.time() + 300
    while n < a.count and time.time() < deadline:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if m.error():
                continue
            n += 1
            nbytes += len(m.value())
    secs = time.perf_counter() - t0
    c.close()
    if n < a.count:
        raise SystemExit(f"consumed only {n} of {a.count}")
    print(json.dumps({"secs": secs, "records": n, "bytes": nbytes}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="all")
    a = ap.parse_args()
    (produce if a.mode == "produce" else consume)(a)


if __name__ == "__main__":
    main()

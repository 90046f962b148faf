#!/usr/bin/env python3
"""Numbered records for the fleet tests, with confluent-kafka (librdkafka): `produce` writes the
values 0..N-1 at a steady rate and prints which of them the client was told were written;
`read` prints every value in the topic (all partitions, from offset 0), duplicates included."""

import argparse
import json
import time


def produce(a):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": a.bootstrap, "acks": a.acks, "linger.ms": 5, "client.id": a.client_id,
                  "enable.idempotence": False, "message.timeout.ms": 120000, "reconnect.backoff.max.ms": 500})
    acked, errors, sent, latency = [], {}, {}, []

    def report(err, msg):
        if err is None:
            v = int(msg.value())
            acked.append(v)
            latency.append(time.time() - sent.pop(v, time.time()))
        else:
            errors[err.name()] = errors.get(err.name(), 0) + 1

    t0 = time.time()
    for i in range(a.count):
        while True:
            try:
                sent[i] = time.time()
                p.produce(a.topic, value=str(i).encode(), on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        ahead = (i + 1) / a.rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    left = p.flush(150)
    latency.sort()
    pct = {f"p{q}_ms": round(latency[min(len(latency) - 1, int(len(latency) * q / 100))] * 1000, 1) for q in (50, 99)} if latency else {}
    print(json.dumps({"acked": acked, "errors": errors, "left": left, "secs": round(time.time() - t0, 1),
                      "latency": {**pct, "max_ms": round(latency[-1] * 1000, 1) if latency else None}}))


def read(a):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": f"read-{time.time()}", "enable.auto.commit": False})
    meta = c.list_topics(a.topic, timeout=30)
    c.assign([TopicPartition(a.topic, p, 0) for p in meta.topics[a.topic].partitions])
    values, idle = [], time.time()
    while time.time() - idle < a.idle and len(values) < a.expect:
        for m in c.consume(num_messages=10000, timeout=0.5):
            if not m.error():
                values.append(int(m.value()))
                idle = time.time()
    c.close()
    print(json.dumps({"values": values}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "read"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--rate", type=float, default=2500)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--client-id", default="numbered")
    ap.add_argument("--expect", type=int, default=1 << 60)
    ap.add_argument("--idle", type=float, default=8)
    a = ap.parse_args()
    produce(a) if a.mode == "produce" else read(a)


if __name__ == "__main__":
    main()

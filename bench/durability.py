#!/usr/bin/env python3
"""Fire-and-forget under broker failures: a confluent-kafka (librdkafka) producer with acks=0
writes M numbered records while a tansu broker with durable sqlite storage is SIGKILLed and
restarted K times; afterwards every record is read back and counted (distinct, lost, duplicated).
Direct to the broker and through kafka-durability-proxy (acks upgraded, redelivery on), in one
run, same workload. Writes docs/durability.md (and bench/durability.json).

Usage: bench/durability.sh [--records M] [--kills K] [--partitions P] [--paths direct,proxy]
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PROXY_BIN, ROOT, TANSU, free_port, wait_port  # noqa: E402

TOPIC = "numbered"


class Broker:
    """tansu on sqlite in `work`: killed with SIGKILL and restarted on the same file and port."""

    def __init__(self, work, port):
        self.work, self.port, self.proc, self.starts = work, port, None, 0

    def start(self):
        self.starts += 1
        log = open(self.work / f"tansu-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}", "--storage-engine", "sqlite://tansu.db"],
            cwd=self.work, stdout=log, stderr=log)
        wait_port(self.port, "tansu")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def create_topic(bootstrap, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(TOPIC, num_partitions=partitions, replication_factor=3,
                                        config={"min.insync.replicas": "2"})])
    for f in fut.values():
        f.result(30)


PRODUCER = r"""
import sys, time
from confluent_kafka import Producer
bootstrap, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "acks": 0, "linger.ms": 5, "client.id": "fire-and-forget",
              "enable.idempotence": False, "reconnect.backoff.max.ms": 1000, "message.timeout.ms": 600000})
errors = []
t0 = time.time()
for i in range(count):
    while True:
        try:
            p.produce("numbered", value=str(i).encode(), on_delivery=lambda e, m: e and errors.append(str(e)))
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
    ahead = (i + 1) / rate - (time.time() - t0)
    if ahead > 0:
        time.sleep(ahead)
left = p.flush(600)
print(f"{count} produced, {left} left in the client, {len(errors)} delivery errors {errors[:3]}", flush=True)
"""


def read_back(bootstrap, partitions, expect):
    """Every record of the topic: {value: copies}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
    seen, eof, idle = {}, set(), time.time()
    while time.time() - idle < 10:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
                continue
            idle = time.time()
            v = int(m.value())
            seen[v] = seen.get(v, 0) + 1
        if len(eof) == partitions and sum(seen.values()) >= expect:
            break
    c.close()
    return seen


def run_path(path, a, work):
    work.mkdir(parents=True)
    broker = Broker(work, free_port())
    broker.start()
    procs, admin = [], None
    bootstrap = f"127.0.0.1:{broker.port}"
    if path == "proxy":
        port, admin = free_port(), free_port()
        cfg = work / "proxy.yaml"
        cfg.write_text(
            f"listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {port}\n"
            f"  broker_ports: {{111: {free_port()}}}\nupstream:\n  bootstrap_servers: [\"{bootstrap}\"]\n"
            f"  connect_timeout_ms: 2000\n  request_timeout_ms: 10000\n"
            f"audit:\n  sink: file\n  path: {work / 'audit.jsonl'}\nadmin:\n  listen: 127.0.0.1:{admin}\n")
        log = open(work / "proxy.log", "w")
        procs.append(subprocess.Popen([str(PROXY_BIN), "--config", str(cfg)], stdout=log, stderr=log))
        wait_port(port, "proxy")
        bootstrap = f"127.0.0.1:{port}"
    create_topic(bootstrap, a.partitions)
    seconds = a.records / a.rate
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, bootstrap, str(a.records), str(a.rate)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    gap = seconds / (a.kills + 1)
    for k in range(a.kills):
        time.sleep(max(0.0, t0 + gap * (k + 1) - time.time()))
        broker.kill()
        time.sleep(a.down)
        broker.start()
    out, _ = producer.communicate(timeout=1200)
    produced_in = time.time() - t0
    held_wait = 0.0
    if admin:
        start = time.time()
        while metric(admin, "kdp_redelivery_held_requests") > 0 and time.time() - start < 300:
            time.sleep(0.2)
        held_wait = time.time() - start
    seen = read_back(bootstrap, a.partitions, a.records)
    result = {
        "path": path, "records": a.records, "kills": a.kills, "produce_secs": round(produced_in, 1),
        "distinct": len(seen), "lost": a.records - len([v for v in seen if 0 <= v < a.records]),
        "duplicates": sum(n - 1 for n in seen.values()), "producer": out.strip().splitlines()[-1:] if out else [],
    }
    if admin:
        for name in ["kdp_redelivered_records_total", "kdp_undelivered_records_total", "kdp_redelivery_retries_total",
                     "kdp_redelivery_reinits_total", "kdp_redelivery_backpressure_total"]:
            result[name] = metric(admin, name)
        result["unheld"] = sum(metric(admin, f'kdp_redelivery_unheld_requests_total{{reason="{r}"}}')
                               for r in ["unstampable", "no_producer_id"])
        result["held_drain_secs"] = round(held_wait, 1)
        undelivered = [json.loads(l) for l in (work / "audit.jsonl").read_text().splitlines() if '"undelivered"' in l]
        result["undelivered_events"] = len(undelivered)
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    broker.kill()
    print(json.dumps(result), flush=True)
    return result


def write_doc(runs, a):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    lines = [f"| {r['kills']} | {r['records']:,} | {r['path']} | {r['lost']:,} | {r['duplicates']:,} | "
             f"{r.get('kdp_redelivered_records_total', 0):,.0f} | {r.get('kdp_undelivered_records_total', 0):,.0f} | "
             f"{r.get('kdp_redelivery_reinits_total', 0):,.0f} |" for r in runs]
    table = ("| kills | records | path | lost | duplicates | re-sent by the proxy | given up (audited) | re-stamps |\n"
             "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines))
    stamp = (f"Measured {time.strftime('%Y-%m-%d')} at commit {commit} on {platform.node()} ({os.cpu_count()} cores, {cpu}); "
             f"command: `bench/durability.sh {' '.join(sys.argv[1:])}`")
    return stamp, table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--rate", type=float, default=2_000, help="records per second the producer writes")
    ap.add_argument("--down", type=float, default=1.0, help="seconds the broker stays down per kill")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--paths", default="direct,proxy")
    ap.add_argument("--out", default=str(ROOT / "bench" / "durability.json"))
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kdp-durability-"))
    runs = [run_path(p, a, base / p) for p in a.paths.split(",")]
    stamp, table = write_doc(runs, a)
    out = Path(a.out)
    previous = json.loads(out.read_text()) if out.exists() else []
    previous.append({"stamp": stamp, "runs": runs})
    out.write_text(json.dumps(previous, indent=1) + "\n")
    print(stamp)
    print(table)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What holding acks=0 requests for redelivery costs: a confluent-kafka producer at acks=0 writes N
records of SIZE bytes through the proxy upgrading acks (redeliver off: plain upgrade) and through
the proxy holding them (redeliver on), with direct to the broker as the reference; paired rounds,
rotating order, fresh tansu (memory) per measurement. The rate counted is records *in the broker*
(its high watermark reaching N) per second of wall time from the producer's start, so a path that
merely accepts bytes faster does not look faster. Prints a table for docs/benchmarks.md.

Usage: bench/acks0_cost.sh [--records N] [--size BYTES] [--rounds R]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PROXY_BIN, TANSU, WORKER, cpu_seconds, free_port, wait_port  # noqa: E402

PATHS = ["direct", "upgrade", "redeliver"]


class Bed:
    def __init__(self, path, work):
        self.procs, self.hop = [], None
        self.broker = free_port()
        self._spawn(work, "tansu", [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{self.broker}",
                                    "--advertised-listener-url", f"tcp://127.0.0.1:{self.broker}",
                                    "--storage-engine", "memory://tansu/"])
        wait_port(self.broker, "tansu")
        self.bootstrap = self.broker
        if path != "direct":
            self.bootstrap, node = free_port(), free_port()
            cfg = work / "proxy.yaml"
            cfg.write_text(
                f"listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {self.bootstrap}\n"
                f"  broker_ports: {{111: {node}}}\nupstream:\n  bootstrap_servers: ['127.0.0.1:{self.broker}']\n"
                f"policies:\n  produce_acks:\n    action: upgrade\n    redeliver: {'true' if path == 'redeliver' else 'false'}\n"
                f"audit:\n  sink: file\n  path: {work / 'audit.jsonl'}\nadmin:\n  listen: null\n")
            self.hop = self._spawn(work, "proxy", [str(PROXY_BIN), "--config", str(cfg)])
            wait_port(self.bootstrap, "proxy")
            wait_port(node, "proxy node listener")

    def _spawn(self, work, name, argv):
        p = subprocess.Popen(argv, cwd=work, stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT,
                             env={"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"})
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait(30)


def high_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def count_records(bootstrap, topic, want):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "count", "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, 0, 0)])
    n, idle = 0, time.time()
    while n < want and time.time() - idle < 5:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if not m.error():
                n += 1
                idle = time.time()
    c.close()
    return n


def measure(path, a):
    work = Path(tempfile.mkdtemp(prefix=f"acks0-{path}-"))
    bed = Bed(path, work)
    try:
        boot = f"127.0.0.1:{bed.bootstrap}"
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("a0", 1, 3, config={"min.insync.replicas": "2"})]).values():
            f.result(30)
        cpu0 = cpu_seconds(bed.hop.pid) if bed.hop else 0.0
        t0 = time.perf_counter()
        out = subprocess.run(WORKER + ["produce", "--bootstrap", boot, "--topic", "a0", "--count", str(a.records),
                                       "--size", str(a.size), "--acks", "0"], capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise SystemExit(out.stderr[-1000:])
        want = a.records + 1  # the worker's warm-up record
        # Until the partition's high watermark reaches every record, or stops moving for 3 s
        # (tansu's high watermark can trail what it stores: the records are counted by reading
        # them back below, after the clock stopped).
        got, last = 0, time.perf_counter()
        while got < want and time.perf_counter() - last < 3:
            now = high_watermark(f"127.0.0.1:{bed.broker}", "a0")
            if now != got:
                got, last = now, time.perf_counter()
            time.sleep(0.05)
        secs = last - t0
        cpu = (cpu_seconds(bed.hop.pid) - cpu0) if bed.hop else None
        got = count_records(f"127.0.0.1:{bed.broker}", "a0", want)
        gb = got * a.size / 1e9
        return {"secs": secs, "lost": want - got, "mb_s": got * a.size / secs / 1e6, "cpu_s_per_gb": cpu / gb if cpu is not None else None}
    finally:
        bed.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    rounds = []
    for r in range(a.rounds):
        order = PATHS[r % len(PATHS):] + PATHS[:r % len(PATHS)]
        got = {p: measure(p, a) for p in order}
        rounds.append(got)
        print(json.dumps({"round": r + 1, "order": order, **got}), flush=True)
    print("\n| path | MB/s in the broker (median, min-max) | × plain upgrade, paired median (min-max) | proxy CPU s per GB | records lost (all rounds) |")
    print("|---|---|---|---|---|")
    for p in PATHS:
        mbs = [r[p]["mb_s"] for r in rounds]
        ratio = [r[p]["mb_s"] / r["upgrade"]["mb_s"] for r in rounds]
        cpu = [r[p]["cpu_s_per_gb"] for r in rounds if r[p]["cpu_s_per_gb"] is not None]
        cpu_s = f"{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})" if cpu else "-"
        print(f"| {p} | {statistics.median(mbs):.0f} ({min(mbs):.0f}-{max(mbs):.0f}) | "
              f"{statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f}) | {cpu_s} | {sum(r[p]['lost'] for r in rounds)} |")


if __name__ == "__main__":
    main()

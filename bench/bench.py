#!/usr/bin/env python3
"""What does the hop cost? One run, same machine, same tansu binary, same client and workload,
every path: direct to the broker, through kafka-durability-proxy (enforcing, and audit-only),
through haproxy in TCP mode (the dumb L4 baseline) and through `tansu proxy` (a peer L7 proxy).
Paths alternate within each round (rotating order) and medians are reported, because ratios move
between runs. Writes docs/benchmarks.md and bench/results.json.

Usage: bench/run.sh [--records N] [--rounds R] [--idle K]
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, str(ROOT / "bench" / "worker.py")]
PROXY_BIN = ROOT / "target" / "release" / "kafka-durability-proxy"
PROBE_BIN = ROOT / "target" / "release" / "examples" / "probe"
TANSU = shutil.which("tansu") or str(Path.home() / ".cargo" / "bin" / "tansu")
CLK = os.sysconf("SC_CLK_TCK")
PATHS = ["direct", "haproxy", "proxy", "proxy-audit", "tansu-proxy"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} never listened on {port}")


def cpu_seconds(pid):
    """utime + stime of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def status_kib(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Bed:
    """tansu plus the hop for one path; `bootstrap` is what clients use."""

    def __init__(self, path, work):
        self.path, self.work, self.procs = path, work, []
        self.broker = free_port()
        self.hop_pid = None
        if path == "direct":
            self.bootstrap = self.broker
            advertised = self.broker
        elif path == "haproxy":
            self.bootstrap = advertised = free_port()
        else:
            self.bootstrap = free_port()
            advertised = self.broker
        self._spawn("tansu", [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{self.broker}",
                              "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
                              "--storage-engine", "memory://tansu/"])
        wait_port(self.broker, "tansu")
        if path == "haproxy":
            cfg = work / "haproxy.cfg"
            cfg.write_text(
                "global\n  maxconn 5000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n"
                f"  timeout server 120s\nfrontend f\n  bind 127.0.0.1:{self.bootstrap}\n  default_backend b\n"
                f"backend b\n  server s1 127.0.0.1:{self.broker}\n")
            self.hop_pid = self._spawn("haproxy", ["haproxy", "-db", "-f", str(cfg)])
        elif path == "tansu-proxy":
            self.hop_pid = self._spawn("tansu-proxy", [
                TANSU, "proxy", "--listener-url", f"tcp://127.0.0.1:{self.bootstrap}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.bootstrap}",
                "--origin-url", f"tcp://127.0.0.1:{self.broker}"])
        elif path.startswith("proxy"):
            node_port = free_port()
            action = "audit" if path == "proxy-audit" else "upgrade"
            cfg = work / "proxy.yaml"
            cfg.write_text(
                f"listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {self.bootstrap}\n"
                f"  broker_ports: {{111: {node_port}}}\nupstream:\n  bootstrap_servers: ['127.0.0.1:{self.broker}']\n"
                f"policies:\n  produce_acks:\n    action: {action}\n"
                f"audit:\n  sink: file\n  path: {work / 'audit.jsonl'}\n"
                f"admin:\n  listen: null\n")
            self.hop_pid = self._spawn("proxy", [str(PROXY_BIN), "--config", str(cfg)], env={"RUST_LOG": "warn"})
            wait_port(node_port, "proxy broker listener")
        if self.hop_pid:
            wait_port(self.bootstrap, path)

    def _spawn(self, name, argv, env=None):
        log = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(argv, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})})
        self.procs.append(p)
        return p.pid

    def cpu(self):
        return cpu_seconds(self.hop_pid) if self.hop_pid else 0.0

    def peak_rss_kib(self):
        return status_kib(self.hop_pid, "VmHWM") if self.hop_pid else 0

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def run_json(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def tansu_perf(bed, seconds):
    """`tansu perf` as a second, non-librdkafka generator: it prints no summary, so its rate is read
    from the partition's high watermark after an unthrottled run of `seconds`."""
    from confluent_kafka import Consumer, TopicPartition
    subprocess.run([TANSU, "perf", "--broker", f"tcp://127.0.0.1:{bed.bootstrap}", "bperf", "produce",
                    "--duration", f"{seconds}s", "--batch-size", "100", "--record-size", "1k"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"},
                   timeout=seconds + 60, check=True)
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{bed.bootstrap}", "group.id": "bench-hw"})
    _, high = c.get_watermark_offsets(TopicPartition("bperf", 0), timeout=30)
    c.close()
    return {"rec_s": high / seconds, "mb_s": high * 1024 / seconds / 1e6, "bytes": high * 1024}


def create_topics(bed, names):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{bed.bootstrap}"})
    # The durable shape the proxy's default topic rules require, on every path alike.
    topics = [NewTopic(n, 1, 3, config={"min.insync.replicas": "2"}) for n in names]
    for name, fut in admin.create_topics(topics).items():
        fut.result(30)


def measure_path(path, records, probe_rounds, perf_seconds):
    work = Path(tempfile.mkdtemp(prefix=f"bench-{path}-"))
    bed = Bed(path, work)
    try:
        boot = f"127.0.0.1:{bed.bootstrap}"
        create_topics(bed, ["b1k", "b100", "b1k-acks1", "bperf"])
        res, moved = {}, 0
        cpu0 = bed.cpu()
        for key, topic, size, acks in [("produce_1k", "b1k", 1024, "all"), ("produce_100b", "b100", 100, "all"),
                                        ("produce_1k_acks1", "b1k-acks1", 1024, "1")]:
            r = run_json(WORKER + ["produce", "--bootstrap", boot, "--topic", topic, "--count", str(records),
                                   "--size", str(size), "--acks", acks])
            res[key] = {"rec_s": r["records"] / r["secs"], "mb_s": r["bytes"] / r["secs"] / 1e6}
            moved += r["bytes"]
        r = run_json(WORKER + ["consume", "--bootstrap", boot, "--topic", "b1k", "--count", str(records)])
        res["consume_1k"] = {"rec_s": r["records"] / r["secs"], "mb_s": r["bytes"] / r["secs"] / 1e6}
        moved += r["bytes"]
        cpu = bed.cpu() - cpu0
        res["hop_cpu_s"] = cpu
        res["hop_cpu_s_per_gb"] = cpu / (moved / 1e9) if bed.hop_pid else None
        # tansu perf sends acks=0 and then waits for the answer tansu gives (Apache Kafka gives none).
        # The proxy keeps Kafka's semantics (no response to acks=0), so tansu perf stalls through it.
        if not path.startswith("proxy"):
            tp = tansu_perf(bed, perf_seconds)
            res["tansu_perf_1k"] = {"rec_s": tp["rec_s"], "mb_s": tp["mb_s"]}
        # Paired round trips: the path and the same broker reached directly, alternating.
        for api in ["api-versions", "list-groups"]:
            argv = [str(PROBE_BIN), boot, str(probe_rounds), "1000", api]
            if bed.hop_pid:
                argv.append(f"127.0.0.1:{bed.broker}")
            res[f"latency_{api}"] = run_json(argv)
        res["hop_peak_rss_mib"] = bed.peak_rss_kib() / 1024 if bed.hop_pid else None
        return res
    finally:
        bed.close()
        shutil.rmtree(work, ignore_errors=True)


def idle_connections(path, count):
    """Hop memory for `count` idle client connections (each with its broker connection)."""
    work = Path(tempfile.mkdtemp(prefix=f"idle-{path}-"))
    bed = Bed(path, work)
    socks = []
    try:
        time.sleep(0.5)
        base = status_kib(bed.hop_pid, "VmRSS")
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", bed.bootstrap))
            socks.append(s)
        time.sleep(3)
        rss = status_kib(bed.hop_pid, "VmRSS")
        return {"connections": count, "rss_base_mib": base / 1024, "rss_mib": rss / 1024,
                "kib_per_pair": (rss - base) / count}
    finally:
        for s in socks:
            s.close()
        bed.close()
        shutil.rmtree(work, ignore_errors=True)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = status_line("/proc/meminfo", "MemTotal")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    import confluent_kafka
    versions = {
        "tansu": subprocess.run([TANSU, "--version"], capture_output=True, text=True).stdout.strip(),
        "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        "librdkafka": confluent_kafka.libversion()[0],
    }
    return {"cpu": cpu, "cores": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit + ("-dirty" if dirty else ""),
            "versions": versions}


def status_line(path, key):
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(rounds):
    out = {}
    for path in PATHS:
        rs = [r[path] for r in rounds]
        s = {}
        for w in ["produce_1k", "produce_100b", "produce_1k_acks1", "consume_1k", "tansu_perf_1k"]:
            s[w] = {k: median([r[w][k] for r in rs if r.get(w)]) for k in ["rec_s", "mb_s"]}
        s["hop_cpu_s_per_gb"] = median([r["hop_cpu_s_per_gb"] for r in rs])
        s["hop_peak_rss_mib"] = max((r["hop_peak_rss_mib"] or 0) for r in rs) or None
        for api in ["api-versions", "list-groups"]:
            keys = ["p50_us", "p99_us", "p999_us", "added_p50_us", "added_p99_us", "added_p999_us"]
            s[f"latency_{api}"] = {k: median([r[f"latency_{api}"].get(k) for r in rs]) for k in keys}
        out[path] = s
    return out


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def write_markdown(meta, summary, idle, args):
    d = summary["direct"]
    label = {"direct": "direct to tansu", "haproxy": "haproxy 2.6 (tcp mode)", "proxy": "**kafka-durability-proxy**",
             "proxy-audit": "kafka-durability-proxy, audit only", "tansu-proxy": "tansu proxy 0.6"}
    lines = [
        "# Benchmarks: what the hop costs",
        "",
        f"Generated by `bench/run.sh --records {args.records} --rounds {args.rounds} --idle {args.idle} "
        f"--perf-seconds {args.perf_seconds}` on "
        f"{meta['date']}, commit `{meta['commit']}`.",
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem']} RAM, Linux {meta['kernel']}. "
        f"{meta['versions']['tansu']} (in-memory storage), {meta['versions']['haproxy']}, "
        f"librdkafka {meta['versions']['librdkafka']} (confluent-kafka), everything on loopback.",
        "",
        f"Workload per path and round: {args.records:,} records produced at 1 KiB acks=all, at 100 B acks=all and at "
        f"1 KiB acks=1 (the enforcing proxy upgrades these to acks=all; every other path sends acks=1), then the "
        f"1 KiB topic consumed from offset 0, then `tansu perf` producing for {args.perf_seconds} s, then {args.probe:,} "
        f"paired round trips each of ApiVersions and ListGroups. Each path gets "
        f"its own tansu process (same binary and storage engine) because tansu must advertise haproxy's address for "
        f"the haproxy path. Medians of {args.rounds} rounds; paths alternate within a round in rotating order. "
        f"Ratios are against direct in the same run. Produce is the discriminating workload: consume is bound by "
        f"tansu's fetch path.",
        "",
        "## Throughput",
        "",
        "| path | produce 1 KiB MB/s | × direct | produce 100 B rec/s | × direct | produce 1 KiB acks=1 MB/s | consume 1 KiB MB/s | × direct | tansu perf 1 KiB MB/s | × direct |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in PATHS:
        s = summary[p]
        r = lambda w, k: (s[w][k] / d[w][k]) if d[w][k] and s[w][k] is not None else None
        lines.append(
            f"| {label[p]} | {fmt(s['produce_1k']['mb_s'], '.0f')} | {fmt(r('produce_1k', 'mb_s'), '.3f')} | "
            f"{fmt(s['produce_100b']['rec_s'], ',.0f')} | {fmt(r('produce_100b', 'rec_s'), '.3f')} | "
            f"{fmt(s['produce_1k_acks1']['mb_s'], '.0f')} | {fmt(s['consume_1k']['mb_s'], '.1f')} | "
            f"{fmt(r('consume_1k', 'mb_s'), '.3f')} | {fmt(s['tansu_perf_1k']['mb_s'], '.0f') if s['tansu_perf_1k']['mb_s'] else 'n/a¹'} | "
            f"{fmt(r('tansu_perf_1k', 'mb_s'), '.3f')} |")
    lines += ["", "¹ tansu perf produces with acks=0 and then waits for a response, which tansu sends but Apache Kafka "
              "never does. The proxy keeps Kafka's semantics (it answers no acks=0 request; when it upgrades acks=0 to "
              "acks=all it swallows the broker's answer), so tansu perf stalls through it. librdkafka, kafka-python and "
              "kcat, which follow the protocol, work.", "", "## Cost of the hop", "",
              "| path | hop CPU s per GB relayed | hop peak RSS MiB | ApiVersions added p50 / p99 / p99.9 µs | ListGroups added p50 / p99 / p99.9 µs |",
              "|---|---|---|---|---|"]
    for p in PATHS:
        s = summary[p]
        lat = lambda api: " / ".join(fmt(s[f"latency_{api}"][k], ".1f") for k in ["added_p50_us", "added_p99_us", "added_p999_us"])
        lines.append(f"| {label[p]} | {fmt(s['hop_cpu_s_per_gb'], '.2f')} | {fmt(s['hop_peak_rss_mib'], '.1f')} | {lat('api-versions')} | {lat('list-groups')} |")
    dl = summary["direct"]
    lines += ["", f"Direct round trips for reference: ApiVersions p50 {fmt(dl['latency_api-versions']['p50_us'], '.1f')} µs, "
              f"p99 {fmt(dl['latency_api-versions']['p99_us'], '.1f')} µs; ListGroups p50 {fmt(dl['latency_list-groups']['p50_us'], '.1f')} µs, "
              f"p99 {fmt(dl['latency_list-groups']['p99_us'], '.1f')} µs. Added latency is measured in pairs: each round trip "
              "through the path is followed by one straight to the same broker, and the percentiles of the two series are "
              "subtracted. The proxy decodes and re-encodes ApiVersions responses; ListGroups passes through opaque."]
    lines += ["", "CPU per GB counts the hop process's user+system time (all threads, /proc) over the three librdkafka produce "
              "workloads and the consume, divided by the record bytes moved. tansu perf (1 KiB records, batches of 100, "
              f"unthrottled for {args.perf_seconds} s) is read from the partition's high watermark afterwards.", "",
              "## Idle connections", "",
              "| path | idle client connections (each with its broker connection) | RSS before MiB | RSS after MiB | KiB per connection pair |",
              "|---|---|---|---|---|"]
    for p, r in idle.items():
        lines.append(f"| {label[p]} | {r['connections']:,} | {r['rss_base_mib']:.1f} | {r['rss_mib']:.1f} | {r['kib_per_pair']:.1f} |")
    lines += ["", f"The machine's hard limit of 20,000 open files per process caps the count: a proxy holding N "
              "client connections also holds N broker connections. haproxy refuses maxconn above ~5,000 here.", ""]
    return "\n".join(lines)


def plot(summary, path):
    """Throughput and added latency per path, side by side, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = PATHS
    d = summary["direct"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.27
    for i, (w, label) in enumerate([("produce_1k", "produce 1 KiB"), ("produce_100b", "produce 100 B"), ("consume_1k", "consume 1 KiB")]):
        key = "rec_s" if w == "produce_100b" else "mb_s"
        vals = [(summary[p][w][key] or 0) / d[w][key] for p in paths]
        a.bar([x + (i - 1) * width for x in range(len(paths))], vals, width, label=label)
    a.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    a.set_xticks(range(len(paths)), paths, rotation=15)
    a.set_ylabel("throughput, x direct")
    a.set_ylim(0, 1.2)
    a.legend(loc="lower right", fontsize=8)
    a.set_title("Throughput relative to a direct connection")
    hops = [p for p in paths if p != "direct"]
    for i, api in enumerate(["api-versions", "list-groups"]):
        vals = [summary[p][f"latency_{api}"]["added_p99_us"] or 0 for p in hops]
        b.bar([x + (i - 0.5) * 0.4 for x in range(len(hops))], vals, 0.4, label=f"{api} added p99")
    b.axhline(100, color="grey", linestyle=":", linewidth=1)
    b.set_xticks(range(len(hops)), hops, rotation=15)
    b.set_ylabel("microseconds")
    b.legend(fontsize=8)
    b.set_title("Added round-trip latency (p99, paired)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", type=int, default=20_000)
    ap.add_argument("--idle", type=int, default=9_000)
    ap.add_argument("--perf-seconds", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    meta = machine()
    rounds = []
    for i in range(args.rounds):
        order = PATHS[i % len(PATHS):] + PATHS[:i % len(PATHS)]
        rnd = {}
        for path in order:
            print(f"round {i + 1}/{args.rounds}: {path}", file=sys.stderr, flush=True)
            rnd[path] = measure_path(path, args.records, args.probe, args.perf_seconds)
            print(f"  {json.dumps(rnd[path])}", file=sys.stderr, flush=True)
        rounds.append(rnd)
    idle = {}
    for path, count in [("proxy", args.idle), ("haproxy", min(args.idle, 4_500)), ("tansu-proxy", args.idle)]:
        print(f"idle connections: {path} x {count}", file=sys.stderr, flush=True)
        idle[path] = idle_connections(path, count)
        print(f"  {json.dumps(idle[path])}", file=sys.stderr, flush=True)
    summary = summarise(rounds)
    (ROOT / "bench" / "results.json").write_text(json.dumps({"meta": meta, "rounds": rounds, "summary": summary, "idle": idle}, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    md = write_markdown(meta, summary, idle, args)
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        md += "\n" + notes.read_text()
    try:
        plot(summary, Path(args.out).parent / "benchmarks.png")
        md += "\n![Throughput and added latency per path](benchmarks.png)\n"
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    Path(args.out).write_text(md)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()

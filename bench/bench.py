#!/usr/bin/env python3
"""What does the hop cost? Paired rounds on one machine: each round measures every path (direct,
haproxy in TCP mode, kafka-durability-proxy, the TLS paths, other proxy builds) against each
target broker, in rotating order, with the same librdkafka client and workloads. The null-sink
broker (examples/nullsink) answers at memory speed, so the hop is most of what is measured;
tansu (in-memory) is the realistic target beside it. Results are ratios against direct *within
a round*, reported as the median over rounds with the min-max spread, and no verdict is printed
when direct itself moved more between rounds than the margin a verdict would claim.
Writes bench/results.json, docs/benchmarks.md (+ bench/notes.md) and docs/benchmarks.png.

Usage: bench/run.sh [--rounds R] [--seconds S] [--targets nullsink,tansu] [--paths ...]
                    [--proxy-bin NAME=PATH ...] [--probe N] [--idle K]
"""

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import beds
import report
# Re-exported for bench/acks0_cost.py and bench/durability.py, which import them from here.
from beds import TANSU, cpu_seconds, free_port, wait_port  # noqa: F401

ROOT = beds.ROOT
WORKER = [sys.executable, str(ROOT / "bench" / "worker.py")]
PROXY_BIN = beds.RELEASE / "kafka-durability-proxy"
PROBE_BIN = beds.RELEASE / "examples" / "probe"
DEFAULT_PATHS = ["direct", "haproxy", "proxy", "direct-tls", "proxy-tls", "tansu-proxy"]
KNOWN_PATHS = DEFAULT_PATHS + ["proxy-audit"]
# (key, topic, record size, acks) of the produce workloads; consume reads back the first topic.
PRODUCE = [("produce_1k", "b1k", 1024, "all"), ("produce_100b", "b100", 100, "all")]


def run_json(argv, timeout=900):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:4]))} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def client_tls(bed):
    return ["--ca", bed.certs["ca"]] if bed.tls else []


def create_topics(bed, names):
    from confluent_kafka.admin import AdminClient, NewTopic
    conf = {"bootstrap.servers": f"127.0.0.1:{bed.bootstrap}"}
    if bed.tls:
        conf.update({"security.protocol": "SSL", "ssl.ca.location": bed.certs["ca"]})
    # The durable shape the proxy's default topic rules require, on every path alike.
    topics = [NewTopic(n, 1, 3, config={"min.insync.replicas": "2"}) for n in names]
    admin = AdminClient(conf)  # kept alive until every future is answered
    for fut in admin.create_topics(topics).values():
        fut.result(30)


def workload(bed, key, argv, seconds):
    """One worker run, with the hop's and the broker's CPU seconds over it."""
    hop0, broker0 = bed.hop_cpu(), bed.broker_cpu()
    r = run_json(WORKER + argv + ["--bootstrap", f"127.0.0.1:{bed.bootstrap}", "--seconds", str(seconds)] + client_tls(bed))
    hop = bed.hop_cpu() - hop0
    return {"secs": r["secs"], "records": r["records"], "bytes": r["bytes"],
            "mb_s": r["bytes"] / r["secs"] / 1e6, "rec_s": r["records"] / r["secs"],
            "hop_cpu_s": hop if bed.hop_pid else None,
            "hop_cpu_s_per_gb": hop / (r["bytes"] / 1e9) if bed.hop_pid and r["bytes"] else None,
            "broker_cpu_s": bed.broker_cpu() - broker0}


def latency(bed, rounds):
    """Paired round trips: through the path, then straight to the broker side, alternating."""
    out = {}
    for api in ["api-versions", "list-groups"]:
        argv = [str(PROBE_BIN)] + client_tls(bed) + [f"127.0.0.1:{bed.bootstrap}", str(rounds), "1000", api]
        if bed.hop_pid:
            argv.append(f"127.0.0.1:{bed.endpoint}")
        out[api] = run_json(argv)
    return out


def measure(target, path, args, certs, proxies):
    work = Path(tempfile.mkdtemp(prefix=f"bench-{target}-{path.replace(':', '_')}-"))
    bed = beds.Bed(target, path, work, certs, proxies)
    try:
        create_topics(bed, [t for _, t, _, _ in PRODUCE])
        res = {}
        for key, topic, size, acks in PRODUCE:
            res[key] = workload(bed, key, ["produce", "--topic", topic, "--size", str(size), "--acks", acks], args.seconds)
        res["consume_1k"] = workload(bed, "consume_1k", ["consume", "--topic", "b1k"], args.seconds)
        if args.probe:
            res["latency"] = latency(bed, args.probe)
        res["hop_peak_rss_mib"] = bed.hop_peak_rss_kib() / 1024 if bed.hop_pid else None
        return res
    except Exception as e:
        logs = "".join(f"\n--- {n}.log ---\n{bed.log(n)[-1500:]}" for n in ["proxy", "nullsink", "tansu", "haproxy", "haproxy-tls"])
        raise SystemExit(f"{target}/{path}: {e}{logs}")
    finally:
        bed.close()
        shutil.rmtree(work, ignore_errors=True)


def idle_connections(path, count, certs, proxies):
    """Hop memory for `count` idle client connections (each with its broker connection), in
    front of the null sink."""
    work = Path(tempfile.mkdtemp(prefix=f"idle-{path.replace(':', '_')}-"))
    target = "tansu" if path == "tansu-proxy" else "nullsink"
    bed = beds.Bed(target, path, work, certs, proxies)
    try:
        base, rss = beds.idle_rss_kib(bed, count)
        return {"connections": count, "rss_base_mib": base / 1024, "rss_mib": rss / 1024, "kib_per_pair": (rss - base) / count}
    finally:
        bed.close()
        shutil.rmtree(work, ignore_errors=True)


def machine(proxies):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next((l.split(":", 1)[1].strip() for l in Path("/proc/meminfo").read_text().splitlines()
                if l.startswith("MemTotal")), "?")
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    import confluent_kafka
    versions = {
        "tansu": subprocess.run([beds.TANSU, "--version"], capture_output=True, text=True).stdout.strip(),
        "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        "librdkafka": confluent_kafka.libversion()[0],
    }
    return {"cpu": cpu, "cores": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
            "command": "bench/run.sh " + shlex.join(sys.argv[1:]), "versions": versions,
            "proxy_bins": {name: binary for name, (binary, _) in proxies.items()}}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5, help="length of each produce/consume measurement")
    ap.add_argument("--targets", default="nullsink,tansu")
    ap.add_argument("--paths", default=",".join(DEFAULT_PATHS),
                    help="of direct, haproxy, proxy, proxy-audit, direct-tls, proxy-tls, tansu-proxy; "
                         "proxy:NAME paths are added for every --proxy-bin")
    ap.add_argument("--proxy-bin", action="append", default=[], metavar="NAME=PATH",
                    help="another proxy binary measured as path proxy:NAME (e.g. a build of an older commit)")
    ap.add_argument("--probe", type=int, default=10_000, help="paired round trips per API (0: no latency probe)")
    ap.add_argument("--idle", type=int, default=9_000, help="idle connections for the memory measurement (0: skip)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="the report; the plot goes beside it")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results.json"), help="every round's raw figures")
    ap.add_argument("--report-only", action="store_true", help="measure nothing: rewrite the report from --results")
    return ap.parse_args()


def setup(args):
    """Proxy binaries (name -> (path, accepts `admin:`)), certificates and the path list."""
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in KNOWN_PATHS]
    if unknown:
        raise SystemExit(f"--paths: unknown {unknown}; known: {', '.join(KNOWN_PATHS)} (and proxy:NAME from --proxy-bin)")
    missing = [str(b) for b in [PROXY_BIN, PROBE_BIN, beds.NULLSINK_BIN] if not b.exists()]
    if missing:
        raise SystemExit(f"not built: {', '.join(missing)}; bench/run.sh builds them (honouring CARGO_TARGET_DIR)")
    work = Path(tempfile.mkdtemp(prefix="bench-setup-"))
    proxies = {"proxy": str(PROXY_BIN)}
    for spec in args.proxy_bin:
        name, _, binary = spec.partition("=")
        if not binary or not Path(binary).exists():
            raise SystemExit(f"--proxy-bin {spec}: want NAME=PATH to an existing binary")
        proxies[f"proxy:{name}"] = str(Path(binary).resolve())
    proxies = {n: (b, beds.proxy_accepts_admin_key(b, work)) for n, b in proxies.items()}
    paths += [n for n in proxies if n != "proxy"]
    return proxies, beds.make_certs(work / "certs"), paths


def save(path, results):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))


def run_rounds(args, targets, paths, certs, proxies, results):
    """Every round, saved after each so a failed run keeps what it measured."""
    for i in range(args.rounds):
        rnd = {}
        results["rounds"].append(rnd)
        for target in (targets if i % 2 == 0 else list(reversed(targets))):
            ps = [p for p in paths if target == "tansu" or p != "tansu-proxy"]
            order = ps[i % len(ps):] + ps[:i % len(ps)]
            rnd[target] = {}
            for path in order:
                print(f"round {i + 1}/{args.rounds}: {target} {path}", file=sys.stderr, flush=True)
                r = measure(target, path, args, certs, proxies)
                rnd[target][path] = r
                brief = {k: round(v["mb_s"], 1) for k, v in r.items() if isinstance(v, dict) and "mb_s" in v}
                print(f"  MB/s {brief}", file=sys.stderr, flush=True)
                save(args.results, results)


def idle_all(args, targets, paths, certs, proxies):
    idle = {}
    hops = list(proxies) + ["haproxy"] + (["tansu-proxy"] if "tansu" in targets and "tansu-proxy" in paths else [])
    for path in hops:
        count = min(args.idle, 4_500) if path == "haproxy" else args.idle
        print(f"idle connections: {path} x {count}", file=sys.stderr, flush=True)
        idle[path] = idle_connections(path, count, certs, proxies)
    return idle


def write_report(results, out):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = report.markdown(results)
    try:
        report.plot(results["summary"], out.parent / "benchmarks.png")
        md += "\n![Ratios against direct and haproxy, with the spread over rounds, and the targets](benchmarks.png)\n"
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        md += "\n" + notes.read_text()
    out.write_text(md)
    print(md)


def main():
    args = parse_args()
    if args.report_only:
        results = json.loads(Path(args.results).read_text())
        results["summary"] = report.summarise(results["rounds"], results["targets"], results["paths"])
        write_report(results, args.out)
        return
    targets = [t for t in args.targets.split(",") if t]
    proxies, certs, paths = setup(args)
    results = {"meta": machine(proxies), "args": vars(args), "targets": targets, "paths": paths, "rounds": [], "idle": {}}
    run_rounds(args, targets, paths, certs, proxies, results)
    if args.idle:
        results["idle"] = idle_all(args, targets, paths, certs, proxies)
    results["summary"] = report.summarise(results["rounds"], targets, paths)
    save(args.results, results)
    write_report(results, args.out)


if __name__ == "__main__":
    main()

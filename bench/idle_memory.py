#!/usr/bin/env python3
"""Memory per idle client connection (each with its broker connection): the proxy's RSS before and
after opening N client connections to its bootstrap port, at several N, repeated. Two kinds of
idle client: `fresh` connects and sends nothing (bench.py's `idle_connections`); `worked` sends an
ApiVersions v3 and a Metadata v12 request first, reads both answers, then goes quiet, as real
idle clients do. Each measurement gets a fresh broker (the null sink unless --target tansu) and
proxy (beds.py's `Bed`).

Usage: bench/idle_memory.py [--counts 1000,5000,9900] [--rounds 3] [--kinds fresh,worked]
                            [--settle 3] [--proxy-bin PATH] [--target nullsink|tansu]
The proxy binary defaults to $CARGO_TARGET_DIR/release (or target/release). The machine's open-file
limit caps N: the proxy holds two descriptors per client, and keeps 128 back.
"""

import argparse
import json
import resource
import shutil
import statistics
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import beds  # noqa: E402  (Bed, status_kib, proxy_accepts_admin_key, RELEASE)


def api_versions_v3(corr):
    """ApiVersions v3 (request header v2, flexible), as librdkafka sends first."""
    header = struct.pack(">hhih", 18, 3, corr, 5) + b"probe" + b"\x00"
    body = b"\x06" + b"probe" + b"\x04" + b"1.0" + b"\x00"
    return header + body


def metadata_v12(corr):
    """Metadata v12 for all topics (null topic array), flexible."""
    header = struct.pack(">hhih", 3, 12, corr, 5) + b"probe" + b"\x00"
    body = b"\x00" + b"\x00" + b"\x00" + b"\x00"
    return header + body


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def read_frame(s):
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise SystemExit("connection closed by the proxy")
        out += chunk
    return out


def work(socks, batch=500):
    """Each socket sends ApiVersions then Metadata and reads both answers; batches keep the broker busy."""
    for i in range(0, len(socks), batch):
        part = socks[i:i + batch]
        for s in part:
            s.sendall(frame(api_versions_v3(1)) + frame(metadata_v12(2)))
        for s in part:
            read_frame(s)
            read_frame(s)


def measure(kind, count, settle, proxy_bin, target):
    path = Path(tempfile.mkdtemp(prefix=f"idle-mem-{kind}-"))
    proxies = {"proxy": (proxy_bin, beds.proxy_accepts_admin_key(proxy_bin, path))}
    bed = beds.Bed(target, "proxy", path, None, proxies)
    try:
        base, rss = beds.idle_rss_kib(bed, count, settle, work if kind == "worked" else None)
        return {"kind": kind, "pairs": count, "rss_base_kib": base, "rss_kib": rss, "kib_per_pair": (rss - base) / count}
    finally:
        bed.close()
        shutil.rmtree(path, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1000,5000,9900")
    ap.add_argument("--kinds", default="fresh,worked")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--proxy-bin", default=str(beds.RELEASE / "kafka-durability-proxy"))
    ap.add_argument("--target", default="nullsink", choices=["nullsink", "tansu"], help="the broker behind the proxy")
    ap.add_argument("--json", help="also write every measurement here")
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by tansu and the proxy
    results = []
    for r in range(args.rounds):
        for count in [int(c) for c in args.counts.split(",")]:
            for kind in args.kinds.split(","):
                m = measure(kind, count, args.settle, str(Path(args.proxy_bin).resolve()), args.target)
                m["round"] = r + 1
                results.append(m)
                print(json.dumps(m), file=sys.stderr, flush=True)
    print("| kind | pairs | KiB per pair, median (min-max) | runs |")
    print("|---|---|---|---|")
    keys = sorted({(m["kind"], m["pairs"]) for m in results}, key=lambda k: (k[0], k[1]))
    for kind, count in keys:
        v = [m["kib_per_pair"] for m in results if m["kind"] == kind and m["pairs"] == count]
        print(f"| {kind} | {count:,} | {statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f}) | {len(v)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

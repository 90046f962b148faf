"""Turns the benchmark's rounds into what docs/benchmarks.md shows: per-path medians with their
min-max spread, ratios paired within a round (path / reference, same round, same target), the
verdicts against issue 13's targets (withheld when the reference moved between rounds more than
the margin a verdict would claim), the tables, and the plot."""

import statistics

WORKLOADS = [("produce_1k", "produce 1 KiB acks=all"), ("produce_100b", "produce 100 B acks=all"),
             ("consume_1k", "consume 1 KiB")]
APIS = [("api-versions", "ApiVersions"), ("list-groups", "ListGroups")]
MIN_ROUNDS = 3
LABEL = {"direct": "direct", "haproxy": "haproxy (tcp mode)", "proxy": "**kafka-durability-proxy**",
         "proxy-audit": "proxy, audit only", "direct-tls": "direct TLS", "proxy-tls": "proxy, TLS both sides",
         "tansu-proxy": "tansu proxy 0.6"}


def label(path):
    return LABEL.get(path, f"proxy build `{path.split(':', 1)[-1]}`")


def stat(values):
    """Median, min, max and count of the values that exist; None when there are none."""
    vs = [v for v in values if v is not None]
    if not vs:
        return None
    return {"median": statistics.median(vs), "min": min(vs), "max": max(vs), "n": len(vs), "values": vs}


def spread(s):
    """How far a series moved between rounds, as a fraction of its median."""
    return (s["max"] - s["min"]) / s["median"] if s and s["median"] else 0.0


def refs_for(path):
    """The references a path's throughput is paired against."""
    refs = ["direct", "haproxy"]
    if path == "proxy-tls":
        refs += ["direct-tls", "proxy"]
    if path.startswith("proxy:") or path == "proxy-audit":
        refs += ["proxy"]
    return [r for r in refs if r != path]


def cpu_all(r):
    """Hop CPU seconds per GB over every workload of one measurement."""
    ws = [r[w] for w, _ in WORKLOADS if r.get(w)]
    cpu = [w["hop_cpu_s"] for w in ws]
    if not ws or any(c is None for c in cpu):
        return None
    return sum(cpu) / (sum(w["bytes"] for w in ws) / 1e9)


def summarise_path(rounds, target, path):
    series = [rnd.get(target, {}) for rnd in rounds]
    mine = [s.get(path) for s in series]
    out = {"ratios": {}, "cpu_ratios": {}, "latency": {}}
    for w, _ in WORKLOADS:
        out[w] = {k: stat([m[w][k] for m in mine if m]) for k in ["mb_s", "rec_s", "hop_cpu_s_per_gb"]}
        out[w]["broker_cpu_s_per_gb"] = stat([m[w]["broker_cpu_s"] / (m[w]["bytes"] / 1e9) for m in mine if m])
    out["cpu_all"] = stat([cpu_all(m) for m in mine if m])
    for ref in refs_for(path):
        pairs = [(m, s.get(ref)) for m, s in zip(mine, series) if m and s.get(ref)]
        if not pairs:
            continue
        out["ratios"][ref] = {w: stat([m[w]["mb_s"] / r[w]["mb_s"] for m, r in pairs]) for w, _ in WORKLOADS}
        cpu = [(cpu_all(m), cpu_all(r)) for m, r in pairs]
        out["cpu_ratios"][ref] = stat([a / b for a, b in cpu if a is not None and b])
    for api, _ in APIS:
        lat = [m["latency"][api] for m in mine if m and m.get("latency")]
        out["latency"][api] = {k: stat([x.get(k) for x in lat]) for k in
                               ["p50_us", "p99_us", "added_p50_us", "added_p99_us", "base_p99_us"]}
    out["hop_peak_rss_mib"] = stat([m.get("hop_peak_rss_mib") for m in mine if m])
    return out


def summarise(rounds, targets, paths):
    return {t: {p: summarise_path(rounds, t, p) for p in paths if any(p in rnd.get(t, {}) for rnd in rounds)}
            for t in targets}


def verdict(s, ok, threshold, moved, moved_what, unit="%"):
    """met / not met, or why not decided. `moved` is in the claim's own unit (a fraction of the
    reference for ratios, microseconds for latency)."""
    if s is None:
        return "not measured"
    if s["n"] < MIN_ROUNDS:
        return f"unresolved: {s['n']} round(s), a verdict needs {MIN_ROUNDS}"
    margin = abs(s["median"] - threshold)
    if moved > margin:
        show = (lambda v: f"{v:.1%}") if unit == "%" else (lambda v: f"{v:.0f} µs")
        return f"unresolved: {moved_what} moved {show(moved)} between rounds (margin {show(margin)})"
    return "**met**" if ok(s["median"], threshold) else "**not met**"


def fmt_stat(s, spec, scale=1.0):
    if s is None:
        return "–"
    if s["n"] == 1:
        return format(s["median"] * scale, spec)
    return f"{format(s['median'] * scale, spec)} ({format(s['min'] * scale, spec)}–{format(s['max'] * scale, spec)})"


def verdict_rows(summary, idle, path="proxy"):
    """Issue 13's targets for `path`, per target broker."""
    ge, le = (lambda v, t: v >= t), (lambda v, t: v <= t)
    rows = []
    for target, paths in summary.items():
        p, d = paths.get(path), paths.get("direct")
        if not p or not d:
            continue
        for w, name in WORKLOADS[:2]:
            moved = spread(d[w]["mb_s"])
            for ref, threshold in [("direct", 0.97), ("haproxy", 1.0)]:
                s = p["ratios"].get(ref, {}).get(w)
                rows.append((target, f"{name}, × {ref} (paired)", fmt_stat(s, ".3f"), f"≥ {threshold:.2f}",
                             verdict(s, ge, threshold, moved, "direct")))
        h = paths.get("haproxy")
        s = p["cpu_ratios"].get("haproxy")
        rows.append((target, "hop CPU per GB, all workloads, × haproxy (paired)", fmt_stat(s, ".2f"), "≤ 0.70",
                     verdict(s, le, 0.7, spread(h["cpu_all"]) if h else 0.0, "haproxy's CPU per GB")))
        for api, name in APIS:
            lat = p["latency"][api]
            base = lat["base_p99_us"]
            moved = (base["max"] - base["min"]) if base else 0.0
            rows.append((target, f"{name} added p99 (paired probe)", fmt_stat(lat["added_p99_us"], ".0f") + " µs", "< 100 µs",
                         verdict(lat["added_p99_us"], lambda v, t: v < t, 100, moved, "direct's p99", unit="µs")))
    if path in idle:
        kib = idle[path]["kib_per_pair"]
        pairs = idle[path]["connections"]
        rows.append(("nullsink", f"memory per idle connection pair ({pairs:,} pairs)", f"{kib:.1f} KiB", "< 12 KiB",
                     "**met**" if kib < 12 else "**not met**"))
    return rows


def header(meta, args):
    v = meta["versions"]
    return [
        "# Benchmarks: what the hop costs", "",
        f"Generated by `{meta['command']}` on {meta['date']}, commit `{meta['commit']}`.",
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem']} RAM, Linux {meta['kernel']}. "
        f"{v['tansu']} (in-memory storage), {v['haproxy']}, librdkafka {v['librdkafka']} (confluent-kafka), "
        "everything on loopback.", "",
        "## Method", "",
        "Two target brokers: the **null sink** (`examples/nullsink`), which counts Produce records from the batch "
        "headers and answers at memory speed and serves every Fetch from one pre-built 1,000-record batch, so the "
        "hop is most of what is measured; and **tansu** with in-memory storage, the realistic target, whose own "
        "round-to-round noise (direct moved from 191 to 505 MB/s between rounds of one earlier run) hid any "
        "difference under 10%. Paths: direct; haproxy in TCP mode; kafka-durability-proxy enforcing acks=all; "
        "TLS straight to the broker (the null sink serves it itself; tansu cannot, so haproxy terminates it in "
        "front of tansu and counts as the broker side) and the proxy with TLS on the client side and to the "
        "broker; `tansu proxy` on the tansu target; and any other proxy build given with `--proxy-bin`.", "",
        f"Every measurement starts a fresh broker and hop. A round measures every path on each target, in an order "
        f"that rotates between rounds; {args['rounds']} rounds. Per path and round, librdkafka (confluent-kafka, "
        f"`bench/worker.py`, a fresh process each) produces 1 KiB and 100 B records at acks=all for "
        f"{args['seconds']:g} s each, then consumes the 1 KiB topic for {args['seconds']:g} s (the clock starts after "
        f"a warm-up); then `examples/probe` makes {args['probe']:,} round trips each of ApiVersions and ListGroups, "
        "alternating between the path and the broker side reached directly, and subtracts the percentiles. "
        "Throughput figures are ratios against a reference measured **in the same round** on the same target; the "
        "tables give the median over rounds and the min–max spread. CPU per GB is the hop process's user+system "
        "time over the three workloads (all threads, /proc) divided by the record bytes moved. A verdict is "
        f"printed only with {MIN_ROUNDS} or more rounds and when the reference (direct's throughput, haproxy's "
        "CPU per GB, direct's p99) moved between rounds by less than the distance between the median and the "
        "target; otherwise the row says by how much it moved. Both clients and brokers share the machine's cores "
        "with the hop: on 2 cores a hop's CPU is taken from the client and the broker, which is part of its cost.",
        "",
    ]


def table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def per_target(lines, summary, head, row):
    """`lines`, then one table per target with a row per path (`row(path, stats)`; None skips it)."""
    for target, paths in summary.items():
        rows = [r for p, s in paths.items() if (r := row(p, s)) is not None]
        lines += [f"### {target}", ""] + table(head, rows) + [""]
    return lines


def throughput_section(summary):
    lines = ["## Throughput", "", "Median MB/s (min–max over rounds), and the paired median ratio against direct "
             "in the same round (min–max). TLS paths are also paired against direct TLS and the plaintext proxy "
             "below.", ""]

    def row(p, s):
        cells = [label(p)]
        for w, _ in WORKLOADS:
            cells += [fmt_stat(s[w]["mb_s"], ".0f"), fmt_stat(s["ratios"].get("direct", {}).get(w), ".3f") if p != "direct" else "1"]
        return cells
    head = ["path"] + [x for _, n in WORKLOADS for x in (f"{n} MB/s", "× direct")]
    return per_target(lines, summary, head, row)


def cpu_section(summary):
    """One table per target. docs/sizing.md (checked by tests/deploy/sizing.rs) reads the first
    proxy row under this heading: cell 1 the CPU per GB, cell 2 the peak RSS, plain numbers."""
    lines = ["## Cost of the hop: CPU and memory", "", "Hop CPU seconds per GB of records over all three workloads "
             "(median over rounds, then min–max), per workload (median), the paired ratio against haproxy in the "
             "same round (median, min–max), and the hop's peak RSS (the largest of any round). The broker's own CPU "
             "is in bench/results.json.", ""]

    def row(p, s):
        if s["cpu_all"] is None:
            return None
        rss = s["hop_peak_rss_mib"]
        return ([label(p), f"{s['cpu_all']['median']:.2f}", f"{rss['max']:.1f}" if rss else "–",
                 f"{s['cpu_all']['min']:.2f}–{s['cpu_all']['max']:.2f}"] +
                [fmt_stat(s[w]["hop_cpu_s_per_gb"], ".2f").split(" ")[0] for w, _ in WORKLOADS] +
                [fmt_stat(s["cpu_ratios"].get("haproxy"), ".2f") if p != "haproxy" else "1"])
    head = ["path", "hop CPU s per GB", "hop peak RSS MiB", "CPU s per GB min–max"] + [n for _, n in WORKLOADS] + ["× haproxy"]
    return per_target(lines, summary, head, row)


def latency_section(summary):
    lines = ["## Added latency for small requests", "", "Paired probe: each round trip through the path is followed "
             "by one straight to the broker side (over TLS for the TLS paths); added = path percentile − direct "
             "percentile, median over rounds (min–max). The proxy decodes and re-encodes ApiVersions; ListGroups "
             "passes through opaque. For direct paths: the round trip itself.", ""]

    def row(p, s):
        cells = [label(p)]
        for api, _ in APIS:
            lat = s["latency"][api]
            if p.startswith("direct"):
                cells += [f"({fmt_stat(lat['p50_us'], '.0f')})", f"({fmt_stat(lat['p99_us'], '.0f')})"]
            else:
                cells += [fmt_stat(lat["added_p50_us"], ".0f"), fmt_stat(lat["added_p99_us"], ".0f")]
        return cells
    head = ["path"] + [x for _, n in APIS for x in (f"{n} added p50 µs", f"{n} added p99 µs")]
    return per_target(lines, summary, head, row)


def comparison_section(summary, title, intro, path_pred, refs):
    rows = []
    for target, paths in summary.items():
        for p, s in paths.items():
            if not path_pred(p):
                continue
            for ref in refs:
                if ref not in s["ratios"]:
                    continue
                rows.append([target, label(p), f"× {label(ref)}"] +
                            [fmt_stat(s["ratios"][ref][w], ".3f") for w, _ in WORKLOADS] +
                            [fmt_stat(s["cpu_ratios"].get(ref), ".2f")])
    if not rows:
        return []
    head = ["target", "path", "paired against"] + [n for _, n in WORKLOADS] + ["hop CPU per GB ratio"]
    return [f"## {title}", "", intro, ""] + table(head, rows) + [""]


def idle_section(idle):
    if not idle:
        return []
    rows = [[label(p), f"{r['connections']:,}", f"{r['rss_base_mib']:.1f}", f"{r['rss_mib']:.1f}", f"{r['kib_per_pair']:.1f}"]
            for p, r in idle.items()]
    return ["## Idle connections", ""] + table(
        ["hop", "idle client connections (each with its broker connection)", "RSS before MiB", "RSS after MiB",
         "KiB per connection pair"], rows) + [
        "", "In front of the null sink (tansu proxy: tansu). The machine's hard limit of 20,000 open files per "
        "process caps the count: a proxy holding N client connections also holds N broker connections, so at most "
        "~9,900. haproxy refuses maxconn above ~5,000 here.", ""]


def noise_section(summary):
    rows = []
    for target, paths in summary.items():
        d = paths.get("direct")
        if not d:
            continue
        for w, name in WORKLOADS:
            s = d[w]["mb_s"]
            rows.append([target, name, ", ".join(f"{v:.0f}" for v in s["values"]), f"{spread(s):.1%}"])
    return ["## How much direct moved between rounds", "", "Direct's own MB/s per round: the noise floor a ratio "
            "must clear.", ""] + table(["target", "workload", "direct MB/s per round", "moved (max−min)/median"], rows) + [""]


def markdown(results):
    meta, args, summary, idle = results["meta"], results["args"], results["summary"], results["idle"]
    lines = header(meta, args)
    lines += ["## Verdicts against the targets (kafka-durability-proxy, enforcing)", ""]
    lines += table(["target", "measure", "median (min–max)", "target", "verdict"], verdict_rows(summary, idle)) + [""]
    lines += throughput_section(summary) + cpu_section(summary) + latency_section(summary)
    lines += comparison_section(summary, "TLS beside plaintext", "The proxy with TLS on both sides, paired in the same "
                                "round against TLS straight to the broker and against the plaintext proxy.",
                                lambda p: p == "proxy-tls", ["direct-tls", "proxy"])
    lines += comparison_section(summary, "Builds compared", "Other proxy binaries (`--proxy-bin NAME=PATH`) paired "
                                "against this commit's proxy in the same round: 1.000 means no difference; compare "
                                "the spread with how much direct moved.",
                                lambda p: p.startswith("proxy:") or p == "proxy-audit", ["proxy"])
    lines += idle_section(idle) + noise_section(summary)
    return "\n".join(lines)


def plot(summary, path):
    """Paired throughput ratios against direct, hop CPU per GB against haproxy and added p99, each
    a median with min-max bars, with the targets drawn in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    targets = list(summary)
    fig, axes = plt.subplots(2, max(2, len(targets)), figsize=(13, 8.5), squeeze=False)
    for ax, target in zip(axes[0], targets):
        paths = [p for p in summary[target] if p != "direct"]
        width = 0.8 / len(WORKLOADS)
        for i, (w, name) in enumerate(WORKLOADS):
            xs = [x + (i - 1) * width for x in range(len(paths))]
            bars(ax, xs, [summary[target][p]["ratios"].get("direct", {}).get(w) for p in paths], width, name)
        ax.axhline(0.97, color="red", linestyle="--", linewidth=1, label="target 0.97× direct")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(paths)), paths, rotation=20, fontsize=8)
        ax.set_ylabel("throughput × direct, same round")
        ax.set_title(f"{target}: throughput against direct (median, min–max)")
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes[0][len(targets):]:
        ax.axis("off")
    cpu_panel(axes[1][0], summary)
    latency_panel(axes[1][1], summary)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def bars(ax, xs, stats, width, name):
    med = [s["median"] if s else 0 for s in stats]
    lo = [s["median"] - s["min"] if s else 0 for s in stats]
    hi = [s["max"] - s["median"] if s else 0 for s in stats]
    ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=name)


def cpu_panel(ax, summary):
    items = [(f"{t}/{p}", s["cpu_ratios"].get("haproxy")) for t, ps in summary.items() for p, s in ps.items()
             if s["cpu_ratios"].get("haproxy")]
    bars(ax, range(len(items)), [s for _, s in items], 0.6, "hop CPU per GB × haproxy")
    ax.axhline(0.7, color="red", linestyle="--", linewidth=1, label="target ≤ 0.7× haproxy")
    ax.set_xticks(range(len(items)), [n for n, _ in items], rotation=20, fontsize=8)
    ax.set_title("Hop CPU per GB against haproxy, same round")
    ax.legend(fontsize=7)


def latency_panel(ax, summary):
    items = [(f"{t}/{p}", s["latency"]) for t, ps in summary.items() for p, s in ps.items() if not p.startswith("direct")]
    for i, (api, name) in enumerate(APIS):
        xs = [x + (i - 0.5) * 0.4 for x in range(len(items))]
        bars(ax, xs, [lat[api]["added_p99_us"] for _, lat in items], 0.4, f"{name} added p99")
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="target < 100 µs")
    ax.set_xticks(range(len(items)), [n for n, _ in items], rotation=20, fontsize=8)
    ax.set_ylabel("µs")
    ax.set_title("Added round-trip latency, p99 (paired probe)")
    ax.legend(fontsize=7)

#!/usr/bin/env python3
"""Prints the benchmark table from run.sh's work directory and saves everything as one JSON file."""
import argparse, glob, json, os, re, statistics

PATHS = ("direct", "nginx", "tollgate")


def load(work):
    runs, ledgers = {}, {}
    for f in glob.glob(f"{work}/out/*.json"):
        base = os.path.basename(f)
        if base.endswith(".wrk.json") or base.endswith(".raw.json") or base == "idle.json":
            continue
        d = json.load(open(f))
        if base.endswith(".ledger.json"):
            ledgers[d["scenario"]] = d
        else:
            runs[(d["scenario"], d["path"])] = d
    idle = json.load(open(f"{work}/out/idle.json")) if os.path.exists(f"{work}/out/idle.json") else {}
    lookups = {}
    for f in glob.glob(f"{work}/out/keys*.lookup.txt"):
        n = int(re.search(r"keys(\d+)", f).group(1))
        times = [float(m) for m in re.findall(r"Execution Time: ([\d.]+) ms", open(f).read())]
        if times:
            lookups[n] = {"db_lookup_ms_p50": statistics.median(times), "samples": len(times)}
    return runs, ledgers, idle, lookups


def client_probe(work):
    """tollgate-client-probe's runs, averaged per (client, connections); warm-up runs left out."""
    path = f"{work}/out/client.probe.jsonl"
    if not os.path.exists(path):
        return {}
    groups = {}
    for line in open(path):
        d = json.loads(line)
        if d["client"] != "warmup":
            groups.setdefault((d["client"], d["connections"]), []).append(d)
    return {k: {m: statistics.mean(r[m] for r in v) for m in ("p50_ms", "p99_ms", "req_per_s", "client_cpu_us_per_req")}
            for k, v in groups.items()}


def stage_means(work):
    """Mean reservation round trip, upstream first byte and time to response headers per scenario,
    from the proxy's /metrics snapshots taken after each Tollgate run (cumulative, so diffed)."""
    names = {"reservation": "tollgate_reservation_seconds", "upstream first byte": "tollgate_upstream_first_byte_seconds",
             "headers": "tollgate_request_duration_seconds"}
    def totals(text):
        out = {}
        for label, metric in names.items():
            sums = [float(v) for v in re.findall(rf"^{metric}_sum(?:{{[^}}]*}})? ([\d.e+-]+)$", text, re.M)]
            counts = [float(v) for v in re.findall(rf"^{metric}_count(?:{{[^}}]*}})? ([\d.e+-]+)$", text, re.M)]
            out[label] = (sum(sums), sum(counts))
        for path in ("ticket", "exact"):
            found = re.findall(rf'^tollgate_admissions_total{{path="{path}"}} ([\d.e+-]+)$', text, re.M)
            out[f"admitted {path}"] = (float(found[0]) if found else 0.0, 0.0)
        return out
    result = {}
    for f in sorted(glob.glob(f"{work}/out/*.metrics.txt")):
        scenario = os.path.basename(f).split(".")[0]
        before_file = f"{work}/out/{scenario}.metrics-before.txt"
        before = totals(open(before_file).read()) if os.path.exists(before_file) else None
        after = totals(open(f).read())
        means = {}
        for label, (total, count) in after.items():
            t0, c0 = before[label] if before else (0.0, 0.0)
            if count > c0:
                means[label] = 1000 * (total - t0) / (count - c0)
        admitted = {p: after[f"admitted {p}"][0] - (before[f"admitted {p}"][0] if before else 0.0) for p in ("ticket", "exact")}
        if sum(admitted.values()) > 0:
            means["on tickets %"] = 100 * admitted["ticket"] / sum(admitted.values())
        result[scenario] = means
    return result


def histogram_diff(work, scenario, metric):
    """A histogram's observations during one run, from the /metrics snapshots before and after it:
    ([(upper bound in s, count in that bucket)], count, sum in s)."""
    def read(path):
        if not os.path.exists(path):
            return {}, 0.0, 0.0
        text = open(path).read()
        buckets = {float("inf") if le == "+Inf" else float(le): float(v)
                   for le, v in re.findall(rf'^{metric}_bucket{{le="([^"]+)"}} ([\d.e+-]+)$', text, re.M)}
        count = sum(float(v) for v in re.findall(rf"^{metric}_count ([\d.e+-]+)$", text, re.M))
        total = sum(float(v) for v in re.findall(rf"^{metric}_sum ([\d.e+-]+)$", text, re.M))
        return buckets, count, total
    b0, c0, s0 = read(f"{work}/out/{scenario}.metrics-before.txt")
    b1, c1, s1 = read(f"{work}/out/{scenario}.metrics.txt")
    cumulative = sorted((le, v - b0.get(le, 0.0)) for le, v in b1.items())
    return cumulative, c1 - c0, s1 - s0


def histogram_p50_ms(cumulative, count):
    """The median from cumulative bucket counts, interpolated linearly within its bucket."""
    if count <= 0:
        return None
    lower, below = 0.0, 0.0
    for le, cum in cumulative:
        if cum >= count / 2:
            if le == float("inf"):
                return 1000 * lower
            share = (count / 2 - below) / (cum - below) if cum > below else 0.0
            return 1000 * (lower + share * (le - lower))
        lower, below = le, cum
    return None


def key_lookup_runs(runs, lat):
    """Per key-table size: the median over rounds of the p50 of the chat c1 runs with a fresh
    (uncached) key per request and with the cached bench key, measured alternately; their ratio
    cancels the machine's drift."""
    sizes = {}
    for (scenario, path) in runs:
        m = re.fullmatch(r"keys(\d+)(hot|cold)(\d+)", scenario)
        if not m or path != "tollgate":
            continue
        entry = sizes.setdefault(int(m.group(1)), {"hots": [], "colds": []})
        entry["hots" if m.group(2) == "hot" else "colds"].append(lat(scenario, "tollgate", "p50"))
    out = {}
    for n, e in sizes.items():
        if e["hots"] and e["colds"] and all(e["hots"]) and all(e["colds"]):
            hot, cold = statistics.median(e["hots"]), statistics.median(e["colds"])
            out[n] = dict(e, hot=hot, cold=cold, ratio=cold / hot)
    return out


def key_lookups_in_proxy(work, runs):
    """Per key-table size: the proxy's own key lookups during the cold runs (one per fresh key):
    the median over rounds of their p50 (tollgate_key_lookup_seconds), and how many there were."""
    sizes = {}
    for (scenario, path) in runs:
        m = re.fullmatch(r"keys(\d+)cold(\d+)", scenario)
        if not m or path != "tollgate":
            continue
        cumulative, count, total = histogram_diff(work, scenario, "tollgate_key_lookup_seconds")
        entry = sizes.setdefault(int(m.group(1)), {"p50s": [], "lookups": 0, "requests": 0})
        entry["p50s"].append(histogram_p50_ms(cumulative, count))
        entry["lookups"] += count
        entry["requests"] += runs[(scenario, path)].get("result", {}).get("requests") or 0
    return {n: dict(e, p50=statistics.median(e["p50s"])) for n, e in sizes.items() if e["p50s"] and all(e["p50s"])}


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.3f}"
    if unit == "rps":
        return f"{v:,.0f}"
    if unit == "n":
        return f"{int(v)}"
    if unit == "f":
        return f"{v:.0f}"
    return f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--context", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    runs, ledgers, idle, lookups = load(a.work)
    ctx = json.load(open(a.context))

    def lat(s, p, k):
        r = runs.get((s, p))
        return ms(r["result"]["latency_us"][k]) if r else None

    def rps(s, p):
        r = runs.get((s, p))
        return r["result"]["rps"] if r else None

    def non200(s, p):
        r = runs.get((s, p))
        if not r:
            return None
        e = r["result"]["errors"]
        return e["status"] + e["connect"] + e["read"] + e["write"] + e["timeout"]

    def stream(p, metric, k="p50"):
        r = runs.get(("stream", p))
        return ms(r["result"][metric][k]) if r else None

    rows = []  # (label, unit, {path: value}, kind) kind: lat (lower better, show added) / thr

    def row(label, unit, fn, kind):
        vals = {p: fn(p) for p in PATHS}
        if any(v is not None for v in vals.values()):
            rows.append((label, unit, vals, kind))

    for s, c in (("chat1", 1),):
        row(f"chat c{c} p50 ms", "ms", lambda p: lat(s, p, "p50"), "lat")
        row(f"chat c{c} p99 ms", "ms", lambda p: lat(s, p, "p99"), "lat")
        row(f"chat c{c} p99.9 ms", "ms", lambda p: lat(s, p, "p99_9"), "lat")
        row(f"chat c{c} req/s", "rps", lambda p: rps(s, p), "thr")
    for s, c in (("chat32", 32), ("chat128", 128)):
        row(f"chat c{c} req/s", "rps", lambda p, s=s: rps(s, p), "thr")
        row(f"chat c{c} p99 ms", "ms", lambda p, s=s: lat(s, p, "p99"), "lat")
        row(f"chat c{c} non-200", "n", lambda p, s=s: non200(s, p), "cnt")
    row("stream c1 TTFB p50 ms", "ms", lambda p: stream(p, "ttfb_us"), "lat")
    row("stream c1 first event p50 ms", "ms", lambda p: stream(p, "first_event_us"), "lat")
    row("stream c1 last byte p50 ms", "ms", lambda p: stream(p, "last_byte_us"), "lat")
    row("stream c1 last byte p99 ms", "ms", lambda p: stream(p, "last_byte_us", "p99"), "lat")
    row("embed×64 c1 p50 ms", "ms", lambda p: lat("embed1", p, "p50"), "lat")
    row("embed×64 c1 p99 ms", "ms", lambda p: lat("embed1", p, "p99"), "lat")
    row("embed×64 c32 req/s", "rps", lambda p: rps("embed32", p), "thr")
    row("embed×64 c32 p99 ms", "ms", lambda p: lat("embed32", p, "p99"), "lat")
    row("embed×64 c32 non-200", "n", lambda p: non200("embed32", p), "cnt")

    def cpu(s, p):
        r = runs.get((s, p))
        return r.get("cpu_us_per_request") if r else None
    row("chat c32 server CPU µs/req", "f", lambda p: cpu("chat32", p), "lat")
    row("embed c32 server CPU µs/req", "f", lambda p: cpu("embed32", p), "lat")
    row("machine busy % (chat c32)", "f", lambda p: runs.get(("chat32", p), {}).get("machine_busy_pct"), "cnt")

    head = f"{'scenario':<30}{'direct':>10}{'nginx':>10}{'tollgate':>10}{'tg-direct':>11}{'tg/direct':>10}{'tg/nginx':>10}"
    lines = [head, "-" * len(head)]
    for label, unit, v, kind in rows:
        d, n, t = v["direct"], v["nginx"], v["tollgate"]
        added = f"{t - d:+.3f}" if kind == "lat" and None not in (t, d) else ""
        rd = f"{t / d:.2f}" if kind in ("lat", "thr") and t is not None and d else ""
        rn = f"{t / n:.2f}" if kind in ("lat", "thr") and t is not None and n else ""
        lines.append(f"{label:<30}{fmt(d, unit):>10}{fmt(n, unit):>10}{fmt(t, unit):>10}{added:>11}{rd:>10}{rn:>10}")

    # Tollgate-only scenarios
    extra = []
    base_p50 = lat("chat1", "tollgate", "p50")
    key_sizes = key_lookup_runs(runs, lat)
    proxy_lookups = key_lookups_in_proxy(a.work, runs)
    for n, k in sorted(key_sizes.items()):
        lk = lookups.get(n, {}).get("db_lookup_ms_p50")
        extra.append(f"keys {n:>9,}: chat c1 p50 with a fresh key each request {fmt(k['cold'], 'ms')} ms "
                     f"(runs {' / '.join(fmt(v, 'ms') for v in k['colds'])}), with the cached key {fmt(k['hot'], 'ms')} ms "
                     f"(runs {' / '.join(fmt(v, 'ms') for v in k['hots'])}); fresh/cached {k['ratio']:.3f}; "
                     f"DB-side lookup p50 {fmt(lk, 'ms')} ms (keys not looked up before)")
        pl = proxy_lookups.get(n)
        if pl:
            extra.append(f"{'':16}the proxy's key lookups (fresh keys): p50 {fmt(pl['p50'], 'ms')} ms "
                         f"(runs {' / '.join(fmt(v, 'ms') for v in pl['p50s'])}), {pl['lookups']:,.0f} lookups "
                         f"for {pl['requests']:,} requests")
    for c in (32, 128):
        s = f"replicas{c}"
        if (s, "tollgate") in runs:
            r1 = rps(f"chat{c}", "tollgate")
            r2 = rps(s, "tollgate")
            ratio = f" ({r2 / r1:.2f}× one proxy)" if r1 else ""
            extra.append(f"2 replicas c{c}: {fmt(r2, 'rps')} req/s{ratio}, p99 {fmt(lat(s, 'tollgate', 'p99'), 'ms')} ms, "
                         f"non-200 {non200(s, 'tollgate')}")

    # Resources
    res = []
    idle_kb = sum(idle.get("rss_idle_kb", {}).values()) if idle else None
    peak = max((r.get("rss_peak_kb", 0) for (s, p), r in runs.items() if p == "tollgate" and not s.startswith("replicas")),
               default=None)
    res.append(f"proxy RSS: idle {idle_kb / 1024:.1f} MB, peak {peak / 1024:.1f} MB (single proxy, all scenarios)"
               if idle_kb and peak else "proxy RSS: -")
    cpu = []
    for (s, p), r in sorted(runs.items()):
        if p == "tollgate" and r.get("cpu_us_per_request") is not None:
            cpu.append(f"{s} {r['cpu_us_per_request']:.0f}")
    res.append("proxy CPU µs/request: " + ", ".join(cpu))
    stages = stage_means(a.work)
    if stages:
        res.append("inside the proxy, means in ms (reservation round trip / upstream first byte / time to headers): " +
                   "; ".join(f"{sc} " + " / ".join(f"{m.get(k, float('nan')):.3f}" for k in ("reservation", "upstream first byte", "headers"))
                             for sc, m in stages.items()))
        share = [f"{sc} {m['on tickets %']:.1f}%" for sc, m in stages.items() if "on tickets %" in m]
        if share:
            res.append("admitted on tickets (no database round trip): " + ", ".join(share))
    db = [f"{s} {r['db_cpu_us_per_request']:.0f}" for (s, p), r in sorted(runs.items())
          if p == "tollgate" and r.get("db_cpu_us_per_request") is not None]
    if db:
        res.append("Postgres CPU µs/request (admission + settlement): " + ", ".join(db))
    probe = client_probe(a.work)
    if probe:
        res.append("upstream HTTP client alone, against the mock (no proxy), mean of 2 runs: " + "; ".join(
            f"{client} c{c} p50 {m['p50_ms']:.3f} ms, p99 {m['p99_ms']:.3f} ms, {m['req_per_s']:,.0f} req/s, {m['client_cpu_us_per_req']:.0f} µs CPU/req"
            for (client, c), m in sorted(probe.items(), key=lambda kv: (kv[0][1], kv[0][0]))))
    peaks = [f"{s} {r['rss_peak_kb'] / 1024:.0f}" for (s, p), r in sorted(runs.items()) if p == "tollgate" and r.get("rss_peak_kb")]
    res.append("proxy peak RSS MB by scenario: " + ", ".join(peaks))

    led = [f"{s}: {'ok' if l['ok'] else 'FAILED ' + ','.join(k for k, v in l['checks'].items() if not v)} "
           f"({l['delta']['rows_200']} rows, drain {l['settle_drain_s']}s)" for s, l in sorted(ledgers.items())]

    # Targets
    def tgt(name, ok, detail):
        return f"[{'PASS' if ok else 'MISS' if ok is False else ' -- '}] {name}: {detail}"

    targets = []
    a50 = None if base_p50 is None or lat("chat1", "direct", "p50") is None else base_p50 - lat("chat1", "direct", "p50")
    a99 = None if lat("chat1", "tollgate", "p99") is None else lat("chat1", "tollgate", "p99") - lat("chat1", "direct", "p99")
    targets.append(tgt("added latency c1 p50 ≤ 0.3 ms", None if a50 is None else a50 <= 0.3, fmt(a50, "ms") + " ms"))
    targets.append(tgt("added latency c1 p99 ≤ 1 ms", None if a99 is None else a99 <= 1.0, fmt(a99, "ms") + " ms"))
    r32t, r32n = rps("chat32", "tollgate"), rps("chat32", "nginx")
    if r32t and r32n:
        ok = r32t >= 0.5 * r32n and non200("chat32", "tollgate") == 0
        targets.append(tgt("c32 throughput ≥ 50% of nginx, 0 non-200", ok,
                           f"{100 * r32t / r32n:.0f}% of nginx, {non200('chat32', 'tollgate')} non-200"))
    if stream("tollgate", "ttfb_us") is not None:
        add = stream("tollgate", "first_event_us") - stream("direct", "first_event_us")
        addh = stream("tollgate", "ttfb_us") - stream("direct", "ttfb_us")
        targets.append(tgt("streaming added TTFB p50 ≤ 1 ms", max(add, addh) <= 1.0,
                           f"first byte {addh:+.3f} ms, first event {add:+.3f} ms"))
    # The lookup's own time inside the proxy, the sizes' runs alternating; builds without that
    # metric fall back to the end-to-end fresh/cached ratio (which also pays an exact admission).
    flat = ({n: e["p50"] for n, e in proxy_lookups.items()}, "the proxy's lookup p50", " ms") \
        if len(proxy_lookups) >= 2 else ({n: e["ratio"] for n, e in key_sizes.items()}, "fresh-key p50 / cached-key p50", "")
    if len(flat[0]) >= 2:
        (by_size, what, unit), lo_n, hi_n = flat, min(flat[0]), max(flat[0])
        lo, hi = by_size[lo_n], by_size[hi_n]
        targets.append(tgt("key lookup flat (p50 within 10%)", abs(hi / lo - 1) <= 0.10,
                           f"{what}: {lo:.3f}{unit} at {lo_n:,} keys → {hi:.3f}{unit} at {hi_n:,} keys "
                           f"({100 * (hi / lo - 1):+.1f}%)"))
    if idle_kb:
        targets.append(tgt("RSS idle ≤ 50 MB", idle_kb / 1024 <= 50, f"{idle_kb / 1024:.1f} MB"))
    r128 = runs.get(("chat128", "tollgate"))
    if r128:
        targets.append(tgt("RSS at 128 connections ≤ 200 MB", r128["rss_peak_kb"] / 1024 <= 200,
                           f"{r128['rss_peak_kb'] / 1024:.1f} MB"))
    if ledgers:
        targets.append(tgt("ledger: one row per 200, spent = usage × price", all(l["ok"] for l in ledgers.values()),
                           f"{sum(l['ok'] for l in ledgers.values())}/{len(ledgers)} runs"))

    loads = [r.get("load1_before", 0) for r in runs.values()]
    if loads and max(loads) > 1.0:
        targets.append(f"NOTE: other work was running (load average up to {max(loads):.1f} before a measurement); "
                       "figures are noisy")
    pin = "wrk on core 1, proxy+nginx on core 0" if ctx.get("pin") else "unpinned"
    title = (f"Tollgate data-plane benchmark - {ctx.get('cpus')} CPUs, {pin}, {ctx.get('duration_s')} s per run, "
             f"Postgres {ctx.get('postgres')}")
    text = "\n".join([title, ""] + lines + [""] + extra + [""] + res + ["", "ledger checks: " + "; ".join(led), ""]
                     + targets)
    print("\n" + text)
    out = {"context": ctx, "table": text,
           "runs": {f"{s}.{p}": r for (s, p), r in sorted(runs.items())},
           "ledger": ledgers, "idle": idle, "key_lookup": lookups, "key_lookup_in_proxy": proxy_lookups,
           "client_probe": {f"{client}.c{c}": m for (client, c), m in client_probe(a.work).items()}}
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    json.dump(out, open(a.json, "w"), indent=1)
    print(f"\nresults: {a.json}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Helpers for deploy/bench/run.sh.

  measure.py idle   --pids P[,P] --out F            RSS of the proxy(s) at idle
  measure.py run    --pids P[,P] --out F --result R [--result2 R2] [--meta k=v]... -- CMD...
        runs CMD (the load generator) while sampling VmRSS of the pids every 50 ms and their
        utime+stime from /proc/PID/stat; writes the load generator's JSON plus peak RSS and CPU.
  measure.py merge  A B                             merges two wrk results into A (two replicas)
  measure.py snapshot --psql CMD --mock URL --key K --tenant T
  measure.py ledger --name N --before SNAPSHOT --mock URL --wrk R --psql CMD --key K --tenant T --out F
        waits until every hold is settled, then checks ledger rows against the mock's counters.
"""
import argparse, json, math, os, shlex, subprocess, sys, threading, time, urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def pids_of(s):
    return [int(p) for p in (s or "").replace(" ", ",").split(",") if p.strip()]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except FileNotFoundError:
        return 0


def cpu_total():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def tcp_opens():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def cmd_idle(a):
    pids = pids_of(a.pids)
    time.sleep(1.0)
    json.dump({"rss_idle_kb": {str(p): rss_kb(p) for p in pids}}, open(a.out, "w"))


def cmd_run(a):
    pids = pids_of(a.pids)
    db_pids = pids_of(a.db_pids)
    cpu0 = {p: cpu_ticks(p) for p in pids + db_pids}
    rss_start = {p: rss_kb(p) for p in pids}
    peak = dict(rss_start)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for p in pids:
                peak[p] = max(peak[p], rss_kb(p))
            stop.wait(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    load1 = os.getloadavg()[0]
    tot0, idle0 = cpu_total()
    opens0 = tcp_opens()
    t0 = time.monotonic()
    rc = subprocess.call(a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd)
    wall = time.monotonic() - t0
    stop.set(); t.join()
    tot1, idle1 = cpu_total()
    opens = tcp_opens() - opens0
    busy = 1 - (idle1 - idle0) / max(1, tot1 - tot0)
    cpu_s = sum(cpu_ticks(p) - cpu0[p] for p in pids) / TICK
    db_cpu_s = sum(cpu_ticks(p) - cpu0[p] for p in db_pids) / TICK
    result = json.load(open(a.result))
    if a.result2 and os.path.exists(a.result2):
        merge(result, json.load(open(a.result2)))
        json.dump(result, open(a.result, "w"))
    meta = dict(kv.split("=", 1) for kv in a.meta)
    requests = result.get("requests", 0) + result.get("warmup", 0)
    out = dict(meta, rc=rc, wall_s=round(wall, 2), result=result, load1_before=load1,
               machine_busy_pct=round(100 * busy, 1), tcp_connects=opens)
    if pids:
        out.update(rss_start_kb=sum(rss_start.values()), rss_peak_kb=sum(peak.values()),
                   rss_peak_per_process_kb=[peak[p] for p in pids], cpu_s=cpu_s,
                   cpu_us_per_request=(cpu_s * 1e6 / requests) if requests else None)
    if db_pids and requests:
        out.update(db_cpu_s=db_cpu_s, db_cpu_us_per_request=db_cpu_s * 1e6 / requests)
    json.dump(out, open(a.out, "w"), indent=1)
    if rc != 0:
        sys.exit(f"load generator failed (rc {rc})")


def merge(x, y):
    """Two wrk runs side by side: sums; latency percentiles taken as the worse of the two."""
    for k in ("requests", "bytes", "rps"):
        x[k] = x.get(k, 0) + y.get(k, 0)
    for k, v in y.get("errors", {}).items():
        x["errors"][k] = x["errors"].get(k, 0) + v
    for k, v in y.get("latency_us", {}).items():
        if k in ("mean", "stdev"):
            x["latency_us"][k] = (x["latency_us"][k] + v) / 2
        elif k == "min":
            x["latency_us"][k] = min(x["latency_us"][k], v)
        else:
            x["latency_us"][k] = max(x["latency_us"][k], v)
    x["merged"] = 2


def cmd_merge(a):
    x = json.load(open(a.a))
    if x.get("merged"):
        return
    merge(x, json.load(open(a.b)))
    json.dump(x, open(a.a, "w"))


def psql(cmd, sql):
    out = subprocess.check_output(shlex.split(cmd) + ["-c", sql], text=True).strip()
    return [line.split("|") for line in out.splitlines() if line]


def http(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req) as r:
        body = r.read()
    return json.loads(body) if body else None


def wait_settled(a, timeout=120):
    """Holds are released by settlement: reserved = 0 on key and tenant means nothing in flight."""
    deadline = time.monotonic() + timeout
    while True:
        rows = psql(a.psql, f"SELECT coalesce(sum(reserved_nanos),0) FROM budget_windows "
                            f"WHERE owner_id IN ('{a.key}','{a.tenant}')")
        if int(rows[0][0]) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


SNAP = ("SELECT count(*), count(*) FILTER (WHERE status_code = 200), coalesce(sum(cost_nanos),0), "
        "coalesce(sum(prompt_tokens),0), coalesce(sum(completion_tokens),0), "
        "count(*) FILTER (WHERE estimated), "
        "(SELECT coalesce(sum(spent_nanos),0) FROM budget_windows WHERE owner_id = '{key}'), "
        "(SELECT coalesce(sum(spent_nanos),0) FROM budget_windows WHERE owner_id = '{tenant}') FROM usage_ledger")


def snapshot(a):
    return [int(x) for x in psql(a.psql, SNAP.format(key=a.key, tenant=a.tenant))[0]]


def cmd_snapshot(a):
    settled = wait_settled(a)
    s = snapshot(a)
    http(a.mock + "/_mock/stats", "DELETE")
    print(" ".join(map(str, s + [int(settled)])))


def cmd_ledger(a):
    t0 = time.monotonic()
    settled = wait_settled(a)
    drain_s = time.monotonic() - t0
    before = [int(x) for x in a.before.split()]
    after = snapshot(a)
    d = dict(zip(["rows", "rows_200", "cost", "prompt", "completion", "estimated", "key_spent", "tenant_spent"],
                 [y - x for x, y in zip(before, after)]))
    mock = http(a.mock + "/_mock/stats")
    mock_200 = int(mock["requests_by_status"].get("200", 0))
    price = psql(a.psql, f"SELECT input_per_million_nanos, output_per_million_nanos FROM prices "
                         f"WHERE tenant_id IS NULL AND model = '{a.model}' AND currency = 'USD'")[0]
    pin, pout = int(price[0]), int(price[1])
    n = mock_200
    expected = None
    if n and mock["prompt_tokens"] % n == 0 and mock["completion_tokens"] % n == 0:
        p, c = mock["prompt_tokens"] // n, mock["completion_tokens"] // n   # identical requests
        expected = n * math.ceil((p * pin + c * pout) / 1_000_000)
    wrk = json.load(open(a.wrk))
    client_200 = wrk.get("ok")
    if client_200 is not None:
        client_200 += wrk.get("warmup", 0)   # the streaming client's warm-up runs inside the window
    else:
        e = wrk["errors"]
        client_200 = wrk["requests"] - e["status"]
    conns = int(a.conns)
    checks = {
        "all_settled": settled,
        "rows_eq_mock_requests": d["rows"] == mock["requests_total"],
        "rows_200_eq_mock_200": d["rows_200"] == mock_200,
        # wrk stops with up to one request per connection in flight: those reach the ledger, not wrk.
        "rows_200_covers_client_200": client_200 <= d["rows_200"] <= client_200 + conns,
        "tokens_eq_mock_usage": d["prompt"] == mock["prompt_tokens"] and d["completion"] == mock["completion_tokens"],
        "cost_eq_usage_x_price": expected is not None and d["cost"] == expected,
        # With many keys (the lookup scenario) the bench key's own spend is not the run's.
        "key_spent_eq_cost": a.many_keys or d["key_spent"] == d["cost"],
        "tenant_spent_eq_cost": d["tenant_spent"] == d["cost"],
        "no_estimated_rows": d["estimated"] == 0,
    }
    out = {"scenario": a.name, "delta": d, "mock": {"requests": mock["requests_total"], "200": mock_200,
           "prompt_tokens": mock["prompt_tokens"], "completion_tokens": mock["completion_tokens"]},
           "client_200": client_200, "expected_cost_nanos": expected, "price": [pin, pout],
           "settle_drain_s": round(drain_s, 2), "checks": checks, "ok": all(checks.values())}
    json.dump(out, open(a.out, "w"), indent=1)
    status = "ok" if out["ok"] else "FAILED: " + ", ".join(k for k, v in checks.items() if not v)
    print(f"    ledger {a.name}: {d['rows']} rows, {d['rows_200']} × 200 (client saw {client_200}), "
          f"cost {d['cost']} nanos (expected {expected}), drained in {drain_s:.1f}s: {status}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    p = sub.add_parser("idle"); p.add_argument("--pids", default=""); p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_idle)
    p = sub.add_parser("run"); p.add_argument("--pids", default=""); p.add_argument("--db-pids", default=""); p.add_argument("--out", required=True)
    p.add_argument("--result", required=True); p.add_argument("--result2")
    p.add_argument("--meta", action="append", default=[]); p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("merge"); p.add_argument("a"); p.add_argument("b"); p.set_defaults(fn=cmd_merge)
    for name, fn in (("snapshot", cmd_snapshot), ("ledger", cmd_ledger)):
        p = sub.add_parser(name)
        for opt in ("--psql", "--mock", "--key", "--tenant"):
            p.add_argument(opt, required=True)
        if name == "ledger":
            for opt in ("--name", "--before", "--wrk", "--out", "--model", "--conns"):
                p.add_argument(opt, required=True)
            p.add_argument("--many-keys", action="store_true")
        p.set_defaults(fn=fn)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()

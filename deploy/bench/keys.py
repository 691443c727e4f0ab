#!/usr/bin/env python3
"""Bulk virtual keys with known secrets, for the key-lookup scenario of deploy/bench/run.sh.

Key number g (1, 2, ...) has a secret derived from g and a per-run seed, in Tollgate's format
(tg_live_ + 32 base62 + 6 base62 of the CRC-32), stored as HMAC-SHA256 under the proxy's pepper,
exactly as the admin API stores minted keys. So the load generator can authenticate as any key in
the table: every request with a fresh key costs the proxy a real, uncached lookup.

  keys.py rows --from A --to B --seed S      CSV (id, hash hex, display prefix, name) for keys A..B, on stdout
  keys.py sample --upto N --count C --seed S [--draw D]
                                              C secrets of keys drawn uniformly from 1..N, one per line

The pepper comes from TOLLGATE_KEY_PEPPER (base64), as for the proxy.
"""
import argparse, base64, hashlib, hmac, os, random, sys, uuid, zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(value, width):
    digits = []
    for _ in range(width):
        value, rest = divmod(value, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def secret(seed, g):
    digest = hashlib.sha256(f"{seed}:{g}".encode()).digest()
    body = "tg_live_" + base62(int.from_bytes(digest, "big"), 32)
    return body + base62(zlib.crc32(body.encode()), 6)


def cmd_rows(a):
    pepper = base64.b64decode(os.environ["TOLLGATE_KEY_PEPPER"])
    out = sys.stdout
    for g in range(a.first, a.last + 1):
        s = secret(a.seed, g)
        key_hash = hmac.new(pepper, s.encode(), hashlib.sha256).hexdigest()
        out.write(f"{uuid.uuid4()},\\x{key_hash},{s[:12]},bulk-{g}\n")


def cmd_sample(a):
    rng = random.Random(f"{a.seed}:sample:{a.upto}:{a.draw}")
    for g in rng.sample(range(1, a.upto + 1), min(a.count, a.upto)):
        print(secret(a.seed, g))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rows")
    p.add_argument("--from", dest="first", type=int, required=True)
    p.add_argument("--to", dest="last", type=int, required=True)
    p.add_argument("--seed", required=True)
    p.set_defaults(fn=cmd_rows)
    p = sub.add_parser("sample")
    p.add_argument("--upto", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", required=True)
    p.add_argument("--draw", default="", help="another draw (order, keys) from the same keys")
    p.set_defaults(fn=cmd_sample)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Streaming-chat timing client for deploy/bench/run.sh (wrk cannot time the first byte).

One keep-alive HTTP/1.1 connection over a raw socket, requests sent one after another. For each
request it records, from the moment the request is written:
  ttfb  - first byte of the response (status line),
  first - first SSE `data:` event received,
  last  - end of the response (terminating chunk / Content-Length reached).
Prints one JSON object: percentiles in microseconds and the count of non-200 responses.
"""
import argparse, json, socket, time


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = None
        self.buf = b""

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        return data

    def one(self, raw):
        now = time.perf_counter_ns
        t0 = now()
        self.sock.sendall(raw)
        buf = self.buf
        ttfb = first = None
        if buf:
            ttfb = 0
        while b"\r\n\r\n" not in buf:
            buf += self.recv()
            if ttfb is None:
                ttfb = now() - t0
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip().lower()
        close = headers.get(b"connection") == b"close"
        if b"data:" in buf:
            first = now() - t0
        if headers.get(b"transfer-encoding") == b"chunked":
            body_seen = b""
            while True:
                while b"\r\n" not in buf:
                    buf += self.recv()
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    data = self.recv()
                    if first is None and b"data:" in data:
                        first = now() - t0
                    buf += data
                chunk, buf = buf[:size], buf[size + 2:]
                if first is None and b"data:" in chunk:
                    first = now() - t0
                if size == 0:
                    break
                body_seen = chunk
        else:
            length = int(headers.get(b"content-length", b"0"))
            while len(buf) < length:
                data = self.recv()
                if first is None and b"data:" in data:
                    first = now() - t0
                buf += data
            buf = buf[length:]
        last = now() - t0
        self.buf = buf
        if close:
            self.sock.close()
            self.connect()
        return status, ttfb, first if first is not None else last, last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--key", required=True)
    ap.add_argument("--body", required=True, help="file with the JSON body")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=50)
    a = ap.parse_args()
    body = open(a.body, "rb").read()
    raw = (f"POST {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nAuthorization: Bearer {a.key}\r\n"
           f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    c = Conn(a.host, a.port)
    c.connect()
    for _ in range(a.warmup):
        c.one(raw)
    ttfb, first, last = [], [], []
    non200 = 0
    statuses = {}
    end = time.monotonic() + a.duration
    while time.monotonic() < end:
        status, t1, t2, t3 = c.one(raw)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            non200 += 1
            continue
        ttfb.append(t1 / 1000.0); first.append(t2 / 1000.0); last.append(t3 / 1000.0)

    def summary(v):
        return {"p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99), "mean": sum(v) / len(v) if v else None}

    print(json.dumps({"requests": len(ttfb) + non200, "ok": len(ttfb), "non200": non200,
                      "warmup": a.warmup, "statuses": statuses, "ttfb_us": summary(ttfb),
                      "first_event_us": summary(first), "last_byte_us": summary(last)}))


if __name__ == "__main__":
    main()

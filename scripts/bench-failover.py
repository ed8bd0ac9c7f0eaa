#!/usr/bin/env python3
"""The measuring half of scripts/bench-failover.sh (standard library only).

Subscribers on every node (GET /stream, reconnecting with Last-Event-ID if a stream
ends), a publisher per node, together at a steady rate, each event's data
`b-<seq>`; optionally a SIGKILL of a pid (the master) after --before seconds. Writes one
JSON object:

- recovery_secs: per node, from the kill to the first event *published after the kill*
  that one of the node's subscribers got (None: none came); recovery_max: the slowest node.
- lost: events answered 200 to the publisher that some subscriber never got (the
  largest count over subscribers), and lost_resets: `reset` events with reason `lost`.
- publish_ms: p50/p99/max of the publish requests answered 200; refused: the others.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class Sub(threading.Thread):
    def __init__(self, node, url, stop):
        super().__init__(daemon=True)
        self.node, self.stop = node, stop
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.seen = {}  # seq -> arrival (monotonic)
        self.lost_resets = 0
        self.reconnects = -1
        self.last_id = None
        self.connected = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.reconnects += 1
            try:
                self.stream()
            except OSError:
                pass
            time.sleep(0.1)

    def stream(self):
        s = socket.create_connection((self.host, self.port), timeout=1)
        head = f"GET /stream HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n"
        if self.last_id:
            head += f"Last-Event-ID: {self.last_id}\r\n"
        s.sendall((head + "\r\n").encode())
        f = s.makefile("rb")
        status = f.readline().split()
        if len(status) < 2 or status[1] != b"200":
            return  # e.g. 503 before the node reaches Redis: try again
        while True:  # the response head
            try:
                line = f.readline()
            except socket.timeout:
                if self.stop.is_set():
                    return
                continue
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                break
        self.connected.set()
        ev_id, ev_type, data = None, None, []
        chunked_junk = 0
        while not self.stop.is_set():
            try:
                line = f.readline()
            except socket.timeout:
                continue
            if not line:
                return
            line = line.rstrip(b"\r\n")
            if line == b"":
                d = b"\n".join(data)
                if ev_id is not None:
                    self.last_id = ev_id
                if ev_type == "reset" and b'"lost"' in d:
                    self.lost_resets += 1
                elif d.startswith(b"b-"):
                    try:
                        seq = int(d[2:])
                    except ValueError:
                        seq = None
                    if seq is not None and seq not in self.seen:
                        self.seen[seq] = time.monotonic()
                ev_id, ev_type, data = None, None, []
            elif line.startswith(b"id:"):
                ev_id = line[3:].strip().decode(errors="replace")
            elif line.startswith(b"event:"):
                ev_type = line[6:].strip().decode(errors="replace")
            elif line.startswith(b"data:"):
                v = line[5:]
                data.append(v[1:] if v.startswith(b" ") else v)
            else:
                chunked_junk += 1  # comments (heartbeats), chunk sizes if any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--subscribers", type=int, default=3, help="in all, spread over the nodes")
    ap.add_argument("--before", type=float, default=2, help="seconds of publishing before the kill")
    ap.add_argument("--after", type=float, default=6, help="seconds of publishing after it")
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("--kill-pid", type=int)
    args = ap.parse_args()

    stop = threading.Event()
    subs = [Sub(i % len(args.url), args.url[i % len(args.url)], stop) for i in range(args.subscribers)]
    for s in subs:
        s.start()
    for s in subs:
        if not s.connected.wait(10):
            sys.exit("bench-failover: a subscriber did not connect")
    time.sleep(0.3)

    # One publisher per node, each at rate/N, so that a publish a node holds (up to 2 s
    # while its reader is away) delays only that node's next publish.
    hosts = [urllib.parse.urlsplit(u) for u in args.url]
    lock = threading.Lock()
    acked, lat = {}, []
    counts = {"published": 0, "refused": 0, "errors": 0}
    t0 = time.monotonic()
    end = t0 + args.before + args.after
    period = len(args.url) / args.rate

    def publisher(i):
        conn = None
        nxt = t0 + i * period / len(args.url)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now < nxt:
                time.sleep(min(nxt - now, end - now))
                continue
            nxt = max(nxt + period, time.monotonic())
            with lock:
                counts["published"] += 1
                seq = counts["published"]
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(hosts[i].hostname, hosts[i].port, timeout=10)
                conn.request("POST", "/publish", body=f"b-{seq}",
                             headers={"Authorization": f"Bearer {args.token}",
                                      "Content-Type": "text/plain"})
                r = conn.getresponse()
                r.read()
                with lock:
                    if r.status == 200:
                        acked[seq] = sent
                        lat.append((time.monotonic() - sent) * 1000)
                    else:
                        counts["refused"] += 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None

    pubs = [threading.Thread(target=publisher, args=(i,), daemon=True) for i in range(len(args.url))]
    for p in pubs:
        p.start()
    t_kill = None
    if args.kill_pid:
        time.sleep(max(0.0, t0 + args.before - time.monotonic()))
        os.kill(args.kill_pid, signal.SIGKILL)
        t_kill = time.monotonic()
    for p in pubs:
        p.join()
    seq, refused, errors = counts["published"], counts["refused"], counts["errors"]
    time.sleep(args.settle)
    stop.set()

    nodes = len(args.url)
    recovery = []
    for n in range(nodes):
        firsts = []
        for s in subs:
            if s.node != n or t_kill is None:
                continue
            after = [t for q, t in s.seen.items() if q in acked and acked[q] > t_kill]
            if after:
                firsts.append(min(after) - t_kill)
        recovery.append(round(min(firsts), 3) if firsts else None)
    lost = [sum(1 for q in acked if q not in s.seen) for s in subs]
    out = {
        "published": seq,
        "acked": len(acked),
        "refused": refused,
        "errors": errors,
        "lost": max(lost) if lost else 0,
        "lost_per_subscriber_min": min(lost) if lost else 0,
        "lost_resets": sum(s.lost_resets for s in subs),
        "subscribers": len(subs),
        "subscriber_reconnects": sum(s.reconnects for s in subs),
        "recovery_secs": recovery,
        "recovery_max": (None if t_kill is None or None in recovery else max(recovery)),
        "publish_ms": {k: (round(v, 2) if v is not None else None) for k, v in
                       (("p50", pct(lat, 0.5)), ("p99", pct(lat, 0.99)),
                        ("max", max(lat) if lat else None))},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

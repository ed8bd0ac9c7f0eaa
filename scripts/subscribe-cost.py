#!/usr/bin/env python3
"""Subscribe cost on the Mercure path (#21): N subscribers with a URI-template selector
(`topic=https://example.com/books/{id}`) against N with an exact one
(`topic=https://example.com/books/1`), each on a freshly started ssehub.

For each selector: the time to connect all N (at most --concurrency connecting at once),
the server's CPU time spent on those connects and its RSS before and after (from
/proc/PID), then --events broadcasts, one at a time (each published with POST /publish
once every subscriber has the one before): the server's CPU per delivered event.

CPU comes from /proc in clock ticks (10 ms): below about 5,000 subscribers and 20
broadcasts the CPU figures are coarse (the smoke run at 500 only shows it works).
Loopback only; bounded by N, --events and --deadline. Raises its descriptor limit when it
can (the server inherits it); N subscribers need about N + 100 descriptors.

Usage:
  scripts/subscribe-cost.py --bin target/release/ssehub --n 10000 [--events 20] [--json]
"""
import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.parse

from ssehub_proc import free_port, proc_cpu_secs, proc_rss_kib, wait_up

TEMPLATE = "https://example.com/books/{id}"
EXACT = "https://example.com/books/1"
TOKEN = "subscribe-cost"


def start_server(binary):
    """Starts ssehub, quiet (no log line per subscriber to cost CPU), on a free loopback
    port; the process and the port once /health answers."""
    port = free_port()
    args = [binary, "--bind", f"127.0.0.1:{port}", "--no-demo", "--heartbeat", "0",
            "--publish-token", TOKEN, "--max-connections", "100000", "--quiet"]
    return wait_up(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL), port, binary)


class Subscriber:
    """One stream on the hub path; counts the events it has read."""

    def __init__(self):
        self.seen = 0
        self.reader = self.writer = None

    async def open(self, port, selector):
        query = urllib.parse.urlencode({"topic": selector})
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(f"GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: cost\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:200])

    async def read(self, progress):
        buf = b""
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            buf += chunk
            n = buf.count(b"\ndata: e")
            if n:
                self.seen += n
                progress.set()
                buf = buf[buf.rfind(b"\ndata: e") + 8:]


async def publish(port, i):
    body = json.dumps({"topic": EXACT, "data": f"e{i}"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /publish HTTP/1.1\r\nHost: cost\r\nConnection: close\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                 b"Content-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = await reader.read()
    writer.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(answer[:200])


async def measure(binary, selector, n, events, concurrency, deadline):
    proc, port = start_server(binary)
    try:
        await asyncio.sleep(0.3)
        rss0, cpu0 = proc_rss_kib(proc.pid), proc_cpu_secs(proc.pid)
        subs = [Subscriber() for _ in range(n)]
        sem = asyncio.Semaphore(concurrency)

        async def connect(s):
            async with sem:
                await s.open(port, selector)

        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(connect(s) for s in subs)), deadline)
        connect_secs = time.monotonic() - t0
        await asyncio.sleep(0.3)  # let the server finish the last subscriptions
        cpu1, rss1 = proc_cpu_secs(proc.pid), proc_rss_kib(proc.pid)
        progress = asyncio.Event()
        readers = [asyncio.create_task(s.read(progress)) for s in subs]
        t1 = time.monotonic()
        for i in range(events):
            await publish(port, i)
            while sum(1 for s in subs if s.seen > i) < n:
                if time.monotonic() - t1 > deadline:
                    raise RuntimeError(f"event {i} not delivered to all {n} within {deadline} s")
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), 1)
                except asyncio.TimeoutError:
                    pass
        cpu2 = proc_cpu_secs(proc.pid)
        for s in subs:
            s.writer.close()
        for r in readers:
            r.cancel()
        return {
            "selector": selector,
            "subscribers": n,
            "connect_all_s": round(connect_secs, 3),
            "connects_per_s": round(n / connect_secs),
            "server_cpu_connect_s": round(cpu1 - cpu0, 2),
            "server_cpu_us_per_subscribe": round((cpu1 - cpu0) / n * 1e6, 1),
            "server_rss_before_kib": rss0,
            "server_rss_after_kib": rss1,
            "server_kib_per_subscriber": round((rss1 - rss0) / n, 2),
            "broadcasts": events,
            "server_cpu_us_per_delivered_event": round((cpu2 - cpu1) / (n * events) * 1e6, 3),
        }
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/ssehub")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    ap.add_argument("--json", action="store_true", help="one JSON line per selector")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.n + 200
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"subscribe-cost: {a.n} subscribers need {need} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    results = [asyncio.run(measure(os.path.abspath(a.bin), sel, a.n, a.events, a.concurrency, a.deadline))
               for sel in (TEMPLATE, EXACT)]
    for r in results:
        if a.json:
            print(json.dumps(r))
            continue
        print(f"{r['selector']}: {r['subscribers']} subscribers connected in {r['connect_all_s']} s "
              f"({r['connects_per_s']}/s); server CPU {r['server_cpu_connect_s']} s "
              f"({r['server_cpu_us_per_subscribe']} µs per subscribe); RSS "
              f"{r['server_rss_before_kib']} → {r['server_rss_after_kib']} KiB "
              f"({r['server_kib_per_subscriber']} KiB each); {r['broadcasts']} broadcasts: "
              f"{r['server_cpu_us_per_delivered_event']} CPU-µs per delivered event")
    if not a.json:
        t, e = results
        q = lambda x, y: f"{x / y:.2f}" if y else "–"
        print(f"template/exact: connect time {q(t['connect_all_s'], e['connect_all_s'])}, "
              f"CPU per subscribe {q(t['server_cpu_us_per_subscribe'], e['server_cpu_us_per_subscribe'])}, "
              f"RSS per subscriber {q(t['server_kib_per_subscriber'], e['server_kib_per_subscriber'])}, "
              f"CPU per delivered event {q(t['server_cpu_us_per_delivered_event'], e['server_cpu_us_per_delivered_event'])}")


if __name__ == "__main__":
    main()

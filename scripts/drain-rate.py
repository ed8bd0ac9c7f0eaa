#!/usr/bin/env python3
"""Reconnect rate per 100 ms when N streams see a restart without a handover (#22).

For each mode (the jittered drain, then `--drain-spread 0`: every stream ended at once),
in one run: starts ssehub, opens N streams on /stream and keeps the `retry:` each was
sent, starts the successor on another port (as a second instance behind a balancer, or
the restarted unit, would be), sends SIGTERM to the first, and lets every client do what
EventSource does: when its stream ends, wait its `retry` and reconnect, here to the
successor. Counts the stream ends and the reconnects per 100 ms after the signal.

Loopback only; bounded by N and by --deadline. Raises its descriptor limit to the hard
limit (the servers inherit it); N streams need about N + 300 descriptors here (each
client closes its ended stream before it reconnects), and N + 100 in each server.

Usage:
  scripts/drain-rate.py --bin target/release/ssehub --n 10000 [--grace 5] [--json]
"""
import argparse
import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

from ssehub_proc import free_port, wait_up

REQ = b"GET /stream HTTP/1.1\r\nHost: drain-rate\r\n\r\n"
BUCKET = 0.1


def start_server(binary, extra):
    """Starts ssehub, quiet, on a free loopback port; the process and the port once
    /health answers."""
    port = free_port()
    args = [binary, "--bind", f"127.0.0.1:{port}", "--no-demo", "--heartbeat", "0",
            "--quiet", *extra]
    return wait_up(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL), port, binary)


async def open_stream(port):
    """Opens one stream; its reader, writer and the retry (ms) of its preamble."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQ)
    got = b""
    while b"retry:" not in got or not got.endswith(b"\n"):
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError(f"closed before the preamble: {got[:200]!r}")
        got += chunk
    if not got.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(got[:200])
    retry = int(re.search(rb"retry: (\d+)", got).group(1))
    return reader, writer, retry


async def client(stream, successor, signalled, ends, reconnects, done):
    """Waits for the end of its stream, its retry, then reconnects to the successor."""
    reader, writer, retry = stream
    await signalled.wait()
    while await reader.read(4096):
        pass
    ends.append(time.monotonic())
    writer.close()
    await asyncio.sleep(retry / 1000)
    _, w2, _ = await open_stream(successor)
    reconnects.append(time.monotonic())
    done.append(w2)


def per_bucket(times, t0):
    """Counts per 100 ms after t0: a dict bucket -> count."""
    counts = {}
    for t in times:
        b = int((t - t0) / BUCKET)
        counts[b] = counts.get(b, 0) + 1
    return counts


def summary(name, times, t0):
    counts = per_bucket(times, t0)
    if not counts:
        return {"what": name, "count": 0}
    span = (max(times) - min(times)) * 1000
    return {
        "what": name,
        "count": len(times),
        "first_ms": round((min(times) - t0) * 1000),
        "last_ms": round((max(times) - t0) * 1000),
        "span_ms": round(span),
        "max_per_100ms": max(counts.values()),
        "busy_buckets": len(counts),
    }


async def run_mode(binary, n, grace, spread, deadline):
    extra = ["--grace", str(grace)]
    if spread is not None:
        extra += ["--drain-spread", str(spread)]
    old, port = start_server(binary, extra)
    new, successor = start_server(binary, ["--grace", str(grace)])
    try:
        sem = asyncio.Semaphore(200)

        async def limited():
            async with sem:
                return await open_stream(port)

        streams = await asyncio.gather(*(limited() for _ in range(n)))
        signalled = asyncio.Event()
        ends, reconnects, done = [], [], []
        tasks = [asyncio.create_task(client(s, successor, signalled, ends, reconnects, done))
                 for s in streams]
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        old.send_signal(signal.SIGTERM)
        signalled.set()

        async def exited():
            while old.poll() is None and time.monotonic() - t0 < deadline:
                await asyncio.sleep(0.01)
            return round((time.monotonic() - t0) * 1000) if old.poll() is not None else None

        watch = asyncio.create_task(exited())
        await asyncio.wait_for(asyncio.gather(*tasks), deadline)
        exit_ms = await watch
        for w in done:
            w.close()
        ends_s = summary("stream ends", ends, t0)
        rec_s = summary("reconnects", reconnects, t0)
        return {"mode": "spread (default)" if spread is None else f"--drain-spread {spread}",
                "n": n, "grace_s": grace, "old_exit_ms": exit_ms, "ends": ends_s,
                "reconnects": rec_s,
                "reconnects_per_100ms": sorted(per_bucket(reconnects, t0).items())}
    finally:
        for p in (old, new):
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/ssehub")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds per mode")
    ap.add_argument("--json", action="store_true", help="one JSON line per mode")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.n + 300
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"drain-rate: {a.n} streams need {need} descriptors, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    for spread in (None, 0):
        r = asyncio.run(run_mode(os.path.abspath(a.bin), a.n, a.grace, spread, a.deadline))
        if a.json:
            print(json.dumps(r))
            continue
        e, c = r["ends"], r["reconnects"]
        print(f"{r['mode']}: {r['n']} streams, grace {r['grace_s']} s, old process exited "
              f"at {r['old_exit_ms']} ms")
        print(f"  stream ends: {e['first_ms']}..{e['last_ms']} ms, at most "
              f"{e['max_per_100ms']} per 100 ms ({e['busy_buckets']} buckets)")
        print(f"  reconnects:  {c['first_ms']}..{c['last_ms']} ms, at most "
              f"{c['max_per_100ms']} per 100 ms ({c['busy_buckets']} buckets)")


if __name__ == "__main__":
    main()
